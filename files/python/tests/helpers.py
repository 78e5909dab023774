"""Test data: the simulator's deterministic market, written to InfluxDB through the shared schema."""

from __future__ import annotations

import numpy as np

from freqfeed.config import InfluxDBConfig, exchange_symbol
from freqfeed.exchanges.binance.wire import format_ticks
from freqfeed.influx import InfluxDB
from freqfeed.schema import (
    MARK_MEASUREMENT,
    Candle,
    FundingRate,
    candle_line,
    funding_line,
    ohlcv_measurement,
)
from freqfeed.simulator.market import Candles, Market
from freqfeed.timeframes import timeframe_ms

MARKET = Market(seed=7)


def influx_section(influx: InfluxDBConfig) -> dict[str, object]:
    """The `influxdb:` section of a freqfeed config file for a test's server (with its token, if any)."""
    return {"url": influx.url, "database": influx.database, "timeout": 5,
            **({"token": influx.token} if influx.token else {})}


def candles_as_floats(candles: Candles, symbol: str) -> list[Candle]:
    """Candles as the producer stores them: the exchange's decimal strings parsed as floats."""
    inst = MARKET.instrument(symbol)

    def floats(values: np.ndarray, decimals: int) -> list[float]:
        return [float(s) for s in format_ticks(values, decimals)]

    columns = [floats(getattr(candles, name), inst.price_decimals) for name in ("open", "high", "low", "close")]
    volume = floats(candles.volume, inst.quantity_decimals)
    return [Candle(int(t), o, h, low, c, v)
            for t, o, h, low, c, v in zip(candles.open_time, *columns, volume, strict=True)]


def truth(pair: str, timeframe: str, last_open: int, count: int, *, mark: bool = False) -> list[Candle]:
    first = last_open - (count - 1) * timeframe_ms(timeframe)
    symbol = exchange_symbol(pair)
    return candles_as_floats(MARKET.candles(symbol, timeframe, first, count, mark=mark), symbol)


def write_candles(client: InfluxDB, pair: str, timeframe: str, candles: list[Candle], *, mark: bool = False) -> None:
    measurement = MARK_MEASUREMENT if mark else ohlcv_measurement(timeframe)
    client.write(candle_line(measurement, pair, c) for c in candles)


def funding_truth(pair: str, start_ms: int, end_ms: int) -> list[FundingRate]:
    times = MARKET.funding_times(start_ms, end_ms)
    rates = MARKET.funding_rates(exchange_symbol(pair), times)
    return [FundingRate(int(t), float(r) / 1e8) for t, r in zip(times, rates, strict=True)]


def write_funding(client: InfluxDB, pair: str, rates: list[FundingRate]) -> None:
    client.write(funding_line(pair, f) for f in rates)
