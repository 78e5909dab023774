"""Runs ccxt (the library freqtrade uses, from freqtrade's own venv) against an exchange URL.

    python ccxt_runner.py '<ccxt_config JSON>' < calls.jsonl > answers.jsonl

Each input line is a call, e.g. {"call": "fetch_ohlcv", "args": ["BTC/USDT:USDT", "1m", null, 499],
"params": {}}; each output line {"ok": <result>} or {"error": "<ccxt exception class>: <message>"},
plus "at": the local time in ms when the call started. Calls run one after the other on one client, as a
bot makes them. Kept free of freqfeed imports: this venv has only freqtrade and ccxt.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import ccxt

# What each call's result is cut to (what the tests compare): "by_symbol" maps of dicts, "rows" lists of dicts,
# "one" dict. Calls not listed are passed through whole.
Cut = dict[str, tuple[str, tuple[str, ...]]]
BINANCE_CUTS: Cut = {
    "load_markets": ("by_symbol", ("id", "symbol", "type", "linear", "precision", "limits", "active",
                                   "contractSize")),
    "fetch_funding_rate_history": ("rows", ("symbol", "fundingRate", "timestamp")),
    "fetch_order_book": ("one", ("bids", "asks", "timestamp", "nonce")),
    "fetch_l2_order_book": ("one", ("bids", "asks", "timestamp", "nonce")),
    "fetch_bids_asks": ("by_symbol", ("bid", "bidVolume", "ask", "askVolume", "timestamp")),
}


def cut(result: Any, how: tuple[str, tuple[str, ...]] | None) -> Any:
    if how is None:
        return result
    shape, keys = how
    if shape == "by_symbol":
        return {symbol: {k: item.get(k) for k in keys} for symbol, item in sorted(result.items())}
    if shape == "rows":
        return [{k: row.get(k) for k in keys} for row in result]
    return {k: result.get(k) for k in keys}


def run_calls(exchange: Any, cuts: Cut) -> int:
    """The calls from stdin, one after the other on one client, as a bot makes them; answers to stdout."""
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        started = int(time.time() * 1000)
        try:
            result = getattr(exchange, request["call"])(*request.get("args", []), **(
                {"params": request["params"]} if request.get("params") else {}))
            answer = {"ok": cut(result, cuts.get(request["call"]))}
        except Exception as exc:  # the test compares the failures too
            answer = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        answer["at"] = started
        print(json.dumps(answer), flush=True)
    return 0


def main() -> int:
    config = json.loads(sys.argv[1])
    options = {"defaultType": "swap", **config.get("options", {})}
    return run_calls(ccxt.binance({**config, "options": options, "enableRateLimit": False}), BINANCE_CUTS)


if __name__ == "__main__":
    sys.exit(main())
