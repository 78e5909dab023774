"""The gateway as a careless or hostile client finds it (issue 16): raw requests that try to get past the
allowlist, Binance's exact answers, a book stream that goes silent while open, and a flood of junk.

Requests go out as raw bytes on a socket (no client-side normalisation of the target); the simulator's request
log tells what reached the exchange.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

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

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.dialects("1.x")]

PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
GATEWAY_AGENT = "freqfeed-gateway/"
# what the gateway asks on its own (clock, exchangeInfo), whatever the clients do
OWN_REQUESTS = {"/fapi/v1/time", "/fapi/v1/exchangeInfo"}


@dataclass
class Hard:
    sim: SimulatorProcess
    gateway: GatewayProcess


@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory, influxd: LocalInfluxDB) -> Iterator[Hard]:
    work = tmp_path_factory.mktemp("hardening")
    requests.post(f"{influxd.url}/query", data={"q": 'CREATE DATABASE "hard" WITH DURATION 360d'}, timeout=10)
    influx = InfluxDBConfig(url=influxd.url, database="hard")
    sim = SimulatorProcess(work, speed=1, seed=31)
    producer = ProducerProcess(work, producer_config(influx, sim, PAIRS, candles=120, timeframes=["1m"])).start()
    gateway = None
    try:
        producer.wait_for_log("backfill done", timeout=120)
        gateway = GatewayProcess(work, gateway_config(influx, sim, PAIRS, ["1m"], gateway={
            "book_silence": 3, "book_heartbeat": 4, "max_wait": 0, "forward_cache_entries": 300,
            "forward_cache_mb": 2})).start()
        wait_for(lambda: gateway.status()["books"]["streamed"] == len(PAIRS), 30, "the configured pairs' books")
        yield Hard(sim, gateway)
    finally:
        if gateway is not None and gateway.process is not None and gateway.process.poll() is None:
            gateway.terminate()
        producer.terminate()
        sim.stop()


def raw(gateway: GatewayProcess, request_line: bytes, headers: bytes = b"") -> tuple[int, bytes]:
    """Send one request exactly as given; (HTTP status, body); status 0 when the server just closed."""
    host, port = gateway.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request_line + b"\r\nHost: x\r\n" + headers + b"Connection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not data.startswith(b"HTTP/1."):
        return 0, data
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def client_requests(sim: SimulatorProcess) -> dict[str, int]:
    """What the gateway sent the exchange so far, per path, without its own clock and exchangeInfo requests."""
    by_path = client_stats(sim, GATEWAY_AGENT)["requests"]
    return {path: count for path, count in by_path.items() if path not in OWN_REQUESTS}


BYPASSES = [
    b"/fapi/v1/klines%3Fsignature=x",
    b"/fapi/v1/klines%3fsymbol=BTCUSDT%26interval=1m%26signature=x",
    b"/fapi/v1/%2e%2e/%2e%2e/sapi/v1/account",
    b"/fapi/v1/exchangeInfo/../../v2/account",
    b"/fapi/v1/%2E%2E/v2/account",
    b"/fapi/v1/klines%2f..%2f..%2fv2%2faccount",
    b"/fapi/v1/%252e%252e/%252e%252e/sapi/v1/account",
    b"/fapi/v1/%252e%252e%252fv2%252faccount",
    b"/fapi/v1/./exchangeInfo",
    b"/fapi/v1//exchangeInfo",
    b"/fapi/v1/exchangeInfo/",
    b"/fapi/v1/EXCHANGEINFO",
    b"/FAPI/V1/exchangeInfo",
    b"/fapi/v1/exchangeInfo;signature=x",
    b"/fapi/v1/exchangeInfo;/../../v2/account",
    b"/fapi/v1/exchangeInfo\\..\\..\\v2\\account",
    b"/fapi/v1/exchangeInf%6F",
    b"/fapi/v1/exchangeInfo%00",
    b"/fapi/v1/exchangeInfo\x00",
    b"/fapi/v1/exchange\x01Info",
    b"/fapi/v1/exchangeInfo%23x",
    b"/fapi/v1/exchangeInfo#x",
    b"/fapi/v1/exchangeInf\xc3\xb6",
    b"http://127.0.0.1/fapi/v1/exchangeInfo",
    b"http://fapi.binance.com/fapi/v2/account",
    b"//fapi.binance.com/fapi/v2/account",
    b"/sapi/v1/account",
    b"/fapi/v2/account",
    b"/fapi/v2/balance",
    b"/fapi/v1/openOrders?symbol=BTCUSDT",
    b"/fapi/v1/exchangeInfo?signature=x",
    b"/fapi/v1/exchangeInfo?timestamp=1",
    b"/fapi/v1/exchangeInfo?recvWindow=5000",
    b"/fapi/v1/exchangeInfo?sig%6Eature=x",
    b"/fapi/v1/depth?symbol=BTCUSDT&limit=100&x=1",
    b"/fapi/v1/depth?symbol=BTCUSDT&symbol=ETHUSDT&limit=100",
    b"/fapi/v1/ticker/24hr?symbol=BTCUSDT&_=1",
    b"/api/v3/exchangeInfo",
]
METHODS = [b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE", b"PROPFIND", b"FOO"]


def test_no_bypass_reaches_the_exchange(hard: Hard) -> None:
    seen = client_requests(hard.sim)
    answers = {}
    for target in BYPASSES:
        answers[target] = raw(hard.gateway, b"GET " + target + b" HTTP/1.1")
    for method in METHODS:
        for target in (b"/fapi/v1/ping", b"/fapi/v1/depth?symbol=BTCUSDT&limit=100", b"/fapi/v1/order"):
            answers[method + b" " + target] = raw(hard.gateway, method + b" " + target + b" HTTP/1.1")
    answers[b"CONNECT"] = raw(hard.gateway, b"CONNECT fapi.binance.com:443 HTTP/1.1")
    answers[b"api key"] = raw(hard.gateway, b"GET /fapi/v1/depth?symbol=BTCUSDT&limit=100 HTTP/1.1",
                              b"X-MBX-APIKEY: k\r\n")
    answers[b"api key, lower case"] = raw(hard.gateway, b"GET /fapi/v1/ticker/24hr HTTP/1.1", b"x-mbx-apikey: k\r\n")
    for what, (status, body) in answers.items():
        assert status == 0 or 400 <= status < 500, f"{what!r}: HTTP {status} {body[:200]!r}"
        assert b"signature" not in body, f"{what!r}: the refusal does not echo the query"
    time.sleep(0.5)
    assert client_requests(hard.sim) == seen, "0 requests reached the exchange"
    logged = [r for r in hard.sim.requests() if r["agent"].startswith(GATEWAY_AGENT)]
    assert not any("signature" in json.dumps(r) or "account" in r["path"] for r in logged)
    status = hard.gateway.status()
    assert set(status["by_endpoint"]) <= {"other", "depth", "ticker/24hr", "ping", "exchangeInfo"}
    print(f"\nbypasses: {len(answers)} raw requests, all refused, 0 forwarded; refusals by kind "
          f"{status['refused_reasons']}")


def shape(value: Any) -> Any:
    """The structure of an answer: keys in order and value types, recursively (first element of lists)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def test_local_answers_have_binances_keys_types_and_codes(hard: Hard) -> None:
    now = int(time.time() * 1000)
    hour = 3_600_000
    cases: list[tuple[str, dict[str, Any]]] = [
        ("klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 50}),
        ("markPriceKlines", {"symbol": "BTCUSDT", "interval": "1h", "startTime": now - 48 * hour, "limit": 10}),
        ("fundingRate", {"symbol": "BTCUSDT", "startTime": now - 72 * hour, "limit": 5}),
        ("depth", {"symbol": "BTCUSDT", "limit": 5}),
        ("depth", {"symbol": "ETHUSDT", "limit": 20}),
        ("ticker/bookTicker", {"symbol": "BTCUSDT"}),
        ("time", {}),
        ("ping", {}),
        ("exchangeInfo", {}),
        # errors
        ("klines", {"symbol": "NOPEUSDT", "interval": "1m"}),
        ("klines", {"symbol": "BTCUSDT", "interval": "2m"}),
        ("klines", {"symbol": "BTCUSDT"}),
        ("klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1501}),
        ("klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": "x"}),
        ("klines", {"symbol": "BTCUSDT", "interval": "1m", "foo": 1}),
        ("depth", {"symbol": "BTCUSDT", "limit": 7}),
        ("depth", {"symbol": "BTCUSDT", "limit": 1}),
        ("depth", {"symbol": "BTCUSDT", "limit": 1001}),
        ("depth", {"symbol": "BTCUSDT", "limit": 5, "depth": 5}),
        ("depth", {"symbol": "NOPEUSDT", "limit": 5}),
        ("ticker/bookTicker", {"symbol": "NOPEUSDT"}),
        ("ticker/bookTicker", {"symbol": "BTCUSDT", "limit": 5}),
        ("fundingRate", {"symbol": "NOPEUSDT"}),
        ("fundingRate", {"symbol": "BTCUSDT", "limit": 1001}),
        ("time", {"x": 1}),
        ("ticker/24hr", {"symbol": "NOPEUSDT"}),  # a forwarded endpoint: an unknown symbol is refused here
        ("premiumIndex", {"symbol": "NOPEUSDT"}),
    ]
    # every book ticker, once all are streamed
    requests.get(f"{hard.gateway.url}/fapi/v1/ticker/bookTicker", timeout=10)
    wait_for(lambda: hard.gateway.status()["books"]["ticker_streams"] >= len(hard.sim.market.instruments), 60,
             "a book ticker stream for every symbol")
    cases.append(("ticker/bookTicker", {}))
    time.sleep(1.0)
    before = hard.gateway.status()["by_endpoint"]
    lines = []
    for endpoint, params in cases:
        mine = requests.get(f"{hard.gateway.url}/fapi/v1/{endpoint}", params=params, timeout=10)
        theirs = requests.get(f"{hard.sim.url}/fapi/v1/{endpoint}", params=params, timeout=10)
        assert mine.status_code == theirs.status_code, (endpoint, params, mine.text[:300], theirs.text[:300])
        a, b = mine.json(), theirs.json()
        if mine.status_code != 200:
            assert a == b, (endpoint, params)
            lines.append(f"{endpoint} {params}: {a['code']} both")
            continue
        if endpoint == "ticker/bookTicker" and not params:
            assert len(a) == len(b) and {e["symbol"] for e in a} == {e["symbol"] for e in b}
            a, b = a[:1], b[:1]
        assert shape(a) == shape(b), (endpoint, params, shape(a), shape(b))
        lines.append(f"{endpoint} {params}: keys {list(a) if isinstance(a, dict) else 'list'} equal")
    after = hard.gateway.status()["by_endpoint"]
    local = {e: after.get(e, {}).get("local", 0) - before.get(e, {}).get("local", 0) for e, _ in cases}
    for endpoint in ("klines", "depth", "ticker/bookTicker", "time", "ping", "exchangeInfo"):
        assert local[endpoint] > 0, f"{endpoint} was answered here: {local}"
    for endpoint in ("ticker/24hr", "premiumIndex"):
        assert after[endpoint].get("local errors", 0) - before.get(endpoint, {}).get("local errors", 0) == 1
        assert after[endpoint].get("forwarded", 0) == before.get(endpoint, {}).get("forwarded", 0), endpoint
    print("\nwire fidelity, gateway vs exchange:\n  " + "\n  ".join(lines) + f"\n  answered locally: {local}")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_silent_book_stream_is_replaced_and_never_served(hard: Hard) -> None:
    def upstream_depth() -> int:
        return int(client_stats(hard.sim, GATEWAY_AGENT)["requests"].get("/fapi/v1/depth", 0))

    def depth() -> requests.Response:
        return requests.get(f"{hard.gateway.url}/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 5}, timeout=10)

    wait_for(lambda: depth().status_code == 200 and hard.gateway.status()["books"]["connections_up"] >= 1, 30,
             "books streamed")
    books = hard.gateway.status()["books"]
    silences, forwarded_before = books["silences"], upstream_depth()
    hard.sim.fault("silent", 20)
    started = time.monotonic()
    served_stale = 0
    forwarded = 0

    def replaced() -> bool:
        nonlocal served_stale, forwarded
        asked_ms = time.time() * 1000  # the simulator runs on the real clock (speed 1)
        answer = depth()
        assert answer.status_code == 200
        body = answer.json()
        if asked_ms - body["E"] > 1000 + 250:  # older than book_max_age (1 s) when asked, with clock slack
            served_stale += 1
        return bool(hard.gateway.status()["books"]["silences"] > silences)

    wait_for(replaced, 15, "the silent connection to be noticed", interval=0.1)
    detected = time.monotonic() - started
    forwarded = upstream_depth() - forwarded_before
    assert served_stale == 0, "no stale book was served while the stream was silent"
    assert forwarded >= 1, "books were forwarded meanwhile"
    status = hard.gateway.status()["books"]
    assert "silent" in hard.gateway.text()
    # once the exchange speaks again, the replacement connection streams and books come from it again
    wait_for(lambda: hard.gateway.status()["books"]["connections_up"] == hard.gateway.status()["books"]["connections"]
             and time.monotonic() - started > 20, 60, "the silence to end")

    def streamed_again() -> bool:
        before = upstream_depth()
        return depth().status_code == 200 and upstream_depth() == before

    wait_for(streamed_again, 60, "depth served from the streams again")
    print(f"\nsilent stream: detected and closed after {detected:.1f}s (book_silence 3 s), {forwarded} depth "
          f"requests forwarded meanwhile, 0 stale; silences {status['silences']}, reconnects {status['reconnects']}")


def test_a_junk_flood_keeps_memory_status_and_weight_bounded(hard: Hard) -> None:
    assert hard.gateway.process is not None
    pid = hard.gateway.process.pid
    host, port = hard.gateway.url.removeprefix("http://").rsplit(":", 1)
    weight_before = client_stats(hard.sim, GATEWAY_AGENT)["weight"]
    started = time.monotonic()
    rss_before = rss_kb(pid)
    size_before = len(requests.get(f"{hard.gateway.url}/_freqfeed/status", timeout=10).content)

    def flood(part: int) -> dict[int, int]:
        statuses: dict[int, int] = {}
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        for n in range(part, 20_000, 4):
            for target in (f"/junk/{n}/x{n}", f"/fapi/v1/ticker/24hr?symbol=ETHUSDT&x={n}",
                           f"/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=5&startTime={n * 60_000}"
                           if n % 10 == 0 else f"/fapi/v1/nothing{n}%2e"):
                connection.putrequest("GET", target, skip_accept_encoding=True)
                connection.endheaders()
                response = connection.getresponse()
                response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
        connection.close()
        return statuses

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(flood, range(4)))
    seconds = time.monotonic() - started
    statuses: dict[int, int] = {}
    for result in results:
        for code, count in result.items():
            statuses[code] = statuses.get(code, 0) + count
    rss_after = rss_kb(pid)
    body = requests.get(f"{hard.gateway.url}/_freqfeed/status", timeout=10).content
    status = json.loads(body)
    weight = client_stats(hard.sim, GATEWAY_AGENT)["weight"] - weight_before
    minutes = seconds / 60
    budget = 2400 * 0.5 * (int(minutes) + 2)  # max_weight_share 0.5 of 2400, per started minute
    print(f"\njunk flood: {sum(statuses.values())} requests in {seconds:.0f}s ({statuses}); gateway RSS "
          f"{rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MB (+{(rss_after - rss_before) / 1024:.1f} MB); status "
          f"{size_before} -> {len(body)} bytes; upstream weight {weight} (budget {budget:.0f}); forward cache "
          f"{status['forward_cache']}")
    assert len(body) < 20_000, "the status answer does not grow with junk"
    # counters keyed by the allowlist's endpoints (whatever earlier tests in this module asked) and one `other`
    known = {e.name for e in wire.PUBLIC_ENDPOINTS.values() if e.market == "futures"} | {"other"}
    assert set(status["by_endpoint"]) <= known
    assert not {k for k in status["by_endpoint"] if "junk" in k or "nothing" in k or "x=" in k}
    assert rss_after - rss_before < 64 * 1024, "memory stays bounded"
    assert weight <= budget, "upstream traffic stays within the weight budget"
    assert status["forward_cache"]["entries"] <= 300
