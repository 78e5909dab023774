#!/usr/bin/env python3
"""History benchmarks (issue 11), against the simulator and a real influxd.

  backfill  30 days for 100 USDT-M pairs x 3m/15m/1h plus mark and funding (config `history`), empty
            database, real-time clock, production settings (request_delay 0.6 s, max_weight_share 0.5):
            requests, weight, peak weight per minute against Binance's 2,400, duration, when every series
            had its newest page, the producer's peak RSS. Then the same from a fresh database, SIGKILLed
            halfway (by its health file's progress) and restarted: how many pages the resume fetched again.
  scale     300 pairs x 1m/3m/5m/15m/1h (1,500 kline streams and 300 mark-price streams over several
            connections, each within Binance's 200 streams and 10 incoming messages a second, which the
            simulator enforces) streaming for 70+ minutes of simulator time (60x clock): every series checked
            for gaps in InfluxDB, connections and reconnects, the producer's RSS; then the sync of the
            resulting 2,100 files: the first cycle, then on the real clock with the producer streaming, one
            3 minutes before an hour's close, the worst case right after it (every file gained a candle), a
            typical cycle 3 minutes later (the 1m and 3m files) and an idle one (nothing new), each with the
            sync's peak RSS.

Usage: .venv/bin/python bench/history_bench.py [--parts backfill,scale] [--pairs 100] [--days 30]
       [--scale-pairs 300] [--json bench/results/history.json]
The backfill part runs at real speed: about 35 minutes for both runs; the scale part about 10 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "files" / "python"))

from freqfeed.config import InfluxDBConfig
from freqfeed.influx import InfluxDB
from freqfeed.localinflux import LocalInfluxDB
from freqfeed.schema import MARK_MEASUREMENT, counts_select, ohlcv_measurement
from freqfeed.timeframes import last_closed_open, timeframe_ms
from tests.processes import (
    ProducerProcess,
    SimulatorProcess,
    kline_pages,
    producer_config,
    wait_for,
)

TIMEFRAMES = ["3m", "15m", "1h"]
SCALE_TIMEFRAMES = ["1m", "3m", "5m", "15m", "1h"]


def pairs_of(sim: SimulatorProcess, count: int) -> list[str]:
    symbols = list(sim.market.instruments)
    if len(symbols) < count:
        raise SystemExit(f"the simulator lists {len(symbols)} pairs, fewer than {count}")
    return [f"{symbol[:-4]}/USDT:USDT" for symbol in symbols[:count]]


def health(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024


# -- backfill ---------------------------------------------------------------------------------------


def backfill_config(influx: InfluxDBConfig, sim: SimulatorProcess, pairs: list[str], days: float,
                    workdir: Path) -> dict[str, Any]:
    config = producer_config(influx, sim, pairs, candles=1500, timeframes=TIMEFRAMES,
                             history={tf: days for tf in TIMEFRAMES},
                             producer={"health_file": str(workdir / "health.json")})
    config["exchange"].update({"request_delay": 0.6, "max_weight_share": 0.5})
    return config


def one_backfill(influxd: LocalInfluxDB, workdir: Path, args: argparse.Namespace, *, kill_at: float | None,
                 name: str) -> dict[str, Any]:
    database = f"bench_{name}"
    influxd_config = InfluxDBConfig(url=influxd.url, database=database)
    with InfluxDB(influxd_config) as client:
        client.query(f'DROP DATABASE "{database}"')
        client.query(f'CREATE DATABASE "{database}" WITH DURATION 360d')
    sim = SimulatorProcess(workdir, speed=1)
    pairs = pairs_of(sim, args.pairs)
    health_file = workdir / "health.json"
    health_file.unlink(missing_ok=True)
    producer = ProducerProcess(workdir, backfill_config(influxd_config, sim, pairs, args.days, workdir), name=name)
    started = time.monotonic()
    producer.start()
    result: dict[str, Any] = {"series": len(pairs) * (len(TIMEFRAMES) + 2)}
    series_with_pages = len(pairs) * (len(TIMEFRAMES) + 1)
    try:
        if kill_at is not None:
            def halfway() -> bool:
                progress = health(health_file).get("backfill_progress") or {}
                total = progress.get("pages_total") or 0
                return bool(total) and progress.get("pages_done", 0) >= kill_at * total

            wait_for(halfway, 3600, "the backfill half done", interval=0.5)
            assert producer.process is not None
            os.kill(producer.process.pid, signal.SIGKILL)
            producer.process.wait()
            first_run = kline_pages(sim.requests())
            progress = health(health_file)["backfill_progress"]
            result["killed_at"] = {"pages_done": progress["pages_done"], "pages_total": progress["pages_total"],
                                   "seconds": round(time.monotonic() - started, 1)}
            producer.start()
        producer.wait_for_log("backfill done", timeout=7200, count=1)
        result["seconds"] = round(time.monotonic() - started, 1)
        assert producer.process is not None
        result["producer_peak_rss_mb"] = round(peak_rss_mb(producer.process.pid), 1)
        summary = wait_for(lambda: health(health_file).get("backfill"), 60, "the backfill summary")
        requests = sim.requests()
        pages = kline_pages(requests)
        stats = sim.stats()
        result.update({
            "requests": len(requests), "klines_requests": len(pages),
            "weight": sum(int(v) for v in stats["weight_by_minute"]["futures"].values()),
            "peak_weight_per_minute": int(stats["peak_weight_per_minute"]["futures"]), "binance_limit": 2400,
            "budget": 1200, "points_written_last_run": summary["points_written"],
            "progress_lines": len(re.findall(r"backfill: \d+/\d+ pages", producer.text())),
        })
        result["peak_share_of_binance_limit"] = round(result["peak_weight_per_minute"] / 2400, 3)
        # newest first: every series had its newest page after this long
        times = [int(r["t"]) for r in requests if r["path"] in ("/fapi/v1/klines", "/fapi/v1/markPriceKlines")]
        if len(times) >= series_with_pages:
            result["newest_page_of_every_series_after_s"] = round((times[series_with_pages - 1] - times[0]) / 1000, 1)
        if kill_at is not None:
            now = sim.now()
            second = [p for p in pages[len(first_run):] if p[4] < now // timeframe_ms(p[2]) * timeframe_ms(p[2])]
            repeated = [p for p in second if any(p[:3] == o[:3] and p[3] <= o[4] and o[3] <= p[4] for o in first_run)]
            result["resume"] = {"requests_after_restart": len(second), "pages_fetched_again": len(repeated),
                                "series_with_a_page_again": len({p[:3] for p in repeated})}
        with InfluxDB(influxd_config) as client:
            end = last_closed_open(sim.now(), "3m")
            start = end - int(args.days * 86_400_000) + 180_000
            [answer] = client.select([counts_select(ohlcv_measurement("3m"), start, end)])
            counts = [int(s.values[0][1]) for s in answer if s.values]
        result["3m_candles_per_series"] = {"min": min(counts), "max": max(counts),
                                           "expected": int(args.days * 480)}
        producer.terminate()
    finally:
        if producer.process is not None and producer.process.poll() is None:
            producer.process.kill()
        sim.stop()
    return result


def part_backfill(args: argparse.Namespace, workdir: Path, results: dict[str, Any]) -> None:
    with LocalInfluxDB(workdir / "influxd-backfill") as influxd:
        clean = one_backfill(influxd, workdir, args, kill_at=None, name="clean")
        results["backfill"] = clean
        print(f"backfill {args.days:g} days x {args.pairs} pairs: {clean['klines_requests']} candle requests "
              f"({clean['requests']} in all), weight {clean['weight']:,}, peak {clean['peak_weight_per_minute']}/min "
              f"({clean['peak_share_of_binance_limit']:.0%} of 2400), {clean['seconds'] / 60:.1f} min, newest page of "
              f"every series after {clean.get('newest_page_of_every_series_after_s')} s, producer peak RSS "
              f"{clean['producer_peak_rss_mb']:.0f} MB", flush=True)
        killed = one_backfill(influxd, workdir, args, kill_at=0.5, name="killed")
        results["backfill_sigkill_halfway"] = killed
        print(f"SIGKILL at {killed['killed_at']['pages_done']}/{killed['killed_at']['pages_total']} pages, restart: "
              f"{killed['resume']['requests_after_restart']} candle requests after the restart, "
              f"{killed['resume']['pages_fetched_again']} pages fetched again; "
              f"{killed['seconds'] / 60:.1f} min in all", flush=True)


# -- scale ------------------------------------------------------------------------------------------


def gaps_in(client: InfluxDB, pairs: list[str], since: int, until: int) -> dict[str, int]:
    """Missing candles per series in [since, until] (closed candles only)."""
    missing: dict[str, int] = {}
    for timeframe, measurement in [*((tf, ohlcv_measurement(tf)) for tf in SCALE_TIMEFRAMES), ("1h", MARK_MEASUREMENT)]:
        period = timeframe_ms(timeframe)
        first = -(-since // period) * period
        last = last_closed_open(until, timeframe)
        if last < first:
            continue
        expected = (last - first) // period + 1
        [answer] = client.select([counts_select(measurement, first, last + period - 1)])
        counts = {s.tags.get("pair"): int(s.values[0][1]) for s in answer if s.values}
        for pair in pairs:
            if counts.get(pair, 0) != expected:
                missing[f"{pair} {measurement}"] = expected - counts.get(pair, 0)
    return missing


SYNC_ONCE = r"""
import json, resource, sys, time
from freqfeed import config as config_module, sync
cfg = config_module.load(sys.argv[1])
started = time.monotonic()
report = sync.run(cfg, now_ms=int(sys.argv[2]))
print(json.dumps({"seconds": round(time.monotonic() - started, 2), "ok": report.ok,
                  "files_updated": report.files_updated, "candles_added": report.candles_added,
                  "errors": report.errors[:3],
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def sync_cycle(config_path: Path, now_ms: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", SYNC_ONCE, str(config_path), str(now_ms)], capture_output=True,
                          text=True, check=False, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve()
                                                                                             .parents[1] / "files" /
                                                                                             "python")})
    if done.returncode != 0:
        raise SystemExit(f"sync failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def part_scale(args: argparse.Namespace, workdir: Path, results: dict[str, Any]) -> None:
    import yaml

    speed = 60
    hour = 3_600_000
    with LocalInfluxDB(workdir / "influxd-scale") as influxd:
        influx = InfluxDBConfig(url=influxd.url, database="scale")
        with InfluxDB(influx) as client:
            client.query('CREATE DATABASE "scale" WITH DURATION 360d')
        start = (int(time.time() * 1000) // hour) * hour - 3 * hour + 20 * 60_000  # xx:20, three hours ago
        sim = SimulatorProcess(workdir, speed=speed, start=start)
        pairs = pairs_of(sim, args.scale_pairs)

        def config_for(exchange: SimulatorProcess) -> dict[str, Any]:
            return producer_config(influx, exchange, pairs, candles=240, timeframes=SCALE_TIMEFRAMES,
                                   producer={"health_file": str(workdir / "scale-health.json")})

        producer = ProducerProcess(workdir, config_for(sim), name="scale").start()
        try:
            producer.wait_for_log("backfill done", timeout=900)
            assert producer.process is not None
            began = sim.now()
            # at least 70 minutes, ending 5 minutes before an hour's close (where the real-time part goes on)
            stop_at = ((began + 70 * 60_000) // hour + 1) * hour - 5 * 60_000
            while sim.now() < stop_at:
                time.sleep(0.05)
            peak_rss = round(peak_rss_mb(producer.process.pid), 1)
            stats = sim.stats()  # while the producer is connected
            producer.terminate()  # flushes what it holds
            ended = sim.now()  # InfluxDB holds the market up to here
            with InfluxDB(influx) as client:
                missing = gaps_in(client, pairs, began, stop_at - int(1500 * speed))
            text = producer.text()
            scale = {
                "pairs": len(pairs), "timeframes": SCALE_TIMEFRAMES,
                "streams": len(pairs) * (len(SCALE_TIMEFRAMES) + 1),
                "simulated_minutes": round((stop_at - began) / 60_000, 1),
                "ws_connections": stats["ws_connections"],
                "series_with_gaps": len(missing), "missing_candles": sum(missing.values()),
                "gap_examples": dict(list(missing.items())[:5]),
                "stream_disconnects": text.count("stream disconnected"),
                "repairs_over_rest": text.count("fetched them over REST") + text.count("repaired "),
                "repair_examples": [line[24:220] for line in text.splitlines()
                                    if "fetched them over REST" in line or "repaired " in line][:5],
                "rest_errors": [line[24:220] for line in text.splitlines() if "cannot fetch" in line][:5],
                "producer_peak_rss_mb": peak_rss,
                "ws_events_sent": {k: v for k, v in stats["counters"].items() if k.startswith("ws ")},
            }
            results["scale_streaming"] = scale
            print(f"scale: {scale['streams']} streams over {scale['ws_connections']} connections for "
                  f"{scale['simulated_minutes']} simulated minutes: {scale['series_with_gaps']} series with gaps "
                  f"({scale['missing_candles']} candles), {scale['stream_disconnects']} disconnects, producer peak "
                  f"RSS {scale['producer_peak_rss_mb']:.0f} MB", flush=True)
        finally:
            if producer.process is not None and producer.process.poll() is None:
                producer.terminate()
            sim.stop()

        # The sync of every file, on the real clock from here (the exchange's time goes on where the 60x
        # run stopped, the same market): the first sync (files from nothing), then the producer streams at
        # 1x and the sync runs as its timer would, 5 s after a close: 3 minutes before the hour's close, right
        # after it (every file gains a candle: the worst case), 3 minutes later (the 1m and 3m files: the
        # typical cycle), and at once again (nothing new: idle).
        datadir = workdir / "scale-user_data" / "data" / "binance"
        sync_path = workdir / "scale-sync.yml"
        sync_path.write_text(yaml.safe_dump({"influxdb": {"url": influxd.url, "database": "scale"}, "pairs": pairs,
                                             "timeframes": SCALE_TIMEFRAMES, "sync": {"datadir": str(datadir)}}))
        cycles = {"first": sync_cycle(sync_path, ended)}
        clock = SimulatorProcess(workdir, speed=1, start=ended + 1_000, seed=sim.seed)
        producer = ProducerProcess(workdir, config_for(clock), name="scale-1x").start()
        try:
            producer.wait_for_log("backfill done", timeout=300)
            hour_close = stop_at + 5 * 60_000
            for name, close in [("before_the_hour", hour_close - 180_000), ("worst_case_hour_close", hour_close),
                                ("typical_3_minutes_later", hour_close + 180_000)]:
                while clock.now() < close + 5_000:
                    time.sleep(0.05)
                cycles[name] = sync_cycle(sync_path, clock.now())
            cycles["idle"] = sync_cycle(sync_path, clock.now())
            assert producer.process is not None
            results["scale_streaming"]["producer_1x_peak_rss_mb"] = round(peak_rss_mb(producer.process.pid), 1)
        finally:
            producer.terminate()
            clock.stop()
        files = len(list((datadir / "futures").glob("*.feather")))
        results["scale_sync"] = {"files": files, **cycles}
        print(f"scale sync of {files} files: " + ", ".join(
            f"{name} {c['seconds']:.2f} s ({c['files_updated']} files, {c['candles_added']} candles, "
            f"RSS {c['peak_rss_mb']:.0f} MB)" for name, c in cycles.items()), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="backfill,scale")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--scale-pairs", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    results: dict[str, Any] = {"pairs": args.pairs, "days": args.days}
    with tempfile.TemporaryDirectory(prefix="freqfeed-history-bench-") as work:
        workdir = Path(work)
        if "scale" in parts:
            part_scale(args, workdir, results)
        if "backfill" in parts:
            part_backfill(args, workdir, results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        existing = json.loads(args.json.read_text()) if args.json.exists() else {}
        args.json.write_text(json.dumps({**existing, **results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
