"""Runs ccxt.pro's `hyperliquid` (freqtrade's websocket client, from freqtrade's own venv) against a local URL.

    python hyperliquid_ccxtpro_runner.py '<ccxt_config JSON>' SYMBOL TIMEFRAME CANDLES

Watches SYMBOL's TIMEFRAME candles (`watch_ohlcv`, as freqtrade's ws_enabled bots do) until CANDLES distinct
candle opens were seen, then one order book (`watch_order_book`); prints one JSON object: {"ohlcv": every
update as received, "book": {bids, asks, timestamp}} or {"error": ...}. Kept free of freqfeed imports.
"""

from __future__ import annotations

import asyncio
import json
import sys

import ccxt.pro


async def run(config: dict, symbol: str, timeframe: str, candles: int) -> dict:
    exchange = ccxt.pro.hyperliquid({**config, "enableRateLimit": False})
    try:
        updates: list[list] = []
        while len({row[0] for row in updates}) < candles:
            rows = await asyncio.wait_for(exchange.watch_ohlcv(symbol, timeframe), 60)
            updates.extend(list(row) for row in rows)  # all it returns: updates may arrive together
        book = await asyncio.wait_for(exchange.watch_order_book(symbol), 60)
        return {"ohlcv": updates, "book": {"bids": book["bids"], "asks": book["asks"], "timestamp": book["timestamp"]}}
    except Exception as exc:  # the test shows the failure
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}
    finally:
        await exchange.close()


def main() -> int:
    config, symbol, timeframe, candles = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    print(json.dumps(asyncio.run(run(config, symbol, timeframe, candles))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
