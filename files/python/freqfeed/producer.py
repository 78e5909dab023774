"""`freqfeed produce`: keep InfluxDB complete with Binance candles, mark prices and funding rates.

Start-up: connect to InfluxDB (create the database if it may), validate the pairs against the
exchange, open the live streams, then backfill over REST whatever InfluxDB is missing within the
last `backfill.candles` candles of every series (all of it on an empty database, only the gap after
a restart), with "now" taken from the exchange's clock.

Live: cryptofeed delivers closed candles and mark-price updates; every point is buffered and written
in batches. A watchdog keeps every series complete over REST:
- a gap between two streamed candles, or the candles missed while a connection was down, are fetched
  as soon as it is seen (or the connection is back);
- a series whose stream has delivered no closed candle for `producer.silent_periods` periods
  (connection up or not) is logged as silent and filled over REST at every close until it recovers;
- 1h mark-price candles and settled funding rates are fetched over REST when they become due (the
  markPrice stream tells when a funding time has passed);
- once an hour (exchange time), and after the write buffer overflowed, InfluxDB is checked against
  the window and anything missing is fetched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from freqfeed import exchanges
from freqfeed.config import Config, exchange_symbol
from freqfeed.exchanges.base import (
    ExchangeClock,
    ExchangeError,
    MarkPrice,
    ProducerStreams,
    StreamEvents,
    UnknownPairsError,
)
from freqfeed.influx import InfluxDB, InfluxDBAuthError, InfluxDBError, InfluxDBNotFound, InfluxDBUnavailable
from freqfeed.live import LiveCandles
from freqfeed.schema import (
    COMPLETE_FIELD,
    FUNDING_MEASUREMENT,
    FUTURE_MARGIN_MS,
    MARK_MEASUREMENT,
    MARK_TIMEFRAME,
    Candle,
    candle_line,
    counts_select,
    funding_has_mark_price,
    funding_line,
    has_mark_series,
    last_times_select,
    ohlcv_measurement,
    series_select,
    use_exchange,
)
from freqfeed.timeframes import candle_open, last_closed_open, timeframe_ms
from freqfeed.writer import BufferedWriter

log = logging.getLogger(__name__)

VERIFY_EVERY_MS = 3_600_000  # exchange time between checks of InfluxDB against the window
MARK_STREAM_SILENT_AFTER = 60.0  # real seconds without a markPrice update before it is reported
HEALTH_EVERY = 5.0  # real seconds between health-file updates
SHUTDOWN_FLUSH_TIMEOUT = 5.0


@dataclass(eq=False)
class Series:
    """One candle series in InfluxDB and what the producer knows about it."""

    kind: str  # "ohlcv" (streamed) or "mark" (fetched over REST when due)
    pair: str
    timeframe: str
    measurement: str
    last_open: int | None = None  # newest candle stored or queued; older ones are complete
    last_delivery_ms: int | None = None  # exchange time of the stream's last closed candle
    silent: bool = False
    retry_at: int = 0  # exchange time before which an empty tail fetch is not repeated
    exchange_gaps: set[int] = field(default_factory=set)  # opens Binance has no candle for

    @property
    def streamed(self) -> bool:
        return self.kind == "ohlcv"

    @property
    def period(self) -> int:
        return timeframe_ms(self.timeframe)

    @property
    def label(self) -> str:
        return f"{self.pair} {self.timeframe}" + (" mark" if self.kind == "mark" else "")


@dataclass(eq=False)
class Funding:
    pair: str
    last_time: int | None = None  # newest settled funding time stored
    next_time: int | None = None  # next funding time not fetched yet
    retry_at: int = 0


DAY_MS = 86_400_000
DETAIL_CANDLES = 5000  # windows up to this many candles: read the stored times at once; longer: a count per day first
REPORT_EVERY = 30.0  # real seconds between backfill progress lines


@dataclass(eq=False)
class _Gap:
    """What one series lacks in its window, and what the backfill has fetched of it."""

    series: Series
    count: int
    expected: int
    ranges: list[tuple[int, int]]
    fetched: int = 0
    requests: int = 0


@dataclass
class _Progress:
    """How far a backfill is: pages and candles done of the total, and when it should be done."""

    pages_total: int
    candles_total: int
    pages_done: int = 0
    candles_done: int = 0
    started: float = field(default_factory=time.monotonic)
    reported: float = field(default_factory=time.monotonic)

    def page_done(self, candles: int) -> None:
        self.pages_done += 1
        self.candles_done += candles

    def eta_seconds(self) -> float | None:
        if not self.pages_done:
            return None
        return (time.monotonic() - self.started) / self.pages_done * (self.pages_total - self.pages_done)

    def due_report(self) -> bool:
        """A progress line is due every REPORT_EVERY seconds, at every tenth of the pages, and at the end."""
        total = max(self.pages_total, 1)
        tenth = self.pages_done * 10 // total > (self.pages_done - 1) * 10 // total
        if time.monotonic() - self.reported >= REPORT_EVERY or tenth or self.pages_done == self.pages_total:
            self.reported = time.monotonic()
            return self.pages_total > 1
        return False

    def line(self, weight: int, peak: int, limit: int) -> str:
        eta = self.eta_seconds()
        share = 100 * self.pages_done / max(self.pages_total, 1)
        return (f"{self.pages_done}/{self.pages_total} pages ({share:.0f}%), "
                f"{self.candles_done:,}/{self.candles_total:,} candles, weight {weight:,} so far (peak {peak}/min of "
                f"{limit}), ETA {'?' if eta is None else _duration(eta)}")

    def as_json(self) -> dict[str, Any]:
        eta = self.eta_seconds()
        return {"pages_done": self.pages_done, "pages_total": self.pages_total, "candles_done": self.candles_done,
                "candles_total": self.candles_total, "eta_seconds": None if eta is None else round(eta)}


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def missing_ranges(grid_start: int, grid_end: int, period: int, present: np.ndarray,
                   skip: set[int]) -> list[tuple[int, int]]:
    """Contiguous [first, last] open-time ranges on the grid that are neither present nor skipped."""
    grid = np.arange(grid_start, grid_end + 1, period, dtype=np.int64)
    missing = grid[~np.isin(grid, present)]
    if skip:
        missing = missing[~np.isin(missing, np.fromiter(skip, dtype=np.int64))]
    if missing.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(missing) != period)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [missing.size - 1]))
    return [(int(missing[s]), int(missing[e])) for s, e in zip(starts, ends, strict=True)]


class Producer(StreamEvents):
    def __init__(self, config: Config, influx: InfluxDB | None = None) -> None:
        self.config = config
        self.influx = influx or InfluxDB(config.influxdb, retries=1)
        self.clock = ExchangeClock()
        use_exchange(config.exchange.name)
        self.exchange = exchanges.get(config.exchange.name)
        self.rest = self.exchange.producer_rest(config, self.clock)
        self.writer = BufferedWriter(self.influx, batch_size=config.producer.batch_size,
                                     flush_interval=config.producer.flush_interval,
                                     buffer_limit=config.producer.buffer_limit)
        self.live = LiveCandles(self.writer, config.producer.live_interval)
        self.series: dict[tuple[str, str, str], Series] = {}
        for timeframe in config.timeframes:
            for pair in config.pairs:
                self.series[("ohlcv", pair, timeframe)] = Series("ohlcv", pair, timeframe, ohlcv_measurement(timeframe))
        self.funding: dict[str, Funding] = {}
        if config.futures:
            for pair in config.pairs:
                if has_mark_series(config.exchange.name):
                    self.series[("mark", pair, MARK_TIMEFRAME)] = Series("mark", pair, MARK_TIMEFRAME,
                                                                         MARK_MEASUREMENT)
                self.funding[pair] = Funding(pair)
        self.counters: Counter[str] = Counter()
        self.stopping = asyncio.Event()
        self.streams: ProducerStreams | None = None
        self.stream_started_ms: int | None = None
        self.mark_stream_last = time.monotonic()
        self.mark_stream_silent = False
        self.stream_seen: dict[str, float] = {}  # timeframe -> monotonic time of its stream's last kline message
        self.stream_up: dict[str, bool] = {}
        self.metrics_server: Any = None  # stream label -> connected (freqfeed.metrics reads both)
        self.backfill_summary: dict[str, Any] = {}
        self.backfill_progress: _Progress | None = None
        self.last_verify_ms = 0
        self._pending: dict[Any, tuple[int, int, str]] = {}
        self._in_flight: set[Any] = set()
        self._repairs: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = time.time()
        self.exit_code = 0
        self._funding_by_symbol = {exchange_symbol(pair): state for pair, state in self.funding.items()}

    # -- life cycle -------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        await self._start_metrics()
        try:
            if not await self._connect_influxdb():
                return 0
            await self.rest.sync_time()
            info = await self.rest.exchange_info()
            self.rest.check_pairs(info, self.config.pairs)
            self._start_task(self.writer.run(), "writer")
            self._start_task(self.live.run(), "live candles")
            self.streams = self.exchange.producer_streams(self.config, info, self.rest, self)
            self.streams.start()
            self._start_task(self._health_loop(), "health")
            await asyncio.sleep(1.0)
            await self.rest.sync_time()  # a second sample gives the exchange clock's rate
            self.stream_started_ms = self.clock.now()
            self._start_task(self._start_up(), "backfill")
            await self.stopping.wait()
            return self.exit_code
        except UnknownPairsError as exc:
            log.error("%s", exc)
            return 2
        except (InfluxDBAuthError, InfluxDBNotFound) as exc:
            log.error("%s", exc)
            return 1
        except ExchangeError as exc:
            log.error("cannot start: %s", exc)
            return 1
        finally:
            await self._shutdown()

    async def _start_metrics(self) -> None:
        """/metrics on producer.metrics_listen; a port taken is logged, the producer runs on without."""
        if not self.config.producer.metrics_listen:
            return
        from freqfeed import metrics

        server = metrics.MetricsServer(self.config.producer.metrics_listen,
                                       metrics.registry_of(metrics.ProducerCollector(self)))
        try:
            await server.start()
        except OSError as exc:
            log.error("cannot serve metrics on %s: %s (set producer.metrics_listen to a free HOST:PORT, or empty "
                      "to turn them off)", self.config.producer.metrics_listen, exc.strerror or exc)
            return
        self.metrics_server = server

    async def _connect_influxdb(self) -> bool:
        reported = 0.0
        while not self.stopping.is_set():
            try:
                await asyncio.to_thread(self.influx.ping)
                await asyncio.to_thread(self.influx.ensure_database)
                log.info("InfluxDB database %r at %s is ready", self.config.influxdb.database,
                         self.config.influxdb.url)
                return True
            except InfluxDBUnavailable as exc:
                if time.monotonic() - reported > 60:
                    log.error("%s; waiting for InfluxDB before starting", exc)
                    reported = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=5)
        return False

    def _start_task(self, coroutine: Any, name: str) -> None:
        """Run a task for the producer's lifetime; if it dies, the producer stops with exit status 1
        (systemd restarts it, and the start-up backfill closes any gap) instead of running on half-dead."""
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.append(task)

        def check(done: asyncio.Task[Any]) -> None:
            if not done.cancelled() and done.exception() is not None and not self.stopping.is_set():
                log.error("internal task %r failed, stopping", name, exc_info=done.exception())
                self.exit_code = 1
                self.stopping.set()

        task.add_done_callback(check)

    async def _start_up(self) -> None:
        while True:
            try:
                await self.backfill()
                break
            except InfluxDBError as exc:
                log.error("backfill interrupted, InfluxDB: %s; starting it again in 10s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=10)
                if self.stopping.is_set():
                    return
        self._start_task(self._repairer(), "repairer")
        self._start_task(self._watchdog(), "watchdog")
        self._start_task(self._time_sync_loop(), "time sync")

    async def _time_sync_loop(self) -> None:
        """Keep the exchange clock estimate fresh (weight 1 every 30 s)."""
        while True:
            await asyncio.sleep(30)
            await self.rest.sync_time()

    async def _shutdown(self) -> None:
        started = time.monotonic()
        if self.streams is not None:
            try:
                await asyncio.wait_for(self.streams.stop(), timeout=3)
            except Exception as exc:
                log.debug("stopping the streams: %s", exc)
        for task in self._tasks:
            if task.get_name() != "writer":
                task.cancel()
        if self.writer.pending and not await self.writer.drain(SHUTDOWN_FLUSH_TIMEOUT):
            log.error("shutdown: %d buffered points not written (InfluxDB unavailable); the next start-up "
                      "backfill fetches them again", self.writer.pending)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.rest.close()
        self.influx.close()
        self._write_health()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        log.info("stopped in %.1fs: %d points written, %d candles streamed, %d fetched over REST",
                 time.monotonic() - started, self.writer.written, self.counters["streamed candles"],
                 self.counters["fetched candles"])

    # -- backfill and verification ---------------------------------------------------------------

    async def backfill(self) -> None:
        """Whatever InfluxDB lacks in every series' window, fetched over REST: the newest page of every series
        first (bots can start), then older pages, reporting progress. A restart (even after SIGKILL) fetches
        only what InfluxDB does not hold yet."""
        started = time.monotonic()
        requests, weight, written = self.rest.stats.requests, self.rest.stats.weight, self._written_total()
        log.info("backfill: checking %d series in InfluxDB (%s)", len(self.series) + len(self.funding),
                 ", ".join(f"{tf}: {self.config.window(tf)} candles" for tf in self.config.timeframes)
                 + (f", {'mark and ' if has_mark_series(self.config.exchange.name) else ''}"
                    f"funding: {self.config.window(MARK_TIMEFRAME, hourly=True)} hours"
                    if self.funding else ""))
        gaps: list[_Gap] = []
        for group in self._groups():
            if self.stopping.is_set():
                return
            gaps += await self._missing(group)
        # funding rates (one request per pair) once every series has its newest page, before the older ones
        await self._fill(gaps, backfill=True,
                         after_newest=(lambda: self._verify_funding(backfill=True)) if self.funding else None)
        if self.stopping.is_set():
            return
        if self.funding:
            await self._seed_live_marks()
        self.backfill_summary = {
            "series": len(self.series) + len(self.funding),
            "points_written": self._written_total() - written,
            "requests": self.rest.stats.requests - requests,
            "weight": self.rest.stats.weight - weight,
            "peak_used_weight": self.rest.stats.peak_used_weight,
            "weight_limit": self.rest.weight_limit,
            "seconds": round(time.monotonic() - started, 1),
        }
        s = self.backfill_summary
        log.info("backfill done: %d series, %d points written, %d requests, weight %d (peak %d/min of %d, "
                 "budget %d%%), %.1fs", s["series"], s["points_written"], s["requests"], s["weight"],
                 s["peak_used_weight"], s["weight_limit"], round(self.config.exchange.max_weight_share * 100),
                 s["seconds"])
        self.last_verify_ms = self.clock.now()
        self._write_health()

    async def _seed_live_marks(self) -> None:
        """The 1h mark candle in progress of every pair whose backfill did not already bring it."""
        now_open = last_closed_open(self.clock.now(), MARK_TIMEFRAME) + timeframe_ms(MARK_TIMEFRAME)
        for series in self.series.values():
            if series.kind != "mark" or self.live.mark_seeded(series.pair, now_open) or self.stopping.is_set():
                continue
            try:
                _, current = await self.rest.klines_and_current(series.pair, MARK_TIMEFRAME, now_open - series.period,
                                                                now_open - series.period, mark=True)
            except ExchangeError as exc:
                log.warning("cannot fetch the mark candle in progress of %s: %s", series.pair, exc)
                continue
            if current is not None:
                self.live.seed_mark(series.pair, current, self.clock.now())

    def _written_total(self) -> int:
        return self.counters["fetched candles"] + self.counters["funding rates"]

    def _groups(self) -> list[list[Series]]:
        groups: dict[str, list[Series]] = {}
        for series in self.series.values():
            groups.setdefault(series.measurement, []).append(series)
        return list(groups.values())

    def _window(self, timeframe: str, *, hourly: bool = False) -> tuple[int, int]:
        """The first and last candle opens of a series' window (`hourly`: mark candles, funding)."""
        end = last_closed_open(self.clock.now() - self._margin(), timeframe)
        return end - (self.config.window(timeframe, hourly=hourly) - 1) * timeframe_ms(timeframe), end

    def _margin(self) -> int:
        """Exchange ms after a close before the candle counts as due (one real second)."""
        return int(1000 * self.clock.rate)

    async def _missing(self, group: list[Series]) -> list[_Gap]:
        """What InfluxDB lacks in the window of each series of one measurement.

        One grouped count per measurement; for the series that are short, where the holes are: read from
        the stored times when the window is small, else first from a count per day (a window can be
        360 days long: its times are never all read), then the stored times of the days that are partly
        there only.
        """
        measurement, timeframe, period = group[0].measurement, group[0].timeframe, group[0].period
        start, end = self._window(timeframe, hourly=group[0].kind == "mark")
        expected = (end - start) // period + 1
        horizon = self.clock.now() + FUTURE_MARGIN_MS
        # A candle counts as stored once it has every field of Binance's kline (points written before the
        # gateway have only OHLCV: counting `trades` fetches those once more).
        present = "close" if measurement == MARK_MEASUREMENT else COMPLETE_FIELD
        counts_answer, lasts_answer = await asyncio.to_thread(
            self.influx.select, [counts_select(measurement, start, end, field=present),
                                 last_times_select(measurement, start, horizon)])
        counts = {s.tags.get("pair"): int(s.values[0][1]) for s in counts_answer if s.values}
        lasts = {s.tags.get("pair"): int(s.values[0][0]) for s in lasts_answer if s.values}
        for series in group:
            series.exchange_gaps = {t for t in series.exchange_gaps if t >= start}
        incomplete = [s for s in group if 0 < counts.get(s.pair, 0) < expected - len(s.exchange_gaps)]
        stored = await self._stored_times(measurement, present, incomplete, start, end, period)
        gaps = []
        for series in group:
            count = counts.get(series.pair, 0)
            if count >= expected - len(series.exchange_gaps):
                ranges: list[tuple[int, int]] = []
            else:
                ranges = missing_ranges(start, end, period, stored.get(series.pair, np.empty(0, dtype=np.int64)),
                                        series.exchange_gaps)
            newest = max(end, lasts.get(series.pair, start))
            if series.last_open is not None and series.last_open > end + period:
                # the stream delivered candles before this check: repair between the window and them
                self._enqueue(series, end + period, series.last_open - period, "start-up")
            series.last_open = max(series.last_open or newest, newest)
            gaps.append(_Gap(series, count, expected, ranges))
        return gaps

    async def _stored_times(self, measurement: str, present: str, incomplete: list[Series], start: int, end: int,
                            period: int) -> dict[str, np.ndarray]:
        """The opens InfluxDB holds in [start, end] for each incomplete series."""
        if not incomplete:
            return {}
        if (end - start) // period + 1 <= DETAIL_CANDLES or DAY_MS % period:
            answers = await asyncio.to_thread(self.influx.select, [
                series_select(measurement, (present,), s.pair, start, end) for s in incomplete])
            return {s.pair: np.array([row[0] for row in answer[0].values] if answer else [], dtype=np.int64)
                    for s, answer in zip(incomplete, answers, strict=True)}
        [daily] = await asyncio.to_thread(self.influx.select, [counts_select(
            measurement, start, end, field=present, pairs=[s.pair for s in incomplete], every_ms=DAY_MS)])
        partial: list[tuple[str, int, int]] = []
        stored: dict[str, list[np.ndarray]] = {s.pair: [] for s in incomplete}
        for buckets in daily:
            pair = buckets.tags.get("pair", "")
            if pair not in stored:
                continue
            for day, count in buckets.values:
                first, last = max(int(day), start), min(int(day) + DAY_MS - period, end)
                full = (last - first) // period + 1
                if not count:
                    continue
                if int(count) >= full:
                    stored[pair].append(np.arange(first, last + 1, period, dtype=np.int64))
                else:
                    partial.append((pair, first, last))
        if partial:
            answers = await asyncio.to_thread(self.influx.select, [
                series_select(measurement, (present,), pair, first, last) for pair, first, last in partial])
            for (pair, _, _), answer in zip(partial, answers, strict=True):
                stored[pair].append(np.array([row[0] for row in answer[0].values] if answer else [], dtype=np.int64))
        return {pair: np.concatenate(parts) if parts else np.empty(0, dtype=np.int64) for pair, parts in stored.items()}

    def _pages(self, gaps: list[_Gap]) -> list[tuple[_Gap, int, int]]:
        """The REST pages that fill the gaps: the newest page of every series first, then the older ones."""
        pages = []
        for gap in gaps:
            period = gap.series.period
            # Binance adds the candle in progress to a mark page that reaches the present (the live mark
            # candle starts from it): that page holds one closed candle less, to stay one request
            present = candle_open(self.clock.now(), gap.series.timeframe) - period if gap.series.kind == "mark" \
                else None
            for first, last in gap.ranges:
                current = 1 if present is not None and last >= present else 0
                size = self.rest.page_candles((last - first) // period + 1 + current)
                top = last
                while top >= first:
                    room = size - 1 if current and top == last and size > 1 else size
                    bottom = max(first, top - (room - 1) * period)
                    pages.append((gap, bottom, top))
                    top = bottom - period
        pages.sort(key=lambda page: page[2], reverse=True)
        return pages

    async def _fill(self, gaps: list[_Gap], *, backfill: bool,
                    after_newest: Callable[[], Awaitable[None]] | None = None) -> None:
        """Fetch the gaps' pages (newest first); `after_newest` runs once each series has had its newest page."""
        pages = self._pages(gaps)
        newest = sum(1 for gap in gaps if gap.ranges)  # the first pages: one per series with something missing
        progress = _Progress(len(pages), sum((last - first) // gap.series.period + 1 for gap, first, last in pages))
        if backfill:
            self.backfill_progress = progress
        if backfill and len(pages) > len(gaps):
            log.info("backfill: %d pages (%s candles) to fetch, the newest page of every series first", len(pages),
                     f"{progress.candles_total:,}")
        for index, (gap, first, last) in enumerate(pages):
            if self.stopping.is_set():
                return
            if index == newest and after_newest is not None:
                await after_newest()
                after_newest = None
            requests = self.rest.stats.requests
            fetched = await self._fetch(gap.series, first, last)
            gap.fetched += fetched
            gap.requests += self.rest.stats.requests - requests
            progress.page_done((last - first) // gap.series.period + 1)
            if backfill and len(pages) > 1:
                await self._page_written()
            if backfill and progress.due_report():
                log.info("backfill: %s", progress.line(self.rest.stats.weight, self.rest.stats.peak_used_weight,
                                                       self.rest.weight_limit))
                self._write_health()
        if after_newest is not None and not self.stopping.is_set():
            await after_newest()
        for gap in gaps:
            if backfill:
                log.info("backfill %s: %s", gap.series.label,
                         f"{gap.fetched} candles written in {gap.requests} requests "
                         f"(InfluxDB had {gap.count} of {gap.expected})" if gap.ranges else
                         f"complete ({gap.count} of {gap.expected})")
            elif gap.fetched:
                log.warning("InfluxDB was missing %d candles of %s; fetched them over REST", gap.fetched,
                            gap.series.label)

    async def _page_written(self) -> None:
        """Wait until the page just fetched is in InfluxDB before the next: a SIGKILL during a long backfill
        then loses (and a restart fetches again) the page in flight at most, and a backfill never runs ahead
        of an InfluxDB that does not take writes."""
        waited = False
        mark = self.writer.added
        while not self.stopping.is_set() and not await self.writer.written_through(mark, timeout=10):
            if not waited:
                log.warning("backfill: waiting for InfluxDB to take writes before fetching more")
                waited = True

    async def _fetch(self, series: Series, first: int, last: int) -> int:
        """Candles with opens in [first, last] over REST into the write buffer; returns how many."""
        mark = series.kind == "mark"
        try:
            # for mark candles, the page that reaches the present also holds Binance's candle in progress:
            # the live mark candle starts from it
            candles, current = await self.rest.klines_and_current(series.pair, series.timeframe, first, last,
                                                                  mark=mark, current=mark)
        except ExchangeError as exc:
            log.error("cannot fetch %s over REST: %s", series.label, exc)
            return 0
        if current is not None:
            self.live.seed_mark(series.pair, current, self.clock.now())
        self._write_candles(series, candles)
        self.counters["fetched candles"] += len(candles)
        returned = {c.open_time for c in candles}
        settled = self.clock.now() - 2 * series.period  # newer candles may simply not be published yet
        gaps = [t for t in range(first, last + 1, series.period) if t not in returned and t < settled]
        series.exchange_gaps.update(gaps)
        covered = max([*returned, *gaps], default=None)
        if covered is not None:
            series.last_open = max(series.last_open or covered, covered)
        elif last > (series.last_open or 0):  # nothing yet (not published, or not closed by our clock)
            series.retry_at = self.clock.now() + min(series.period // 4, int(30_000 * self.clock.rate))
        return len(candles)

    def _write_candles(self, series: Series, candles: list[Candle]) -> None:
        self.writer.add(candle_line(series.measurement, series.pair, c) for c in candles)

    async def _verify_funding(self, *, backfill: bool) -> None:
        start, _ = self._window(MARK_TIMEFRAME, hourly=True)
        horizon = self.clock.now() + FUTURE_MARGIN_MS
        lasts_answer, rates_answer, marks_answer = await asyncio.to_thread(self.influx.select, [
            last_times_select(FUNDING_MEASUREMENT, start, horizon), counts_select(FUNDING_MEASUREMENT, start, horizon),
            counts_select(FUNDING_MEASUREMENT, start, horizon, field="mark_price")])
        lasts = {s.tags.get("pair"): int(s.values[0][0]) for s in lasts_answer if s.values}
        rates = {s.tags.get("pair"): int(s.values[0][1]) for s in rates_answer if s.values}
        marks = {s.tags.get("pair"): int(s.values[0][1]) for s in marks_answer if s.values}
        with_marks = funding_has_mark_price(self.config.exchange.name)
        for state in self.funding.values():
            if self.stopping.is_set():
                return
            stored_last = lasts.get(state.pair)
            if with_marks and marks.get(state.pair, 0) < rates.get(state.pair, 0):
                stored_last = None  # rates written before they carried the mark price: fetch them again
            elif stored_last is not None:
                state.last_time = max(state.last_time or 0, stored_last)
            written = await self._fetch_funding(state, (stored_last + 1) if stored_last else start)
            if backfill:
                log.info("backfill %s funding: %d rates written (newest stored was %s)", state.pair, written,
                         _iso(stored_last))
        if backfill:
            with contextlib.suppress(ExchangeError):
                for symbol_time in (await self.rest.next_funding_times()).items():
                    self._set_next_funding(*symbol_time)

    def _set_next_funding(self, symbol: str, next_time: int) -> None:
        state = self._funding_by_symbol.get(symbol)
        if state is not None and state.next_time is None and next_time > (state.last_time or 0):
            state.next_time = next_time

    async def _fetch_funding(self, state: Funding, start: int) -> int:
        try:
            rates = await self.rest.funding_rates(state.pair, start, self.clock.now())
        except ExchangeError as exc:
            log.error("cannot fetch funding rates of %s: %s", state.pair, exc)
            return 0
        self.writer.add(funding_line(state.pair, rate) for rate in rates)
        self.counters["funding rates"] += len(rates)
        if rates:
            state.last_time = max(state.last_time or 0, rates[-1].time)
        return len(rates)

    async def verify(self) -> None:
        """Check every series against InfluxDB (after the write buffer is empty) and repair it."""
        if not await self.writer.drain(timeout=30):
            return  # InfluxDB is not taking writes: check once it does
        try:
            gaps = []
            for group in self._groups():
                gaps += await self._missing(group)
            await self._fill(gaps, backfill=False)
            if self.funding:
                await self._verify_funding(backfill=False)
        except InfluxDBError as exc:
            log.warning("cannot check InfluxDB for gaps now: %s", exc)
            return
        self.last_verify_ms = self.clock.now()

    # -- stream events ----------------------------------------------------------------------------

    async def on_candle(self, pair: str, timeframe: str, candle: Candle) -> None:
        series = self.series.get(("ohlcv", pair, timeframe))
        if series is None:
            return
        self._write_candles(series, [candle])
        self.counters["streamed candles"] += 1
        self.stream_seen[timeframe] = time.monotonic()
        series.last_delivery_ms = self.clock.now()
        if series.silent:
            series.silent = False
            log.warning("stream of %s delivers closed candles again", series.label)
        if series.last_open is not None and candle.open_time > series.last_open + series.period:
            self._enqueue(series, series.last_open + series.period, candle.open_time - series.period,
                          "gap in the stream")
        if series.last_open is None or candle.open_time > series.last_open:
            series.last_open = candle.open_time

    def on_live_candle(self, pair: str, timeframe: str, candle: Candle, event_ms: int) -> None:
        self.stream_seen[timeframe] = time.monotonic()
        if ("ohlcv", pair, timeframe) in self.series:
            self.live.update(pair, timeframe, candle, event_ms)

    async def on_mark_price(self, update: MarkPrice) -> None:
        self.live.mark(update.pair, update.mark_price, update.event_ms, update.next_funding_ms)
        self.mark_stream_last = time.monotonic()
        if self.mark_stream_silent:
            self.mark_stream_silent = False
            log.warning("markPrice stream delivers again")
        self.counters["mark price updates"] += 1
        if update.next_funding_ms:
            self._set_next_funding(exchange_symbol(update.pair), update.next_funding_ms)

    def on_connect(self, label: str, reconnect: bool) -> None:
        self.stream_up[label] = True
        if not reconnect:
            log.info("%s stream connected (%s)", label, self.config.exchange.ws_url)
            return
        self.counters["reconnects"] += 1
        log.warning("%s stream reconnected; fetching what closed while it was down", label)
        if label.startswith("klines "):
            timeframe = label.rsplit(maxsplit=1)[-1]
            for series in self.series.values():
                if series.streamed and series.timeframe == timeframe:
                    # what closed before the connection was back is never streamed: no margin here
                    self._repair_if_due(series, "reconnect", margin=False)

    def on_disconnect(self, label: str, reason: str, retry_in: float) -> None:
        self.counters["disconnects"] += 1
        self.stream_up[label] = False
        log.warning("%s stream disconnected (%s); reconnecting in %.0fs", label, reason, retry_in)

    def on_malformed(self, label: str, error: str, message: str) -> None:
        self.counters["malformed messages"] += 1
        count = self.counters["malformed messages"]
        if count <= 20 or count % 100 == 0:
            log.warning("malformed message on the %s stream skipped (%d so far): %s: %r", label, count, error,
                        message)

    # -- watchdog and repairs ---------------------------------------------------------------------

    def _repair_if_due(self, series: Series, reason: str, *, margin: bool = True) -> bool:
        """Fetch the series' tail over REST if candles have closed that it does not hold yet.

        `last_open` moves only with what REST returns, so a candle not published yet is asked for again.
        """
        now = self.clock.now()
        if series.last_open is None or series in self._pending or series in self._in_flight:
            return False
        if reason != "reconnect" and now < series.retry_at:
            return False
        due = last_closed_open(now - (self._margin() if margin else 0), series.timeframe)
        if due <= series.last_open:
            return False
        self._enqueue(series, series.last_open + series.period, due, reason)
        return True

    def _enqueue(self, key: Any, start: int, end: int, reason: str) -> None:
        if end < start:
            return
        current = self._pending.get(key)
        if current is not None:
            self._pending[key] = (min(start, current[0]), max(end, current[1]), current[2])
            return
        self._pending[key] = (start, end, reason)
        self._repairs.put_nowait(key)

    async def _repairer(self) -> None:
        while True:
            key = await self._repairs.get()
            start, end, reason = self._pending.pop(key)
            self.counters[f"repair: {reason}"] += 1
            self._in_flight.add(key)
            try:
                await self._repair(key, start, end, reason)
            finally:
                self._in_flight.discard(key)

    async def _repair(self, key: Series | Funding, start: int, end: int, reason: str) -> None:
        if isinstance(key, Funding):
            written = await self._fetch_funding(key, start)
            if written:
                log.info("funding %s: %d settled rate(s) written", key.pair, written)
                key.next_time = None  # the markPrice stream (or premiumIndex) tells the next one
            else:  # not published yet: ask again a little later
                key.retry_at = self.clock.now() + int(10_000 * self.clock.rate)
            return
        fetched = await self._fetch(key, start, end)
        if reason != "closed" or not fetched:
            log.info("repaired %s over REST: %d candles %s..%s (%s)", key.label, fetched, _iso(start), _iso(end),
                     reason)

    async def _watchdog(self) -> None:
        shortest = min(s.period for s in self.series.values())
        while True:
            now = self.clock.now()
            for series in self.series.values():
                if series.last_open is None:
                    continue
                if not series.streamed:
                    self._repair_if_due(series, "closed")
                    continue
                due = last_closed_open(now - self._margin(), series.timeframe)
                if due <= series.last_open:
                    continue
                delivered = series.last_delivery_ms or self.stream_started_ms or now
                if now - delivered > self.config.producer.silent_periods * series.period:
                    if not series.silent:
                        series.silent = True
                        self.counters["silent streams"] += 1
                        log.error("stream silent: %s has delivered no closed candle for %.1f periods (connection "
                                  "up or not); filling it over REST until it recovers", series.label,
                                  (now - delivered) / series.period)
                    self._repair_if_due(series, "silent stream")
                elif now - (due + series.period) > max(series.period // 4, int(5000 * self.clock.rate)):
                    self._repair_if_due(series, "late candle")
            self._watch_funding(now)
            self._watch_mark_stream()

            if now - self.last_verify_ms > VERIFY_EVERY_MS or (self.writer.overflowed and
                                                              self.writer.failing_since is None):
                self.writer.overflowed = False
                await self.verify()
            await asyncio.sleep(min(5.0, max(0.05, self.clock.real_seconds(shortest / 8))))

    def _watch_funding(self, now: int) -> None:
        for state in self.funding.values():
            if state.next_time is not None and now >= state.next_time + self._margin() and now >= state.retry_at:
                self._enqueue(state, (state.last_time or state.next_time - 1) + 1, now, "funding time")

    def _watch_mark_stream(self) -> None:
        if not self.funding or self.mark_stream_silent:
            return
        if time.monotonic() - self.mark_stream_last > MARK_STREAM_SILENT_AFTER:
            self.mark_stream_silent = True
            self.counters["silent streams"] += 1
            log.error("markPrice stream silent for %.0fs: funding times come from premiumIndex over REST until it "
                      "recovers", MARK_STREAM_SILENT_AFTER)
            self._tasks.append(asyncio.create_task(self._refresh_funding_times()))

    async def _refresh_funding_times(self) -> None:
        while self.mark_stream_silent:
            with contextlib.suppress(ExchangeError):
                for symbol, next_time in (await self.rest.next_funding_times()).items():
                    self._set_next_funding(symbol, next_time)
            await asyncio.sleep(self.clock.real_seconds(3_600_000))

    # -- health -----------------------------------------------------------------------------------

    async def _health_loop(self) -> None:
        while True:
            self._write_health()
            await asyncio.sleep(HEALTH_EVERY)

    def health(self) -> dict[str, Any]:
        now = self.clock.now()
        series = {}
        for s in self.series.values():
            lag = None if s.last_open is None else max(0.0, (now - s.last_open - s.period) / 1000)
            series[s.label] = {"last_open": s.last_open, "lag_seconds": lag, "silent": s.silent}
        return {
            "updated": int(time.time() * 1000), "exchange_now": now, "started": int(self.started * 1000),
            "pid": os.getpid(), "backfill": self.backfill_summary, "counters": dict(self.counters),
            "backfill_progress": self.backfill_progress.as_json() if self.backfill_progress else None,
            "live_candles_written": self.live.written,
            "writer": {"written": self.writer.written, "pending": self.writer.pending,
                       "peak_pending": self.writer.peak_pending, "dropped": self.writer.dropped,
                       "failing_since_s": None if self.writer.failing_since is None
                       else round(time.monotonic() - self.writer.failing_since, 1),
                       "last_error": self.writer.last_error},
            "rest": {"requests": self.rest.stats.requests, "weight": self.rest.stats.weight,
                     "peak_used_weight": self.rest.stats.peak_used_weight,
                     "rate_limited": self.rest.stats.rate_limited, "banned": self.rest.stats.banned},
            "series": series,
        }

    def _write_health(self) -> None:
        path: Path | None = self.config.producer.health_file
        if path is None:
            return
        try:
            temp = path.with_name(f".{path.name}.tmp")
            temp.write_text(json.dumps(self.health(), indent=1))
            os.replace(temp, path)
        except OSError as exc:
            log.warning("cannot write the health file %s: %s", path, exc)


def _iso(ms: int | None) -> str:
    if ms is None:
        return "none"
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(ms / 1000))


def main(config: Config) -> int:
    return asyncio.run(Producer(config).run())
