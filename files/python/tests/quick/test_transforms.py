"""Pure transforms: timeframes, feather tables (merge, prepend, trim), InfluxQL statements and windows,
line protocol."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest

from freqfeed import feather, schema
from freqfeed.influxql import Select, Series, quote_identifier, quote_literal
from freqfeed.timeframes import BINANCE_TIMEFRAMES, candle_open, last_closed_open, timeframe_ms

H = 3_600_000
M = 60_000
MONDAY = 1_795_392_000_000  # 2026-11-23 00:00 UTC, a Monday


# -- timeframes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("timeframe", "ms"), [("1m", M), ("3m", 3 * M), ("12h", 12 * H), ("1d", 24 * H),
                                               ("3d", 72 * H), ("1w", 168 * H)])
def test_timeframe_lengths(timeframe: str, ms: int) -> None:
    assert timeframe_ms(timeframe) == ms


@pytest.mark.parametrize("bad", ["", "m", "1M", "1y", "1.5h", " 1m", "1m ", "-1m"])
def test_not_a_timeframe(bad: str) -> None:
    with pytest.raises(ValueError, match="not a timeframe"):
        timeframe_ms(bad)


def test_candle_opens_on_the_grid() -> None:
    assert candle_open(MONDAY + 7 * M + 5, "3m") == MONDAY + 6 * M
    assert candle_open(MONDAY + 6 * M, "3m") == MONDAY + 6 * M, "the open itself belongs to its candle"
    assert candle_open(MONDAY + 6 * M - 1, "3m") == MONDAY + 3 * M
    assert candle_open(MONDAY + 30 * H, "1d") == MONDAY + 24 * H


def test_weeks_start_on_monday() -> None:
    assert candle_open(MONDAY + 6 * 24 * H, "1w") == MONDAY
    assert candle_open(MONDAY + 7 * 24 * H, "1w") == MONDAY + 7 * 24 * H
    assert candle_open(MONDAY - 1, "1w") == MONDAY - 7 * 24 * H


def test_last_closed_open() -> None:
    assert last_closed_open(MONDAY + 3 * M, "3m") == MONDAY, "at the close the candle counts as closed"
    assert last_closed_open(MONDAY + 3 * M - 1, "3m") == MONDAY - 3 * M
    assert all(last_closed_open(MONDAY, tf) + timeframe_ms(tf) <= MONDAY for tf in BINANCE_TIMEFRAMES)


# -- feather tables -------------------------------------------------------------------------------


def table(hours: list[int], close: float = 1.0) -> pa.Table:
    times = np.array(hours, dtype=np.int64) * H
    values = {c: np.full(len(hours), close) for c in feather.value_columns("futures")}
    values["close"] = np.array(hours, dtype=np.float64) + close
    return feather.build_table(times, values, "futures")


def hours(tbl: pa.Table) -> list[int]:
    return [int(v) // (H * 1_000_000) for v in feather.date_ns(tbl)]


def test_build_table_has_freqtrades_layout() -> None:
    built = table([1, 2])
    assert built.column_names == list(feather.OHLCV_COLUMNS)
    assert built.schema.field("date").type == pa.timestamp("ns", tz="UTC")
    assert feather.first_time_ms(built) == H and feather.last_time_ms(built) == 2 * H
    empty = feather.empty_table("funding_rate")
    assert empty.column_names == ["date", "funding_rate"] and feather.last_time_ms(empty) is None


def test_merge_keeps_the_files_head_and_takes_influxdbs_rows_from_the_cut() -> None:
    merged = feather.merge(table([1, 2, 3, 4], close=0.0), table([3, 4, 5], close=0.5), 3 * H, keep=0)
    assert hours(merged) == [1, 2, 3, 4, 5]
    assert merged.column("close").to_pylist() == [1.0, 2.0, 3.5, 4.5, 5.5], "rows from the cut are InfluxDB's"


def test_merge_trims_to_the_newest_rows_and_handles_empty_sides() -> None:
    assert hours(feather.merge(table([1, 2, 3]), table([4, 5]), 4 * H, keep=2)) == [4, 5]
    assert hours(feather.merge(table([1, 2, 3]), table([]), 9 * H, keep=0)) == [1, 2, 3]
    assert hours(feather.merge(feather.empty_table("futures"), table([7]), 0, keep=0)) == [7]
    assert hours(feather.merge(table([5, 6]), table([1, 2]), 0, keep=0)) == [1, 2], "a cut before the file"


def test_merge_sorts_and_deduplicates_overlaps_last_wins() -> None:
    merged = feather.merge(table([1, 2, 3]), table([3, 2], close=0.25), 9 * H, keep=0)
    assert hours(merged) == [1, 2, 3]
    assert merged.column("close").to_pylist() == [2.0, 2.25, 3.25], "a date twice: the later row wins"


def test_prepend_older_rows_within_keep() -> None:
    newer = table([5, 6, 7])
    assert hours(feather.prepend(newer, table([1, 2, 3, 4]), keep=0)) == [1, 2, 3, 4, 5, 6, 7]
    assert hours(feather.prepend(newer, table([1, 2, 3, 4]), keep=5)) == [3, 4, 5, 6, 7]
    assert hours(feather.prepend(newer, table([1, 2]), keep=3)) == [5, 6, 7], "already full"
    assert hours(feather.prepend(newer, table([6, 7, 8]), keep=0)) == [5, 6, 7], "nothing older"
    assert hours(feather.prepend(feather.empty_table("futures"), table([1, 2]), keep=0)) == [1, 2]


def test_count_new_dates() -> None:
    assert feather.count_new_dates(table([1, 2, 3]), None) == 3
    assert feather.count_new_dates(table([1, 2, 3, 4]), table([1, 2])) == 2
    assert feather.count_new_dates(table([0, 2, 9]), table([1, 2, 3])) == 2
    assert feather.count_new_dates(table([1, 2]), feather.empty_table("futures")) == 2


def test_first_gap() -> None:
    assert feather.first_gap_ms(table([1]), H) is None
    assert feather.first_gap_ms(table([1, 3]), H) == 2 * H
    assert feather.first_gap_ms(table([1, 2, 3, 10]), H) == 4 * H


def test_funding_layouts() -> None:
    rates = feather.build_table(np.array([H, 2 * H]), {"funding_rate": np.array([0.0001, -0.0002])}, "funding_rate")
    assert feather.to_layout(rates, "funding_rate", "current") is rates
    legacy = feather.to_layout(rates, "funding_rate", "legacy")
    assert legacy.column_names == list(feather.OHLCV_COLUMNS)
    assert legacy.column("open").to_pylist() == [0.0001, -0.0002] and legacy.column("volume").to_pylist() == [0, 0]


@pytest.mark.parametrize(("pair", "name"), [("BTC/USDT:USDT", "BTC_USDT_USDT"), ("1000PEPE/USDT", "1000PEPE_USDT")])
def test_file_names_follow_freqtrade(pair: str, name: str) -> None:
    assert feather.pair_to_filename(pair) == name


# -- InfluxQL -------------------------------------------------------------------------------------


def test_quoting_escapes_quotes_and_backslashes() -> None:
    assert quote_literal("a'b\\c") == "'a\\'b\\\\c'"
    assert quote_identifier('we"ird\\') == '"we\\"ird\\\\"'


def test_render_a_grouped_count_per_day_over_some_pairs() -> None:
    select = schema.counts_select("ohlcv_3m", 0, 2 * 86_400_000 - 1, field="trades", pairs=["A/B", "C'D"],
                                  every_ms=86_400_000)
    assert select.render() == (
        'SELECT count("trades") FROM "ohlcv_3m" WHERE "exchange" = \'binance\' AND ("pair" = \'A/B\' OR '
        "\"pair\" = 'C\\'D') AND time >= 0ms AND time <= 172799999ms GROUP BY time(86400000ms), \"pair\"")
    assert select.series_expected == 2 and select.density_ms == 3 * M


def test_render_a_sub_range_and_a_smaller_limit() -> None:
    select = schema.series_select("ohlcv_1h", ("close",), "A/B", 0, 100 * H, newest=50)
    text = select.render(since_ms=10, until_ms=20, limit=5)
    assert text.endswith("AND time >= 10ms AND time <= 20ms ORDER BY time DESC LIMIT 5")
    assert select.series_expected == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"since_ms": 5, "until_ms": 4}, "empty time range"),
    ({"fields": ("a", "b"), "aggregate": "count"}, "exactly one field"),
    ({"every_ms": 1000}, "time buckets need an aggregate"),
])
def test_bad_selects_are_refused(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"measurement": "m", "fields": ("x",), "since_ms": 0, "until_ms": 10}
    with pytest.raises(ValueError, match=message):
        Select(**{**base, **kwargs})  # type: ignore[arg-type]


def test_windows_cover_the_range_without_overlap() -> None:
    select = Select("m", ("x",), 100, 1099)
    assert select.windows(None) == [(100, 1099)] and select.windows(5000) == [(100, 1099)]
    assert select.windows(300) == [(100, 399), (400, 699), (700, 999), (1000, 1099)]
    assert Select("m", ("x",), 7, 7).windows(1) == [(7, 7)]
    bounds = select.windows(7)
    assert bounds[0][0] == 100 and bounds[-1][1] == 1099
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(bounds))


def series(tags: dict[str, str], rows: list[list[object]]) -> Series:
    return Series("m", tags, ["time", "x"], rows)


def test_merging_windows_gives_the_whole_ranges_answer() -> None:
    a, b = {"pair": "A"}, {"pair": "B"}
    parts = [[series(a, [[1, 3]]), series(b, [[1, 1]])], [series(a, [[5, 2]])]]
    count = Select("m", ("x",), 0, 9, group_by=("pair",), aggregate="count")
    assert [(s.tags, s.values) for s in count.merge(parts)] == [(a, [[0, 5]]), (b, [[0, 1]])]
    last = Select("m", ("x",), 0, 9, group_by=("pair",), aggregate="last")
    assert [s.values for s in last.merge(parts)] == [[[5, 2]], [[1, 1]]]
    first = Select("m", ("x",), 0, 9, group_by=("pair",), aggregate="first")
    assert [s.values for s in first.merge(parts)] == [[[1, 3]], [[1, 1]]]
    newest = Select("m", ("x",), 0, 9, newest=1)
    assert newest.merge([[series({}, [[2, 0], [1, 0]])], [series({}, [[4, 0], [3, 0]])]])[0].values == [[4, 0]]
    assert count.merge([parts[0]]) is parts[0], "one window: the answer as it is"


def test_a_day_bucket_cut_by_a_window_boundary_is_added_up() -> None:
    daily = Select("m", ("x",), 0, 9, aggregate="count", every_ms=5)
    merged = daily.merge([[series({}, [[0, 2], [5, 1]])], [series({}, [[5, 3], [10, None]])]])
    assert merged[0].values == [[0, 2], [5, 4], [10, 0]]


def test_rows_as_mappings() -> None:
    assert series({}, [[1, 2.5]]).rows() == [{"time": 1, "x": 2.5}]


# -- line protocol ------------------------------------------------------------------------------


def test_live_line_carries_the_event_and_next_funding_times() -> None:
    candle = schema.Candle(MONDAY, 1.0, 2.0, 0.5, 1.5, 10.0, 15.0, 7, 4.0, 6.0)
    line = schema.live_line("BTC/USDT:USDT", "1m", schema.LIVE_TRADE, candle, MONDAY + 30_000)
    assert line == ("live_candle,exchange=binance,pair=BTC/USDT:USDT,price=trade,timeframe=1m "
                    "close=1.5,high=2,low=0.5,open=1,quote_volume=15,taker_buy_quote_volume=6,taker_buy_volume=4,"
                    f"trades=7i,volume=10,event_time={MONDAY + 30_000}i {MONDAY}")
    mark = schema.live_line("BTC/USDT:USDT", "1h", schema.LIVE_MARK, candle, MONDAY + 1, next_funding_ms=MONDAY + H)
    assert "volume" not in mark and mark.endswith(f",event_time={MONDAY + 1}i,next_funding_time={MONDAY + H}i {MONDAY}")


def test_funding_line() -> None:
    line = schema.funding_line("BTC/USDT:USDT", schema.FundingRate(MONDAY, 0.0001, 42000.5))
    assert line == f"funding_rate,exchange=binance,pair=BTC/USDT:USDT mark_price=42000.5,rate=0.0001 {MONDAY}"
    assert "mark_price" not in schema.funding_line("X", schema.FundingRate(MONDAY, -0.0001))


def test_densities_and_retention() -> None:
    assert schema.density_ms("ohlcv_15m") == 15 * M and schema.density_ms("mark_price") == H
    assert schema.density_ms("funding_rate") == H and schema.density_ms("live_candle") == 0
    assert schema.retention_floor(MONDAY, 360) == MONDAY - 360 * 86_400_000
