"""`freqfeed simulate` on the wire: Binance's paths, parameters, shapes, weights, errors and streams."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import websockets

from freqfeed.exchanges.binance import wire
from freqfeed.simulator.market import BOOK_LEVELS, Market
from freqfeed.timeframes import candle_open, timeframe_ms

from .processes import SimulatorProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    simulator = SimulatorProcess(tmp_path_factory.mktemp("sim"), speed=60)
    yield simulator
    simulator.stop()


def get(sim: SimulatorProcess, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{sim.url}{path}", params=params, timeout=10)


def test_klines_shape_window_and_in_progress_candle(sim: SimulatorProcess) -> None:
    response = get(sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="15m", limit=5)
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 5
    now = sim.now()
    assert rows[-1][0] == candle_open(now, "15m"), "the candle in progress comes last"
    for row in rows:
        assert len(row) == 12
        assert isinstance(row[0], int) and isinstance(row[6], int) and isinstance(row[8], int)
        assert all(isinstance(row[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10, 11))
        assert row[6] == row[0] + timeframe_ms("15m") - 1
        assert float(row[2]) >= max(float(row[1]), float(row[4])) and float(row[3]) <= min(float(row[1]), float(row[4]))
    start = rows[0][0]
    ranged = get(sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="15m", startTime=start + 1,
                 endTime=rows[2][0], limit=1500).json()
    assert [r[0] for r in ranged] == [rows[1][0], rows[2][0]], "startTime: opens at or after it; endTime: up to it"


def test_higher_timeframes_are_exact_aggregates(sim: SimulatorProcess) -> None:
    start = candle_open(sim.now(), "15m") - 4 * timeframe_ms("15m")
    big = get(sim, "/fapi/v1/klines", symbol="ETHUSDT", interval="15m", startTime=start, limit=1).json()[0]
    small = get(sim, "/fapi/v1/klines", symbol="ETHUSDT", interval="3m", startTime=start, limit=5).json()
    assert big[1] == small[0][1] and big[4] == small[-1][4]
    assert float(big[2]) == max(float(r[2]) for r in small) and float(big[3]) == min(float(r[3]) for r in small)
    assert round(float(big[5]), 3) == round(sum(float(r[5]) for r in small), 3)


@pytest.mark.parametrize(("limit", "weight"), [(1, 1), (99, 1), (100, 2), (499, 2), (500, 5), (1000, 5), (1001, 10),
                                               (1500, 10)])
def test_klines_weight_follows_limit(sim: SimulatorProcess, limit: int, weight: int) -> None:
    first = int(get(sim, "/fapi/v1/time").headers["X-MBX-USED-WEIGHT-1M"])
    second = get(sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h", limit=limit)
    used = int(second.headers["X-MBX-USED-WEIGHT-1M"])
    if used > first:  # not across an exchange minute boundary (one lasts a second at 60x)
        assert used - first == weight


@pytest.mark.parametrize(("params", "code"), [
    ({"symbol": "NOPEUSDT", "interval": "1h"}, -1121),
    ({"symbol": "BTCUSDT", "interval": "7m"}, -1120),
    ({"symbol": "BTCUSDT", "interval": "1h", "limit": 1501}, -1130),
    ({"interval": "1h"}, -1102),
    ({"symbol": "BTCUSDT", "interval": "1h", "startTime": 10, "endTime": 5}, -1023),
    ({"symbol": "BTCUSDT", "interval": "1h", "startTime": "yesterday"}, -1100),
])
def test_errors_have_binance_codes(sim: SimulatorProcess, params: dict[str, Any], code: int) -> None:
    response = get(sim, "/fapi/v1/klines", **params)
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_spot_api(sim: SimulatorProcess) -> None:
    rows = get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="3m", limit=1000)
    assert rows.status_code == 200 and len(rows.json()) == 1000
    assert get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="3m", limit=1001).json()["code"] == -1130
    info = get(sim, "/api/v3/exchangeInfo").json()
    assert info["rateLimits"][0]["limit"] == 6000
    assert info["symbols"][0]["filters"][0]["filterType"] == "PRICE_FILTER"


def test_funding_and_premium_index(sim: SimulatorProcess) -> None:
    rates = get(sim, "/fapi/v1/fundingRate", symbol="BTCUSDT", limit=3).json()
    assert len(rates) == 3
    assert set(rates[0]) == {"symbol", "fundingTime", "fundingRate", "markPrice"}
    assert rates[1]["fundingTime"] - rates[0]["fundingTime"] == 8 * 3_600_000
    premium = get(sim, "/fapi/v1/premiumIndex", symbol="BTCUSDT").json()
    assert premium["nextFundingTime"] == rates[-1]["fundingTime"] + 8 * 3_600_000
    assert len(get(sim, "/fapi/v1/premiumIndex").json()) == len(sim.market.instruments)


def test_weight_budget_then_429_then_ban(tmp_path: Path) -> None:
    start = (int(time.time() * 1000) // 60_000) * 60_000 + 2_000  # early in an exchange minute, real time
    own = SimulatorProcess(tmp_path, speed=1, start=start)
    try:
        session = requests.Session()
        answers = [session.get(f"{own.url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m",
                                                                        "limit": 1500}, timeout=10)
                   for _ in range(240 + 12)]
        statuses = [a.status_code for a in answers]
        first_429 = statuses.index(429)
        assert set(statuses[:first_429]) == {200}
        used = int(answers[first_429 - 1].headers["X-MBX-USED-WEIGHT-1M"])
        assert used <= 2400 < used + 10, "a request is refused exactly when it would pass 2400 weight per minute"
        assert first_429 >= 239
        assert answers[first_429].json()["code"] == -1003
        assert 1 <= int(answers[first_429].headers["Retry-After"]) <= 60
        assert statuses[-1] == 418, "a client that keeps going after 429s is banned"
        assert int(answers[-1].headers["Retry-After"]) >= 60
    finally:
        own.stop()


async def listen(url: str, seconds: float, subscribe: list[str] | None = None) -> list[dict[str, Any]]:
    messages = []
    async with websockets.connect(url) as ws:
        if subscribe:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": subscribe, "id": 7}))
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=left)))
            except TimeoutError:
                break
    return messages


def test_routed_base_delivers_and_bare_base_stays_silent(sim: SimulatorProcess) -> None:
    streams = "btcusdt@kline_3m/ethusdt@markPrice"

    async def both() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return await asyncio.gather(listen(f"ws://127.0.0.1:{sim.port}/market/stream?streams={streams}", 7),
                                    listen(f"ws://127.0.0.1:{sim.port}/stream?streams={streams}", 7))

    routed, bare = asyncio.run(both())
    closed = [m for m in routed if m["data"].get("e") == "kline" and m["data"]["k"]["x"]]
    assert len(closed) >= 2, "a 3m candle closes every 3 s at 60x"
    kline = closed[-1]
    assert kline["stream"] == "btcusdt@kline_3m"
    assert set(kline["data"]["k"]) >= {"t", "T", "s", "i", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"}
    assert any(m["data"].get("e") == "markPriceUpdate" for m in routed)
    assert bare == [], "kline and markPrice subscriptions on the bare base are accepted and never delivered"


def test_raw_stream_and_live_subscribe(sim: SimulatorProcess) -> None:
    raw = asyncio.run(listen(f"ws://127.0.0.1:{sim.port}/market/ws/solusdt@kline_3m", 4))
    assert raw and "stream" not in raw[0] and raw[0]["e"] == "kline"
    subscribed = asyncio.run(listen(f"ws://127.0.0.1:{sim.port}/market/ws", 4, subscribe=["btcusdt@kline_3m"]))
    assert subscribed[0] == {"result": None, "id": 7}
    assert any(m.get("e") == "kline" for m in subscribed[1:])
    bare_ack = asyncio.run(listen(f"ws://127.0.0.1:{sim.port}/ws", 2, subscribe=["btcusdt@kline_3m"]))
    assert bare_ack == [{"result": None, "id": 7}]


# -- order books and tickers ----------------------------------------------------------------------


def book_json(market: Market, symbol: str, at_ms: int, levels: int) -> tuple[list[list[str]], list[list[str]]]:
    """The simulator's book at `at_ms` as Binance's [["price", "qty"], ...] levels."""
    inst, book = market.instrument(symbol), market.book(symbol, at_ms, levels)
    return (wire.book_levels(book.bids[:, 0], book.bids[:, 1], inst.price_decimals, inst.quantity_decimals),
            wire.book_levels(book.asks[:, 0], book.asks[:, 1], inst.price_decimals, inst.quantity_decimals))


def test_book_is_a_pure_function_of_seed_symbol_and_time() -> None:
    market, again = Market(5), Market(5)
    at = 1_767_237_945_678
    book = market.book("BTCUSDT", at)
    assert len(book.bids) == len(book.asks) == BOOK_LEVELS
    assert book.update_id == at // 100 and book.transaction_ms == at // 100 * 100
    same = again.book("BTCUSDT", at // 100 * 100)
    assert np.array_equal(book.bids, same.bids) and np.array_equal(book.asks, same.asks), "one book per 100 ms"
    top = market.book("BTCUSDT", at, 5)
    assert np.array_equal(top.bids, book.bids[:5]) and np.array_equal(top.asks, book.asks[:5]), "a prefix of the deep"
    later = market.book("BTCUSDT", at + 100)
    assert later.update_id == book.update_id + 1 and not np.array_equal(later.bids[:, 1], book.bids[:, 1])
    assert np.all(np.diff(book.bids[:, 0]) < 0) and np.all(np.diff(book.asks[:, 0]) > 0)
    assert np.all(book.bids[:, 1] >= 1) and np.all(book.asks[:, 1] >= 1)
    close = int(market.partial_candle("BTCUSDT", "1m", at).close[0])
    assert book.bids[0, 0] <= close < book.asks[0, 0], "centred on the current price"
    assert not np.array_equal(Market(6).book("BTCUSDT", at).bids, book.bids), "another seed, another book"


def measured_weight(sim: SimulatorProcess, session: requests.Session, path: str, **params: Any) -> tuple[int, Any]:
    """The weight one request costs, from X-MBX-USED-WEIGHT-1M, bracketed by /time requests (weight 1) of
    the same market to make sure all three fell into one exchange minute (one lasts a second at 60x)."""
    clock = "/api/v3/time" if path.startswith("/api/") else "/fapi/v1/time"
    for _ in range(20):
        before = session.get(f"{sim.url}{clock}", timeout=10)
        answer = session.get(f"{sim.url}{path}", params=params, timeout=10)
        after = session.get(f"{sim.url}{clock}", timeout=10)
        assert answer.status_code == 200, answer.text
        if before.json()["serverTime"] // 60_000 == after.json()["serverTime"] // 60_000:
            return int(answer.headers["X-MBX-USED-WEIGHT-1M"]) - int(before.headers["X-MBX-USED-WEIGHT-1M"]), \
                answer.json()
    raise AssertionError("no three requests within one exchange minute")


@pytest.mark.parametrize(("limit", "weight"), [(5, 2), (10, 2), (20, 2), (50, 2), (100, 5), (500, 10), (1000, 20)])
def test_futures_depth_is_the_book_at_its_time(sim: SimulatorProcess, limit: int, weight: int) -> None:
    used, depth = measured_weight(sim, requests.Session(), "/fapi/v1/depth", symbol="ETHUSDT", limit=limit)
    assert used == weight
    assert set(depth) == {"lastUpdateId", "E", "T", "bids", "asks"}
    assert len(depth["bids"]) == len(depth["asks"]) == limit
    assert (depth["bids"], depth["asks"]) == book_json(sim.market, "ETHUSDT", depth["E"], limit)
    assert depth["T"] <= depth["E"] and depth["lastUpdateId"] == sim.market.book("ETHUSDT", depth["E"]).update_id
    assert (depth["bids"], depth["asks"]) == book_json(sim.market, "ETHUSDT", depth["T"], limit)


def test_spot_depth(sim: SimulatorProcess) -> None:
    session = requests.Session()
    used, depth = measured_weight(sim, session, "/api/v3/depth", symbol="BTCUSDT")
    assert (used, set(depth), len(depth["bids"])) == (5, {"lastUpdateId", "bids", "asks"}, 100), "default limit 100"
    assert (depth["bids"], depth["asks"]) == book_json(sim.market, "BTCUSDT", depth["lastUpdateId"] * 100, 100)
    for limit, weight in ((7, 5), (101, 25), (600, 50)):
        used, depth = measured_weight(sim, session, "/api/v3/depth", symbol="BTCUSDT", limit=limit)
        assert (used, len(depth["asks"])) == (weight, limit)
    used, depth = measured_weight(sim, session, "/api/v3/depth", symbol="BTCUSDT", limit=5000)
    assert (used, len(depth["bids"])) == (250, BOOK_LEVELS), "the whole book: 1000 levels per side"


@pytest.mark.parametrize(("params", "code"), [
    ({"symbol": "NOPEUSDT"}, -1121), ({"symbol": "BTCUSDT", "limit": 7}, -4021),
    ({"symbol": "BTCUSDT", "limit": 1}, -4021), ({"symbol": "BTCUSDT", "limit": 5000}, -1130),
    ({"symbol": "BTCUSDT", "limit": "lots"}, -1100), ({"limit": 5}, -1102),
])
def test_depth_errors(sim: SimulatorProcess, params: dict[str, Any], code: int) -> None:
    response = get(sim, "/fapi/v1/depth", **params)
    assert (response.status_code, response.json()["code"]) == (400, code)


def test_ticker_errors(sim: SimulatorProcess) -> None:
    for path in ("/fapi/v1/ticker/bookTicker", "/fapi/v1/ticker/24hr", "/fapi/v2/ticker/price", "/api/v3/ticker/price"):
        assert get(sim, path, symbol="NOPEUSDT").json()["code"] == -1121, path
    assert get(sim, "/api/v3/depth", symbol="BTCUSDT", limit=0).json()["code"] == -1130
    assert get(sim, "/api/v3/ticker/24hr", type="HUGE").json()["code"] == -1139


def test_book_tickers(sim: SimulatorProcess) -> None:
    session = requests.Session()
    used, one = measured_weight(sim, session, "/fapi/v1/ticker/bookTicker", symbol="BTCUSDT")
    assert used == 2 and list(one) == ["lastUpdateId", "symbol", "bidPrice", "bidQty", "askPrice", "askQty", "time"]
    [[bid], [ask]] = book_json(sim.market, "BTCUSDT", one["time"], 1)
    assert [one["bidPrice"], one["bidQty"], one["askPrice"], one["askQty"]] == bid + ask, "the top of the book"
    used, every = measured_weight(sim, session, "/fapi/v1/ticker/bookTicker")
    assert used == 5 and len(every) == len(sim.market.instruments)
    used, spot = measured_weight(sim, session, "/api/v3/ticker/bookTicker", symbol="ETHUSDT")
    assert used == 2 and set(spot) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}
    used, spot_all = measured_weight(sim, session, "/api/v3/ticker/bookTicker")
    assert used == 4 and len(spot_all) == len(sim.market.instruments)


def test_price_and_24hr_tickers(sim: SimulatorProcess) -> None:
    session = requests.Session()
    market = sim.market

    def last_price(symbol: str, at_ms: int) -> str:
        inst = market.instrument(symbol)
        return wire.format_ticks(market.partial_candle(symbol, "1m", at_ms).close, inst.price_decimals)[0]

    for path in ("/fapi/v1/ticker/price", "/fapi/v2/ticker/price"):
        used, price = measured_weight(sim, session, path, symbol="SOLUSDT")
        assert used == 1 and set(price) == {"symbol", "price", "time"}
        assert price["price"] == last_price("SOLUSDT", price["time"])
        used, prices = measured_weight(sim, session, path)
        assert used == 2 and len(prices) == len(market.instruments)
    used, spot = measured_weight(sim, session, "/api/v3/ticker/price", symbol="SOLUSDT")
    assert used == 2 and set(spot) == {"symbol", "price"}
    used, listed = measured_weight(sim, session, "/api/v3/ticker/price", symbols='["BTCUSDT","ETHUSDT"]')
    assert used == 4 and [p["symbol"] for p in listed] == ["BTCUSDT", "ETHUSDT"]
    used, day = measured_weight(sim, session, "/fapi/v1/ticker/24hr", symbol="BTCUSDT")
    assert used == 1 and day["closeTime"] - day["openTime"] == 86_400_000
    assert day["lastPrice"] == last_price("BTCUSDT", day["closeTime"])
    first = market.candles("BTCUSDT", "1m", candle_open(day["closeTime"], "1m") - 1439 * 60_000, 1440)
    inst = market.instrument("BTCUSDT")
    assert day["openPrice"] == wire.format_ticks(first.open[:1], inst.price_decimals)[0]
    assert day["highPrice"] == wire.format_ticks([first.high.max()], inst.price_decimals)[0]
    assert day["volume"] == wire.format_ticks([first.volume.sum()], inst.quantity_decimals)[0]
    assert float(day["lowPrice"]) <= float(day["weightedAvgPrice"]) <= float(day["highPrice"])
    used, days = measured_weight(sim, session, "/fapi/v1/ticker/24hr")
    assert used == 40 and len(days) == len(market.instruments)
    used, spot_day = measured_weight(sim, session, "/api/v3/ticker/24hr", symbol="BTCUSDT")
    assert used == 2 and {"prevClosePrice", "bidPrice", "askPrice"} <= set(spot_day)
    used, _ = measured_weight(sim, session, "/api/v3/ticker/24hr")
    assert used == 80


def test_requests_are_counted_per_user_agent(sim: SimulatorProcess) -> None:
    bot, gateway = requests.Session(), requests.Session()
    bot.headers["User-Agent"] = "freqtrade-bot-under-test"
    gateway.headers["User-Agent"] = "freqfeed-gateway-under-test"
    for _ in range(3):
        bot.get(f"{sim.url}/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 5}, timeout=10)
    bot.get(f"{sim.url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 499}, timeout=10)
    gateway.get(f"{sim.url}/fapi/v1/ticker/bookTicker", timeout=10)
    clients = sim.stats()["by_client"]
    assert clients["freqtrade-bot-under-test"]["requests"] == {"/fapi/v1/depth": 3, "/fapi/v1/klines": 1}
    assert clients["freqtrade-bot-under-test"]["weight"] == 3 * 2 + 2
    assert clients["freqfeed-gateway-under-test"] == {"requests": {"/fapi/v1/ticker/bookTicker": 1}, "weight": 5,
                                                      "ws_connections": 0}


# -- book streams ---------------------------------------------------------------------------------


def test_depth_and_book_ticker_events_are_the_book_at_their_time(sim: SimulatorProcess) -> None:
    streams = "btcusdt@depth5@100ms/ethusdt@depth20/solusdt@depth10@500ms/btcusdt@bookTicker"
    messages = asyncio.run(listen(f"ws://127.0.0.1:{sim.port}/public/stream?streams={streams}", 3))
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        by_stream.setdefault(message["stream"], []).append(message["data"])
    assert set(by_stream) == set(streams.split("/"))
    # 3 s of pushes; the lower bounds leave room for a busy machine, the upper ones catch pushing too often
    assert 15 <= len(by_stream["btcusdt@depth5@100ms"]) <= 32, "every 100 ms"
    assert 6 <= len(by_stream["ethusdt@depth20"]) <= 14, "every 250 ms without a speed"
    assert 3 <= len(by_stream["solusdt@depth10@500ms"]) <= 7
    for name, levels in (("btcusdt@depth5@100ms", 5), ("ethusdt@depth20", 20), ("solusdt@depth10@500ms", 10)):
        events = by_stream[name]
        for previous, event in itertools.pairwise(events):
            assert event["pu"] == previous["u"] and event["U"] == previous["u"] + 1, "update ids chain"
        for event in events:
            assert set(event) == {"e", "E", "T", "s", "U", "u", "pu", "b", "a"} and event["e"] == "depthUpdate"
            assert (event["b"], event["a"]) == book_json(sim.market, event["s"], event["E"], levels)
            assert event["u"] == sim.market.book(event["s"], event["E"]).update_id and event["T"] <= event["E"]
    for event in by_stream["btcusdt@bookTicker"]:
        assert set(event) == {"e", "u", "E", "T", "s", "b", "B", "a", "A"} and event["e"] == "bookTicker"
        [[bid], [ask]] = book_json(sim.market, "BTCUSDT", event["E"], 1)
        assert [event["b"], event["B"], event["a"], event["A"]] == bid + ask


def test_all_book_tickers_and_spot_book_streams(sim: SimulatorProcess) -> None:
    everything = asyncio.run(listen(f"ws://127.0.0.1:{sim.port}/ws/!bookTicker", 1.5))
    assert len(everything) == len(sim.market.instruments), "every symbol at once, then again after 5 s"
    for event in everything[:20]:
        [[bid], [ask]] = book_json(sim.market, event["s"], event["E"], 1)
        assert [event["b"], event["B"], event["a"], event["A"]] == bid + ask
    spot = asyncio.run(listen(f"ws://127.0.0.1:{sim.port}/spot/stream?streams=btcusdt@depth5@100ms/btcusdt@bookTicker/"
                              "ethusdt@depth10", 2.5))
    depth = [m["data"] for m in spot if m["stream"] == "btcusdt@depth5@100ms"]
    assert 10 <= len(depth) <= 27 and set(depth[0]) == {"lastUpdateId", "bids", "asks"}
    for event in depth:
        assert (event["bids"], event["asks"]) == book_json(sim.market, "BTCUSDT", event["lastUpdateId"] * 100, 5)
    assert 1 <= len([m for m in spot if m["stream"] == "ethusdt@depth10"]) <= 4, "spot: every 1000 ms without a speed"
    tickers = [m["data"] for m in spot if m["stream"] == "btcusdt@bookTicker"]
    assert tickers and set(tickers[0]) == {"u", "s", "b", "B", "a", "A"}
    [[bid], [ask]] = book_json(sim.market, "BTCUSDT", tickers[-1]["u"] * 100, 1)
    assert [tickers[-1]["b"], tickers[-1]["B"], tickers[-1]["a"], tickers[-1]["A"]] == bid + ask


def test_book_streams_are_on_public_and_bare_routes_only(sim: SimulatorProcess) -> None:
    streams = "btcusdt@depth5@100ms/btcusdt@bookTicker/btcusdt@kline_3m/btcusdt@markPrice@1s"

    async def three() -> list[list[dict[str, Any]]]:
        return list(await asyncio.gather(*(listen(f"ws://127.0.0.1:{sim.port}{route}/stream?streams={streams}", 4)
                                           for route in ("/market", "/public", ""))))

    routed, public, bare = asyncio.run(three())
    for messages, delivered in ((routed, {"btcusdt@kline_3m", "btcusdt@markPrice@1s"}),
                                (public, {"btcusdt@depth5@100ms", "btcusdt@bookTicker"}),
                                (bare, {"btcusdt@depth5@100ms", "btcusdt@bookTicker"})):
        assert {m["stream"] for m in messages} == delivered


async def closed_after(url: str, sends: list[str], pause: float = 0.0) -> tuple[list[Any], int | None]:
    """Messages received and the close code after sending `sends` (None: still open 1.5 s later)."""
    received: list[Any] = []
    async with websockets.connect(url) as ws:
        try:
            for text in sends:
                await ws.send(text)
                await asyncio.sleep(pause)
            deadline = time.monotonic() + 1.5
            while (left := deadline - time.monotonic()) > 0:
                try:
                    received.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=left)))
                except TimeoutError:
                    return received, None
        except websockets.ConnectionClosed as closed:
            return received, closed.rcvd.code if closed.rcvd else -1
    return received, None


def test_more_than_200_streams_closes_the_connection(sim: SimulatorProcess) -> None:
    # streams the simulator accepts but never publishes, so that only the count matters
    names = [f"{symbol.lower()}@trade" for symbol in list(sim.market.instruments)[:201]]
    received, code = asyncio.run(closed_after(f"ws://127.0.0.1:{sim.port}/public/stream?streams={'/'.join(names)}",
                                              []))
    assert code == 1008 and received[0]["error"]["code"] == 2
    subscribe = [json.dumps({"method": "SUBSCRIBE", "params": names[:150], "id": 1}),
                 json.dumps({"method": "SUBSCRIBE", "params": names[150:], "id": 2})]
    received, code = asyncio.run(closed_after(f"ws://127.0.0.1:{sim.port}/market/ws", subscribe, pause=0.2))
    assert code == 1008 and {"result": None, "id": 1} in received and any(m.get("id") == 2 and "error" in m
                                                                          for m in received)
    _, code = asyncio.run(closed_after(f"ws://127.0.0.1:{sim.port}/public/stream?streams={'/'.join(names[:200])}", []))
    assert code is None, "200 streams are allowed"
    spot = [f"{symbol.lower()}@{kind}" for symbol in sim.market.instruments
            for kind in ("trade", "aggTrade", "depth", "miniTicker", "ticker")]
    in_two = [json.dumps({"method": "SUBSCRIBE", "params": spot[:600], "id": 1}),
              json.dumps({"method": "SUBSCRIBE", "params": spot[600:1024], "id": 2})]
    received, code = asyncio.run(closed_after(f"ws://127.0.0.1:{sim.port}/spot/ws", in_two))
    assert code is None and {"result": None, "id": 2} in received, "spot allows 1024"
    one_more = [*in_two, json.dumps({"method": "SUBSCRIBE", "params": spot[1024:1025], "id": 3})]
    _, code = asyncio.run(closed_after(f"ws://127.0.0.1:{sim.port}/spot/ws", one_more))
    assert code == 1008


def test_too_many_incoming_messages_disconnect(sim: SimulatorProcess) -> None:
    listing = json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3})
    received, code = asyncio.run(closed_after(f"ws://127.0.0.1:{sim.port}/public/ws", [listing] * 10))
    assert code is None and len(received) == 10, "10 messages a second are allowed on futures"
    received, code = asyncio.run(closed_after(f"ws://127.0.0.1:{sim.port}/public/ws", [listing] * 11))
    assert code == 1008, "the 11th within a second disconnects"
    received, code = asyncio.run(closed_after(f"ws://127.0.0.1:{sim.port}/market/ws", [listing] * 15, pause=0.15))
    assert code is None and len(received) == 15, "spread over seconds, any number"
    _, code = asyncio.run(closed_after(f"ws://127.0.0.1:{sim.port}/spot/ws", [listing] * 5))
    assert code is None, "spot: 5 a second"
    _, code = asyncio.run(closed_after(f"ws://127.0.0.1:{sim.port}/spot/ws", [listing] * 6))
    assert code == 1008


def test_faults_reach_book_streams(sim: SimulatorProcess) -> None:
    url = f"ws://127.0.0.1:{sim.port}/public/stream?streams=btcusdt@depth5@100ms/btcusdt@bookTicker"

    async def silenced() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        sim.fault("silent", 3)
        during = await listen(url, 1.5)
        deadline = time.monotonic() + 20
        after: list[dict[str, Any]] = []
        while not after and time.monotonic() < deadline:  # back once the 3 s are over
            after = await listen(url, 1)
        return during, after

    during, after = asyncio.run(silenced())
    assert during == [] and after, "silent silences depth and book tickers too, then they come back"

    async def malformed() -> list[str]:
        frames = []
        async with websockets.connect(url) as ws:
            await asyncio.wait_for(ws.recv(), timeout=10)  # subscribed: the fault reaches this connection
            await asyncio.to_thread(sim.fault, "malformed", 4)
            deadline = time.monotonic() + 1.5
            while (left := deadline - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    frames.append(str(await asyncio.wait_for(ws.recv(), timeout=left)))
        return frames

    frames = asyncio.run(malformed())
    assert any("this is not json" in frame for frame in frames)
    assert any('"s":"NOSUCHUSDT"' in frame.replace(" ", "") for frame in frames)
