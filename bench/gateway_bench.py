#!/usr/bin/env python3
"""Gateway benchmark: klines and depth latency and throughput, the gateway beside the simulator direct, in one run.

A real influxd, the simulator (real-time clock), the producer (10 pairs, 1m/3m/15m, 1500 candles
backfilled) and `freqfeed serve` as processes; the load comes from this process: C concurrent clients,
each sending `GET /fapi/v1/klines?symbol=..&interval=..&limit=L` (a random pair and timeframe, no
startTime: what a freqtrade bot asks at every close) back to back for --seconds, reading the whole answer.
Measured for C = 1, 10, 50 and L = 499, 1500, against the gateway and against the simulator, which
computes the same answer (candles are a pure function of time there; the producer's data go through
InfluxDB to the gateway; the simulator's weight limit is switched off for this: the load is far over
Binance's). Then the same for `GET /fapi/v1/depth?symbol=..&limit=5|20`: the gateway answers from the
book streams (`depth20@100ms`), the simulator computes the book. Reported: p50 and p99 latency and
requests per second.

Usage: .venv/bin/python bench/gateway_bench.py [--seconds 8] [--json bench/results/gateway.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "files" / "python"))

from freqfeed.config import InfluxDBConfig
from freqfeed.localinflux import LocalInfluxDB
from tests.processes import (
    GatewayProcess,
    ProducerProcess,
    SimulatorProcess,
    gateway_config,
    producer_config,
)

TIMEFRAMES = ["1m", "3m", "15m"]
CLIENTS = (1, 10, 50)
LIMITS = (499, 1500)


async def load(url: str, symbols: list[str], limit: int, clients: int, seconds: float,
               path: str = "klines", timeframes: list[str] | None = None,
               rows: int | None = None) -> dict[str, float]:
    """C clients back to back for `seconds`: p50, p99, req/s. An answer that is not 200 (or, with `rows`, has
    another number of rows) counts as an error."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    rng = random.Random(clients * 10_000 + limit)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                params = {"symbol": rng.choice(symbols), "limit": str(limit)}
                if path == "klines":
                    params["interval"] = rng.choice(timeframes or TIMEFRAMES)
                started = time.perf_counter()
                async with session.get(f"{url}/fapi/v1/{path}", params=params) as response:
                    body = await response.read()
                    if response.status != 200 or (rows is not None and body.count(b"],[") != rows - 1):
                        errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {"requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"seconds": args.seconds, "pairs": args.pairs, "timeframes": TIMEFRAMES, "cases": []}
    with LocalInfluxDB() as influxd, tempfile.TemporaryDirectory(prefix="freqfeed-gateway-bench-") as tmp:
        work = Path(tmp)
        requests.post(f"{influxd.url}/query", data={"q": 'CREATE DATABASE "bench" WITH DURATION 360d'}, timeout=10)
        influx = InfluxDBConfig(url=influxd.url, database="bench")
        sim = SimulatorProcess(work, speed=1, seed=3)
        symbols = list(sim.market.instruments)[: args.pairs]
        pairs = [f"{s[:-4]}/USDT:USDT" for s in symbols]
        producer = ProducerProcess(work, producer_config(influx, sim, pairs, candles=1500, timeframes=TIMEFRAMES))
        producer.start()
        producer.wait_for_log("backfill done", timeout=300)
        gateway = GatewayProcess(work, gateway_config(influx, sim, pairs, TIMEFRAMES,
                                                      gateway={"cache_candles": 1500})).start()
        time.sleep(3)  # the configured pairs' book streams
        sim.fault("unlimited", 3600)  # the load is far over Binance's weight limit: measure latency, not 429s
        try:
            for limit in LIMITS:
                for clients in CLIENTS:
                    for target, url in (("gateway", gateway.url), ("simulator", sim.url)):
                        case = asyncio.run(load(url, symbols, limit, clients, args.seconds))
                        case.update({"target": target, "endpoint": "klines", "limit": limit, "clients": clients})
                        results["cases"].append(case)
                        print(f"{target:9} limit {limit:4} {clients:3} clients: p50 {case['p50_ms']:6.1f} ms  "
                              f"p99 {case['p99_ms']:6.1f} ms  {case['rps']:7.0f} req/s  ({case['requests']} "
                              f"requests, {case['errors']} errors)", flush=True)
            for limit in (5, 20):
                for clients in CLIENTS:
                    for target, url in (("gateway", gateway.url), ("simulator", sim.url)):
                        case = asyncio.run(load(url, symbols, limit, clients, args.seconds, path="depth"))
                        case.update({"target": target, "endpoint": "depth", "limit": limit, "clients": clients})
                        results["cases"].append(case)
                        print(f"{target:9} depth {limit:4} {clients:3} clients: p50 {case['p50_ms']:6.1f} ms  "
                              f"p99 {case['p99_ms']:6.1f} ms  {case['rps']:7.0f} req/s  ({case['requests']} "
                              f"requests, {case['errors']} errors)", flush=True)
            status = gateway.status()
            results["books"] = status["books"]
            results["gateway_local"] = status["local"]
            results["gateway_forwarded"] = status["forwarded"]
        finally:
            gateway.terminate()
            producer.terminate()
            sim.stop()
    print(f"\ngateway answered {results['gateway_local']} requests itself and forwarded {results['gateway_forwarded']}"
          f" (books: {results['books']['served']} from streams, {results['books']['forwarded']} forwarded)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
