"""Fault tests for `freqfeed sync`, run as the real command in a subprocess.

- SIGKILL at random points of many runs never leaves a truncated or unreadable file;
- InfluxDB stopped mid-run: clear error, non-zero exit, files not yet synced stay untouched;
- disk full: clear error, non-zero exit, old files untouched, no temp file left.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from freqfeed import feather
from freqfeed.config import InfluxDBConfig
from freqfeed.influx import InfluxDB
from freqfeed.localinflux import LocalInfluxDB
from freqfeed.timeframes import last_closed_open, timeframe_ms

from .conftest import InfluxServer
from .helpers import influx_section, truth, write_candles

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIMEFRAMES = ("3m", "15m", "1h")


def write_config(path: Path, influx: InfluxDBConfig, pairs: list[str], datadir: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "influxdb": influx_section(influx),
        "pairs": pairs, "timeframes": list(TIMEFRAMES), "trading_mode": "spot",
        "sync": {"datadir": str(datadir)},
    }))
    return path


def sync_command(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "freqfeed", *extra, "sync", "--config", str(config)]


class Series:
    """Candles of a few spot pairs, growing one candle per series at a time."""

    def __init__(self, client: InfluxDB, pairs: list[str], count: int) -> None:
        self.client = client
        self.pairs = pairs
        self.now = int(time.time() * 1000) // 3_600_000 * 3_600_000 - 30 * 3_600_000
        self.last = {tf: last_closed_open(self.now, tf) for tf in TIMEFRAMES}
        self.count = count
        for tf in TIMEFRAMES:
            for pair in pairs:
                write_candles(client, pair, tf, truth(pair + ":USDT", tf, self.last[tf], count))

    def grow(self) -> None:
        for tf in TIMEFRAMES:
            self.last[tf] += timeframe_ms(tf)
            for pair in self.pairs:
                write_candles(self.client, pair, tf, truth(pair + ":USDT", tf, self.last[tf], 1))

    def expected(self, pair: str, tf: str) -> list:
        return truth(pair + ":USDT", tf, self.last[tf], self.count)


def assert_all_files_whole(datadir: Path) -> int:
    """Every file freqtrade would list reads completely and has freqtrade's shape."""
    files = sorted(datadir.rglob("*.feather"))
    for path in files:
        if feather.QUARANTINE_DIR in path.parts:
            continue
        table = feather.read_table(path, "spot")  # raises ForeignFileError on a torn file
        assert table is not None and table.num_rows > 0, path
    return len(files)


def last_open(path: Path) -> int | None:
    return feather.last_time_ms(feather.read_table(path, "spot"))


@pytest.fixture
def own_server(tmp_path: Path, influx_server: InfluxServer) -> Iterator[InfluxServer]:
    """An influxd of the test's own (it gets killed), behind the test's dialect."""
    server = LocalInfluxDB(tmp_path / "influxd")
    server.start()
    own = InfluxServer.in_front_of(server, influx_server.name)
    yield own
    own.close()
    server.cleanup()


@pytest.mark.dialects("1.x")  # torn files are the sync's own business, whatever the server
def test_sigkill_at_random_points_never_leaves_a_torn_file(influx_config: InfluxDBConfig, client: InfluxDB,
                                                           tmp_path: Path) -> None:
    pairs = [f"{name}/USDT" for name in ("BTC", "ETH", "BNB", "SOL", "XRP", "DOGE", "ADA", "AVAX", "LINK", "DOT")]
    series = Series(client, pairs, 1500)
    datadir = tmp_path / "binance"
    config = write_config(tmp_path / "sync.yml", influx_config, pairs, datadir)
    subprocess.run(sync_command(config), check=True, capture_output=True)
    series.grow()
    started = time.monotonic()
    subprocess.run(sync_command(config), check=True, capture_output=True)
    incremental_run = time.monotonic() - started

    rng = random.Random(1234)
    killed = killed_while_writing = 0
    runs = 40
    for run in range(runs):
        series.grow()
        if run % 2:
            # anywhere in the run, start-up included
            process = subprocess.Popen(sync_command(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.05, incremental_run))
        else:
            # inside the write phase: files are being replaced right after the first query
            process = subprocess.Popen(sync_command(config, "--log-level", "DEBUG"), stderr=subprocess.PIPE,
                                       stdout=subprocess.DEVNULL, text=True)
            assert process.stderr is not None
            for line in process.stderr:
                if "series queried" in line:
                    break
            time.sleep(rng.uniform(0, 0.04))
        process.send_signal(signal.SIGKILL)
        if process.wait() == -signal.SIGKILL:
            killed += 1
        assert assert_all_files_whole(datadir) == len(pairs) * len(TIMEFRAMES)
        updated = sum(last_open(feather.data_path(datadir, pair, tf, "spot")) == series.last[tf]
                      for pair in pairs for tf in TIMEFRAMES)
        if 0 < updated < len(pairs) * len(TIMEFRAMES):
            killed_while_writing += 1  # the kill hit the write phase: some files replaced, others not yet
    print(f"\nSIGKILL: {killed} of {runs} runs killed, {killed_while_writing} in the write phase; all files whole")
    assert killed >= runs // 2, f"only {killed} of {runs} runs were killed before they finished"
    assert killed_while_writing >= 5, f"only {killed_while_writing} kills hit the write phase"

    result = subprocess.run(sync_command(config), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert not list(datadir.rglob(f"*{feather.TEMP_SUFFIX}")), "a later run removes stale temp files"
    for pair in pairs:
        for tf in TIMEFRAMES:
            table = feather.read_table(feather.data_path(datadir, pair, tf, "spot"), "spot")
            assert table is not None
            assert table.column("close").to_pylist() == [c.close for c in series.expected(pair, tf)]


def test_influxdb_stopped_mid_run(own_server: InfluxServer, tmp_path: Path) -> None:
    pairs = [f"SIM{i:03d}/USDT" for i in range(1, 31)]
    own_server.create_database("m")
    config_ix = own_server.config("m")
    own_influxd = own_server.influxd
    with InfluxDB(config_ix) as c:
        series = Series(c, pairs, 1500)
    datadir = tmp_path / "binance"
    config = write_config(tmp_path / "sync.yml", config_ix, pairs, datadir)
    subprocess.run(sync_command(config), check=True, capture_output=True)
    with InfluxDB(config_ix) as c:
        series.client = c
        series.grow()
    before = {p: p.read_bytes() for p in datadir.glob("*.feather")}

    process = subprocess.Popen(sync_command(config, "--log-level", "DEBUG"), stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    log_lines = []
    for line in process.stderr:
        log_lines.append(line)
        if "ohlcv_3m: 30 series queried" in line:
            assert own_influxd.process is not None
            own_influxd.process.kill()  # InfluxDB dies between the first and the second measurement
            break
    log_lines.extend(process.stderr)
    assert process.wait(timeout=60) == 1
    log = "".join(log_lines)
    assert "InfluxDB is not reachable at" in log
    assert "sync FAILED" in log
    for pair in pairs:
        for tf in ("15m", "1h"):
            path = feather.data_path(datadir, pair, tf, "spot")
            assert path.read_bytes() == before[path], f"{path.name} changed although InfluxDB was down"
        updated = feather.read_table(feather.data_path(datadir, pair, "3m", "spot"), "spot")
        assert updated is not None
        assert updated.column("close").to_pylist() == [c.close for c in series.expected(pair, "3m")]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.dialects("1.x")  # a full disk is the sync's own business, whatever the server
def test_disk_full_fails_clearly_and_keeps_old_files(influx_config: InfluxDBConfig, client: InfluxDB,
                                                     small_disk: Path, tmp_path: Path) -> None:
    pairs = ["BTC/USDT", "ETH/USDT"]
    series = Series(client, pairs, 1500)
    datadir = small_disk / "binance"
    config = write_config(tmp_path / "sync.yml", influx_config, pairs, datadir)
    subprocess.run(sync_command(config), check=True, capture_output=True)
    before = {p: p.read_bytes() for p in datadir.glob("*.feather")}
    assert len(before) == 6

    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "ballast").write_bytes(b"\0" * (free - 8192))
    series.grow()
    result = subprocess.run(sync_command(config), capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "No space left on device" in result.stderr
    assert "file left as it was" in result.stderr
    assert {p: p.read_bytes() for p in datadir.glob("*.feather")} == before
    assert not list(datadir.glob(f".*{feather.TEMP_SUFFIX}"))

    (small_disk / "ballast").unlink()
    result = subprocess.run(sync_command(config), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    table = feather.read_table(feather.data_path(datadir, "BTC/USDT", "3m", "spot"), "spot")
    assert table is not None
    assert table.column("close").to_pylist() == [c.close for c in series.expected("BTC/USDT", "3m")]
