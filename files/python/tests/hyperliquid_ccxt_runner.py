"""Runs ccxt's `hyperliquid` (the class freqtrade uses, from freqtrade's own venv) against a local URL.

    python hyperliquid_ccxt_runner.py '<ccxt_config JSON>' < calls.jsonl > answers.jsonl

As ccxt_runner.py (Binance) does: each input line a call {"call", "args", "params"}; each output line
{"ok": <result>} or {"error": "<ccxt exception class>: <message>"}, plus "at" (local ms). Results are cut to
what the tests compare. Kept free of freqfeed imports: this venv has only freqtrade and ccxt.
"""

from __future__ import annotations

import json
import sys

import ccxt
from ccxt_runner import Cut, run_calls  # the same directory: run as a script, it is on sys.path

HYPERLIQUID_CUTS: Cut = {
    "load_markets": ("by_symbol", ("id", "symbol", "type", "base", "baseName", "active", "precision", "linear",
                                   "contractSize")),
    "fetch_funding_rate_history": ("rows", ("symbol", "fundingRate", "timestamp")),
    "fetch_order_book": ("one", ("bids", "asks", "timestamp")),
    "fetch_tickers": ("by_symbol", ("symbol", "bid", "ask", "close", "previousClose", "quoteVolume")),
}


def main() -> int:
    config = json.loads(sys.argv[1])
    return run_calls(ccxt.hyperliquid({**config, "enableRateLimit": False}), HYPERLIQUID_CUTS)


if __name__ == "__main__":
    sys.exit(main())
