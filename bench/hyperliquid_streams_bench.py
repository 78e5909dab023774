#!/usr/bin/env python3
"""Hyperliquid streaming at scale: N coins x intervals of `candle` subscriptions through freqfeed's websocket
client (freqfeed.exchanges.hyperliquid.streams) against the Hyperliquid simulator, in one process.

Reported: connections and subscriptions used (of 10 and 1000 per IP), messages per second received, closes
inferred (by a later candle / by the end passing), close latency in real ms (from the candle's end T to the
client inferring it final: includes the simulator's publishing, same process and event loop), every close
checked against the simulator's truth, and this process's peak RSS.

Usage: .venv/bin/python bench/hyperliquid_streams_bench.py [--coins 100] [--intervals 1m,3m,15m,1h]
       [--seconds 30] [--speed 10] [--json bench/results/hyperliquid_streams.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "files" / "python"))

from freqfeed.exchanges.hyperliquid import wire
from freqfeed.exchanges.hyperliquid.simulator import (
    HyperliquidMarket,
    HyperliquidSimulator,
)
from freqfeed.exchanges.hyperliquid.streams import (
    Close,
    HyperliquidStreams,
    StreamEvents,
)
from freqfeed.simulator.clock import SimClock


class Collector(StreamEvents):
    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.closes: list[tuple[Close, int]] = []  # (close, exchange ms when inferred)

    def on_close(self, close: Close) -> None:
        self.closes.append((close, self.clock.now()))


async def run(coins: int, intervals: list[str], seconds: float, speed: float) -> dict[str, Any]:
    clock = SimClock(None, speed)
    market = HyperliquidMarket(1, extra_coins=max(0, coins - 19), start_ms=clock.start_ms)
    simulator = await HyperliquidSimulator(market, clock).start()
    names = [a.name for a in market.assets if not a.delisted][:coins]
    subs = [wire.candle_subscription(coin, interval) for coin in names for interval in intervals]
    events = Collector(clock)
    streams = HyperliquidStreams(f"ws://127.0.0.1:{simulator.port}/ws", subs, events, now=clock.now)
    streams.start()
    try:
        deadline = time.monotonic() + 10
        while simulator.stats_snapshot()["ws_subscriptions"] < len(subs) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stats = simulator.stats_snapshot()
        first_messages, started = streams.messages, time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - started
        received = streams.messages - first_messages
    finally:
        await streams.stop()
        await simulator.stop()
    latencies = sorted((at - (int(c.row["T"]) + 1)) / speed for c, at in events.closes if c.by == "next")
    wrong = sum(1 for c, _ in events.closes if c.row != market.final_candle(c.row["s"], c.row["i"], c.row["t"]))

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else 0.0

    return {"coins": len(names), "intervals": intervals, "speed": speed, "seconds": round(elapsed, 1),
            "connections": stats["ws_connections"], "subscriptions": stats["ws_subscriptions"],
            "messages_per_second": round(received / elapsed, 1),
            "closes_next": sum(1 for c, _ in events.closes if c.by == "next"),
            "closes_end": sum(1 for c, _ in events.closes if c.by == "end"),
            "closes_not_equal_to_truth": wrong,
            "close_latency_real_ms_p50": pct(0.5), "close_latency_real_ms_p99": pct(0.99),
            "close_latency_real_ms_mean": round(statistics.fmean(latencies), 1) if latencies else 0.0,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=100)
    parser.add_argument("--intervals", default="1m,3m,15m,1h")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = asyncio.run(run(args.coins, args.intervals.split(","), args.seconds, args.speed))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
