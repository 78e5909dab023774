"""The producer's watchdog and repairs: every series complete over REST (gaps, silent streams, late candles,
mark candles and funding rates when due), the markPrice stream watched, InfluxDB checked hourly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from freqfeed.exchanges.base import (
    ExchangeError,
)
from freqfeed.producer.backfill import Backfill
from freqfeed.producer.state import Funding, Series, _iso
from freqfeed.timeframes import last_closed_open

log = logging.getLogger("freqfeed.producer")  # one logger for the whole producer, as before the split

VERIFY_EVERY_MS = 3_600_000  # exchange time between checks of InfluxDB against the window
MARK_STREAM_SILENT_AFTER = 60.0  # real seconds without a markPrice update before it is reported


class Watchdog(Backfill):
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
