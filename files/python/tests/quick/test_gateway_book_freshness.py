"""When a streamed book ticker may be served: Binance pushes a book ticker only when the best bid or ask
changes, so a quiet symbol's ticker is current while its websocket is up and delivering; never across a
reconnect, after an unsubscribe, or on a lagging connection."""

from __future__ import annotations

import json

import pytest

from freqfeed import config
from freqfeed.exchanges.binance import books as books_module
from freqfeed.exchanges.binance import wire
from freqfeed.exchanges.binance.books import BookStreams, _Connection
from freqfeed.exchanges.binance.gateway.history import Forward

CONFIG = config.from_mapping({"influxdb": {"url": "http://127.0.0.1:8086", "database": "market"},
                              "pairs": ["BTC/USDT:USDT", "ETH/USDT:USDT"], "gateway": {"book_max_age": 1.0}},
                             "host.yml", {})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(books_module.time, "monotonic", fake)
    return fake


def streams(clock: Clock) -> tuple[BookStreams, _Connection]:
    books = BookStreams(CONFIG, {"BTCUSDT": None, "ETHUSDT": None})
    conn = _Connection(0, {"btcusdt@bookTicker", "ethusdt@bookTicker"}, up=True, since=clock.now)
    books._connections.append(conn)
    return books, conn


def ticker_event(symbol: str, update: int) -> str:
    data = wire.book_ticker_event("futures", symbol, update, "100.1", "2", "100.2", "3", event_ms=update,
                                  transaction_ms=update)
    return json.dumps({"stream": f"{symbol.lower()}@bookTicker", "data": data})


ONE = wire.SymbolSelection(("BTCUSDT",), single=True)


def test_a_quiet_ticker_is_served_while_its_connection_delivers(clock: Clock) -> None:
    books, conn = streams(clock)
    books._on_message(conn, ticker_event("BTCUSDT", 1))
    clock.now += 5.0  # BTC quiet for 5 s, ETH's ticker keeps the connection current
    books._on_message(conn, ticker_event("ETHUSDT", 2))
    clock.now += 0.5
    answer = json.loads(books.book_tickers(ONE))
    assert answer["symbol"] == "BTCUSDT" and answer["lastUpdateId"] == 1
    assert books.served == 1


def test_a_lagging_connection_serves_nothing_old(clock: Clock) -> None:
    books, conn = streams(clock)
    books._on_message(conn, ticker_event("BTCUSDT", 1))
    clock.now += 1.5  # nothing on the connection for longer than book_max_age
    with pytest.raises(Forward):
        books.book_tickers(ONE)


def test_a_ticker_from_before_a_reconnect_is_never_current(clock: Clock) -> None:
    books, conn = streams(clock)
    books._on_message(conn, ticker_event("BTCUSDT", 1))
    clock.now += 3.0
    conn.since = clock.now  # the websocket dropped and came up again: changes meanwhile were missed
    books._on_message(conn, ticker_event("ETHUSDT", 2))
    with pytest.raises(Forward):
        books.book_tickers(ONE)
    books._on_message(conn, ticker_event("BTCUSDT", 3))
    assert json.loads(books.book_tickers(ONE))["lastUpdateId"] == 3


def test_an_unsubscribed_ticker_is_not_served(clock: Clock) -> None:
    books, conn = streams(clock)
    books._on_message(conn, ticker_event("BTCUSDT", 1))
    clock.now += 2.0
    conn.streams.discard("btcusdt@bookTicker")
    books._on_message(conn, ticker_event("ETHUSDT", 2))
    with pytest.raises(Forward):
        books.book_tickers(ONE)


def test_a_down_connection_serves_nothing(clock: Clock) -> None:
    books, conn = streams(clock)
    books._on_message(conn, ticker_event("BTCUSDT", 1))
    conn.up = False
    with pytest.raises(Forward):
        books.book_tickers(ONE)
