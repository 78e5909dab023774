"""Runs ccxt's `hyperliquid` (the class freqtrade uses, from freqtrade's own venv) against a local URL.

    python hyperliquid_ccxt_runner.py '<ccxt_config JSON>' < calls.jsonl > answers.jsonl
    python hyperliquid_ccxt_runner.py '<config A>' '<config B>' < calls.jsonl > answers.jsonl   (twins)

As ccxt_runner.py (Binance) does: each input line a call {"call", "args", "params"}; each output line
{"ok": <result>} or {"error": "<ccxt exception class>: <message>"}, plus "at" (local ms). Results are cut to
what the tests compare. Kept free of freqfeed imports: this venv has only freqtrade and ccxt.
"""

from __future__ import annotations

import json
import sys
import time

import ccxt
from ccxt_runner import Cut, cut, run_calls  # the same directory: run as a script, it is on sys.path

HYPERLIQUID_CUTS: Cut = {
    "load_markets": ("by_symbol", ("id", "symbol", "type", "base", "baseName", "active", "precision", "linear",
                                   "contractSize")),
    "fetch_funding_rate_history": ("rows", ("symbol", "fundingRate", "timestamp")),
    "fetch_order_book": ("one", ("bids", "asks", "timestamp")),
    "fetch_tickers": ("by_symbol", ("symbol", "bid", "ask", "close", "previousClose", "quoteVolume",
                                    "info")),
}


def run_twins(a: ccxt.hyperliquid, b: ccxt.hyperliquid) -> int:
    """Each call on A, then at once the same call on B (a few ms apart: the same exchange second, for answers
    that move with it, such as tickers); {"sleep": s} pauses. Each output line {"a": ..., "b": ...}."""
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if "sleep" in request:
            time.sleep(request["sleep"])
            continue
        answers = {}
        for name, exchange in (("a", a), ("b", b)):
            try:
                result = getattr(exchange, request["call"])(*request.get("args", []))
                answers[name] = {"ok": cut(result, HYPERLIQUID_CUTS.get(request["call"]))}
            except Exception as exc:  # the test compares the failures too
                answers[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        print(json.dumps(answers), flush=True)
    return 0


def main() -> int:
    configs = [json.loads(arg) for arg in sys.argv[1:3]]
    exchanges = [ccxt.hyperliquid({**config, "enableRateLimit": False}) for config in configs]
    if len(exchanges) == 2:
        return run_twins(*exchanges)
    return run_calls(exchanges[0], HYPERLIQUID_CUTS)


if __name__ == "__main__":
    sys.exit(main())
