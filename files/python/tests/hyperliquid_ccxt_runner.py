"""Runs ccxt's `hyperliquid` (the class freqtrade uses, from freqtrade's own venv) against a local URL.

    python hyperliquid_ccxt_runner.py '<ccxt_config JSON>' < calls.jsonl > answers.jsonl

As ccxt_runner.py (Binance) does: each input line a call {"call", "args", "params"}; each output line
{"ok": <result>} or {"error": "<ccxt exception class>: <message>"}, plus "at" (local ms). Results are cut to
what the tests compare. Kept free of freqfeed imports: this venv has only freqtrade and ccxt.
"""

from __future__ import annotations

import json
import sys
import time

import ccxt


def main() -> int:
    config = json.loads(sys.argv[1])
    exchange = ccxt.hyperliquid({**config, "enableRateLimit": False})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        started = int(time.time() * 1000)
        try:
            result = getattr(exchange, request["call"])(*request.get("args", []), **(
                {"params": request["params"]} if request.get("params") else {}))
            if request["call"] == "load_markets":
                result = {symbol: {k: market.get(k) for k in ("id", "symbol", "type", "base", "baseName", "active",
                                                               "precision", "linear", "contractSize")}
                          for symbol, market in sorted(result.items())}
            elif request["call"] == "fetch_funding_rate_history":
                result = [{k: row.get(k) for k in ("symbol", "fundingRate", "timestamp")} for row in result]
            elif request["call"] == "fetch_order_book":
                result = {k: result.get(k) for k in ("bids", "asks", "timestamp")}
            elif request["call"] == "fetch_tickers":
                result = {s: {k: t.get(k) for k in ("symbol", "bid", "ask", "close", "previousClose", "quoteVolume")}
                          for s, t in sorted(result.items())}
            answer = {"ok": result}
        except Exception as exc:  # the test compares the failures too
            answer = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        answer["at"] = started
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
