"""The fleet status table's layout (playbooks/filter_plugins/fleet_status.py): within a 120-column terminal
as Ansible prints it, for a realistic fleet and for the worst case; `wide` shows every column in full."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PLUGIN = Path(__file__).resolve().parents[4] / "playbooks" / "filter_plugins" / "fleet_status.py"
TERMINAL = 120


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fleet_status", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ran(reply: dict[str, Any]) -> dict[str, Any]:
    """What Ansible registers for `freqfeed status --json`."""
    return {"rc": 0 if reply.get("healthy") else 1, "stdout": json.dumps(reply), "stderr": ""}


GATEWAY = {"up": True, "local": 18422, "forwarded": 311, "refused": 0, "forwarded_weight_last_minute": 12,
           "forwarded_weight_peak_minute": 40, "cache_hits": 2210, "coalesced": 35, "close_wait_fallbacks": 1,
           "influxdb_ok": True, "influxdb_error": None, "rate_limited": 0, "banned": 0, "unit": "active",
           "books": {"streamed": 4, "ticker_streams": 4, "connections": 1, "connections_up": 1, "served": 5120,
                     "forwarded": 12, "forward_reasons": {"not streamed yet": 12}, "oldest_served_ms": 180.4,
                     "reconnects": 0}}
FEEDER = {"role": "feeder", "healthy": True, "unit": "influxdb-data-sync.timer", "unit_state": "active",
          "last_run": "1m ago, ok", "files": 20, "lag_seconds": {"3m": 41.0, "15m": 95.2, "1h": 1900.0},
          "gaps": {}, "disk_free": "40.1 GB (60%)", "influxdb": "InfluxDB 1.8.10",
          "coverage": "covered: 3m 35d, 15m 35d, 1h 35d", "gateway": GATEWAY, "problems": []}

# The fleet of the lab: the producer back-filling, two healthy feeders, one short of history with its gateway
# down, one unreachable.
FLEET: dict[str, dict[str, Any]] = {
    "host73": ran({"role": "producer", "healthy": True, "unit": "cryptofeed-influxdb.service", "unit_state": "active",
                   "last_run": "health 3s old", "lag_seconds": {"3m": 12.4, "15m": 20.0, "1h": 31.0},
                   "gaps": {"BTC/USDT:USDT 3m": 480, "ETH/USDT:USDT 3m": 480}, "disk_free": "120.4 GB (71%)",
                   "influxdb": "InfluxDB 1.8.10",
                   "coverage": "backfill 120/400 pages, 59,880/199,600 candles, ETA 6 min", "problems": []}),
    "host75": ran(FEEDER),
    "host120": ran({**FEEDER, "healthy": False, "lag_seconds": {"3m": 400.0, "15m": None, "1h": 1900.0},
                    "gaps": {"BTC_USDT_USDT-3m-futures.feather": 3},
                    "coverage": "2 files short of the bots' history (e.g. BTC_USDT_USDT-3m-futures.feather: 3.1 of "
                                "35.0 days)",
                    "gateway": {"up": False, "unit": "failed", "error": "Connection refused"},
                    "problems": ["newest 3m candle is 7m old", "no 15m candles for 2 pairs",
                                 "files do not cover what the bots need: 2 files short of the bots' history (e.g. "
                                 "BTC_USDT_USDT-3m-futures.feather: 3.1 of 35.0 days)",
                                 "gateway not answering on 127.0.0.1:8091 (freqfeed-gateway.service failed)"]}),
    "host121": {"unreachable": True, "msg": "Task failed: Failed to connect to the host via ssh: ssh: connect to "
                "host 10.0.0.121 port 22: Connection timed out. Check the host."},
    "host124": ran({**FEEDER, "gateway": {**GATEWAY, "local": 0, "forwarded": 0, "ready": False}}),
}


def table(plugin: ModuleType, fleet: dict[str, dict[str, Any]], **options: Any) -> dict[str, Any]:
    hostvars = {host: {"status_host": result} for host, result in fleet.items()}
    return dict(plugin.fleet_status(hostvars, list(fleet), **options))


def printed(lines: list[str]) -> list[str]:
    """The lines as Ansible's yaml callback prints a debug msg."""
    return [" " * 8 + line if line else "" for line in lines]


def test_the_fleet_fits_120_columns(plugin: ModuleType) -> None:
    result = table(plugin, FLEET)
    assert all(len(line) <= TERMINAL for line in printed(result["lines"])), "\n".join(result["lines"])
    header, *rows = result["table"]
    assert header.split() == ["host", "role", "health", "newest", "candle", "gaps", "history", "gw", "here/fwd",
                              "problems"]
    assert [row.split()[:3] for row in rows] == [
        ["host73", "producer", "OK"], ["host75", "feeder", "OK"], ["host120", "feeder", "UNHEALTHY"],
        ["host121", "?", "UNREACHABLE"], ["host124", "feeder", "OK"]]
    producer, good, bad, unreachable, loading = rows
    column = {name: header.index(name) for name in ("newest candle", "gaps", "history", "gw here/fwd", "problems")}
    assert producer[column["newest candle"]:].startswith("3m=12s 15m=20s 1h=31s")
    assert producer[column["gaps"]:].startswith("960 in 2 ")
    assert producer[column["history"]:].startswith("backfill 30% ")
    assert good[column["history"]:].startswith("covered ")
    assert good[column["gw here/fwd"]:].startswith("18422/311 98% ")
    assert good.endswith("  -"), "no problems"
    assert bad[column["newest candle"]:].startswith("3m=7m 15m=- 1h=32m")
    assert bad[column["history"]:].startswith("2 files short ")
    assert bad[column["gw here/fwd"]:].startswith("DOWN ")
    assert bad[column["problems"]:].startswith("(4) newest 3m"), "how many, the first (cut to fit)"
    assert unreachable[column["problems"]:].startswith("unreachable: ")
    assert loading[column["gw here/fwd"]:].startswith("loading 0/0")


def test_every_problem_in_full_below_the_table(plugin: ModuleType) -> None:
    result = table(plugin, FLEET)
    notes = result["lines"][len(result["table"]):]
    assert notes[0] == ""
    joined = " ".join(line.strip() for line in notes[1:])
    for problem in result["problems"]:
        assert problem in joined
    assert result["problems"][0] == "host120: newest 3m candle is 7m old"
    assert len(result["problems"]) == 5 and result["unhealthy"] == ["host120", "host121"]
    assert all(line.startswith(("host", "    ")) for line in notes[1:]), "continuations indented"


def test_worst_case_long_names_many_timeframes_long_problems(plugin: ModuleType) -> None:
    tfs = ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w"]
    worst = {**FEEDER, "healthy": False, "lag_seconds": dict.fromkeys(tfs, 123456.0),
             "gaps": {f"PAIR{i}_USDT_USDT-{tf}-futures.feather": 99999 for i in range(40) for tf in tfs},
             "coverage": "something nobody planned for: " + "x" * 300,
             "gateway": {**GATEWAY, "local": 10**12, "forwarded": 10**12},
             "problems": ["unreadable file " + "/very/long/path" * 20 + ": " + "y" * 200] * 30}
    fleet = {f"feeder-{n}-frankfurt-datacenter-rack-17.example.com": ran(worst) for n in range(5)}
    result = table(plugin, fleet)
    assert all(len(line) <= TERMINAL for line in printed(result["lines"]))
    assert len(result["table"]) == 6
    assert all("…" in row for row in result["table"][1:]), "cut cells are marked"
    assert len(result["problems"]) == 150
    # a word longer than the line (the path) is broken, never lost
    notes = "".join(line.strip() for line in result["lines"][7:])
    assert notes.count("y" * 200) == 150


def test_wide_shows_every_column_in_full(plugin: ModuleType) -> None:
    result = table(plugin, FLEET, wide=True)
    header = result["table"][0]
    for name in ("service / timer", "last run", "files", "disk free", "influxdb", "gateway"):
        assert name in header
    assert any("18422 here (98%) / 311 fwd, 12 w/min, 2210 hits, 1 fallbacks, books 4: 5120 streamed" in line
               for line in result["table"])
    assert any("2 files short of the bots' history (e.g. BTC_USDT_USDT-3m-futures.feather: 3.1 of 35.0 days)" in line
               for line in result["table"])
    assert any("loading caches: 0 here (-) / 0 fwd" in line for line in result["table"])
    assert "…" not in "".join(result["lines"])
    assert result["lines"][len(result["table"]) + 1:] == result["problems"]


def test_a_healthy_fleet_prints_the_table_only(plugin: ModuleType) -> None:
    result = table(plugin, {"host75": ran(FEEDER), "host76": ran(FEEDER)})
    assert result["lines"] == result["table"] and result["problems"] == [] and result["unhealthy"] == []


def test_unhealthy_without_a_reason_still_says_so(plugin: ModuleType) -> None:
    result = table(plugin, {"host75": ran({**FEEDER, "healthy": False})})
    assert result["problems"] == ["host75: unhealthy"]
    assert result["table"][1].endswith("unhealthy")


def test_a_host_in_both_groups_has_a_row_per_role(plugin: ModuleType) -> None:
    """status.yml asks a feeder that is also the second producer once per role (a looped task: `results`)."""
    producer = {"role": "producer", "healthy": False, "unit": "cryptofeed-influxdb.service", "unit_state": "inactive",
                "problems": ["cryptofeed-influxdb.service is inactive"]}
    both = {"results": [{**ran(producer), "item": "producer"}, {**ran(FEEDER), "item": "feeder"}]}
    result = table(plugin, {"host73": FLEET["host73"], "host120": both})
    rows = result["table"][1:]
    assert [row.split()[:3] for row in rows] == [["host73", "producer", "OK"], ["host120", "producer", "UNHEALTHY"],
                                                 ["host120", "feeder", "OK"]]
    assert result["problems"] == ["host120: cryptofeed-influxdb.service is inactive"]
    assert result["unhealthy"] == ["host120"]
