#!/usr/bin/env python3
"""Gateway at fleet scale (issue 15): start-to-ready, CPU, RSS and klines latency at 300 pairs x 5 timeframes.

A real influxd filled directly (for speed) with what the producer would have written, computed from the
simulator's deterministic market: 300 pairs x 1m/3m/5m/15m/1h candles with every kline field, 1h mark
candles and funding rates, once with the producer's default depth (1500 candles per series) and once with
a 35-day history (--history-days); while the gateway runs, this process also writes the candles in
progress every second and each candle as it closes (the producer's streams, without the producer). The
simulator (real-time clock) gives the gateway its exchangeInfo and clock, and counts what reaches it.

For each depth, `freqfeed serve` with DEFAULT settings (only InfluxDB, pairs, timeframes and the
simulator's URLs configured) for 300 pairs x 1m/3m/5m/15m/1h and, beside it, 10 pairs x 1m/3m/15m:
  - time from process start to READY=1 (systemd's protocol, over a NOTIFY_SOCKET this process binds)
    and the gateway's own load time; CPU seconds and RSS at ready, peak RSS (VmHWM), RSS after the load runs;
  (the 35-day database holds at least 1500 candles of every series, as the producer keeps)
  - C = 1, 10, 50 concurrent clients sending `GET /fapi/v1/klines?symbol=..&interval=..&limit=L` (random
    pair and timeframe, no startTime: what a bot asks at every close; L = 499 and 1500) back to back for
    --seconds each: p50, p99, req/s. Every request must be answered locally: the bench fails otherwise.

Usage: .venv/bin/python bench/gateway_scale_bench.py [--seconds 5] [--pairs 300] [--history-days 35]
       [--history-pairs 300] [--json bench/results/gateway-scale.json] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "files" / "python"))

import gateway_bench

from freqfeed.config import InfluxDBConfig
from freqfeed.exchanges.binance import wire
from freqfeed.influx import InfluxDB
from freqfeed.localinflux import LocalInfluxDB
from freqfeed.schema import (
    EXCHANGE,
    LIVE_MARK,
    LIVE_TRADE,
    MARK_MEASUREMENT,
    ohlcv_measurement,
)
from freqfeed.simulator.market import Candles, Market
from freqfeed.timeframes import last_closed_open, timeframe_ms
from tests.processes import (
    GatewayProcess,
    SimulatorProcess,
    client_stats,
    gateway_config,
)

SCALE_TIMEFRAMES = ["1m", "3m", "5m", "15m", "1h"]
SMALL_TIMEFRAMES = ["1m", "3m", "15m"]
SMALL_PAIRS = 10
CLIENTS = (1, 10, 50)
LIMITS = (499, 1500)
DEFAULT_DEPTH = 1500  # the producer's default backfill.candles
DAY = 86_400_000


# -- filling InfluxDB --------------------------------------------------------------------------------------


def _key(measurement: str, pair: str, extra: str = "") -> str:
    return f"{measurement},exchange={EXCHANGE},pair={pair}{extra}"


def candle_lines(market: Market, pair: str, timeframe: str, candles: Candles, *, mark: bool) -> list[str]:
    inst = market.instrument(pair.split(":", maxsplit=1)[0].replace("/", ""))
    rows = wire.kline_rows_from_ticks(candles.open_time, candles.open, candles.high, candles.low, candles.close,
                                      candles.volume, candles.trades, period_ms=timeframe_ms(timeframe),
                                      price_decimals=inst.price_decimals, quantity_decimals=inst.quantity_decimals,
                                      mark=mark)
    if mark:
        key = _key(MARK_MEASUREMENT, pair)
        return [f"{key} open={r[1]},high={r[2]},low={r[3]},close={r[4]} {r[0]}" for r in rows]
    key = _key(ohlcv_measurement(timeframe), pair)
    return [f"{key} open={r[1]},high={r[2]},low={r[3]},close={r[4]},volume={r[5]},quote_volume={r[7]},trades={r[8]}i,"
            f"taker_buy_volume={r[9]},taker_buy_quote_volume={r[10]} {r[0]}" for r in rows]


def live_lines(market: Market, pair: str, timeframe: str, now: int, *, mark: bool) -> list[str]:
    symbol = pair.split(":", maxsplit=1)[0].replace("/", "")
    partial = market.partial_candle(symbol, timeframe, now, mark=mark)
    [line] = candle_lines(market, pair, timeframe, partial, mark=mark)
    fields, _, open_time = line.partition(" ")[2].rpartition(" ")
    price = LIVE_MARK if mark else LIVE_TRADE
    extra = f",next_funding_time={market.next_funding_time(now)}i" if mark else ""
    return [(f"live_candle,exchange={EXCHANGE},pair={pair},price={price},timeframe={timeframe} "
             f"{fields},event_time={now}i{extra} {open_time}")]


def funding_lines(market: Market, pair: str, since: int, until: int) -> list[str]:
    symbol = pair.split(":", maxsplit=1)[0].replace("/", "")
    times = market.funding_times(since, until)
    rates = market.funding_rates(symbol, times)
    inst = market.instrument(symbol)
    lines = []
    for t, rate in zip(times, rates, strict=True):
        close = market.minute_close(symbol, int(t) // 60_000 - 1)
        lines.append(f"{_key('funding_rate', pair)} rate={int(rate) / 1e8!r},"
                     f"mark_price={close / 10 ** inst.price_decimals!r} {int(t)}")
    return lines


def fill(client: InfluxDB, market: Market, pairs: list[str], timeframes: list[str], now: int, depth_ms: int | None,
         depth: int) -> int:
    """Closed candles of every series up to `now` (`depth` of each, or `depth_ms` back), mark and funding."""
    written = 0
    batch: list[str] = []

    def flush(force: bool = False) -> None:
        nonlocal batch, written
        if batch and (force or len(batch) >= 100_000):
            client.write(batch)
            written += len(batch)
            batch = []

    series = [(tf, False) for tf in timeframes] + [("1h", True)]
    for tf, mark in series:
        period = timeframe_ms(tf)
        count = max(depth_ms // period, depth) if depth_ms else depth  # the producer keeps at least `depth`
        last = last_closed_open(now, tf)
        for pair in pairs:
            symbol = pair.split(":")[0].replace("/", "")
            for start in range(0, count, 20_000):  # bounded memory for 35 days of 1m
                n = min(20_000, count - start)
                first = last - (count - 1 - start) * period
                batch += candle_lines(market, pair, tf, market.candles(symbol, tf, first, n, mark=mark), mark=mark)
                flush()
    since = now - (depth_ms or DEFAULT_DEPTH * 3_600_000)
    for pair in pairs:
        batch += funding_lines(market, pair, since, now)
        flush()
    flush(force=True)
    return written


def streams_process(influx: InfluxDBConfig, seed: int, pairs: list[str], timeframes: list[str],
                    filled: int) -> multiprocessing.Process:
    """Streams in a process of its own: in this one, the load's 50 clients would starve it of the GIL and the
    candles in progress would go stale (the gateway then rightly forwards)."""
    def main() -> None:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        streams = Streams(InfluxDB(influx), Market(seed), pairs, timeframes, filled)
        streams.run()

    process = multiprocessing.get_context("fork").Process(target=main, daemon=True)
    process.start()
    return process


class Streams:
    """The producer's streams, without the producer: every second the candles in progress of every series,
    and each candle as it closes."""

    def __init__(self, client: InfluxDB, market: Market, pairs: list[str], timeframes: list[str], filled: int) -> None:
        self.client, self.market, self.pairs, self.timeframes = client, market, pairs, timeframes
        self.stop = threading.Event()
        # what the fill wrote: the candles that closed while it ran come first, or the caches would see a hole
        self.last_closed = {tf: last_closed_open(filled, tf) for tf in [*timeframes, "1h"]}
        self.step()

    def closed_since(self, pair: str, tf: str, closed: int, *, mark: bool) -> list[str]:
        period = timeframe_ms(tf)
        count = (closed - self.last_closed[tf]) // period
        if count <= 0:
            return []
        symbol = pair.split(":", maxsplit=1)[0].replace("/", "")
        candles = self.market.candles(symbol, tf, self.last_closed[tf] + period, count, mark=mark)
        return candle_lines(self.market, pair, tf, candles, mark=mark)

    def run(self) -> None:
        while not self.stop.wait(1.0 - time.time() % 1.0):
            self.step()

    def step(self) -> None:
        now = int(time.time() * 1000)
        lines: list[str] = []
        for tf in self.timeframes:
            closed = last_closed_open(now, tf)
            for pair in self.pairs:
                lines += live_lines(self.market, pair, tf, now, mark=False)
                if tf != "1h":  # the 1h trade and mark candles below
                    lines += self.closed_since(pair, tf, closed, mark=False)
            if tf != "1h":
                self.last_closed[tf] = closed
        closed = last_closed_open(now, "1h")
        for pair in self.pairs:
            lines += live_lines(self.market, pair, "1h", now, mark=True)
            if "1h" in self.timeframes:
                lines += self.closed_since(pair, "1h", closed, mark=False)
            lines += self.closed_since(pair, "1h", closed, mark=True)
        self.last_closed["1h"] = closed
        try:
            self.client.write(lines)
        except Exception as exc:
            print(f"streams: {exc}", file=sys.stderr)


# -- the gateway process -----------------------------------------------------------------------------------


def proc_stats(pid: int) -> dict[str, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    status = {line.split(":")[0]: line.split(":")[1].strip() for line in
              Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line}
    return {"cpu_s": (int(fields[11]) + int(fields[12])) / ticks,
            "rss_mb": int(status["VmRSS"].split()[0]) / 1024, "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024}


def start_gateway(work: Path, influx: InfluxDBConfig, sim: SimulatorProcess, pairs: list[str], timeframes: list[str],
                  name: str, state_dir: Path) -> tuple[GatewayProcess, dict[str, Any]]:
    notify_dir = tempfile.mkdtemp(prefix="ffb-", dir="/tmp")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(f"{notify_dir}/n")
    config = gateway_config(influx, sim, pairs, timeframes)  # DEFAULT settings: nothing but where things are
    config["log_level"] = "INFO"
    gateway = GatewayProcess(work, config, name=name)
    started = time.monotonic()
    # systemd's StateDirectory= sets STATE_DIRECTORY: the unit's default, not a setting
    gateway.start(wait=False, env={"NOTIFY_SOCKET": f"{notify_dir}/n", "STATE_DIRECTORY": str(state_dir)})
    assert gateway.process is not None
    sock.settimeout(600)
    lines: list[str] = []
    while "READY=1" not in lines:
        lines += sock.recv(65536).decode().splitlines()
    ready = time.monotonic() - started
    sock.close()
    shutil.rmtree(notify_dir)
    stats = proc_stats(gateway.process.pid)
    state = gateway.status()["state"]
    while gateway.status()["state"] != "ready":  # degraded at load_timeout: the load goes on
        time.sleep(0.5)
    status = gateway.status()
    loaded = proc_stats(gateway.process.pid)
    return gateway, {"ready_s": round(ready, 2), "state_at_ready": state, "load_s": status["load"]["seconds"],
                     "candles_loaded": status["load"]["candles"], "pieces": status["load"]["pieces_total"],
                     "restored_series": status["load"]["restored_series"],
                     "cpu_s_at_ready": stats["cpu_s"], "rss_mb_at_ready": round(stats["rss_mb"], 1),
                     "cpu_s_loaded": loaded["cpu_s"], "peak_rss_mb_loaded": round(loaded["peak_rss_mb"], 1),
                     "status_line": [line for line in lines if line.startswith("STATUS=")][-1:]}


async def load(url: str, symbols: list[str], timeframes: list[str], limit: int, clients: int,
               seconds: float) -> dict[str, float]:
    """gateway_bench's Python client (aiohttp, one process), every answer checked for `limit` rows."""
    result = await gateway_bench.load(url, symbols, limit, clients, seconds, timeframes=timeframes, rows=limit)
    return {k: round(v, 2) if k.endswith("_ms") else round(v, 1) if k == "rps" else v for k, v in result.items()}


WRK_SCRIPT = Path(__file__).with_name("wrk_klines.lua")


def wrk_load(url: str, symbols: list[str], timeframes: list[str], limit: int, clients: int,
             seconds: float) -> dict[str, float]:
    """The same load from wrk (C, one thread, `clients` connections): the bots' latency without a Python
    client's own queueing on the shared cores (50 coroutines in one event loop parse 2,000 answers a second)."""
    wrk = shutil.which("wrk")
    assert wrk, "wrk is not installed (scripts/setup.sh installs Debian's wrk)"
    done = subprocess.run([wrk, "-t1", f"-c{clients}", f"-d{seconds:g}s", "-s", str(WRK_SCRIPT), url, "--", str(limit),
                           ",".join(symbols), ",".join(timeframes)], capture_output=True, text=True, check=True,
                          timeout=seconds + 60)
    [line] = [line for line in done.stdout.splitlines() if line.startswith("WRK_JSON ")]
    result = json.loads(line.removeprefix("WRK_JSON "))
    return {"requests": result["requests"], "errors": result["errors"],
            "rps": round(result["requests"] / result["seconds"], 1), "p50_ms": round(result["p50_ms"], 2),
            "p99_ms": round(result["p99_ms"], 2)}


def measure(gateway: GatewayProcess, pairs: list[str], timeframes: list[str], seconds: float,
            label: str, client: str = "wrk") -> list[dict[str, Any]]:
    symbols = [p.split(":")[0].replace("/", "") for p in pairs]
    cases = []
    for limit in LIMITS:
        for clients in CLIENTS:
            before = gateway.status()["by_endpoint"].get("klines", {})
            run = wrk_load if client == "wrk" else lambda *a: asyncio.run(load(*a))
            case: dict[str, Any] = run(gateway.url, symbols, timeframes, limit, clients, seconds)
            case["client"] = client
            after = gateway.status()["by_endpoint"].get("klines", {})
            case.update({"limit": limit, "clients": clients,
                         "local": after.get("local", 0) - before.get("local", 0),
                         "forwarded": after.get("forwarded", 0) - before.get("forwarded", 0),
                         "load_avg_1m": round(os.getloadavg()[0], 2)})
            cases.append(case)
            print(f"  {label:12} {client:7} limit {limit:4} {clients:3} clients: p50 {case['p50_ms']:6.2f} ms  p99 "
                  f"{case['p99_ms']:6.2f} ms  {case['rps']:7.0f} req/s  ({case['requests']} requests, "
                  f"{case['local']} local, {case['forwarded']} forwarded, {case['errors']} errors, load "
                  f"{case['load_avg_1m']})", flush=True)
            case["all_local"] = case["forwarded"] == 0 and case["errors"] == 0 and case["local"] >= case["requests"]
            if not case["all_local"]:
                case["forward_reasons"] = gateway.status()["forward_reasons"]
                print(f"  NOT ALL LOCAL: {case['forward_reasons']}", flush=True)
    return cases


def floor_process(bodies: dict[str, bytes]) -> tuple[multiprocessing.Process, str]:
    """The floor: a bare aiohttp server that answers every klines request with a constant body of the same size
    (a real answer of the gateway's per limit), nothing looked up, nothing counted: what aiohttp and the
    loopback cost on this machine, the least any aiohttp gateway could do."""
    from aiohttp import web

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    async def klines(request: web.Request) -> web.Response:
        return web.Response(body=bodies[request.query.get("limit", "499")], content_type="application/json")

    def main() -> None:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        app = web.Application()
        app.router.add_get("/fapi/v1/klines", klines)
        web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=False)

    process = multiprocessing.get_context("fork").Process(target=main, daemon=True)
    process.start()
    sock.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/fapi/v1/klines", timeout=2)
            return process, url
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def floor_cases(gateway: GatewayProcess, pairs: list[str], timeframes: list[str],
                seconds: float) -> list[dict[str, Any]]:
    """wrk against the floor server at every limit and client count, beside the gateway's cases."""
    symbol = pairs[0].split(":")[0].replace("/", "")
    bodies = {str(limit): requests.get(f"{gateway.url}/fapi/v1/klines", params={"symbol": symbol, "interval": "1m",
                                                                                  "limit": limit}, timeout=30).content
              for limit in LIMITS}
    process, url = floor_process(bodies)
    cases = []
    try:
        for limit in LIMITS:
            for clients in CLIENTS:
                case: dict[str, Any] = wrk_load(url, [symbol], timeframes, limit, clients, seconds)
                case.update({"client": "wrk", "server": "floor", "limit": limit, "clients": clients,
                             "body_bytes": len(bodies[str(limit)]), "load_avg_1m": round(os.getloadavg()[0], 2)})
                print(f"  {'floor':12} wrk     limit {limit:4} {clients:3} clients: p50 {case['p50_ms']:6.2f} ms  p99 "
                      f"{case['p99_ms']:6.2f} ms  {case['rps']:7.0f} req/s  ({len(bodies[str(limit)]):,} bytes an "
                      f"answer, load {case['load_avg_1m']})", flush=True)
                cases.append(case)
    finally:
        process.terminate()
        process.join(5)
    return cases


def profile(gateway: GatewayProcess, out: Path, pairs: list[str], timeframes: list[str], seconds: float) -> list[str]:
    """py-spy's samples of the gateway under wrk's load at 50 clients, limit 499 and 1500 (raw folded stacks:
    `py-spy` from requirements-dev.txt; read them with bench/profile_summary.py or any flame-graph tool)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists() or gateway.process is None:
        return []
    symbols = [p.split(":")[0].replace("/", "") for p in pairs]
    written = []
    for limit in LIMITS:
        target = out / f"gateway-scale-profile-{limit}.txt"
        spy = subprocess.Popen([py_spy, "record", "--pid", str(gateway.process.pid), "--format", "raw", "--duration",
                                str(int(seconds)), "--output", str(target), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wrk_load(gateway.url, symbols, timeframes, limit, 50, seconds)
        spy.wait(timeout=seconds + 30)
        written.append(str(target))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--history-days", type=float, default=35.0)
    parser.add_argument("--history-pairs", type=int, default=300, help="pairs of the 35-day database")
    parser.add_argument("--parts", default="default,history")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--clients", default="wrk,aiohttp",
                        help="load generators, measured one after the other: wrk (C) and/or aiohttp (Python)")
    parser.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                        help="measure a bare aiohttp server with constant answers of the same size beside each")
    parser.add_argument("--profile", type=Path, help="a py-spy profile of limit 1500 at 50 clients (300 pairs)")
    args = parser.parse_args()
    results: dict[str, Any] = {"seconds": args.seconds, "cpus": os.cpu_count(), "runs": []}
    with LocalInfluxDB() as influxd, tempfile.TemporaryDirectory(prefix="freqfeed-gateway-scale-") as tmp:
        work = Path(tmp)
        sim = SimulatorProcess(work, speed=1, seed=3)
        sim.fault("unlimited", 7200)  # nothing should reach it; if something does, count it rather than 429 it
        market = Market(3)
        symbols = list(market.instruments)[: args.pairs]
        pairs = [f"{s[:-4]}/USDT:USDT" for s in symbols]
        try:
            for part in args.parts.split(","):
                database = f"scale_{part}"
                requests.post(f"{influxd.url}/query", data={"q": f'CREATE DATABASE "{database}" WITH DURATION 360d'},
                              timeout=10)
                influx = InfluxDBConfig(url=influxd.url, database=database)
                client = InfluxDB(influx)
                fill_pairs = pairs if part == "default" else pairs[: args.history_pairs]
                depth_ms = int(args.history_days * DAY) if part == "history" else None
                started = time.monotonic()
                now = int(time.time() * 1000)
                points = fill(client, market, fill_pairs, SCALE_TIMEFRAMES, now, depth_ms, DEFAULT_DEPTH)
                filled = time.monotonic() - started
                depth_text = f"{args.history_days:g} days" if depth_ms else "1500 candles"
                print(f"{part}: {points} points written in {filled:.0f}s ({len(fill_pairs)} pairs, {depth_text})",
                      flush=True)
                streams = streams_process(influx, 3, fill_pairs, SCALE_TIMEFRAMES, now)
                time.sleep(5)  # the candles that closed during the fill and the first candles in progress are in
                run: dict[str, Any] = {"part": part, "points": points, "fill_s": round(filled, 1),
                                       "history": f"{args.history_days:g} days" if depth_ms else "1500 candles",
                                       "configs": []}
                for label, config_pairs, timeframes in ((f"{len(fill_pairs)}x{len(SCALE_TIMEFRAMES)}", fill_pairs,
                                                         SCALE_TIMEFRAMES),
                                                        (f"{SMALL_PAIRS}x{len(SMALL_TIMEFRAMES)}",
                                                         fill_pairs[:SMALL_PAIRS], SMALL_TIMEFRAMES)):
                    upstream_before = client_stats(sim, "freqfeed-gateway/")["requests"]
                    state_dir = work / f"state-{part}-{label}"
                    starts = {}
                    for kind in ("cold", "restart"):  # the first start (no snapshot), then a restart
                        gateway, start = start_gateway(work, influx, sim, config_pairs, timeframes,
                                                       f"gw-{part}-{label}-{kind}", state_dir)
                        starts[kind] = start
                        print(f"  {label:12} {kind:7}: READY=1 after {start['ready_s']:.2f}s ({start['state_at_ready']}"
                              f"; loaded in {start['load_s']}s, {start['candles_loaded']} candles, "
                              f"{start['restored_series']} series from the snapshot, {start['pieces']} pieces from "
                              f"InfluxDB), CPU {start['cpu_s_at_ready']:.1f}s, RSS {start['rss_mb_at_ready']:.0f} "
                              f"MB (peak {start['peak_rss_mb_loaded']:.0f} MB)", flush=True)
                        if kind == "cold":
                            while not (state_dir / "gateway-cache.bin").exists():
                                time.sleep(0.2)
                            gateway.terminate()
                    start = {"cold": starts["cold"], **starts["restart"]}
                    try:
                        cases = [case for client in args.clients.split(",")
                                 for case in measure(gateway, config_pairs, timeframes, args.seconds, label, client)]
                        assert gateway.process is not None
                        after = proc_stats(gateway.process.pid)
                        if args.floor:
                            start["floor"] = floor_cases(gateway, config_pairs, timeframes, args.seconds)
                        if args.profile and part == "default" and label.startswith(str(len(fill_pairs))):
                            args.profile.mkdir(parents=True, exist_ok=True)
                            start["profile"] = profile(gateway, args.profile, config_pairs, timeframes, args.seconds)
                        status = gateway.status()
                    finally:
                        gateway.terminate()
                    upstream_after = client_stats(sim, "freqfeed-gateway/")["requests"]
                    upstream = {k: upstream_after.get(k, 0) - upstream_before.get(k, 0)
                                for k in ("/fapi/v1/klines", "/fapi/v1/markPriceKlines", "/fapi/v1/fundingRate")}
                    run["configs"].append({"label": label, "pairs": len(config_pairs), "timeframes": timeframes,
                                           **start, "cpu_s_after": after["cpu_s"],
                                           "rss_mb_after": round(after["rss_mb"], 1),
                                           "peak_rss_mb": round(after["peak_rss_mb"], 1),
                                           "forwarded_total": status["forwarded"],
                                           "upstream_market_data": upstream, "cases": cases})
                    print(f"  {label:12} RSS after the runs {after['rss_mb']:.0f} MB, peak {after['peak_rss_mb']:.0f} "
                          f"MB, CPU {after['cpu_s']:.1f}s, forwarded {status['forwarded']}, upstream {upstream}",
                          flush=True)
                streams.terminate()
                streams.join(5)
                client.close()
                results["runs"].append(run)
                requests.post(f"{influxd.url}/query", data={"q": f'DROP DATABASE "{database}"'}, timeout=120)
        finally:
            sim.stop()
    if args.json and args.json.exists():  # a run of some parts replaces those parts only
        earlier = json.loads(args.json.read_text())
        done = {run["part"] for run in results["runs"]}
        results["runs"] = [run for run in earlier.get("runs", []) if run["part"] not in done] + results["runs"]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    missed = [(run["part"], config["label"], case["limit"], case["clients"]) for run in results["runs"]
              for config in run["configs"] for case in config["cases"] if not case["all_local"]]
    assert not missed, f"requests not all answered locally in: {missed}"
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
