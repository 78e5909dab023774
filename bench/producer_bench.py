#!/usr/bin/env python3
"""Producer benchmark against the simulator and a real influxd (100 USDT-M pairs, 3m/15m/1h + mark + funding).

  (a) start-up backfill into an empty database at real-time speed with the production settings
      (request_delay 0.6 s, max_weight_share 0.5): requests, weight, peak weight per minute against
      Binance's 2400/minute budget — beside a naive downloader (freqtrade-sized pages of 499 candles,
      no pacing, honouring Retry-After only after a 429) fetching the same candles from a fresh simulator;
  (b) restart after a 10-minute outage: requests and weight of the start-up backfill;
  (c) sustained ingest: the simulator's firehose replays closed klines as fast as the producer reads
      them; points/s written to InfluxDB and the producer's peak RSS;
  (d) candle close -> visible in InfluxDB latency, p50/p99, at a 60x clock (a 3m close every 3 s);
  (e) the same on Hyperliquid (its simulator; 100 coins, 3m), whose candles carry no closed flag.

Usage: .venv/bin/python bench/producer_bench.py [--parts a,b,c,d,e] [--pairs 100] [--json bench/results/producer.json]
(a) and (b) run at real speed and take about six minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from freqfeed.exchanges.hyperliquid.wire import Universe
from freqfeed.influx import InfluxDB
from freqfeed.localinflux import LocalInfluxDB
from tests.processes import HyperliquidSim, ProducerProcess, SimulatorProcess, producer_config, wait_for

TIMEFRAMES = ["3m", "15m", "1h"]


def pairs_of(sim: SimulatorProcess, count: int) -> list[str]:
    return [f"{symbol[:-4]}/USDT:USDT" for symbol in list(sim.market.instruments)[:count]]


def peak_weight(sim: SimulatorProcess) -> int:
    return int(sim.stats()["peak_weight_per_minute"]["futures"])


def production_config(influx_url: str, sim: SimulatorProcess, pairs: list[str], workdir: Path) -> dict[str, Any]:
    config = producer_config(InfluxDBConfig(url=influx_url, database="bench"), sim, pairs, candles=1500,
                             producer={"health_file": str(workdir / "health.json")})
    config["exchange"].update({"request_delay": 0.6, "max_weight_share": 0.5})
    return config


def health(workdir: Path) -> dict[str, Any]:
    return dict(json.loads((workdir / "health.json").read_text()))


def backfill_summary(workdir: Path) -> dict[str, Any]:
    return dict(wait_for(lambda: health(workdir).get("backfill"), 30, "the backfill summary in the health file"))


async def naive_backfill(sim: SimulatorProcess, pairs: list[str]) -> dict[str, Any]:
    """A plain downloader: pages of 499 candles back from now, no pacing; on 429 it waits Retry-After."""
    started = time.monotonic()
    sent = rejected = 0
    now = sim.now()
    async with aiohttp.ClientSession() as session:
        for pair in pairs:
            symbol = pair.split(":")[0].replace("/", "")
            jobs = [("klines", tf) for tf in TIMEFRAMES] + [("markPriceKlines", "1h")]
            for endpoint, timeframe in jobs:
                end = now
                remaining = 1500
                while remaining > 0:
                    limit = min(499, remaining)
                    params = {"symbol": symbol, "interval": timeframe, "endTime": end, "limit": limit}
                    async with session.get(f"{sim.url}/fapi/v1/{endpoint}", params=params) as response:
                        sent += 1
                        if response.status in (429, 418):
                            rejected += 1
                            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                            continue
                        rows = await response.json()
                    remaining -= len(rows)
                    end = rows[0][0] - 1
            async with session.get(f"{sim.url}/fapi/v1/fundingRate", params={"symbol": symbol, "limit": 1000}) as r:
                sent += 1
                await r.read()
    return {"requests": sent, "rejected_429_418": rejected, "seconds": round(time.monotonic() - started, 1)}


def part_a_b(args: argparse.Namespace, workdir: Path, results: dict[str, Any]) -> None:
    with LocalInfluxDB(workdir / "influxd-ab") as influxd:
        sim = SimulatorProcess(workdir, speed=1)
        pairs = pairs_of(sim, args.pairs)
        producer = ProducerProcess(workdir, production_config(influxd.url, sim, pairs, workdir)).start()
        producer.wait_for_log("backfill done", timeout=1800)
        a = backfill_summary(workdir)
        a["peak_weight_per_minute_at_exchange"] = peak_weight(sim)
        a["budget"] = 2400
        a["series"] = len(pairs) * 5
        producer.terminate()
        stopped_at = sim.now()
        sim.stop()
        results["a_backfill"] = a
        print(f"(a) backfill: {a['series']} series, {a['requests']} requests, weight {a['weight']}, "
              f"peak {a['peak_weight_per_minute_at_exchange']}/min of 2400 "
              f"({a['peak_weight_per_minute_at_exchange'] / 24:.0f}%), {a['points_written']:,} points, "
              f"{a['seconds']:.0f} s", flush=True)

        # (b) the exchange's clock ten minutes later: the producer was down for ten minutes
        (workdir / "health.json").unlink()
        sim = SimulatorProcess(workdir, speed=1, start=stopped_at + 600_000, seed=sim.seed)
        producer = ProducerProcess(workdir, production_config(influxd.url, sim, pairs, workdir), name="restart")
        producer.start()
        producer.wait_for_log("backfill done", timeout=900)
        b = backfill_summary(workdir)
        producer.terminate()
        sim.stop()
        results["b_restart_after_10_min"] = b
        print(f"(b) restart after 10 min: {b['series']} series, {b['requests']} requests, weight {b['weight']}, "
              f"{b['points_written']} points, {b['seconds']:.0f} s", flush=True)

    naive_sim = SimulatorProcess(workdir, speed=1)
    naive = asyncio.run(naive_backfill(naive_sim, pairs_of(naive_sim, args.pairs)))
    naive["peak_weight_per_minute_at_exchange"] = peak_weight(naive_sim)
    naive["weight"] = sum(int(v) for v in naive_sim.stats()["weight_by_minute"]["futures"].values())
    naive_sim.stop()
    results["a_naive_downloader"] = naive
    print(f"(a) naive downloader: {naive['requests']} requests, weight {naive['weight']}, "
          f"{naive['rejected_429_418']} answered 429/418, peak {naive['peak_weight_per_minute_at_exchange']}/min, "
          f"{naive['seconds']:.0f} s", flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def part_c(args: argparse.Namespace, workdir: Path, results: dict[str, Any]) -> None:
    with LocalInfluxDB(workdir / "influxd-c") as influxd:
        sim = SimulatorProcess(workdir, speed=1)
        pairs = pairs_of(sim, args.pairs)
        config = producer_config(InfluxDBConfig(url=influxd.url, database="bench"), sim, pairs, candles=10,
                                 producer={"health_file": str(workdir / "health.json")})
        producer = ProducerProcess(workdir, config, name="ingest").start()
        producer.wait_for_log("backfill done", timeout=300)
        time.sleep(6)
        sim.fault("firehose", 45)
        time.sleep(10)  # warm up
        assert producer.process is not None
        pids = {"producer": producer.process.pid, "simulator": sim.process.pid, "influxd": influxd.process.pid}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        h0, t0 = health(workdir), time.monotonic()
        time.sleep(30)
        h1, t1 = health(workdir), time.monotonic()
        cpu = {name: round((cpu_seconds(pid) - cpu0[name]) / (t1 - t0), 2) for name, pid in pids.items()}
        rate = (h1["writer"]["written"] - h0["writer"]["written"]) / ((h1["updated"] - h0["updated"]) / 1000)
        status = Path(f"/proc/{producer.process.pid}/status").read_text()
        peak_rss_mb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024
        producer.terminate()
        sim.stop()
    results["c_ingest"] = {"points_per_second": round(rate), "peak_rss_mb": round(peak_rss_mb, 1),
                           "cpu_cores": cpu, "window_seconds": 30}
    print(f"(c) sustained ingest: {rate:,.0f} points/s written to InfluxDB, producer peak RSS {peak_rss_mb:.0f} MB, "
          f"CPU cores {cpu}", flush=True)


def close_latencies(client: InfluxDB, sim_now: Any, speed: float, measurement: str, period_ms: int,
                    seconds: float) -> list[float]:
    """Real seconds from each candle's close (the simulator's clock, mapped to this process's monotonic clock)
    to its first sight in InfluxDB, polling `last(close)` of every pair every 20 ms for `seconds`."""
    samples = []
    for _ in range(5):  # exchange ms -> local monotonic seconds
        before = time.monotonic()
        now = sim_now()
        samples.append(now / 1000 / speed - (before + time.monotonic()) / 2)
    offset = statistics.median(samples)
    seen: dict[str, int] = {}
    latencies: list[float] = []
    statement = f'SELECT last(close) FROM "{measurement}" WHERE time > now() - 30d GROUP BY pair'
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        [answer] = client.query(statement)
        observed = time.monotonic()
        for series in answer:
            pair, newest = series.tags["pair"], int(series.values[0][0])
            if pair in seen and newest > seen[pair]:
                close_local = (newest + period_ms) / 1000 / speed - offset
                latencies.append(observed - close_local)
            seen[pair] = max(seen.get(pair, 0), newest)
        time.sleep(0.02)
    return sorted(latencies)


def latency_result(name: str, latencies: list[float], speed: float, **extra: Any) -> dict[str, Any]:
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    print(f"{name} close -> InfluxDB latency over {len(latencies)} candles: p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms", flush=True)
    return {"samples": len(latencies), "p50_s": round(p50, 3), "p99_s": round(p99, 3),
            "max_s": round(latencies[-1], 3), "speed": speed, "poll_interval_s": 0.02, **extra}


def part_d(args: argparse.Namespace, workdir: Path, results: dict[str, Any]) -> None:
    speed = 60
    with LocalInfluxDB(workdir / "influxd-d") as influxd:
        sim = SimulatorProcess(workdir, speed=speed)
        pairs = pairs_of(sim, args.pairs)
        config = producer_config(InfluxDBConfig(url=influxd.url, database="bench"), sim, pairs, candles=20)
        producer = ProducerProcess(workdir, config, name="latency").start()
        producer.wait_for_log("backfill done", timeout=300)
        client = InfluxDB(InfluxDBConfig(url=influxd.url, database="bench"))
        latencies = close_latencies(client, sim.now, speed, "ohlcv_3m", 180_000, args.latency_seconds)
        producer.terminate()
        sim.stop()
    results["d_latency"] = latency_result("(d) Binance", latencies, speed)


def part_e(args: argparse.Namespace, workdir: Path, results: dict[str, Any]) -> None:
    """(e) the same on Hyperliquid: `candle` subscriptions carry no closed flag, a candle is final when a later
    one starts or its end passes (freqfeed.exchanges.hyperliquid.streams)."""
    speed = 60
    with LocalInfluxDB(workdir / "influxd-e") as influxd:
        sim = HyperliquidSim(workdir, speed=speed, extra_coins=max(0, args.hyperliquid_coins - 19))  # 19 majors
        universe = Universe.from_answer(sim.info({"type": "meta"}).json())
        pairs = [pair for pair, asset in universe.by_pair.items() if not asset.delisted][: args.hyperliquid_coins]
        influx = InfluxDBConfig(url=influxd.url, database="bench")
        config = {"influxdb": {"url": influx.url, "database": influx.database},
                  "exchange": {"name": "hyperliquid", "rest_url": sim.url, "ws_url": sim.ws_url},
                  "pairs": pairs, "timeframes": ["3m"], "backfill": {"candles": 20},
                  "producer": {"health_file": str(workdir / "health-e.json")}, "log_level": "INFO"}
        requests.post(f"{influx.url}/query", data={"q": 'CREATE DATABASE "bench" WITH DURATION 360d'}, timeout=30)
        producer = ProducerProcess(workdir, config, name="latency-hyperliquid").start()
        producer.wait_for_log("backfill done", timeout=300)
        client = InfluxDB(influx)
        latencies = close_latencies(client, sim.now, speed, "ohlcv_3m", 180_000, args.latency_seconds)
        producer.terminate()
        sim.stop()
    results["e_latency_hyperliquid"] = latency_result("(e) Hyperliquid", latencies, speed, coins=len(pairs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="a,b,c,d,e")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--latency-seconds", type=float, default=60)
    parser.add_argument("--hyperliquid-coins", type=int, default=100, help="(e): coins streamed")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    results: dict[str, Any] = {"pairs": args.pairs}
    with tempfile.TemporaryDirectory(prefix="freqfeed-producer-bench-") as work:
        workdir = Path(work)
        if parts & {"a", "b"}:
            part_a_b(args, workdir, results)
        if "c" in parts:
            part_c(args, workdir, results)
        if "d" in parts:
            part_d(args, workdir, results)
        if "e" in parts:
            part_e(args, workdir, results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
