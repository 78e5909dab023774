"""The fleet status table of playbooks/status.yml (its Ansible filter plugin), from real `freqfeed status` output."""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import asdict
from pathlib import Path
from types import ModuleType

import pytest

from freqfeed import status, sync
from freqfeed.config import InfluxDBConfig
from freqfeed.influx import InfluxDB
from freqfeed.timeframes import last_closed_open

from .conftest import make_config
from .helpers import truth, write_candles

PLUGIN = Path(__file__).resolve().parents[3] / "playbooks" / "filter_plugins" / "fleet_status.py"


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fleet_status", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def command_result(report: status.HostStatus, host: str) -> dict[str, object]:
    """What Ansible registers for `freqfeed status --json` on a host."""
    return {"rc": 0 if report.healthy else 1, "stdout": json.dumps({"host": host, **asdict(report)}), "stderr": ""}


@pytest.mark.integration
def test_table_rows_and_problems(plugin: ModuleType, client: InfluxDB, influx_config: InfluxDBConfig,
                                 tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    cfg = make_config(influx_config, tmp_path, pairs=["BTC/USDT"], timeframes=["3m"], trading_mode="spot")
    write_candles(client, "BTC/USDT", "3m", truth("BTC/USDT:USDT", "3m", last_closed_open(now, "3m"), 30))
    assert sync.run(cfg).ok
    healthy = status.collect(cfg)
    broken = status.collect(make_config(influx_config, tmp_path / "other", pairs=["BTC/USDT"],
                                        timeframes=["3m"], trading_mode="spot"))
    hostvars = {
        "host120": {"status_host": command_result(healthy, "host120")},
        "host121": {"status_host": command_result(broken, "host121")},
        "host124": {"status_host": {"unreachable": True, "msg": "Task failed: Failed to create temporary directory. In "
                                   "some cases, you may have been able to authenticate and did not ..."}},
        "host75": {"status_host": {"rc": 2, "stdout": "", "stderr": "freqfeed: configuration file not found"}},
    }
    table = plugin.fleet_status(hostvars, list(hostvars))
    header, *rows = table["lines"]
    assert header.split()[:3] == ["host", "role", "health"]
    assert rows[0].startswith("host120") and " OK " in rows[0] and "3m=" in rows[0]
    assert "UNHEALTHY" in rows[1] and "UNREACHABLE" in rows[2] and "UNHEALTHY" in rows[3]
    problems = table["problems"]
    assert not any(p.startswith("host120:") for p in problems)
    assert "host121: no sync has run yet" in " ".join(problems)
    assert "host124: unreachable: Failed to create temporary directory." in problems
    assert "host75: freqfeed status failed (rc 2): freqfeed: configuration file not found" in problems


def test_columns_line_up(plugin: ModuleType) -> None:
    reply = {"role": "feeder", "healthy": True, "unit": "influxdb-data-sync.timer", "unit_state": "active",
             "last_run": "1m ago, ok", "files": 20, "lag_seconds": {"3m": 40.0, "1h": 1900.0}, "gaps": {},
             "disk_free": "40.1 GB (60%)", "problems": []}
    hostvars = {name: {"status_host": {"rc": 0, "stdout": json.dumps(reply)}} for name in ("host75", "host120")}
    lines = plugin.fleet_status(hostvars, ["host75", "host120"])["lines"]
    starts = {line.index("feeder") for line in lines[1:]}
    assert starts == {lines[0].index("role")}
    assert "3m=40s 1h=32m" in lines[1]


def test_history_column_flags_a_feeder_short_of_the_bots_window(plugin: ModuleType) -> None:
    covered = {"role": "feeder", "healthy": True, "coverage": "covered: 3m 35d, 1h 35d", "problems": []}
    short = {"role": "feeder", "healthy": False,
             "coverage": "2 files short of the bots' history (e.g. BTC_USDT_USDT-3m-futures.feather: 3.1 of 35.0 days)",
             "problems": ["files do not cover what the bots need: 2 files short of the bots' history"]}
    backfilling = {"role": "producer", "healthy": True, "coverage": "backfill 120/400 pages, 1,200/4,000 candles",
                   "problems": []}
    hostvars = {name: {"status_host": {"rc": 0, "stdout": json.dumps(reply)}}
                for name, reply in (("host73", backfilling), ("host75", covered), ("host120", short))}
    table = plugin.fleet_status(hostvars, list(hostvars), wide=True)
    header, producer, good, bad = table["table"]
    column = header.index("history")
    assert producer[column:].startswith("backfill 120/400 pages")
    assert good[column:].startswith("covered: 3m 35d")
    assert "UNHEALTHY" in bad and bad[column:].startswith("2 files short of the bots' history")
    assert table["problems"] == ["host120: files do not cover what the bots need: 2 files short of the bots' history"]
    header, producer, good, bad = plugin.fleet_status(hostvars, list(hostvars))["table"]
    column = header.index("history")
    assert [producer[column:].split("  ")[0], good[column:].split("  ")[0], bad[column:].split("  ")[0]] == \
        ["backfill 30%", "covered", "2 files short"]
