"""`freqfeed check-influxdb` against every server's dialect: each line OK, FAIL with the fix, or SKIP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from freqfeed.config import InfluxDBConfig

from .conftest import InfluxServer
from .helpers import influx_section

pytestmark = pytest.mark.integration


def check(tmp_path: Path, influx: InfluxDBConfig | dict[str, Any], *args: str) -> tuple[int, dict[str, str]]:
    section = influx_section(influx) if isinstance(influx, InfluxDBConfig) else influx
    path = tmp_path / "feeder.yml"
    path.write_text(yaml.safe_dump({"influxdb": section, "pairs": ["BTC/USDT:USDT"]}))
    result = subprocess.run([sys.executable, "-m", "freqfeed", "check-influxdb", "--config", str(path), *args],
                            capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in result.stderr, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    return result.returncode, lines


def test_a_ready_server(influx_config: InfluxDBConfig, influx_server: InfluxServer, tmp_path: Path) -> None:
    code, lines = check(tmp_path, influx_config)
    assert code == 0, lines
    assert list(lines) == ["tls", "server", "auth", "database", "retention", "read", "write", "batching"]
    assert all(line.split()[1] in ("OK", "SKIP") for line in lines.values()), lines
    product = {"1.x": "InfluxDB 1.x 1.6.7", "2.7": "InfluxDB 2 OSS 2.7.12", "3.6-core": "InfluxDB 3 Core 3.6.0",
               "3.7-core": "InfluxDB 3 Core 3.7.0"}[influx_server.name]
    assert product in lines["server"]
    assert "SKIP" in lines["write"] and "--write-probe" in lines["write"]
    if influx_server.name == "3.6-core":
        assert "one statement per request" in lines["batching"]
    else:
        assert "several statements per request" in lines["batching"]
    if influx_server.name in ("1.x", "3.7-core"):
        assert lines["retention"].split()[1] == "OK" and "360 days" in lines["retention"], lines["retention"]
    else:  # 2.x reports every duration as 0s, 3.6 cannot show it through the v1 API
        assert lines["retention"].split()[1] == "SKIP"
    code, lines = check(tmp_path, influx_config, "--write-probe")
    assert code == 0 and lines["write"].split()[1] == "OK", lines["write"]


def test_a_missing_database_says_how_to_create_it(influx_server: InfluxServer, tmp_path: Path) -> None:
    influx_server.drop_database("absent")
    code, lines = check(tmp_path, influx_server.config("absent"))
    assert code == 1
    assert lines["database"].split()[1] == "FAIL"
    expected = {"1.x": "CREATE DATABASE \"absent\" WITH DURATION 360d",
                "2.7": "influx bucket create --name absent --retention 360d",
                "3.6-core": "influxdb3 create database --retention-period 360d absent",
                "3.7-core": "influxdb3 create database --retention-period 360d absent"}[influx_server.name]
    assert expected in lines["database"], lines["database"]


@pytest.mark.dialects("2.7", "3.6-core", "3.7-core")
def test_a_wrong_token(influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    code, lines = check(tmp_path, {**influx_section(influx_config), "token": "wrong"})
    assert code == 1
    assert lines["auth"].split()[1] == "FAIL" and "HTTP 401" in lines["auth"]


@pytest.mark.dialects("3.6-core", "3.7-core")
def test_retention_policy_on_3x(influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    code, lines = check(tmp_path, {**influx_section(influx_config), "retention_policy": "rp1"})
    assert code == 1
    assert lines["server"].split()[1] == "OK"
    assert lines["config"].split()[1] == "FAIL" and "Remove influxdb.retention_policy" in lines["config"]


@pytest.mark.dialects("1.x")
def test_a_short_retention_on_1x(influx_server: InfluxServer, tmp_path: Path) -> None:
    influx_server.create_database("short_db", retention_days=30)
    try:
        code, lines = check(tmp_path, influx_server.config("short_db"))
    finally:
        influx_server.drop_database("short_db")
    assert code == 1
    assert "30 days, shorter than influxdb.retention_days = 360" in lines["retention"]
    assert 'ALTER RETENTION POLICY "autogen" ON "short_db" DURATION 360d' in lines["retention"]


def test_nothing_listening(tmp_path: Path) -> None:
    code, lines = check(tmp_path, {"url": "http://127.0.0.1:9", "database": "x", "timeout": 1})
    assert code == 1 and list(lines) == ["tls", "server"]
    assert "plain http" in lines["tls"]
    assert "FAIL" in lines["server"] and "not reachable" in lines["server"]
