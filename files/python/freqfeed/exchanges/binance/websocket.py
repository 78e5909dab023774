"""Binance's websocket client: one connection loop shared by the producer's streams (klines and mark price on
the routed base `/market`, streams.py) and the gateway's books (depth and book tickers on `/public`, books.py).

Why our own and not cryptofeed: cryptofeed 2.4.1 (the last release that runs on Debian 12's Python 3.11)
connects Binance futures to the bare `wss://fstream.binance.com`, which no longer delivers klines or mark price
(routed bases since 2026-04-23), accepts `wss://` addresses only, drops a connection on any malformed frame,
gives up after 10 failed connects and leaves out half of Binance's kline fields: using it meant subclassing its
ConnectionHandler and rewriting its endpoints, i.e. leaning on its internals. cryptofeed 3.x fixes the routes but
needs Python 3.13. Binance's protocol is small (combined streams in the URL, JSON SUBSCRIBE/UNSUBSCRIBE, server
pings answered with pongs), so this module is the whole client. Figures: docs/exchanges.md, "Stream clients".

One `Connection` is one websocket on `base`/stream, carrying at most `max_streams` streams (wire.MarketInfo:
200 futures, 1024 spot):
- the streams it has when it (re)connects go in the URL (`/stream?streams=a/b/c`, no control message at all);
  streams added or removed while it is up are sent as SUBSCRIBE/UNSUBSCRIBE, 100 names a message and at most
  `control_per_second` messages a second (Binance allows 10 incoming messages a second per connection, spot 5,
  pings and pongs included);
- Binance pings every 3 minutes and drops clients that do not answer: aiohttp's autoping answers every ping;
  `heartbeat` (optional) also pings from our side and closes the connection when no pong comes;
- silence: a connection that carries streams and receives no stream event for `silence` seconds is closed and
  replaced (a half-open socket, or a base that accepts subscriptions and never delivers them);
- Binance closes every connection after 24 h: that is a disconnect like any other, reconnected at once (1 s);
- reconnects with a capped exponential backoff (1 s doubling to `max_reconnect_delay`), reset once a connection
  has delivered stream events, so a base that refuses or stays silent is never hammered;
- every connect and disconnect is reported to the `Listener` (the producer repairs over REST what closed while
  a connection was down; the gateway stops serving the books of a connection that dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

log = logging.getLogger(__name__)

MAX_RECONNECT_DELAY = 30.0
PARAMS_PER_MESSAGE = 100  # stream names per SUBSCRIBE/UNSUBSCRIBE message
CONTROL_PER_SECOND = 4  # control messages we send per connection and second (Binance: 10 futures, 5 spot)


@dataclass
class Connection:
    """One websocket and the streams it carries (or is about to)."""

    ident: int
    streams: set[str] = field(default_factory=set)  # subscribed, or being subscribed
    label: str = ""  # what the listener calls it ("klines 3m", "book streams 0")
    up: bool = False
    since: float = 0.0  # monotonic: when the current websocket came up
    last_event: float = 0.0  # monotonic: the newest stream event on it
    connects: int = 0  # how often it came up
    pending_subscribe: list[str] = field(default_factory=list)
    pending_unsubscribe: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Listener(Protocol):
    """What a StreamSocket reports; every method must return quickly."""

    async def on_message(self, conn: Connection, text: str) -> bool: ...  # True: it was a stream event

    def on_up(self, conn: Connection, reconnect: bool) -> None: ...

    def on_down(self, conn: Connection, reason: str, retry_in: float) -> None: ...


# -- pure helpers ------------------------------------------------------------------------------


def stream_url(base: str, streams: Iterable[str]) -> str:
    """The combined-stream address of `streams` on `base` (no streams: bare `/stream`, for live SUBSCRIBE)."""
    names = sorted(streams)
    return f"{base.rstrip('/')}/stream" + (f"?streams={'/'.join(names)}" if names else "")


def split_streams(streams: Sequence[str], per_connection: int) -> list[list[str]]:
    """`streams` in connection-sized chunks, in their order (never more than `per_connection` each)."""
    if per_connection < 1:
        raise ValueError("per_connection must be at least 1")
    return [list(streams[i:i + per_connection]) for i in range(0, len(streams), per_connection)]


def control_messages(method: str, names: Sequence[str], first_id: int,
                     per_message: int = PARAMS_PER_MESSAGE) -> list[dict[str, Any]]:
    """SUBSCRIBE/UNSUBSCRIBE messages for `names`, `per_message` names each, ids counting from `first_id`."""
    return [{"method": method, "params": list(names[i:i + per_message]), "id": first_id + n}
            for n, i in enumerate(range(0, len(names), per_message))]


def next_delay(delay: float, maximum: float = MAX_RECONNECT_DELAY) -> float:
    """The reconnect delay after `delay`: doubled, capped."""
    return min(delay * 2, maximum)


# -- the client --------------------------------------------------------------------------------


class StreamSocket:
    """Connections to one Binance websocket base, each kept up by its own task until close()."""

    def __init__(self, base: str, listener: Listener, *, max_streams: int, silence: float,
                 heartbeat: float | None = None, max_reconnect_delay: float = MAX_RECONNECT_DELAY,
                 control_per_second: float = CONTROL_PER_SECOND) -> None:
        self.base = base.rstrip("/")
        self.listener = listener
        self.max_streams = max_streams
        self.silence = silence
        self.heartbeat = heartbeat
        self.max_reconnect_delay = max_reconnect_delay
        self.control_per_second = control_per_second
        self.connections: list[Connection] = []
        self.reconnects = 0  # connections that went down (and are being reconnected)
        self.silences = 0  # of them, replaced because they went silent
        self.messages = 0
        self._session: aiohttp.ClientSession | None = None

    def open(self, streams: Sequence[str], label: str) -> list[Connection]:
        """Connections carrying `streams` (split at max_streams), started in the running event loop."""
        return [self.add(chunk, label) for chunk in split_streams(streams, self.max_streams)]

    def add(self, streams: Iterable[str], label: str = "") -> Connection:
        """One more connection carrying `streams` (at most max_streams), started in the running event loop."""
        names = set(streams)
        if len(names) > self.max_streams:
            raise ValueError(f"{len(names)} streams on one connection: Binance allows {self.max_streams}")
        conn = Connection(len(self.connections), names, label=label)
        self.connections.append(conn)
        conn.task = asyncio.create_task(self._run(conn), name=f"binance websocket {label or conn.ident}")
        return conn

    def subscribe(self, conn: Connection, names: Iterable[str]) -> None:
        new = sorted(set(names) - conn.streams)
        if len(conn.streams) + len(new) > self.max_streams:
            raise ValueError(f"more than {self.max_streams} streams on one connection")
        conn.streams.update(new)
        conn.pending_subscribe.extend(new)
        conn.wake.set()

    def unsubscribe(self, conn: Connection, names: Iterable[str]) -> None:
        stale = sorted(set(names) & conn.streams)
        conn.streams.difference_update(stale)
        conn.pending_unsubscribe.extend(stale)
        conn.wake.set()

    async def close(self) -> None:
        tasks = [c.task for c in self.connections if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self, conn: Connection) -> None:
        delay = 1.0
        while True:
            reason = "closed"
            try:
                if self._session is None:
                    self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
                in_url = set(conn.streams)
                async with self._session.ws_connect(stream_url(self.base, in_url), heartbeat=self.heartbeat,
                                                    autoping=True, max_msg_size=1 << 22, compress=0) as ws:
                    conn.up, conn.since = True, time.monotonic()
                    # what changed while connecting is sent as control messages
                    conn.pending_subscribe = sorted(conn.streams - in_url)
                    conn.pending_unsubscribe = sorted(in_url - conn.streams)
                    conn.connects += 1
                    self.listener.on_up(conn, conn.connects > 1)
                    sender = asyncio.create_task(self._control(conn, ws))
                    try:
                        reason, streaming = await self._receive(conn, ws)
                    finally:
                        sender.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await sender
                    if streaming:
                        delay = 1.0  # it streamed: the next reconnect starts from 1 s again
                if reason == "closed":
                    reason = f"closed by the server ({ws.close_code})"
            except asyncio.CancelledError:
                conn.up = False
                raise
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                reason = f"{type(exc).__name__}: {exc}"[:300]
            conn.up = False
            self.reconnects += 1
            self.listener.on_down(conn, reason, delay)
            await asyncio.sleep(delay)
            delay = next_delay(delay, self.max_reconnect_delay)

    async def _receive(self, conn: Connection, ws: aiohttp.ClientWebSocketResponse) -> tuple[str, bool]:
        """Messages until the connection ends or, while it has streams, stays silent for `silence` seconds
        (closed by `_watch`, so that it is replaced). Returns why it ended and whether any stream event came.
        No timeout per receive: one watcher task per connection costs less than a timer per message."""
        streaming = False
        silent: list[str] = []
        watcher = asyncio.create_task(self._watch(conn, ws, silent))
        try:
            while True:
                message = await ws.receive()
                if message.type == aiohttp.WSMsgType.TEXT:
                    if await self.listener.on_message(conn, message.data):
                        conn.last_event = time.monotonic()
                        self.messages += 1
                        streaming = True
                elif message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                      aiohttp.WSMsgType.CLOSED):
                    if silent:
                        return silent[0], streaming
                    error = ws.exception()
                    return ("heartbeat: no pong" if isinstance(error, aiohttp.ServerTimeoutError) else "closed"), \
                        streaming
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher

    async def _watch(self, conn: Connection, ws: aiohttp.ClientWebSocketResponse, silent: list[str]) -> None:
        """Close `ws` once it carries streams and no stream event came for `silence` seconds (the time without
        streams does not count); the reason goes into `silent`."""
        last = time.monotonic()
        while True:
            now = time.monotonic()
            if not conn.streams:
                last = now
            elif conn.last_event > last:
                last = conn.last_event
            if now - last >= self.silence:
                conn.up = False
                self.silences += 1
                silent.append(f"silent for {self.silence:g}s with {len(conn.streams)} streams")
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), timeout=2)
                return
            await asyncio.sleep(max(self.silence - (now - last), 0.05))

    async def _control(self, conn: Connection, ws: aiohttp.ClientWebSocketResponse) -> None:
        """SUBSCRIBE/UNSUBSCRIBE in batches, at most `control_per_second` messages a second."""
        ident = 1
        while True:
            for method, pending in (("UNSUBSCRIBE", conn.pending_unsubscribe), ("SUBSCRIBE", conn.pending_subscribe)):
                while pending:
                    batch, pending[:] = pending[:PARAMS_PER_MESSAGE], pending[PARAMS_PER_MESSAGE:]
                    [message] = control_messages(method, batch, ident)
                    await ws.send_str(json.dumps(message))
                    ident += 1
                    await asyncio.sleep(1 / self.control_per_second)
            conn.wake.clear()
            await conn.wake.wait()
