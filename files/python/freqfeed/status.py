"""`freqfeed status`: is this host healthy, and are its data fresh and complete?

A feeder (its config has `sync.datadir`) reports its sync timer, the last sync run and its result, the
feather files, the age of the newest candle per timeframe and holes in the files. The producer (its
config has `producer.health_file`, or `--role producer`) reports its service, its health snapshot
(silent streams, InfluxDB write failures), the newest candle per timeframe in InfluxDB and holes within
the backfill window. Exit status 0 when healthy, 1 when not (the table says why), 2 for a bad config.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from freqfeed import feather, sync
from freqfeed.config import Config
from freqfeed.influx import InfluxDB, InfluxDBConfigError, InfluxDBError
from freqfeed.schema import FUTURE_MARGIN_MS, counts_select, last_times_select, ohlcv_measurement
from freqfeed.timeframes import last_closed_open, timeframe_ms

PRODUCER_UNIT = "cryptofeed-influxdb.service"
GATEWAY_UNIT = "freqfeed-gateway.service"
SYNC_TIMER = "influxdb-data-sync.timer"
SYNC_SERVICE = "influxdb-data-sync.service"
SYNC_EVERY_S = 180
DISK_FREE_MIN = 0.05  # share of the file system
LAG_GRACE_S = 60  # a late write or a slow sync run on top of the normal lag


@dataclass
class HostStatus:
    role: str
    healthy: bool = True
    problems: list[str] = field(default_factory=list)
    unit: str = ""
    unit_state: str = "n/a"
    last_run: str = "n/a"  # feeder: when the last sync finished and how
    files: int | None = None
    lag_seconds: dict[str, float | None] = field(default_factory=dict)
    gaps: dict[str, int] = field(default_factory=dict)  # series -> missing candles
    disk_free: str = "n/a"
    influxdb: str = "n/a"  # the server, as /ping tells it
    coverage: str | None = None  # the files against the bots' history (`history`), or the producer's backfill
    gateway: dict[str, Any] | None = None  # feeders running `freqfeed serve`: its counters

    def problem(self, text: str) -> None:
        self.healthy = False
        self.problems.append(text)


def unit_state(unit: str) -> str:
    if shutil.which("systemctl") is None or not Path("/run/systemd/system").is_dir():
        return "no systemd"
    result = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


def disk_free(path: Path) -> tuple[str, float]:
    while not path.exists() and path != path.parent:
        path = path.parent
    stat = os.statvfs(path)
    free = stat.f_bavail * stat.f_frsize
    return f"{free / 1e9:.1f} GB ({stat.f_bavail / max(stat.f_blocks, 1):.0%})", stat.f_bavail / max(stat.f_blocks, 1)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def check_feeder(config: Config, status: HostStatus, now_ms: int) -> None:
    datadir = config.sync.datadir
    assert datadir is not None
    status.unit, status.unit_state = SYNC_TIMER, unit_state(SYNC_TIMER)
    if status.unit_state not in ("active", "no systemd"):
        status.problem(f"{SYNC_TIMER} is {status.unit_state}")
    status_file = config.sync.status_file or datadir / sync.STATUS_NAME
    try:
        last = json.loads(status_file.read_text())
        age = (now_ms - int(last["finished"])) / 1000
        status.last_run = f"{_age(age)} ago, {'ok' if last['ok'] else 'FAILED'}"
        if not last["ok"]:
            status.problem(f"last sync failed: {(last.get('errors') or ['see the journal'])[0]}")
        if age > 3 * SYNC_EVERY_S:
            status.problem(f"last sync ran {_age(age)} ago")
    except (OSError, ValueError, KeyError):
        status.last_run = "never"
        status.problem(f"no sync has run yet ({status_file} missing)")
    jobs = sync.plan(config)
    status.files = sum(1 for job in jobs if job.path.exists())
    if status.files < len(jobs):
        status.problem(f"{len(jobs) - status.files} of {len(jobs)} feather files missing")
    newest: dict[str, list[int | None]] = {}
    short: list[str] = []  # files that do not reach back as far as the bots' history (config `history`)
    for job in jobs:
        try:
            table = feather.read_table(job.path, job.candle_type)
        except (feather.ForeignFileError, OSError) as exc:
            status.problem(f"unreadable file {job.path.name}: {exc}")
            continue
        if job.candle_type in ("spot", "futures"):
            newest.setdefault(job.timeframe, []).append(feather.last_time_ms(table))
        if job.on_grid and table is not None and table.num_rows > 1:
            dates = feather.date_ns(table) // 1_000_000
            missing = int((dates[-1] - dates[0]) // timeframe_ms(job.timeframe) + 1 - len(dates))
            if missing:
                status.gaps[job.path.name] = missing
        if config.history and job.on_grid and table is not None:
            shortfall = _history_shortfall(config, job, table, now_ms)
            if shortfall:
                short.append(shortfall)
    if short:
        status.coverage = f"{len(short)} files short of the bots' history (e.g. {short[0]})"
        status.problem(f"files do not cover what the bots need: {status.coverage}")
    elif config.history:
        status.coverage = "covered: " + ", ".join(f"{tf} {days:g}d" for tf, days in config.history.items())
    _lags(status, newest, now_ms, extra=SYNC_EVERY_S)
    if status.gaps:
        status.problem(f"holes in {len(status.gaps)} files ({sum(status.gaps.values())} candles)")
    status.disk_free, share = disk_free(datadir)
    if share < DISK_FREE_MIN:
        status.problem(f"disk almost full: {status.disk_free} free")
    if config.gateway.configured:
        check_gateway(config, status)


def _history_shortfall(config: Config, job: sync.SeriesJob, table: Any, now_ms: int) -> str | None:
    """A file that starts later than the history its series must keep (with a period of slack), described."""
    period = timeframe_ms(job.timeframe)
    window = config.history_candles(job.timeframe, hourly=job.candle_type == "mark")
    if not window:
        return None
    needed_from = last_closed_open(now_ms, job.timeframe) - (window - 1) * period
    first = feather.first_time_ms(table) if table.num_rows else None
    if first is not None and first <= needed_from + period:
        return None
    have_days = 0.0 if first is None else (now_ms - first) / 86_400_000
    return f"{job.path.name}: {have_days:.1f} of {window * period / 86_400_000:.1f} days"


def check_gateway(config: Config, status: HostStatus) -> None:
    """The gateway's own counters (GET /_freqfeed/status on its listen address)."""
    state = unit_state(GATEWAY_UNIT)
    url = f"http://{config.gateway.listen}/_freqfeed/status"
    try:
        reply = requests.get(url, timeout=5).json()
    except (requests.RequestException, ValueError) as exc:
        status.gateway = {"up": False, "unit": state, "error": str(exc)[:200]}
        status.problem(f"gateway not answering on {config.gateway.listen} ({GATEWAY_UNIT} {state})")
        return
    status.gateway = {key: reply.get(key) for key in (
        "up", "local", "forwarded", "refused", "forwarded_weight_last_minute", "forwarded_weight_peak_minute",
        "cache_hits", "coalesced", "close_wait_fallbacks", "influxdb_ok", "influxdb_error", "rate_limited", "banned",
        "books", "state", "load")} | {"unit": state}
    load = reply.get("load") or {}
    if reply.get("state") in ("connecting", "loading"):
        status.problem(f"gateway starting: {load.get('progress', reply.get('state'))}")
    elif reply.get("state") == "degraded":
        status.problem(f"gateway degraded, its caches not loaded ({load.get('progress')}): bots are served by Binance")
    elif not reply.get("influxdb_ok"):
        status.problem(f"gateway cannot read InfluxDB ({reply.get('influxdb_error')}): bots are served by Binance")
    if reply.get("banned"):
        status.problem(f"gateway's forwarded requests were banned by Binance (418) {reply['banned']} times")


def check_producer(config: Config, status: HostStatus, now_ms: int, client: InfluxDB) -> None:
    status.unit, status.unit_state = PRODUCER_UNIT, unit_state(PRODUCER_UNIT)
    if status.unit_state not in ("active", "no systemd"):
        status.problem(f"{PRODUCER_UNIT} is {status.unit_state}")
    path = config.producer.health_file
    if path is not None:
        try:
            health = json.loads(path.read_text())
            age = (time.time() * 1000 - int(health["updated"])) / 1000
            status.last_run = f"health {_age(age)} old"
            if age > 60:
                status.problem(f"health file not updated for {_age(age)}")
            if age < 60 and health.get("exchange_now"):
                now_ms = int(health["exchange_now"])  # the exchange's clock (a lab simulator may run fast)
            silent = [name for name, s in health.get("series", {}).items() if s.get("silent")]
            if silent:
                status.problem(f"silent streams (filled over REST): {', '.join(silent[:5])}")
            if health.get("writer", {}).get("failing_since_s") is not None:
                status.problem(f"InfluxDB writes failing: {health['writer'].get('last_error')}")
            progress = health.get("backfill_progress") or {}
            if progress.get("pages_total") and progress.get("pages_done", 0) < progress["pages_total"]:
                eta = progress.get("eta_seconds")
                status.coverage = (f"backfill {progress['pages_done']}/{progress['pages_total']} pages, "
                                   f"{progress.get('candles_done', 0):,}/{progress.get('candles_total', 0):,} "
                                   f"candles, ETA {'?' if eta is None else f'{eta / 60:.0f} min'}")
        except (OSError, ValueError, KeyError):
            status.last_run = "no health file"
    newest: dict[str, list[int | None]] = {}
    for timeframe in config.timeframes:
        measurement = ohlcv_measurement(timeframe)
        end = last_closed_open(now_ms, timeframe)
        start = end - (config.window(timeframe) - 1) * timeframe_ms(timeframe)
        horizon = now_ms + FUTURE_MARGIN_MS
        counts, lasts = client.select([counts_select(measurement, start, horizon),
                                       last_times_select(measurement, start, horizon)])
        count_by_pair = {s.tags.get("pair"): int(s.values[0][1]) for s in counts if s.values}
        last_by_pair = {s.tags.get("pair"): int(s.values[0][0]) for s in lasts if s.values}
        newest[timeframe] = [last_by_pair.get(pair) for pair in config.pairs]
        for pair in config.pairs:
            last = last_by_pair.get(pair)
            if last is None:
                continue
            expected = (last - start) // timeframe_ms(timeframe) + 1
            missing = expected - count_by_pair.get(pair, 0)
            if missing > 0:
                status.gaps[f"{pair} {timeframe}"] = missing
    _lags(status, newest, now_ms, extra=0)
    if status.gaps:
        status.problem(f"InfluxDB misses {sum(status.gaps.values())} candles in {len(status.gaps)} series")
    status.disk_free, _ = disk_free(Path("/var/lib"))


def _lags(status: HostStatus, newest: dict[str, list[int | None]], now_ms: int, extra: float) -> None:
    for timeframe, values in newest.items():
        known = [v for v in values if v is not None]
        if not known or len(known) < len(values):
            status.lag_seconds[timeframe] = None
            status.problem(f"no {timeframe} candles for {len(values) - len(known)} pairs")
            continue
        lag = max(0.0, (now_ms - min(known) - timeframe_ms(timeframe)) / 1000)
        status.lag_seconds[timeframe] = round(lag, 1)
        # Stale once a whole candle is missing: normal lag stays under one period plus the sync interval.
        if lag > timeframe_ms(timeframe) / 1000 + extra + LAG_GRACE_S:
            status.problem(f"newest {timeframe} candle is {_age(lag)} old")


def collect(config: Config, role: str | None = None, now_ms: int | None = None,
            client: InfluxDB | None = None) -> HostStatus:
    role = role or ("feeder" if config.sync.datadir is not None else "producer")
    status = HostStatus(role=role)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    own = client is None
    client = client or InfluxDB(config.influxdb, retries=1)
    try:
        status.influxdb = client.ping().name
    except InfluxDBConfigError as exc:
        status.influxdb = client._server.name if client._server else "?"
        status.problem(str(exc))
    except InfluxDBError as exc:
        status.influxdb = f"not reachable ({exc})"[:200]
    try:
        if role == "feeder":
            check_feeder(config, status, now)
        else:
            check_producer(config, status, now, client)
    except InfluxDBError as exc:
        status.problem(f"InfluxDB: {exc}")
    finally:
        if own:
            client.close()
    return status


def render(host: str, status: HostStatus) -> str:
    lags = " ".join(f"{tf}={'-' if lag is None else _age(lag)}" for tf, lag in status.lag_seconds.items())
    rows = [
        ("host", host), ("role", status.role), ("health", "OK" if status.healthy else "UNHEALTHY"),
        ("timer" if status.role == "feeder" else "service", f"{status.unit or '-'} {status.unit_state}"),
        ("last run", status.last_run),
        ("feather files", "n/a" if status.files is None else str(status.files)),
        ("newest candle age", lags or "n/a"),
        ("gaps", ", ".join(f"{k}: {v}" for k, v in list(status.gaps.items())[:6]) or "none"),
        ("disk free", status.disk_free),
        ("influxdb", status.influxdb),
    ]
    if status.coverage is not None:
        rows.append(("history", status.coverage))
    if status.gateway is not None:
        rows.append(("gateway", gateway_summary(status.gateway)))
    lines = [f"{name:18} {value}" for name, value in rows]
    lines += [f"{'problem':18} {problem}" for problem in status.problems]
    return "\n".join(lines)


def gateway_summary(gateway: dict[str, Any]) -> str:
    if not gateway.get("up"):
        return f"DOWN ({gateway.get('unit')}): {gateway.get('error', '')}"
    local, forwarded = int(gateway.get("local") or 0), int(gateway.get("forwarded") or 0)
    share = f"{100 * local / (local + forwarded):.1f}%" if local + forwarded else "-"
    load = gateway.get("load") or {}
    text = (f"{gateway.get('state') or 'up'} (loaded in {load.get('seconds', '-')}s): "
            f"{local} answered here ({share}), {forwarded} forwarded, weight "
            f"{gateway.get('forwarded_weight_last_minute')}/min (peak {gateway.get('forwarded_weight_peak_minute')}), "
            f"{gateway.get('cache_hits')} cache hits, {gateway.get('close_wait_fallbacks')} close-wait fallbacks")
    books = gateway.get("books")
    if isinstance(books, dict):
        text += (f"; books: {books.get('streamed')} streamed, {books.get('served')} answers from streams, "
                 f"{books.get('forwarded')} forwarded, oldest served {books.get('oldest_served_ms')} ms")
    return text


def main(config: Config, *, as_json: bool = False, role: str | None = None) -> int:
    status = collect(config, role)
    host = os.uname().nodename
    if as_json:
        print(json.dumps({"host": host, **asdict(status)}))
    else:
        print(render(host, status))
    return 0 if status.healthy else 1

