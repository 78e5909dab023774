"""What the producer fetches: the missing ranges of a window, and the REST pages that fill them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from freqfeed import producer
from freqfeed.exchanges.binance import wire
from freqfeed.producer import Series, _Gap, missing_ranges

M = 60_000
T0 = 1_795_572_000_000  # a round minute


def present(*opens: int) -> np.ndarray:
    return np.array(opens, dtype=np.int64)


def test_nothing_missing() -> None:
    assert missing_ranges(T0, T0 + 4 * M, M, present(*(T0 + i * M for i in range(5))), set()) == []


def test_everything_missing_is_one_range() -> None:
    assert missing_ranges(T0, T0 + 9 * M, M, present(), set()) == [(T0, T0 + 9 * M)]


def test_holes_at_both_ends_and_inside() -> None:
    have = present(T0 + M, T0 + 2 * M, T0 + 5 * M, T0 + 8 * M)
    assert missing_ranges(T0, T0 + 9 * M, M, have, set()) == [
        (T0, T0), (T0 + 3 * M, T0 + 4 * M), (T0 + 6 * M, T0 + 7 * M), (T0 + 9 * M, T0 + 9 * M)]


def test_exchange_gaps_are_skipped_and_split_ranges() -> None:
    """Candles the exchange does not have (maintenance) are never asked for again."""
    assert missing_ranges(T0, T0 + 5 * M, M, present(), {T0 + 2 * M}) == [(T0, T0 + M), (T0 + 3 * M, T0 + 5 * M)]
    assert missing_ranges(T0, T0 + 2 * M, M, present(T0), {T0 + M, T0 + 2 * M}) == []


def test_points_off_the_grid_or_outside_the_window_do_not_count() -> None:
    have = present(T0 - M, T0 + 30_000, T0 + 11 * M)
    assert missing_ranges(T0, T0 + 2 * M, M, have, set()) == [(T0, T0 + 2 * M)]


def test_a_single_candle_window() -> None:
    assert missing_ranges(T0, T0, M, present(), set()) == [(T0, T0)]
    assert missing_ranges(T0, T0, M, present(T0), set()) == []


# -- pages -------------------------------------------------------------------------------------


def planner(now_ms: int, page: int) -> SimpleNamespace:
    """What Producer._pages uses of the producer: the exchange clock and the page size."""
    return SimpleNamespace(clock=SimpleNamespace(now=lambda: now_ms), rest=SimpleNamespace(page_candles=lambda n: page))


def gap(kind: str, timeframe: str, ranges: list[tuple[int, int]], pair: str = "BTC/USDT:USDT") -> _Gap:
    measurement = "mark_price" if kind == "mark" else f"ohlcv_{timeframe}"
    return _Gap(Series(kind, pair, timeframe, measurement), 0, 0, ranges)


def pages(now_ms: int, size: int, gaps: list[_Gap]) -> list[tuple[str, int, int]]:
    return [(g.series.pair, first, last)
            for g, first, last in producer.Producer._pages(planner(now_ms, size), gaps)]  # type: ignore[arg-type]


def test_pages_cover_each_range_exactly_newest_first() -> None:
    ranges = [(T0, T0 + 9 * M), (T0 + 20 * M, T0 + 22 * M)]
    result = pages(T0 + 100 * M, 4, [gap("ohlcv", "1m", ranges)])
    assert [(a, b) for _, a, b in result] == [
        (T0 + 20 * M, T0 + 22 * M), (T0 + 6 * M, T0 + 9 * M), (T0 + 2 * M, T0 + 5 * M), (T0, T0 + M)]
    covered = sorted(t for _, a, b in result for t in range(a, b + 1, M))
    assert covered == [*range(T0, T0 + 10 * M, M), *range(T0 + 20 * M, T0 + 23 * M, M)]


def test_every_series_gets_its_newest_page_first() -> None:
    btc = gap("ohlcv", "1m", [(T0, T0 + 7 * M)])
    eth = gap("ohlcv", "1m", [(T0, T0 + 5 * M)], pair="ETH/USDT:USDT")
    result = pages(T0 + 100 * M, 3, [btc, eth])
    assert [p for p, _, _ in result[:2]] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert result[0][2] == T0 + 7 * M and result[1][2] == T0 + 5 * M
    assert len(result) == 3 + 2


def test_a_mark_page_reaching_the_present_holds_one_closed_candle_less() -> None:
    """Binance adds its mark candle in progress to such a page: the page stays one request of `size` rows."""
    h = 3_600_000
    now = T0 + 10 * h + 5 * M
    last_closed = T0 + 9 * h
    result = pages(now, 4, [gap("mark", "1h", [(last_closed - 7 * h, last_closed)])])
    assert [(a, b) for _, a, b in result] == [
        (last_closed - 2 * h, last_closed), (last_closed - 6 * h, last_closed - 3 * h),
        (last_closed - 7 * h, last_closed - 7 * h)]


def test_no_gaps_no_pages() -> None:
    assert pages(T0, 10, [gap("ohlcv", "1m", [])]) == []


# -- page size ---------------------------------------------------------------------------------


def test_klines_weights_follow_the_limit() -> None:
    weights = {limit: wire.request_weight("futures", "klines", {"limit": str(limit)})
               for limit in (1, 99, 100, 499, 500, 1000, 1001, 1500)}
    assert weights == {1: 1, 99: 1, 100: 2, 499: 2, 500: 5, 1000: 5, 1001: 10, 1500: 10}
    assert wire.request_weight("spot", "klines", {"limit": "1000"}) == 2


def test_page_size_bound_by_weight_prefers_cheap_pages() -> None:
    """Futures, the weight budget the bound: 499 (weight 2) fetches 1500 candles for 8 weight, 1500 for 10."""
    assert wire.page_size("futures", 100_000, weight_per_second=10) == 499
    assert wire.page_size("futures", 100_000, request_seconds=0.0, weight_per_second=1.0) == 499


def test_page_size_bound_by_spacing_takes_the_largest_page() -> None:
    assert wire.page_size("futures", 100_000, request_seconds=1.0, weight_per_second=1000) == 1500
    assert wire.page_size("spot", 100_000, request_seconds=1.0, weight_per_second=1000) == 1000


@pytest.mark.parametrize(("candles", "expected"), [(0, 1), (1, 1), (2, 2), (99, 99), (150, 150), (499, 499)])
def test_small_ranges_are_one_request(candles: int, expected: int) -> None:
    assert wire.page_size("futures", candles, weight_per_second=10) == expected


def test_page_size_never_exceeds_the_markets_limit() -> None:
    for market in ("futures", "spot"):
        for candles in (1, 500, 1001, 1501, 10**6):
            for spacing in (0.0, 0.5, 5.0):
                size = wire.page_size(market, candles, request_seconds=spacing, weight_per_second=20)
                assert 1 <= size <= min(candles, wire.market_info(market).klines_max_limit) or candles <= 1


def test_unknown_market_or_endpoint_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown market 'margin'"):
        wire.page_size("margin", 10)
    with pytest.raises(ValueError, match="no request weight known"):
        wire.request_weight("futures", "nope")


# -- backfill progress -------------------------------------------------------------------------


def test_progress_eta_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(producer.time, "monotonic", lambda: clock[0])
    progress = producer._Progress(pages_total=20, candles_total=20 * 499, started=clock[0], reported=clock[0])
    assert progress.eta_seconds() is None
    clock[0] += 10
    progress.page_done(499)
    assert progress.eta_seconds() == pytest.approx(10 * 19)
    assert progress.as_json() == {"pages_done": 1, "pages_total": 20, "candles_done": 499,
                                  "candles_total": 9980, "eta_seconds": 190}
    assert not progress.due_report(), "not a tenth yet, not 30 s yet"
    progress.page_done(499)
    assert progress.due_report(), "a tenth of the pages"
    progress.page_done(499)
    clock[0] += producer.REPORT_EVERY
    assert progress.due_report(), "30 s since the last line"
    assert "3/20 pages (15%), 1,497/9,980 candles" in progress.line(100, 20, 2400)
    single = producer._Progress(pages_total=1, candles_total=5, started=clock[0], reported=clock[0])
    single.page_done(5)
    assert not single.due_report(), "a one-page backfill reports nothing"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0m00s"), (59.9, "0m59s"), (61, "1m01s"), (3600, "1h00m"),
                                               (7322, "2h02m")])
def test_durations(seconds: float, text: str) -> None:
    assert producer._duration(seconds) == text
