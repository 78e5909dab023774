"""The InfluxDB client against each server's v1 dialect (1.x itself, 2.7, 3.6 Core, 3.7 Core).

Storage and queries are the real influxd's; tests/influx_dialects.py reproduces only how each server's
v1 API differs, each behaviour cited from InfluxDB's source.
"""

from __future__ import annotations

import dataclasses

import pytest

from freqfeed.config import InfluxDBConfig
from freqfeed.influx import InfluxDB, InfluxDBAuthError, InfluxDBConfigError, InfluxDBNotFound, InfluxDBRejected
from freqfeed.influxql import Select
from freqfeed.schema import OHLCV_FIELDS, counts_select, last_times_select, series_select

from .conftest import InfluxServer
from .helpers import truth, write_candles

pytestmark = pytest.mark.integration

NOW = 1_795_572_000_000 + 7 * 60_000
EXPECTED = {
    "1.x": ("InfluxDB 1.x", "1.x", True),
    "2.7": ("InfluxDB 2 OSS", "2.x OSS", True),
    "3.6-core": ("InfluxDB 3 Core", "3 Core/Enterprise 3.0-3.6", False),
    "3.7-core": ("InfluxDB 3 Core", "3 Core/Enterprise >= 3.7", True),
}


def test_server_is_detected_from_ping(client: InfluxDB, influx_server: InfluxServer) -> None:
    product, row, multi = EXPECTED[influx_server.name]
    server = client.ping()
    assert (server.product, server.caps.row, server.caps.multi_statement) == (product, row, multi)
    assert not server.version.startswith("v"), "a leading v (2.x) is stripped"
    assert server.caps.creates_databases is (influx_server.name == "1.x")
    assert (server.caps.file_limit == 432) is influx_server.name.startswith("3.")


@pytest.mark.dialects("2.7", "3.6-core", "3.7-core")
def test_statements_are_batched_only_where_the_server_takes_several(client: InfluxDB,
                                                                     influx_server: InfluxServer) -> None:
    client.write(["m,exchange=binance,pair=A x=1 1795572000000", "m,exchange=binance,pair=B x=2 1795572000000"])
    assert influx_server.dialect is not None
    queries = influx_server.dialect.dialect.queries
    before = len(queries)
    statements = [f"SELECT x FROM m WHERE pair = '{p}' AND time >= 0ms AND time <= {NOW}ms" for p in "ABAB"]
    answers = client.query(statements)
    assert [a[0].values[0][1] for a in answers] == [1.0, 2.0, 1.0, 2.0]
    sent = queries[before:]
    if influx_server.name == "3.6-core":
        assert sorted(sent) == sorted(statements), "one statement per request (3.6 refuses several)"
    else:
        assert len(sent) == 1 and sent[0].count("SELECT") == 4


@pytest.mark.dialects("1.x", "2.7", "3.7-core")
def test_statements_after_a_failing_one_are_answered(client: InfluxDB) -> None:
    """1.x/2.x stop at a failing statement and report it as "not executed"; 3.7 answers each. Either way
    every statement gets its own answer and the failing one its own error."""
    client.write(["m,exchange=binance,pair=A x=1 1795572000000"])
    good = "SELECT x FROM m WHERE time >= 0ms"
    bad = "SELECT x, count(x) FROM m WHERE time >= 0ms"  # mixing aggregates: fails when executed
    answers = client.query_each([good, bad, good, bad, good])
    assert [isinstance(a, InfluxDBRejected) for a in answers] == [False, True, False, True, False]
    assert all(a[0].values == [[1795572000000, 1.0]] for a in answers if isinstance(a, list))
    assert "mixing aggregate" in str(answers[1]), "the real error, not 'not executed'"


def test_database_is_created_only_on_1x(influx_server: InfluxServer) -> None:
    config = influx_server.config("fresh_db")
    influx_server.drop_database("fresh_db")
    with InfluxDB(config, retries=0) as influx:
        if influx_server.name == "1.x":
            influx.ensure_database()
            assert influx.database_exists()
            influx_server.drop_database("fresh_db")
            return
        with pytest.raises(InfluxDBNotFound) as info:
            influx.ensure_database()
    message = str(info.value)
    assert "freqfeed creates databases only on InfluxDB 1.x" in message
    if influx_server.name == "2.7":
        assert "influx bucket create --name fresh_db --retention 360d" in message
    else:
        assert "influxdb3 create database --retention-period 360d fresh_db" in message
    assert influx_server.dialect is not None
    assert not any("CREATE" in q.upper() for q in influx_server.dialect.dialect.queries), "never a CREATE"


@pytest.mark.dialects("3.6-core", "3.7-core")
def test_retention_policy_is_a_config_error_on_3x(influx_config: InfluxDBConfig) -> None:
    config = dataclasses.replace(influx_config, retention_policy="rp360")
    with InfluxDB(config, retries=0) as influx, pytest.raises(InfluxDBConfigError) as info:
        influx.write(["m x=1 1795572000000"])
    assert "influxdb.retention_policy: 'rp360' cannot be used with InfluxDB 3 Core" in str(info.value)
    assert f"'{influx_config.database}/rp360'" in str(info.value)


@pytest.mark.dialects("2.7")
def test_retention_policy_selects_a_dbrp_mapping_on_2x(influx_server: InfluxServer,
                                                       influx_config: InfluxDBConfig) -> None:
    config = dataclasses.replace(influx_config, retention_policy="rp360")
    with InfluxDB(config, retries=0) as influx:
        with pytest.raises(InfluxDBNotFound, match=r"influx v1 dbrp create --db .* --rp rp360"):
            influx.ensure_database()
        influx_server.create_database(f"{influx_config.database}/rp360")  # the bucket "db/rp" maps db + rp
        try:
            influx.ensure_database()
            influx.write(["m,exchange=binance,pair=A x=1 1795572000000"])
            assert influx.query("SELECT x FROM m WHERE time >= 0ms")[0][0].values == [[1795572000000, 1.0]]
        finally:
            influx_server.drop_database(f"{influx_config.database}/rp360")


@pytest.mark.dialects("3.6-core", "3.7-core")
def test_ping_without_a_token_still_reaches_the_server(influx_config: InfluxDBConfig) -> None:
    config = dataclasses.replace(influx_config, token=None)
    with InfluxDB(config, retries=0) as influx:
        server = influx.ping()  # 401 on /ping: reachable, wants credentials
        assert server.caps.family == "3" and not server.caps.multi_statement
        with pytest.raises(InfluxDBAuthError, match=r"HTTP 401 .*check influxdb.token"):
            influx.query("SHOW MEASUREMENTS")


@pytest.mark.dialects("2.7", "3.6-core", "3.7-core")
def test_wrong_token_is_an_auth_error(influx_config: InfluxDBConfig) -> None:
    config = dataclasses.replace(influx_config, token="not-the-token")
    with InfluxDB(config, retries=0) as influx, pytest.raises(InfluxDBAuthError, match="HTTP 401"):
        influx.write(["m x=1 1795572000000"])


def _load(client: InfluxDB, days: int) -> int:
    last = (NOW // 180_000 - 1) * 180_000
    count = days * 480
    for pair in ("BTC/USDT:USDT", "ETH/USDT:USDT"):
        write_candles(client, pair, "3m", truth(pair, "3m", last, count))
    return last


def test_long_range_reads_equal_a_single_query(client: InfluxDB, influx_server: InfluxServer) -> None:
    """10 days of 3m candles (1440 gen1 blocks: far over 3 Core's 432 files per query): the newest 3000, all of
    them, counts and last times are the same answer on every server as one 1.x query over the whole range."""
    last = _load(client, 10)
    since, until = last - 12 * 86_400_000, NOW + 86_400_000
    selects = [series_select("ohlcv_3m", OHLCV_FIELDS, "BTC/USDT:USDT", since, until, newest=3000),
               series_select("ohlcv_3m", ("close",), "ETH/USDT:USDT", since, until),
               counts_select("ohlcv_3m", since, until), last_times_select("ohlcv_3m", since, until)]
    newest, everything, counts, lasts = client.select(selects)
    expected = truth("BTC/USDT:USDT", "3m", last, 3000)
    assert [row[0] for row in newest[0].values] == [c.open_time for c in reversed(expected)]
    assert [row[4] for row in newest[0].values] == [c.close for c in reversed(expected)]
    assert [row[0] for row in everything[0].values] == [c.open_time for c in truth("ETH/USDT:USDT", "3m", last, 4800)]
    assert {s.tags["pair"]: s.values[0][1] for s in counts} == {"BTC/USDT:USDT": 4800, "ETH/USDT:USDT": 4800}
    assert {s.tags["pair"]: s.values[0][0] for s in lasts} == {"BTC/USDT:USDT": last, "ETH/USDT:USDT": last}
    if influx_server.name.startswith("3."):
        assert influx_server.dialect is not None
        assert len(influx_server.dialect.dialect.queries) > 10, "split into windows"


@pytest.mark.dialects("3.6-core", "3.7-core")
def test_a_refused_window_is_split_further(client: InfluxDB, influx_server: InfluxServer) -> None:
    """A server started with a lower --query-file-limit refuses the client's first windows; the client narrows
    them and the answer is unchanged."""
    assert influx_server.dialect is not None
    influx_server.dialect.dialect.file_limit = 40
    try:
        last = _load(client, 3)
        [answer] = client.select([series_select("ohlcv_3m", ("close",), "BTC/USDT:USDT", last - 4 * 86_400_000,
                                                NOW, newest=1000)])
        assert [row[0] for row in answer[0].values] == [c.open_time for c in
                                                        reversed(truth("BTC/USDT:USDT", "3m", last, 1000))]
        [[count]] = client.select([Select("ohlcv_3m", ("close",), last - 4 * 86_400_000, NOW,
                                          tags=(("pair", "BTC/USDT:USDT"),), aggregate="count")])
        assert count.values[0][1] == 1440
    finally:
        influx_server.dialect.dialect.file_limit = 432


@pytest.mark.dialects("3.6-core", "3.7-core")
def test_writes_create_an_unknown_database_on_3x(influx_server: InfluxServer) -> None:
    """3.x creates a database on first write (so ensure_database refuses to go on without one: it would have
    no retention); the client says so before writing."""
    influx_server.drop_database("auto_db")
    try:
        with InfluxDB(influx_server.config("auto_db"), retries=0) as influx:
            assert influx.database_exists() in (False, None)
            influx.write(["m,exchange=binance,pair=A x=1 1795572000000"])
            assert influx.query("SELECT x FROM m WHERE time >= 0ms")[0][0].values == [[1795572000000, 1.0]]
    finally:
        influx_server.drop_database("auto_db")
