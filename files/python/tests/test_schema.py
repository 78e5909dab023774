"""The producer's line protocol equals influxdb_client's Point output, byte for byte."""

from __future__ import annotations

import math
import random

import pytest
from influxdb_client import Point, WritePrecision

from freqfeed.schema import MARK_MEASUREMENT, Candle, candle_line, quote_literal, series_select


def reference(measurement: str, pair: str, candle: Candle) -> str:
    point = (Point(measurement).tag("exchange", "binance").tag("pair", pair)
             .field("open", candle.open).field("high", candle.high).field("low", candle.low)
             .field("close", candle.close).time(candle.open_time, WritePrecision.MS))
    if measurement != MARK_MEASUREMENT:
        point.field("volume", candle.volume)
    return str(point.to_line_protocol())


@pytest.mark.parametrize("pair", ["BTC/USDT:USDT", "1000PEPE/USDT", "odd pair,with=chars", "back\\slash"])
@pytest.mark.parametrize("measurement", ["ohlcv_3m", MARK_MEASUREMENT, "odd measurement,name"])
def test_candle_line_matches_influxdb_client(measurement: str, pair: str) -> None:
    rng = random.Random(7)
    values = [0.0, 1.0, 42000.0, 0.00001234, 1e-09, 123456789.123, 3.5e21, -0.5]
    for _ in range(200):
        candle = Candle(rng.randrange(0, 2**41), *(rng.choice(values) * rng.choice([1, 1.1, 3]) for _ in range(5)))
        assert candle_line(measurement, pair, candle) == reference(measurement, pair, candle)


def test_non_finite_values_are_left_out_like_point_does() -> None:
    candle = Candle(1_795_572_000_000, 1.0, math.inf, 0.5, math.nan, 2.0)
    assert candle_line("ohlcv_1h", "BTC/USDT", candle) == reference("ohlcv_1h", "BTC/USDT", candle)


def test_influxql_quoting() -> None:
    assert quote_literal("it's") == "'it\\'s'"
    query = series_select("ohlcv_1h", ("close",), "X'Y", 6, 99, newest=3).render()
    assert query == ("SELECT \"close\" FROM \"ohlcv_1h\" WHERE \"exchange\" = 'binance' AND \"pair\" = 'X\\'Y' "
                     "AND time >= 6ms AND time <= 99ms ORDER BY time DESC LIMIT 3")
