"""`freqfeed serve` on Hyperliquid: ccxt's `hyperliquid` (freqtrade's venv) through the gateway answers as the
simulator does directly, while candleSnapshot and fundingHistory come from InfluxDB and l2Book from the
gateway's own subscriptions (0 reach the exchange),
public types are shared (N concurrent identical requests: one upstream) and user types are forwarded alone.

One module fixture: the simulator in real time (its horizons stay put while ccxt asks), a producer that has
backfilled BTC and kPEPE (1m: the whole 5000-candle horizon; 1h and funding: 1300 hours) and streams, and
the gateway in front of both.
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
import yaml
from prometheus_client.parser import text_string_to_metric_families

from freqfeed import schema
from freqfeed.exchanges.hyperliquid import admission, wire
from freqfeed.localinflux import LocalInfluxDB, free_port
from freqfeed.timeframes import candle_open

from .conftest import InfluxServer
from .helpers import influx_section
from .hyperliquid_bots import docs_exchange_section
from .processes import GatewayProcess, HyperliquidSim, ProducerProcess, wait_for
from .test_hyperliquid_sim import run_ccxt

pytestmark = [pytest.mark.integration]

PAIRS = ["BTC/USDC:USDC", "KPEPE/USDC:USDC"]
TIMEFRAMES = ["1m", "1h"]
MINUTE, HOUR = 60_000, 3_600_000
HOURS = 1300  # backfill of 1h candles and funding: enough for freqtrade's funding pages, cheap in weight
AGENT = "freqfeed-gateway"


@dataclass
class Fleet:
    sim: HyperliquidSim
    producer: ProducerProcess
    gateway: GatewayProcess
    influx: InfluxServer
    database: str

    def first_recorded(self, measurement: str, field: str, pair: str) -> int:
        """The oldest point of a series in InfluxDB (ms)."""
        answer = self.influx.raw(f"SELECT first({field}) FROM \"{measurement}\" WHERE pair = '{pair}'", self.database)
        return int(answer["results"][0]["series"][0]["values"][0][0])

    def weight_this_minute(self) -> int:
        minute = str(self.sim.now() // MINUTE)
        return sum(per.get(minute, 0) for per in self.sim.stats()["weight_by_minute"].values())

    def upstream(self) -> dict[str, int]:
        """The requests per type the simulator answered to the gateway."""
        return dict(self.sim.stats()["by_client"].get(AGENT, {}).get("requests", {}))

    def metrics(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        """The gateway's /metrics: family -> labels -> value (freqfeed's families only)."""
        text = requests.get(f"http://{self.gateway.config['gateway']['metrics_listen']}/metrics", timeout=10).text
        return {f.name: {tuple(sorted(s.labels.items())): s.value for s in f.samples if s.name.endswith(
            ("_total", "_count", "_bucket")) or s.name == f.name} for f in text_string_to_metric_families(text)
            if f.name.startswith("freqfeed_")}

    def post(self, body: Any, **kwargs: Any) -> requests.Response:
        return requests.post(f"{self.gateway.url}/info", json=body, timeout=30, **kwargs)


def live_candles(influx: InfluxServer, database: str) -> bool:
    answer = influx.raw("SELECT count(close) FROM live_candle GROUP BY pair, timeframe", database)
    return len(answer["results"][0].get("series") or []) == len(PAIRS) * len(TIMEFRAMES)


@pytest.fixture(scope="module")
def fleet(influxd: LocalInfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("hl-gateway")
    influx = InfluxServer.in_front_of(influxd, "1.x")
    database = "t_hyperliquid_gateway"
    influx.create_database(database)
    sim = HyperliquidSim(tmp, speed=1)
    common: dict[str, Any] = {
        "influxdb": influx_section(influx.config(database)),
        "exchange": {"name": "hyperliquid", "rest_url": sim.url, "ws_url": sim.ws_url},
        "pairs": PAIRS, "timeframes": TIMEFRAMES, "log_level": "INFO",
    }
    producer = ProducerProcess(tmp, {**common, "backfill": {"candles": HOURS},
                                     "history": {"1m": 3.5},  # 5040 candles: the whole horizon of 1m
                                     "producer": {"health_file": str(tmp / "health.json")},
                                     "sync": {"datadir": str(tmp / "data")}}).start()
    producer.wait_for_log("backfill done", timeout=150)
    wait_for(lambda: live_candles(influx, database), 60, "the producer's candles in progress")
    # the simulator pushes a quiet candle once an exchange minute: a live candle is current that long
    gateway = GatewayProcess(tmp, {**common, "gateway": {"listen": f"127.0.0.1:{free_port()}",
                                                         "metrics_listen": f"127.0.0.1:{free_port()}",
                                                         "ws_url": sim.ws_url, "live_max_age": 70}}).start()
    wait_for(lambda: (gateway.status()["books"] or {}).get("held") == len(PAIRS), 30, "the gateway's books")
    yield Fleet(sim, producer, gateway, influx, database)
    gateway.terminate()
    producer.terminate()
    sim.stop()
    influx.drop_database(database)


def ccxt_calls(now: int) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = [{"call": "load_markets"},
                                   {"call": "fetch_ohlcv", "args": ["BTC/USDC:USDC", "1m"]}]  # the whole horizon
    for symbol in PAIRS:
        for interval in TIMEFRAMES:
            period = wire.interval_ms(interval)
            current = candle_open(now, interval)
            calls += [{"call": "fetch_ohlcv", "args": [symbol, interval, None, 10]},
                      {"call": "fetch_ohlcv", "args": [symbol, interval, current - 50 * period]},  # to the present
                      {"call": "fetch_ohlcv", "args": [symbol, interval, current - 30 * period, 5]}]  # closed only
        calls.append({"call": "fetch_ohlcv", "args": [symbol, "1m", wire.horizon_first_open(now, "1m") - 10 * MINUTE,
                                                      100]})  # before the horizon: cut there, as the exchange does
    since = candle_open(now, "1h") - 1200 * HOUR
    calls += [{"call": "fetch_funding_rate_history", "args": ["BTC/USDC:USDC", since]},
              {"call": "fetch_funding_rate_history", "args": ["KPEPE/USDC:USDC", since + 500 * HOUR + 1],
               "params": {"until": since + 900 * HOUR}}]
    return calls


def test_ccxt_through_the_gateway_equals_the_exchange(fleet: Fleet) -> None:
    before = fleet.upstream()
    used = fleet.sim.now() // MINUTE  # the backfill's minute: its weight and the runs' would pass 1200 per IP

    def fresh_minute() -> bool:
        now = fleet.sim.now()
        return now // MINUTE > used and 5_000 <= now % MINUTE <= 30_000

    # at a close: a request in the first moments of a minute waits (gateway.close_wait) for the candle that just
    # closed and the new one in progress, and is answered from InfluxDB
    wait_for(lambda: fleet.sim.now() // MINUTE > used, 70, "a close", interval=0.05)
    close = fleet.sim.now()
    at_close = fleet.post(wire.candle_snapshot_body("BTC", "1m", close - 10 * MINUTE, close))
    assert at_close.status_code == 200
    rows = at_close.json()
    assert [r["t"] for r in rows] == list(range(candle_open(close, "1m") - 10 * MINUTE, close + 1, MINUTE))
    assert rows[:-1] == [fleet.sim.market.final_candle("BTC", "1m", r["t"]) for r in rows[:-1]]
    used = close // MINUTE - 1  # the close request cost no weight: this minute is fresh for the ccxt runs

    for _attempt in range(3):  # both runs inside one exchange minute: the horizon and current candles the same
        wait_for(fresh_minute, 130, "the start of a new exchange minute")
        started = fleet.sim.now()
        used = started // MINUTE
        calls = ccxt_calls(started)
        direct = run_ccxt(fleet.sim.url, calls)
        through = run_ccxt(fleet.gateway.url, calls)
        if fleet.sim.now() // MINUTE == started // MINUTE:
            break
    else:
        pytest.fail("ccxt's two runs never fitted in one exchange minute")
    assert not [a for a in direct + through if "error" in a], (direct, through)
    for call, a, b in zip(calls, direct, through, strict=True):
        assert a["ok"] == b["ok"], call
    horizon = through[1]["ok"]
    assert len(horizon) == wire.CANDLE_HORIZON
    first = wire.horizon_first_open(started, "1m")
    cut = [b["ok"] for c, b in zip(calls, through, strict=True) if c["call"] == "fetch_ohlcv" and len(c["args"]) > 2
           and c["args"][2] is not None and c["args"][2] < first]
    assert len(cut) == len(PAIRS) and all(rows[0][0] == first and len(rows) == 100 for rows in cut)
    funding = through[-2]["ok"]
    assert len(funding) == wire.FUNDING_PAGE and through[-1]["ok"]  # one page at most, and the next from it

    after = fleet.upstream()
    assert after.get("candleSnapshot", 0) == before.get("candleSnapshot", 0) == 0
    assert after.get("fundingHistory", 0) == before.get("fundingHistory", 0) == 0
    status = fleet.gateway.status()
    assert status["by_type"]["candleSnapshot"]["local"] >= len(calls) - 3
    assert not status["forward_reasons"], status["forward_reasons"]

    # books: from the gateway's l2Book subscriptions (never older than book_max_age), equal to the exchange's
    # book at their time; none asked of the exchange
    books = run_ccxt(fleet.gateway.url, [{"call": "fetch_order_book", "args": [symbol]} for symbol in PAIRS])
    for symbol, answer in zip(PAIRS, books, strict=True):
        book = answer["ok"]
        truth = fleet.sim.market.book("kPEPE" if symbol.startswith("KPEPE") else "BTC", book["timestamp"])
        assert truth is not None
        assert book["bids"] == [[float(level["px"]), float(level["sz"])] for level in truth["levels"][0]]
        assert book["asks"] == [[float(level["px"]), float(level["sz"])] for level in truth["levels"][1]]
    assert fleet.upstream().get("l2Book", 0) == 0
    assert fleet.gateway.status()["by_type"]["l2Book"] == {"local": len(PAIRS)}
    mids = fleet.post({"type": "allMids"}).json()  # from the subscription too: the same coins, current prices
    assert set(mids) == set(fleet.sim.info({"type": "allMids"}).json()) and "kPEPE" in mids
    assert fleet.upstream().get("allMids", 0) == 0


def test_concurrent_identical_public_requests_cost_one(fleet: Fleet) -> None:
    body = {"type": "metaAndAssetCtxs", "dex": ""}  # asked by nobody before: not cached yet
    before = fleet.upstream().get("metaAndAssetCtxs", 0)
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: fleet.post(body), range(10)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert fleet.upstream().get("metaAndAssetCtxs", 0) == before + 1
    direct = fleet.sim.info(body).json()
    assert json.loads(answers[0].content)[0] == direct[0]  # meta; contexts move with the clock


def test_ten_bots_load_markets_cost_one_request_per_type_and_ttl(fleet: Fleet) -> None:
    """10 bots starting at once (ccxt's load_markets: spotMeta, spotMetaAndAssetCtxs, metaAndAssetCtxs,
    perpDexs): the exchange sees at most one request per type and TTL, instead of 10."""
    kinds = ("spotMeta", "spotMetaAndAssetCtxs", "metaAndAssetCtxs", "perpDexs")

    def served() -> dict[str, int]:  # what the bots asked the gateway, per type
        by_type = fleet.gateway.status()["by_type"]
        return {kind: sum(by_type.get(kind, {}).values()) for kind in kinds}

    before, served_before = fleet.upstream(), served()
    started = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        runs = list(pool.map(lambda _: run_ccxt(fleet.gateway.url, [{"call": "load_markets"}]), range(10)))
    seconds = time.monotonic() - started
    assert all("ok" in run[0] for run in runs), [run[0] for run in runs if "ok" not in run[0]][:2]
    differ = [sorted(k for k in run[0]["ok"].keys() | runs[0][0]["ok"].keys()
                     if run[0]["ok"].get(k) != runs[0][0]["ok"].get(k))[:3] for run in runs]
    assert not any(differ), differ
    after = fleet.upstream()
    asked = {kind: after.get(kind, 0) - before.get(kind, 0) for kind in kinds}
    bots = {kind: count - served_before[kind] for kind, count in served().items()}
    assert all(count >= 10 for count in bots.values()), bots  # every bot asked every type of the gateway
    # the exchange: at most one request per type and TTL (none when an earlier test's answer is still fresh)
    for kind, count in asked.items():
        assert count <= seconds // admission.DEFAULT_TTL[kind] + 1, (kind, count, seconds)
    print(f"10 bots' load_markets in {seconds:.1f}s: upstream {asked} (without the gateway: 10 each)")


def test_user_types_are_forwarded_alone_and_signed_actions_never(fleet: Fleet) -> None:
    user = "0x" + "12" * 20
    before = fleet.upstream().get("clearinghouseState", 0)
    for _ in range(3):
        answer = fleet.post({"type": "clearinghouseState", "user": user})
        assert answer.status_code == 200 and "marginSummary" in answer.json()
    assert fleet.upstream().get("clearinghouseState", 0) == before + 3  # never cached, never shared

    refused = requests.post(f"{fleet.gateway.url}/exchange", json={"action": {"type": "order"}, "nonce": 1},
                            timeout=10)
    assert refused.status_code == 403 and "urls.api.private" in refused.text
    assert requests.get(f"{fleet.gateway.url}/info", timeout=10).status_code == 405
    bad = fleet.post({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "6h", "startTime": 0,
                                                        "endTime": 1}})
    assert (bad.status_code, bad.text) == (422, wire.DESERIALIZE_ERROR)
    unknown = fleet.post({"type": "x" * 10_000})
    assert unknown.status_code == 422 and len(unknown.text) < 100  # never the input echoed
    huge = requests.post(f"{fleet.gateway.url}/info", data=b" " * (admission.MAX_BODY + 10), timeout=10)
    assert huge.status_code == 413
    assert fleet.post({"type": "meta", "extra": 1}).status_code == 422  # only the fields the type takes
    status = fleet.gateway.status()
    assert status["refused_reasons"]["exchange"] == 1
    assert "exchange" not in fleet.upstream() and "order" not in fleet.upstream()


def test_metrics_count_requests_with_bounded_labels(fleet: Fleet) -> None:
    """/metrics (gateway.metrics_listen): Binance's families, requests by `info:<type>` and outcome as the status
    counts them; junk types, fields and paths add no label value (the second round of junk: not one series more)."""
    def junk(round_: int) -> None:
        with requests.Session() as session:
            for i in range(100):
                n = f"J{round_}x{i}"
                target, body = [("/info", {"type": n}), ("/info", {"type": "meta", n: 1}), (f"/{n}", {"type": "meta"}),
                                ("/info", {"type": "l2Book", "coin": n}), ("/exchange", {"action": n})][i % 5]
                session.post(fleet.gateway.url + target, json=body, timeout=10)

    junk(1)
    first = fleet.metrics()
    junk(2)
    second = fleet.metrics()
    assert {(name, labels) for name, series in second.items() for labels in series} == \
        {(name, labels) for name, series in first.items() for labels in series}, "a client's text in a label"
    assert not [labels for series in second.values() for labels in series if re.search(r"J[12]x", str(labels))]
    status = fleet.gateway.status()
    by_type = {("info:" + kind if kind != "other" else kind, outcome): count
               for kind, outcomes in status["by_type"].items() for outcome, count in outcomes.items()}
    exposed = {(dict(labels)["endpoint"], dict(labels)["outcome"]): value
               for labels, value in second["freqfeed_gateway_requests"].items()}
    assert exposed == by_type  # nothing asked between the scrape and the status
    refusals = {dict(labels)["reason"]: value for labels, value in second["freqfeed_gateway_refusals"].items()}
    assert refusals["invalid_body"] - first["freqfeed_gateway_refusals"][(("reason", "invalid_body"),)] == 40
    assert refusals["path"] >= 40 and refusals["exchange"] >= 40
    l2book = exposed[("info:l2Book", "forwarded")]  # 20 junk coins a round: forwarded (not configured), counted
    assert l2book >= 40
    counts = {dict(labels)["endpoint"] for labels in second["freqfeed_gateway_request_duration_seconds"]}
    assert {"info:candleSnapshot", "info:l2Book", "other"} <= counts
    assert second["freqfeed_gateway_state"][(("state", "ready"),)] == 1
    assert second["freqfeed_gateway_influxdb_up"][()] == 1
    assert second["freqfeed_gateway_book_connections"][(("state", "up"),)] == 1
    assert second["freqfeed_gateway_upstream_weight_budget"][()] == 1200 * 0.5
    assert second["freqfeed_gateway_upstream_requests"][()] >= status["upstream_requests"]
    print(f"/metrics: {sum(len(s) for s in second.values())} freqfeed series after 200 junk requests")


def test_what_is_not_recorded_is_forwarded_and_counted(fleet: Fleet) -> None:
    now = fleet.sim.now()
    body = wire.candle_snapshot_body("ETH", "1m", now - 20 * MINUTE, now - 10 * MINUTE)  # no configured pair
    through = fleet.post(body)
    assert through.status_code == 200 and through.json() == fleet.sim.info(body).json()
    assert fleet.upstream().get("candleSnapshot", 0) == 1
    assert fleet.gateway.status()["forward_reasons"].get("not recorded", 0) >= 1


def test_influxdb_down_forwards_and_counts(fleet: Fleet, tmp_path: Path) -> None:
    """A gateway whose InfluxDB does not answer: candles and funding forwarded, equal to the exchange's."""
    config = yaml.safe_load(fleet.gateway.config_path.read_text())
    config["influxdb"]["url"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config["gateway"]["listen"] = f"127.0.0.1:{free_port()}"
    down = GatewayProcess(tmp_path, config, "gateway-no-influxdb").start()
    try:
        now = fleet.sim.now()
        for body in (wire.candle_snapshot_body("BTC", "1h", now - 30 * HOUR, now - 20 * HOUR),
                     wire.funding_history_body("kPEPE", now - 30 * HOUR, now - 20 * HOUR)):
            through = requests.post(f"{down.url}/info", json=body, timeout=30)
            assert through.status_code == 200 and through.json() == fleet.sim.info(body).json() != []
        status = down.status()
        assert status["forward_reasons"] == {"InfluxDB:": 2} and status["local"] == 0
        assert status["influxdb_ok"] is False and status["influxdb_error"]
    finally:
        down.terminate()


def run_ccxt_twins(a: str, b: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each call through A, then at once the same call to B, in one ccxt process (hyperliquid_ccxt_runner.py)."""
    python = os.environ.get("FREQFEED_FREQTRADE_PYTHON")
    if not python:
        pytest.skip("FREQFEED_FREQTRADE_PYTHON is not set (make unit sets it)")
    configs = [json.dumps({"urls": {"api": {"public": url, "private": url}}}) for url in (a, b)]
    result = subprocess.run([python, str(Path(__file__).with_name("hyperliquid_ccxt_runner.py")), *configs],
                            input="\n".join(json.dumps(call) for call in calls), capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_fetch_tickers_through_the_gateway_equals_the_exchange(fleet: Fleet) -> None:
    """fetch_tickers (metaAndAssetCtxs: forwarded, reused 2 s, coalesced): through the gateway equal to the
    exchange's answer of the same exchange second, raw contexts included (marks, mids, impact prices move with
    every trade and book: an answer of another second differs, so the pair is asked a few ms apart)."""
    def fresh_minute(used: int) -> None:  # a run costs ~250 weight: in a minute of its own (1200 per IP)
        wait_for(lambda: fleet.sim.now() // MINUTE > used and fleet.sim.now() % MINUTE < 30_000, 130,
                 "the start of a new exchange minute")

    fresh_minute(fleet.sim.now() // MINUTE)
    calls = [{"call": "load_markets"},
             {"sleep": admission.DEFAULT_TTL["metaAndAssetCtxs"] + 0.5},  # load_markets' answer expired: a fresh one
             {"call": "fetch_tickers"}]
    for _attempt in range(4):
        since = fleet.sim.now()
        markets, tickers = run_ccxt_twins(fleet.gateway.url, fleet.sim.url, calls)
        asked = [r for r in fleet.sim.requests("metaAndAssetCtxs") if r["t"] >= since]
        if "error" in markets["b"] or "error" in tickers["b"]:  # the exchange's 429: a later minute
            fresh_minute(fleet.sim.now() // MINUTE)
            continue
        last = {r["agent"] == AGENT: r["t"] for r in asked}  # the newest of each: the gateway's, ccxt's own
        if len(last) == 2 and last[True] // 1000 == last[False] // 1000:
            break
    else:
        pytest.fail(f"the gateway's and ccxt's metaAndAssetCtxs never fell in the same exchange second: {asked}")
    assert markets["a"] == markets["b"] and "ok" in markets["a"]
    assert tickers["a"] == tickers["b"] and "ok" in tickers["a"]
    btc = tickers["a"]["ok"]["BTC/USDC:USDC"]
    assert btc["bid"] < btc["ask"] and btc["info"]["markPx"]
    assert set(PAIRS) <= set(tickers["a"]["ok"])



def run_freqtrade(exchange: dict[str, Any], wanted: list[list[str]]) -> dict[str, Any]:
    python = os.environ.get("FREQFEED_FREQTRADE_PYTHON")
    if not python:
        pytest.skip("FREQFEED_FREQTRADE_PYTHON is not set (make unit sets it)")
    result = subprocess.run([python, str(Path(__file__).with_name("hyperliquid_freqtrade_runner.py")),
                             json.dumps(exchange), json.dumps(wanted)], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    answer: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return answer


@pytest.mark.freqtrade
def test_freqtrade_through_the_docs_config(fleet: Fleet) -> None:
    """freqtrade's own Hyperliquid class with the docs' snippet: markets, 1m candles and funding rates as a dry-run
    bot refreshes them at start-up, equal to the same run against the exchange directly."""
    # 1m: freqtrade asks for the whole 5000-candle horizon, which the producer recorded (1h: only 1300 hours here,
    # so a 1h start-up refresh would be forwarded, counted as not held)
    wanted = [["BTC/USDC:USDC", "1m", "futures"], ["KPEPE/USDC:USDC", "1m", "futures"],
              ["BTC/USDC:USDC", "1h", "funding_rate"]]
    before = fleet.upstream()
    reasons_before = fleet.gateway.status()["forward_reasons"]
    used = fleet.sim.now() // MINUTE
    # both runs at once, from the start of an exchange minute, so that mostly the same candles have closed for
    # both; on a loaded machine freqtrade may take longer than the minute, and then one run sees a candle more
    # (at either end of its 5000-candle window): the candles both hold are compared, value for value
    wait_for(lambda: fleet.sim.now() // MINUTE > used and fleet.sim.now() % MINUTE <= 10_000, 130,
             "the start of a new exchange minute")
    with ThreadPoolExecutor(2) as pool:
        through, direct = pool.map(lambda url: run_freqtrade(docs_exchange_section(url), wanted),
                                   (fleet.gateway.url, fleet.sim.url))
    assert through["markets"] == direct["markets"]
    for key, frame in direct["frames"].items():
        mine = {row[0]: row for row in through["frames"][key]}
        theirs = {row[0]: row for row in frame}
        both = sorted(mine.keys() & theirs.keys())
        assert len(both) >= max(len(mine), len(theirs)) - 2, (key, len(both), len(mine), len(theirs))
        assert [mine[d] for d in both] == [theirs[d] for d in both], (key, fleet.gateway.status()["forward_reasons"])
    frames = through["frames"]
    assert len(frames["BTC/USDC:USDC|1m|futures"]) == len(frames["KPEPE/USDC:USDC|1m|futures"]) == \
        wire.CANDLE_HORIZON - 1  # freqtrade drops the candle in progress
    assert len(frames["BTC/USDC:USDC|1h|funding_rate"]) >= 400
    assert "KPEPE/USDC:USDC" in through["markets"]
    # Nothing reached the exchange but what the freshness rules sent there: on a loaded machine the producer's
    # write of a just-closed candle can come later than close_wait, or its candle in progress later than
    # live_max_age, and the gateway then forwards (as it must), counting why. Never "not recorded".
    after = fleet.upstream()
    reasons = fleet.gateway.status()["forward_reasons"]
    late = sum(reasons.get(k, 0) - reasons_before.get(k, 0) for k in ("close wait", "closed", "current", "stale"))
    reached = sum(after.get(k, 0) - before.get(k, 0) for k in ("candleSnapshot", "fundingHistory"))
    assert reached == late <= len(wanted), (reached, reasons_before, reasons)
    assert reasons.get("not recorded", 0) == reasons_before.get("not recorded", 0)


def test_history_before_the_recorded_start_answers_as_the_exchange(fleet: Fleet) -> None:
    """fundingHistory from 200 h before the first recorded rate, paged as freqtrade and ccxt page (startTime = the
    last time + 1, 500 rows a page) to a settled hour: every page equal to the exchange's; the first page, which
    reaches before the recorded start, is forwarded (through the weight limiter, reason counted), every later one
    answered from InfluxDB. candleSnapshot / fetch_ohlcv from before the first recorded 1h candle but inside the
    exchange's 5000-candle horizon: forwarded, equal to the exchange's."""
    first_rate = fleet.first_recorded(schema.FUNDING_MEASUREMENT, "rate", "KPEPE/USDC:USDC")
    first_1h = fleet.first_recorded(schema.ohlcv_measurement("1h"), "close", "BTC/USDC:USDC")
    now = fleet.sim.now()
    assert wire.horizon_first_open(now, "1h") < first_1h - 200 * HOUR  # the exchange still has what was not recorded
    # the forwarded page and the ccxt calls below cost the exchange ~250 weight (the simulator's IP is everyone's;
    # this test runs late in the module, when the earlier ones' minutes have passed)
    wait_for(lambda: fleet.weight_this_minute() < 900, 70, "room in this exchange minute's weight")
    before, reasons_before = fleet.upstream(), fleet.gateway.status()["forward_reasons"]
    end = candle_open(now, "1h") - HOUR  # settled an hour ago: the pages do not move while they are asked
    start = first_rate - 200 * HOUR - 30 * MINUTE
    pages = []
    while True:
        body = wire.funding_history_body("kPEPE", start, end)
        through = fleet.post(body)
        assert through.status_code == 200, through.text[:200]
        # the exchange's answer (the simulator's market, computed here: its pages cost no weight)
        assert through.json() == fleet.sim.market.funding_rows("kPEPE", start, end, fleet.sim.now()), start
        rows = through.json()
        pages.append(len(rows))
        if len(rows) < wire.FUNDING_PAGE:
            break
        start = rows[-1]["time"] + 1
    assert pages[:2] == [wire.FUNDING_PAGE] * 2 and sum(pages) >= 200 + 1200, pages
    upstream = fleet.upstream()
    assert upstream.get("fundingHistory", 0) - before.get("fundingHistory", 0) == 1, (pages, upstream)

    # ccxt as freqtrade calls it, through the gateway and directly, one right after the other
    since_1h = first_1h - 100 * HOUR
    calls = [{"call": "fetch_funding_rate_history", "args": ["KPEPE/USDC:USDC", first_rate - 100 * HOUR]},
             {"call": "fetch_ohlcv", "args": ["BTC/USDC:USDC", "1h", since_1h, 300]},
             {"call": "fetch_ohlcv", "args": ["BTC/USDC:USDC", "1h", since_1h, None, {"until": end}]}]
    answers = run_ccxt_twins(fleet.gateway.url, fleet.sim.url, calls)
    for call, answer in zip(calls, answers, strict=True):
        assert "ok" in answer["a"] and answer["a"] == answer["b"], (call, str(answer)[:500])
    funding, limited, until = (answer["a"]["ok"] for answer in answers)
    assert len(funding) == wire.FUNDING_PAGE and funding[0]["timestamp"] < first_rate < funding[-1]["timestamp"]
    assert len(limited) == 300 and limited[0][0] == since_1h
    assert [row[0] for row in until] == list(range(since_1h, end + 1, HOUR))
    after = fleet.upstream()
    assert after.get("fundingHistory", 0) - upstream.get("fundingHistory", 0) == 1
    assert after.get("candleSnapshot", 0) - before.get("candleSnapshot", 0) == 2
    reasons = fleet.gateway.status()["forward_reasons"]
    assert {kind: reasons.get(kind, 0) - reasons_before.get(kind, 0) for kind in ("funding", "closed")} == \
        {"funding": 2, "closed": 2}, reasons
    print(f"funding pages {pages} (1 forwarded); upstream {after} (before {before})")


def test_log_is_clean(fleet: Fleet) -> None:
    assert "Traceback" not in fleet.gateway.text(), fleet.gateway.text()[-3000:]
