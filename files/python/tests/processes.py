"""The simulator and the producer as real processes, and the check of InfluxDB against the truth."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import yaml

from freqfeed.config import InfluxDBConfig, exchange_symbol
from freqfeed.exchanges.binance.wire import format_ticks
from freqfeed.exchanges.hyperliquid.simulator import HyperliquidMarket
from freqfeed.influx import InfluxDB
from freqfeed.localinflux import free_port
from freqfeed.schema import FUNDING_MEASUREMENT, MARK_MEASUREMENT, ohlcv_measurement, series_select
from freqfeed.simulator.market import Market
from freqfeed.timeframes import last_closed_open, timeframe_ms

from .helpers import influx_section


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


RUNNING: list[subprocess.Popen[bytes]] = []  # every process a test started: conftest stops what is left


def stop_leftovers(keep: int = 0) -> None:
    """Kill whatever was started after the first `keep` processes and not stopped (a failing test must not
    leak a producer)."""
    while len(RUNNING) > keep:
        process = RUNNING.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


class SimulatorProcess:
    def __init__(self, workdir: Path, *, speed: float = 60, seed: int = 11, start: int | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.speed, self.seed = speed, seed
        self.market = Market(seed)
        command = [sys.executable, "-m", "freqfeed", "simulate", "--port", str(self.port), "--speed", str(speed),
                   "--seed", str(seed)]
        if start is not None:
            command += ["--start", str(start)]
        self.log = workdir / f"simulator-{self.port}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        RUNNING.append(self.process)
        wait_for(self._up, 30, "the simulator")

    def _up(self) -> bool:
        try:
            return requests.get(f"{self.url}/fapi/v1/ping", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def fault(self, name: str, value: float | None = None) -> str:
        params: dict[str, Any] = {"name": name} if value is None else {"name": name, "value": value}
        answer = requests.post(f"{self.url}/_sim/fault", params=params, timeout=5)
        answer.raise_for_status()
        return str(answer.json()["result"])

    def stats(self) -> dict[str, Any]:
        return dict(requests.get(f"{self.url}/_sim/stats", timeout=5).json())

    def now(self) -> int:
        return int(self.stats()["now"])

    def requests(self, agent: str | None = None) -> list[dict[str, Any]]:
        """The simulator's last REST requests: exchange time `t`, `agent`, `path`, `query`."""
        params = {"agent": agent} if agent else {}
        return list(requests.get(f"{self.url}/_sim/requests", params=params, timeout=10).json())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class HyperliquidSim:
    """The Hyperliquid simulator as a process (`freqfeed simulate --exchange hyperliquid`), its truth
    HyperliquidMarket(seed) in `market`."""

    def __init__(self, workdir: Path, *, speed: float, idle_close: float = 60.0, seed: int = 7,
                 start_ms: int | None = None, via_cli: bool = False, extra_coins: int = 0,
                 wall_clock: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.speed = speed
        self.start_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self.market = HyperliquidMarket(seed, extra_coins=extra_coins, start_ms=self.start_ms)
        command = [sys.executable, "-m", "freqfeed.exchanges.hyperliquid.simulator", "--port", str(self.port),
                   "--speed", str(speed), "--seed", str(seed), "--start", str(self.start_ms),
                   "--idle-close", str(idle_close), "--coins", str(extra_coins)]
        if wall_clock:  # its clock is the wall clock (speed 1), not start_ms plus the seconds since it started
            command += ["--origin", str(self.start_ms)]
        if via_cli:  # the operator's command (no --idle-close there: Hyperliquid's 60 s)
            command = [sys.executable, "-m", "freqfeed", "simulate", "--exchange", "hyperliquid", "--port",
                       str(self.port), "--speed", str(speed), "--seed", str(seed), "--start", str(self.start_ms)]
        self.log = workdir / f"hyperliquid-{self.port}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        RUNNING.append(self.process)
        wait_for(self._up, 30, "the Hyperliquid simulator")

    def _up(self) -> bool:
        try:
            return self.info({"type": "exchangeStatus"}).status_code == 200
        except requests.RequestException:
            return False

    def info(self, body: Any) -> requests.Response:
        return requests.post(f"{self.url}/info", json=body, timeout=30)

    def stats(self) -> dict[str, Any]:
        return dict(requests.get(f"{self.url}/_sim/stats", timeout=10).json())

    def now(self) -> int:
        return int(self.stats()["now"])

    def requests(self, kind: str | None = None) -> list[dict[str, Any]]:
        return list(requests.get(f"{self.url}/_sim/requests", params={"type": kind} if kind else {},
                                 timeout=10).json())

    def fault(self, name: str, value: str | None = None) -> None:
        params = {"name": name} | ({"value": value} if value is not None else {})
        requests.post(f"{self.url}/_sim/fault", params=params, timeout=10).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class ProducerProcess:
    def __init__(self, workdir: Path, config: dict[str, Any], name: str = "producer") -> None:
        self.config_path = workdir / f"{name}.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ProducerProcess:
        handle = open(self.log, "ab")  # noqa: SIM115 - the process owns it
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "freqfeed", "produce", "--config",
                                         str(self.config_path)], stdout=handle, stderr=handle, env=env)
        RUNNING.append(self.process)
        handle.close()
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60, count: int = 1) -> None:
        def seen() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"producer exited with {self.process.returncode}:\n{self.text()[-3000:]}")
            return self.text().count(text) >= count

        wait_for(seen, timeout, f"{text!r} in the producer log")

    def terminate(self, timeout: float = 15) -> tuple[int, float]:
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


def kline_pages(requests_log: list[dict[str, Any]]) -> list[tuple[str, str, str, int, int]]:
    """(path, symbol, interval, first open, last open) of every klines / mark klines request in a
    simulator's request log (`SimulatorProcess.requests`)."""
    pages = []
    for r in requests_log:
        if r["path"] in ("/fapi/v1/klines", "/fapi/v1/markPriceKlines"):
            q = r["query"]
            period = timeframe_ms(q["interval"])
            first = int(q["startTime"])
            last = min(int(q["endTime"]) // period * period, first + (int(q["limit"]) - 1) * period)
            pages.append((r["path"], q["symbol"], q["interval"], first, last))
    return pages


def producer_config(influx: InfluxDBConfig, sim: SimulatorProcess, pairs: list[str], *,
                    candles: int = 60, ws_path: str = "/market", **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "influxdb": influx_section(influx),
        "pairs": pairs,
        "timeframes": ["3m", "15m", "1h"],
        "trading_mode": "futures",
        "exchange": {"rest_url": sim.url, "ws_url": f"ws://127.0.0.1:{sim.port}{ws_path}", "request_delay": 0.02},
        "backfill": {"candles": candles},
        "producer": {"metrics_listen": ""},  # tests/test_metrics.py turns it on, on a free port
        "log_level": "INFO",
    }
    for key, value in extra.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def expected_candles(market: Market, pair: str, timeframe: str, first: int, last: int,
                     *, mark: bool = False) -> list[tuple[float, ...]]:
    symbol = exchange_symbol(pair)
    inst = market.instrument(symbol)
    period = timeframe_ms(timeframe)
    truth = market.candles(symbol, timeframe, first, (last - first) // period + 1, mark=mark)
    columns = [[float(x) for x in format_ticks(getattr(truth, n), inst.price_decimals)]
               for n in ("open", "high", "low", "close")]
    if not mark:
        columns.append([float(x) for x in format_ticks(truth.volume, inst.quantity_decimals)])
    return [(int(t), *row) for t, *row in zip(truth.open_time, *columns, strict=True)]


def stored(client: InfluxDB, measurement: str, pair: str, fields: str,
           since_ms: int | None = None) -> list[tuple[Any, ...]]:
    """The stored rows of one series; with `since_ms`, from then to a day ahead, in the time windows
    InfluxDB 3 Core's file limit allows (the client's own narrowing)."""
    if since_ms is not None:
        select = series_select(measurement, [f.strip() for f in fields.split(",")], pair, since_ms,
                               int(time.time() * 1000) + 400 * 86_400_000)
        [each] = client.select_each([select])
        if isinstance(each, Exception):
            raise each
        return [tuple(row) for row in each[0].values] if each else []
    [answer] = client.query(f"SELECT {fields} FROM \"{measurement}\" WHERE pair = '{pair}'")
    return [tuple(row) for row in answer[0].values] if answer else []


def newest_closed_all_stored(client: InfluxDB, sim: SimulatorProcess, pairs: list[str],
                             timeframes: list[str]) -> int | None:
    """The simulator time if every series holds its newest closed candle (1.5 real s of slack)."""
    now = sim.now()
    slack = int(1500 * sim.speed)
    for timeframe in timeframes:
        wanted = last_closed_open(now - slack, timeframe)
        statements = [f"SELECT last(close) FROM \"{ohlcv_measurement(timeframe)}\" WHERE pair = '{p}'" for p in pairs]
        for answer in client.query(statements):
            if not answer or int(answer[0].values[0][0]) < wanted:
                return None
    return now


def assert_complete(client: InfluxDB, sim: SimulatorProcess, pairs: list[str], timeframes: list[str],
                    until: int, *, futures: bool = True, first_at_most: int | None = None,
                    since_ms: int | None = None) -> dict[str, int]:
    """Every series, from its first stored candle to the newest closed at `until`: no gap, no extra
    point, every value equal to the simulator's. Returns the number of candles checked per series."""
    checked: dict[str, int] = {}
    kinds = [(tf, ohlcv_measurement(tf), False) for tf in timeframes]
    if futures:
        kinds.append(("1h", MARK_MEASUREMENT, True))
    for pair in pairs:
        for timeframe, measurement, mark in kinds:
            fields = "open, high, low, close" if mark else "open, high, low, close, volume"
            rows = stored(client, measurement, pair, fields, since_ms)
            assert rows, f"no {measurement} candles for {pair}"
            last = last_closed_open(until, timeframe)
            rows = [r for r in rows if r[0] <= last]
            first = rows[0][0]
            if first_at_most is not None:
                assert first <= first_at_most, f"{pair} {measurement} starts at {first}"
            expected = expected_candles(sim.market, pair, timeframe, first, last, mark=mark)
            missing = sorted({e[0] for e in expected} - {r[0] for r in rows})
            extra = sorted({r[0] for r in rows} - {e[0] for e in expected})
            assert not missing, f"{pair} {measurement}: {len(missing)} candles missing, first {missing[:5]}"
            assert not extra, f"{pair} {measurement}: {len(extra)} points off the grid {extra[:5]}"
            assert rows == expected, f"{pair} {measurement}: values differ from the simulator's"
            checked[f"{pair} {measurement}"] = len(rows)
    if futures:
        for pair in pairs:
            rows = stored(client, FUNDING_MEASUREMENT, pair, "rate", since_ms)
            if rows:
                times = sim.market.funding_times(rows[0][0], until)
                rates = sim.market.funding_rates(exchange_symbol(pair), times)
                assert [(int(t), int(r) / 1e8) for t, r in zip(times, rates, strict=True)] == \
                       [(r[0], round(r[1], 8)) for r in rows if r[0] <= until], f"funding of {pair}"
    return checked


def gateway_config(influx: InfluxDBConfig, sim: SimulatorProcess, pairs: list[str], timeframes: list[str], *,
                   port: int | None = None, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "influxdb": influx_section(influx),
        "pairs": pairs,
        "timeframes": timeframes,
        "trading_mode": "futures",
        "exchange": {"rest_url": sim.url},
        "gateway": {"listen": f"127.0.0.1:{port or free_port()}", "ws_url": f"ws://127.0.0.1:{sim.port}/public",
                    "metrics_listen": ""},
        "log_level": "INFO",
    }
    for key, value in extra.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


class GatewayProcess:
    """`freqfeed serve` as a process; `url` is where the bots would point."""

    def __init__(self, workdir: Path, config: dict[str, Any], name: str = "gateway") -> None:
        self.config = config
        self.config_path = workdir / f"{name}.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log = workdir / f"{name}.log"
        self.url = f"http://{config['gateway']['listen']}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True, env: dict[str, str] | None = None) -> GatewayProcess:
        handle = open(self.log, "ab")  # noqa: SIM115 - the process owns it
        self.process = subprocess.Popen([sys.executable, "-m", "freqfeed", "serve", "--config", str(self.config_path)],
                                        stdout=handle, stderr=handle,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        RUNNING.append(self.process)
        handle.close()
        if wait:
            wait_for(self.ready, 60, "the gateway to load its caches")
        return self

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"gateway exited with {self.process.returncode}:\n{self.text()[-3000:]}")
        try:
            status = self.status()
        except requests.RequestException:
            return False
        return bool(status.get("influxdb_ok")) and status.get("exchange_info_age_s") is not None

    def status(self) -> dict[str, Any]:
        return dict(requests.get(f"{self.url}/_freqfeed/status", timeout=5).json())

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, timeout: float = 15) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def client_stats(sim: SimulatorProcess, user_agent_prefix: str) -> dict[str, Any]:
    """The simulator's counters of the clients whose User-Agent starts with the prefix, summed."""
    requests_by_path: dict[str, int] = {}
    weight = 0
    for agent, stats in sim.stats().get("by_client", {}).items():
        if agent.startswith(user_agent_prefix):
            weight += int(stats.get("weight", 0))
            for path, count in stats.get("requests", {}).items():
                requests_by_path[path] = requests_by_path.get(path, 0) + int(count)
    return {"requests": requests_by_path, "weight": weight}
