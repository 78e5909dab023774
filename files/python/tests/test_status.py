"""`freqfeed status` on a feeder and on the producer, against a real influxd."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from freqfeed import feather, status, sync
from freqfeed.config import InfluxDBConfig
from freqfeed.influx import InfluxDB
from freqfeed.timeframes import last_closed_open

from .conftest import InfluxServer, make_config
from .helpers import truth, write_candles

pytestmark = pytest.mark.integration

PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]


def now_ms() -> int:
    return int(time.time() * 1000)


def seed(client: InfluxDB, count: int = 50) -> None:
    for pair in PAIRS:
        for tf in ("3m", "1h"):
            write_candles(client, pair, tf, truth(pair, tf, last_closed_open(now_ms(), tf), count))


def test_healthy_feeder(client: InfluxDB, influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    cfg = make_config(influx_config, tmp_path, pairs=["BTC/USDT", "ETH/USDT"], timeframes=["3m", "1h"],
                      trading_mode="spot")
    for pair in ("BTC/USDT", "ETH/USDT"):
        for tf in ("3m", "1h"):
            write_candles(client, pair, tf, truth(pair + ":USDT", tf, last_closed_open(now_ms(), tf), 50))
    assert sync.run(cfg).ok
    result = status.collect(cfg)
    assert result.role == "feeder"
    assert result.healthy, result.problems
    assert result.files == 4
    assert result.last_run.endswith("ago, ok")
    assert set(result.lag_seconds) == {"3m", "1h"}
    assert "feeder" in status.render("host120", result)


def test_feeder_problems_are_named(client: InfluxDB, influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    cfg = make_config(influx_config, tmp_path, pairs=["BTC/USDT"], timeframes=["1h"], trading_mode="spot")
    result = status.collect(cfg)
    assert not result.healthy
    assert any("no sync has run yet" in p for p in result.problems)
    assert any("1 of 1 feather files missing" in p for p in result.problems)

    candles = truth("BTC/USDT:USDT", "1h", last_closed_open(now_ms(), "1h") - 10 * 3_600_000, 40)
    write_candles(client, "BTC/USDT", "1h", candles[:20] + candles[25:])
    assert sync.run(cfg).ok
    result = status.collect(cfg)
    assert result.gaps == {"BTC_USDT-1h.feather": 5}
    assert any("newest 1h candle is" in p for p in result.problems), "ten hours old"
    assert any("holes in 1 files (5 candles)" in p for p in result.problems)


def test_feeder_is_stale_once_a_candle_is_missing(client: InfluxDB, influx_config: InfluxDBConfig,
                                                 tmp_path: Path) -> None:
    cfg = make_config(influx_config, tmp_path, pairs=["BTC/USDT"], timeframes=["3m"], trading_mode="spot")
    newest = last_closed_open(now_ms(), "3m")
    write_candles(client, "BTC/USDT", "3m", truth("BTC/USDT:USDT", "3m", newest, 30))
    assert sync.run(cfg).ok
    # Just before the next sync the newest file candle closed up to one period + one sync interval ago.
    assert status.collect(cfg, now_ms=newest + 2 * 180_000 + 170_000).healthy
    late = status.collect(cfg, now_ms=newest + 3 * 180_000 + 120_000)
    assert "newest 3m candle is 8m old" in late.problems


def test_failed_last_sync_is_unhealthy(influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    cfg = make_config(influx_config, tmp_path, pairs=["BTC/USDT"], timeframes=["1h"], trading_mode="spot",
                      influxdb={"database": "absent"})
    assert not sync.run(cfg).ok
    result = status.collect(cfg)
    assert result.last_run.endswith("FAILED")
    assert any(p.startswith("last sync failed: ") for p in result.problems)


def test_producer_reports_influxdb_gaps_and_health(client: InfluxDB, influx_config: InfluxDBConfig,
                                                   influx_server: InfluxServer, tmp_path: Path) -> None:
    seed(client)
    health = tmp_path / "health.json"
    cfg = make_config(influx_config, tmp_path, pairs=PAIRS, timeframes=["3m", "1h"], sync={"datadir": None},
                      backfill={"candles": 50}, producer={"health_file": str(health)})
    health.write_text(json.dumps({"updated": now_ms(), "series": {}, "writer": {"failing_since_s": None}}))
    result = status.collect(cfg)
    assert result.role == "producer"
    assert result.healthy, result.problems
    newest = last_closed_open(now_ms(), "3m")
    influx_server.raw(f"DELETE FROM ohlcv_3m WHERE pair = 'BTC/USDT:USDT' AND time < {newest - 300_000}ms "
                      f"AND time > {newest - 1_000_000}ms", influx_config.database)  # a hole, made in storage
    health.write_text(json.dumps({"updated": now_ms(), "series": {"BTC/USDT:USDT 3m": {"silent": True}},
                                  "writer": {"failing_since_s": 12.0, "last_error": "InfluxDB is not reachable"}}))
    result = status.collect(cfg)
    assert not result.healthy
    assert result.gaps.get("BTC/USDT:USDT 3m", 0) > 0
    assert any("silent streams" in p for p in result.problems)
    assert any("InfluxDB writes failing" in p for p in result.problems)


def test_quarantined_or_unreadable_file_is_reported(client: InfluxDB, influx_config: InfluxDBConfig,
                                                    tmp_path: Path) -> None:
    cfg = make_config(influx_config, tmp_path, pairs=["BTC/USDT"], timeframes=["1h"], trading_mode="spot")
    write_candles(client, "BTC/USDT", "1h", truth("BTC/USDT:USDT", "1h", last_closed_open(now_ms(), "1h"), 5))
    assert sync.run(cfg).ok
    assert cfg.sync.datadir is not None
    feather.data_path(cfg.sync.datadir, "BTC/USDT", "1h", "spot").write_bytes(b"junk")
    result = status.collect(cfg)
    assert any("unreadable file BTC_USDT-1h.feather" in p for p in result.problems)
