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
s): the connections are websocket.StreamSocket's, the producer's streams' client too.

Half-open connections are noticed: a websocket ping every `gateway.book_heartbeat` seconds (closed when no
pong comes), and a connection that carries streams but delivers no message for `gateway.book_silence`
seconds is closed and replaced, its books not served meanwhile (the requests are forwarded).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from freqfeed.config import Config, exchange_symbol
from freqfeed.exchanges.binance import wire
from freqfeed.exchanges.binance.gateway.history import Forward
from freqfeed.exchanges.binance.websocket import Connection, StreamSocket

log = logging.getLogger(__name__)

DEPTH_LEVELS = 20  # the deepest partial book stream; 5 and 10 are its top
_Connection = Connection  # the shared client's connection (websocket.py)


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
        self.socket = StreamSocket(self.base, self, max_streams=self.max_streams, silence=config.gateway.book_silence,
                                   heartbeat=config.gateway.book_heartbeat)
        self._connections = self.socket.connections
        self.served = 0
        self.forwarded: dict[str, int] = {}
        self.oldest_served_ms = 0.0  # the oldest book age served in the current minute
        self._oldest_minute = 0
        self.reconnects = 0

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
                self.socket.unsubscribe(conn, stale)
        have = set().union(*(c.streams for c in self._connections)) if self._connections else set()
        missing = sorted(wanted - have)
        for conn in self._connections:
            room = self.max_streams - len(conn.streams)
            if room > 0 and missing:
                taken, missing = missing[:room], missing[room:]
                self.socket.subscribe(conn, taken)
        while missing:
            taken, missing = missing[:self.max_streams], missing[self.max_streams:]
            self.socket.add(taken, f"book streams {len(self._connections)}")

    # -- connections -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the streams in line with demand (idle symbols dropped) until cancelled."""
        self.reconcile()
        try:
            while True:
                await asyncio.sleep(10)
                self.reconcile()
        finally:
            await self.socket.close()

    @property
    def silences(self) -> int:
        """Connections replaced because they went silent."""
        return self.socket.silences

    # -- websocket.Listener --------------------------------------------------------------------

    def on_up(self, conn: Connection, reconnect: bool) -> None:
        if reconnect:
            log.info("book streams %d connected again (%d streams)", conn.ident, len(conn.streams))

    def on_down(self, conn: Connection, reason: str, retry_in: float) -> None:
        self.reconnects += 1
        log.warning("book streams %d down (%s); reconnecting in %.0fs", conn.ident, reason, retry_in)

    async def on_message(self, conn: Connection, text: str) -> bool:
        return self._on_message(conn, text)

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
