"""The producer's watchdog and repairs: every series complete over REST (gaps, silent streams, late candles,
mark candles and funding rates when due), the markPrice stream watched, InfluxDB checked hourly.

A pair delisted mid-run (exchanges whose `ends_delisted_pairs`: Hyperliquid): its stream falls silent, so a
silent series makes the watchdog ask the exchange's listing again (exchange_info: one request, at most once
per LISTING_CHECK_EVERY_S); a pair the exchange no longer lists gets one last fetch of its candles and
funding (its final candle as the exchange keeps it), an error in the log, and no request after: its series
end at the delisting (instead of a REST repair at every close, forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from freqfeed.config import exchange_symbol
from freqfeed.exchanges.base import (
    ExchangeError,
    UnknownPairsError,
)
from freqfeed.producer.backfill import Backfill
from freqfeed.producer.state import Funding, Series, _iso
from freqfeed.timeframes import last_closed_open

log = logging.getLogger("freqfeed.producer")  # one logger for the whole producer, as before the split

VERIFY_EVERY_MS = 3_600_000  # exchange time between checks of InfluxDB against the window
MARK_STREAM_SILENT_AFTER = 60.0  # real seconds without a markPrice update before it is reported
LISTING_CHECK_EVERY_S = 60.0  # real seconds between two checks of the listing that silent series ask for


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
            pending = self._pending.pop(key, None)
            if pending is None:  # its pair ended (delisted) after it was queued
                continue
            start, end, reason = pending
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
                        if self.exchange.ends_delisted_pairs:
                            self.listing_suspects.add(series.pair)
                    self._repair_if_due(series, "silent stream")
                elif now - (due + series.period) > max(series.period // 4, int(5000 * self.clock.rate)):
                    self._repair_if_due(series, "late candle")
            self._watch_funding(now)
            self._watch_mark_stream()
            self._check_listing_if_due()

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

    # -- pairs delisted mid-run -----------------------------------------------------------------------

    def _check_listing_if_due(self) -> None:
        if not self.listing_suspects or time.monotonic() < self.listing_next_check:
            return
        if self.listing_task is not None and not self.listing_task.done():
            return
        self.listing_next_check = time.monotonic() + LISTING_CHECK_EVERY_S
        suspects = sorted(self.listing_suspects)
        self.listing_suspects.clear()
        self.listing_task = asyncio.create_task(self._check_listing(suspects), name="listing check")

    async def _check_listing(self, suspects: list[str]) -> None:
        """Ask the exchange which of `suspects` (pairs with a silent series) it no longer lists; end those."""
        try:
            info = await self.rest.exchange_info()
            self.counters["listing checks"] += 1
            ended: dict[str, str] = {}
            for pair in suspects:
                try:
                    self.rest.check_pairs(info, [pair])
                except UnknownPairsError as exc:
                    ended[pair] = str(exc)
            for pair, why in ended.items():
                await self._end_pair(pair, why)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never stop the watchdog: checked again in a minute
            self.listing_suspects.update(p for p in suspects if p not in self.ended_pairs)
            log.warning("cannot check the exchange's listing of %s now (again in %.0fs): %s", ", ".join(suspects),
                        LISTING_CHECK_EVERY_S, exc)

    async def _end_pair(self, pair: str, why: str) -> None:
        """A pair the exchange no longer lists: one last fetch of each series' tail (the final candle as the
        exchange keeps it) and of its funding, then no request for it any more."""
        now = self.clock.now()
        series = [s for s in self.series.values() if s.pair == pair]
        last_stored = []
        for one in series:
            if one.last_open is None:
                continue
            # from before the last candle the stream closed to now; the candle of the delisting may still count as
            # in progress by the clock, but nothing trades any more: it is final as the exchange shows it
            streamed = one.last_delivery_ms if one.last_delivery_ms is not None else one.last_open
            start = min(streamed, one.last_open + one.period) - 2 * one.period
            try:
                candles, current = await self.rest.klines_and_current(one.pair, one.timeframe, start, now,
                                                                      mark=one.kind == "mark")
            except ExchangeError as exc:
                log.error("cannot fetch %s over REST: %s", one.label, exc)
                continue
            candles += [current] if current is not None else []
            self._write_candles(one, candles)
            self.counters["fetched candles"] += len(candles)
            last_stored.append(f"{one.timeframe} {_iso(max((c.open_time for c in candles), default=one.last_open))}")
        funding = self.funding.get(pair)
        if funding is not None and funding.last_time is not None:
            await self._fetch_funding(funding, funding.last_time + 1)
        for key in [k for k, s in self.series.items() if s.pair == pair]:
            self._pending.pop(self.series.pop(key), None)
        if funding is not None:
            self._pending.pop(self.funding.pop(pair), None)
            self._funding_by_symbol.pop(exchange_symbol(pair), None)
        self.ended_pairs[pair] = now
        self.counters["pairs delisted"] += 1
        log.error("%s is no longer listed (%s): its series end at the delisting (newest candles %s); no more "
                  "requests for it. Remove it from `pairs` (a restart with it configured refuses to start)",
                  pair, why, ", ".join(last_stored))
