#!/usr/bin/env python3
"""The cost of watching: the gateway's klines p99 and req/s with metrics on vs off, side by side in one run, and
the scrape time of the gateway's /metrics at 10 pairs and at 300 pairs x 5 timeframes.

A real influxd, the simulator (real-time clock), the producer (10 pairs, 1m/3m/15m, 1500 candles) and two
`freqfeed serve` processes on the same data: one with `gateway.metrics_listen` set, one with it empty. Three
cases take turns (rotating order), --rounds times per client count, so drift on a shared machine hits all
alike: "off", "on" (metrics on, not scraped: the per-request histogram) and "scraped" (on, and scraped every
second by curl: 15x Prometheus' usual interval). The load: C connections sending `klines?limit=499` back to
back, from wrk (`--client wrk`, the default: C, so the client's own queueing on the two shared cores does not
drown the difference) or from gateway_bench.py's aiohttp client (`--client aiohttp`). Changes are medians of
the per-round ratios against "off". Then a third gateway with 300 pairs x 5 timeframes (20 candles per series
written straight into InfluxDB) for the scrape time at that size.

Usage: .venv/bin/python bench/metrics_bench.py [--seconds 5] [--rounds 2] [--client wrk|aiohttp]
                                              [--json bench/results/metrics.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "files" / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_bench import TIMEFRAMES, load
from gateway_scale_bench import wrk_load

from freqfeed.config import InfluxDBConfig
from freqfeed.influx import InfluxDB
from freqfeed.localinflux import LocalInfluxDB, free_port
from freqfeed.timeframes import last_closed_open
from tests.helpers import truth, write_candles
from tests.processes import (
    GatewayProcess,
    ProducerProcess,
    SimulatorProcess,
    gateway_config,
    producer_config,
)

CLIENTS = (1, 10, 50)
BIG_TIMEFRAMES = ["1m", "3m", "5m", "15m", "1h"]


def scrape_times(url: str, count: int) -> dict[str, float]:
    times, size, series = [], 0, 0
    for _ in range(count):
        started = time.perf_counter()
        body = requests.get(url, timeout=30).text
        times.append(time.perf_counter() - started)
        size = len(body)
        series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
    times.sort()
    return {"scrapes": count, "p50_ms": 1000 * statistics.median(times),
            "p99_ms": 1000 * times[min(len(times) - 1, int(len(times) * 0.99))], "bytes": size, "series": series}


class Scraper:
    """Prometheus' part: GET /metrics once a second, from another process (curl), until stopped."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(["sh", "-c", f"while :; do curl -s -o /dev/null {url}; sleep 1; done"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="turns each gateway takes per client count")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--big-pairs", type=int, default=300, help="pairs of the scrape-size gateway (0: skip)")
    parser.add_argument("--client", choices=["wrk", "aiohttp"], default="wrk", help="the load generator")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"seconds": args.seconds, "rounds": args.rounds, "pairs": args.pairs,
                               "client": args.client, "cases": []}
    with LocalInfluxDB() as influxd, tempfile.TemporaryDirectory(prefix="freqfeed-metrics-bench-") as tmp:
        work = Path(tmp)
        requests.post(f"{influxd.url}/query", data={"q": 'CREATE DATABASE "bench" WITH DURATION 360d'}, timeout=10)
        influx = InfluxDBConfig(url=influxd.url, database="bench")
        sim = SimulatorProcess(work, speed=1, seed=3)
        symbols = list(sim.market.instruments)[: args.pairs]
        pairs = [f"{s[:-4]}/USDT:USDT" for s in symbols]
        producer = ProducerProcess(work, producer_config(influx, sim, pairs, candles=1500, timeframes=TIMEFRAMES))
        producer.start()
        gateways: list[GatewayProcess] = []
        try:
            producer.wait_for_log("backfill done", timeout=300)
            metrics_port = free_port()
            on = GatewayProcess(work, gateway_config(influx, sim, pairs, TIMEFRAMES, gateway={
                "cache_candles": 1500, "metrics_listen": f"127.0.0.1:{metrics_port}"}), name="gateway-on").start()
            gateways.append(on)
            off = GatewayProcess(work, gateway_config(influx, sim, pairs, TIMEFRAMES, gateway={
                "cache_candles": 1500}), name="gateway-off").start()
            gateways.append(off)
            metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
            time.sleep(3)  # the configured pairs' book streams
            sim.fault("unlimited", 3600)
            for clients in CLIENTS:
                for round_ in range(args.rounds):
                    turns = [("off", off), ("on", on), ("scraped", on)]
                    for name, gateway in turns[round_ % 3:] + turns[:round_ % 3]:
                        scraper = Scraper(metrics_url) if name == "scraped" else None
                        case = (wrk_load(gateway.url, symbols, TIMEFRAMES, 499, clients, args.seconds)
                                if args.client == "wrk" else
                                asyncio.run(load(gateway.url, symbols, 499, clients, args.seconds)))
                        if scraper:
                            scraper.stop()
                        case.update({"metrics": name, "clients": clients, "round": round_})
                        results["cases"].append(case)
                        print(f"metrics {name:3} {clients:3} clients round {round_}: p50 {case['p50_ms']:6.2f} ms  "
                              f"p99 {case['p99_ms']:6.2f} ms  {case['rps']:7.0f} req/s ({case['errors']} errors)",
                              flush=True)
            results["scrape_small"] = scrape_times(metrics_url, 50)
            print(f"scrape at {args.pairs} pairs x {len(TIMEFRAMES)} timeframes: {results['scrape_small']}", flush=True)
            if args.big_pairs:
                big_symbols = list(sim.market.instruments)[: args.big_pairs]
                big_pairs = [f"{s[:-4]}/USDT:USDT" for s in big_symbols]
                requests.post(f"{influxd.url}/query", data={"q": 'CREATE DATABASE "big" WITH DURATION 360d'},
                              timeout=10)
                big_influx = InfluxDBConfig(url=influxd.url, database="big")
                filling = time.perf_counter()
                with InfluxDB(big_influx) as client:
                    for timeframe in BIG_TIMEFRAMES:
                        newest = last_closed_open(int(time.time() * 1000), timeframe)
                        for pair in big_pairs:
                            candles = [replace(c, quote_volume=c.volume * c.close, trades=10,
                                               taker_buy_volume=c.volume / 2,
                                               taker_buy_quote_volume=c.volume * c.close / 2)
                                       for c in truth(pair, timeframe, newest, 20)]  # every field, as the producer
                            write_candles(client, pair, timeframe, candles)
                print(f"filled {len(big_pairs)} x {len(BIG_TIMEFRAMES)} series in {time.perf_counter() - filling:.0f}s",
                      flush=True)
                big_port = free_port()
                big = GatewayProcess(work, gateway_config(big_influx, sim, big_pairs, BIG_TIMEFRAMES, gateway={
                    "metrics_listen": f"127.0.0.1:{big_port}"}), name="gateway-big").start()
                gateways.append(big)
                requests.get(f"{big.url}/fapi/v1/klines", params={"symbol": big_symbols[0], "interval": "1m"},
                             timeout=10)
                results["scrape_big"] = {"pairs": len(big_pairs), "timeframes": BIG_TIMEFRAMES,
                                         **scrape_times(f"http://127.0.0.1:{big_port}/metrics", 30)}
                print(f"scrape at {len(big_pairs)} pairs x {len(BIG_TIMEFRAMES)} timeframes: {results['scrape_big']}",
                      flush=True)
        finally:
            for gateway in gateways:
                gateway.terminate()
            producer.terminate()
            sim.stop()
    summary = {}
    for clients in CLIENTS:
        row = {}
        for name in ("off", "on", "scraped"):
            cases = [c for c in results["cases"] if c["clients"] == clients and c["metrics"] == name]
            row[name] = {"p99_ms": statistics.median(c["p99_ms"] for c in cases),
                         "p50_ms": statistics.median(c["p50_ms"] for c in cases),
                         "rps": statistics.median(c["rps"] for c in cases)}
        for name in ("on", "scraped"):
            pairs = [(o, m) for o in results["cases"] for m in results["cases"]
                     if o["clients"] == m["clients"] == clients and o["round"] == m["round"]
                     and o["metrics"] == "off" and m["metrics"] == name]
            row[name]["rps_change_pct"] = 100 * statistics.median(m["rps"] / o["rps"] - 1 for o, m in pairs)
            row[name]["p99_change_pct"] = 100 * statistics.median(m["p99_ms"] / o["p99_ms"] - 1 for o, m in pairs)
            row[name]["rounds_faster_than_off"] = sum(m["rps"] > o["rps"] for o, m in pairs)
        summary[str(clients)] = row
        head = f"{clients:3} clients: off p99 {row['off']['p99_ms']:.2f} ms {row['off']['rps']:.0f} req/s | "
        print(head + " | ".join(
            f"{name} p99 {row[name]['p99_ms']:.2f} ms {row[name]['rps']:.0f} req/s (paired median: req/s "
            f"{row[name]['rps_change_pct']:+.1f}%, p99 {row[name]['p99_change_pct']:+.1f}%, faster in "
            f"{row[name]['rounds_faster_than_off']}/{args.rounds} rounds)" for name in ("on", "scraped")))
    results["summary"] = summary
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
