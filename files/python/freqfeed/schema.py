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


def quote_literal(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(value: str) -> str:
    """An InfluxQL identifier (measurement, field or tag name)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def select_series(
    measurement: str,
    fields: Sequence[str],
    pair: str,
    *,
    after_ms: int | None = None,
    since_ms: int | None = None,
    limit: int | None = None,
) -> str:
    """InfluxQL for one series, newest first when limited (callers reverse), oldest first otherwise.

    `after_ms` is exclusive, `since_ms` inclusive.
    """
    columns = ", ".join(quote_identifier(f) for f in fields)
    where = [f"exchange = {quote_literal(EXCHANGE)}", f"pair = {quote_literal(pair)}"]
    if after_ms is not None:
        where.append(f"time > {int(after_ms)}ms")
    if since_ms is not None:
        where.append(f"time >= {int(since_ms)}ms")
    query = f"SELECT {columns} FROM {quote_identifier(measurement)} WHERE {' AND '.join(where)}"
    if limit:
        query += f" ORDER BY time DESC LIMIT {int(limit)}"
    return query


def last_times_query(measurement: str, since_ms: int) -> str:
    """Newest point time per pair, for every pair of one measurement (one grouped query)."""
    field = "rate" if measurement == FUNDING_MEASUREMENT else "close"
    return (
        f"SELECT last({quote_identifier(field)}) FROM {quote_identifier(measurement)} "
        f"WHERE exchange = {quote_literal(EXCHANGE)} AND time >= {int(since_ms)}ms GROUP BY pair"
    )


def counts_query(measurement: str, since_ms: int) -> str:
    """Number of points per pair since `since_ms` (one grouped query)."""
    field = "rate" if measurement == FUNDING_MEASUREMENT else "close"
    return (
        f"SELECT count({quote_identifier(field)}) FROM {quote_identifier(measurement)} "
        f"WHERE exchange = {quote_literal(EXCHANGE)} AND time >= {int(since_ms)}ms GROUP BY pair"
    )
