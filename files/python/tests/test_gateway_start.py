"""A starting gateway: it holds what its caches will answer until they are loaded (never forwarding for
`loading`), tells systemd READY=1 only then, starts degraded after gateway.load_timeout when InfluxDB is
down, and stops at once on SIGTERM whatever its load is doing.

InfluxDB is reached through a gate (an HTTP proxy in this process) the test opens and closes: while it is
closed, every query waits, so the gateway is observably "loading" for as long as the test needs.
"""

from __future__ import annotations

import http.server
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from freqfeed.config import InfluxDBConfig
from freqfeed.localinflux import LocalInfluxDB, free_port

from .processes import GatewayProcess, ProducerProcess, SimulatorProcess, gateway_config, producer_config, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.dialects("1.x")]

PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
TIMEFRAMES = ["1m", "3m"]
HOP_HEADERS = {"connection", "content-length", "content-encoding", "transfer-encoding", "keep-alive"}


class Gate:
    """An HTTP proxy in front of influxd whose /query requests wait while the gate is closed."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.open = threading.Event()
        self.open.set()
        self.held = 0
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _proxy(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/query"):
                    gate.held += 1
                    gate.open.wait(120)
                try:
                    answer = requests.request(self.command, gate.target + self.path, data=body, timeout=60,
                                              headers={k: v for k, v in self.headers.items()
                                                       if k.lower() not in HOP_HEADERS | {"host"}})
                    self.send_response(answer.status_code)
                    for key, value in answer.headers.items():
                        if key.lower() not in HOP_HEADERS:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)
                except (OSError, requests.RequestException):
                    pass  # the gateway went away while its query waited

            do_GET = do_POST = do_HEAD = _proxy

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.open.set()
        self.server.shutdown()


@dataclass
class Setup:
    work: Path
    influx: InfluxDBConfig
    sim: SimulatorProcess
    gate: Gate


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, influxd: LocalInfluxDB) -> Iterator[Setup]:
    work = tmp_path_factory.mktemp("gateway-start")
    requests.post(f"{influxd.url}/query", data={"q": 'CREATE DATABASE "gs" WITH DURATION 360d'}, timeout=10)
    influx = InfluxDBConfig(url=influxd.url, database="gs")
    sim = SimulatorProcess(work, speed=1, seed=7)
    producer = ProducerProcess(work, producer_config(influx, sim, PAIRS, candles=300, timeframes=TIMEFRAMES))
    producer.start()
    gate = Gate(influxd.url)
    try:
        producer.wait_for_log("backfill done", timeout=120)
        yield Setup(work, influx, sim, gate)
    finally:
        gate.close()
        producer.terminate()
        sim.stop()


class Notifications:
    """A NOTIFY_SOCKET, as systemd binds it for a Type=notify service."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ffn-", dir="/tmp")  # AF_UNIX paths are short
        self.path = f"{self.dir}/notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.lines: list[str] = []

    def drain(self, timeout: float = 0.0) -> list[str]:
        self.sock.settimeout(timeout if timeout > 0 else None)
        self.sock.setblocking(timeout > 0)
        try:
            while True:
                self.lines += self.sock.recv(65536).decode().splitlines()
                self.sock.setblocking(False)
        except (BlockingIOError, TimeoutError):
            pass
        return self.lines

    def wait_ready(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while "READY=1" not in self.lines:
            if time.monotonic() > deadline:
                raise AssertionError(f"no READY=1 after {timeout}s: {self.lines[-5:]}")
            self.drain(0.5)
        return time.monotonic()

    def close(self) -> None:
        self.sock.close()
        Path(self.path).unlink(missing_ok=True)
        Path(self.dir).rmdir()


def gated(setup: Setup) -> InfluxDBConfig:
    return InfluxDBConfig(url=setup.gate.url, database=setup.influx.database, timeout=60)


def test_held_not_forwarded_while_loading_and_ready_only_after_load(setup: Setup) -> None:
    setup.gate.open.clear()
    held_before = setup.gate.held
    notes = Notifications()
    gateway = GatewayProcess(setup.work, gateway_config(gated(setup), setup.sim, PAIRS, TIMEFRAMES), name="held")
    gateway.start(wait=False, env={"NOTIFY_SOCKET": notes.path})
    answers: list[tuple[str, int, int]] = []
    stop = threading.Event()

    def bot() -> None:  # asks from the first moment /ping answers, as a bot restarting with the gateway would
        while not stop.is_set():
            for path, params in (("klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": "200"}),
                                 ("markPriceKlines", {"symbol": "ETHUSDT", "interval": "1h", "limit": "100"}),
                                 ("fundingRate", {"symbol": "BTCUSDT", "limit": "10"})):
                answer = requests.get(f"{gateway.url}/fapi/v1/{path}", params=params, timeout=120)
                answers.append((path, answer.status_code, len(answer.json())))

    try:
        wait_for(lambda: _pings(gateway), 30, "the gateway to answer /ping")
        client = threading.Thread(target=bot, daemon=True)
        client.start()
        wait_for(lambda: setup.gate.held > held_before and gateway.status()["state"] == "loading", 30,
                 "the load to wait at the gate")
        assert "READY=1" not in notes.drain(), notes.lines
        assert any(line.startswith("STATUS=loading") for line in notes.drain(1.0)), notes.lines
        assert not answers, "nothing answered while loading: held"
        setup.gate.open.set()
        notes.wait_ready(60)
        status = gateway.status()
        assert status["state"] == "ready" and status["load"]["seconds"] is not None
        wait_for(lambda: len(answers) >= 9, 30, "the held requests and a few more answered")
        stop.set()
        client.join(30)
        status = gateway.status()
        assert all(code == 200 and rows > 0 for _, code, rows in answers), answers
        assert status["forwarded"] == 0 and "loading" not in status["forward_reasons"], status["forward_reasons"]
        assert status["local"] >= len(answers)
    finally:
        stop.set()
        setup.gate.open.set()
        gateway.terminate()
        notes.close()


def test_influxdb_down_at_start_serves_degraded_after_the_bound(setup: Setup) -> None:
    notes = Notifications()
    down = InfluxDBConfig(url=f"http://127.0.0.1:{free_port()}", database="gs", timeout=2)
    gateway = GatewayProcess(setup.work, gateway_config(down, setup.sim, PAIRS, TIMEFRAMES,
                                                        gateway={"load_timeout": 4}), name="down")
    started = time.monotonic()
    gateway.start(wait=False, env={"NOTIFY_SOCKET": notes.path})
    try:
        ready_at = notes.wait_ready(60)
        print(f"READY=1 after {ready_at - started:.1f}s with InfluxDB down (load_timeout 4s)")
        assert any("degraded" in line for line in notes.lines if line.startswith("STATUS=")), notes.lines
        status = gateway.status()
        assert status["state"] == "degraded" and status["load"]["error"], status["load"]
        answer = requests.get(f"{gateway.url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m",
                                                                        "limit": "5"}, timeout=30)
        assert answer.status_code == 200 and len(answer.json()) == 5
        assert gateway.status()["forward_reasons"].get("loading") == 1
        assert "not loaded after gateway.load_timeout" in gateway.text()
    finally:
        gateway.terminate()
        notes.close()


def test_sigterm_during_a_load_exits_at_once(setup: Setup) -> None:
    setup.gate.open.clear()
    held_before = setup.gate.held
    gateway = GatewayProcess(setup.work, gateway_config(gated(setup), setup.sim, PAIRS, TIMEFRAMES), name="term")
    gateway.start(wait=False)
    try:
        wait_for(lambda: setup.gate.held > held_before, 30, "a load query waiting at the gate")
        assert gateway.process is not None
        started = time.monotonic()
        gateway.process.send_signal(signal.SIGTERM)
        code = gateway.process.wait(timeout=5)
        print(f"exited {time.monotonic() - started:.2f}s after SIGTERM, its load waiting on InfluxDB")
        assert code == 0, gateway.text()[-2000:]
    finally:
        setup.gate.open.set()
        if gateway.process is not None and gateway.process.poll() is None:
            gateway.process.kill()


def _pings(gateway: GatewayProcess) -> bool:
    try:
        return requests.get(f"{gateway.url}/fapi/v1/ping", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_a_restart_restores_the_cache_snapshot_and_tops_it_up(setup: Setup) -> None:
    """With a state directory (systemd's StateDirectory=), a restart takes its closed candles from the
    snapshot, reads from InfluxDB only what is newer, and answers exactly as before."""
    state = setup.work / "restart-state"
    config = gateway_config(setup.influx, setup.sim, PAIRS, TIMEFRAMES, gateway={"state_dir": str(state)})
    first = GatewayProcess(setup.work, config, name="restart1").start()
    query = {"symbol": "BTCUSDT", "interval": "3m", "limit": "200", "endTime": str(int(time.time() * 1000) - 600_000)}
    try:
        wait_for((state / "gateway-cache.bin").exists, 30, "the cache snapshot")
        before = requests.get(f"{first.url}/fapi/v1/klines", params=query, timeout=10).json()
        assert first.status()["load"]["restored_series"] == 0
    finally:
        first.terminate()
    notes = Notifications()
    second = GatewayProcess(setup.work, config, name="restart2")
    try:
        second.start(wait=False, env={"NOTIFY_SOCKET": notes.path})
        notes.wait_ready(60)
        status = second.status()
        assert status["state"] == "ready"
        assert status["load"]["restored_series"] == len(PAIRS) * (len(TIMEFRAMES) + 1), status["load"]
        assert status["load"]["pieces_total"] == 2, "only the candles in progress and funding from InfluxDB"
        assert requests.get(f"{second.url}/fapi/v1/klines", params=query, timeout=10).json() == before
        newest = requests.get(f"{second.url}/fapi/v1/klines", params={"symbol": "ETHUSDT", "interval": "1m",
                                                                      "limit": "100"}, timeout=10)
        assert newest.status_code == 200 and len(newest.json()) == 100
        assert second.status()["forwarded"] == 0
    finally:
        second.terminate()
        notes.close()
