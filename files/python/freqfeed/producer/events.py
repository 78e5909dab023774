"""The producer's live events: what the exchange package's streams report (freqfeed.exchanges.base.StreamEvents):
closed candles written, candles in progress and mark prices to the live candles, gaps and reconnects repaired.
"""

from __future__ import annotations

import logging
import time

from freqfeed.config import exchange_symbol
from freqfeed.exchanges.base import (
    MarkPrice,
    StreamEvents,
)
from freqfeed.producer.watchdog import Watchdog
from freqfeed.schema import (
    Candle,
)

log = logging.getLogger("freqfeed.producer")  # one logger for the whole producer, as before the split

class LiveEvents(Watchdog, StreamEvents):
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
