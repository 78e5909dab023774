"""Order books and book tickers from Binance's websocket streams: depth without REST weight.

A futures bot with order-book pricing asks `/fapi/v1/depth` at every loop for each open trade, and once
more per open order: the book, not the candles, is most of a bot's weight. Binance publishes the top of
every book on websocket streams at no REST weight, so the gateway keeps, per symbol the bots ask about
(and the configured pairs from the start), the partial book `<symbol>@depth20@100ms` and the book ticker
`<symbol>@bookTicker`, and answers `depth` with limit 5, 10 or 20 (the top of the 20 levels of the same
moment) and `ticker/bookTicker` from them, in Binance's REST shapes (`lastUpdateId`, `E`, `T` of the
stream event, string prices and quantities).

Freshness is guaranteed: a book received more than `gateway.book_max_age` ago, or on a connection that has
dropped, is never served (a book ticker, which Binance pushes only on change, stays current while its
connection is up and delivered an event within `book_max_age`, never from before a reconnect); the request is
forwarded instead, and counted. A symbol nobody asked about for `gateway.book_idle` seconds is unsubscribed
(the configured pairs stay). Connections keep within Binance's limits: at most 200 streams each (spot 1024)
and a few control messages a second (the limit is 10, spot 5), and reconnect with a growing delay (1 s to 30
s), as the producer's streams do.

Half-open connections are noticed: a websocket ping every `gateway.book_heartbeat` seconds (closed when no
pong comes), and a connection that carries streams but delivers no message for `gateway.book_silence`
seconds is closed and replaced, its books not served meanwhile (the requests are forwarded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from freqfeed.config import Config, exchange_symbol
from freqfeed.exchanges.binance import wire
from freqfeed.exchanges.binance.gateway.history import Forward

log = logging.getLogger(__name__)

DEPTH_LEVELS = 20  # the deepest partial book stream; 5 and 10 are its top
MAX_CONTROL_PER_SECOND = 4  # SUBSCRIBE/UNSUBSCRIBE messages we send per connection and second (Binance: 10, spot 5)
MAX_RECONNECT_DELAY = 30.0
PARAMS_PER_MESSAGE = 100


@dataclass
class Book:
    event_ms: int
    transaction_ms: int
    update_id: int
    bids: list[list[str]]
    asks: list[list[str]]
    received: float  # monotonic
    connection: int


@dataclass
class Ticker:
    update_id: int
    transaction_ms: int
    bid: str
    bid_qty: str
    ask: str
    ask_qty: str
    received: float
    connection: int


@dataclass
class _Connection:
    ident: int
    streams: set[str] = field(default_factory=set)  # subscribed (or being subscribed)
    up: bool = False
    since: float = 0.0  # monotonic: when the current websocket came up
    last_event: float = 0.0  # monotonic: the newest stream event on it
    pending_subscribe: list[str] = field(default_factory=list)
    pending_unsubscribe: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class BookStreams:
    def __init__(self, config: Config, known: dict[str, Any]) -> None:
        self.config = config
        self.market = "futures" if config.futures else "spot"
        self.known = known  # exchangeInfo's symbols (formats by symbol), filled by the gateway
        self.trading: list[str] = []  # exchangeInfo's trading symbols, in its order: "every book ticker"
        self.base = config.gateway.ws_url.rstrip("/")
        self.max_streams = wire.market_info(self.market).max_streams_per_connection
        self.books: dict[str, Book] = {}
        self.tickers: dict[str, Ticker] = {}
        self.last_asked: dict[str, float] = {}  # symbol -> monotonic
        self.pinned = {exchange_symbol(pair) for pair in config.pairs}
        self.all_tickers_asked = 0.0  # monotonic: when a bot last asked for every book ticker
        self._connections: list[_Connection] = []
        self._session: aiohttp.ClientSession | None = None
        self.served = 0
        self.forwarded: dict[str, int] = {}
        self.oldest_served_ms = 0.0  # the oldest book age served in the current minute
        self._oldest_minute = 0
        self.reconnects = 0
        self.silences = 0  # connections replaced because they went silent

    # -- what is streamed ------------------------------------------------------------------------

    def streams_of(self, symbol: str) -> list[str]:
        lower = symbol.lower()
        return [f"{lower}@depth{DEPTH_LEVELS}@100ms", f"{lower}@bookTicker"]

    def wanted(self) -> set[str]:
        now = time.monotonic()
        idle = self.config.gateway.book_idle
        symbols = {s for s in self.pinned if s in self.known}
        symbols |= {s for s, at in self.last_asked.items() if now - at < idle and s in self.known}
        if now - self.all_tickers_asked < idle:
            return {stream for s in symbols for stream in self.streams_of(s)} | \
                {f"{s.lower()}@bookTicker" for s in self.trading}
        return {stream for s in symbols for stream in self.streams_of(s)}

    def ask(self, symbol: str) -> None:
        """A bot asked about `symbol`: stream its book (if not yet) and keep it streamed while asked."""
        first = symbol not in self.last_asked and symbol not in self.pinned
        self.last_asked[symbol] = time.monotonic()
        if first:
            self.reconcile()

    def reconcile(self) -> None:
        """Spread the wanted streams over connections (each within Binance's stream limit)."""
        wanted = self.wanted()
        for conn in self._connections:
            stale = conn.streams - wanted
            if stale:
                conn.streams -= stale
                conn.pending_unsubscribe.extend(sorted(stale))
                conn.wake.set()
        have = set().union(*(c.streams for c in self._connections)) if self._connections else set()
        missing = sorted(wanted - have)
        for conn in self._connections:
            room = self.max_streams - len(conn.streams)
            if room > 0 and missing:
                taken, missing = missing[:room], missing[room:]
                conn.streams.update(taken)
                conn.pending_subscribe.extend(taken)
                conn.wake.set()
        while missing:
            taken, missing = missing[:self.max_streams], missing[self.max_streams:]
            conn = _Connection(len(self._connections), set(taken), pending_subscribe=list(taken))
            self._connections.append(conn)
            conn.task = asyncio.create_task(self._run(conn), name=f"books {conn.ident}")

    # -- connections -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the streams in line with demand (idle symbols dropped) until cancelled."""
        self.reconcile()
        try:
            while True:
                await asyncio.sleep(10)
                self.reconcile()
        finally:
            for conn in self._connections:
                if conn.task is not None:
                    conn.task.cancel()
            await asyncio.gather(*(c.task for c in self._connections if c.task), return_exceptions=True)
            if self._session is not None:
                await self._session.close()

    async def _run(self, conn: _Connection) -> None:
        delay = 1.0
        heartbeat = self.config.gateway.book_heartbeat
        while True:
            reason = "closed"
            try:
                if self._session is None:
                    self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
                # heartbeat: a ping every `book_heartbeat` s, the connection closed when no pong comes
                async with self._session.ws_connect(f"{self.base}/stream", heartbeat=heartbeat, autoping=True,
                                                    max_msg_size=1 << 22) as ws:
                    conn.up, conn.since = True, time.monotonic()
                    conn.pending_subscribe = sorted(conn.streams)
                    conn.pending_unsubscribe = []
                    if self.reconnects or delay > 1.0:
                        log.info("book streams %d connected again (%d streams)", conn.ident, len(conn.streams))
                    sender = asyncio.create_task(self._control(conn, ws))
                    try:
                        reason, streaming = await self._receive(conn, ws)
                    finally:
                        sender.cancel()
                    if streaming:
                        delay = 1.0  # it streamed: the next reconnect starts from 1 s again
                if reason == "closed":
                    reason = f"closed by the server ({ws.close_code})"
            except asyncio.CancelledError:
                conn.up = False
                raise
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"[:200]
            conn.up = False  # its books are not served from now on
            self.reconnects += 1
            log.warning("book streams %d down (%s); reconnecting in %.0fs", conn.ident, reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY)

    async def _receive(self, conn: _Connection, ws: aiohttp.ClientWebSocketResponse) -> tuple[str, bool]:
        """Messages until the connection ends or, while it has streams, stays silent for `book_silence`
        seconds (a half-open connection: closed here, so that it is replaced). Returns why it ended and
        whether any stream event came."""
        silence = self.config.gateway.book_silence
        streaming = False
        last = time.monotonic()
        while True:
            wait = silence - (time.monotonic() - last) if conn.streams else silence
            try:
                message = await ws.receive(timeout=max(wait, 0.01))
            except TimeoutError:
                if not conn.streams:
                    last = time.monotonic()
                    continue
                conn.up = False
                self.silences += 1
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), timeout=2)
                return f"silent for {silence:g}s with {len(conn.streams)} streams", streaming
            if message.type == aiohttp.WSMsgType.TEXT:
                last = time.monotonic()
                streaming = self._on_message(conn, message.data) or streaming
            elif message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                  aiohttp.WSMsgType.CLOSED):
                return ("heartbeat: no pong" if ws.exception() is not None and isinstance(
                    ws.exception(), aiohttp.ServerTimeoutError) else "closed"), streaming

    async def _control(self, conn: _Connection, ws: aiohttp.ClientWebSocketResponse) -> None:
        """SUBSCRIBE/UNSUBSCRIBE in batches, at most MAX_CONTROL_PER_SECOND messages a second."""
        ident = 1
        while True:
            for method, pending in (("UNSUBSCRIBE", conn.pending_unsubscribe), ("SUBSCRIBE", conn.pending_subscribe)):
                while pending:
                    batch, pending[:] = pending[:PARAMS_PER_MESSAGE], pending[PARAMS_PER_MESSAGE:]
                    await ws.send_str(json.dumps({"method": method, "params": batch, "id": ident}))
                    ident += 1
                    await asyncio.sleep(1 / MAX_CONTROL_PER_SECOND)
            conn.wake.clear()
            await conn.wake.wait()

    def _on_message(self, conn: _Connection, text: str) -> bool:
        """Store a stream event; True when it was one."""
        try:
            message = json.loads(text)
            stream, data = message.get("stream"), message.get("data")
            if not isinstance(stream, str) or not isinstance(data, dict):
                return False  # an answer to SUBSCRIBE, or an error frame
            symbol, _, kind = stream.partition("@")
            symbol = symbol.upper()
            now = time.monotonic()
            conn.last_event = now
            if kind.startswith("depth"):
                if self.market == "futures":
                    self.books[symbol] = Book(int(data["E"]), int(data["T"]), int(data["u"]), data["b"], data["a"],
                                              now, conn.ident)
                else:
                    update = int(data["lastUpdateId"])
                    self.books[symbol] = Book(0, 0, update, data["bids"], data["asks"], now, conn.ident)
            elif kind == "bookTicker":
                self.tickers[symbol] = Ticker(int(data["u"]), int(data.get("T") or 0), str(data["b"]), str(data["B"]),
                                              str(data["a"]), str(data["A"]), now, conn.ident)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.debug("book streams: malformed message skipped (%s): %r", exc, text[:200])
            return False
        return True

    def _fresh(self, received: float, connection: int) -> float | None:
        """The age in ms of something received on `connection`, or None when it must not be served."""
        if connection >= len(self._connections) or not self._connections[connection].up:
            return None
        age = time.monotonic() - received
        return age * 1000 if age <= self.config.gateway.book_max_age else None

    def _ticker_fresh(self, symbol: str, ticker: Ticker) -> float | None:
        """A book ticker's age in ms, or None when it must not be served. Binance pushes a book ticker only
        when the best bid or ask changes, so a quiet symbol's ticker stays current as long as it came on the
        websocket still up and that websocket has delivered an event within `book_max_age` (it is not lagging
        or half-open); a ticker from before a reconnect is never current (changes meanwhile were missed)."""
        age = self._fresh(ticker.received, ticker.connection)
        if age is not None:
            return age
        if ticker.connection >= len(self._connections):
            return None
        conn = self._connections[ticker.connection]
        if not conn.up or ticker.received < conn.since or f"{symbol.lower()}@bookTicker" not in conn.streams:
            return None  # dropped since, or no longer subscribed there
        lag = time.monotonic() - conn.last_event
        return lag * 1000 if lag <= self.config.gateway.book_max_age else None

    def _count_forward(self, reason: str) -> None:
        self.forwarded[reason] = self.forwarded.get(reason, 0) + 1

    def _served(self, age_ms: float) -> None:
        self.served += 1
        minute = int(time.time() // 60)
        if minute != self._oldest_minute:
            self._oldest_minute, self.oldest_served_ms = minute, 0.0
        self.oldest_served_ms = max(self.oldest_served_ms, age_ms)

    # -- answers ---------------------------------------------------------------------------------

    def depth(self, query: wire.DepthQuery) -> bytes:
        """Binance's depth answer for limit <= 20 from the stream; Forward otherwise."""
        self.ask(query.symbol)
        if query.limit > DEPTH_LEVELS:
            self._count_forward("deeper than 20 levels")
            raise Forward(f"depth limit {query.limit}: only the top {DEPTH_LEVELS} levels are streamed")
        book = self.books.get(query.symbol)
        age = self._fresh(book.received, book.connection) if book is not None else None
        if book is None or age is None:
            reason = "not streamed yet" if book is None else "stale or dropped"
            self._count_forward(reason)
            raise Forward(f"depth of {query.symbol}: {reason}")
        self._served(age)
        answer = wire.depth_snapshot(self.market, book.update_id, book.bids[:query.limit], book.asks[:query.limit],
                                     event_ms=book.event_ms, transaction_ms=book.transaction_ms)
        return json.dumps(answer, separators=(",", ":")).encode()

    def book_tickers(self, selection: wire.SymbolSelection) -> bytes:
        """Binance's bookTicker answer (one symbol, a list, or every symbol) from the streams; Forward unless
        every one asked for is fresh."""
        if selection.symbols is None:
            first = time.monotonic() - self.all_tickers_asked >= self.config.gateway.book_idle
            self.all_tickers_asked = time.monotonic()
            symbols: Iterable[str] = list(self.trading)
            if first:
                self.reconcile()
        else:
            symbols = selection.symbols
            for symbol in symbols:
                self.ask(symbol)
        entries, oldest = [], 0.0
        for symbol in symbols:
            ticker = self.tickers.get(symbol)
            age = self._ticker_fresh(symbol, ticker) if ticker is not None else None
            if ticker is None or age is None:
                reason = "not streamed yet" if ticker is None else "stale or dropped"
                self._count_forward(f"book ticker {reason}")
                raise Forward(f"book ticker of {symbol}: {reason}")
            oldest = max(oldest, age)
            entries.append(wire.book_ticker(self.market, symbol, ticker.bid, ticker.bid_qty, ticker.ask,
                                            ticker.ask_qty, time_ms=ticker.transaction_ms, update_id=ticker.update_id))
        self._served(oldest)
        answer: Any = entries[0] if selection.single else entries
        return json.dumps(answer, separators=(",", ":")).encode()

    def status(self) -> dict[str, Any]:
        return {"streamed": len({s for c in self._connections if c.up for s in c.streams if "@depth" in s}),
                "ticker_streams": len({s for c in self._connections if c.up for s in c.streams if "@bookTicker" in s}),
                "connections": len(self._connections), "connections_up": sum(c.up for c in self._connections),
                "served": self.served, "forwarded": sum(self.forwarded.values()),
                "forward_reasons": dict(self.forwarded),
                "oldest_served_ms": round(self.oldest_served_ms, 1), "reconnects": self.reconnects,
                "silences": self.silences}
