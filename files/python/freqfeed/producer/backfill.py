"""The producer's backfill planning and verification: what InfluxDB lacks in every series' window (grouped
counts, then the holes), the REST pages that fill it (the newest page of every series first), progress, and
the funding rates; `verify` runs the same check later (the watchdog calls it hourly).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from freqfeed.exchanges.base import (
    ExchangeError,
)
from freqfeed.influx import InfluxDBError
from freqfeed.producer.health import Health
from freqfeed.producer.state import Funding, Series, _iso
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
    series_select,
)
from freqfeed.timeframes import candle_open, last_closed_open, timeframe_ms

log = logging.getLogger("freqfeed.producer")  # one logger for the whole producer, as before the split

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


class Backfill(Health):
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
