#!/usr/bin/env python3
"""Hyperliquid start-up backfill: the whole 5000-candle horizon of N coins x intervals through freqfeed's REST
client (freqfeed.exchanges.hyperliquid.rest), against the Hyperliquid simulator in this process.

Reported: requests, weight (as the simulator counted it, Hyperliquid's weights), peak weight in one exchange
minute and its share of the 1200 limit, duration in exchange time (what it takes against Hyperliquid) and
in real time, 429s. The simulator runs faster than real time (--speed), the client learns that speed from
exchangeStatus, so the exchange-time figures are what a producer would see at 1x.

Usage: .venv/bin/python bench/hyperliquid_backfill_bench.py [--coins 20] [--intervals 1m,3m,15m,1h]
       [--share 0.5] [--speed 120] [--json bench/results/hyperliquid_backfill.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "files" / "python"))

from freqfeed.exchanges.hyperliquid import wire
from freqfeed.exchanges.hyperliquid.rest import HyperliquidRest
from freqfeed.exchanges.hyperliquid.simulator import (
    HyperliquidMarket,
    HyperliquidSimulator,
)
from freqfeed.simulator.clock import SimClock


async def run(coins: int, intervals: list[str], share: float, speed: float) -> dict[str, Any]:
    clock = SimClock(None, speed)
    market = HyperliquidMarket(1, extra_coins=max(0, coins - 19), start_ms=clock.start_ms)
    simulator = await HyperliquidSimulator(market, clock).start()
    names = [a.name for a in market.assets if not a.delisted][:coins]
    try:
        async with HyperliquidRest(f"http://127.0.0.1:{simulator.port}", share=share) as rest:
            while rest.clock.rate == 1.0 and speed != 1.0:
                await rest.sync_time()
                await asyncio.sleep(0.3)
            simulator.weight.clear()
            simulator.request_log.clear()
            started_real, started = time.monotonic(), clock.now()
            candles = 0
            for interval in intervals:
                now = rest.clock.now()
                results = await asyncio.gather(*(rest.candles(coin, interval, 0, now) for coin in names))
                candles += sum(len(r.closed) for r in results)
            ended_real, ended = time.monotonic(), clock.now()
            log = list(simulator.request_log)
            per_minute = [w for per in simulator.weight.values() for w in per.values()]
            return {"coins": len(names), "intervals": intervals, "share": share, "speed": speed,
                    "candles": candles, "requests": len(log),
                    "weight": sum(r.get("weight", 0) for r in log),
                    "rate_limited_429": sum(1 for r in log if r.get("status") == 429),
                    "peak_weight_per_minute": max(per_minute, default=0),
                    "peak_share_of_1200": round(max(per_minute, default=0) / wire.WEIGHT_LIMIT, 3),
                    "exchange_minutes": round((ended - started) / 60_000, 2),
                    "real_seconds": round(ended_real - started_real, 2)}
    finally:
        await simulator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=20)
    parser.add_argument("--intervals", default="1m,3m,15m,1h")
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--speed", type=float, default=120.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = asyncio.run(run(args.coins, args.intervals.split(","), args.share, args.speed))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
