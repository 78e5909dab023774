"""The InfluxDB schema shared by the producer (writes) and the sync, reader and data provider (reads).

    ohlcv_<timeframe>  tags exchange, pair   fields open, high, low, close, volume (float)
    mark_price         tags exchange, pair   fields open, high, low, close (float), 1h candles
    funding_rate       tags exchange, pair   field  rate (float), one point per settled funding time

Time is the candle open time (funding: the funding time). Only closed candles are stored, so a
point is written once per candle and rewriting it (backfill after a reconnect) is idempotent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from freqfeed.influxql import Select, quote_identifier, quote_literal
from freqfeed.timeframes import timeframe_ms

__all__ = ["Select", "quote_identifier", "quote_literal"]  # re-exported: the schema's queries are Selects

EXCHANGE = "binance"
OHLCV_FIELDS = ("open", "high", "low", "close", "volume")
MARK_MEASUREMENT = "mark_price"
MARK_FIELDS = ("open", "high", "low", "close")
MARK_TIMEFRAME = "1h"  # freqtrade's mark_ohlcv_timeframe for Binance
FUNDING_MEASUREMENT = "funding_rate"
FUNDING_FIELDS = ("rate",)


def ohlcv_measurement(timeframe: str) -> str:
    return f"ohlcv_{timeframe}"


@dataclass(frozen=True, slots=True)
class Candle:
    open_time: int  # epoch ms
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class FundingRate:
    time: int  # epoch ms of the funding settlement
    rate: float


@lru_cache(maxsize=16_384)
def _series_key(measurement: str, pair: str) -> str:
    """Measurement and tag set of a series, escaped by influxdb_client (which owns the escaping)."""
    from influxdb_client import Point  # only writers need it (slow to import)

    line = str(Point(measurement).tag("exchange", EXCHANGE).tag("pair", pair).field("x", 0.0).to_line_protocol())
    return line[: -len(" x=0")]


def _number(value: float) -> str:
    text = str(value)  # exactly as influxdb_client's Point formats a float field
    return text[:-2] if text.endswith(".0") else text


def candle_line(measurement: str, pair: str, candle: Candle) -> str:
    """One candle as line protocol, identical to influxdb_client's Point output (tested), but with the
    series' escaped measurement and tags computed once: this is the producer's hot path."""
    values = (candle.close, candle.high, candle.low, candle.open)
    with_volume = measurement != MARK_MEASUREMENT
    if not all(map(math.isfinite, values)) or (with_volume and not math.isfinite(candle.volume)):
        return _point_line(measurement, pair, candle)  # Point drops non-finite fields; so do we
    fields = f"close={_number(values[0])},high={_number(values[1])},low={_number(values[2])},open={_number(values[3])}"
    if with_volume:
        fields += f",volume={_number(candle.volume)}"
    return f"{_series_key(measurement, pair)} {fields} {candle.open_time}"


def _point_line(measurement: str, pair: str, candle: Candle) -> str:
    from influxdb_client import Point, WritePrecision

    point = (
        Point(measurement)
        .tag("exchange", EXCHANGE)
        .tag("pair", pair)
        .field("open", candle.open)
        .field("high", candle.high)
        .field("low", candle.low)
        .field("close", candle.close)
        .time(candle.open_time, WritePrecision.MS)
    )
    if measurement != MARK_MEASUREMENT:
        point.field("volume", candle.volume)
    return str(point.to_line_protocol())


def funding_line(pair: str, funding: FundingRate) -> str:
    from influxdb_client import Point, WritePrecision

    point = (
        Point(FUNDING_MEASUREMENT)
        .tag("exchange", EXCHANGE)
        .tag("pair", pair)
        .field("rate", funding.rate)
        .time(funding.time, WritePrecision.MS)
    )
    return str(point.to_line_protocol())


FUTURE_MARGIN_MS = 86_400_000  # reads reach this far past "now" (a clock ahead of this host's, a fast simulator)


def density_ms(measurement: str) -> int:
    """The usual spacing of a measurement's points, a hint for servers that limit one query's scan."""
    if measurement.startswith("ohlcv_"):
        return timeframe_ms(measurement[len("ohlcv_"):])
    if measurement == MARK_MEASUREMENT:
        return timeframe_ms(MARK_TIMEFRAME)
    if measurement == FUNDING_MEASUREMENT:
        return timeframe_ms("1h")  # the shortest funding interval Binance uses
    return 0


def retention_floor(now_ms: int, days: int) -> int:
    """The oldest time a database with a `days` retention can hold."""
    return now_ms - days * 86_400_000


def _pair_tags(pair: str | None) -> tuple[tuple[str, str], ...]:
    return (("exchange", EXCHANGE),) if pair is None else (("exchange", EXCHANGE), ("pair", pair))


def series_select(measurement: str, fields: Sequence[str], pair: str, since_ms: int, until_ms: int, *,
                  newest: int | None = None) -> Select:
    """One series between two times (inclusive); with `newest`, only its newest rows (newest first)."""
    return Select(measurement, tuple(fields), since_ms, until_ms, tags=_pair_tags(pair), newest=newest,
                  density_ms=density_ms(measurement))


def pairs_select(measurement: str, fields: Sequence[str], pairs: Sequence[str], since_ms: int, until_ms: int, *,
                 newest: int | None = None) -> Select:
    """Several series of one measurement between two times, in one statement grouped by pair; with `newest`,
    the newest rows of each."""
    return Select(measurement, tuple(fields), since_ms, until_ms, tags=_pair_tags(None), any_of=("pair", tuple(pairs)),
                  group_by=("pair",), newest=newest, density_ms=density_ms(measurement))


def _value_field(measurement: str) -> str:
    return "rate" if measurement == FUNDING_MEASUREMENT else "close"


def last_times_select(measurement: str, since_ms: int, until_ms: int) -> Select:
    """Newest point per pair, for every pair of one measurement (one grouped query)."""
    return Select(measurement, (_value_field(measurement),), since_ms, until_ms, tags=_pair_tags(None),
                  group_by=("pair",), aggregate="last", density_ms=density_ms(measurement))


def counts_select(measurement: str, since_ms: int, until_ms: int, field: str | None = None) -> Select:
    """Number of points per pair between two times (one grouped query); `field` counts points that have it."""
    return Select(measurement, (field or _value_field(measurement),), since_ms, until_ms, tags=_pair_tags(None),
                  group_by=("pair",), aggregate="count", density_ms=density_ms(measurement))
