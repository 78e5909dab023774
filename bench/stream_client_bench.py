#!/usr/bin/env python3
"""Binance stream clients side by side: freqfeed's own (freqfeed.exchanges.binance.streams, aiohttp) and the
cryptofeed 2.4.1 client it replaced (bench/legacy_cryptofeed_streams.py, the module as it was on main before
the switch), on the same simulator load at the same time.

Both clients run at once, each in its own process (so that each one's CPU time and memory are its own), against
one `freqfeed simulate` process: N pairs x timeframes of klines (every update: the simulator pushes each candle
in progress every 250 ms, and each close) and `@markPrice@1s` on the routed base /market, all received by the
producer's StreamEvents interface. Reported per client, over a measurement window after a warm-up:
- callbacks (closed candles, candles in progress, mark prices) and CPU seconds per 100,000 of them;
- RSS: after importing the client, at the end, and the peak (VmHWM);
- close -> callback latency p50/p99/max in real seconds (the exchange clock at the callback minus the candle's
  end, over the simulator's speed; includes the simulator's publishing, the same for both);
- websocket connections each opened (the simulator counts them per User-Agent).
`--footprint` adds what cryptofeed brings into the venv: the packages only it needs (its dependency closure
minus that of freqfeed's other dependencies), their installed size, and the time `pip install --no-cache-dir`
takes for them on this machine (cryptofeed 2.4.1 compiles from its sdist on Python 3.11); the new client needs
nothing beyond aiohttp, already a dependency.

The cryptofeed client needs cryptofeed 2.4.1 installed (`pip install cryptofeed==2.4.1`; it is no longer in
requirements.lock); without it only the new client is measured.

Usage: .venv/bin/python bench/stream_client_bench.py [--pairs 300] [--timeframes 1m,3m,5m,15m,1h]
       [--speed 10] [--warmup 20] [--seconds 90] [--footprint] [--json bench/results/stream_clients.json]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "files" / "python"))

from freqfeed.exchanges.base import ExchangeClock, MarkPrice, StreamEvents
from freqfeed.schema import Candle
from freqfeed.timeframes import timeframe_ms

CLIENTS = {"freqfeed": "freqfeed.exchanges.binance.streams", "cryptofeed": "legacy_cryptofeed_streams"}


def proc_status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Recorder(StreamEvents):
    def __init__(self, clock: ExchangeClock) -> None:
        self.clock = clock
        self.counting = False
        self.callbacks = {"closed": 0, "in_progress": 0, "mark": 0}
        self.latencies: list[float] = []
        self.connects = self.disconnects = self.malformed = 0

    async def on_candle(self, pair: str, timeframe: str, candle: Candle) -> None:
        if self.counting:
            self.callbacks["closed"] += 1
            end = candle.open_time + timeframe_ms(timeframe)
            self.latencies.append(self.clock.real_seconds(self.clock.now() - end))

    def on_live_candle(self, pair: str, timeframe: str, candle: Candle, event_ms: int) -> None:
        if self.counting:
            self.callbacks["in_progress"] += 1

    async def on_mark_price(self, update: MarkPrice) -> None:
        if self.counting:
            self.callbacks["mark"] += 1

    def on_connect(self, label: str, reconnect: bool) -> None:
        self.connects += 1

    def on_disconnect(self, label: str, reason: str, retry_in: float) -> None:
        self.disconnects += 1

    def on_malformed(self, label: str, error: str, message: str) -> None:
        self.malformed += 1


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def worker(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    from freqfeed import config

    rss_before = proc_status_mb("VmRSS")
    sys.path.insert(0, str(BENCH))
    module = importlib.import_module(CLIENTS[args.worker])
    rss_import = proc_status_mb("VmRSS")
    pairs = args.pair_list.split(",")
    cfg = config.from_mapping({"influxdb": {"url": "http://127.0.0.1:8086", "database": "bench"}, "pairs": pairs,
                               "timeframes": args.timeframes.split(","), "trading_mode": "futures",
                               "exchange": {"rest_url": args.rest_url, "ws_url": args.ws_url}}, "bench.yml", {})
    clock = ExchangeClock()
    async with aiohttp.ClientSession() as session:
        info = await (await session.get(f"{args.rest_url}/fapi/v1/exchangeInfo")).json()
        for _ in range(3):  # the simulator's speed: the clock's rate from samples a second apart
            before = time.monotonic()
            server = (await (await session.get(f"{args.rest_url}/fapi/v1/time")).json())["serverTime"]
            clock.observe(before, time.monotonic(), int(server))
            await asyncio.sleep(0.6)
    events = Recorder(clock)
    streams = module.LiveStreams(cfg, info, events)
    streams.start()
    await asyncio.sleep(args.warmup)
    events.counting = True
    cpu, started = time.process_time(), time.monotonic()
    await asyncio.sleep(args.seconds)
    cpu, elapsed = time.process_time() - cpu, time.monotonic() - started
    events.counting = False
    rss_end, rss_peak = proc_status_mb("VmRSS"), proc_status_mb("VmHWM")
    await streams.stop()
    total = sum(events.callbacks.values())
    lat = events.latencies
    return {"client": args.worker, "window_s": round(elapsed, 1), "callbacks": events.callbacks,
            "callbacks_per_s": round(total / elapsed), "cpu_s": round(cpu, 2),
            "cpu_s_per_100k_messages": round(cpu / total * 100_000, 2) if total else None,
            "cpu_share_of_a_core": round(cpu / elapsed, 3),
            "rss_mb": {"before_import": rss_before, "after_import": rss_import, "end": rss_end, "peak": rss_peak},
            "close_latency_s": {"samples": len(lat), "p50": round(percentile(lat, 0.5), 3),
                                "p99": round(percentile(lat, 0.99), 3), "max": round(max(lat, default=0.0), 3)},
            "connects": events.connects, "disconnects": events.disconnects, "malformed": events.malformed,
            "clock_rate": clock.rate}


# -- install footprint --------------------------------------------------------------------------


def _requires(name: str) -> set[str]:
    try:
        reqs = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return set()
    names = set()
    for req in reqs:
        if "extra ==" in req or "extra==" in req:
            continue
        match = re.match(r"[A-Za-z0-9._-]+", req)
        if match:
            names.add(match.group(0).lower().replace("_", "-"))
    return names


def closure(roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = [r.lower().replace("_", "-") for r in roots]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_requires(name) - seen)
    return seen


def footprint(timed_install: bool) -> dict[str, Any]:
    others = _requires("freqfeed") - {"cryptofeed"}
    only = sorted(closure({"cryptofeed"}) - closure(others))
    sizes, versions = {}, {}
    for name in only:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        versions[name] = dist.version
        sizes[name] = round(sum((dist.locate_file(f).stat().st_size for f in dist.files or []
                                 if dist.locate_file(f).exists()), 0) / 1e6, 2)
    result: dict[str, Any] = {"packages_only_cryptofeed_needs": versions, "installed_mb": sizes,
                              "installed_mb_total": round(sum(sizes.values()), 1),
                              "python": ".".join(map(str, sys.version_info[:3])),
                              "freqfeed_client_adds": "nothing (aiohttp is already a dependency)"}
    if timed_install and versions:
        with tempfile.TemporaryDirectory() as target:
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir", "--no-deps",
                                   "--target", target, *(f"{n}=={v}" for n, v in versions.items())],
                                  capture_output=True, text=True, check=False)
            result["pip_install_s"] = round(time.monotonic() - started, 1)
            result["pip_install_ok"] = done.returncode == 0
            if done.returncode:
                result["pip_install_error"] = done.stderr[-500:]
    return result


# -- the run ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--timeframes", default="1m,3m,5m,15m,1h")
    parser.add_argument("--speed", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--clients", default="freqfeed,cryptofeed")
    parser.add_argument("--footprint", action="store_true", help="also time pip installing cryptofeed's packages")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", choices=sorted(CLIENTS), help=argparse.SUPPRESS)
    parser.add_argument("--rest-url", help=argparse.SUPPRESS)
    parser.add_argument("--ws-url", help=argparse.SUPPRESS)
    parser.add_argument("--pair-list", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run(worker(args))))
        return 0

    from tests.processes import SimulatorProcess

    clients = args.clients.split(",")
    if "cryptofeed" in clients and importlib.util.find_spec("cryptofeed") is None:
        print("cryptofeed is not installed: measuring freqfeed's client only", file=sys.stderr)
        clients.remove("cryptofeed")
    with tempfile.TemporaryDirectory() as workdir:
        sim = SimulatorProcess(Path(workdir), speed=args.speed)
        try:
            pairs = [f"{symbol[:-4]}/USDT:USDT" for symbol in list(sim.market.instruments)[:args.pairs]]
            common = ["--rest-url", sim.url, "--ws-url", f"ws://127.0.0.1:{sim.port}/market",
                      "--pair-list", ",".join(pairs), "--timeframes", args.timeframes,
                      "--warmup", str(args.warmup), "--seconds", str(args.seconds)]
            workers = {c: subprocess.Popen([sys.executable, __file__, "--worker", c, *common], stdout=subprocess.PIPE,
                                           text=True) for c in clients}
            results = {}
            for client, process in workers.items():
                out, _ = process.communicate(timeout=args.warmup + args.seconds + 120)
                if process.returncode:
                    raise SystemExit(f"the {client} worker failed ({process.returncode})")
                results[client] = json.loads(out.strip().splitlines()[-1])
            by_agent = sim.stats().get("by_client", {})
            for client, result in results.items():
                agent = "aiohttp" if client == "freqfeed" else "websockets"
                result["ws_connections"] = sum(int(s.get("ws_connections", 0)) for a, s in by_agent.items()
                                               if agent in a)
        finally:
            sim.stop()
    report: dict[str, Any] = {"pairs": args.pairs, "timeframes": args.timeframes.split(","), "mark_price": "@1s",
                              "speed": args.speed, "warmup_s": args.warmup, "clients": results}
    if args.footprint:
        report["footprint"] = footprint(timed_install=True)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
