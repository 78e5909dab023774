"""`freqfeed sync`: bring freqtrade's feather files up to date from InfluxDB, once.

For every series it reads only what is newer than the file's last candle (or, when the file has a
hole, from the hole on), with one InfluxDB request per measurement, merges, keeps the newest
`sync.candles` rows and replaces the file atomically. One failing series does not stop the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import json
import logging
import os
import pwd
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from freqfeed import feather
from freqfeed.config import Config, ConfigError
from freqfeed.feather import CandleType
from freqfeed.influx import InfluxDB, InfluxDBError, InfluxDBUnavailable, Series
from freqfeed.schema import (
    FUNDING_FIELDS,
    FUNDING_MEASUREMENT,
    MARK_FIELDS,
    MARK_MEASUREMENT,
    MARK_TIMEFRAME,
    OHLCV_FIELDS,
    ohlcv_measurement,
    select_series,
)
from freqfeed.timeframes import candle_open, timeframe_ms

log = logging.getLogger(__name__)

LOCK_NAME = ".freqfeed-sync.lock"
_FILE_COLUMN = {"rate": "funding_rate"}  # InfluxDB field -> freqtrade column, where they differ
STATUS_NAME = ".freqfeed-sync-status.json"


@dataclass(frozen=True)
class SeriesJob:
    """One freqtrade file and the InfluxDB series it is made from."""

    pair: str
    timeframe: str
    candle_type: CandleType
    measurement: str
    fields: tuple[str, ...]
    path: Path

    @property
    def on_grid(self) -> bool:
        """Candles sit on a fixed grid (funding times do not: 8h, 4h or 1h per symbol)."""
        return self.candle_type != "funding_rate"

    @property
    def label(self) -> str:
        return f"{self.pair} {self.timeframe} {self.candle_type}"


@dataclass
class SyncReport:
    series: int = 0
    files_updated: int = 0
    candles_added: int = 0
    quarantined: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    newest: dict[str, int] = field(default_factory=dict)  # label -> newest candle open (ms)
    started: float = field(default_factory=time.time)
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    def lag_by_timeframe(self, jobs: list[SeriesJob], now_ms: int) -> dict[str, float | None]:
        """Worst (largest) seconds since the newest candle closed, per timeframe of candle files."""
        newest_by_tf: dict[str, list[int | None]] = {}
        for job in jobs:
            if job.candle_type in ("spot", "futures"):
                newest_by_tf.setdefault(job.timeframe, []).append(self.newest.get(job.label))
        lags: dict[str, float | None] = {}
        for timeframe, newest in newest_by_tf.items():
            known = [n for n in newest if n is not None]
            lags[timeframe] = (None if len(known) < len(newest)
                               else max(0.0, (now_ms - min(known) - timeframe_ms(timeframe)) / 1000))
        return lags

    def summary(self, jobs: list[SeriesJob], now_ms: int) -> str:
        lag_by_tf = self.lag_by_timeframe(jobs, now_ms)
        lags = " ".join(f"{tf}={'none' if lag is None else f'{lag:.0f}s'}" for tf, lag in lag_by_tf.items())
        result = "ok" if self.ok else "FAILED"
        return (
            f"sync {result}: {self.series} series, {self.files_updated} files updated, "
            f"{self.candles_added} candles added, {len(self.errors)} errors, "
            f"{len(self.quarantined)} files quarantined; newest candle lag {lags or 'n/a'}; "
            f"took {self.duration:.2f}s"
        )


def plan(config: Config) -> list[SeriesJob]:
    datadir = _datadir(config)
    jobs: list[SeriesJob] = []
    candle_type: CandleType = "futures" if config.futures else "spot"
    for timeframe in config.timeframes:
        for pair in config.pairs:
            jobs.append(SeriesJob(pair, timeframe, candle_type, ohlcv_measurement(timeframe), OHLCV_FIELDS,
                                  feather.data_path(datadir, pair, timeframe, candle_type)))
    if config.futures:
        funding_tf = config.sync.funding_timeframe
        for pair in config.pairs:
            jobs.append(SeriesJob(pair, MARK_TIMEFRAME, "mark", MARK_MEASUREMENT, MARK_FIELDS,
                                  feather.data_path(datadir, pair, MARK_TIMEFRAME, "mark")))
        for pair in config.pairs:
            jobs.append(SeriesJob(pair, funding_tf, "funding_rate", FUNDING_MEASUREMENT, FUNDING_FIELDS,
                                  feather.data_path(datadir, pair, funding_tf, "funding_rate")))
    return jobs


def _datadir(config: Config) -> Path:
    if config.sync.datadir is None:
        raise ConfigError(f"invalid configuration in {config.source}:\n  - sync.datadir: missing "
                          "(expected freqtrade's data directory, e.g. /home/freqai/freqtrade/user_data/data/binance)")
    return config.sync.datadir


def _owner_ids(config: Config) -> tuple[int | None, int | None]:
    uid = gid = None
    if config.sync.owner:
        try:
            uid = pwd.getpwnam(config.sync.owner).pw_uid
        except KeyError:
            raise ConfigError(f"sync.owner: no such user {config.sync.owner!r} on this host") from None
    if config.sync.group:
        try:
            gid = grp.getgrnam(config.sync.group).gr_gid
        except KeyError:
            raise ConfigError(f"sync.group: no such group {config.sync.group!r} on this host") from None
    return uid, gid


@contextlib.contextmanager
def _exclusive(datadir: Path, wait_seconds: float = 120.0) -> Iterator[None]:
    """One sync at a time per data directory (the timer and a manual run may overlap)."""
    datadir.mkdir(parents=True, exist_ok=True)
    with open(datadir / LOCK_NAME, "a") as lock:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another freqfeed sync holds {datadir / LOCK_NAME}") from None
                time.sleep(0.2)
        yield


@dataclass
class _Pending:
    job: SeriesJob
    existing: pa.Table | None
    statement: str
    replace_from_ms: int


def run(config: Config, client: InfluxDB | None = None, now_ms: int | None = None) -> SyncReport:
    """One sync pass over every configured series."""
    jobs = plan(config)
    datadir = _datadir(config)
    uid, gid = _owner_ids(config)
    report = SyncReport(series=len(jobs))
    own_client = client is None
    client = client or InfluxDB(config.influxdb)
    try:
        with _exclusive(datadir):
            for directory in {job.path.parent for job in jobs}:
                feather.remove_stale_temp_files(directory)
            by_measurement: dict[str, list[SeriesJob]] = {}
            for job in jobs:
                by_measurement.setdefault(job.measurement, []).append(job)
            unavailable: InfluxDBError | None = None
            for measurement, group in by_measurement.items():
                if unavailable is not None:
                    report.errors.extend(f"{job.label}: skipped, {unavailable}" for job in group)
                    continue
                try:
                    _sync_group(config, client, group, report, uid, gid)
                except InfluxDBUnavailable as exc:
                    unavailable = exc
                    log.error("InfluxDB unavailable, no file changed for %s and later series: %s", measurement, exc)
                    report.errors.extend(f"{job.label}: {exc}" for job in group)
                except InfluxDBError as exc:
                    log.error("InfluxDB refused the %s query, files unchanged: %s", measurement, exc)
                    report.errors.extend(f"{job.label}: {exc}" for job in group)
    finally:
        if own_client:
            client.close()
    report.duration = time.time() - report.started
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    line = report.summary(jobs, now)
    (log.info if report.ok else log.error)(line)
    _write_status(config, report, jobs, now, line)
    return report


def _sync_group(config: Config, client: InfluxDB, group: list[SeriesJob], report: SyncReport,
                uid: int | None, gid: int | None) -> None:
    datadir = _datadir(config)
    keep = config.sync.candles
    pending: list[_Pending] = []
    for job in group:
        try:
            existing = feather.read_table(job.path, job.candle_type)
        except feather.ForeignFileError as exc:
            target = feather.quarantine(job.path, datadir)
            log.warning("%s; moved it aside to %s and rebuilding it from InfluxDB", exc, target)
            report.quarantined.append(str(job.path))
            existing = None
        except OSError as exc:
            report.errors.append(f"{job.label}: cannot read {job.path}: {exc.strerror or exc}")
            log.error("%s: cannot read %s: %s", job.label, job.path, exc)
            continue
        last = feather.last_time_ms(existing)
        if last is not None:
            report.newest[job.label] = last
        gap = feather.first_gap_ms(existing, timeframe_ms(job.timeframe)) if job.on_grid else None
        if gap is not None:
            statement = select_series(job.measurement, job.fields, job.pair, since_ms=gap, limit=keep or None)
            replace_from = gap
        else:
            statement = select_series(job.measurement, job.fields, job.pair, after_ms=last, limit=keep or None)
            replace_from = (last + 1) if last is not None else 0
        pending.append(_Pending(job, existing, statement, replace_from))
    if not pending:
        return
    answers = client.query([p.statement for p in pending])
    for item, answer in zip(pending, answers, strict=True):
        try:
            _apply(config, item, answer, report, uid, gid)
        except OSError as exc:
            message = f"{item.job.label}: cannot write {item.job.path}: {exc.strerror or exc}"
            report.errors.append(message)
            log.error("%s (file left as it was)", message)


def _apply(config: Config, item: _Pending, answer: list[Series], report: SyncReport,
           uid: int | None, gid: int | None) -> None:
    job = item.job
    rows = answer[0].values if answer else []
    if not rows:
        return
    rows.sort(key=lambda row: row[0])  # limited queries come newest first
    data = np.array(rows, dtype="float64")
    times = data[:, 0].astype("int64")
    if not job.on_grid:
        times = np.array([candle_open(int(t), job.timeframe) for t in times], dtype="int64")
    values = {_FILE_COLUMN.get(name, name): data[:, index + 1] for index, name in enumerate(job.fields)}
    if job.candle_type == "mark":
        values["volume"] = np.zeros(len(times))  # mark candles have no volume; freqtrade writes 0
    new = feather.build_table(times, values, job.candle_type)
    replace_from = min(item.replace_from_ms, int(times[0]))
    merged = feather.merge(item.existing, new, replace_from, config.sync.candles)
    before = item.existing.column("date").to_numpy() if item.existing is not None else np.empty(0)
    added = int(np.setdiff1d(merged.column("date").to_numpy(), before).size)
    if added == 0 and item.existing is not None and merged.equals(item.existing):
        return
    feather.write_atomic(job.path, feather.to_layout(merged, job.candle_type, config.sync.funding_rate_layout),
                         uid=uid, gid=gid)
    report.files_updated += 1
    report.candles_added += added
    newest = feather.last_time_ms(merged)
    if newest is not None:
        report.newest[job.label] = newest


def _write_status(config: Config, report: SyncReport, jobs: list[SeriesJob], now_ms: int, line: str) -> None:
    """A small JSON file the fleet status check reads (last run, result, lag)."""
    path = config.sync.status_file or (_datadir(config) / STATUS_NAME)
    status = {
        "finished": now_ms,
        "ok": report.ok,
        "summary": line,
        "series": report.series,
        "files_updated": report.files_updated,
        "candles_added": report.candles_added,
        "errors": report.errors[:20],
        "error_count": len(report.errors),
        "quarantined": report.quarantined,
        "lag_seconds": report.lag_by_timeframe(jobs, now_ms),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps(status, indent=1))
        os.replace(temp, path)
    except OSError as exc:
        log.warning("cannot write the sync status file %s: %s", path, exc)
