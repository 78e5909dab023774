"""The producer end to end: simulator + producer as processes + a real influxd.

Every test ends with InfluxDB equal to the simulator's truth for the period it covered: zero
missing and zero extra candles, every value equal.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from freqfeed.config import InfluxDBConfig
from freqfeed.influx import InfluxDB
from freqfeed.localinflux import LocalInfluxDB
from freqfeed.schema import ohlcv_measurement

from .conftest import ALL_DIALECTS, InfluxServer
from .processes import (
    ProducerProcess,
    SimulatorProcess,
    assert_complete,
    newest_closed_all_stored,
    producer_config,
    stored,
    wait_for,
)

# The fault tests run against InfluxDB 1.x; the start-up ones against every server (see conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.dialects("1.x")]

PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
TIMEFRAMES = ["3m", "15m", "1h"]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorProcess]:
    simulator = SimulatorProcess(tmp_path, speed=60)
    yield simulator
    simulator.stop()


def run_until_complete(client: InfluxDB, sim: SimulatorProcess, pairs: list[str] = PAIRS, *, futures: bool = True,
                       timeout: float = 60) -> int:
    """Wait until InfluxDB holds every candle closed up to a moment ago, without a hole; that moment."""
    def complete() -> int | None:
        until = newest_closed_all_stored(client, sim, pairs, TIMEFRAMES)
        if until is None:
            return None
        try:
            assert_complete(client, sim, pairs, TIMEFRAMES, until, futures=futures)
        except AssertionError:
            return None
        return until

    return int(wait_for(complete, timeout, "InfluxDB to be complete up to the newest closed candles", interval=0.5))


def stop_and_check(producer: ProducerProcess, client: InfluxDB, sim: SimulatorProcess) -> dict[str, int]:
    until = run_until_complete(client, sim)
    code, seconds = producer.terminate()
    assert code == 0, producer.text()[-3000:]
    assert seconds < 10, f"SIGTERM took {seconds:.1f}s"
    assert "Traceback" not in producer.text()
    return assert_complete(client, sim, PAIRS, TIMEFRAMES, until)


@pytest.mark.dialects(*ALL_DIALECTS)
def test_empty_database_gets_exactly_1500_candles_per_series(storage: InfluxDB, influx_config: InfluxDBConfig,
                                                            tmp_path: Path) -> None:
    # Real-time clock, started 5 s after a 3m close: nothing closes while the backfill runs.
    start = (int(time.time() * 1000) // 180_000) * 180_000 + 5_000
    sim = SimulatorProcess(tmp_path, speed=1, start=start)
    try:
        producer = ProducerProcess(tmp_path, producer_config(influx_config, sim, PAIRS,
                                                             candles=1500)).start()
        producer.wait_for_log("backfill done", timeout=120)

        def counts() -> list[int]:
            return [len(stored(storage, measurement, pair, "close")) for pair in PAIRS
                    for measurement in [*map(ohlcv_measurement, TIMEFRAMES), "mark_price"]]

        # "backfill done" means fetched and queued; the writer flushes within its interval
        wait_for(lambda: set(counts()) == {1500}, 10, "the backfilled candles in InfluxDB")
        assert set(counts()) == {1500}
        checked = assert_complete(storage, sim, PAIRS, TIMEFRAMES, sim.now())
        assert set(checked.values()) == {1500}
        log = producer.text()
        # pages of 499 candles (weight 2 each on futures, 7 for the four) rather than one of 1500 (weight 10)
        assert "backfill BTC/USDT:USDT 3m: 1500 candles written in 4 requests (InfluxDB had 0 of 1500)" in log
        # the newest mark page also brings Binance's candle in progress (the live mark candle's start)
        # without costing a request more
        assert "backfill BTC/USDT:USDT 1h mark: 1500 candles written in 4 requests (InfluxDB had 0 of 1500)" in log
        assert "backfill done: 15 series" in log
        # a restart finds everything in place: no candle requests at all
        code, _ = producer.terminate()
        assert code == 0
        requests_before = sim.stats()["counters"].get("rest /fapi/v1/klines", 0)
        producer.start()
        producer.wait_for_log("backfill done", count=2)
        assert "backfill BTC/USDT:USDT 3m: complete (1500 of 1500)" in producer.text()
        assert sim.stats()["counters"].get("rest /fapi/v1/klines", 0) == requests_before
        producer.terminate()
    finally:
        sim.stop()


def test_live_candles_keep_arriving_without_gaps(client: InfluxDB, influx_config: InfluxDBConfig,
                                                 sim: SimulatorProcess, tmp_path: Path) -> None:
    producer = ProducerProcess(tmp_path, producer_config(influx_config, sim,
                                                         PAIRS)).start()
    producer.wait_for_log("backfill done")
    first = len(stored(client, "ohlcv_3m", "BTC/USDT:USDT", "close"))
    wait_for(lambda: len(stored(client, "ohlcv_3m", "BTC/USDT:USDT", "close")) >= first + 4, 60,
             "four 3m closes from the stream")
    checked = stop_and_check(producer, client, sim)
    assert checked["BTC/USDT:USDT ohlcv_3m"] >= first + 3
    log = producer.text()
    # 60 mark candles and Binance's candle in progress after them: one request
    assert "backfill BTC/USDT:USDT 1h mark: 60 candles written in 1 requests" in log
    assert "over REST: " not in log, "with a healthy stream nothing needs repairing"
    assert "stream silent" not in log


def test_websocket_dropped_several_times(client: InfluxDB, influx_config: InfluxDBConfig, sim: SimulatorProcess,
                                         tmp_path: Path) -> None:
    producer = ProducerProcess(tmp_path, producer_config(influx_config, sim,
                                                         PAIRS)).start()
    producer.wait_for_log("backfill done")
    for _ in range(3):
        before = producer.text().count("stream reconnected")
        sim.fault("drop")
        wait_for(lambda before=before: producer.text().count("stream reconnected") > before, 60,
                 "the streams reconnected")
    stop_and_check(producer, client, sim)
    assert producer.text().count("stream reconnected") >= 3


def test_connections_refused_for_a_while(client: InfluxDB, influx_config: InfluxDBConfig, sim: SimulatorProcess,
                                         tmp_path: Path) -> None:
    producer = ProducerProcess(tmp_path, producer_config(influx_config, sim,
                                                         PAIRS)).start()
    producer.wait_for_log("backfill done")
    sim.fault("refuse", 12)  # 12 exchange minutes without REST or websocket
    producer.wait_for_log("stream reconnected", timeout=90)  # once the refusals are over
    checked = stop_and_check(producer, client, sim)
    assert checked["BTC/USDT:USDT ohlcv_3m"] > 60
    assert "repaired BTC/USDT:USDT 3m over REST" in producer.text()


def test_sigkill_and_restart(client: InfluxDB, influx_config: InfluxDBConfig, sim: SimulatorProcess,
                             tmp_path: Path) -> None:
    producer = ProducerProcess(tmp_path, producer_config(influx_config, sim,
                                                         PAIRS)).start()
    producer.wait_for_log("backfill done")
    live = len(stored(client, "ohlcv_3m", "BTC/USDT:USDT", "close"))
    wait_for(lambda: len(stored(client, "ohlcv_3m", "BTC/USDT:USDT", "close")) > live, 60, "a live 3m candle")
    producer.kill()
    killed = sim.now()
    wait_for(lambda: sim.now() >= killed + 10 * 60_000, 60, "ten exchange minutes while nothing runs")
    producer.start()
    producer.wait_for_log("backfill done", count=2)
    restart = producer.text().split("backfill: checking", 2)[2]
    gap = re.search(r"backfill BTC/USDT:USDT 3m: (\d+) candles written in 1 requests", restart)
    # at least the 3 candles of those ten minutes; far fewer than the window (1500): just the gap
    assert gap is not None and 3 <= int(gap.group(1)) < 100, "the restart fetches just the gap, in one request"
    stop_and_check(producer, client, sim)


def test_influxdb_stopped_for_a_while(sim: SimulatorProcess, tmp_path: Path) -> None:
    influxd = LocalInfluxDB(tmp_path / "influxd").start()
    try:
        market = InfluxDBConfig(url=influxd.url, database="market")
        client = InfluxDB(market)
        producer = ProducerProcess(tmp_path, producer_config(market, sim, PAIRS)).start()
        producer.wait_for_log("backfill done")
        influxd.stop()
        stopped = sim.now()
        producer.wait_for_log("cannot write to InfluxDB, buffering", timeout=60)
        wait_for(lambda: sim.now() >= stopped + 12 * 60_000, 60, "12 exchange minutes of outage: four 3m closes")
        influxd.start()
        producer.wait_for_log("InfluxDB accepts writes again", timeout=60)
        stop_and_check(producer, client, sim)
        assert "cannot write to InfluxDB, buffering" in producer.text()
    finally:
        influxd.cleanup()


def test_burst_of_429s(client: InfluxDB, influx_config: InfluxDBConfig, sim: SimulatorProcess,
                       tmp_path: Path) -> None:
    sim.fault("429", 8)  # the producer's first REST requests are refused
    producer = ProducerProcess(tmp_path, producer_config(influx_config, sim,
                                                         PAIRS)).start()
    producer.wait_for_log("backfill done", timeout=90)
    stop_and_check(producer, client, sim)
    log = producer.text()
    assert "Binance rate limit hit (HTTP 429): pausing REST traffic" in log
    assert sim.stats()["counters"]["rest 429"] == 8


def test_ban_stops_all_rest_traffic_until_it_ends(client: InfluxDB, influx_config: InfluxDBConfig,
                                                  sim: SimulatorProcess, tmp_path: Path) -> None:
    sim.fault("ban", 4)
    producer = ProducerProcess(tmp_path, producer_config(influx_config, sim,
                                                         PAIRS)).start()
    producer.wait_for_log("backfill done", timeout=90)
    stop_and_check(producer, client, sim)
    assert "Binance banned this IP (HTTP 418" in producer.text()
    assert sim.stats()["counters"]["rest 418"] == 1, "after a 418 nothing is sent until the ban ends"


def test_malformed_frames_are_skipped(client: InfluxDB, influx_config: InfluxDBConfig, sim: SimulatorProcess,
                                      tmp_path: Path) -> None:
    producer = ProducerProcess(tmp_path, producer_config(influx_config, sim,
                                                         PAIRS)).start()
    producer.wait_for_log("backfill done")
    sim.fault("malformed", 8)
    wait_for(lambda: producer.text().count("malformed message on the") >= 8, 60, "8 malformed frames skipped")
    stop_and_check(producer, client, sim)
    log = producer.text()
    assert log.count("malformed message on the") >= 8
    assert "stream reconnected" not in log, "a malformed frame must not cost the connection"


def test_silent_subscription_is_detected_and_filled(client: InfluxDB, influx_config: InfluxDBConfig,
                                                    sim: SimulatorProcess, tmp_path: Path) -> None:
    # The bare futures base accepts kline subscriptions and never delivers them.
    config = producer_config(influx_config, sim, PAIRS, ws_path="")
    producer = ProducerProcess(tmp_path, config).start()
    producer.wait_for_log("backfill done")
    producer.wait_for_log("stream silent: BTC/USDT:USDT 3m", timeout=30)
    producer.wait_for_log("repaired BTC/USDT:USDT 3m over REST", timeout=60)
    stop_and_check(producer, client, sim)


def test_spot_mode(client: InfluxDB, influx_config: InfluxDBConfig, sim: SimulatorProcess, tmp_path: Path) -> None:
    """Spot: /api/v3 with pages of at most 1000 candles, spot streams, no mark price or funding."""
    pairs = ["BTC/USDT", "ETH/USDT"]
    config = producer_config(influx_config, sim, pairs, candles=1500, ws_path="/spot",
                             trading_mode="spot")
    producer = ProducerProcess(tmp_path, config).start()
    producer.wait_for_log("backfill done", timeout=90)
    # "had 1" when the 60x stream already delivered a candle newer than the window the backfill checked
    assert re.search(r"backfill BTC/USDT 3m: 1500 candles written in 2 requests \(InfluxDB had [01] of 1500\)",
                     producer.text())
    backfilled = len(stored(client, "ohlcv_3m", "BTC/USDT", "close"))
    wait_for(lambda: len(stored(client, "ohlcv_3m", "BTC/USDT", "close")) >= backfilled + 2, 60,
             "two 3m closes from the spot stream")
    run_until_complete(client, sim, pairs, futures=False)
    code, _ = producer.terminate()
    assert code == 0
    assert sim.stats()["counters"].get("rest /api/v3/klines", 0) >= 6
    assert "rest /fapi/v1/klines" not in sim.stats()["counters"]
    assert not stored(client, "mark_price", "BTC/USDT", "close")
    assert "over REST: " not in producer.text(), "the spot streams deliver every close"


def test_unknown_pairs_fail_at_start_up_listing_them(influx_config: InfluxDBConfig, sim: SimulatorProcess,
                                                     tmp_path: Path) -> None:
    config = producer_config(influx_config, sim,
                             ["BTC/USDT:USDT", "NOPE/USDT:USDT", "FAKE/USDT:USDT"])
    producer = ProducerProcess(tmp_path, config).start()
    assert producer.process is not None
    assert producer.process.wait(timeout=30) == 2
    assert "pairs not traded on Binance USDT-M perpetual" in producer.text()
    assert "NOPE/USDT:USDT, FAKE/USDT:USDT" in producer.text()


@pytest.mark.dialects(*ALL_DIALECTS)
def test_start_on_a_missing_database(influx_server: InfluxServer, sim: SimulatorProcess, tmp_path: Path) -> None:
    """1.x: the producer creates the database (360-day retention). Elsewhere it never sends a CREATE: it stops
    at once with exit status 1 and the command the operator runs, without a traceback or a wait."""
    influx_server.drop_database("not_there")
    config = producer_config(influx_server.config("not_there"), sim, PAIRS[:1], candles=30)
    producer = ProducerProcess(tmp_path, config).start()
    assert producer.process is not None
    try:
        if influx_server.name == "1.x":
            producer.wait_for_log("created InfluxDB database 'not_there' with a 360d retention policy")
            producer.wait_for_log("backfill done")
            assert producer.terminate()[0] == 0
            return
        code = producer.process.wait(timeout=30)
    finally:
        if producer.process.poll() is None:
            producer.kill()
        influx_server.drop_database("not_there")
    log = producer.text()
    assert code == 1, log
    assert "Traceback" not in log
    command = ("influx bucket create --name not_there --retention 360d" if influx_server.name == "2.7"
               else "influxdb3 create database --retention-period 360d not_there")
    assert command in log
    assert influx_server.dialect is not None
    assert not any("CREATE" in q.upper() for q in influx_server.dialect.dialect.queries)


@pytest.mark.dialects("3.6-core")
def test_retention_policy_on_3x_is_a_config_error(influx_config: InfluxDBConfig, sim: SimulatorProcess,
                                                  tmp_path: Path) -> None:
    config = producer_config(influx_config, sim, PAIRS[:1], influxdb={"retention_policy": "rp360"})
    producer = ProducerProcess(tmp_path, config).start()
    assert producer.process is not None
    code = producer.process.wait(timeout=30)
    log = producer.text()
    assert code == 2, log
    assert "influxdb.retention_policy: 'rp360' cannot be used with InfluxDB 3 Core 3.6.0" in log
    assert "Traceback" not in log
