"""Order books and book tickers through the gateway, from Binance's websocket streams (the simulator's).

The simulator's book is a pure function of time: a depth answer's `E` (or ccxt's timestamp, the book's `T`)
is enough to recompute the book the exchange had at that moment and compare it level by level.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from freqfeed import feather
from freqfeed.config import InfluxDBConfig
from freqfeed.exchanges.binance import wire
from freqfeed.localinflux import LocalInfluxDB

from .processes import (
    GatewayProcess,
    ProducerProcess,
    SimulatorProcess,
    client_stats,
    gateway_config,
    producer_config,
    wait_for,
)
from .test_gateway import GATEWAY_AGENT, away_from_minute_boundary, ccxt_calls, minute_of, now_ms, readme_ccxt_config

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.dialects("1.x")]

PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]


@dataclass
class Books:
    sim: SimulatorProcess
    gateway: GatewayProcess


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory, influxd: LocalInfluxDB) -> Iterator[Books]:
    work = tmp_path_factory.mktemp("books")
    requests.post(f"{influxd.url}/query", data={"q": 'CREATE DATABASE "books" WITH DURATION 360d'}, timeout=10)
    influx = InfluxDBConfig(url=influxd.url, database="books")
    sim = SimulatorProcess(work, speed=1, seed=21)
    producer = ProducerProcess(work, producer_config(influx, sim, PAIRS, candles=30, timeframes=["1m"])).start()
    gateway = None
    try:
        producer.wait_for_log("backfill done", timeout=120)
        gateway = GatewayProcess(work, gateway_config(influx, sim, PAIRS, ["1m"], gateway={"book_idle": 15})).start()
        wait_for(lambda: gateway.status()["books"]["streamed"] == len(PAIRS), 30, "the configured pairs' books")
        held = Books(sim, gateway)
        for pair in PAIRS:  # subscribed is not yet received: wait until each book has come down its stream
            symbol = pair.split("/")[0] + "USDT"
            wait_for(lambda s=symbol: from_streams(held, lambda: depth(held, s), "/fapi/v1/depth"), 30,
                     f"{symbol}'s book answered from its stream", interval=0.1)
        yield held
    finally:
        if gateway is not None and gateway.process is not None and gateway.process.poll() is None:
            gateway.terminate()
        producer.terminate()
        sim.stop()


def book_at(sim: SimulatorProcess, symbol: str, at_ms: int, levels: int) -> tuple[list[list[str]], list[list[str]]]:
    """The simulator's book of `symbol` at `at_ms`, as Binance writes it."""
    inst = sim.market.instrument(symbol)
    book = sim.market.book(symbol, at_ms, levels)
    return (wire.book_levels(book.bids[:, 0], book.bids[:, 1], inst.price_decimals, inst.quantity_decimals),
            wire.book_levels(book.asks[:, 0], book.asks[:, 1], inst.price_decimals, inst.quantity_decimals))


def depth(books: Books, symbol: str = "BTCUSDT", limit: int = 5) -> requests.Response:
    return requests.get(f"{books.gateway.url}/fapi/v1/depth", params={"symbol": symbol, "limit": limit}, timeout=10)


def upstream(books: Books, path: str) -> int:
    return int(client_stats(books.sim, GATEWAY_AGENT)["requests"].get(path, 0))


def from_streams(books: Books, ask: Callable[[], requests.Response], path: str) -> requests.Response | None:
    """`ask()`'s answer when the gateway gave it from its streams (nothing reached the exchange), else None."""
    before = upstream(books, path)
    answer = ask()
    return answer if answer.status_code == 200 and upstream(books, path) == before else None


def forwarded(books: Books, ask: Callable[[], requests.Response], path: str) -> requests.Response | None:
    """`ask()`'s answer when the gateway forwarded it to the exchange, else None."""
    before = upstream(books, path)
    answer = ask()
    return answer if upstream(books, path) == before + 1 else None


def test_depth_is_the_exchanges_book_of_the_same_moment(books: Books) -> None:
    """Every answer is the exchange's book at its `E`. The books are held: nearly all answers come from the
    streams. A forwarded one is allowed only as the freshness rule's doing (on a loaded machine a partial book
    can arrive later than book_max_age), and the gateway counts it as such."""
    before = upstream(books, "/fapi/v1/depth")
    stale_before = books.gateway.status()["books"]["forward_reasons"].get("stale or dropped", 0)
    asked = 0
    for round_ in range(5):
        if round_:
            time.sleep(0.2)  # pacing between rounds, so the answers span several book updates
        for symbol in ("BTCUSDT", "ETHUSDT"):
            for limit in (5, 10, 20):
                answer = depth(books, symbol, limit)
                asked += 1
                assert answer.status_code == 200
                body = answer.json()
                assert list(body) == ["lastUpdateId", "E", "T", "bids", "asks"]
                assert (body["bids"], body["asks"]) == book_at(books.sim, symbol, body["E"], limit)
                assert body["lastUpdateId"] == books.sim.market.book(symbol, body["E"], 1).update_id
    status = books.gateway.status()["books"]
    reached = upstream(books, "/fapi/v1/depth") - before
    stale = status["forward_reasons"].get("stale or dropped", 0) - stale_before
    assert reached == stale, "a depth request reached the exchange only when the gateway's book was stale"
    assert reached <= asked // 3, f"{reached} of {asked} depth requests reached the exchange"
    assert status["served"] >= asked - reached and status["oldest_served_ms"] <= 1000


def test_ccxt_order_books_and_bids_asks(books: Books) -> None:
    config = readme_ccxt_config(books.gateway.url)
    calls: list[dict[str, Any]] = [{"call": "fetch_order_book", "args": [pair, limit]}
                                   for pair in PAIRS for limit in (5, 10, 20)]
    calls += [{"call": "fetch_bids_asks", "args": [[pair]]} for pair in PAIRS]

    def from_the_streams() -> list[dict[str, Any]] | None:
        """The batch's answers when none of it reached the exchange. A book ticker comes on change: on a loaded
        machine a quiet symbol's may be older than book_max_age, and the gateway then forwards, as it must."""
        before = {p: upstream(books, p) for p in ("/fapi/v1/depth", "/fapi/v1/ticker/bookTicker")}
        answers = ccxt_calls(config, calls)
        return answers if {p: upstream(books, p) for p in before} == before else None

    answers = wait_for(from_the_streams, 120, "the ccxt calls answered from the streams alone", interval=0)
    for call, answer in zip(calls, answers, strict=True):
        assert "ok" in answer, answer
        symbol = call["args"][0][0].replace("/USDT:USDT", "USDT") if call["call"] == "fetch_bids_asks" else \
            call["args"][0].replace("/USDT:USDT", "USDT")
        if call["call"] == "fetch_order_book":
            book = answer["ok"]
            bids, asks = book_at(books.sim, symbol, book["timestamp"], call["args"][1])
            assert book["bids"] == [[float(p), float(q)] for p, q in bids]
            assert book["asks"] == [[float(p), float(q)] for p, q in asks]
        else:
            [ticker] = answer["ok"].values()
            bids, asks = book_at(books.sim, symbol, ticker["timestamp"], 1)
            assert (ticker["bid"], ticker["bidVolume"], ticker["ask"], ticker["askVolume"]) == \
                (float(bids[0][0]), float(bids[0][1]), float(asks[0][0]), float(asks[0][1]))


def test_every_book_ticker_once_streamed(books: Books) -> None:
    """fetch_bids_asks() asks for every symbol: the first request goes to the exchange and starts a stream for
    each; from then on the whole answer comes from the streams."""
    config = readme_ccxt_config(books.gateway.url)
    [first] = ccxt_calls(config, [{"call": "fetch_bids_asks", "args": []}])
    assert "ok" in first and len(first["ok"]) == len(books.sim.market.instruments)
    wait_for(lambda: books.gateway.status()["books"]["ticker_streams"] >= len(books.sim.market.instruments), 60,
             "a book ticker stream for every symbol")
    every = f"{books.gateway.url}/fapi/v1/ticker/bookTicker"
    wait_for(lambda: from_streams(books, lambda: requests.get(every, timeout=10), "/fapi/v1/ticker/bookTicker"), 30,
             "every book ticker answered from the streams", interval=0.1)

    def from_the_streams() -> dict[str, Any] | None:
        """ccxt's fetch_bids_asks() when the gateway answered it from the streams alone. A book ticker comes
        on change: on a loaded machine the simulator may not push a quiet symbol's within book_max_age (1 s),
        and the gateway then forwards the request, as it must."""
        before = upstream(books, "/fapi/v1/ticker/bookTicker")
        [answer] = ccxt_calls(config, [{"call": "fetch_bids_asks", "args": []}])
        return answer if upstream(books, "/fapi/v1/ticker/bookTicker") == before else None

    second = wait_for(from_the_streams, 120, "every book ticker through ccxt from the streams", interval=0)
    assert len(second["ok"]) == len(books.sim.market.instruments)
    for name, ticker in list(second["ok"].items())[:25]:
        bids, asks = book_at(books.sim, name.replace("/USDT:USDT", "USDT"), ticker["timestamp"], 1)
        assert (ticker["bid"], ticker["ask"]) == (float(bids[0][0]), float(asks[0][0])), name


def test_books_follow_demand(books: Books) -> None:
    """A pair nobody configured is streamed once a bot asks for it, and dropped once nobody has for a while."""
    before = upstream(books, "/fapi/v1/depth")
    first = depth(books, "SOLUSDT")
    assert first.status_code == 200
    assert upstream(books, "/fapi/v1/depth") == before + 1, "the first answer came from the exchange"
    wait_for(lambda: books.gateway.status()["books"]["streamed"] == len(PAIRS) + 1, 20, "SOLUSDT's book")
    answer = wait_for(lambda: from_streams(books, lambda: depth(books, "SOLUSDT"), "/fapi/v1/depth"), 20,
                      "SOLUSDT's depth answered from its stream", interval=0.1)
    assert (answer.json()["bids"], answer.json()["asks"]) == book_at(books.sim, "SOLUSDT", answer.json()["E"], 5)
    wait_for(lambda: books.gateway.status()["books"]["streamed"] == len(PAIRS), 40, "SOLUSDT dropped when idle")


def test_a_silent_or_dropped_stream_is_never_served(books: Books) -> None:
    wait_for(lambda: from_streams(books, lambda: depth(books), "/fapi/v1/depth"), 20, "BTCUSDT's book streamed",
             interval=0.1)
    stale_before = books.gateway.status()["books"]["forward_reasons"].get("stale or dropped", 0)
    books.sim.fault("silent", 4)
    # Served while younger than book_max_age (1 s), then forwarded: a stale book is never served.
    silent = wait_for(lambda: forwarded(books, lambda: depth(books), "/fapi/v1/depth"), 10,
                      "a depth request forwarded while the stream is silent", interval=0.05)
    assert silent.status_code == 200
    assert (silent.json()["bids"], silent.json()["asks"]) == book_at(books.sim, "BTCUSDT", silent.json()["E"], 5)
    assert books.gateway.status()["books"]["forward_reasons"].get("stale or dropped", 0) > stale_before
    wait_for(lambda: from_streams(books, lambda: depth(books), "/fapi/v1/depth"), 20,
             "streamed again once the stream speaks", interval=0.2)

    def dropped() -> bool:
        status = books.gateway.status()["books"]
        return bool(status["connections_up"] < status["connections"])

    def reconnected() -> bool:
        status = books.gateway.status()["books"]
        return bool(status["connections_up"] == status["connections"])

    books.sim.fault("drop")
    wait_for(dropped, 10, "the gateway to see its book streams dropped", interval=0.02)
    before = upstream(books, "/fapi/v1/depth")
    answer = depth(books, limit=10)  # the reconnect waits at least a second
    assert answer.status_code == 200
    assert upstream(books, "/fapi/v1/depth") == before + 1, "a dropped connection's book is not served"
    wait_for(reconnected, 30, "the book streams reconnected")
    again = wait_for(lambda: from_streams(books, lambda: depth(books, limit=20), "/fapi/v1/depth"), 20,
                     "streamed again after the reconnect", interval=0.1)
    assert (again.json()["bids"], again.json()["asks"]) == book_at(books.sim, "BTCUSDT", again.json()["E"], 20)


def test_bad_book_requests_get_binances_errors(books: Books) -> None:
    for params in ({"symbol": "BTCUSDT", "limit": 7}, {"symbol": "NOPEUSDT", "limit": 5}, {"limit": 5},
                   {"symbol": "BTCUSDT", "limit": "x"}):
        mine = requests.get(f"{books.gateway.url}/fapi/v1/depth", params=params, timeout=10)
        theirs = requests.get(f"{books.sim.url}/fapi/v1/depth", params=params, timeout=10)
        assert mine.status_code == theirs.status_code == 400 and mine.json() == theirs.json(), params
    assert depth(books, limit=100).status_code == 200, "deeper books are forwarded"
    ticker = requests.get(f"{books.gateway.url}/fapi/v1/ticker/bookTicker", params={"symbol": "NOPEUSDT"}, timeout=10)
    assert ticker.status_code == 400 and ticker.json()["code"] == -1121


def test_status_reports_the_books(books: Books, tmp_path: Path) -> None:
    status = books.gateway.status()["books"]
    assert status["streamed"] >= len(PAIRS) and status["served"] > 0 and "forward_reasons" in status


def test_spot_klines_and_books(tmp_path: Path, influxd: LocalInfluxDB) -> None:
    """A spot gateway: /api/v3/klines from InfluxDB, depth and book tickers from the spot streams."""
    requests.post(f"{influxd.url}/query", data={"q": 'CREATE DATABASE "spot_gw" WITH DURATION 360d'}, timeout=10)
    influx = InfluxDBConfig(url=influxd.url, database="spot_gw")
    sim = SimulatorProcess(tmp_path, speed=1, seed=23)
    try:
        producer = ProducerProcess(tmp_path, producer_config(influx, sim, ["BTC/USDT"], candles=30, timeframes=["1m"],
                                                             trading_mode="spot", ws_path="/spot")).start()
        producer.wait_for_log("backfill done", timeout=120)
        config = gateway_config(influx, sim, ["BTC/USDT"], ["1m"], trading_mode="spot",
                                gateway={"ws_url": f"ws://127.0.0.1:{sim.port}/spot"})
        gateway = GatewayProcess(tmp_path, config).start()
        wait_for(lambda: gateway.status()["books"]["streamed"] == 1, 30, "the spot book stream")

        def streamed(path: str, **params: Any) -> requests.Response | None:
            before = client_stats(sim, GATEWAY_AGENT)["requests"].get(path, 0)
            answer = requests.get(f"{gateway.url}{path}", params=params, timeout=10)
            ok = answer.status_code == 200 and client_stats(sim, GATEWAY_AGENT)["requests"].get(path, 0) == before
            return answer if ok else None

        # spot partial books push every 100 ms, book tickers on change: wait until both are held
        wait_for(lambda: streamed("/api/v3/depth", symbol="BTCUSDT", limit=10)
                 and streamed("/api/v3/ticker/bookTicker", symbol="BTCUSDT"), 30, "the spot book and book ticker")
        params = {"symbol": "BTCUSDT", "interval": "1m", "limit": 5, "endTime": int(time.time() * 1000) - 120_000}
        mine = requests.get(f"{gateway.url}/api/v3/klines", params=params, timeout=10)
        theirs = requests.get(f"{sim.url}/api/v3/klines", params=params, timeout=10)
        assert mine.status_code == 200 and mine.json() == theirs.json()
        before = client_stats(sim, GATEWAY_AGENT)["requests"]
        book = requests.get(f"{gateway.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 10}, timeout=10)
        assert book.status_code == 200 and list(book.json()) == ["lastUpdateId", "bids", "asks"]
        at = book.json()["lastUpdateId"] * 100  # spot books carry no time: the update id is the 100 ms step
        assert (book.json()["bids"], book.json()["asks"]) == book_at(sim, "BTCUSDT", at, 10)
        ticker = requests.get(f"{gateway.url}/api/v3/ticker/bookTicker", params={"symbol": "BTCUSDT"}, timeout=10)
        assert ticker.status_code == 200
        assert set(ticker.json()) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}
        assert client_stats(sim, GATEWAY_AGENT)["requests"] == before, "none of it from the exchange's REST API"
        assert requests.get(f"{gateway.url}/fapi/v1/klines", timeout=10).status_code == 404

        # freqtrade download-data (spot) into a synced directory: the same files as straight from the exchange,
        # and no klines request from the gateway
        timerange = f"{int(time.time() - 20 * 60)}-"  # inside InfluxDB's 30 minutes
        for attempt in range(3):
            direct, through = tmp_path / f"direct{attempt}", tmp_path / f"through{attempt}"
            for userdir in (direct, through):
                spot_sync_into(influx, userdir)
            away_from_minute_boundary(5)
            minute = minute_of(now_ms())
            before = client_stats(sim, GATEWAY_AGENT)["requests"]
            with ThreadPoolExecutor(max_workers=2) as pool:  # side by side: the same candles have closed for both
                a, b = pool.map(lambda args: spot_download(*args), [(direct, sim.url, timerange),
                                                                    (through, gateway.url, timerange)])
            after = client_stats(sim, GATEWAY_AGENT)["requests"]
            assert a.returncode == 0 and b.returncode == 0, (a.stderr[-2000:], b.stderr[-2000:])
            same_minute = minute_of(now_ms()) == minute
            if same_minute:
                break  # both in the same minute: the same candles had closed
        assert after.get("/api/v3/klines", 0) == before.get("/api/v3/klines", 0), "no klines request reached Binance"
        assert [p.name for p in (through / "data" / "binance").glob("*.feather")] == ["BTC_USDT-1m.feather"]
        mine, theirs = (userdir / "data" / "binance" / "BTC_USDT-1m.feather" for userdir in (through, direct))
        if same_minute:
            assert mine.read_bytes() == theirs.read_bytes(), "the same file as straight from the exchange"
        else:
            # Every attempt straddled a minute (a loaded machine: freqtrade takes long to start): one of them
            # saw a candle more close. The candles both hold are the same, value for value.
            tables = [feather.read_table(path, "spot") for path in (mine, theirs)]
            assert all(t is not None and t.num_rows for t in tables)
            common = min(feather.date_ns(t)[-1] for t in tables)
            cut = [t.slice(0, int(np.searchsorted(feather.date_ns(t), common, side="right"))) for t in tables]
            assert cut[0].equals(cut[1]) and abs(tables[0].num_rows - tables[1].num_rows) <= 2
    finally:
        sim.stop()


def spot_sync_into(influx: InfluxDBConfig, userdir: Path) -> None:
    from freqfeed import config as config_module
    from freqfeed import sync

    for sub in ("data", "strategies"):
        (userdir / sub).mkdir(parents=True, exist_ok=True)
    cfg = config_module.from_mapping({"influxdb": {"url": influx.url, "database": influx.database},
                                      "pairs": ["BTC/USDT"], "timeframes": ["1m"], "trading_mode": "spot",
                                      "sync": {"datadir": str(userdir / "data" / "binance")}}, "test")
    assert sync.run(cfg).ok


def spot_download(userdir: Path, base: str, timerange: str) -> subprocess.CompletedProcess[str]:
    """`freqtrade download-data` for spot with docs/gateway.md's spot settings, public market data at `base`."""
    python = os.environ.get("FREQFEED_FREQTRADE_PYTHON")
    if not python:
        pytest.skip("FREQFEED_FREQTRADE_PYTHON is not set (make unit sets it)")
    config = {"trading_mode": "spot", "stake_currency": "USDT", "dry_run": True,
              "exchange": {"name": "binance", "only_from_ccxt": True, "enable_ws": False,
                           "ccxt_config": {"options": {"fetchMarkets": {"types": ["spot"]}},
                                           "urls": {"api": {"public": f"{base}/api/v3"}}},
                           "pair_whitelist": ["BTC/USDT"]}}
    path = userdir / "config.json"
    path.write_text(json.dumps(config))
    freqtrade = str(Path(python).with_name("freqtrade"))
    return subprocess.run([freqtrade, "download-data", "--userdir", str(userdir), "-c", str(path), "--timerange",
                           timerange, "-t", "1m"], capture_output=True, text=True, timeout=300, check=False)
