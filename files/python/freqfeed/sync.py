"""`freqfeed sync`: bring freqtrade's feather files up to date from InfluxDB, once.

For every series it reads only what is newer than the file's last candle (or, when the file has a
hole, from the hole on): one statement per measurement for all series that need rows from the same
time on (grouped by pair), merges, keeps the newest `sync.candles` rows and replaces the file
atomically. One failing series does not stop the others.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from freqfeed import feather
from freqfeed.config import Config, ConfigError
from freqfeed.feather import CandleType
from freqfeed.influx import InfluxDB, InfluxDBConfigError, InfluxDBError, InfluxDBUnavailable, Series
from freqfeed.schema import (
    FUNDING_FIELDS,
    FUNDING_MEASUREMENT,
    FUTURE_MARGIN_MS,
    MARK_FIELDS,
    MARK_MEASUREMENT,
    MARK_TIMEFRAME,
    OHLCV_FIELDS,
    ohlcv_measurement,
    pairs_select,
    retention_floor,
    use_exchange,
)
from freqfeed.timeframes import candle_open, last_closed_open, timeframe_ms

log = logging.getLogger(__name__)

LOCK_NAME = ".freqfeed-sync.lock"
FUNDING_SLACK_MS = 86_400_000  # a funding file starting this much later than its window is short
ROWS_PER_STATEMENT = 200_000  # a first sync of long files asks for this many rows per statement, about
_IO_THREADS = 4
_FILE_COLUMN = {"rate": "funding_rate"}  # InfluxDB field -> freqtrade column, where they differ
STATUS_NAME = ".freqfeed-sync-status.json"
STATE_NAME = ".freqfeed-sync-state.json"


@dataclass(frozen=True)
class SeriesJob:
    """One freqtrade file and the InfluxDB series it is made from."""

    pair: str
    timeframe: str
    candle_type: CandleType
    measurement: str
    fields: tuple[str, ...]
    path: Path
    keep: int = 0  # rows the file keeps (the newest); 0: everything InfluxDB has

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


def keep_rows(config: Config, timeframe: str, *, hourly: bool = False) -> int:
    """Rows a file keeps: `sync.candles`, but never fewer than the history the fleet keeps for its timeframe
    (`history`, the window FreqAI downloads): a file is never trimmed below what the bots need. 0: all."""
    if config.sync.candles == 0:
        return 0
    return max(config.sync.candles, config.history_candles(timeframe, hourly=hourly))


def plan(config: Config) -> list[SeriesJob]:
    datadir = _datadir(config)
    jobs: list[SeriesJob] = []
    candle_type: CandleType = "futures" if config.futures else "spot"
    for timeframe in config.timeframes:
        for pair in config.pairs:
            jobs.append(SeriesJob(pair, timeframe, candle_type, ohlcv_measurement(timeframe), OHLCV_FIELDS,
                                  feather.data_path(datadir, pair, timeframe, candle_type),
                                  keep_rows(config, timeframe)))
    if config.futures:
        funding_tf = config.sync.funding_timeframe
        hourly = keep_rows(config, MARK_TIMEFRAME, hourly=True)
        for pair in config.pairs if feather.has_mark_files(config.exchange.name) else ():
            jobs.append(SeriesJob(pair, MARK_TIMEFRAME, "mark", MARK_MEASUREMENT, MARK_FIELDS,
                                  feather.data_path(datadir, pair, MARK_TIMEFRAME, "mark"), hourly))
        for pair in config.pairs:
            jobs.append(SeriesJob(pair, funding_tf, "funding_rate", FUNDING_MEASUREMENT, FUNDING_FIELDS,
                                  feather.data_path(datadir, pair, funding_tf, "funding_rate"), hourly))
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


@dataclass(frozen=True)
class FileState:
    """What the last sync knew of a file. While the file's inode, size and mtime are unchanged the
    file is not read again; anything that rewrites it (FreqAI, an operator) changes them."""

    inode: int
    size: int
    mtime_ns: int
    last_ms: int | None
    gap_ms: int | None
    first_ms: int | None = None  # None in a state from before it was kept: known once the file is rewritten

    def matches(self, stat: os.stat_result) -> bool:
        return (self.inode, self.size, self.mtime_ns) == (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _load_state(datadir: Path) -> dict[str, FileState]:
    try:
        raw = json.loads((datadir / STATE_NAME).read_text())
        return {key: FileState(*value) for key, value in raw.items()}
    except (OSError, ValueError, TypeError):
        return {}  # absent or damaged: every file is simply read once


def _save_state(datadir: Path, state: dict[str, FileState]) -> None:
    path = datadir / STATE_NAME
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(json.dumps({key: list(vars(value).values()) for key, value in state.items()}))
        os.replace(temp, path)
    except OSError as exc:
        log.warning("cannot save the sync state %s (next run reads every file): %s", path, exc)


_NOT_READ = object()  # a file known from the state and not read (yet)


@dataclass
class _Pending:
    job: SeriesJob
    key: str
    existing: object  # pa.Table | None | _NOT_READ
    last_ms: int | None
    gap_ms: int | None
    first_ms: int | None = None
    quarantined: bool = False
    replace_from_ms: int = 0
    added: int = 0
    tail: Series | None = None  # InfluxDB's rows from replace_from_ms on
    head: Series | None = None  # InfluxDB's rows older than the file's first (the window grew, or the
    # file was written while the producer was still backfilling)


def run(config: Config, client: InfluxDB | None = None, now_ms: int | None = None) -> SyncReport:
    """One sync pass over every configured series."""
    use_exchange(config.exchange.name)
    jobs = plan(config)
    datadir = _datadir(config)
    uid, gid = _owner_ids(config)
    report = SyncReport(series=len(jobs))
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    own_client = client is None
    client = client or InfluxDB(config.influxdb)
    try:
        try:
            client.server  # noqa: B018 - detect it first: a config this server cannot serve is exit status 2
        except InfluxDBConfigError:
            raise
        except InfluxDBError:
            pass  # reported per series below, every file left as it was
        with _exclusive(datadir):
            for directory in {job.path.parent for job in jobs}:
                feather.remove_stale_temp_files(directory)
            state = _load_state(datadir)
            by_measurement: dict[str, list[SeriesJob]] = {}
            for job in jobs:
                by_measurement.setdefault(job.measurement, []).append(job)
            unavailable: InfluxDBError | None = None
            # File I/O waits (fsync, rename) overlap in a few threads; pyarrow releases the GIL.
            with ThreadPoolExecutor(max_workers=_IO_THREADS) as pool:
                for measurement, group in by_measurement.items():
                    if unavailable is not None:
                        report.errors.extend(f"{job.label}: skipped, {unavailable}" for job in group)
                        continue
                    try:
                        _sync_group(config, client, group, report, state, pool, uid, gid, now)
                    except InfluxDBUnavailable as exc:
                        unavailable = exc
                        log.error("InfluxDB unavailable, no file changed for %s and later series: %s",
                                  measurement, exc)
                        report.errors.extend(f"{job.label}: {exc}" for job in group)
                    except InfluxDBError as exc:
                        log.error("InfluxDB refused the %s query, files unchanged: %s", measurement, exc)
                        report.errors.extend(f"{job.label}: {exc}" for job in group)
            for directory in {job.path.parent for job in jobs if job.path.parent.is_dir()}:
                feather.fsync_directory(directory)  # once per directory, for the renames above
            _save_state(datadir, state)
    finally:
        if own_client:
            client.close()
    report.duration = time.time() - report.started
    line = report.summary(jobs, now)
    (log.info if report.ok else log.error)(line)
    _write_status(config, report, jobs, now, line)
    return report


def _sync_group(config: Config, client: InfluxDB, group: list[SeriesJob], report: SyncReport,
                state: dict[str, FileState], pool: ThreadPoolExecutor, uid: int | None, gid: int | None,
                now_ms: int) -> None:
    datadir = _datadir(config)
    keep = group[0].keep
    until = now_ms + FUTURE_MARGIN_MS
    floor = retention_floor(now_ms, config.influxdb.retention_days)
    pending: list[_Pending] = []
    looks = pool.map(lambda job: _look(datadir, job, state), group)
    for job, look in zip(group, looks, strict=True):
        if isinstance(look, str):
            report.errors.append(look)
            continue
        if look.quarantined:
            report.quarantined.append(str(job.path))
        if look.last_ms is not None:
            report.newest[job.label] = look.last_ms
        since = look.gap_ms if look.gap_ms is not None else floor if look.last_ms is None else look.last_ms + 1
        look.replace_from_ms = since
        pending.append(look)
    if not pending:
        return
    # One statement for all series that need rows from the same time on (after the first run: all of them):
    # a handful of statements per run however many pairs, which matters most where each is a request. A
    # first sync of long files asks for a few pairs at a time (answers of about ROWS_PER_STATEMENT rows).
    measurement, fields = group[0].measurement, group[0].fields
    spacing = timeframe_ms(group[0].timeframe)
    tails: dict[int, list[_Pending]] = {}
    for look in pending:
        tails.setdefault(max(look.replace_from_ms, floor), []).append(look)
    # Files that start later than their window while InfluxDB may hold older rows get those prepended
    # (one statement per first row shared): a window raised in `history`, or files first written while the
    # producer was still backfilling, fill up as InfluxDB does.
    needed_from = max(floor, last_closed_open(now_ms, group[0].timeframe) - (keep - 1) * spacing) if keep else floor
    slack = spacing if group[0].on_grid else FUNDING_SLACK_MS
    heads: dict[int, list[_Pending]] = {}
    for look in pending:
        if look.first_ms is not None and look.first_ms - needed_from >= slack:
            heads.setdefault(look.first_ms, []).append(look)
    batches: list[tuple[str, int, int, list[_Pending]]] = []
    for kind, starts in (("tail", tails), ("head", heads)):
        for start, members in starts.items():
            stop = max(until, start) if kind == "tail" else start - 1
            since = start if kind == "tail" else needed_from
            rows = max(1, (min(stop, now_ms) - since) // spacing + 1)  # per series, at most (funding: fewer)
            chunk = max(1, ROWS_PER_STATEMENT // (min(rows, keep) if keep else rows))
            batches += [(kind, since, stop, members[i:i + chunk]) for i in range(0, len(members), chunk)]
    selects = [pairs_select(measurement, fields, [member.job.pair for member in members], since, stop,
                            newest=keep or None) for _, since, stop, members in batches]
    answers = client.select_each(selects)
    failed: set[str] = set()
    for (kind, _, _, members), answer in zip(batches, answers, strict=True):
        if isinstance(answer, InfluxDBError):
            for item in members:
                if item.key not in failed:
                    report.errors.append(f"{item.job.label}: {answer}")
                failed.add(item.key)
            log.error("%s: InfluxDB refused the query of %d series, their files left as they were: %s",
                      measurement, len(members), answer)
            continue
        by_pair = {series.tags.get("pair"): series for series in answer}
        for item in members:
            series = by_pair.get(item.job.pair)
            if series is not None and series.values:
                setattr(item, kind, series)
    work = [item for item in pending if item.key not in failed and (item.tail is not None or item.head is not None)]
    log.debug("%s: %d series queried, %d with new rows", measurement, len(pending), len(work))
    outcomes = pool.map(lambda item: _apply(config, item, uid, gid), work)
    for item, outcome in zip(work, outcomes, strict=True):
        if isinstance(outcome, str):
            report.errors.append(outcome)
            log.error("%s (file left as it was)", outcome)
        elif isinstance(outcome, FileState):
            state[item.key] = outcome
            report.files_updated += 1
            report.candles_added += item.added
            if outcome.last_ms is not None:
                report.newest[item.job.label] = outcome.last_ms
        elif outcome == "quarantined":
            state.pop(item.key, None)
            report.quarantined.append(str(item.job.path))


def _look(datadir: Path, job: SeriesJob, state: dict[str, FileState]) -> _Pending | str:
    """What the local file holds: its last candle and first hole, from the state when it is unchanged."""
    key = str(job.path.relative_to(datadir))
    try:
        stat = os.stat(job.path)
    except FileNotFoundError:
        state.pop(key, None)
        return _Pending(job, key, None, None, None)
    known = state.get(key)
    if known is not None and known.matches(stat):
        return _Pending(job, key, _NOT_READ, known.last_ms, known.gap_ms, known.first_ms)
    try:
        table = feather.read_table(job.path, job.candle_type)
    except feather.ForeignFileError as exc:
        target = feather.quarantine(job.path, datadir)
        log.warning("%s; moved it aside to %s and rebuilding it from InfluxDB", exc, target)
        state.pop(key, None)
        return _Pending(job, key, None, None, None, quarantined=True)
    except OSError as exc:
        message = f"{job.label}: cannot read {job.path}: {exc.strerror or exc}"
        log.error("%s", message)
        return message
    last, gap = _describe(job, table)
    state[key] = FileState(stat.st_ino, stat.st_size, stat.st_mtime_ns, last, gap, feather.first_time_ms(table))
    return _Pending(job, key, table, last, gap, feather.first_time_ms(table))


def _describe(job: SeriesJob, table: pa.Table | None) -> tuple[int | None, int | None]:
    """The newest candle's open time and the first missing candle (grid series only)."""
    gap = feather.first_gap_ms(table, timeframe_ms(job.timeframe)) if job.on_grid else None
    return feather.last_time_ms(table), gap


def _table(job: SeriesJob, series: Series) -> pa.Table:
    """InfluxDB's rows of one series as a table in the internal layout, oldest first."""
    rows = sorted(series.values, key=lambda row: row[0])  # limited queries come newest first
    data = np.array(rows, dtype="float64")
    times = data[:, 0].astype("int64")
    if not job.on_grid:
        times = np.array([candle_open(int(t), job.timeframe) for t in times], dtype="int64")
    values = {_FILE_COLUMN.get(name, name): data[:, index + 1] for index, name in enumerate(job.fields)}
    if job.candle_type == "mark":
        values["volume"] = np.zeros(len(times))  # mark candles have no volume; freqtrade writes 0
    return feather.build_table(times, values, job.candle_type)


def _apply(config: Config, item: _Pending, uid: int | None, gid: int | None) -> FileState | str | None:
    """Merge InfluxDB's rows into the file: its tail replaced from `replace_from_ms` on, older rows put
    before its first. Returns the new FileState when the file was rewritten, None when nothing changed,
    "quarantined" when the file turned out foreign, or an error message."""
    job = item.job
    existing = item.existing
    if existing is _NOT_READ:
        try:
            existing = feather.read_table(job.path, job.candle_type)
        except feather.ForeignFileError as exc:
            # Damaged since the last run without its stat changing: set it aside, rebuild next run.
            target = feather.quarantine(job.path, _datadir(config))
            log.warning("%s; moved it aside to %s, the next run rebuilds it", exc, target)
            return "quarantined"
        except OSError as exc:
            return f"{job.label}: cannot read {job.path}: {exc.strerror or exc}"
    assert existing is None or isinstance(existing, pa.Table)
    merged = existing
    if item.tail is not None:
        new = _table(job, item.tail)
        replace_from = min(item.replace_from_ms, int(feather.date_ns(new)[0]) // 1_000_000)
        merged = feather.merge(existing, new, replace_from, job.keep)
    if item.head is not None and merged is not None:
        merged = feather.prepend(merged, _table(job, item.head), job.keep)
    if merged is None:
        return None
    item.added = feather.count_new_dates(merged, existing)
    if item.added == 0 and existing is not None and merged.equals(existing):
        return None
    try:
        feather.write_atomic(job.path, feather.to_layout(merged, job.candle_type, config.sync.funding_rate_layout),
                             uid=uid, gid=gid, sync_directory=False)
        stat = os.stat(job.path)
    except OSError as exc:
        return f"{job.label}: cannot write {job.path}: {exc.strerror or exc}"
    last, gap = _describe(job, merged)
    return FileState(stat.st_ino, stat.st_size, stat.st_mtime_ns, last, gap, feather.first_time_ms(merged))


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
