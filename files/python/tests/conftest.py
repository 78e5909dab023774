"""Shared fixtures: a real influxd per test session, a fresh database per test."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from freqfeed import config as config_module
from freqfeed.config import Config, InfluxDBConfig
from freqfeed.influx import InfluxDB
from freqfeed.localinflux import LocalInfluxDB

from .helpers import influx_section
from .influx_dialects import DIALECTS, Dialect, DialectServer
from .processes import RUNNING, stop_leftovers

# Every InfluxDB integration test runs against each server's documented v1 dialect: 1.x is influxd itself,
# the others an emulation layer in front of it (tests/influx_dialects.py). @pytest.mark.dialects("1.x")
# narrows a test to the ones named.
ALL_DIALECTS = ("1.x", *DIALECTS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dialects(*names): run only against these InfluxDB dialects "
                                       f"(default: all of {', '.join(ALL_DIALECTS)})")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "influx_server" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("dialects")
        metafunc.parametrize("influx_server", marker.args if marker else ALL_DIALECTS, indirect=True)


@pytest.fixture(autouse=True, scope="session")
def _no_leftover_processes_at_all() -> Iterator[None]:
    yield
    stop_leftovers()


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    """What a test started, it leaves stopped (the processes of module fixtures, set up before, stay)."""
    keep = len(RUNNING)
    yield
    stop_leftovers(keep)


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalInfluxDB]:
    server = LocalInfluxDB(tmp_path_factory.mktemp("influxd"))
    server.start()
    yield server
    server.cleanup()


@dataclass
class InfluxServer:
    """One InfluxDB server as a test sees it: 1.x (influxd itself) or a dialect in front of it."""

    name: str
    url: str
    token: str | None
    influxd: LocalInfluxDB
    dialect: DialectServer | None

    @classmethod
    def in_front_of(cls, influxd: LocalInfluxDB, name: str) -> InfluxServer:
        """The dialect `name` (or 1.x itself) in front of a given influxd; close() when done."""
        if name == "1.x":
            return cls(name, influxd.url, None, influxd, None)
        server = DialectServer(DIALECTS[name](influxd.url))
        return cls(name, server.url, server.dialect.token, influxd, server)

    def close(self) -> None:
        if self.dialect is not None:
            self.dialect.close()

    def create_database(self, name: str, retention_days: int = 360) -> None:
        """What the operator does before freqfeed runs: CREATE DATABASE on 1.x, a bucket or database elsewhere."""
        self.drop_database(name)
        if self.dialect is None:
            requests.post(f"{self.influxd.url}/query", timeout=10, data={
                "q": f'CREATE DATABASE "{name}" WITH DURATION {retention_days}d'}).raise_for_status()
        else:
            self.dialect.dialect.ensure_database(name, retention_days)

    def drop_database(self, name: str) -> None:
        if self.dialect is None:
            requests.post(f"{self.influxd.url}/query", data={"q": f'DROP DATABASE "{name}"'}, timeout=10)
        else:
            self.dialect.dialect.drop_database(name)

    def config(self, database: str, **overrides: Any) -> InfluxDBConfig:
        return InfluxDBConfig(**{"url": self.url, "database": database, "token": self.token, "timeout": 5.0,
                                 **overrides})

    def raw(self, statement: str, database: str) -> dict[str, Any]:
        """A statement sent to influxd itself, for a test's own set-up (never the code under test)."""
        answer = requests.post(f"{self.influxd.url}/query", data={"q": statement, "db": database, "epoch": "ms"},
                               timeout=10)
        answer.raise_for_status()
        return dict(answer.json())


@pytest.fixture(scope="session")
def dialect_servers(influxd: LocalInfluxDB) -> Iterator[dict[str, DialectServer]]:
    servers: dict[str, DialectServer] = {}
    yield servers
    for server in servers.values():
        server.close()


@pytest.fixture
def influx_server(request: pytest.FixtureRequest, influxd: LocalInfluxDB,
                  dialect_servers: dict[str, DialectServer]) -> InfluxServer:
    name = request.param
    if name == "1.x":
        return InfluxServer(name, influxd.url, None, influxd, None)
    if name not in dialect_servers:
        dialect_servers[name] = DialectServer(DIALECTS[name](influxd.url))
    server = dialect_servers[name]
    return InfluxServer(name, server.url, server.dialect.token, influxd, server)


@pytest.fixture
def database(influx_server: InfluxServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of its own for each test, created with a 360-day retention as an operator would."""
    name = "t_" + re.sub(r"\W+", "_", request.node.name)[:60]
    influx_server.create_database(name)
    yield name
    influx_server.drop_database(name)


@pytest.fixture
def influx_config(influx_server: InfluxServer, database: str) -> InfluxDBConfig:
    return influx_server.config(database)


@pytest.fixture
def client(influx_config: InfluxDBConfig) -> Iterator[InfluxDB]:
    with InfluxDB(influx_config, retries=0) as influx:
        yield influx


@pytest.fixture
def storage(influx_server: InfluxServer, database: str) -> Iterator[InfluxDB]:
    """The test's database read straight from influxd, whatever the dialect: for checking what was stored."""
    with InfluxDB(InfluxDBConfig(url=influx_server.influxd.url,
                                 database=Dialect.stored_as(database)), retries=0) as influx:
        yield influx


def make_config(influx_config: InfluxDBConfig, tmp_path: Path, **overrides: Any) -> Config:
    """A validated Config pointing at the test database and a data directory under tmp_path."""
    raw: dict[str, Any] = {
        "influxdb": influx_section(influx_config),
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
