"""The producer's state: its series (candles, mark candles) and funding per pair, the attributes every concern
reads, and the repair queue.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from freqfeed.config import Config
from freqfeed.exchanges.base import (
    Exchange,
    ExchangeClock,
    ProducerRest,
    ProducerStreams,
)
from freqfeed.influx import InfluxDB
from freqfeed.live import LiveCandles
from freqfeed.timeframes import timeframe_ms
from freqfeed.writer import BufferedWriter

if TYPE_CHECKING:
    from freqfeed.producer.backfill import _Progress


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


class ProducerState:
    """The producer's state, shared by its concerns (freqfeed.producer's Producer sets every attribute), and
    the repair queue they all feed. The concerns build on each other in one line, each in its module:
    ProducerState -> Health -> Backfill -> Watchdog -> LiveEvents -> Producer."""

    config: Config
    influx: InfluxDB
    clock: ExchangeClock
    exchange: Exchange
    rest: ProducerRest
    writer: BufferedWriter
    live: LiveCandles
    series: dict[tuple[str, str, str], Series]
    funding: dict[str, Funding]
    counters: Counter[str]
    stopping: asyncio.Event
    streams: ProducerStreams | None
    stream_started_ms: int | None
    mark_stream_last: float
    mark_stream_silent: bool
    stream_seen: dict[str, float]  # timeframe -> monotonic time of its stream's last kline message
    stream_up: dict[str, bool]  # stream label -> connected (freqfeed.metrics reads both)
    metrics_server: Any
    backfill_summary: dict[str, Any]
    backfill_progress: _Progress | None
    last_verify_ms: int
    _pending: dict[Any, tuple[int, int, str]]
    _in_flight: set[Any]
    _repairs: asyncio.Queue[Any]
    _tasks: list[asyncio.Task[Any]]
    started: float
    exit_code: int
    _funding_by_symbol: dict[str, Funding]
    listing_suspects: set[str]  # pairs with a silent series, for the next check of the exchange's listing
    listing_next_check: float  # monotonic time before which the listing is not checked again
    listing_task: asyncio.Task[None] | None
    ended_pairs: dict[str, int]  # pair -> exchange time its delisting was seen (bounded by the configured pairs)

    def _enqueue(self, key: Any, start: int, end: int, reason: str) -> None:
        if end < start:
            return
        current = self._pending.get(key)
        if current is not None:
            self._pending[key] = (min(start, current[0]), max(end, current[1]), current[2])
            return
        self._pending[key] = (start, end, reason)
        self._repairs.put_nowait(key)


def _iso(ms: int | None) -> str:
    if ms is None:
        return "none"
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(ms / 1000))
