"""Shared fixtures: a real influxd per test session, a fresh database per test."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from freqfeed import config as config_module
from freqfeed.config import Config, InfluxDBConfig
from freqfeed.influx import InfluxDB
from freqfeed.localinflux import LocalInfluxDB


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalInfluxDB]:
    server = LocalInfluxDB(tmp_path_factory.mktemp("influxd"))
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def database(influxd: LocalInfluxDB, request: pytest.FixtureRequest) -> str:
    """A database of its own for each test, created with a 360-day retention policy."""
    name = "t_" + re.sub(r"\W+", "_", request.node.name)[:60]
    requests.post(f"{influxd.url}/query", data={"q": f'DROP DATABASE "{name}"'}, timeout=10)
    requests.post(f"{influxd.url}/query", data={"q": f'CREATE DATABASE "{name}" WITH DURATION 360d'},
                  timeout=10).raise_for_status()
    return name


@pytest.fixture
def influx_config(influxd: LocalInfluxDB, database: str) -> InfluxDBConfig:
    return InfluxDBConfig(url=influxd.url, database=database, timeout=5.0)


@pytest.fixture
def client(influx_config: InfluxDBConfig) -> Iterator[InfluxDB]:
    with InfluxDB(influx_config, retries=0) as influx:
        yield influx


def make_config(influx_config: InfluxDBConfig, tmp_path: Path, **overrides: Any) -> Config:
    """A validated Config pointing at the test database and a data directory under tmp_path."""
    raw: dict[str, Any] = {
        "influxdb": {"url": influx_config.url, "database": influx_config.database, "timeout": 5},
        "pairs": ["BTC/USDT:USDT", "ETH/USDT:USDT"],
        "timeframes": ["3m", "15m", "1h"],
        "trading_mode": "futures",
        "sync": {"datadir": str(tmp_path / "user_data" / "data" / "binance")},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return config_module.from_mapping(raw, "test-config", environ={})
