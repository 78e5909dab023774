"""The candles in progress, from the producer's live streams to InfluxDB's `live_candle` measurement.

Binance returns the candle still open as the last row of every klines answer, and freqtrade drops that
row as incomplete: so a gateway answering klines needs the real current candle, not just the closed
ones. The producer already receives it (kline updates with `x: false`, every 250 ms on Binance); this
module keeps the newest update of each series and writes the changed ones at most every `interval`
seconds, rewriting each series' point in place (its time is the candle's open).

Mark-price candles have no stream of their own on Binance. The 1h mark candle in progress starts from
Binance's own (the REST page the producer fetches when each hour closes includes the new hour's first
moments) and follows the `@markPrice@1s` stream: high, low and close from each mark price. Until an
hour's candle is seeded from REST it is not written: a candle whose open was not seen is never passed
off as Binance's.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

from freqfeed.schema import LIVE_MARK, LIVE_TRADE, MARK_TIMEFRAME, Candle, live_line
from freqfeed.timeframes import candle_open
from freqfeed.writer import BufferedWriter

log = logging.getLogger(__name__)


@dataclass
class _Live:
    candle: Candle
    event_ms: int
    dirty: bool = True
    next_funding_ms: int | None = None


class LiveCandles:
    def __init__(self, writer: BufferedWriter, interval: float) -> None:
        self.writer = writer
        self.interval = interval
        self._series: dict[tuple[str, str, str], _Live] = {}
        self._marks: dict[str, _Live] = {}  # pair -> the 1h mark candle in progress, once seeded
        self.written = 0

    # -- trade candles ----------------------------------------------------------------------------

    def update(self, pair: str, timeframe: str, candle: Candle, event_ms: int) -> None:
        """A kline update of a candle in progress (newer than what is held, or ignored)."""
        key = (pair, timeframe, LIVE_TRADE)
        held = self._series.get(key)
        if held is not None and (candle.open_time, event_ms) < (held.candle.open_time, held.event_ms):
            return
        self._series[key] = _Live(candle, event_ms)

    # -- mark candles -----------------------------------------------------------------------------

    def seed_mark(self, pair: str, candle: Candle, as_of_ms: int) -> None:
        """Binance's own 1h mark candle in progress (from REST), as of `as_of_ms`: the candle's open, high and
        low so far; the stream carries it on from there."""
        held = self._marks.get(pair)
        if held is not None and held.candle.open_time == candle.open_time:
            candle = replace(candle, high=max(candle.high, held.candle.high), low=min(candle.low, held.candle.low),
                             close=held.candle.close if held.event_ms > as_of_ms else candle.close)
            as_of_ms = max(as_of_ms, held.event_ms)
        elif held is not None and held.candle.open_time > candle.open_time:
            return
        self._marks[pair] = _Live(candle, as_of_ms, next_funding_ms=held.next_funding_ms if held else None)

    def mark_seeded(self, pair: str, open_time: int) -> bool:
        held = self._marks.get(pair)
        return held is not None and held.candle.open_time >= open_time

    def mark(self, pair: str, mark_price: float, event_ms: int, next_funding_ms: int | None = None) -> None:
        """One mark price (the `@markPrice@1s` stream) carries the seeded candle of its hour on."""
        held = self._marks.get(pair)
        if held is None or event_ms <= held.event_ms:
            return
        if candle_open(event_ms, MARK_TIMEFRAME) != held.candle.open_time:
            # a new hour: its candle is seeded from Binance's own when the producer fetches the closed one
            return
        c = held.candle
        self._marks[pair] = _Live(replace(c, high=max(c.high, mark_price), low=min(c.low, mark_price),
                                          close=mark_price), event_ms,
                                  next_funding_ms=next_funding_ms or held.next_funding_ms)

    # -- writing ----------------------------------------------------------------------------------

    def flush(self) -> int:
        """Queue the changed candles for InfluxDB; returns how many."""
        lines = []
        for (pair, timeframe, price), live in self._series.items():
            if live.dirty:
                lines.append(live_line(pair, timeframe, price, live.candle, live.event_ms))
                live.dirty = False
        for pair, live in self._marks.items():
            if live.dirty:
                lines.append(live_line(pair, MARK_TIMEFRAME, LIVE_MARK, live.candle, live.event_ms,
                                       live.next_funding_ms))
                live.dirty = False
        if lines:
            self.writer.add(lines)
            self.written += len(lines)
        return len(lines)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.flush()
