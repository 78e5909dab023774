"""The Hyperliquid simulator against ccxt's real `hyperliquid` class (freqtrade's venv), and freqfeed's own
Hyperliquid REST and websocket clients against the simulator. The truth is HyperliquidMarket(seed): every
candle, funding rate and book a pure function of seed, coin and time."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from freqfeed.exchanges.base import MarkPrice, UnknownPairsError
from freqfeed.exchanges.base import StreamEvents as ProducerEvents
from freqfeed.exchanges.hyperliquid import wire
from freqfeed.exchanges.hyperliquid.feed import HyperliquidLiveStreams
from freqfeed.exchanges.hyperliquid.rest import HyperliquidProducerRest, HyperliquidRest, candle_from_row
from freqfeed.exchanges.hyperliquid.simulator import MAJORS
from freqfeed.exchanges.hyperliquid.streams import Close, Gap, HyperliquidStreams, StreamEvents
from freqfeed.exchanges.hyperliquid.wire import HyperliquidError, Universe
from freqfeed.schema import Candle
from freqfeed.timeframes import candle_open

from .processes import HyperliquidSim, wait_for

SEED = 7
MINUTE = 60_000
HOUR = 3_600_000


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HyperliquidSim]:
    """Real time: the horizon of hourly candles stays put while ccxt asks."""
    simulator = HyperliquidSim(tmp_path_factory.mktemp("hl"), speed=1)
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def fast_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HyperliquidSim]:
    """120x: a 3m candle closes every 1.5 real seconds (its last minute lasts half a second: the last update
    seen is its final state only if the simulator sends it as Hyperliquid would), an exchange minute's weight
    refills every half second."""
    simulator = HyperliquidSim(tmp_path_factory.mktemp("hl-fast"), speed=120, idle_close=1.5)
    yield simulator
    simulator.stop()


def run_ccxt(url: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    python = os.environ.get("FREQFEED_FREQTRADE_PYTHON")
    if not python:
        pytest.skip("FREQFEED_FREQTRADE_PYTHON is not set (make unit sets it)")
    config = {"urls": {"api": {"public": url, "private": url}}}
    result = subprocess.run([python, str(Path(__file__).with_name("hyperliquid_ccxt_runner.py")), json.dumps(config)],
                            input="\n".join(json.dumps(call) for call in calls), capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(calls)
    return answers


def ohlcv(row: dict[str, Any]) -> list[float]:
    return [row["t"], float(row["o"]), float(row["h"]), float(row["l"]), float(row["c"]), float(row["v"])]


# -- ccxt's hyperliquid against the simulator ---------------------------------------------------------


def test_ccxt_hyperliquid_against_the_simulator(sim: HyperliquidSim) -> None:
    market = sim.market
    before = sim.now()
    grid: list[tuple[str, str, str, int | None, int | None]] = []  # (symbol, coin, interval, since, limit)
    for symbol, coin, interval in (("BTC/USDC:USDC", "BTC", "1m"), ("BTC/USDC:USDC", "BTC", "1h"),
                                   ("KPEPE/USDC:USDC", "kPEPE", "3m")):
        period = wire.interval_ms(interval)
        current = candle_open(before, interval)
        horizon = wire.horizon_first_open(before, interval)
        if interval == "1m":  # startTime 0: the whole horizon (5000 rows cost 103 weight: once is enough)
            grid.append((symbol, coin, interval, None, None))
        grid += [(symbol, coin, interval, horizon - 10 * period, 100),  # before the horizon
                 (symbol, coin, interval, current - 50 * period, None),
                 (symbol, coin, interval, None, 10),
                 (symbol, coin, interval, current - 30 * period, 5)]  # closed candles only
    since = candle_open(before, "1h") - 1200 * HOUR
    truth_funding = market.funding_rows("BTC", since, None, before)
    assert len(truth_funding) == 500
    second_page = truth_funding[-1]["time"] + 1
    calls: list[dict[str, Any]] = [{"call": "load_markets"}]
    calls += [{"call": "fetch_ohlcv", "args": [s, i, since_, limit]} for s, _, i, since_, limit in grid]
    calls += [{"call": "fetch_funding_rate_history", "args": ["BTC/USDC:USDC", since]},
              {"call": "fetch_funding_rate_history", "args": ["BTC/USDC:USDC", second_page]},
              {"call": "fetch_order_book", "args": ["BTC/USDC:USDC"]},
              {"call": "fetch_order_book", "args": ["KPEPE/USDC:USDC"]},
              {"call": "fetch_tickers"}]
    answers = run_ccxt(sim.url, calls)
    after = sim.now()
    errors = [a["error"] for a in answers if "error" in a]
    assert not errors

    markets = answers[0]["ok"]
    swaps = {s: m for s, m in markets.items() if m["type"] == "swap"}
    assert len(swaps) == len(MAJORS)
    assert swaps["BTC/USDC:USDC"]["id"] == "0" and swaps["BTC/USDC:USDC"]["baseName"] == "BTC"
    assert swaps["KPEPE/USDC:USDC"]["baseName"] == "kPEPE"  # meta's spelling, as every request sends it
    assert swaps["KPEPE/USDC:USDC"]["id"] == str(MAJORS.index("kPEPE"))
    assert swaps["MATIC/USDC:USDC"]["active"] is False and swaps["MATIC/USDC:USDC"]["id"] == "3"
    assert all(m["active"] for s, m in swaps.items() if s != "MATIC/USDC:USDC")

    for (symbol, coin, interval, since_, limit), answer in zip(grid, answers[1:1 + len(grid)], strict=True):
        rows = answer["ok"]
        what = f"{symbol} {interval} since={since_} limit={limit}"
        period = wire.interval_ms(interval)
        assert rows, what
        opens = [r[0] for r in rows]
        assert opens == list(range(opens[0], opens[-1] + 1, period)), what  # consecutive, oldest first
        for row in rows:
            if row[0] + period <= before:  # closed before ccxt asked: exactly the truth
                assert row == ohlcv(market.final_candle(coin, interval, row[0]) or {}), what
        horizons = {wire.horizon_first_open(before, interval), wire.horizon_first_open(after, interval)}
        currents = {candle_open(before, interval), candle_open(after, interval)}
        if since_ is None and limit is None:
            assert len(rows) == 5000 and opens[0] in horizons and opens[-1] in currents, what
        elif since_ is None:
            assert len(rows) == limit and opens[-1] in currents, what
        elif since_ < min(horizons):
            assert opens[0] in horizons and len(rows) == limit, what  # the exchange cut it at its horizon
        else:
            assert opens[0] == since_, what
            assert len(rows) == limit if limit else opens[-1] in currents, what

    first, second = answers[1 + len(grid)]["ok"], answers[2 + len(grid)]["ok"]
    assert len(first) == 500  # one answer holds at most 500 rows: freqtrade pages on the last time
    assert [(r["timestamp"], r["fundingRate"]) for r in first] == \
        [(r["time"], float(r["fundingRate"])) for r in truth_funding]
    truth_second = market.funding_rows("BTC", second_page, None, before)
    assert len(second) >= 500 and second[:len(truth_second)] == \
        [{"symbol": "BTC/USDC:USDC", "fundingRate": float(r["fundingRate"]), "timestamp": r["time"]}
         for r in truth_second]
    hours = [wire.funding_hour(r["timestamp"]) for r in first + second]
    assert hours == list(range(hours[0], hours[-1] + 1, HOUR))  # hourly, no gap at the page boundary

    for answer, coin in ((answers[3 + len(grid)], "BTC"), (answers[4 + len(grid)], "kPEPE")):
        book = answer["ok"]
        truth = market.book(coin, book["timestamp"])
        assert truth is not None
        assert book["bids"] == [[float(level["px"]), float(level["sz"])] for level in truth["levels"][0]]
        assert book["asks"] == [[float(level["px"]), float(level["sz"])] for level in truth["levels"][1]]
        assert len(book["bids"]) == 20
    tickers = answers[5 + len(grid)]["ok"]
    assert set(swaps) <= set(tickers)
    btc = tickers["BTC/USDC:USDC"]
    assert btc["bid"] < btc["ask"] and btc["previousClose"] > 0

    # the simulator saw what a bot sends, at Hyperliquid's weights
    log = sim.requests()
    assert {r["type"] for r in log} >= {"metaAndAssetCtxs", "spotMetaAndAssetCtxs", "candleSnapshot",
                                        "fundingHistory", "l2Book"}
    assert all(r["weight"] == wire.info_weight(r["type"], r["rows"]) for r in log if r.get("status") == 200)
    assert max(r["rows"] for r in sim.requests("candleSnapshot")) == 5000
    peak = max(sim.stats()["peak_weight_per_minute"].values())
    assert peak <= wire.WEIGHT_LIMIT  # one bot's start and a few candle requests already cost this much


def test_bad_bodies_answer_as_hyperliquid(sim: HyperliquidSim) -> None:
    bad = sim.info({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "6h", "startTime": 0,
                                                      "endTime": 1}})
    assert (bad.status_code, bad.text) == (422, "Failed to deserialize the JSON body into the target type")
    assert sim.info({"type": "fundingHistory", "coin": "BTC", "startTime": -5}).status_code == 422
    assert sim.info({"type": "candleSnapshot", "req": {"coin": "NOSUCH", "interval": "1m", "startTime": 0,
                                                       "endTime": 1}}).json() == []
    assert sim.info({"type": "openOrders", "user": "0x" + "00" * 20}).json() == []


# -- freqfeed's REST client ---------------------------------------------------------------------------


async def _synced(url: str, **kwargs: Any) -> HyperliquidRest:
    """A client whose clock learnt the simulator's speed from exchangeStatus samples over 3 real seconds
    (the rate is measured between the first and the last sample: a longer base, a smaller error)."""
    rest = HyperliquidRest(url, **kwargs)
    calibrated = time.monotonic() + 3
    while time.monotonic() < calibrated:
        await rest.sync_time()
        await asyncio.sleep(0.3)
    assert rest.clock.rate > 30  # 120x
    return rest


def test_rest_client(fast_sim: HyperliquidSim) -> None:
    market = fast_sim.market

    async def scenario() -> None:
        async with await _synced(fast_sim.url, share=1.0, user_agent="freqfeed-test-rest") as rest:
            universe, ctxs = await rest.universe()
            assert universe.pair_to_coin("KPEPE/USDC:USDC") == "kPEPE" and universe.index["MATIC"] == 3
            assert universe.assets[3].delisted and len(ctxs) == len(universe.assets) and ctxs[0] is not None

            now = await rest.sync_time()
            history = await rest.candles("BTC", "1m", now - 6000 * MINUTE, now)
            assert history.truncated  # the start lies before the 5000-candle horizon
            opens = [r["t"] for r in history.closed]
            assert opens == list(range(opens[0], opens[-1] + 1, MINUTE))
            assert 4990 <= len(opens) <= 5000
            assert all(row == market.final_candle("BTC", "1m", row["t"]) for row in history.closed)
            assert history.in_progress is None or history.in_progress["t"] == opens[-1] + MINUTE
            inside = await rest.candles("BTC", "1m", opens[-40], opens[-10])
            assert not inside.truncated and [r["t"] for r in inside.closed] == opens[-40:-9]

            start = candle_open(now, "1h") - 1200 * HOUR
            rows = await rest.funding("BTC", start)
            hours = [wire.funding_hour(r["time"]) for r in rows]
            assert hours == list(range(start, hours[-1] + 1, HOUR)) and len(rows) >= 1200
            assert all(r == market.funding_rows("BTC", h, h + HOUR - 1, h + HOUR)[0]
                       for r, h in zip(rows, hours, strict=True))

            with pytest.raises(HyperliquidError) as error:  # refused before it is sent
                await rest.info({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "6h", "startTime": 0}})
            assert error.value.status == 422

            fast_sim.fault("429", "2")
            assert (await rest.info({"type": "exchangeStatus"}))["time"] > 0
            assert rest.stats.rate_limited == 2

    asyncio.run(scenario())
    log = [r for r in fast_sim.requests() if r["agent"] == "freqfeed-test-rest"]
    funding = [r for r in log if r.get("type") == "fundingHistory"]
    assert len(funding) == 3 and [r["rows"] for r in funding][:2] == [500, 500]
    assert len([r for r in log if r.get("type") == "candleSnapshot"]) == 2  # one page each: the horizon fits
    assert [r["status"] for r in log][-3:] == [429, 429, 200]
    assert all(r["weight"] == wire.info_weight(r["type"], r["rows"]) for r in log if r.get("status") == 200)


# -- freqfeed's websocket client ----------------------------------------------------------------------


class Recorder(StreamEvents):
    def __init__(self) -> None:
        self.closes: list[Close] = []
        self.gaps: list[Gap] = []
        self.channels: dict[str, int] = {}
        self.connects: list[bool] = []
        self.disconnects: list[str] = []

    def on_close(self, close: Close) -> None:
        self.closes.append(close)

    def on_gap(self, gap: Gap) -> None:
        self.gaps.append(gap)

    def on_message(self, channel: str, data: Any) -> None:
        self.channels[channel] = self.channels.get(channel, 0) + 1

    def on_connect(self, label: str, reconnect: bool) -> None:
        self.connects.append(reconnect)

    def on_disconnect(self, label: str, reason: str, retry_in: float) -> None:
        self.disconnects.append(reason)


async def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


def test_streams_closes_reconnects_and_silence(fast_sim: HyperliquidSim) -> None:
    market = fast_sim.market
    subs = [wire.candle_subscription("BTC", "3m"), wire.candle_subscription("kPEPE", "1m"),
            wire.Subscription("l2Book", "ETH"), wire.Subscription("bbo", "ETH"), wire.Subscription("allMids"),
            wire.Subscription("activeAssetCtx", "BTC")]

    async def scenario() -> None:
        rest = await _synced(fast_sim.url)
        events = Recorder()
        streams = HyperliquidStreams(fast_sim.ws_url, subs, events, now=rest.clock.now, silence_timeout=1.0)
        streams.start()
        try:
            def closed(coin: str, count: int, after: int = 0) -> bool:
                return sum(1 for c in events.closes if c.row["s"] == coin and c.row["t"] > after) >= count

            await _until(lambda: closed("BTC", 3) and closed("kPEPE", 3), 30, "three closes of each coin")
            assert {"l2Book", "bbo", "allMids", "activeAssetCtx"} <= set(events.channels)

            dropped_at = rest.clock.now()
            fast_sim.fault("drop")
            await _until(lambda: len(events.connects) >= 2, 30, "a reconnect after the drop")
            assert events.connects[:2] == [False, True] and events.disconnects
            await _until(lambda: closed("BTC", 2, dropped_at), 30, "closes after the reconnect")

            connects = len(events.connects)
            silent_from = rest.clock.now()
            fast_sim.fault("silent", "2.5")
            await _until(lambda: len(events.connects) > connects, 30, "a reconnect after silence")
            await _until(lambda: closed("BTC", 2, silent_from + 5 * MINUTE), 60, "closes after the silence")
        finally:
            await streams.stop()
            await rest.close()
        for close in events.closes:  # whatever the faults: every close equals the exchange's final candle
            assert close.row == market.final_candle(close.row["s"], close.row["i"], close.row["t"]), close
        assert len({(c.row["s"], c.row["t"]) for c in events.closes}) == len(events.closes)  # each once
        assert any(c.by == "next" for c in events.closes)

    asyncio.run(scenario())


def test_websocket_idle_close_pings_and_limits(fast_sim: HyperliquidSim) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(fast_sim.ws_url, autoping=True) as ws:
                assert (await ws.receive(timeout=5)).data == wire.WS_WELCOME
                await ws.send_str(json.dumps({"method": "subscribe", "subscription": {"type": "candle",
                                                                                      "coin": "BTC"}}))
                error = json.loads((await ws.receive(timeout=5)).data)
                assert error["channel"] == "error" and "Invalid subscription" in error["data"]
                await ws.send_str(json.dumps(wire.PING))
                assert json.loads((await ws.receive(timeout=5)).data) == wire.PONG
                # nothing subscribed, no pings: the server closes after its idle timeout (1.5 s here)
                closing = await ws.receive(timeout=20)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

            async with session.ws_connect(fast_sim.ws_url) as ws:  # 1000 subscriptions per IP, the 1001st refused
                await ws.receive(timeout=5)
                for i in range(wire.MAX_WS_SUBSCRIPTIONS + 1):
                    await ws.send_str(json.dumps({"method": "subscribe",
                                                  "subscription": {"type": "trades", "coin": f"C{i}"}}))
                answers = [json.loads((await ws.receive(timeout=10)).data) for _ in range(1001)]
                assert [a["channel"] for a in answers].count("subscriptionResponse") == 1000
                assert answers[-1]["channel"] == "error" and "1000" in answers[-1]["data"]

            sockets = [await session.ws_connect(fast_sim.ws_url) for _ in range(wire.MAX_WS_CONNECTIONS)]
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(fast_sim.ws_url)
            assert refused.value.status == 429
            for socket in sockets:
                await socket.close()

        # a subscription that carries nothing: only our pings keep the connection open past the idle close
        events = Recorder()
        streams = HyperliquidStreams(fast_sim.ws_url, [wire.candle_subscription("NOSUCH", "1m")], events,
                                     ping_every=0.4, silence_timeout=3600)
        streams.start()
        try:
            await _until(lambda: streams.pongs >= 10, 30, "ten pongs")
        finally:
            await streams.stop()
        assert events.connects == [False] and not events.disconnects

    asyncio.run(scenario())


def test_a_coin_delisted_mid_run(fast_sim: HyperliquidSim) -> None:
    assert not fast_sim.info({"type": "meta"}).json()["universe"][5].get("isDelisted")
    fast_sim.fault("delist", "SOL")
    universe = fast_sim.info({"type": "meta"}).json()["universe"]
    assert universe[5] == {**universe[5], "name": "SOL", "isDelisted": True}  # keeps its index
    assert [a["name"] for a in universe] == list(MAJORS)
    body = wire.candle_snapshot_body("SOL", "1m", 0, fast_sim.now() + HOUR)
    last = fast_sim.info(body).json()[-1]
    wait_for(lambda: fast_sim.now() > last["T"] + 2 * MINUTE, 10, "two exchange minutes")
    assert fast_sim.info(body).json()[-1] == last  # no candle after the delisting
    assert "SOL" not in fast_sim.info({"type": "allMids"}).json()
    assert fast_sim.info({"type": "l2Book", "coin": "SOL"}).json()["levels"] == [[], []]


def test_ccxt_pro_watches_the_simulators_websocket(fast_sim: HyperliquidSim) -> None:
    """freqtrade's websocket path (ccxt.pro watch_ohlcv, watch_order_book) reads the simulator's /ws: what a
    gateway serving these subscriptions must equal."""
    python = os.environ.get("FREQFEED_FREQTRADE_PYTHON")
    if not python:
        pytest.skip("FREQFEED_FREQTRADE_PYTHON is not set (make unit sets it)")
    config = {"urls": {"api": {"public": fast_sim.url, "private": fast_sim.url, "ws": {"public": fast_sim.ws_url}}}}
    result = subprocess.run([python, str(Path(__file__).with_name("hyperliquid_ccxtpro_runner.py")), json.dumps(config),
                             "BTC/USDC:USDC", "3m", "4"], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout)
    assert "error" not in answer, answer
    updates = answer["ohlcv"]
    opens = sorted({row[0] for row in updates})
    assert len(opens) >= 4 and opens == list(range(opens[0], opens[-1] + 1, 3 * MINUTE))
    for t in opens[1:-1]:  # whole candles seen: the last update of each is the exchange's final candle
        last = [row for row in updates if row[0] == t][-1]
        assert last == ohlcv(fast_sim.market.final_candle("BTC", "3m", t) or {})
    book = answer["book"]
    truth = fast_sim.market.book("BTC", book["timestamp"])
    assert truth is not None and book["bids"] == [[float(x["px"]), float(x["sz"])] for x in truth["levels"][0]]


class ProducerRecorder(ProducerEvents):
    """What the producer would hear (freqfeed.exchanges.base.StreamEvents, the interface Binance's LiveStreams uses)."""

    def __init__(self) -> None:
        self.closed: list[tuple[str, str, Candle]] = []
        self.live: list[tuple[str, str, Candle, int]] = []
        self.marks: list[MarkPrice] = []
        self.labels: list[tuple[str, bool]] = []

    async def on_candle(self, pair: str, timeframe: str, candle: Candle) -> None:
        self.closed.append((pair, timeframe, candle))

    def on_live_candle(self, pair: str, timeframe: str, candle: Candle, event_ms: int) -> None:
        self.live.append((pair, timeframe, candle, event_ms))

    async def on_mark_price(self, update: MarkPrice) -> None:
        self.marks.append(update)

    def on_connect(self, label: str, reconnect: bool) -> None:
        self.labels.append((label, reconnect))


def test_live_streams_for_the_producer(fast_sim: HyperliquidSim) -> None:
    market = fast_sim.market
    universe = Universe.from_answer(fast_sim.info({"type": "meta"}).json())
    coins = universe.coins(["BTC/USDC:USDC", "KPEPE/USDC:USDC"])

    async def scenario() -> ProducerRecorder:
        rest = await _synced(fast_sim.url)
        events = ProducerRecorder()
        feed = HyperliquidLiveStreams(fast_sim.ws_url, coins, ["1m", "3m"], events, now=rest.clock.now)
        feed.start()
        try:
            def closes(pair: str, timeframe: str) -> int:
                return sum(1 for p, tf, _ in events.closed if (p, tf) == (pair, timeframe))

            await _until(lambda: all(closes(p, tf) >= 2 for p in coins for tf in ("1m", "3m")), 40,
                         "two closes of every series")
            await _until(lambda: {m.pair for m in events.marks} == set(coins), 20, "mark prices of both pairs")
        finally:
            await feed.stop()
            await rest.close()
        return events

    events = asyncio.run(scenario())
    assert sorted(events.labels) == [("klines 1m", False), ("klines 3m", False), ("markPrice", False)]
    for pair, timeframe, candle in events.closed:  # pairs as freqtrade names them, candles as the exchange's
        assert candle == candle_from_row(market.final_candle(coins[pair], timeframe, candle.open_time) or {})
    assert {(p, tf) for p, tf, _, _ in events.live} == {(p, tf) for p in coins for tf in ("1m", "3m")}
    mark = next(m for m in events.marks if m.pair == "KPEPE/USDC:USDC")
    assert mark.mark_price > 0 and mark.next_funding_ms is not None and mark.next_funding_ms % HOUR == 0
    with pytest.raises(ValueError, match="fixed grid"):
        HyperliquidLiveStreams(fast_sim.ws_url, coins, ["6h"], ProducerRecorder(), now=lambda: 0)


def test_rest_for_the_producer(fast_sim: HyperliquidSim) -> None:
    market = fast_sim.market

    async def scenario() -> None:
        async with HyperliquidProducerRest(await _synced(fast_sim.url)) as rest:
            info = await rest.exchange_info()
            with pytest.raises(UnknownPairsError, match=r"MATIC/USDC:USDC \(delisted\), BTC/USDT:USDT"):
                rest.check_pairs(info, ["BTC/USDC:USDC", "MATIC/USDC:USDC", "BTC/USDT:USDT"])
            rest.check_pairs(info, ["BTC/USDC:USDC", "KPEPE/USDC:USDC"])
            now = await rest.sync_time()
            start = candle_open(now, "3m") - 100 * 3 * MINUTE
            candles, current = await rest.klines_and_current("KPEPE/USDC:USDC", "3m", start, now)
            assert [c.open_time for c in candles] == list(range(start, candles[-1].open_time + 1, 3 * MINUTE))
            assert candles == [candle_from_row(market.final_candle("kPEPE", "3m", c.open_time) or {}) for c in candles]
            # the candle in progress when asked (a 120x clock may have closed more candles after `now`: those
            # lie outside [start, end], as with Binance's klines_and_current)
            assert current is None or (current.open_time > candles[-1].open_time
                                       and (current.open_time - start) % (3 * MINUTE) == 0)
            with pytest.raises(ValueError, match="no mark-price candles"):
                await rest.klines("BTC/USDC:USDC", "1h", start, now, mark=True)
            hour = candle_open(now, "1h")
            rates = await rest.funding_rates("BTC/USDC:USDC", hour - 10 * HOUR, hour)
            assert [r.time for r in rates] == list(range(hour - 10 * HOUR, hour + 1, HOUR))
            assert await rest.next_funding_times() == {"BTCUSDC": hour + HOUR, "KPEPEUSDC": hour + HOUR}
            assert rest.page_candles(20_000) == 5000 and rest.stats.requests > 0

    asyncio.run(scenario())
