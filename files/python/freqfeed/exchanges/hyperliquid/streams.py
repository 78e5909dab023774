"""Hyperliquid's websocket: one small client (aiohttp) for candles and the other market channels.

Why our own and not cryptofeed: cryptofeed 2.4.1 (the last version that runs on Debian 12's Python
3.11) has no Hyperliquid feed (cryptofeed/exchanges/ lists none), and 3.x needs Python 3.13; the protocol is
small (one URL, JSON subscribe / unsubscribe / ping), so a client of ~250 lines without anyone's private
internals is simpler than adding a feed to a library we would then patch.

- subscriptions are spread over as few connections as the per-IP limits allow (wire.plan_connections:
  10 connections, 1000 subscriptions), each subscription one message, acknowledged by the server;
- `{"method":"ping"}` every WS_PING_EVERY_S (20 s) when we sent nothing else: Hyperliquid closes a
  connection on which it sent nothing for 60 s, and the pong is what it sends;
- silence: no data message (pongs and acks do not count) for `silence_timeout` seconds -> reconnect;
- reconnects with exponential backoff (1 s doubling to 30 s, reset once a connection has carried data:
  never more than Hyperliquid's 30 new connections a minute), and every (re)connect and disconnect is
  reported, so the producer repairs over REST (candleSnapshot) what was missed;
- closes: the `candle` channel has no closed flag. CandleCloser (pure) infers them: a candle is final when
  a later candle of the same coin and interval arrives ("next"), or when its end time T has passed
  (`expire`, "end", after 2 real seconds: quiet intervals may have no later trade; the producer may confirm
  those with candleSnapshot). A gap between the two (missed candles) is reported as such. An update of a
  candle closed by its end that arrives later and differs (a stream that stalled across the close and then
  delivers what it held back) is reported again ("late"): the final state, which the producer writes over
  the one the end inferred.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from freqfeed.exchanges.hyperliquid import wire
from freqfeed.exchanges.hyperliquid.wire import Subscription

log = logging.getLogger(__name__)

CloseReason = Literal["next", "end", "late"]
MAX_RECONNECT_DELAY = 30.0
SILENCE_TIMEOUT = 60.0  # real seconds without a data message before the connection is replaced
CLOSE_GRACE_S = 2.0  # real seconds after T passed before a candle without a successor counts as closed


# -- close inference (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Close:
    """A candle inferred final: `row` as the last update showed it; `by` "next" (a later candle started),
    "end" (its end passed without a successor: confirm with candleSnapshot) or "late" (an update of a candle
    closed by "end" came after all: it replaces that one)."""

    row: dict[str, Any]
    by: CloseReason


@dataclass(frozen=True)
class Gap:
    """Candles of a series that no update showed: opens first_open .. last_open (repair over REST)."""

    coin: str
    interval: str
    first_open: int
    last_open: int


class CandleCloser:
    """The newest candle seen per (coin, interval); which ones are final. Bounded: one row per series."""

    def __init__(self, grace_s: float = CLOSE_GRACE_S) -> None:
        self.grace_s = grace_s
        self._open: dict[tuple[str, str], dict[str, Any]] = {}
        self._ended: dict[tuple[str, str], tuple[int, float]] = {}  # series -> (open, real time its end was seen)
        self._closed: dict[tuple[str, str], int] = {}  # series -> open time of the newest candle reported final
        self._by_end: dict[tuple[str, str], dict[str, Any]] = {}  # series -> the row last reported by "end"

    def update(self, row: dict[str, Any]) -> tuple[list[Close], list[Gap]]:
        """A `candle` message's data. Returns what it closes (the previous candle, unless already closed by
        its end) and any gap between them. Stale updates (an older candle) change nothing."""
        key = (str(row["s"]), str(row["i"]))
        t = int(row["t"])
        closed = self._closed.get(key)
        if closed is not None and t <= closed:
            ended = self._by_end.get(key)
            if ended is not None and int(ended["t"]) == t and row != ended:  # held back across its end
                self._by_end[key] = row
                return [Close(row, "late")], []
            return [], []  # a late update of a candle already reported final
        last = self._open.get(key)
        if last is None or t >= int(last["t"]):
            self._open[key] = row
        if last is None or t <= int(last["t"]):
            return [], []
        self._by_end.pop(key, None)  # the stream has moved on past it: nothing held back any more
        closes = [Close(last, "next")] if (closed if closed is not None else -1) < int(last["t"]) else []
        self._closed[key] = int(last["t"])
        gaps = []
        period = wire.interval_ms(key[1])
        if t - int(last["t"]) > period:
            gaps.append(Gap(key[0], key[1], int(last["t"]) + period, t - period))
        return closes, gaps

    def expire(self, now_ms: int, real_s: float) -> list[Close]:
        """Candles whose end (T) passed, by the exchange clock `now_ms`, at least `grace_s` real seconds ago
        (`real_s`: a monotonic clock) without a successor. The grace is real time, so that a successor on its
        way is waited for whatever the speed of the exchange's clock (a simulator's may run 120x)."""
        closes = []
        for key, row in self._open.items():
            t = int(row["t"])
            if int(row["T"]) >= now_ms or self._closed.get(key, -1) >= t:
                continue
            seen = self._ended.get(key)
            if seen is None or seen[0] != t:
                self._ended[key] = (t, real_s)
                seen = self._ended[key]
            if real_s - seen[1] >= self.grace_s:
                self._closed[key] = t
                self._by_end[key] = row
                closes.append(Close(row, "end"))
        return closes

    def forget(self, keys: Sequence[tuple[str, str]] | None = None) -> None:
        """After a disconnect: the last update seen may not be a candle's final state any more."""
        for key in list(self._open) if keys is None else keys:
            self._open.pop(key, None)
            self._ended.pop(key, None)


# -- the client ---------------------------------------------------------------------------------


class StreamEvents:
    """What the stream client reports; every method must return quickly."""

    def on_close(self, close: Close) -> None: ...

    def on_candle(self, row: dict[str, Any]) -> None: ...  # every candle update (the one in progress)

    def on_gap(self, gap: Gap) -> None: ...

    def on_message(self, channel: str, data: Any) -> None: ...  # l2Book, bbo, activeAssetCtx, allMids, trades

    def on_connect(self, label: str, reconnect: bool) -> None: ...

    def on_disconnect(self, label: str, reason: str, retry_in: float) -> None: ...


class HyperliquidStreams:
    def __init__(self, ws_url: str, subscriptions: Sequence[Subscription], events: StreamEvents, *,
                 now: Callable[[], int] | None = None, per_connection: int = wire.MAX_WS_SUBSCRIPTIONS,
                 ping_every: float = wire.WS_PING_EVERY_S, silence_timeout: float = SILENCE_TIMEOUT,
                 grace_s: float = CLOSE_GRACE_S, max_reconnect_delay: float = MAX_RECONNECT_DELAY,
                 label: str = "hyperliquid") -> None:
        self.ws_url = ws_url
        self.label = label
        self.batches = wire.plan_connections(subscriptions, per_connection=per_connection)
        self.events = events
        self.now = now or (lambda: int(time.time() * 1000))
        self.ping_every = ping_every
        self.silence_timeout = silence_timeout
        self.max_reconnect_delay = max_reconnect_delay
        self.closer = CandleCloser(grace_s)
        self.connects = 0
        self.messages = 0
        self.pongs = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._sockets: dict[int, aiohttp.ClientWebSocketResponse] = {}
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        """Connect in the background (call from a running event loop), as Binance's LiveStreams."""
        self._session = aiohttp.ClientSession()
        self._tasks = [asyncio.create_task(self._connection(i, batch)) for i, batch in enumerate(self.batches)]
        self._tasks.append(asyncio.create_task(self._expirer()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _expirer(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            for close in self.closer.expire(self.now(), time.monotonic()):
                self.events.on_close(close)

    async def _connection(self, index: int, subs: list[Subscription]) -> None:
        label = self.label  # the same for every connection of this client (the producer reads the timeframe off it)
        delay = 1.0
        connected_before = False
        while True:
            reason = "closed"
            carried_data = False
            try:
                assert self._session is not None
                async with self._session.ws_connect(self.ws_url, heartbeat=None, autoping=True) as ws:
                    self._sockets[index] = ws
                    self.connects += 1
                    carried_data = await self._run(ws, label, subs, reconnect=connected_before)
                    connected_before = True
                    reason = f"closed by the server (code {ws.close_code})"
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                reason = str(exc) or type(exc).__name__
            finally:
                self._sockets.pop(index, None)
            self.closer.forget([(s.coin or "", s.interval or "") for s in subs if s.type == "candle"])
            if carried_data:
                delay = 1.0
            self.events.on_disconnect(label, reason, delay)
            log.warning("%s: %s; reconnecting in %.0fs", label, reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_reconnect_delay)

    async def _run(self, ws: aiohttp.ClientWebSocketResponse, label: str, subs: list[Subscription], *,
                   reconnect: bool) -> bool:
        """Subscribe, then read until the connection ends or falls silent; whether it carried data."""
        for sub in subs:
            await ws.send_str(json.dumps(wire.subscribe(sub)))
        last_sent = last_data = time.monotonic()
        self.events.on_connect(label, reconnect)
        carried = False
        while True:
            now = time.monotonic()
            if now - last_data > self.silence_timeout:
                raise TimeoutError(f"no data for {self.silence_timeout:.0f}s")
            wait = max(0.05, min(last_sent + self.ping_every, last_data + self.silence_timeout) - now)
            try:
                message = await ws.receive(timeout=wait)
            except TimeoutError:
                if time.monotonic() - last_sent >= self.ping_every:
                    await ws.send_str(json.dumps(wire.PING))
                    last_sent = time.monotonic()
                continue
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                                aiohttp.WSMsgType.ERROR):
                return carried
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            if self._dispatch(label, message.data):
                last_data = time.monotonic()
                carried = True

    def _dispatch(self, label: str, text: str) -> bool:  # noqa: PLR0911 - one return per kind of frame
        """Handle one frame; whether it was data (not the welcome text, an ack, a pong or an error)."""
        if text == wire.WS_WELCOME:
            return False
        try:
            message = json.loads(text)
            channel, data = message["channel"], message.get("data")
        except (ValueError, KeyError, TypeError):
            log.warning("%s: skipped a malformed frame: %.200s", label, text)
            return False
        if channel == "pong":
            self.pongs += 1
            return False
        if channel == "subscriptionResponse":
            return False
        if channel == "error":
            log.error("%s: Hyperliquid refused: %s", label, data)
            return False
        self.messages += 1
        if channel == "candle":
            try:
                closes, gaps = self.closer.update(data)
            except (KeyError, TypeError, ValueError):
                log.warning("%s: skipped a malformed candle: %.200s", label, text)
                return False
            for gap in gaps:
                self.events.on_gap(gap)
            for close in closes:
                self.events.on_close(close)
            self.events.on_candle(data)
        else:
            self.events.on_message(channel, data)
        return True
