"""Library API: candles from InfluxDB as pandas DataFrames in freqtrade's column layout.

    from freqfeed.reader import Reader
    reader = Reader.from_config("/etc/freqfeed/sync.yml")
    frame = reader.ohlcv("BTC/USDT:USDT", "1h", since="2026-11-01", limit=500)
    # columns: date (datetime64[ns, UTC], candle open), open, high, low, close, volume (float64)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from freqfeed import config as config_module
from freqfeed.config import Config, InfluxDBConfig
from freqfeed.influx import InfluxDB
from freqfeed.schema import (
    FUNDING_FIELDS,
    FUNDING_MEASUREMENT,
    FUTURE_MARGIN_MS,
    MARK_FIELDS,
    MARK_MEASUREMENT,
    OHLCV_FIELDS,
    ohlcv_measurement,
    retention_floor,
    series_select,
    use_exchange,
)
from freqfeed.timeframes import BINANCE_TIMEFRAMES

OHLCV_COLUMNS = ["date", "open", "high", "low", "close", "volume"]

Since = datetime | pd.Timestamp | str | int | None


def to_epoch_ms(since: Since) -> int | None:
    """A datetime, pandas Timestamp, ISO string or epoch-ms int as epoch ms (naive times are UTC)."""
    if since is None:
        return None
    if isinstance(since, int):
        return since
    stamp = pd.Timestamp(since)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value) // 1_000_000  # .value is nanoseconds whatever the unit


def frame_from_rows(rows: Sequence[Sequence[object]], columns: Sequence[str]) -> pd.DataFrame:
    """InfluxDB rows ([time_ms, v1, v2, ...], any order) as a date-sorted frame with ns UTC dates."""
    frame = pd.DataFrame(list(rows), columns=list(columns))
    frame = frame.astype({c: "float64" for c in columns[1:]})
    frame["date"] = pd.to_datetime(frame["date"].astype("int64"), unit="ms", utc=True).dt.as_unit("ns")
    return frame.sort_values("date", ignore_index=True)


class Reader:
    def __init__(self, influxdb: InfluxDBConfig | InfluxDB) -> None:
        self.client = influxdb if isinstance(influxdb, InfluxDB) else InfluxDB(influxdb)

    @classmethod
    def from_config(cls, path: str | Path | Config) -> Reader:
        cfg = path if isinstance(path, Config) else config_module.load(path)
        use_exchange(cfg.exchange.name)  # this exchange's series (exchange tag)
        return cls(cfg.influxdb)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ohlcv(self, pair: str, timeframe: str, since: Since = None, limit: int | None = None) -> pd.DataFrame:
        """Closed candles of one pair and timeframe, oldest first.

        `since` (inclusive) bounds the start; `limit` keeps the newest `limit` candles.
        """
        if timeframe not in BINANCE_TIMEFRAMES:
            raise ValueError(f"timeframe {timeframe!r}: expected one of {', '.join(BINANCE_TIMEFRAMES)}")
        return self.series(ohlcv_measurement(timeframe), OHLCV_FIELDS, OHLCV_COLUMNS, pair, since, limit)

    def mark_candles(self, pair: str, since: Since = None, limit: int | None = None) -> pd.DataFrame:
        """1h mark-price candles: date, open, high, low, close."""
        return self.series(MARK_MEASUREMENT, MARK_FIELDS, ["date", *MARK_FIELDS], pair, since, limit)

    def funding_rates(self, pair: str, since: Since = None, limit: int | None = None) -> pd.DataFrame:
        """Settled funding rates: date (funding time), funding_rate."""
        return self.series(FUNDING_MEASUREMENT, FUNDING_FIELDS, ["date", "funding_rate"], pair, since, limit)

    def series(self, measurement: str, fields: Sequence[str], columns: Sequence[str], pair: str,
               since: Since = None, limit: int | None = None, after_ms: int | None = None) -> pd.DataFrame:
        if limit is not None and limit <= 0:
            raise ValueError(f"limit: expected a positive number of candles, got {limit}")
        now = int(time.time() * 1000)
        lower = retention_floor(now, self.client.config.retention_days)
        since_ms = to_epoch_ms(since)
        if since_ms is not None:
            lower = max(lower, since_ms)
        if after_ms is not None:
            lower = max(lower, after_ms + 1)
        upper = max(now + FUTURE_MARGIN_MS, lower)
        [answer] = self.client.select([series_select(measurement, fields, pair, lower, upper, newest=limit)])
        rows = answer[0].values if answer else []
        return frame_from_rows(rows, columns)


def read_ohlcv(config: str | Path | Config, pair: str, timeframe: str, since: Since = None,
               limit: int | None = None) -> pd.DataFrame:
    """One-shot convenience: Reader.from_config(config).ohlcv(...)."""
    with Reader.from_config(config) as reader:
        return reader.ohlcv(pair, timeframe, since=since, limit=limit)
