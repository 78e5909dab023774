"""The InfluxDB client against a real influxd: API, auth, errors, retries."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from freqfeed.config import InfluxDBConfig
from freqfeed.influx import (
    InfluxDB,
    InfluxDBAuthError,
    InfluxDBNotFound,
    InfluxDBRejected,
    InfluxDBUnavailable,
)
from freqfeed.localinflux import LocalInfluxDB, free_port

from .faultproxy import FaultProxy

# InfluxDB 1.x itself; how the client meets the other servers: test_influx_dialects.py
pytestmark = [pytest.mark.integration, pytest.mark.dialects("1.x")]


@pytest.fixture
def proxy(influxd: LocalInfluxDB) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(influxd.url)
    yield fault_proxy
    fault_proxy.close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalInfluxDB]:
    server = LocalInfluxDB(tmp_path_factory.mktemp("secured"), auth=True).start()
    admin = ("admin", "admin-pw")
    requests.post(f"{server.url}/query", timeout=10, data={
        "q": "CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES"}).raise_for_status()
    for statement in ("CREATE DATABASE market", "CREATE USER reader WITH PASSWORD 'reader-pw'",
                      "GRANT READ ON market TO reader"):
        requests.post(f"{server.url}/query", auth=admin, data={"q": statement}, timeout=10).raise_for_status()
    yield server
    server.cleanup()


def test_ping_write_and_multi_statement_query(client: InfluxDB) -> None:
    assert client.ping().version.startswith("1.")
    client.write(["m,exchange=binance,pair=A x=1 1795572000000", "m,exchange=binance,pair=B x=2 1795572000000"])
    a, b = client.query(["SELECT x FROM m WHERE pair = 'A'", "SELECT x FROM m WHERE pair = 'B'"])
    assert a[0].values == [[1795572000000, 1.0]]
    assert b[0].rows() == [{"time": 1795572000000, "x": 2.0}]


def test_ensure_database_creates_it_with_360_days(influxd: LocalInfluxDB) -> None:
    config = InfluxDBConfig(url=influxd.url, database="created_by_client")
    with InfluxDB(config) as influx:
        influx.ensure_database()
        [[policies]] = influx.query("SHOW RETENTION POLICIES")
        assert [row[:2] for row in policies.values] == [["autogen", "8640h0m0s"]]
        influx.ensure_database()  # idempotent
    named = dataclasses.replace(config, retention_policy="freqfeed_rp")
    with InfluxDB(named) as influx:
        influx.ensure_database()
        influx.write(["m x=1 1795572000000"])
        [[policies]] = influx.query("SHOW RETENTION POLICIES")
        assert "freqfeed_rp" in [row[0] for row in policies.values]


def test_unknown_database(influxd: LocalInfluxDB) -> None:
    with InfluxDB(InfluxDBConfig(url=influxd.url, database="nope"), retries=0) as influx:
        with pytest.raises(InfluxDBNotFound, match=r"database not found: nope.*create database 'nope'"):
            influx.query("SELECT * FROM m")
        with pytest.raises(InfluxDBNotFound, match=r"influxdb\.database"):
            influx.write(["m x=1 1795572000000"])


def test_bad_query_is_rejected_without_retry(client: InfluxDB) -> None:
    with pytest.raises(InfluxDBRejected, match="error parsing query"):
        client.query("SELEKT nonsense")


def test_wrong_password_is_an_auth_error(secured: LocalInfluxDB) -> None:
    config = InfluxDBConfig(url=secured.url, database="market", username="admin", password="wrong")
    with InfluxDB(config) as influx, pytest.raises(InfluxDBAuthError) as info:
        influx.query("SELECT * FROM m")
    assert "HTTP 401" in str(info.value)
    assert "influxdb.token" in str(info.value) and "influxdb.username" in str(info.value)
    assert "wrong" not in str(info.value), "the password never appears in an error"


def test_missing_credentials_and_read_only_user(secured: LocalInfluxDB) -> None:
    with InfluxDB(InfluxDBConfig(url=secured.url, database="market")) as anonymous, \
            pytest.raises(InfluxDBAuthError, match="HTTP 401"):
        anonymous.write(["m x=1 1795572000000"])
    reader = InfluxDBConfig(url=secured.url, database="market", username="reader", password="reader-pw")
    with InfluxDB(reader) as influx:
        influx.query("SELECT * FROM m")
        with pytest.raises(InfluxDBAuthError, match="HTTP 403"):
            influx.write(["m x=1 1795572000000"])
        influx.ensure_database()  # no admin rights: assumes the database exists, does not fail


def test_token_is_sent_as_authorization_header(proxy: FaultProxy, database: str) -> None:
    with InfluxDB(InfluxDBConfig(url=proxy.url, database=database, token="s3cret-token")) as influx:
        influx.ping()
    assert proxy.requests[-1][2]["Authorization"] == "Token s3cret-token"


def test_transient_5xx_is_retried(proxy: FaultProxy, database: str) -> None:
    proxy.fail(503, count=2)
    with InfluxDB(InfluxDBConfig(url=proxy.url, database=database), retries=3, backoff=0.01) as influx:
        influx.write(["m x=1 1795572000000"])
        assert influx.query("SELECT x FROM m")[0][0].values == [[1795572000000, 1.0]]
    # the write met both 503s and was retried; the query first detected the server (/ping)
    assert [path.split("?")[0] for _, path, _ in proxy.requests] == ["/write", "/write", "/write", "/ping", "/query"]


def test_persistent_5xx_gives_up_after_the_retries(proxy: FaultProxy, database: str) -> None:
    proxy.fail(500)
    with InfluxDB(InfluxDBConfig(url=proxy.url, database=database), retries=2, backoff=0.01) as influx, \
            pytest.raises(InfluxDBUnavailable, match="HTTP 500: injected by the test proxy"):
        influx.query("SELECT x FROM m")
    assert len(proxy.requests) == 3


def test_timeout(proxy: FaultProxy, database: str) -> None:
    proxy.delay = 1.0
    with InfluxDB(InfluxDBConfig(url=proxy.url, database=database, timeout=0.2), retries=0) as influx, \
            pytest.raises(InfluxDBUnavailable, match=r"timed out after 0.2s"):
        influx.ping()


def test_nothing_listening(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with InfluxDB(InfluxDBConfig(url=url, database="m"), retries=1, backoff=0.01) as influx, \
            pytest.raises(InfluxDBUnavailable, match=f"InfluxDB is not reachable at {url}: connection refused"):
        influx.ping()
