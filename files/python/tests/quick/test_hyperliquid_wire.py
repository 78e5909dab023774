"""Hyperliquid's wire format (freqfeed.exchanges.hyperliquid.wire): every number repeated literally."""

from __future__ import annotations

import pytest

from freqfeed.exchanges.hyperliquid import wire
from freqfeed.exchanges.hyperliquid.wire import Asset, HyperliquidError, Universe

HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def test_limits_and_urls() -> None:
    assert (wire.WEIGHT_LIMIT, wire.CANDLE_HORIZON, wire.FUNDING_PAGE) == (1200, 5000, 500)
    assert (wire.MAX_WS_CONNECTIONS, wire.MAX_WS_SUBSCRIPTIONS, wire.WS_IDLE_CLOSE_S) == (10, 1000, 60.0)
    assert wire.WS_PING_EVERY_S < wire.WS_IDLE_CLOSE_S
    assert wire.MAINNET_URL == "https://api.hyperliquid.xyz"
    assert wire.MAINNET_WS_URL == "wss://api.hyperliquid.xyz/ws"
    assert "6h" not in wire.INTERVALS and "1M" in wire.INTERVALS and "1M" not in wire.GRID_INTERVALS


def test_weights() -> None:
    assert wire.info_weight("meta") == 20
    assert wire.info_weight("metaAndAssetCtxs") == 20
    assert wire.info_weight("l2Book") == 2
    assert wire.info_weight("allMids") == 2
    assert wire.info_weight("exchangeStatus") == 2
    assert wire.info_weight("userRole") == 60
    assert wire.info_weight("candleSnapshot", 59) == 20
    assert wire.info_weight("candleSnapshot", 60) == 21
    assert wire.info_weight("candleSnapshot", 5000) == 103
    assert wire.info_weight("fundingHistory", 500) == 45
    assert wire.info_weight("fundingHistory", 19) == 20
    assert wire.exchange_weight(1) == 1 and wire.exchange_weight(79) == 2


@pytest.mark.parametrize("body", [
    None, [], "meta", {}, {"type": 3}, {"type": "nosuchtype"},
    {"type": "candleSnapshot"},
    {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "6h", "startTime": 0, "endTime": 1}},
    {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": -1, "endTime": 1}},
    {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": "0", "endTime": 1}},
    {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": 1.5, "endTime": 1}},
    {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": True, "endTime": 1}},
    {"type": "candleSnapshot", "req": {"interval": "1m", "startTime": 0, "endTime": 1}},
    {"type": "fundingHistory", "coin": "BTC"},
    {"type": "fundingHistory", "coin": 1, "startTime": 0},
    {"type": "fundingHistory", "coin": "BTC", "startTime": 2**64},
    {"type": "l2Book"},
    {"type": "l2Book", "coin": "BTC", "nSigFigs": 6},
    {"type": "l2Book", "coin": "BTC", "nSigFigs": 4, "mantissa": 2},
    {"type": "clearinghouseState", "user": "alice"},
    {"type": "openOrders"},
])
def test_bad_bodies_are_422_with_hyperliquids_text(body: object) -> None:
    with pytest.raises(HyperliquidError) as error:
        wire.parse_info(body)
    assert error.value.status == 422
    assert error.value.body == "Failed to deserialize the JSON body into the target type"


def test_good_bodies() -> None:
    candles = wire.parse_info(wire.candle_snapshot_body("kPEPE", "3m", 0, T0) | {"extra": 1})
    assert (candles.type, candles.coin, candles.interval, candles.start_ms, candles.end_ms) == \
        ("candleSnapshot", "kPEPE", "3m", 0, T0)
    funding = wire.parse_info(wire.funding_history_body("BTC", T0))
    assert (funding.coin, funding.start_ms, funding.end_ms) == ("BTC", T0, None)
    assert wire.parse_info({"type": "l2Book", "coin": "BTC", "nSigFigs": 5, "mantissa": 2}).mantissa == 2
    user = wire.parse_info({"type": "clearinghouseState", "user": "0x" + "ab" * 20})
    assert user.is_user and user.user == "0x" + "ab" * 20
    assert not wire.parse_info({"type": "meta"}).is_user
    assert wire.parse_info({"type": "meta", "dex": "xyz"}).dex == "xyz"


def test_candle_window_horizon_and_alignment() -> None:
    minute = 60_000
    now = T0 + 10 * HOUR + 30 * minute + 5_000  # inside the 10:30 candle
    window = wire.candle_window(T0 + 10 * HOUR + 7_000, T0 + 10 * HOUR + 30 * minute, now, "3m")
    assert window.first_open == T0 + 10 * HOUR and window.last_open == T0 + 10 * HOUR + 30 * minute
    assert window.count == 11  # the candles containing start and end, both
    # endTime in the future: up to the candle in progress
    assert wire.candle_window(now - 6 * minute, now + HOUR, now, "3m").last_open == T0 + 10 * HOUR + 30 * minute
    # startTime 0: the last 5000 candles, the one in progress included
    full = wire.candle_window(0, now, now, "3m")
    assert full.count == 5000 and full.first_open == T0 + 10 * HOUR + 30 * minute - 4999 * 3 * minute
    assert full.first_open == wire.horizon_first_open(now, "3m")
    # entirely before the horizon, or start after end: empty
    assert wire.candle_window(0, full.first_open - 1, now, "3m").count == 0
    assert wire.candle_window(now, now - 1, now, "3m").count == 0
    with pytest.raises(ValueError, match="fixed grid"):
        wire.interval_ms("1M")


def test_pages_and_horizon_reached() -> None:
    minute = 60_000
    start, end = T0, T0 + 20_000 * minute - 1
    first, last = wire.candle_page_back(start, end, "1m")
    assert last == end and first == end + 1 - 5000 * minute
    assert wire.candle_page_back(T0, T0 + 10 * minute, "1m") == (T0, T0 + 11 * minute - 1)
    assert wire.horizon_reached(T0, None, "1m")
    assert wire.horizon_reached(T0, T0 + minute, "1m")
    assert not wire.horizon_reached(T0 + 30_000, T0, "1m")


def test_funding_times_page() -> None:
    assert wire.funding_times(T0 + 1, T0 + 3 * HOUR) == [T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]
    assert wire.funding_times(T0, T0) == [T0]
    page = wire.funding_times(T0, T0 + 2000 * HOUR)
    assert len(page) == 500 and page[0] == T0 and page[-1] == T0 + 499 * HOUR
    assert wire.funding_times(T0 + 1, T0 + 2) == []
    assert wire.funding_hour(1_683_849_600_048) == 1_683_849_600_000


def test_shapes() -> None:
    row = wire.candle_row("ETH", "15m", 1_704_286_800_000, "2247.9", "2226.4", "2247.9", "2224.6", "591.6427", 46)
    assert row == {"t": 1_704_286_800_000, "T": 1_704_287_699_999, "s": "ETH", "i": "15m", "o": "2247.9",
                   "c": "2226.4", "h": "2247.9", "l": "2224.6", "v": "591.6427", "n": 46}
    assert list(row) == ["t", "T", "s", "i", "o", "c", "h", "l", "v", "n"]
    assert wire.decimal_string(4_200_010, 2) == "42000.1"
    assert wire.decimal_string(4_200_000, 2) == "42000.0"
    assert wire.decimal_string(42, 0) == "42.0"
    assert wire.decimal_string(5, 8) == "0.00000005"
    assert wire.decimal_string(125, 7) == "0.0000125"
    book = wire.l2_book("BTC", 5, [wire.level("1.0", "2.0", 3)] * 30, [])
    assert book["levels"][0][0] == {"px": "1.0", "sz": "2.0", "n": 3} and len(book["levels"][0]) == 20
    assert wire.funding_row("BTC", "0.0000125", "0.0", 7) == {"coin": "BTC", "fundingRate": "0.0000125",
                                                               "premium": "0.0", "time": 7}


def test_coins_and_pairs() -> None:
    assets = [Asset("BTC", 5, 40), Asset("ETH", 4, 25), Asset("MATIC", 1, 20, delisted=True), Asset("kPEPE", 0, 10)]
    universe = Universe.from_answer(wire.meta_and_asset_ctxs(assets, [_ctx()] * 4))
    assert universe.index == {"BTC": 0, "ETH": 1, "MATIC": 2, "kPEPE": 3}  # delisted coins keep their index
    assert wire.coin_to_pair("kPEPE") == "KPEPE/USDC:USDC"
    assert universe.pair_to_coin("KPEPE/USDC:USDC") == "kPEPE"
    assert universe.pair_to_coin("BTC/USDC:USDC") == "BTC"
    assert universe.coins(["BTC/USDC:USDC", "KPEPE/USDC:USDC"]) == {"BTC/USDC:USDC": "BTC",
                                                                    "KPEPE/USDC:USDC": "kPEPE"}
    with pytest.raises(wire.UnknownPairs, match=r"MATIC/USDC:USDC \(delisted\), BTC/USDT:USDT"):
        universe.coins(["MATIC/USDC:USDC", "BTC/USDT:USDT"])
    assert universe.coins(["MATIC/USDC:USDC"], allow_delisted=True) == {"MATIC/USDC:USDC": "MATIC"}
    with pytest.raises(ValueError, match="both map to KPEPE"):
        Universe.of([Asset("kPEPE", 0, 10), Asset("KPEPE", 0, 10)])
    with pytest.raises(ValueError, match="HIP-3"):
        wire.coin_to_pair("xyz:TSLA")
    meta = wire.meta(assets)
    assert meta["universe"][2]["isDelisted"] is True and "isDelisted" not in meta["universe"][0]


def test_websocket_messages() -> None:
    sub = wire.candle_subscription("BTC", "1m")
    assert wire.subscribe(sub) == {"method": "subscribe",
                                   "subscription": {"type": "candle", "coin": "BTC", "interval": "1m"}}
    assert wire.subscription_ack("unsubscribe", sub) == {
        "channel": "subscriptionResponse",
        "data": {"method": "unsubscribe", "subscription": {"type": "candle", "coin": "BTC", "interval": "1m"}}}
    assert wire.subscription_ack("subscribe", wire.Subscription("l2Book", "BTC"))["data"]["subscription"] == \
        {"type": "l2Book", "coin": "BTC", "nSigFigs": None, "mantissa": None}
    assert wire.parse_subscription({"type": "allMids"}) == wire.Subscription("allMids")
    assert wire.parse_subscription({"type": "l2Book", "coin": "ETH"}).coin == "ETH"
    for bad in ({"type": "candle", "coin": "BTC"}, {"type": "candle", "coin": "BTC", "interval": "6h"},
                {"type": "nosuch"}, "x", {"type": "l2Book", "coin": "BTC", "nSigFigs": 9}):
        with pytest.raises(wire.SubscriptionError, match="Invalid subscription"):
            wire.parse_subscription(bad)
    assert wire.PING == {"method": "ping"} and wire.PONG == {"channel": "pong"}
    assert wire.all_mids({"BTC": "1.0"}) == {"mids": {"BTC": "1.0"}}


def test_plan_connections() -> None:
    subs = [wire.candle_subscription(f"C{i}", tf) for i in range(100) for tf in ("1m", "3m", "15m", "1h")]
    assert [len(b) for b in wire.plan_connections(subs, per_connection=100)] == [100, 100, 100, 100]
    assert len(wire.plan_connections(subs + subs)) == 1  # duplicates count once
    with pytest.raises(ValueError, match="allows 1000 per IP"):
        wire.plan_connections([wire.candle_subscription(f"C{i}", "1m") for i in range(1001)])
    with pytest.raises(ValueError, match="allows 10 per IP"):
        wire.plan_connections(subs, per_connection=10)


def _ctx() -> wire.AssetCtx:
    return wire.AssetCtx("0.0000125", "1.0", "1.0", "1.0", "0.0", "1.0", "1.0", "1.0", ("1.0", "1.0"), "1.0")


def test_rows_as_freqfeeds_types() -> None:
    from freqfeed.exchanges.hyperliquid.rest import candle_from_row, funding_from_row
    from freqfeed.schema import Candle, FundingRate

    row = wire.candle_row("kPEPE", "1m", T0, "0.011248", "0.011266", "0.011274", "0.01124", "46257383.0", 944)
    assert candle_from_row(row) == Candle(T0, 0.011248, 0.011274, 0.01124, 0.011266, 46257383.0, None, 944)
    assert funding_from_row(wire.funding_row("BTC", "-0.0000034", "0.0", T0 + 48)) == FundingRate(
        T0, -0.0000034, premium=0.0, published=T0 + 48)  # the row's premium and time kept for the gateway
