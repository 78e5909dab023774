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

import ccxt


def main() -> int:
    config = json.loads(sys.argv[1])
    options = {"defaultType": "swap", **config.get("options", {})}
    exchange = ccxt.binance({**config, "options": options, "enableRateLimit": False})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        started = int(time.time() * 1000)
        try:
            result = getattr(exchange, request["call"])(*request.get("args", []), **(
                {"params": request["params"]} if request.get("params") else {}))
            if request["call"] == "load_markets":
                result = {symbol: {k: market.get(k) for k in ("id", "symbol", "type", "linear", "precision",
                                                               "limits", "active", "contractSize")}
                          for symbol, market in sorted(result.items())}
            elif request["call"] == "fetch_funding_rate_history":
                result = [{k: row.get(k) for k in ("symbol", "fundingRate", "timestamp")} for row in result]
            elif request["call"] in ("fetch_order_book", "fetch_l2_order_book"):
                result = {k: result.get(k) for k in ("bids", "asks", "timestamp", "nonce")}
            elif request["call"] == "fetch_bids_asks":
                result = {s: {k: t.get(k) for k in ("bid", "bidVolume", "ask", "askVolume", "timestamp")}
                          for s, t in sorted(result.items())}
            answer = {"ok": result}
        except Exception as exc:  # the test compares the failures too
            answer = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        answer["at"] = started
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
