"""Hyperliquid's live candles and mark prices for the producer, reported exactly as Binance's LiveStreams
(freqfeed.exchanges.binance.streams) reports Binance's: the same `freqfeed.exchanges.base.StreamEvents`
(closed candles with `on_candle(pair, timeframe, Candle)`, the candle in progress with `on_live_candle`,
`on_mark_price(MarkPrice)`, `on_connect(label, reconnect)`, `on_disconnect(label, reason, retry_in)`),
so the producer can take either.

Layout, as Binance's: one connection per timeframe, labelled `klines <timeframe>` (the producer repairs that
timeframe's series over REST when it reconnects), and one `markPrice` connection with an `activeAssetCtx`
subscription per coin (mark price and the running hour's funding rate; next funding at the next full hour).
With 4 timeframes that is 5 of the 10 connections an IP may open, 5 x coins subscriptions of 1000.

Closes: a candle inferred final by the next one ("next") or by its end passing ("end": quiet coins) is passed
on as closed; the producer writes idempotently, and its own gap detection (a streamed candle more than one
period after the last) and reconnect repair fetch over REST whatever the stream did not show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from freqfeed.exchanges.base import MarkPrice, StreamEvents
from freqfeed.exchanges.hyperliquid import streams as hl
from freqfeed.exchanges.hyperliquid import wire
from freqfeed.exchanges.hyperliquid.rest import candle_from_row
from freqfeed.schema import Candle
from freqfeed.timeframes import candle_open

log = logging.getLogger(__name__)

QUEUE_LIMIT = 100_000  # closed candles and mark prices waiting for the producer; beyond: dropped, REST repairs
# Real seconds without a candle message before a candle connection is replaced. Hyperliquid pushes a candle
# only when a trade changes it: a connection of quiet coins (and the simulator, which pushes a candle once an
# exchange minute) carries one message a minute, and streams.SILENCE_TIMEOUT's 60 s raced the next minute's
# message: a reconnect (and a REST repair of every series) at about every close.
CANDLE_SILENCE_S = 90.0


class HyperliquidLiveStreams:
    def __init__(self, ws_url: str, coins: Mapping[str, str], timeframes: Sequence[str], events: StreamEvents, *,
                 now: Callable[[], int], mark: bool = True, **options: Any) -> None:
        """`coins`: pair -> coin as meta spells it (wire.Universe.coins); `options` go to every
        HyperliquidStreams (ping_every, silence_timeout, grace_s, max_reconnect_delay)."""
        for timeframe in timeframes:
            wire.interval_ms(timeframe)  # ValueError for 6h, 1M, ...
        self.events = events
        self.now = now
        self.pairs = {coin: pair for pair, coin in coins.items()}
        self.dropped = 0
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self._worker: asyncio.Task[None] | None = None
        adapter = _Adapter(self)
        candle_options = {"silence_timeout": CANDLE_SILENCE_S, **options}
        self.clients = [hl.HyperliquidStreams(ws_url, [wire.candle_subscription(coin, tf) for coin in coins.values()],
                                              adapter, now=now, label=f"klines {tf}", **candle_options)
                        for tf in timeframes]
        if mark:
            self.clients.append(hl.HyperliquidStreams(
                ws_url, [wire.Subscription("activeAssetCtx", coin) for coin in coins.values()], adapter, now=now,
                label="markPrice", **options))

    def start(self) -> None:
        """Connect in the background (call from a running event loop), as LiveStreams.start."""
        self._worker = asyncio.create_task(self._deliver())
        for client in self.clients:
            client.start()

    async def stop(self) -> None:
        for client in self.clients:
            await client.stop()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    def put(self, kind: str, item: Any) -> None:
        try:
            self._queue.put_nowait((kind, item))
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("Hyperliquid streams: the producer is behind, %d updates dropped (REST repairs closes)",
                            self.dropped)

    async def _deliver(self) -> None:
        """One worker: the producer hears closes in the order they were inferred."""
        while True:
            kind, item = await self._queue.get()
            try:
                if kind == "candle":
                    await self.events.on_candle(*item)
                else:
                    await self.events.on_mark_price(item)
            except Exception:  # one bad update must not stop the stream
                log.exception("Hyperliquid streams: delivering a %s failed", kind)


class _Adapter(hl.StreamEvents):
    """Hyperliquid's stream events -> the producer's StreamEvents, coins -> pairs, rows -> Candles."""

    def __init__(self, feed: HyperliquidLiveStreams) -> None:
        self.feed = feed

    def _candle(self, row: dict[str, Any]) -> tuple[str, str, Candle] | None:
        pair = self.feed.pairs.get(str(row.get("s")))
        if pair is None:
            return None
        return pair, str(row["i"]), candle_from_row(row)

    def on_close(self, close: hl.Close) -> None:
        candle = self._candle(close.row)
        if candle is not None:
            self.feed.put("candle", candle)

    def on_candle(self, row: dict[str, Any]) -> None:
        candle = self._candle(row)
        if candle is not None:
            self.feed.events.on_live_candle(*candle, self.feed.now())

    def on_message(self, channel: str, data: Any) -> None:
        if channel != "activeAssetCtx" or not isinstance(data, dict):
            return
        pair = self.feed.pairs.get(str(data.get("coin")))
        ctx = data.get("ctx") or {}
        try:
            mark = float(ctx["markPx"])
            funding = float(ctx["funding"]) if ctx.get("funding") is not None else None
        except (KeyError, TypeError, ValueError):
            return
        if pair is not None:
            now = self.feed.now()
            self.feed.put("mark", MarkPrice(pair, mark, funding, candle_open(now, "1h") + wire.FUNDING_INTERVAL_MS,
                                            now))

    def on_connect(self, label: str, reconnect: bool) -> None:
        self.feed.events.on_connect(label, reconnect)

    def on_disconnect(self, label: str, reason: str, retry_in: float) -> None:
        self.feed.events.on_disconnect(label, reason, retry_in)
