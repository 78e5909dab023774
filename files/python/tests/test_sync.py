from __future__ import annotations

import json
import logging
import os
import pwd
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from pyarrow import feather as pa_feather

from freqfeed import feather, sync
from freqfeed.config import ConfigError, InfluxDBConfig
from freqfeed.influx import InfluxDB
from freqfeed.localinflux import LocalInfluxDB
from freqfeed.schema import Candle
from freqfeed.timeframes import last_closed_open, timeframe_ms

from .conftest import make_config
from .helpers import funding_truth, truth, write_candles, write_funding

pytestmark = pytest.mark.integration

NOW = 1_795_572_000_000 + 7 * 60_000  # 2026-11-25 ~00:07 UTC, inside the 360-day retention
PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]


def file_candles(path: Path) -> list[Candle]:
    t = pa_feather.read_table(path)
    dates = t.column("date").cast(pa.int64()).to_numpy() // 1_000_000
    cols = [t.column(c).to_numpy() for c in ("open", "high", "low", "close", "volume")]
    return [Candle(int(d), *(float(c[i]) for c in cols)) for i, d in enumerate(dates)]


def seed_futures(client: InfluxDB, count: int = 200, pairs: list[str] = PAIRS) -> None:
    for pair in pairs:
        for tf in ("3m", "15m", "1h"):
            write_candles(client, pair, tf, truth(pair, tf, last_closed_open(NOW, tf), count))
        write_candles(client, pair, "1h", truth(pair, "1h", last_closed_open(NOW, "1h"), count, mark=True),
                      mark=True)
        write_funding(client, pair, funding_truth(pair, NOW - 30 * 86_400_000, NOW))


def test_first_sync_writes_freqtrade_files_equal_to_influxdb(client: InfluxDB, influx_config: InfluxDBConfig,
                                                             tmp_path: Path) -> None:
    seed_futures(client)
    cfg = make_config(influx_config, tmp_path)
    report = sync.run(cfg, now_ms=NOW)
    assert report.ok, report.errors
    assert report.files_updated == 2 * 3 + 2 + 2
    datadir = cfg.sync.datadir
    assert datadir is not None
    for pair in PAIRS:
        for tf in ("3m", "15m", "1h"):
            path = feather.data_path(datadir, pair, tf, "futures")
            assert file_candles(path) == truth(pair, tf, last_closed_open(NOW, tf), 200)
        mark = file_candles(feather.data_path(datadir, pair, "1h", "mark"))
        expected_mark = truth(pair, "1h", last_closed_open(NOW, "1h"), 200, mark=True)
        assert [(c.open_time, c.open, c.high, c.low, c.close) for c in mark] == \
               [(c.open_time, c.open, c.high, c.low, c.close) for c in expected_mark]
        funding = pa_feather.read_table(feather.data_path(datadir, pair, "1h", "funding_rate"))
        assert funding.column_names == ["date", "funding_rate"]
        expected = funding_truth(pair, NOW - 30 * 86_400_000, NOW)
        assert funding.column("funding_rate").to_pylist() == [f.rate for f in expected]
        assert (funding.column("date").cast(pa.int64()).to_numpy() // 1_000_000).tolist() == \
               [f.time for f in expected]


def test_incremental_sync_adds_only_new_candles_and_leaves_other_files_alone(
        client: InfluxDB, influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    seed_futures(client)
    cfg = make_config(influx_config, tmp_path)
    assert sync.run(cfg, now_ms=NOW).ok
    datadir = cfg.sync.datadir
    assert datadir is not None
    btc_3m = feather.data_path(datadir, "BTC/USDT:USDT", "3m", "futures")
    btc_1h = feather.data_path(datadir, "BTC/USDT:USDT", "1h", "futures")
    untouched = btc_1h.stat()

    later = NOW + timeframe_ms("3m")
    for pair in PAIRS:
        write_candles(client, pair, "3m", truth(pair, "3m", last_closed_open(later, "3m"), 1))
    report = sync.run(cfg, now_ms=later)
    assert report.ok
    assert report.files_updated == 2
    assert report.candles_added == 2
    assert btc_1h.stat().st_mtime_ns == untouched.st_mtime_ns
    candles = file_candles(btc_3m)
    assert len(candles) == 201
    assert candles == truth("BTC/USDT:USDT", "3m", last_closed_open(later, "3m"), 201)

    again = sync.run(cfg, now_ms=later)
    assert again.ok and again.files_updated == 0 and again.candles_added == 0


def test_keeps_the_last_n_candles_or_everything(client: InfluxDB, influx_config: InfluxDBConfig,
                                                tmp_path: Path) -> None:
    pair = "BTC/USDT:USDT"
    write_candles(client, pair, "1h", truth(pair, "1h", last_closed_open(NOW, "1h"), 300))
    cfg = make_config(influx_config, tmp_path, pairs=[pair], timeframes=["1h"], sync={"candles": 120})
    assert sync.run(cfg, now_ms=NOW).ok
    path = feather.data_path(tmp_path / "user_data" / "data" / "binance", pair, "1h", "futures")
    assert file_candles(path) == truth(pair, "1h", last_closed_open(NOW, "1h"), 120)

    everything = make_config(influx_config, tmp_path / "all", pairs=[pair], timeframes=["1h"], sync={"candles": 0})
    assert sync.run(everything, now_ms=NOW).ok
    path = feather.data_path(tmp_path / "all" / "user_data" / "data" / "binance", pair, "1h", "futures")
    assert len(file_candles(path)) == 300


def test_spot_mode_writes_plain_files(client: InfluxDB, influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    pair = "BTC/USDT"
    write_candles(client, pair, "15m", truth("BTC/USDT:USDT", "15m", last_closed_open(NOW, "15m"), 50))
    cfg = make_config(influx_config, tmp_path, pairs=[pair], timeframes=["15m"], trading_mode="spot")
    assert sync.run(cfg, now_ms=NOW).ok
    datadir = tmp_path / "user_data" / "data" / "binance"
    assert sorted(p.name for p in datadir.glob("*.feather")) == ["BTC_USDT-15m.feather"]
    assert not (datadir / "futures").exists()
    assert len(file_candles(datadir / "BTC_USDT-15m.feather")) == 50


def test_hole_in_file_is_filled_from_influxdb(client: InfluxDB, influx_config: InfluxDBConfig,
                                              tmp_path: Path) -> None:
    pair = "BTC/USDT:USDT"
    expected = truth(pair, "15m", last_closed_open(NOW, "15m"), 100)
    write_candles(client, pair, "15m", expected[:40] + expected[60:])
    cfg = make_config(influx_config, tmp_path, pairs=[pair], timeframes=["15m"])
    assert sync.run(cfg, now_ms=NOW).ok
    path = feather.data_path(tmp_path / "user_data" / "data" / "binance", pair, "15m", "futures")
    assert len(file_candles(path)) == 80
    # the producer repairs InfluxDB later; the next sync repairs the file
    write_candles(client, pair, "15m", expected[40:60])
    report = sync.run(cfg, now_ms=NOW)
    assert report.ok and report.candles_added == 20
    assert file_candles(path) == expected


def test_newer_candles_written_by_freqtrade_are_kept(client: InfluxDB, influx_config: InfluxDBConfig,
                                                     tmp_path: Path) -> None:
    """FreqAI rewrites the files itself at start-up; the sync merges rather than assumes."""
    pair = "BTC/USDT:USDT"
    expected = truth(pair, "1h", last_closed_open(NOW, "1h"), 60)
    write_candles(client, pair, "1h", expected[:50])
    cfg = make_config(influx_config, tmp_path, pairs=[pair], timeframes=["1h"])
    path = feather.data_path(tmp_path / "user_data" / "data" / "binance", pair, "1h", "futures")
    times = np.array([c.open_time for c in expected], dtype="int64")
    values = {name: np.array([getattr(c, name) for c in expected]) for name in ("open", "high", "low", "close",
                                                                              "volume")}
    frame = feather.build_table(times, values, "futures").to_pandas()
    path.parent.mkdir(parents=True)
    frame.to_feather(path, compression="lz4", compression_level=9)  # as freqtrade writes it
    report = sync.run(cfg, now_ms=NOW)
    assert report.ok and report.files_updated == 0
    assert file_candles(path) == expected


def test_corrupt_file_is_moved_aside_and_rebuilt(client: InfluxDB, influx_config: InfluxDBConfig, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    pair = "BTC/USDT:USDT"
    write_candles(client, pair, "1h", truth(pair, "1h", last_closed_open(NOW, "1h"), 30))
    cfg = make_config(influx_config, tmp_path, pairs=[pair], timeframes=["1h"])
    datadir = tmp_path / "user_data" / "data" / "binance"
    path = feather.data_path(datadir, pair, "1h", "futures")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"ARROW1\x00\x00 torn by a crash")
    with caplog.at_level(logging.WARNING):
        report = sync.run(cfg, now_ms=NOW)
    assert report.ok
    assert report.quarantined == [str(path)]
    assert "moved it aside to" in caplog.text
    assert len(file_candles(path)) == 30
    quarantined = list((datadir / ".freqfeed-quarantine" / "futures").iterdir())
    assert len(quarantined) == 1 and quarantined[0].read_bytes().startswith(b"ARROW1")


def test_legacy_funding_layout(client: InfluxDB, influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    pair = "BTC/USDT:USDT"
    rates = funding_truth(pair, NOW - 10 * 86_400_000, NOW)
    write_funding(client, pair, rates)
    cfg = make_config(influx_config, tmp_path, pairs=[pair], timeframes=["1h"],
                      sync={"funding_rate_layout": "legacy", "funding_timeframe": "8h"})
    assert sync.run(cfg, now_ms=NOW).ok
    path = tmp_path / "user_data/data/binance/futures/BTC_USDT_USDT-8h-funding_rate.feather"
    table = pa_feather.read_table(path)
    assert table.column_names == ["date", "open", "high", "low", "close", "volume"]
    assert table.column("open").to_pylist() == [f.rate for f in rates]


def test_status_file_and_summary(client: InfluxDB, influx_config: InfluxDBConfig, tmp_path: Path,
                                 caplog: pytest.LogCaptureFixture) -> None:
    seed_futures(client, count=10)
    cfg = make_config(influx_config, tmp_path)
    with caplog.at_level(logging.INFO):
        report = sync.run(cfg, now_ms=NOW)
    assert report.ok
    assert "sync ok: 10 series, 10 files updated" in caplog.text
    assert "newest candle lag 3m=60s 15m=420s 1h=420s" in caplog.text
    status = json.loads((tmp_path / "user_data/data/binance/.freqfeed-sync-status.json").read_text())
    assert status["ok"] is True
    assert status["lag_seconds"] == {"3m": 60.0, "15m": 420.0, "1h": 420.0}


def test_files_get_the_configured_owner(client: InfluxDB, influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    pair = "BTC/USDT:USDT"
    write_candles(client, pair, "1h", truth(pair, "1h", last_closed_open(NOW, "1h"), 5))
    cfg = make_config(influx_config, tmp_path, pairs=[pair], timeframes=["1h"],
                      sync={"owner": "nobody", "group": "nogroup"})
    assert sync.run(cfg, now_ms=NOW).ok
    path = feather.data_path(tmp_path / "user_data" / "data" / "binance", pair, "1h", "futures")
    assert path.stat().st_uid == pwd.getpwnam("nobody").pw_uid


def test_unknown_owner_is_a_config_error(influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    cfg = make_config(influx_config, tmp_path, sync={"owner": "no-such-user-here"})
    with pytest.raises(ConfigError, match=r"sync\.owner: no such user 'no-such-user-here'"):
        sync.run(cfg)


def test_unknown_database_fails_clearly_and_writes_nothing(influx_config: InfluxDBConfig, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_config(influx_config, tmp_path, influxdb={"database": "absent_db"})
    report = sync.run(cfg, now_ms=NOW)
    assert not report.ok
    assert "database not found: absent_db" in report.errors[0]
    assert "create database 'absent_db'" in report.errors[0]
    assert not list((tmp_path / "user_data/data/binance").rglob("*.feather"))


def test_influxdb_down_gives_nonzero_and_untouched_files(tmp_path: Path) -> None:
    with LocalInfluxDB(tmp_path / "influxd") as own:
        cfg = make_config(InfluxDBConfig(url=own.url, database="m"), tmp_path,
                          pairs=["BTC/USDT:USDT"], timeframes=["1h"])
        with InfluxDB(cfg.influxdb) as c:
            c.ensure_database()
            write_candles(c, "BTC/USDT:USDT", "1h", truth("BTC/USDT:USDT", "1h", last_closed_open(NOW, "1h"), 20))
        assert sync.run(cfg, now_ms=NOW).ok
        path = feather.data_path(tmp_path / "user_data/data/binance", "BTC/USDT:USDT", "1h", "futures")
        before = path.read_bytes()
        own.stop()
        report = sync.run(cfg, InfluxDB(cfg.influxdb, retries=1, backoff=0.05), now_ms=NOW)
        assert not report.ok
        assert "InfluxDB is not reachable at" in report.errors[0]
        assert len(report.errors) == report.series
        assert path.read_bytes() == before


def test_file_rewritten_between_runs_is_read_again(client: InfluxDB, influx_config: InfluxDBConfig,
                                                   tmp_path: Path) -> None:
    """The sync remembers unchanged files; a rewrite by FreqAI (new stat) is read and merged."""
    pair = "BTC/USDT:USDT"
    expected = truth(pair, "1h", last_closed_open(NOW, "1h"), 40)
    write_candles(client, pair, "1h", expected[:30])
    cfg = make_config(influx_config, tmp_path, pairs=[pair], timeframes=["1h"])
    assert sync.run(cfg, now_ms=NOW).ok
    path = feather.data_path(tmp_path / "user_data" / "data" / "binance", pair, "1h", "futures")
    # FreqAI downloads five newer candles from the exchange and rewrites the file in place
    times = np.array([c.open_time for c in expected[:35]], dtype="int64")
    values = {n: np.array([getattr(c, n) for c in expected[:35]]) for n in ("open", "high", "low", "close", "volume")}
    feather.build_table(times, values, "futures").to_pandas().to_feather(path, compression="lz4")
    write_candles(client, pair, "1h", expected[30:])
    report = sync.run(cfg, now_ms=NOW)
    assert report.ok
    assert report.candles_added == 5
    assert file_candles(path) == expected
