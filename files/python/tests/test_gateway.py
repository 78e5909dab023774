"""`freqfeed serve` end to end: simulator + producer + gateway as processes, a real influxd, and ccxt (the
library freqtrade uses, from freqtrade's venv) as the client, through the docs' config snippet (docs/gateway.md).

The simulator runs on the real clock here: its candle in progress changes only when a minute starts, so
an answer through the gateway and one straight from the simulator a moment later are byte for byte
comparable, the last row included (mark candles: see test_mark_candles).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from freqfeed.config import InfluxDBConfig
from freqfeed.localinflux import LocalInfluxDB

from .processes import (
    GatewayProcess,
    ProducerProcess,
    SimulatorProcess,
    client_stats,
    gateway_config,
    kline_pages,
    producer_config,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.dialects("1.x")]

PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
TIMEFRAMES = ["1m", "3m"]
GATEWAY_DOC = Path(__file__).resolve().parents[3] / "docs" / "gateway.md"
GATEWAY_AGENT = "freqfeed-gateway/"


def readme_ccxt_config(gateway_url: str) -> dict[str, Any]:
    """docs/gateway.md's freqtrade snippet, as written, with the test gateway's address."""
    text = GATEWAY_DOC.read_text()
    block = re.search(r"<!-- freqtrade-futures-config -->\s*```json\n(.*?)```", text, re.S)
    assert block, f"{GATEWAY_DOC} has no freqtrade-futures-config block"
    snippet = json.loads(block.group(1).replace("http://127.0.0.1:8091", gateway_url))
    config: dict[str, Any] = snippet["exchange"]["ccxt_config"]
    return config


def direct_ccxt_config(sim_url: str) -> dict[str, Any]:
    return {"options": {"fetchMarkets": {"types": ["linear"]}},
            "urls": {"api": {"fapiPublic": f"{sim_url}/fapi/v1", "fapiPublicV2": f"{sim_url}/fapi/v2"}},
            "userAgent": "test-direct"}


def ccxt_calls(config: dict[str, Any], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    python = os.environ.get("FREQFEED_FREQTRADE_PYTHON")
    if not python:
        pytest.skip("FREQFEED_FREQTRADE_PYTHON is not set (make unit sets it)")
    result = subprocess.run([python, str(Path(__file__).with_name("ccxt_runner.py")), json.dumps(config)],
                            input="\n".join(json.dumps(c) for c in calls), capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


@dataclass
class Fleet:
    influx: InfluxDBConfig
    sim: SimulatorProcess
    producer: ProducerProcess
    gateway: GatewayProcess


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, influxd: LocalInfluxDB) -> Iterator[Fleet]:
    work = tmp_path_factory.mktemp("gateway")
    requests.post(f"{influxd.url}/query", data={"q": 'CREATE DATABASE "gw" WITH DURATION 360d'}, timeout=10)
    influx = InfluxDBConfig(url=influxd.url, database="gw")
    sim = SimulatorProcess(work, speed=1, seed=5)
    producer = ProducerProcess(work, producer_config(influx, sim, PAIRS, candles=1500, timeframes=TIMEFRAMES))
    producer.start()
    gateway = None
    try:
        producer.wait_for_log("backfill done", timeout=120)
        gateway = GatewayProcess(work, gateway_config(influx, sim, PAIRS, TIMEFRAMES,
                                                      gateway={"state_dir": str(work / "gateway-state")})).start()
        yield Fleet(influx, sim, producer, gateway)
    finally:
        if gateway is not None and gateway.process is not None and gateway.process.poll() is None:
            gateway.terminate()
        producer.terminate()
        sim.stop()


def away_from_minute_boundary(margin_s: float = 3.0) -> None:
    """Sleep until at least `margin_s` seconds remain in the current minute (and as many have passed)."""
    second = time.time() % 60
    if second < margin_s:
        time.sleep(margin_s - second)
    elif second > 60 - margin_s - 12:
        time.sleep(60 - second + margin_s)


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------------------------------


def test_ccxt_gets_identical_answers_through_the_gateway(fleet: Fleet) -> None:
    minute = 60_000
    now = now_ms()
    cases: list[dict[str, Any]] = [{"call": "load_markets"}]
    for symbol in ("BTC/USDT:USDT", "ETH/USDT:USDT"):
        for tf, period in (("1m", minute), ("3m", 3 * minute)):
            for limit in (1, 499, 1000, 1500):
                for since in (None, now - 3000 * period, now - 300 * period, now + 10 * period):
                    cases.append({"call": "fetch_ohlcv", "args": [symbol, tf, since, limit]})
        cases.append({"call": "fetch_ohlcv", "args": [symbol, "1m", now - 200 * minute, 100],
                      "params": {"until": now - 150 * minute}})
        cases.append({"call": "fetch_ohlcv", "args": [symbol, "1m", None, 499], "params": {"endTime": now - 5000}})
    through, direct = compare_runs(fleet, cases)
    for case, a, b in zip(cases, through, direct, strict=True):
        assert a.get("ok") == b.get("ok") and a.get("error") == b.get("error"), f"{case}: {a} != {b}"
    assert any(len(a.get("ok") or []) == 1000 for a in through), "limits up to ccxt's 1000 were asked"
    status = fleet.gateway.status()
    assert status["local"] > 0
    assert status["forward_reasons"].get("retention", 0) + status["forward_reasons"].get("does not hold", 0) > 0, \
        "windows before InfluxDB's history went to Binance"


def minute_of(ms: int) -> int:
    return ms // 60_000


def compare_runs(fleet: Fleet, cases: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The cases through the gateway and straight from the simulator. The candle in progress changes when a
    minute starts: a case whose two calls fell into different minutes is asked again, both ways."""
    away_from_minute_boundary()
    through = ccxt_calls(readme_ccxt_config(fleet.gateway.url), cases)
    direct = ccxt_calls(direct_ccxt_config(fleet.sim.url), cases)
    again = [i for i, (a, b) in enumerate(zip(through, direct, strict=True))
             if a != b and minute_of(a["at"]) != minute_of(b["at"])]
    if again:
        away_from_minute_boundary()
        retried = ccxt_calls(readme_ccxt_config(fleet.gateway.url), [cases[i] for i in again])
        retried_direct = ccxt_calls(direct_ccxt_config(fleet.sim.url), [cases[i] for i in again])
        for i, a, b in zip(again, retried, retried_direct, strict=True):
            through[i], direct[i] = a, b
    return through, direct


def test_mark_candles_and_funding_rates(fleet: Fleet) -> None:
    hour = 3_600_000
    now = now_ms()
    cases: list[dict[str, Any]] = []
    for symbol in PAIRS:
        for limit in (1, 499, 1000):
            for since in (None, now - 3000 * hour, now - 300 * hour, now + 2 * hour):
                cases.append({"call": "fetch_ohlcv", "args": [symbol, "1h", since, limit],
                              "params": {"price": "mark"}})
        for limit in (None, 1, 100, 1000):
            for since in (None, now - 100 * 86_400_000, now - 20 * 86_400_000, now + 86_400_000):
                cases.append({"call": "fetch_funding_rate_history", "args": [symbol, since, limit]})
    through, direct = compare_runs(fleet, cases)
    for case, a, b in zip(cases, through, direct, strict=True):
        mine, theirs = a.get("ok"), b.get("ok")
        if case["call"] == "fetch_ohlcv" and mine and theirs and mine[-1][0] > now - hour:
            # The 1h mark candle in progress starts from Binance's own and follows the markPrice stream, so
            # its open time and open are Binance's; its high, low and close are those of the mark prices
            # streamed since (the simulator's REST aggregate also spans the minute not yet over).
            assert mine[-1][:2] == theirs[-1][:2], f"{case}: candle in progress"
            mine, theirs = mine[:-1], theirs[:-1]
        assert mine == theirs and a.get("error") == b.get("error"), f"{case}: {a} != {b}"


def test_requests_right_at_a_close_get_the_candle_that_just_closed(fleet: Fleet) -> None:
    """At each close the bot asks at once: the answer holds the candle that just closed (waiting for it if
    the producer has not written it yet), and the new candle in progress last."""
    seconds = time.time() % 60
    time.sleep(60 - seconds + 0.01)  # right after the close
    boundary = (now_ms() // 60_000) * 60_000
    answers = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(lambda delay=d: (time.sleep(delay), requests.get(
            f"{fleet.gateway.url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 3},
            timeout=10))[1]) for d in (0.0, 0.05, 0.3, 1.0)]
        answers = [f.result() for f in futures]
    truth = requests.get(f"{fleet.sim.url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m",
                                                                    "limit": 3}, timeout=10).json()
    for answer in answers:
        assert answer.status_code == 200, answer.text
        rows = answer.json()
        assert [row[0] for row in rows] == [boundary - 120_000, boundary - 60_000, boundary]
        assert rows == truth, "closed candles and the candle in progress equal the exchange's"


def test_bot_polling_sends_no_kline_request_to_the_exchange(fleet: Fleet) -> None:
    before = client_stats(fleet.sim, GATEWAY_AGENT)["requests"]
    for _ in range(3):
        for symbol in ("BTCUSDT", "ETHUSDT"):
            for interval in TIMEFRAMES:
                answer = requests.get(f"{fleet.gateway.url}/fapi/v1/klines",
                                      params={"symbol": symbol, "interval": interval, "limit": 499}, timeout=10)
                assert answer.status_code == 200 and len(answer.json()) == 499
            day_ago = now_ms() - 86_400_000
            for path, extra in (("markPriceKlines", {"interval": "1h", "limit": 499}),
                                ("fundingRate", {"limit": 1000})):
                query = {"symbol": symbol, "startTime": day_ago, **extra}
                mine = requests.get(f"{fleet.gateway.url}/fapi/v1/{path}", params=query, timeout=10)
                theirs = requests.get(f"{fleet.sim.url}/fapi/v1/{path}", params=query, timeout=10)
                assert mine.status_code == 200 and len(mine.json()) == len(theirs.json()) > 0
    after = client_stats(fleet.sim, GATEWAY_AGENT)["requests"]
    for path in ("/fapi/v1/klines", "/fapi/v1/markPriceKlines", "/fapi/v1/fundingRate"):
        assert after.get(path, 0) == before.get(path, 0), f"{path} reached the exchange"


def test_bad_requests_get_binances_errors(fleet: Fleet) -> None:
    cases = [
        ({"symbol": "NOPEUSDT", "interval": "1m"}, -1121),
        ({"interval": "1m"}, -1102),
        ({"symbol": "BTCUSDT"}, -1102),
        ({"symbol": "BTCUSDT", "interval": "2m"}, -1120),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "1501"}, -1130),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "0"}, -1130),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "abc"}, -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "5", "endTime": "4"}, -1023),
    ]
    for params, code in cases:
        mine = requests.get(f"{fleet.gateway.url}/fapi/v1/klines", params=params, timeout=10)
        theirs = requests.get(f"{fleet.sim.url}/fapi/v1/klines", params=params, timeout=10)
        assert (mine.status_code, mine.json()) == (theirs.status_code, theirs.json()), params
        assert mine.status_code == 400 and mine.json()["code"] == code, params
    funding = requests.get(f"{fleet.gateway.url}/fapi/v1/fundingRate", params={"symbol": "NOPEUSDT"}, timeout=10)
    assert funding.status_code == 400 and funding.json()["code"] == -1121


def test_private_and_signed_requests_are_refused(fleet: Fleet) -> None:
    before = fleet.sim.stats()["counters"].get("rest requests", 0)
    for path, params, headers in (("/fapi/v1/account", {}, {}), ("/fapi/v2/balance", {}, {}),
                                  ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "signature": "x"}, {}),
                                  ("/fapi/v1/depth", {"symbol": "BTCUSDT"}, {"X-MBX-APIKEY": "key"})):
        answer = requests.get(f"{fleet.gateway.url}{path}", params=params, headers=headers, timeout=10)
        assert answer.status_code == 403, path
        assert answer.json()["code"] == -2015 and "public URL keys" in answer.json()["msg"]
    assert requests.post(f"{fleet.gateway.url}/fapi/v1/order", timeout=10).status_code == 405
    assert requests.get(f"{fleet.gateway.url}/api/v3/klines", timeout=10).status_code == 404
    assert fleet.sim.stats()["counters"].get("rest requests", 0) == before, "nothing refused reached the exchange"
    # ccxt with its private keys pointed here (the mistake the message is for): a clear refusal
    config = readme_ccxt_config(fleet.gateway.url)
    config["urls"]["api"]["fapiPrivate"] = f"{fleet.gateway.url}/fapi/v1"
    config.update({"apiKey": "k", "secret": "s"})
    config["options"]["fetchCurrencies"] = False  # (with keys, ccxt would first ask Binance's sapi for currencies)
    [answer] = ccxt_calls(config, [{"call": "fetch_open_orders", "args": ["BTC/USDT:USDT"]}])
    assert "public URL keys" in answer["error"]


def test_forwarded_requests_are_cached_and_coalesced(fleet: Fleet) -> None:
    """ticker/24hr is forwarded: 20 bots asking at once cost one request, and one more per TTL."""
    before = client_stats(fleet.sim, GATEWAY_AGENT)["requests"].get("/fapi/v1/ticker/24hr", 0)

    def ticker(_: int) -> dict[str, Any]:
        answer = requests.get(f"{fleet.gateway.url}/fapi/v1/ticker/24hr", params={"symbol": "ETHUSDT"}, timeout=10)
        assert answer.status_code == 200
        assert "X-MBX-USED-WEIGHT-1M" in answer.headers, "Binance's weight header passes through"
        return dict(answer.json())

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(ticker, range(20)))
    assert all(a == answers[0] for a in answers)
    sent = client_stats(fleet.sim, GATEWAY_AGENT)["requests"].get("/fapi/v1/ticker/24hr", 0) - before
    assert sent == 1, f"20 bots asking at once cost {sent} upstream requests"
    # from the cache until the ticker's TTL (2 s) has passed, then asked again, once
    wait_for(lambda: ticker(0) and client_stats(fleet.sim, GATEWAY_AGENT)["requests"].get("/fapi/v1/ticker/24hr", 0)
             > before + 1, 20, "the ticker asked again after its TTL")
    assert client_stats(fleet.sim, GATEWAY_AGENT)["requests"].get("/fapi/v1/ticker/24hr", 0) - before == 2
    status = fleet.gateway.status()
    assert status["cache_hits"] + status["coalesced"] >= 19


# -- faults: each on a fleet of its own (60x clock) ---------------------------------------------------------


@pytest.fixture
def own(tmp_path: Path) -> Iterator[tuple[LocalInfluxDB, SimulatorProcess, ProducerProcess, GatewayProcess]]:
    influxd = LocalInfluxDB(tmp_path / "influxd").start()
    requests.post(f"{influxd.url}/query", data={"q": 'CREATE DATABASE "gw" WITH DURATION 360d'}, timeout=10)
    influx = InfluxDBConfig(url=influxd.url, database="gw")
    sim = SimulatorProcess(tmp_path, speed=60, seed=9)
    producer = ProducerProcess(tmp_path, producer_config(influx, sim, PAIRS[:1], candles=200, timeframes=["15m", "1h"]))
    producer.start()
    producer.wait_for_log("backfill done", timeout=120)
    gateway = GatewayProcess(tmp_path, gateway_config(influx, sim, PAIRS[:1], ["15m", "1h"], gateway={
        "live_max_age": 3, "close_wait": 2, "max_wait": 1})).start()
    try:
        yield influxd, sim, producer, gateway
    finally:
        sim.stop()
        influxd.cleanup()


def klines(gateway: GatewayProcess, **params: Any) -> requests.Response:
    return requests.get(f"{gateway.url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "15m", "limit": 5,
                                                                "startTime": None, **params}, timeout=20)


def test_influxdb_down_sends_bots_to_the_exchange(own: tuple[LocalInfluxDB, SimulatorProcess, ProducerProcess,
                                                               GatewayProcess]) -> None:
    influxd, sim, _, gateway = own
    assert klines(gateway).status_code == 200
    local_before = gateway.status()["local"]
    influxd.stop()
    wait_for(lambda: not gateway.status()["influxdb_ok"], 20, "the gateway to notice InfluxDB is down")

    def forwarded() -> requests.Response | None:
        before = gateway.status()["forwarded"]
        answer = klines(gateway)
        return answer if gateway.status()["forwarded"] > before else None

    # answered from what it holds while current (live_max_age, 3 s), then from the exchange
    answer = wait_for(forwarded, 20, "a request forwarded")
    local_before = gateway.status()["local"]
    assert answer.status_code == 200
    assert klines(gateway).status_code == 200
    rows = answer.json()
    truth = requests.get(f"{sim.url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "15m", "limit": 5},
                         timeout=10).json()
    assert [r[0] for r in rows] == [r[0] for r in truth] and rows[:-1] == truth[:-1]
    status = gateway.status()
    assert status["influxdb_error"] and status["forwarded"] >= 1 and status["local"] == local_before
    influxd.start()
    wait_for(lambda: gateway.status()["influxdb_ok"], 30, "the gateway to read InfluxDB again")
    wait_for(lambda: klines(gateway).status_code == 200 and gateway.status()["local"] > local_before, 30,
             "answers from InfluxDB again")


def test_producer_stopped_no_stale_candle_is_served_as_current(
        own: tuple[LocalInfluxDB, SimulatorProcess, ProducerProcess, GatewayProcess]) -> None:
    _, sim, producer, gateway = own
    assert klines(gateway).status_code == 200
    producer.terminate()

    def forwarded() -> tuple[dict[str, Any], requests.Response] | None:
        before = gateway.status()
        answer = klines(gateway)
        return (before, answer) if gateway.status()["forwarded"] > before["forwarded"] else None

    # the candle in progress is no longer updated: once older than live_max_age (3 s), it is not served
    before, answer = wait_for(forwarded, 30, "a request forwarded")
    assert answer.status_code == 200
    truth = requests.get(f"{sim.url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "15m", "limit": 5},
                         timeout=10).json()
    assert answer.json()[-1][0] == truth[-1][0], "the current candle, from the exchange"
    assert gateway.status()["forwarded"] == before["forwarded"] + 1
    # why depends on where the 60x clock stands: the candle in progress is stale ("no current"), or one
    # closed while the producer was down and the close wait ran out ("after"), or more than one did ("newest")
    reasons, earlier = gateway.status()["forward_reasons"], before["forward_reasons"]
    assert sum(reasons.get(kind, 0) - earlier.get(kind, 0) for kind in ("no current", "after", "newest")) == 1, \
        reasons
    # a window entirely in the past is still answered from InfluxDB
    past = klines(gateway, endTime=sim.now() - 6 * 3_600_000)
    assert past.status_code == 200 and len(past.json()) == 5


def test_429_and_418_on_forwarded_calls_are_never_amplified(
        own: tuple[LocalInfluxDB, SimulatorProcess, ProducerProcess, GatewayProcess]) -> None:
    _, sim, _, gateway = own
    symbols = iter(list(sim.market.instruments)[:40])  # a new symbol each time: no answer comes from the cache

    def premium(symbol: str | None = None) -> requests.Response:
        return requests.get(f"{gateway.url}/fapi/v1/premiumIndex", params={"symbol": symbol or next(symbols)},
                            timeout=10)

    def sent() -> int:
        return client_stats(sim, GATEWAY_AGENT)["requests"].get("/fapi/v1/premiumIndex", 0)

    sim.fault("429", 1)
    before = sent()
    first = premium()
    assert first.status_code == 429 and "Retry-After" in first.headers, "Binance's 429 passes through"
    retry_after = int(first.headers["Retry-After"])
    for _ in range(10):
        again = premium()
        assert again.status_code == 429 and int(again.headers["Retry-After"]) <= retry_after
    assert sent() == before + 1, "while paused, nothing more went to the exchange"

    def asked(symbol: str, count: int) -> requests.Response | None:
        """The first answer that reached the exchange again (the pause answered locally until then)."""
        answer = premium(symbol)
        return answer if sent() > count else None

    assert wait_for(lambda: asked("BTCUSDT", before + 1), retry_after + 30, "the pause over").status_code == 200
    sim.fault("ban", 3)
    before = sent()
    banned = premium()
    assert banned.status_code == 418 and "Retry-After" in banned.headers, "Binance's 418 passes through"
    for _ in range(10):
        assert premium().status_code == 418
    assert sent() == before + 1, "while banned, nothing more went to the exchange"
    ban = int(banned.headers["Retry-After"])
    assert wait_for(lambda: asked("ETHUSDT", before + 1), ban + 30, "the ban over").status_code == 200


# -- freqtrade download-data --------------------------------------------------------------------------------


def download(fleet: Fleet, userdir: Path, ccxt_config: dict[str, Any],
             timerange: str) -> subprocess.CompletedProcess[str]:
    python = os.environ.get("FREQFEED_FREQTRADE_PYTHON")
    if not python:
        pytest.skip("FREQFEED_FREQTRADE_PYTHON is not set (make unit sets it)")
    config = {"trading_mode": "futures", "margin_mode": "isolated", "stake_currency": "USDT", "dry_run": True,
              "exchange": {"name": "binance", "only_from_ccxt": True, "ccxt_config": ccxt_config,
                           "pair_whitelist": PAIRS}}
    userdir.mkdir(parents=True, exist_ok=True)
    path = userdir / "config.json"
    path.write_text(json.dumps(config))
    freqtrade = str(Path(python).with_name("freqtrade"))
    return subprocess.run([freqtrade, "download-data", "--userdir", str(userdir), "-c", str(path), "--timerange",
                           timerange, "-t", *TIMEFRAMES], capture_output=True, text=True, timeout=300, check=False)


def data_files(userdir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((userdir / "data" / "binance" / "futures").glob("*.feather"))}


def sync_into(fleet: Fleet, userdir: Path) -> None:
    """The feeder's own sync fills the data directory first, as on a feeder."""
    from freqfeed import config as config_module
    from freqfeed import sync

    for sub in ("data", "strategies"):
        (userdir / sub).mkdir(parents=True, exist_ok=True)
    cfg = config_module.from_mapping({"influxdb": {"url": fleet.influx.url, "database": fleet.influx.database},
                                      "pairs": PAIRS, "timeframes": TIMEFRAMES, "trading_mode": "futures",
                                      "sync": {"datadir": str(userdir / "data" / "binance")}}, "test")
    assert sync.run(cfg).ok


@pytest.mark.freqtrade
@pytest.mark.parametrize("start", ["synced", "empty"])
def test_download_data_through_the_gateway_writes_the_same_files(fleet: Fleet, tmp_path: Path, start: str) -> None:
    """`freqtrade download-data` (futures: candles, mark, funding) through the gateway writes the same files as
    a download straight from the exchange. Into a feeder's synced data directory, no candle, mark or funding
    request reaches the exchange; into an empty one, only freqtrade's "new pair" probe does (`startTime=0`:
    the listing date, which 360 days of InfluxDB cannot answer), once per series and only the first time
    (then it is kept: test_second_download_into_an_empty_datadir_costs_the_exchange_nothing)."""
    timerange = f"{int(time.time() - 20 * 3600)}-"  # inside InfluxDB's history (1500 1m candles: 25 h)
    for attempt in range(3):
        direct, through = tmp_path / f"direct{attempt}", tmp_path / f"through{attempt}"
        if start == "synced":
            sync_into(fleet, direct)
            sync_into(fleet, through)
        away_from_minute_boundary(5)
        minute = minute_of(now_ms())
        before = client_stats(fleet.sim, GATEWAY_AGENT)["requests"]
        a = download(fleet, direct, direct_ccxt_config(fleet.sim.url), timerange)
        b = download(fleet, through, readme_ccxt_config(fleet.gateway.url), timerange)
        after = client_stats(fleet.sim, GATEWAY_AGENT)["requests"]
        assert a.returncode == 0 and b.returncode == 0, (a.stderr[-2000:], b.stderr[-2000:])
        if minute_of(now_ms()) == minute:
            break  # both in the same minute: the same candles had closed
    files = data_files(through)
    assert set(files) == {f"{p.split('/')[0]}_USDT_USDT-{tf}-{kind}.feather" for p in PAIRS
                          for tf, kind in [*((t, "futures") for t in TIMEFRAMES), ("1h", "mark"),
                                           ("1h", "funding_rate")]}
    assert files == data_files(direct), "the same files, byte for byte"
    sent = {path: after.get(path, 0) - before.get(path, 0) for path in
            ("/fapi/v1/klines", "/fapi/v1/markPriceKlines", "/fapi/v1/fundingRate")}
    if start == "synced":
        assert sent == {"/fapi/v1/klines": 0, "/fapi/v1/markPriceKlines": 0, "/fapi/v1/fundingRate": 0}
    else:
        reasons = fleet.gateway.status()["forward_reasons"]
        assert sent["/fapi/v1/klines"] <= len(PAIRS) * len(TIMEFRAMES) and \
            sent["/fapi/v1/markPriceKlines"] <= len(PAIRS) and sent["/fapi/v1/fundingRate"] == 0, \
            f"only the new-pair probes, if not kept yet: {reasons}"


@pytest.mark.freqtrade
def test_second_download_into_an_empty_datadir_costs_the_exchange_nothing(fleet: Fleet, tmp_path: Path) -> None:
    """The listing-date probes are immutable: kept by the gateway (in its state directory, across restarts),
    a second download-data into an empty data directory sends no market-data request upstream at all."""
    timerange = f"{int(time.time() - 20 * 3600)}-"
    market_data = ("/fapi/v1/klines", "/fapi/v1/markPriceKlines", "/fapi/v1/fundingRate")
    first = download(fleet, tmp_path / "first", readme_ccxt_config(fleet.gateway.url), timerange)
    assert first.returncode == 0, first.stderr[-2000:]
    since = fleet.sim.now()
    before = client_stats(fleet.sim, GATEWAY_AGENT)["requests"]
    second = download(fleet, tmp_path / "second", readme_ccxt_config(fleet.gateway.url), timerange)
    assert second.returncode == 0, second.stderr[-2000:]
    after = client_stats(fleet.sim, GATEWAY_AGENT)["requests"]
    assert {p: after.get(p, 0) - before.get(p, 0) for p in market_data} == dict.fromkeys(market_data, 0)
    upstream = [r for r in fleet.sim.requests() if r["t"] >= since and r["path"] in market_data
                and str(r.get("agent", "")).startswith(GATEWAY_AGENT)]
    assert kline_pages(upstream) == [] and upstream == []
    assert set(data_files(tmp_path / "second")) == set(data_files(tmp_path / "first"))
    permanent = fleet.gateway.status()["permanent"]
    assert permanent["enabled"] and permanent["answers"] >= len(PAIRS) * (len(TIMEFRAMES) + 1) and permanent["hits"]


def test_limit_1500_is_answered_from_memory(fleet: Fleet) -> None:
    """freqtrade's start-up downloads ask limit=1500: the cache is that deep (the producer keeps 1500)."""
    before = fleet.gateway.status()["by_endpoint"]
    for path, params in (("klines", {"symbol": "BTCUSDT", "interval": "1m"}),
                         ("klines", {"symbol": "ETHUSDT", "interval": "3m"}),
                         ("markPriceKlines", {"symbol": "BTCUSDT", "interval": "1h"})):
        answer = requests.get(f"{fleet.gateway.url}/fapi/v1/{path}", params={**params, "limit": 1500}, timeout=10)
        assert answer.status_code == 200 and len(answer.json()) == 1500
    after = fleet.gateway.status()["by_endpoint"]
    for endpoint in ("klines", "markPriceKlines"):
        assert after[endpoint].get("forwarded", 0) == before.get(endpoint, {}).get("forwarded", 0), after
        assert after[endpoint]["local"] > before.get(endpoint, {}).get("local", 0)


def test_status_shows_the_gateway(fleet: Fleet, tmp_path: Path) -> None:
    from freqfeed import config as config_module
    from freqfeed import status
    from freqfeed.localinflux import free_port

    sync_into(fleet, tmp_path)
    raw = {"influxdb": {"url": fleet.influx.url, "database": fleet.influx.database}, "pairs": PAIRS,
           "timeframes": TIMEFRAMES, "sync": {"datadir": str(tmp_path / "data" / "binance")},
           "gateway": {"listen": fleet.gateway.config["gateway"]["listen"]}}
    requests.get(f"{fleet.gateway.url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m"}, timeout=10)
    result = status.collect(config_module.from_mapping(raw, "test"))
    assert result.gateway is not None and result.gateway["up"] and result.gateway["local"] > 0
    assert "gateway" in status.render("host120", result) and "answered here" in status.render("host120", result)
    down = status.collect(config_module.from_mapping({**raw, "gateway": {"listen": f"127.0.0.1:{free_port()}"}},
                                                     "test"))
    assert not down.healthy and any("gateway not answering" in p for p in down.problems)
