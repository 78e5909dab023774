#!/usr/bin/env python3
"""Fault drills in the running reduced lab (issue 17 parts 5 and 6): one fault at a time while a freqtrade bot
trades through host120's gateway; each drill waits for its alert to fire in the lab's Prometheus, recovers,
waits for the alert to resolve and compares InfluxDB (and after the disk drill, host120's feather files) with
the simulator's candles: 0 missing, 0 different.

  lab_drills.py [--only NAME,...] [--json FILE]      (scripts/lab.py test runs it after the bots' checks)

The lab (inventory/lab): host73 and host120 both run a producer (host120 is also a feeder), the simulator on
127.0.0.1:18290, influxd on 127.0.0.1:18286, Prometheus on 127.0.0.1:18295 with the shipped rules, `for:` cut to
30s (scripts/lab_prometheus.py). The drills, in order:

  second-producer  host73's producer stopped across a close: FreqfeedProducerDown{host73}; the gateway never
                   falls back (0 close-wait fallbacks, 0 candle forwards); back up, it fetches only what it missed
  no-producer      both producers stopped across a 3m close: FreqfeedNoProducerUp; the gateway forwards meanwhile;
                   back up, the start-up backfill repairs the gap
  influxdb         influxd stopped 75s: FreqfeedGatewayInfluxDBUnreachable, FreqfeedInfluxDBWritesFailing; the
                   producers' buffers are written once it is back
  silent           the simulator's streams silent across closes: FreqfeedStreamSilent; filled over REST
  rate-limit       429s, then a 418 ban (each after an exchange outage across a close, so the producers must ask
                   REST): FreqfeedExchangeRateLimited, FreqfeedExchangeBanned
  feeder-down      host120's container stopped, then started (a reboot long enough to be told):
                   FreqfeedGatewayDown, FreqfeedNodeExporterDown, FreqfeedProducerDown{host120}
  disk-full        host120's data disk (a 64 MB tmpfs in the lab) filled, the sync run: FreqfeedSyncFailing, the
                   files intact and no partial file visible; space freed, the next sync catches up
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lab_prometheus
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "files" / "python"))

from freqfeed.config import InfluxDBConfig, exchange_symbol
from freqfeed.reader import Reader

LAB = REPO / ".lab"
BIN = REPO / ".venv" / "bin"
PROMETHEUS = "http://127.0.0.1:18295"
SIM = "http://127.0.0.1:18290"
INFLUX_PORT = 18286
FEEDER = "host120"
PRODUCERS = ("host73", "host120")
PRODUCER_UNIT = "cryptofeed-influxdb.service"
TIMEFRAMES = {"1m": 60, "3m": 180, "15m": 900, "1h": 3600}
DISK_MB = 64


def container(host: str) -> str:
    return f"freqfeed-lab-{host}"


def say(text: str) -> None:
    print(f"    [{time.strftime('%H:%M:%S')}] {text}", flush=True)


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise DrillError(f"{' '.join(command)} failed ({done.returncode}): {(done.stderr or done.stdout)[-400:]}")
    return done


def in_host(host: str, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("podman", "exec", container(host), *command, check=check)


class DrillError(RuntimeError):
    """A drill's expectation failed (what, and what was seen)."""


# ---------------------------------------------------------------------------------------------
# alerts, watched all along


@dataclass
class AlertWatcher:
    """Polls Prometheus' active alerts every second and records when each (alertname, host) started firing
    and when it stopped being active: the drills' delays come from here."""

    base: str
    firing: dict[tuple[str, str], float] = field(default_factory=dict)  # since when, while it fires
    fired: list[tuple[float, str, str]] = field(default_factory=list)  # every start of firing: time, alert, host
    active: set[tuple[str, str]] = field(default_factory=set)
    firing_now: set[tuple[str, str]] = field(default_factory=set)
    cleared: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                alerts = lab_prometheus.active_alerts(self.base)
            except (requests.RequestException, RuntimeError):
                time.sleep(1)
                continue
            now = time.time()
            seen = {(a["labels"].get("alertname", ""), a["labels"].get("host", "")): a["state"] for a in alerts}
            with self.lock:
                for key, state in seen.items():
                    if state == "firing" and key not in self.firing:
                        self.firing[key] = now
                        self.fired.append((now, *key))
                for key in self.active - set(seen):
                    self.cleared[key] = now
                    self.firing.pop(key, None)  # the next time it fires is a new firing
                self.active = set(seen)
                self.firing_now = {key for key, state in seen.items() if state == "firing"}
            time.sleep(1)

    def wait_firing(self, name: str, host: str, since: float, timeout: float) -> float:
        """Seconds from `since` until the alert fired (raises after timeout)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                at = self.firing.get((name, host))
            if at is not None and at >= since:
                return at - since
            time.sleep(0.5)
        raise DrillError(f"{name}{{host={host!r}}} did not fire within {timeout:.0f}s")

    def wait_resolved(self, name: str, host: str, since: float, timeout: float) -> float:
        """Seconds from `since` until the alert was no longer active (pending or firing)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                gone = (name, host) not in self.active
                at = self.cleared.get((name, host), time.time())
            if gone:
                return max(0.0, at - since)
            time.sleep(0.5)
        raise DrillError(f"{name}{{host={host!r}}} still active {timeout:.0f}s after the recovery")

    def wait_firing_any(self, name: str, since: float, timeout: float) -> tuple[float, str]:
        """Seconds from `since` until the alert fired for some host, and which."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                fired = sorted((at, host) for (alert, host), at in self.firing.items() if alert == name and at >= since)
            if fired:
                return fired[0][0] - since, fired[0][1]
            time.sleep(0.5)
        raise DrillError(f"{name} did not fire for any host within {timeout:.0f}s")

    def wait_resolved_all(self, name: str, since: float, timeout: float) -> float:
        """Seconds from `since` until no host had the alert active any more."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                left = [key for key in self.active if key[0] == name]
                cleared = [at for (alert, _), at in self.cleared.items() if alert == name]
            if not left:
                return max([0.0, *(at - since for at in cleared)])
            time.sleep(0.5)
        raise DrillError(f"{name} still active {timeout:.0f}s after the recovery")

    def fired_between(self, start: float, end: float) -> list[str]:
        with self.lock:
            fired = [(name, host) for at, name, host in self.fired if start <= at <= end]
        return sorted({f"{name}{{{host}}}" if host else name for name, host in fired})

    def now_firing(self) -> list[tuple[str, str]]:
        with self.lock:
            return sorted(self.firing_now)


# ---------------------------------------------------------------------------------------------
# the truth: InfluxDB and the files against the simulator


@functools.cache
def lab_settings(host: str = FEEDER) -> dict[str, Any]:
    """A lab host's variables from the inventory (read once per host)."""
    return dict(lab_prometheus.host_vars(REPO / "inventory" / "lab")[host][1])


def influx_reader() -> Reader:
    password = (LAB / "influxdb-password").read_text().strip()
    return Reader(InfluxDBConfig(url=f"http://127.0.0.1:{INFLUX_PORT}", database="freqfeed", username="freqfeed",
                                 password=password))


def exchange_candles(pair: str, timeframe: str, start_ms: int, end_ms: int) -> dict[int, list[float]]:
    """The exchange's candles (the simulator's REST klines), asked as a polite client: the smallest limit that
    covers the window (weight 1 below 100 candles) and a 429's or 418's Retry-After honoured, since the drills'
    own checks share the lab's one IP and its weight with the producers."""
    limit = min(1500, (end_ms - start_ms) // (TIMEFRAMES[timeframe] * 1000) + 1)
    params = {"symbol": exchange_symbol(pair), "interval": timeframe, "startTime": start_ms, "endTime": end_ms,
              "limit": max(1, limit)}
    for _ in range(5):
        answer = requests.get(f"{SIM}/fapi/v1/klines", params=params, headers={"User-Agent": "freqfeed-lab-drills"},
                              timeout=10)
        if answer.status_code not in (418, 429):
            break
        time.sleep(float(answer.headers.get("Retry-After", "5")))
    answer.raise_for_status()
    return {int(row[0]): [float(x) for x in row[1:6]] for row in answer.json()}


def closed_window(start: float, timeframe: str, until: float | None = None) -> tuple[int, int]:
    """Opens of the candles that closed between `start` (s) and `until` (default now), as ms."""
    period = TIMEFRAMES[timeframe]
    first = (int(start) // period) * period
    last = (int(time.time() if until is None else until) // period) * period - period
    return first * 1000, last * 1000


def compare(found: dict[int, list[float]], truth: dict[int, list[float]], first: int, last: int) -> tuple[int, int]:
    """(missing, different) among the exchange's candles with opens in [first, last]."""
    wanted = [t for t in truth if first <= t <= last]
    missing = sum(1 for t in wanted if t not in found)
    different = sum(1 for t in wanted if t in found and any(abs(a - b) > 1e-9 * max(1.0, abs(b))
                                                           for a, b in zip(found[t], truth[t], strict=True)))
    return missing, different


def influx_gaps(start: float, pairs: list[str]) -> tuple[int, int, int]:
    """(checked, missing, different) of every closed candle since `start` in InfluxDB, against the exchange."""
    checked = missing = different = 0
    with influx_reader() as reader:
        for pair in pairs:
            for timeframe in TIMEFRAMES:
                first, last = closed_window(start, timeframe)
                if last < first:
                    continue
                frame = reader.ohlcv(pair, timeframe, since=first)
                found = {int(row.date.timestamp() * 1000): [row.open, row.high, row.low, row.close, row.volume]
                         for row in frame.itertuples()}
                truth = exchange_candles(pair, timeframe, first, last)
                m, d = compare(found, truth, first, last)
                checked += len(truth)
                missing += m
                different += d
    return checked, missing, different


def wait_complete(start: float, pairs: list[str], timeout: float = 150) -> dict[str, int]:
    """InfluxDB complete and equal since `start` (repairs take a moment after a recovery), or raise."""
    deadline = time.time() + timeout
    while True:
        checked, missing, different = influx_gaps(start, pairs)
        if (missing == 0 and different == 0) or time.time() > deadline:
            break
        time.sleep(5)
    if missing or different:
        raise DrillError(f"InfluxDB: {missing} candles missing and {different} different of {checked} since "
                         f"{time.strftime('%H:%M:%S', time.gmtime(start))}, {timeout:.0f}s after the recovery")
    return {"influxdb_candles_checked": checked, "influxdb_missing": 0}


def datadir(host: str = FEEDER) -> str:
    """A feeder's freqtrade datadir, as the feather_sync role places it (<user_data>/data/<exchange>)."""
    settings = lab_settings(host)
    return f"{settings['freqfeed_user_data_dir']}/data/{settings.get('freqfeed_exchange', 'binance')}"


def files_gaps(start: float, pairs: list[str], *, complete: bool = True, until: float | None = None) -> dict[str, int]:
    """host120's feather files since `start` (up to the candles closed by `until`, default now) against the
    exchange; raises on a different candle, a temp file left in sight, an unreadable file or (`complete`) a missing
    candle."""
    import pandas as pd

    listing = in_host(FEEDER, "find", datadir(), "-name", "*.freqfeed-tmp").stdout.split()
    if listing:
        raise DrillError(f"partial files visible on {FEEDER}: {listing}")
    checked = missing = different = 0
    with tempfile.TemporaryDirectory() as work:
        sh("podman", "cp", f"{container(FEEDER)}:{datadir()}/futures", work)
        for pair in pairs:
            base = pair.replace("/", "_").replace(":", "_")
            for timeframe in TIMEFRAMES:
                first, last = closed_window(start, timeframe, until)
                if last < first:
                    continue
                frame = pd.read_feather(Path(work) / "futures" / f"{base}-{timeframe}-futures.feather")
                found = {int(row.date.timestamp() * 1000): [row.open, row.high, row.low, row.close, row.volume]
                         for row in frame.itertuples()}
                truth = exchange_candles(pair, timeframe, first, last)
                m, d = compare(found, truth, first, last)
                checked, missing, different = checked + len(truth), missing + m, different + d
    if (missing and complete) or different:
        raise DrillError(f"{FEEDER}'s files: {missing} candles missing and {different} different of {checked}")
    return {"file_candles_checked": checked, "files_missing": missing}


def synced_files_gaps(start: float, pairs: list[str]) -> dict[str, int]:
    """InfluxDB complete since `start`, a sync, then the files: complete up to the moment InfluxDB was checked
    from (a candle that closes while the sync runs is the next sync's, not a gap)."""
    as_of = time.time()
    complete = wait_complete(start, pairs)
    sync_now()
    return {**complete, **files_gaps(start, pairs, until=as_of)}


def sync_now(check: bool = True) -> subprocess.CompletedProcess[str]:
    return in_host(FEEDER, "systemctl", "start", "influxdb-data-sync.service", check=check)


# ---------------------------------------------------------------------------------------------
# faults


def until_before_close(period: int, lead: float) -> None:
    """Sleep until `lead` seconds before the next close of `period` (s), so a close falls inside the fault."""
    now = time.time()
    close = (now // period + 1) * period
    if close - now < lead + 1:
        close += period
    time.sleep(close - lead - now)


def fault(name: str, value: float) -> None:
    answer = requests.post(f"{SIM}/_sim/fault", params={"name": name, "value": str(value)}, timeout=10)
    answer.raise_for_status()
    say(f"simulator: {answer.json().get('result')}")


def gateway_status() -> dict[str, Any]:
    listen = lab_settings()["feather_sync_gateway_listen"]
    return dict(requests.get(f"http://{listen}/_freqfeed/status", timeout=10).json())


def _producer_agent(agent: str, host: str) -> bool:
    return agent.startswith("freqfeed-producer/") and agent.endswith(f"({host})")


def producer_requests(host: str, after_ms: int) -> list[dict[str, Any]]:
    """The REST requests the simulator logged from `host`'s producer since `after_ms` (exchange time)."""
    rows = requests.get(f"{SIM}/_sim/requests", timeout=10).json()
    return [row for row in rows if _producer_agent(str(row.get("agent", "")), host) and int(row["t"]) >= after_ms]


def producer_weight(host: str) -> int:
    """The exchange weight `host`'s producer has cost so far (the simulator's count per User-Agent)."""
    clients = requests.get(f"{SIM}/_sim/stats", timeout=10).json().get("by_client", {})
    return sum(int(stats.get("weight", 0)) for agent, stats in clients.items() if _producer_agent(agent, host))


def start_producer(host: str) -> None:
    in_host(host, "systemctl", "start", PRODUCER_UNIT)


def stop_producer(host: str) -> None:
    in_host(host, "systemctl", "stop", PRODUCER_UNIT)


@dataclass
class Context:
    watcher: AlertWatcher
    pairs: list[str]
    exempt: list[tuple[float, float]]
    exempt_file: Path
    slack: float = 45.0  # scrape (5s) + evaluation (5s) + the detection itself, beyond the rule's for:

    def fired(self, name: str, host: str, since: float, within: float) -> float:
        took = self.watcher.wait_firing(name, host, since, within + self.slack)
        say(f"{name}{{host={host!r}}} firing {took:.0f}s after the fault")
        return took

    def resolved(self, name: str, host: str, since: float, within: float = 120) -> float:
        took = self.watcher.wait_resolved(name, host, since, within)
        say(f"{name}{{host={host!r}}} resolved {took:.0f}s after the recovery")
        return took


# Each drill returns its row: alerts with their delays, recovery, and what was checked.
Drill = Callable[[Context], dict[str, Any]]


def second_producer(ctx: Context) -> dict[str, Any]:
    until_before_close(60, 15)
    before = gateway_status()
    started = time.time()
    stop_producer("host73")
    say("host73's producer stopped (host120's keeps writing)")
    fired = ctx.fired("FreqfeedProducerDown", "host73", started, 30)
    time.sleep(max(0.0, started + 50 - time.time()))  # a 1m close inside the outage
    if ("FreqfeedNoProducerUp", "fleet") in ctx.watcher.now_firing():
        raise DrillError("FreqfeedNoProducerUp fired while host120's producer was up")
    gaps = influx_gaps(started - 120, ctx.pairs)
    if gaps[1] or gaps[2]:
        raise DrillError(f"with host120's producer up, InfluxDB still has {gaps[1]} missing / {gaps[2]} different")
    after = gateway_status()
    fallbacks = after["close_wait_fallbacks"] - before["close_wait_fallbacks"]
    forwards = {k: v - before["forward_reasons"].get(k, 0) for k, v in after["forward_reasons"].items()
                if v - before["forward_reasons"].get(k, 0)}
    if fallbacks or forwards:
        raise DrillError(f"the gateway fell back while one producer was up: {fallbacks} close-wait fallbacks, "
                         f"forwards {forwards}")
    back = time.time()
    back_ms = int(back * 1000)
    weight_before = producer_weight("host73")
    start_producer("host73")
    resolved = ctx.resolved("FreqfeedProducerDown", "host73", back)
    complete = wait_complete(started - 120, ctx.pairs)
    # what its start-up backfill asked for: host120's producer wrote everything meanwhile, so nothing
    klines = [r["query"] for r in producer_requests("host73", back_ms) if r["path"].endswith("/klines")]
    weight = producer_weight("host73") - weight_before
    return {"drill": "second-producer", "fault": "host73's producer stopped (host120's up)",
            "alerts": {"FreqfeedProducerDown{host73}": round(fired)}, "down_s": round(back - started),
            "recovered_s": round(resolved), "gateway_fallbacks": fallbacks, "gateway_forwards": forwards,
            "host73_kline_requests_after_restart": len(klines), "host73_klines_asked": klines[:5],
            "host73_weight_after_restart": weight,
            **complete}


def no_producer(ctx: Context) -> dict[str, Any]:
    until_before_close(180, 10)
    before = gateway_status()
    started = time.time()
    for host in PRODUCERS:
        stop_producer(host)
    say("both producers stopped")
    fired = ctx.fired("FreqfeedNoProducerUp", "fleet", started, 30)
    down = {f"FreqfeedProducerDown{{{host}}}": round(ctx.fired("FreqfeedProducerDown", host, started, 30))
            for host in PRODUCERS}
    back = time.time()
    for host in PRODUCERS:
        start_producer(host)
    resolved = ctx.resolved("FreqfeedNoProducerUp", "fleet", back)
    complete = wait_complete(started - 120, ctx.pairs)
    after = gateway_status()
    return {"drill": "no-producer", "fault": "both producers stopped across a 3m close",
            "alerts": {"FreqfeedNoProducerUp{fleet}": round(fired), **down},
            "down_s": round(back - started), "recovered_s": round(resolved),
            "gateway_fallbacks": after["close_wait_fallbacks"] - before["close_wait_fallbacks"], **complete}


def influxdb(ctx: Context) -> dict[str, Any]:
    services = ["--dir", str(LAB / "services")]
    started = time.time()
    sh(str(BIN / "python"), "scripts/services.py", "stop-influxd", *services)
    say("influxd stopped")
    try:
        gateway = ctx.fired("FreqfeedGatewayInfluxDBUnreachable", FEEDER, started, 30)
        writes = ctx.fired("FreqfeedInfluxDBWritesFailing", "host73", started, 60)
    finally:
        back = time.time()
        sh(str(BIN / "python"), "scripts/services.py", "start-influxd", *services, "--influx-port", str(INFLUX_PORT))
        say("influxd started again")
    resolved = max(ctx.resolved("FreqfeedInfluxDBWritesFailing", "host73", back),
                   ctx.resolved("FreqfeedGatewayInfluxDBUnreachable", FEEDER, back))
    complete = wait_complete(started - 60, ctx.pairs)
    return {"drill": "influxdb", "fault": f"influxd stopped {back - started:.0f}s",
            "alerts": {"FreqfeedGatewayInfluxDBUnreachable{host120}": round(gateway),
                       "FreqfeedInfluxDBWritesFailing{host73}": round(writes)},
            "down_s": round(back - started), "recovered_s": round(resolved), **complete}


def silent(ctx: Context) -> dict[str, Any]:
    until_before_close(60, 3)
    started = time.time()
    fault("silent", 150)
    fired = ctx.fired("FreqfeedStreamSilent", "host73", started, 30 + 2 * 60)
    time.sleep(max(0.0, started + 150 - time.time()))
    back = time.time()
    say("the simulator's streams deliver again")
    resolved = ctx.resolved("FreqfeedStreamSilent", "host73", back)
    complete = wait_complete(started - 60, ctx.pairs)
    return {"drill": "silent", "fault": "every stream silent 150s (connections open)",
            "alerts": {"FreqfeedStreamSilent{host73}": round(fired)}, "down_s": round(back - started),
            "recovered_s": round(resolved), **complete}


def rate_limit(ctx: Context) -> dict[str, Any]:
    until_before_close(60, 4)
    started = time.time()
    fault("429", 2)
    fault("refuse", 12)  # an outage across the close: the producers must ask REST for it once it is back
    limited, limited_host = ctx.watcher.wait_firing_any("FreqfeedExchangeRateLimited", started, 60)
    say(f"FreqfeedExchangeRateLimited{{host={limited_host!r}}} firing {limited:.0f}s after the 429s began")
    until_before_close(60, 4)
    banned_at = time.time()
    fault("ban", 40)
    fault("refuse", 12)
    banned, banned_host = ctx.watcher.wait_firing_any("FreqfeedExchangeBanned", banned_at, 12 + ctx.slack)
    say(f"FreqfeedExchangeBanned{{host={banned_host!r}}} firing {banned:.0f}s after the ban began")
    back = banned_at + 40
    time.sleep(max(0.0, back - time.time()))
    say("the ban is over")
    resolved = ctx.watcher.wait_resolved_all("FreqfeedExchangeBanned", back, 120)
    complete = wait_complete(started - 60, ctx.pairs)
    limited_resolved = ctx.watcher.wait_resolved_all("FreqfeedExchangeRateLimited", back, 240)
    return {"drill": "rate-limit", "fault": "429 x2, then a 40s 418 ban (each after a 12s outage across a close)",
            "alerts": {f"FreqfeedExchangeRateLimited{{{limited_host}}}": round(limited),
                       f"FreqfeedExchangeBanned{{{banned_host}}}": round(banned)},
            "down_s": round(back - started), "recovered_s": round(resolved),
            "rate_limited_resolved_s": round(limited_resolved), **complete}


def feeder_down(ctx: Context) -> dict[str, Any]:
    started = time.time()
    ctx.exempt.append((started, started + 3600))
    ctx.exempt_file.write_text(json.dumps(ctx.exempt))
    sh("podman", "stop", "-t", "20", container(FEEDER))
    say(f"{FEEDER}'s container stopped")
    alerts = {f"{name}{{{FEEDER}}}": round(ctx.fired(name, FEEDER, started, 30))
              for name in ("FreqfeedGatewayDown", "FreqfeedNodeExporterDown", "FreqfeedProducerDown")}
    back = time.time()
    sh("podman", "start", container(FEEDER))
    deadline = time.time() + 180
    while in_host(FEEDER, "systemctl", "is-active", "freqfeed-gateway", check=False).stdout.strip() != "active":
        if time.time() > deadline:
            raise DrillError(f"{FEEDER}'s gateway not active 180s after the container started")
        time.sleep(0.5)
    ready = time.time() - back
    ctx.exempt[-1] = (started, time.time() + 15)  # the bot's next loop
    ctx.exempt_file.write_text(json.dumps(ctx.exempt))
    say(f"{FEEDER} up, its gateway ready {ready:.0f}s after the start")
    resolved = max(ctx.resolved(name, FEEDER, back) for name in
                   ("FreqfeedGatewayDown", "FreqfeedNodeExporterDown", "FreqfeedProducerDown"))
    checked = synced_files_gaps(started - 60, ctx.pairs)
    return {"drill": "feeder-down", "fault": f"{FEEDER}'s container stopped, then started",
            "alerts": alerts, "down_s": round(back - started), "gateway_ready_s": round(ready),
            "recovered_s": round(resolved), **checked}


def disk_full(ctx: Context) -> dict[str, Any]:
    sync_now()
    directory = datadir()
    started = time.time()
    filler = f"{directory}/drill-filler"
    try:
        in_host(FEEDER, "sh", "-c", f"dd if=/dev/zero of={filler} bs=1M 2>/dev/null; true")
        free = in_host(FEEDER, "df", "--output=avail", "-k", directory).stdout.split()[-1]
        say(f"{FEEDER}'s data disk filled ({free} KB free)")
        until_before_close(60, -3)  # a close the sync must write
        failed_at = time.time()
        failed = sync_now(check=False)
        if failed.returncode == 0:
            raise DrillError("the sync succeeded on a full disk: the drill did not fill it")
        fired = ctx.fired("FreqfeedSyncFailing", FEEDER, failed_at, 30)
        # what was there is whole and right (the newest candles are not: no space), no partial file in sight
        intact = files_gaps(started - 600, ctx.pairs, complete=False)
    finally:
        back = time.time()
        in_host(FEEDER, "rm", "-f", filler)
    sync_now()
    say("space freed, the sync ran again")
    resolved = ctx.resolved("FreqfeedSyncFailing", FEEDER, back)
    files = synced_files_gaps(started - 120, ctx.pairs)
    log = in_host(FEEDER, "journalctl", "-u", "influxdb-data-sync.service", "-o", "cat", "--no-pager", "--since",
                  f"@{int(failed_at)}", check=False).stdout
    reason = next((line.strip() for line in log.splitlines() if "No space left" in line or "ENOSPC" in line), "")
    return {"drill": "disk-full", "fault": f"{FEEDER}'s {DISK_MB} MB data disk filled, a sync run (delay: from it)",
            "alerts": {"FreqfeedSyncFailing{host120}": round(fired)}, "down_s": round(back - started),
            "recovered_s": round(resolved), "sync_error": reason[:200],
            "intact_while_full": intact["file_candles_checked"], "behind_while_full": intact["files_missing"],
            **files}


DRILLS: dict[str, Drill] = {"second-producer": second_producer, "no-producer": no_producer, "influxdb": influxdb,
                            "silent": silent, "rate-limit": rate_limit, "feeder-down": feeder_down,
                            "disk-full": disk_full}


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| drill | fault | alert: fired after (s) | recovery -> resolved (s) | candles checked, missing |",
             "|---|---|---|---|---|"]
    for row in rows:
        alerts = ", ".join(f"{name} {delay}" for name, delay in row.get("alerts", {}).items())
        parts = [f"InfluxDB {row['influxdb_candles_checked']}, 0"] if "influxdb_candles_checked" in row else []
        parts += [f"files {row['file_candles_checked']}, 0"] if "file_candles_checked" in row else []
        state = row.get("error") or "; ".join(parts)
        recovered = row.get("recovered_s", "-")
        lines.append(f"| {row['drill']} | {row.get('fault', '')} | {alerts} | {recovered} | {state} |")
    return lines


def run(only: list[str], json_path: Path | None) -> int:
    pairs = list(lab_settings()["freqfeed_pairs"])
    watcher = AlertWatcher(PROMETHEUS)
    watcher.start()
    LAB.mkdir(exist_ok=True)
    exempt_file = LAB / "drills-exempt.json"
    exempt_file.write_text("[]")
    ctx = Context(watcher, pairs, [], exempt_file)
    began = time.time()
    stop_file = LAB / "drills-done"
    stop_file.unlink(missing_ok=True)
    bots = subprocess.Popen([str(BIN / "python"), "scripts/lab_bots.py", "run", "--drill", "--bots", "1",
                             "--gateway", f"http://{lab_settings()['feather_sync_gateway_listen']}",
                             "--exchange", SIM, "--seconds", "3600", "--stop-file", str(stop_file),
                             "--exempt", str(exempt_file), "--dir", str(LAB / "drill-bots"),
                             "--json", str(LAB / "drill-bots.json")], cwd=REPO)
    rows: list[dict[str, Any]] = []
    failed = False
    try:
        # the bot trades before the first fault (it loads its markets through host120's gateway, which a first
        # feeder-down drill would have stopped)
        deadline = time.time() + 180

        def trading() -> bool:
            return any(path.stat().st_mtime > began for path in (LAB / "drill-bots").glob("*/candles/*"))

        while not trading() and time.time() < deadline and bots.poll() is None:
            time.sleep(1)
        for name in only:
            print(f"\n==> drill {name}", flush=True)
            drill_start = time.time()
            try:
                row = DRILLS[name](ctx)
            except (DrillError, requests.RequestException, subprocess.SubprocessError) as error:
                row = {"drill": name, "error": str(error)}
                failed = True
                say(f"FAILED: {error}")
            row["took_s"] = round(time.time() - drill_start)
            expected = set(row.get("alerts", {}))
            row["also_fired"] = [a for a in watcher.fired_between(drill_start, time.time()) if a not in expected]
            rows.append(row)
            say(json.dumps(row))
        print("\n==> after the drills: every alert resolved, InfluxDB and the files complete since the first drill",
              flush=True)
        try:
            final = synced_files_gaps(began - 60, pairs)
            deadline = time.time() + 180
            while watcher.now_firing() and time.time() < deadline:
                time.sleep(2)
            if watcher.now_firing():
                raise DrillError(f"alerts still firing after the drills: {watcher.now_firing()}")
            say(f"complete: {final}")
        except DrillError as error:
            failed = True
            final = {"error": str(error)}
            say(f"FAILED: {error}")
    finally:
        stop_file.touch()
        bots_rc = bots.wait(timeout=300)
        watcher.stop.set()
    if bots_rc != 0:
        failed = True
        say("the bot's checks failed (see above): a stale or wrong candle, or none at all")
    result = {"drills": rows, "final": final, "bots": json.loads((LAB / "drill-bots.json").read_text())
              if (LAB / "drill-bots.json").exists() else None, "minutes": round((time.time() - began) / 60, 1)}
    print("\n" + "\n".join(table(rows)))
    print(f"\ndrills: {'FAILED' if failed else 'passed'} in {result['minutes']} min")
    if json_path:
        json_path.write_text(json.dumps(result, indent=1))
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(DRILLS), help=f"comma-separated, of {', '.join(DRILLS)}")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    only = [name for name in args.only.split(",") if name]
    unknown = sorted(set(only) - set(DRILLS))
    if unknown:
        parser.error(f"unknown drills: {', '.join(unknown)}")
    return run(only, args.json)


if __name__ == "__main__":
    sys.exit(main())
