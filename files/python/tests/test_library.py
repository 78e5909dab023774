"""freqfeed.reader and freqfeed.dataprovider against a real influxd."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from freqfeed.config import InfluxDBConfig
from freqfeed.dataprovider import MarketDataProvider
from freqfeed.influx import InfluxDB
from freqfeed.reader import Reader, read_ohlcv
from freqfeed.timeframes import last_closed_open

from .helpers import funding_truth, influx_section, truth, write_candles, write_funding

pytestmark = pytest.mark.integration

NOW = 1_795_572_000_000 + 7 * 60_000
PAIR = "BTC/USDT:USDT"


def test_reader_returns_freqtrade_layout(client: InfluxDB, influx_config: InfluxDBConfig) -> None:
    candles = truth(PAIR, "15m", last_closed_open(NOW, "15m"), 100)
    write_candles(client, PAIR, "15m", candles)
    with Reader(influx_config) as reader:
        frame = reader.ohlcv(PAIR, "15m")
        assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume"]
        assert str(frame["date"].dtype) == "datetime64[ns, UTC]"
        assert all(str(frame[c].dtype) == "float64" for c in frame.columns[1:])
        assert frame["close"].tolist() == [c.close for c in candles]
        assert (frame["date"].astype("int64") // 1_000_000).tolist() == [c.open_time for c in candles]

        newest = reader.ohlcv(PAIR, "15m", limit=10)
        assert newest["close"].tolist() == [c.close for c in candles[-10:]]
        since = pd.Timestamp(candles[90].open_time, unit="ms", tz="UTC")
        assert len(reader.ohlcv(PAIR, "15m", since=since)) == 10
        assert len(reader.ohlcv(PAIR, "15m", since=since.tz_localize(None).isoformat())) == 10
        assert reader.ohlcv("ETH/USDT:USDT", "15m").empty
        with pytest.raises(ValueError, match="timeframe '7m'"):
            reader.ohlcv(PAIR, "7m")
        with pytest.raises(ValueError, match="limit: expected a positive number"):
            reader.ohlcv(PAIR, "15m", limit=0)


def test_read_ohlcv_from_a_config_file(client: InfluxDB, influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    write_candles(client, PAIR, "1h", truth(PAIR, "1h", last_closed_open(NOW, "1h"), 5))
    path = tmp_path / "sync.yml"
    path.write_text(yaml.safe_dump({"influxdb": influx_section(influx_config), "pairs": [PAIR]}))
    assert len(read_ohlcv(path, PAIR, "1h")) == 5


def test_dataprovider_caches_and_fetches_only_newer_rows(client: InfluxDB, influx_config: InfluxDBConfig) -> None:
    rates = funding_truth(PAIR, NOW - 10 * 86_400_000, NOW)
    write_funding(client, PAIR, rates[:-1])
    clock = {"t": 0.0}
    market = MarketDataProvider(influx_config, ttl=60, clock=lambda: clock["t"])
    first = market.funding_rates(PAIR)
    assert first["funding_rate"].tolist() == [f.rate for f in rates[:-1]]
    for _ in range(100):
        market.funding_rates(PAIR)
    assert market.queries == 1, "within the ttl every call is answered from the cache"

    write_funding(client, PAIR, rates[-1:])
    clock["t"] = 61
    assert market.funding_rates(PAIR)["funding_rate"].tolist() == [f.rate for f in rates]
    assert market.queries == 2
    assert market.latest_funding_rate(PAIR) == rates[-1].rate


def test_merge_into_adds_funding_and_mark_without_lookahead(client: InfluxDB,
                                                             influx_config: InfluxDBConfig) -> None:
    rates = funding_truth(PAIR, NOW - 3 * 86_400_000, NOW)
    write_funding(client, PAIR, rates)
    marks = truth(PAIR, "1h", last_closed_open(NOW, "1h"), 72, mark=True)
    write_candles(client, PAIR, "1h", marks, mark=True)
    candles = truth(PAIR, "15m", last_closed_open(NOW, "15m"), 96)
    frame = pd.DataFrame({"date": pd.to_datetime([c.open_time for c in candles], unit="ms", utc=True),
                          "close": [c.close for c in candles]})
    merged = MarketDataProvider(influx_config).merge_into(frame, PAIR)
    assert list(merged.columns) == ["date", "close", "funding_rate", "mark_close"]
    assert len(merged) == len(frame)
    for row in merged.itertuples():
        open_ms = int(row.date.value // 1_000_000)
        settled = [f.rate for f in rates if f.time <= open_ms]
        assert (row.funding_rate == settled[-1]) if settled else pd.isna(row.funding_rate)
        closed = [m.close for m in marks if m.open_time + 3_600_000 <= open_ms]
        assert (row.mark_close == closed[-1]) if closed else pd.isna(row.mark_close)
