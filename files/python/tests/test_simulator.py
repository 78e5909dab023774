"""`freqfeed simulate` on the wire: Binance's paths, parameters, shapes, weights, errors and streams."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets

from freqfeed.timeframes import candle_open, timeframe_ms

from .processes import SimulatorProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    simulator = SimulatorProcess(tmp_path_factory.mktemp("sim"), speed=60)
    yield simulator
    simulator.stop()


def get(sim: SimulatorProcess, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{sim.url}{path}", params=params, timeout=10)


def test_klines_shape_window_and_in_progress_candle(sim: SimulatorProcess) -> None:
    response = get(sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="15m", limit=5)
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 5
    now = sim.now()
    assert rows[-1][0] == candle_open(now, "15m"), "the candle in progress comes last"
    for row in rows:
        assert len(row) == 12
        assert isinstance(row[0], int) and isinstance(row[6], int) and isinstance(row[8], int)
        assert all(isinstance(row[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10, 11))
        assert row[6] == row[0] + timeframe_ms("15m") - 1
        assert float(row[2]) >= max(float(row[1]), float(row[4])) and float(row[3]) <= min(float(row[1]), float(row[4]))
    start = rows[0][0]
    ranged = get(sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="15m", startTime=start + 1,
                 endTime=rows[2][0], limit=1500).json()
    assert [r[0] for r in ranged] == [rows[1][0], rows[2][0]], "startTime: opens at or after it; endTime: up to it"


def test_higher_timeframes_are_exact_aggregates(sim: SimulatorProcess) -> None:
    start = candle_open(sim.now(), "15m") - 4 * timeframe_ms("15m")
    big = get(sim, "/fapi/v1/klines", symbol="ETHUSDT", interval="15m", startTime=start, limit=1).json()[0]
    small = get(sim, "/fapi/v1/klines", symbol="ETHUSDT", interval="3m", startTime=start, limit=5).json()
    assert big[1] == small[0][1] and big[4] == small[-1][4]
    assert float(big[2]) == max(float(r[2]) for r in small) and float(big[3]) == min(float(r[3]) for r in small)
    assert round(float(big[5]), 3) == round(sum(float(r[5]) for r in small), 3)


@pytest.mark.parametrize(("limit", "weight"), [(1, 1), (99, 1), (100, 2), (499, 2), (500, 5), (1000, 5), (1001, 10),
                                               (1500, 10)])
def test_klines_weight_follows_limit(sim: SimulatorProcess, limit: int, weight: int) -> None:
    first = int(get(sim, "/fapi/v1/time").headers["X-MBX-USED-WEIGHT-1M"])
    second = get(sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h", limit=limit)
    used = int(second.headers["X-MBX-USED-WEIGHT-1M"])
    if used > first:  # not across an exchange minute boundary (one lasts a second at 60x)
        assert used - first == weight


@pytest.mark.parametrize(("params", "code"), [
    ({"symbol": "NOPEUSDT", "interval": "1h"}, -1121),
    ({"symbol": "BTCUSDT", "interval": "7m"}, -1120),
    ({"symbol": "BTCUSDT", "interval": "1h", "limit": 1501}, -1130),
    ({"interval": "1h"}, -1102),
    ({"symbol": "BTCUSDT", "interval": "1h", "startTime": 10, "endTime": 5}, -1023),
    ({"symbol": "BTCUSDT", "interval": "1h", "startTime": "yesterday"}, -1100),
])
def test_errors_have_binance_codes(sim: SimulatorProcess, params: dict[str, Any], code: int) -> None:
    response = get(sim, "/fapi/v1/klines", **params)
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_spot_api(sim: SimulatorProcess) -> None:
    rows = get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="3m", limit=1000)
    assert rows.status_code == 200 and len(rows.json()) == 1000
    assert get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="3m", limit=1001).json()["code"] == -1130
    info = get(sim, "/api/v3/exchangeInfo").json()
    assert info["rateLimits"][0]["limit"] == 6000
    assert info["symbols"][0]["filters"][0]["filterType"] == "PRICE_FILTER"


def test_funding_and_premium_index(sim: SimulatorProcess) -> None:
    rates = get(sim, "/fapi/v1/fundingRate", symbol="BTCUSDT", limit=3).json()
    assert len(rates) == 3
    assert set(rates[0]) == {"symbol", "fundingTime", "fundingRate", "markPrice"}
    assert rates[1]["fundingTime"] - rates[0]["fundingTime"] == 8 * 3_600_000
    premium = get(sim, "/fapi/v1/premiumIndex", symbol="BTCUSDT").json()
    assert premium["nextFundingTime"] == rates[-1]["fundingTime"] + 8 * 3_600_000
    assert len(get(sim, "/fapi/v1/premiumIndex").json()) == len(sim.market.instruments)


def test_weight_budget_then_429_then_ban(tmp_path: Path) -> None:
    start = (int(time.time() * 1000) // 60_000) * 60_000 + 2_000  # early in an exchange minute, real time
    own = SimulatorProcess(tmp_path, speed=1, start=start)
    try:
        session = requests.Session()
        answers = [session.get(f"{own.url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m",
                                                                        "limit": 1500}, timeout=10)
                   for _ in range(240 + 12)]
        statuses = [a.status_code for a in answers]
        first_429 = statuses.index(429)
        assert set(statuses[:first_429]) == {200}
        used = int(answers[first_429 - 1].headers["X-MBX-USED-WEIGHT-1M"])
        assert used <= 2400 < used + 10, "a request is refused exactly when it would pass 2400 weight per minute"
        assert first_429 >= 239
        assert answers[first_429].json()["code"] == -1003
        assert 1 <= int(answers[first_429].headers["Retry-After"]) <= 60
        assert statuses[-1] == 418, "a client that keeps going after 429s is banned"
        assert int(answers[-1].headers["Retry-After"]) >= 60
    finally:
        own.stop()


async def listen(url: str, seconds: float, subscribe: list[str] | None = None) -> list[dict[str, Any]]:
    messages = []
    async with websockets.connect(url) as ws:
        if subscribe:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": subscribe, "id": 7}))
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=left)))
            except TimeoutError:
                break
    return messages


def test_routed_base_delivers_and_bare_base_stays_silent(sim: SimulatorProcess) -> None:
    streams = "btcusdt@kline_3m/ethusdt@markPrice"

    async def both() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return await asyncio.gather(listen(f"ws://127.0.0.1:{sim.port}/market/stream?streams={streams}", 7),
                                    listen(f"ws://127.0.0.1:{sim.port}/stream?streams={streams}", 7))

    routed, bare = asyncio.run(both())
    closed = [m for m in routed if m["data"].get("e") == "kline" and m["data"]["k"]["x"]]
    assert len(closed) >= 2, "a 3m candle closes every 3 s at 60x"
    kline = closed[-1]
    assert kline["stream"] == "btcusdt@kline_3m"
    assert set(kline["data"]["k"]) >= {"t", "T", "s", "i", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"}
    assert any(m["data"].get("e") == "markPriceUpdate" for m in routed)
    assert bare == [], "kline and markPrice subscriptions on the bare base are accepted and never delivered"


def test_raw_stream_and_live_subscribe(sim: SimulatorProcess) -> None:
    raw = asyncio.run(listen(f"ws://127.0.0.1:{sim.port}/market/ws/solusdt@kline_3m", 4))
    assert raw and "stream" not in raw[0] and raw[0]["e"] == "kline"
    subscribed = asyncio.run(listen(f"ws://127.0.0.1:{sim.port}/market/ws", 4, subscribe=["btcusdt@kline_3m"]))
    assert subscribed[0] == {"result": None, "id": 7}
    assert any(m.get("e") == "kline" for m in subscribed[1:])
    bare_ack = asyncio.run(listen(f"ws://127.0.0.1:{sim.port}/ws", 2, subscribe=["btcusdt@kline_3m"]))
    assert bare_ack == [{"result": None, "id": 7}]
