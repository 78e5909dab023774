"""The Hyperliquid gateway's pure parts: what is let in (admission.py), how candleSnapshot and fundingHistory
are answered from stored points (local.py), the answer cache and its coalescing (gateway.AnswerCache)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from freqfeed.exchanges.hyperliquid import admission, local, wire
from freqfeed.exchanges.hyperliquid.admission import Refused
from freqfeed.exchanges.hyperliquid.books import BookStreams
from freqfeed.exchanges.hyperliquid.gateway import AnswerCache, Reply
from freqfeed.exchanges.hyperliquid.simulator import HyperliquidMarket
from freqfeed.exchanges.hyperliquid.wire import HyperliquidError

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
MINUTE, HOUR = 60_000, 3_600_000
USER = "0x" + "ab" * 20


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


# -- admission ----------------------------------------------------------------------------------


def test_only_post_info_is_served_and_exchange_is_refused() -> None:
    admission.route("POST", "/info")
    for method, path, status, kind in (("POST", "/exchange", 403, "exchange"), ("GET", "/exchange/", 403, "exchange"),
                                       ("GET", "/info", 405, "method"), ("POST", "/fapi/v1/klines", 404, "path"),
                                       ("POST", "/", 404, "path")):
        with pytest.raises(Refused) as refused:
            admission.route(method, path)
        assert (refused.value.status, refused.value.kind) == (status, kind)
    assert "urls.api.private" in admission.EXCHANGE_REFUSAL


def test_bodies_are_checked_as_hyperliquid_does_and_only_known_fields_pass() -> None:
    ok = admission.parse_body(body(type="candleSnapshot", req={"coin": "kPEPE", "interval": "3m", "startTime": 0,
                                                               "endTime": T0}))
    assert (ok.coin, ok.interval, ok.start_ms, ok.end_ms) == ("kPEPE", "3m", 0, T0)
    assert admission.parse_body(body(type="clearinghouseState", user=USER)).is_user
    assert admission.parse_body(body(type="orderStatus", user=USER, oid=12)).type == "orderStatus"
    for raw, status in ((b"{not json", 400), (b"\xff\xfe", 400), (body(type="nope"), 422), (b"[]", 422),
                        (body(type="meta", extra=1), 422), (body(type="candleSnapshot", req={
                            "coin": "BTC", "interval": "6h", "startTime": 0, "endTime": 1}), 422),
                        (body(type="candleSnapshot", req={"coin": "BTC", "interval": "1h", "startTime": 0,
                                                          "endTime": 1, "x": 2}), 422),
                        (body(type="fundingHistory", coin="BTC", startTime=-1), 422),
                        (body(type="fundingHistory", coin="BTC", startTime="0"), 422),
                        (body(type="clearinghouseState", user="bob"), 422),
                        (body(type="orderStatus", user=USER, oid={"a": 1}), 422),
                        (b"x" * (admission.MAX_BODY + 1), 413)):
        with pytest.raises(HyperliquidError) as error:
            admission.parse_body(raw)
        assert error.value.status == status, raw[:80]
        assert len(error.value.body) < 100  # never the input echoed


def test_the_422_text_is_hyperliquids() -> None:
    with pytest.raises(HyperliquidError) as error:
        admission.parse_body(body(type="x" * 5000))
    assert (error.value.status, error.value.body) == (422, wire.DESERIALIZE_ERROR)


def test_every_type_wire_knows_is_allowed_and_user_types_are_never_shared() -> None:
    assert set(admission.FIELDS) == wire.MARKET_TYPES | wire.USER_TYPES
    rules = admission.TtlRules({"meta": 30.0})
    assert rules.ttl(admission.parse_body(body(type="meta"))) == 30.0
    assert rules.ttl(admission.parse_body(body(type="metaAndAssetCtxs"))) == admission.DEFAULT_TTL["metaAndAssetCtxs"]
    assert rules.ttl(admission.parse_body(body(type="l2Book", coin="BTC"))) == 0.5
    for kind in sorted(wire.USER_TYPES):
        assert rules.ttl(admission.parse_body(body(type=kind, user=USER))) is None, kind


def test_canonical_bodies_make_one_key_per_request() -> None:
    a = admission.parse_body(b'{"type":"l2Book","coin":"BTC"}')
    b = admission.parse_body(b'{ "coin" : "BTC", "type" : "l2Book" }')
    assert admission.canonical(a) == admission.canonical(b) == '{"coin":"BTC","type":"l2Book"}'


def test_expected_rows_size_the_forwarded_weight() -> None:
    candles = admission.parse_body(body(type="candleSnapshot", req={"coin": "BTC", "interval": "1m", "startTime": 0,
                                                                    "endTime": T0}))
    assert admission.expected_rows(candles, T0) == wire.CANDLE_HORIZON
    funding = admission.parse_body(body(type="fundingHistory", coin="BTC", startTime=T0 - 10 * HOUR))
    assert admission.expected_rows(funding, T0 + 1) == 11
    assert admission.expected_rows(admission.parse_body(body(type="meta")), T0) == 0


# -- candleSnapshot from stored points ----------------------------------------------------------


def stored_candles(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """candleSnapshot rows as InfluxDB gives them back: floats, `trades`, time = open."""
    return [{"time": r["t"], "open": float(r["o"]), "high": float(r["h"]), "low": float(r["l"]),
             "close": float(r["c"]), "volume": float(r["v"]), "trades": r["n"]} for r in rows]


def current(market: HyperliquidMarket, coin: str, interval: str, now: int) -> dict[str, Any]:
    row = market.current_candle(coin, interval, now)
    assert row is not None
    return row


def candle_request(coin: str, interval: str, start: int, end: int | None) -> wire.InfoRequest:
    req: dict[str, Any] = {"coin": coin, "interval": interval, "startTime": start}
    if end is not None:
        req["endTime"] = end
    return admission.parse_body(body(type="candleSnapshot", req=req))


@pytest.mark.parametrize("coin", ["BTC", "kPEPE"])
def test_candles_from_storage_equal_the_exchanges_answer(coin: str) -> None:
    market = HyperliquidMarket(3, start_ms=T0)
    now = T0 + 7 * MINUTE + 2_500
    for start, end in ((now - 60 * MINUTE, now), (0, now), (now - 30 * MINUTE - 7, now - 10 * MINUTE + 3),
                       (now - 20 * MINUTE, None), (now, now - MINUTE), (0, now - 5000 * 3 * MINUTE)):
        request = candle_request(coin, "3m", start, end)
        truth = market.candle_rows(coin, "3m", start, now if end is None else end, now)
        plan = local.candle_plan(request, now)
        closed = market.candle_rows(coin, "3m", 0, now - 3 * MINUTE, now)  # everything closed is stored
        live = [{**stored_candles([current(market, coin, "3m", now)])[0], "event_time": now - 300}]
        answer = local.candle_answer(coin, plan, stored_candles(closed), live, now, 10_000)
        assert answer == truth, (start, end)
        assert json.dumps(answer) == json.dumps(truth)  # the same strings, fields in the same order


def test_the_horizon_cuts_what_is_stored_as_the_exchange_does() -> None:
    now = T0 + 5 * MINUTE
    plan = local.candle_plan(candle_request("BTC", "1m", 0, now), now)
    assert plan.window.count == wire.CANDLE_HORIZON
    assert plan.window.first_open == now - 4999 * MINUTE and plan.live_open == now
    assert len(plan.closed_opens) == wire.CANDLE_HORIZON - 1


def test_candles_missing_or_a_stale_current_candle_are_incomplete() -> None:
    market = HyperliquidMarket(3, start_ms=T0)
    now = T0 + 30 * MINUTE + 10_000
    request = candle_request("BTC", "1m", now - 10 * MINUTE, now)
    plan = local.candle_plan(request, now)
    closed = stored_candles(market.candle_rows("BTC", "1m", now - 10 * MINUTE, now - MINUTE, now))
    live = [{**stored_candles([current(market, "BTC", "1m", now)])[0], "event_time": now - 500}]
    assert len(local.candle_answer("BTC", plan, closed, live, now, 10_000)) == 11
    with pytest.raises(local.Incomplete, match="1 of 10 closed"):
        local.candle_answer("BTC", plan, closed[:4] + closed[5:], live, now, 10_000)
    with pytest.raises(local.Incomplete, match="no current"):
        local.candle_answer("BTC", plan, closed, [], now, 10_000)
    with pytest.raises(local.Incomplete, match="stale"):
        local.candle_answer("BTC", plan, closed, [{**live[0], "event_time": now - 20_000}], now, 10_000)
    old = [{k: v for k, v in row.items() if k != "trades"} for row in closed]  # written before `trades` existed
    with pytest.raises(local.Incomplete):
        local.candle_answer("BTC", plan, old, live, now, 10_000)


# -- fundingHistory from stored points ----------------------------------------------------------


def stored_funding(market: HyperliquidMarket, coin: str, start: int, end: int, now: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = start
    while True:  # every page, as the producer would have stored them
        page = market.funding_rows(coin, cursor, end, now)
        rows += page
        if len(page) < wire.FUNDING_PAGE:
            break
        cursor = page[-1]["time"] + 1
    return [{"time": wire.funding_hour(r["time"]), "rate": float(r["fundingRate"]), "premium": float(r["premium"]),
             "published_time": r["time"]} for r in rows]


def test_funding_from_storage_equals_the_exchanges_pages() -> None:
    market = HyperliquidMarket(5, start_ms=T0)
    now = T0 + 30 * 24 * HOUR + 17 * MINUTE
    stored = stored_funding(market, "BTC", T0 - 2 * HOUR, now, now)
    for start, end in ((T0, None), (T0 + 1, None), (T0 + 5 * HOUR + 200, now - 3 * HOUR), (T0 + 600 * HOUR, None),
                       (now - HOUR, now), (now + HOUR, None), (T0 + 20 * HOUR, T0 + 10 * HOUR)):
        request = admission.parse_body(body(type="fundingHistory", coin="BTC", startTime=start,
                                            **({"endTime": end} if end is not None else {})))
        truth = market.funding_rows("BTC", start, end, now)
        span = local.funding_span(request, now)
        answer = [] if span is None else local.funding_answer(
            "BTC", request, span, [r for r in stored if span[0] <= r["time"] <= span[1]], now)
        assert json.dumps(answer) == json.dumps(truth), (start, end)
    assert len(truth) == 0
    first = admission.parse_body(body(type="fundingHistory", coin="BTC", startTime=T0))
    span = local.funding_span(first, now)
    assert span is not None
    assert len(local.funding_answer("BTC", first, span, stored, now)) == wire.FUNDING_PAGE


def test_funding_not_stored_or_without_its_published_time_is_incomplete() -> None:
    now = T0 + 10 * HOUR + 5 * MINUTE
    request = admission.parse_body(body(type="fundingHistory", coin="BTC", startTime=T0))
    span = local.funding_span(request, now)
    assert span == (T0, T0 + 10 * HOUR)
    rows = [{"time": T0 + h * HOUR, "rate": 1e-5, "premium": 0.0, "published_time": T0 + h * HOUR + 7}
            for h in range(11)]
    assert [r["time"] for r in local.funding_answer("BTC", request, span, rows, now)] == [r["published_time"]
                                                                                          for r in rows]
    with pytest.raises(local.Incomplete, match="1 of 11"):
        local.funding_answer("BTC", request, span, rows[1:], now)
    with pytest.raises(local.Incomplete):
        local.funding_answer("BTC", request, span, [{**r, "published_time": None} for r in rows], now)


def test_floats_read_back_print_as_hyperliquid_printed_them() -> None:
    for text in ("42000.1", "42000.0", "0.0000125", "-0.0000034", "0.0", "0.011248", "46257383.0", "0.00000005",
                 "123456.78901", "1.0"):
        assert wire.float_string(float(text)) == text


# -- the answer cache ---------------------------------------------------------------------------


def test_concurrent_identical_requests_make_one_and_answers_expire() -> None:
    async def scenario() -> None:
        cache = AnswerCache(entries=2, max_bytes=1000)
        made = 0

        async def make() -> Reply:
            nonlocal made
            made += 1
            await asyncio.sleep(0.01)
            return Reply(200, b"[1]")

        replies = await asyncio.gather(*(cache.shared("meta", 5.0, make) for _ in range(10)))
        assert made == 1 and cache.coalesced == 9 and all(r.body == b"[1]" for r in replies)
        await cache.shared("meta", 5.0, make)
        assert made == 1 and cache.hits == 1
        await cache.shared("other", 0.0, make)  # ttl 0: coalesced only, never kept
        assert cache.get("other") is None and made == 2
        for key in ("a", "b", "c"):
            await cache.shared(key, 5.0, make)
        assert len(cache) == 2 and cache.evictions == 2  # bounded: meta and "a" dropped

        async def fails() -> Reply:
            await asyncio.sleep(0.01)
            raise local.Incomplete("nothing stored")

        results = await asyncio.gather(*(cache.shared("x", 5.0, fails) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, local.Incomplete) for r in results)
        error = Reply(429, b"null")
        cache.put("y", error, 5.0)
        assert cache.get("y") is None  # only answers with 200 are kept

    asyncio.run(scenario())


# -- books from the subscription ----------------------------------------------------------------


def test_streamed_books_are_served_fresh_and_never_across_a_reconnect() -> None:
    market = HyperliquidMarket(3, start_ms=T0)
    books = BookStreams("ws://127.0.0.1:1/ws", ["BTC", "kPEPE"], max_age_s=60.0, silence_s=10.0)
    plain = admission.parse_body(body(type="l2Book", coin="BTC"))
    assert books.answer(plain) is None  # nothing streamed yet: forwarded
    book = market.book("BTC", T0)
    books.on_message("l2Book", book)
    books.on_message("l2Book", {"coin": "ETH", "time": T0, "levels": [[], []]})  # not ours
    books.on_message("trades", [])
    assert json.loads(books.answer(plain) or b"") == book
    assert books.answer(admission.parse_body(body(type="l2Book", coin="BTC", nSigFigs=5))) is None  # aggregated
    assert books.answer(admission.parse_body(body(type="l2Book", coin="ETH"))) is None
    books.on_disconnect("gateway books", "closed", 1.0)
    assert books.answer(plain) is None and books.status()["disconnects"] == 1
    books.max_age_s = -1.0
    books.on_message("l2Book", book)
    assert books.answer(plain) is None  # older than book_max_age
    assert books.status()["served"] == 1


def test_streamed_mids_answer_the_main_dex_only() -> None:
    market = HyperliquidMarket(3, start_ms=T0)
    books = BookStreams("ws://127.0.0.1:1/ws", [], max_age_s=60.0, silence_s=10.0)
    mids = admission.parse_body(body(type="allMids"))
    assert books.answer(mids) is None
    books.on_message("allMids", wire.all_mids(market.mids(T0)))  # wrapped on the websocket, not over REST
    assert json.loads(books.answer(mids) or b"") == market.mids(T0)
    assert books.answer(admission.parse_body(body(type="allMids", dex="xyz"))) is None  # another dex: forwarded
    books.on_disconnect("gateway books", "closed", 1.0)
    assert books.answer(mids) is None
