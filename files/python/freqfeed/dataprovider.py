"""Library API for strategies and FreqAI feature code: funding rates and mark prices from InfluxDB.

    from freqfeed.dataprovider import MarketDataProvider
    market = MarketDataProvider.from_config("/etc/freqfeed/sync.yml")

    def populate_indicators(self, dataframe, metadata):
        dataframe = market.merge_into(dataframe, metadata["pair"])   # + funding_rate, mark_close
        ...

Answers come from a small per-pair cache: within `ttl` seconds a call costs no query; after it, only
rows newer than the cached ones are fetched. So calling it for every pair on every candle is cheap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from freqfeed import config as config_module
from freqfeed.config import Config, InfluxDBConfig
from freqfeed.influx import InfluxDB
from freqfeed.reader import Reader
from freqfeed.schema import FUNDING_FIELDS, FUNDING_MEASUREMENT, MARK_FIELDS, MARK_MEASUREMENT, use_exchange


@dataclass
class _Entry:
    frame: pd.DataFrame
    fetched: float  # time.monotonic() of the last query


class MarketDataProvider:
    def __init__(self, influxdb: InfluxDBConfig | InfluxDB, *, ttl: float = 60.0, window: int = 1500,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`ttl`: seconds an answer is reused; `window`: rows kept per pair and kind."""
        self.reader = Reader(influxdb)
        self.ttl = ttl
        self.window = window
        self.queries = 0
        self._clock = clock
        self._cache: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, path: str | Path | Config, *, ttl: float = 60.0, window: int = 1500) -> MarketDataProvider:
        cfg = path if isinstance(path, Config) else config_module.load(path)
        use_exchange(cfg.exchange.name)  # this exchange's series (exchange tag)
        return cls(cfg.influxdb, ttl=ttl, window=window)

    def funding_rates(self, pair: str) -> pd.DataFrame:
        """Settled funding rates, oldest first: date (funding time, UTC), funding_rate."""
        return self._get(FUNDING_MEASUREMENT, pair).copy()

    def mark_prices(self, pair: str) -> pd.DataFrame:
        """1h mark-price candles, oldest first: date (candle open, UTC), open, high, low, close."""
        return self._get(MARK_MEASUREMENT, pair).copy()

    def latest_funding_rate(self, pair: str) -> float | None:
        rates = self._get(FUNDING_MEASUREMENT, pair)
        return None if rates.empty else float(rates["funding_rate"].iloc[-1])

    def merge_into(self, dataframe: pd.DataFrame, pair: str) -> pd.DataFrame:
        """`dataframe` (freqtrade candles with a `date` column) plus two columns:
        `funding_rate`, the last funding rate settled at or before each candle's open, and
        `mark_close`, the close of the last 1h mark candle that had closed by the candle's open.
        No value from the future leaks into a candle."""
        left = dataframe.sort_values("date")
        dates = left["date"].dt.as_unit("ns")
        rates = self._get(FUNDING_MEASUREMENT, pair)[["date", "funding_rate"]]
        marks = self._get(MARK_MEASUREMENT, pair)[["date", "close"]].rename(columns={"close": "mark_close"})
        marks = marks.assign(date=marks["date"] + pd.Timedelta(hours=1))  # known once the 1h candle closed
        keyed = left.assign(date=dates)
        merged = pd.merge_asof(keyed, rates, on="date", direction="backward")
        merged = pd.merge_asof(merged, marks, on="date", direction="backward")
        merged["date"] = left["date"].to_numpy()
        return merged.set_index(left.index).reindex(dataframe.index)

    def _get(self, measurement: str, pair: str) -> pd.DataFrame:
        key = (measurement, pair)
        with self._lock:
            entry = self._cache.get(key)
            now = self._clock()
            if entry is not None and now - entry.fetched < self.ttl:
                return entry.frame
            fields = FUNDING_FIELDS if measurement == FUNDING_MEASUREMENT else MARK_FIELDS
            columns = ["date", "funding_rate"] if measurement == FUNDING_MEASUREMENT else ["date", *MARK_FIELDS]
            after = None
            if entry is not None and not entry.frame.empty:
                after = int(entry.frame["date"].iloc[-1].value // 1_000_000)
            newer = self.reader.series(measurement, fields, columns, pair, after_ms=after,
                                       limit=None if after is not None else self.window)
            self.queries += 1
            if entry is None or entry.frame.empty:
                frame = newer
            elif newer.empty:
                frame = entry.frame
            else:
                frame = pd.concat([entry.frame, newer], ignore_index=True).tail(self.window).reset_index(drop=True)
            self._cache[key] = _Entry(frame, now)
            return frame

    def close(self) -> None:
        self.reader.close()

