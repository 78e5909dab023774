"""freqfeed.exchanges.binance.wire: Binance's documented numbers, written out literally, and the pure wire functions.

The simulator and the gateway both take their weights, limits and shapes from binance_wire, so these
tests are what keeps that table honest: every number here is copied from Binance's documentation
(the source is named in binance_wire next to the number), not computed from the module under test.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from freqfeed.exchanges.binance import wire
from freqfeed.exchanges.binance.wire import BinanceError
from freqfeed.timeframes import candle_open

KNOWN = {"BTCUSDT", "ETHUSDT"}

# -- request weights, as documented ------------------------------------------------------------


@pytest.mark.parametrize(("market", "endpoint", "params", "weight"), [
    # futures Kline/Candlestick Data and Mark Price Kline: by LIMIT
    ("futures", "klines", {}, 5), ("futures", "klines", {"limit": "1"}, 1), ("futures", "klines", {"limit": "99"}, 1),
    ("futures", "klines", {"limit": "100"}, 2), ("futures", "klines", {"limit": "499"}, 2),
    ("futures", "klines", {"limit": "500"}, 5), ("futures", "klines", {"limit": "1000"}, 5),
    ("futures", "klines", {"limit": "1001"}, 10), ("futures", "klines", {"limit": "1500"}, 10),
    ("futures", "markPriceKlines", {"limit": "99"}, 1), ("futures", "markPriceKlines", {"limit": "499"}, 2),
    ("futures", "markPriceKlines", {"limit": "1000"}, 5), ("futures", "markPriceKlines", {"limit": "1500"}, 10),
    # spot klines: 2 whatever the limit
    ("spot", "klines", {}, 2), ("spot", "klines", {"limit": "1000"}, 2), ("spot", "klines", {"limit": "1"}, 2),
    # futures Order Book: 5, 10, 20, 50 -> 2; 100 -> 5; 500 -> 10; 1000 -> 20; default 500
    ("futures", "depth", {"limit": "5"}, 2), ("futures", "depth", {"limit": "10"}, 2),
    ("futures", "depth", {"limit": "20"}, 2), ("futures", "depth", {"limit": "50"}, 2),
    ("futures", "depth", {"limit": "100"}, 5), ("futures", "depth", {"limit": "500"}, 10),
    ("futures", "depth", {"limit": "1000"}, 20), ("futures", "depth", {}, 10),
    # spot Order book: 1-100 5, 101-500 25, 501-1000 50, 1001-5000 250; default 100
    ("spot", "depth", {"limit": "1"}, 5), ("spot", "depth", {"limit": "100"}, 5), ("spot", "depth", {}, 5),
    ("spot", "depth", {"limit": "101"}, 25), ("spot", "depth", {"limit": "500"}, 25),
    ("spot", "depth", {"limit": "501"}, 50), ("spot", "depth", {"limit": "1000"}, 50),
    ("spot", "depth", {"limit": "1001"}, 250), ("spot", "depth", {"limit": "5000"}, 250),
    # exchangeInfo, ping, time
    ("futures", "exchangeInfo", {}, 1), ("spot", "exchangeInfo", {}, 20),
    ("futures", "ping", {}, 1), ("spot", "ping", {}, 1), ("futures", "time", {}, 1), ("spot", "time", {}, 1),
    # premiumIndex 1 with symbol, 10 without; fundingRate no minute weight; openInterest 1
    ("futures", "premiumIndex", {"symbol": "BTCUSDT"}, 1), ("futures", "premiumIndex", {}, 10),
    ("futures", "fundingRate", {"symbol": "BTCUSDT"}, 0), ("futures", "openInterest", {"symbol": "BTCUSDT"}, 1),
    # tickers: futures 24hr 1/40, price 1/2, bookTicker 2/5; spot 24hr 2/80, price 2/4, bookTicker 2/4
    ("futures", "ticker/24hr", {"symbol": "BTCUSDT"}, 1), ("futures", "ticker/24hr", {}, 40),
    ("futures", "ticker/price", {"symbol": "BTCUSDT"}, 1), ("futures", "ticker/price", {}, 2),
    ("futures", "ticker/bookTicker", {"symbol": "BTCUSDT"}, 2), ("futures", "ticker/bookTicker", {}, 5),
    ("spot", "ticker/24hr", {"symbol": "BTCUSDT"}, 2), ("spot", "ticker/24hr", {}, 80),
    ("spot", "ticker/price", {"symbol": "BTCUSDT"}, 2), ("spot", "ticker/price", {}, 4),
    ("spot", "ticker/bookTicker", {"symbol": "BTCUSDT"}, 2), ("spot", "ticker/bookTicker", {}, 4),
    # spot `symbols`: 24hr 1-20 2, 21-100 40, 101+ 80; price and bookTicker 4 for any list
    ("spot", "ticker/24hr", {"symbols": '["BTCUSDT"]'}, 2),
    ("spot", "ticker/24hr", {"symbols": "[" + ",".join(['"A"'] * 20) + "]"}, 2),
    ("spot", "ticker/24hr", {"symbols": "[" + ",".join(['"A"'] * 21) + "]"}, 40),
    ("spot", "ticker/24hr", {"symbols": "[" + ",".join(['"A"'] * 100) + "]"}, 40),
    ("spot", "ticker/24hr", {"symbols": "[" + ",".join(['"A"'] * 101) + "]"}, 80),
    ("spot", "ticker/price", {"symbols": '["BTCUSDT"]'}, 4), ("spot", "ticker/bookTicker", {"symbols": '["A"]'}, 4),
])
def test_request_weights_are_binances(market: str, endpoint: str, params: dict[str, str], weight: int) -> None:
    assert wire.request_weight(market, endpoint, params) == weight


def test_unknown_endpoint_has_no_weight() -> None:
    with pytest.raises(ValueError, match="no request weight"):
        wire.request_weight("spot", "markPriceKlines")
    with pytest.raises(ValueError, match="unknown market"):
        wire.request_weight("coinm", "klines")


def test_market_limits_are_binances() -> None:
    assert (wire.FUTURES.rest_prefix, wire.FUTURES.weight_limit) == ("/fapi/v1", 2400)
    assert (wire.SPOT.rest_prefix, wire.SPOT.weight_limit) == ("/api/v3", 6000)
    assert (wire.FUTURES.klines_default_limit, wire.FUTURES.klines_max_limit) == (500, 1500)
    assert (wire.SPOT.klines_default_limit, wire.SPOT.klines_max_limit) == (500, 1000)
    assert (wire.FUTURES.depth_default_limit, wire.SPOT.depth_default_limit, wire.SPOT_DEPTH_MAX) == (500, 100, 5000)
    assert wire.FUTURES_DEPTH_LIMITS == (5, 10, 20, 50, 100, 500, 1000)
    assert (wire.FUNDING_DEFAULT_LIMIT, wire.FUNDING_MAX_LIMIT, wire.FUNDING_LIMIT_PER_5MIN) == (100, 1000, 500)
    assert (wire.FUTURES.max_streams_per_connection, wire.FUTURES.max_incoming_messages_per_second) == (200, 10)
    assert (wire.SPOT.max_streams_per_connection, wire.SPOT.max_incoming_messages_per_second) == (1024, 5)
    assert "1M" not in wire.INTERVALS and {"1m", "3m", "15m", "1h", "1d", "1w"} <= set(wire.INTERVALS)


def test_split_path() -> None:
    assert wire.split_path("/fapi/v1/ticker/price") == ("futures", "ticker/price")
    assert wire.split_path("/fapi/v2/ticker/price") == ("futures", "ticker/price")
    assert wire.split_path("/api/v3/depth") == ("spot", "depth")
    assert wire.split_path("/api/v1/depth") is None
    assert wire.split_path("/_sim/stats") is None


# -- errors -------------------------------------------------------------------------------------


def raised(call: Any, *args: Any, **kwargs: Any) -> BinanceError:
    with pytest.raises(BinanceError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_error_texts() -> None:
    assert wire.invalid_symbol().body() == {"code": -1121, "msg": "Invalid symbol."}
    assert wire.invalid_interval().body() == {"code": -1120, "msg": "Invalid interval."}
    assert wire.mandatory_parameter("symbol").msg == \
        "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
    assert wire.illegal_characters("startTime").msg == \
        "Illegal characters found in parameter 'startTime'; legal range is '^[0-9]{1,20}$'."
    assert wire.invalid_parameter("limit").body() == {"code": -1130,
                                                      "msg": "Data sent for parameter 'limit' is not valid."}
    assert wire.start_after_end().body() == {"code": -1023, "msg": "Start time is greater than end time."}
    limited = wire.too_many_requests("futures", 17, 2399)
    assert (limited.status, limited.code, limited.headers["Retry-After"]) == (429, -1003, "17")
    assert limited.msg.startswith("Too many requests; current limit is 2400 requests per minute.")
    assert wire.too_many_requests("spot", 1, 0).msg.startswith("Too much request weight used; current limit is 6000")
    banned = wire.ip_banned("futures", 1_700_000_000_000, 120)
    assert (banned.status, banned.code, banned.headers) == (418, -1003, {"Retry-After": "120"})
    assert banned.msg.startswith("Way too many requests; IP banned until 1700000000000.")


@pytest.mark.parametrize(("params", "code"), [
    ({"interval": "1h"}, -1102), ({"symbol": "", "interval": "1h"}, -1102),
    ({"symbol": "NOPEUSDT", "interval": "1h"}, -1121), ({"symbol": "BTCUSDT"}, -1102),
    ({"symbol": "BTCUSDT", "interval": "7m"}, -1120), ({"symbol": "BTCUSDT", "interval": "1M"}, -1120),
    ({"symbol": "BTCUSDT", "interval": "1h", "limit": "0"}, -1130),
    ({"symbol": "BTCUSDT", "interval": "1h", "limit": "1501"}, -1130),
    ({"symbol": "BTCUSDT", "interval": "1h", "limit": "-1"}, -1100),
    ({"symbol": "BTCUSDT", "interval": "1h", "startTime": "yesterday"}, -1100),
    ({"symbol": "BTCUSDT", "interval": "1h", "endTime": "1e12"}, -1100),
    ({"symbol": "BTCUSDT", "interval": "1h", "startTime": "10", "endTime": "5"}, -1023),
])
def test_parse_klines_errors(params: dict[str, str], code: int) -> None:
    assert raised(wire.parse_klines, "futures", params, KNOWN).code == code


def test_parse_klines() -> None:
    assert wire.parse_klines("futures", {"symbol": "BTCUSDT", "interval": "3m"}, KNOWN) == \
        wire.KlinesQuery("BTCUSDT", "3m", None, None, 500)
    assert wire.parse_klines("futures", {"symbol": "BTCUSDT", "interval": "3m", "limit": "1500", "startTime": "5",
                                         "endTime": "5"}, KNOWN) == wire.KlinesQuery("BTCUSDT", "3m", 5, 5, 1500)
    assert raised(wire.parse_klines, "spot", {"symbol": "BTCUSDT", "interval": "3m", "limit": "1001"}, KNOWN).code \
        == -1130


def test_parse_funding() -> None:
    assert wire.parse_funding({"symbol": "BTCUSDT"}, KNOWN) == wire.FundingQuery("BTCUSDT", None, None, 100)
    assert wire.parse_funding({"symbol": "BTCUSDT", "limit": "1000", "startTime": "1"}, KNOWN).limit == 1000
    assert raised(wire.parse_funding, {"symbol": "BTCUSDT", "limit": "1001"}, KNOWN).code == -1130
    assert raised(wire.parse_funding, {}, KNOWN).code == -1102


@pytest.mark.parametrize(("market", "limit", "levels_or_code"), [
    ("futures", None, 500), ("futures", "5", 5), ("futures", "1000", 1000), ("futures", "7", -4021),
    ("futures", "1", -4021), ("futures", "0", -1130), ("futures", "1001", -1130),
    ("futures", "5000", -1130), ("futures", "x", -1100),
    ("spot", None, 100), ("spot", "1", 1), ("spot", "7", 7), ("spot", "5000", 5000), ("spot", "6000", 5000),
    ("spot", "0", -1130),
])
def test_parse_depth(market: str, limit: str | None, levels_or_code: int) -> None:
    params = {"symbol": "BTCUSDT"} if limit is None else {"symbol": "BTCUSDT", "limit": limit}
    if levels_or_code < 0:
        assert raised(wire.parse_depth, market, params, KNOWN).code == levels_or_code
    else:
        assert wire.parse_depth(market, params, KNOWN) == wire.DepthQuery("BTCUSDT", levels_or_code)
    assert raised(wire.parse_depth, market, {"symbol": "NOPE"}, KNOWN).code == -1121


def test_parse_symbols() -> None:
    assert wire.parse_symbols("futures", {}, KNOWN) == wire.SymbolSelection(None, single=False)
    assert wire.parse_symbols("futures", {"symbol": "ETHUSDT"}, KNOWN) == wire.SymbolSelection(("ETHUSDT",), True)
    assert raised(wire.parse_symbols, "futures", {"symbol": "NOPE"}, KNOWN).code == -1121
    assert wire.parse_symbols("futures", {"symbols": '["X"]'}, KNOWN).symbols is None, "futures has no `symbols`"
    spot = wire.parse_symbols("spot", {"symbols": '["BTCUSDT","ETHUSDT"]'}, KNOWN)
    assert spot == wire.SymbolSelection(("BTCUSDT", "ETHUSDT"), single=False)
    assert raised(wire.parse_symbols, "spot", {"symbols": "BTCUSDT"}, KNOWN).code == -1100
    assert raised(wire.parse_symbols, "spot", {"symbols": '["NOPE"]'}, KNOWN).code == -1121
    assert raised(wire.parse_symbols, "spot", {"symbol": "BTCUSDT", "symbols": '["BTCUSDT"]'}, KNOWN).code == -1128
    assert wire.parse_symbols("spot", {"type": "MINI"}, KNOWN, ticker_type=True).mini
    assert raised(wire.parse_symbols, "spot", {"type": "BIG"}, KNOWN, ticker_type=True).code == -1139


# -- windows ------------------------------------------------------------------------------------

NOW = 1_767_237_945_678  # 2026-01-01 03:25:45.678 UTC
H = 3_600_000


def window(now: int = NOW, **params: str) -> wire.KlineWindow:
    return wire.kline_window(wire.parse_klines("futures", {"symbol": "BTCUSDT", **params}, KNOWN), now)


def test_kline_window_without_times_ends_with_the_candle_in_progress() -> None:
    w = window(interval="1h", limit="3")
    assert (w.first_open, w.count, w.in_progress, w.closed_count) == (candle_open(NOW, "1h") - 2 * H, 3, True, 2)
    assert w.last_open == candle_open(NOW, "1h")
    at_open = window(now=candle_open(NOW, "1h"), interval="1h", limit="1")
    assert at_open.in_progress and at_open.first_open == candle_open(NOW, "1h")


def test_kline_window_start_end_and_both() -> None:
    current = candle_open(NOW, "1h")
    start = window(interval="1h", startTime=str(current - 5 * H + 1), limit="2")
    assert (start.first_open, start.count, start.in_progress) == (current - 4 * H, 2, False), "first open >= start"
    exact = window(interval="1h", startTime=str(current - 5 * H), limit="1500")
    assert (exact.first_open, exact.count, exact.in_progress) == (current - 5 * H, 6, True), "never past now"
    end = window(interval="1h", endTime=str(current - 3 * H + 5), limit="2")
    assert (end.first_open, end.count, end.in_progress) == (current - 4 * H, 2, False), "newest open <= end"
    both = window(interval="1h", startTime=str(current - 10 * H), endTime=str(current - 8 * H), limit="100")
    assert (both.first_open, both.count) == (current - 10 * H, 3)
    future = window(interval="1h", startTime=str(current + H), limit="10")
    assert (future.count, future.in_progress) == (0, False)


def test_kline_window_weeks_start_on_monday() -> None:
    w = window(interval="1w", startTime=str(NOW - 20 * 86_400_000), limit="10")
    assert w.first_open == candle_open(NOW - 20 * 86_400_000 + 7 * 86_400_000 - 1, "1w")
    assert (w.first_open - 4 * 86_400_000) % (7 * 86_400_000) == 0, "a Monday (1970-01-05 + 7k days)"
    assert w.first_open >= NOW - 20 * 86_400_000 > w.first_open - 7 * 86_400_000


def test_funding_window() -> None:
    newest = wire.funding_window(wire.FundingQuery("BTCUSDT", None, None, 2), NOW)
    assert (newest.end_ms, list(range(10))[newest.pick()]) == (NOW, [8, 9]), "the most recent `limit`"
    ranged = wire.funding_window(wire.FundingQuery("BTCUSDT", 5, NOW + 10**9, 2), NOW)
    assert (ranged.end_ms, list(range(10))[ranged.pick()]) == (NOW, [0, 1]), "startTime + limit, never after now"


# -- decimals -----------------------------------------------------------------------------------


def test_format_ticks() -> None:
    assert wire.format_ticks([4200012, -5, 0, 7], 2) == ["42000.12", "-0.05", "0.00", "0.07"]
    assert wire.format_ticks([12], 0) == ["12"]


@pytest.mark.parametrize(("value", "decimals", "text"), [
    (42000.1, 2, "42000.10"), (0.1 + 0.2, 1, "0.3"), (-0.00001, 8, "-0.00001000"), (1.005, 3, "1.005"),
    (0.0, 2, "0.00"), (-0.0, 2, "0.00"), (123456789.12345678, 8, "123456789.12345678"),
    (1e16, 2, "10000000000000000.00"), (2.5, 0, "2"), (3.5, 0, "4"),
])
def test_format_float(value: float, decimals: int, text: str) -> None:
    assert wire.format_float(value, decimals) == text


def test_format_float_is_exact_on_the_tick_grid() -> None:
    rng = random.Random(3)
    for _ in range(20_000):
        decimals = rng.randint(0, 8)
        # up to 15 significant digits, all a double holds; the second kind is past 2**50 ticks (the slow path)
        ticks = rng.randint(-10**13, 10**13) if rng.random() < 0.8 else rng.randint(2**50 // 10, 10**15 - 1) * 10
        text = wire.format_ticks([ticks], decimals)[0]
        assert wire.format_float(float(text), decimals) == text, text
    with pytest.raises(ValueError, match="finite"):
        wire.format_float(float("nan"), 2)


# -- shapes -------------------------------------------------------------------------------------


def test_kline_row_and_event() -> None:
    row = wire.kline_row(1_000_020_000, 60_000, "1.0", "2.0", "0.5", "1.5", "10", "15.0", 7, "5", "7.5")
    assert row == [1_000_020_000, "1.0", "2.0", "0.5", "1.5", "10", 1_000_079_999, "15.0", 7, "5", "7.5", "0"]
    [from_ticks] = wire.kline_rows_from_ticks([1_000_020_000], [10], [20], [5], [15], [10_000], [7], period_ms=60_000,
                                             price_decimals=1, quantity_decimals=3)
    assert from_ticks == [1_000_020_000, "1.0", "2.0", "0.5", "1.5", "10.000", 1_000_079_999, "15.00000000", 7,
                          "5.000", "7.50000000", "0"]
    [mark] = wire.kline_rows_from_ticks([0], [10], [20], [5], [15], [0], [0], period_ms=60_000, price_decimals=1,
                                       quantity_decimals=3, mark=True)
    assert mark == [0, "1.0", "2.0", "0.5", "1.5", "0", 59_999, "0", 0, "0", "0", "0"]
    event = wire.kline_event("BTCUSDT", row, "1m", closed=True, event_ms=1_000_080_000)
    assert event["e"] == "kline" and event["k"]["x"] is True and event["k"]["T"] == 1_000_079_999
    assert set(event["k"]) == {"t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"}


def test_funding_and_premium_shapes() -> None:
    assert wire.funding_row("BTCUSDT", 8, "0.00010000", "1.0") == \
        {"symbol": "BTCUSDT", "fundingTime": 8, "fundingRate": "0.00010000", "markPrice": "1.0"}
    premium = wire.premium_index("BTCUSDT", mark_price="1.0", index_price="1.1", estimated_settle_price="1.2",
                                 last_funding_rate="0.0001", interest_rate="0.0001", next_funding_time=9, time_ms=3)
    assert set(premium) == {"symbol", "markPrice", "indexPrice", "estimatedSettlePrice", "lastFundingRate",
                            "interestRate", "nextFundingTime", "time"}
    assert wire.mark_price_event(premium, event_ms=4) == {"e": "markPriceUpdate", "E": 4, "s": "BTCUSDT", "p": "1.0",
                                                          "i": "1.1", "P": "1.2", "r": "0.0001", "T": 9}


def test_book_shapes() -> None:
    bids, asks = wire.book_levels([100, 99], [5, 6], 1, 3), wire.book_levels([101], [7], 1, 3)
    assert bids == [["10.0", "0.005"], ["9.9", "0.006"]] and asks == [["10.1", "0.007"]]
    assert wire.depth_snapshot("futures", 7, bids, asks, event_ms=2, transaction_ms=1) == \
        {"lastUpdateId": 7, "E": 2, "T": 1, "bids": bids, "asks": asks}
    assert wire.depth_snapshot("spot", 7, bids, asks, event_ms=2, transaction_ms=1) == \
        {"lastUpdateId": 7, "bids": bids, "asks": asks}
    assert wire.depth_event("futures", "BTCUSDT", bids, asks, final_update_id=9, previous_final_update_id=5,
                            event_ms=2, transaction_ms=1) == \
        {"e": "depthUpdate", "E": 2, "T": 1, "s": "BTCUSDT", "U": 6, "u": 9, "pu": 5, "b": bids, "a": asks}
    assert wire.depth_event("spot", "BTCUSDT", bids, asks, final_update_id=9, previous_final_update_id=5,
                            event_ms=2, transaction_ms=1) == {"lastUpdateId": 9, "bids": bids, "asks": asks}
    assert wire.book_ticker("futures", "BTCUSDT", "1", "2", "3", "4", time_ms=5, update_id=8) == \
        {"lastUpdateId": 8, "symbol": "BTCUSDT", "bidPrice": "1", "bidQty": "2", "askPrice": "3", "askQty": "4",
         "time": 5}
    assert "time" not in wire.book_ticker("spot", "BTCUSDT", "1", "2", "3", "4", time_ms=5)
    assert wire.book_ticker_event("futures", "BTCUSDT", 8, "1", "2", "3", "4", event_ms=6, transaction_ms=5) == \
        {"e": "bookTicker", "u": 8, "E": 6, "T": 5, "s": "BTCUSDT", "b": "1", "B": "2", "a": "3", "A": "4"}
    assert wire.book_ticker_event("spot", "BTCUSDT", 8, "1", "2", "3", "4", event_ms=6, transaction_ms=5) == \
        {"u": 8, "s": "BTCUSDT", "b": "1", "B": "2", "a": "3", "A": "4"}


def test_ticker_shapes() -> None:
    stats = wire.TickerStats(symbol="BTCUSDT", open_price="100.00", high_price="120.00", low_price="90.00",
                             last_price="110.50", last_qty="0.001", volume="10.000", quote_volume="1050.00000000",
                             weighted_avg_price="105.00", open_time=1, close_time=86_400_001, first_id=5, last_id=9,
                             count=5, prev_close_price="99.00", bid_price="110.49", bid_qty="1.000",
                             ask_price="110.51", ask_qty="2.000")
    futures = wire.ticker_24hr("futures", stats)
    assert (futures["priceChange"], futures["priceChangePercent"]) == ("10.50", "10.500")
    assert set(futures) == {"symbol", "priceChange", "priceChangePercent", "weightedAvgPrice", "lastPrice", "lastQty",
                            "openPrice", "highPrice", "lowPrice", "volume", "quoteVolume", "openTime", "closeTime",
                            "firstId", "lastId", "count"}
    assert set(wire.ticker_24hr("spot", stats)) == set(futures) | {"prevClosePrice", "bidPrice", "bidQty", "askPrice",
                                                                   "askQty"}
    assert set(wire.ticker_24hr("spot", stats, mini=True)) == {
        "symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume", "quoteVolume", "openTime", "closeTime",
        "firstId", "lastId", "count"}
    assert wire.ticker_price("futures", "BTCUSDT", "1.0", time_ms=3) == {"symbol": "BTCUSDT", "price": "1.0", "time": 3}
    assert wire.ticker_price("spot", "BTCUSDT", "1.0", time_ms=3) == {"symbol": "BTCUSDT", "price": "1.0"}


# -- websocket ----------------------------------------------------------------------------------


def test_parse_stream() -> None:
    assert wire.parse_stream("btcusdt@depth5@100ms") == wire.Stream("btcusdt@depth5@100ms", "depth", "BTCUSDT",
                                                                    levels=5, every_ms=100)
    assert wire.parse_stream("btcusdt@depth20").every_ms == 250, "futures partial depth: 250 ms by default"
    assert wire.parse_stream("btcusdt@depth10@500ms").every_ms == 500
    assert wire.parse_stream("btcusdt@depth5", "spot").every_ms == 1000, "spot partial depth: 1000 ms by default"
    assert wire.parse_stream("btcusdt@depth5@500ms", "spot").kind == "other"
    assert wire.parse_stream("btcusdt@depth7").kind == "other"
    assert wire.parse_stream("btcusdt@depth@100ms").kind == "diffDepth"
    assert wire.parse_stream("ethusdt@kline_3m") == wire.Stream("ethusdt@kline_3m", "kline", "ETHUSDT", interval="3m")
    assert wire.parse_stream("ethusdt@markPrice").every_ms == 3000
    assert wire.parse_stream("ethusdt@markPrice@1s").every_ms == 1000
    assert wire.parse_stream("!bookTicker") == wire.Stream("!bookTicker", "allBookTicker", every_ms=5000)
    assert wire.parse_stream("ethusdt@bookTicker").kind == "bookTicker"
    assert wire.parse_stream("!markPrice@arr").kind == "other"


@pytest.mark.parametrize(("name", "market_route", "public_route", "bare", "spot"), [
    ("btcusdt@kline_3m", True, False, False, True),
    ("btcusdt@markPrice", True, False, False, False),
    ("btcusdt@markPrice@1s", True, False, False, False),
    ("btcusdt@aggTrade", True, False, False, True),
    ("btcusdt@trade", False, True, True, True),
    ("btcusdt@bookTicker", False, True, True, True),
    ("!bookTicker", False, True, True, False),
    ("btcusdt@depth5@100ms", False, True, True, True),
    ("btcusdt@depth20", False, True, True, True),
    ("btcusdt@depth@100ms", False, True, True, True),
])
def test_routes_deliver_what_binance_delivers(name: str, market_route: bool, public_route: bool, bare: bool,
                                              spot: bool) -> None:
    futures, spot_stream = wire.parse_stream(name), wire.parse_stream(name, "spot")
    assert wire.route_delivers("market", futures) is market_route
    assert wire.route_delivers("public", futures) is public_route
    assert wire.route_delivers("bare", futures) is bare, "the bare base delivers only what /public delivers"
    assert wire.route_delivers("spot", spot_stream) is spot
    assert wire.route_market("spot") == "spot" and wire.route_market("bare") == "futures"
