"""Real freqtrade 2026.9 dry-run bots on Hyperliquid (freqtrade's venv, `freqtrade trade --dry-run`), for the
bot test (tests/test_hyperliquid_bot.py) and the websocket-vs-polling bench (bench/hyperliquid_bot_bench.py).

A bot trades BTC and kPEPE perpetuals on 1m candles with the recording strategy every bot of the tests and the
lab runs (freqtrade_bots.py: long on every candle, out after three minutes, order-book pricing at entry and at
every loop while a trade is open), which writes down what it saw: the closed candles (the last 10 of each
dataframe) and, for each new candle, the wall-clock time its strategy first had it (`seen.jsonl`). Each bot
has a User-Agent of its own, so the simulator's `/_sim/stats` by_client tells the weight each one cost.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .freqtrade_bots import bot_config, strategy_source

PAIRS = ["BTC/USDC:USDC", "KPEPE/USDC:USDC"]
COINS = {"BTC/USDC:USDC": "BTC", "KPEPE/USDC:USDC": "kPEPE"}
MINUTE = 60_000
EXCHANGES_DOC = Path(__file__).resolve().parents[3] / "docs" / "exchanges.md"


def docs_exchange_section(url: str) -> dict[str, Any]:
    """docs/exchanges.md's freqtrade snippet for Hyperliquid, as written, with this gateway's address."""
    text = EXCHANGES_DOC.read_text()
    block = re.search(r"<!-- freqtrade-hyperliquid-config -->\s*```json\n(.*?)```", text, re.S)
    assert block, f"{EXCHANGES_DOC} has no freqtrade-hyperliquid-config block"
    section: dict[str, Any] = json.loads(block.group(1).replace("http://127.0.0.1:8091", url))["exchange"]
    return section


def direct_section(rest_url: str, ws_url: str) -> dict[str, Any]:
    """A bot without the gateway: freqtrade's defaults (enable_ws true), the exchange being the simulator."""
    return {"name": "hyperliquid",
            "ccxt_config": {"urls": {"api": {"public": rest_url, "private": rest_url, "ws": {"public": ws_url}}}}}


@dataclass
class Bot:
    name: str
    agent: str
    userdir: Path
    process: subprocess.Popen[bytes]
    connections: set[int] = field(default_factory=set)  # remote ports of its TCP connections, as sampled

    @classmethod
    def start(cls, python: str, root: Path, name: str, exchange: dict[str, Any]) -> Bot:
        userdir = root / name
        freqtrade = [python, "-m", "freqtrade"]
        subprocess.run([*freqtrade, "create-userdir", "--userdir", str(userdir)], check=True, capture_output=True)
        (userdir / "strategies" / "hl_bot.py").write_text(strategy_source("HlBot"))
        agent = f"freqfeed-test-bot-{name}"
        config = userdir / "config.json"
        config.write_text(json.dumps(bot_config(name, exchange, agent, userdir, pairs=PAIRS, stake_currency="USDC"),
                                      indent=1))
        with open(userdir / "bot.log", "wb") as log:
            process = subprocess.Popen([*freqtrade, "trade", "--dry-run", "--userdir", str(userdir), "-c", str(config),
                                        "-s", "HlBot"], stdout=log, stderr=log, start_new_session=True)
        return cls(name, agent, userdir, process)

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"bot {self.name} exited with {self.process.returncode}:\n{self.log()[-3000:]}")

    def log(self) -> str:
        path = self.userdir / "bot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def errors(self) -> list[str]:
        return [line[:300] for line in self.log().splitlines() if " - ERROR - " in line]

    def seen(self) -> list[dict[str, Any]]:
        path = self.userdir / "seen.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def candles(self, pair: str) -> dict[int, list[float]]:
        path = self.userdir / "candles" / (pair.replace("/", "_").replace(":", "_") + ".json")
        return {int(t): v for t, v in json.loads(path.read_text()).items()} if path.exists() else {}

    def sample_connections(self) -> None:
        """The remote ports of the bot's TCP connections now (ss), added to `connections`."""
        out = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if f"pid={self.process.pid}," in line:
                peer = line.split()[4]
                self.connections.add(int(peer.rpartition(":")[2]))

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def client_weight(before: dict[str, Any], after: dict[str, Any], agent: str) -> tuple[int, dict[str, int]]:
    """Weight and requests per type a client (User-Agent) cost between two `/_sim/stats` by_client."""
    old, new = before.get(agent, {}), after.get(agent, {})
    requests = {k: n - int(old.get("requests", {}).get(k, 0)) for k, n in new.get("requests", {}).items()}
    return int(new.get("weight", 0)) - int(old.get("weight", 0)), {k: n for k, n in requests.items() if n}


def close_latencies(bot: Bot, offset_ms: float, after_wall: float) -> list[float]:
    """Seconds from each candle's close to the bot's strategy having it (the first time it saw it as its newest),
    for candles that closed after `after_wall` (start-up excluded). offset_ms: the exchange's clock less the
    wall clock."""
    first: dict[tuple[str, int], float] = {}
    for row in bot.seen():
        first.setdefault((row["pair"], row["newest"]), row["wall"])
    latencies = []
    for (_, newest), wall in first.items():
        close_wall = (newest + MINUTE - offset_ms) / 1000
        if close_wall > after_wall:
            latencies.append(round(wall - close_wall, 3))
    return sorted(latencies)


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(statistics.median(values), 3), "max": round(max(values), 3),
            "min": round(min(values), 3)}


def wait_until(condition: Any, timeout: float, what: str, bots: list[Bot], interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for bot in bots:
            bot.alive()
            bot.sample_connections()
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def new_closes(bot: Bot, offset_ms: float, after_wall: float) -> int:
    """Candles that closed after `after_wall` which the bot's strategy has seen, the fewest of its pairs."""
    by_pair: dict[str, set[int]] = {pair: set() for pair in PAIRS}
    for row in bot.seen():
        if (row["newest"] + MINUTE - offset_ms) / 1000 > after_wall:
            by_pair.setdefault(row["pair"], set()).add(row["newest"])
    return min(len(v) for v in by_pair.values())


def clock_offset(sim_now: Any) -> float:
    """The exchange's clock less the wall clock (ms), from the quickest of a few round trips (its midpoint)."""
    samples = []
    for _ in range(7):
        before = time.time()
        now = sim_now()
        after = time.time()
        samples.append((after - before, now - (before + after) / 2 * 1000))
    return min(samples)[1]


def side_by_side(python: str, root: Path, *, sim_url: str, sim_ws_url: str, gateway_url: str,
                 stats: Any, sim_now: Any, closes: int, timeout: float = 600) -> dict[str, Any]:
    """Two bots at once, one through the gateway (docs/exchanges.md's snippet: enable_ws false, polling) and one
    straight to the simulator (freqtrade's defaults: enable_ws true, its candles from the simulator's /ws), until
    each has seen `closes` closes after its start-up. `stats()` is the simulator's /_sim/stats, `sim_now()` its
    clock. Returns the bots (stopped) and the figures: weight per client at start-up and after, per hour,
    close -> strategy latencies."""
    offset = clock_offset(sim_now)
    before = stats()["by_client"]
    bots = {"gateway": Bot.start(python, root, "gateway", docs_exchange_section(gateway_url)),
            "direct": Bot.start(python, root, "direct", direct_section(sim_url, sim_ws_url))}
    everyone = list(bots.values())
    started = time.time()
    try:
        wait_until(lambda: all({r["pair"] for r in b.seen()} == set(PAIRS) for b in everyone), timeout,
                   "both bots' first candles", everyone)
        warm, warm_wall = stats()["by_client"], time.time()
        wait_until(lambda: all(new_closes(b, offset, warm_wall) >= closes for b in everyone), timeout,
                   f"{closes} closes seen by both bots", everyone)
        end, end_wall = stats()["by_client"], time.time()
    finally:
        for bot in everyone:
            bot.stop()
    minutes = (end_wall - warm_wall) / 60
    clients: dict[str, Any] = {}
    for who, agent in (("gateway_bot", bots["gateway"].agent), ("direct_bot", bots["direct"].agent),
                       ("gateway", "freqfeed-gateway"), ("producer", "freqfeed")):
        startup, startup_requests = client_weight(before, warm, agent)
        steady, steady_requests = client_weight(warm, end, agent)
        clients[who] = {"agent": agent, "startup_weight": startup, "startup_requests": startup_requests,
                        "steady_weight": steady, "steady_requests": steady_requests,
                        "steady_weight_per_hour": round(steady / minutes * 60) if minutes else None,
                        "per_hour_with_one_start": round(steady / minutes * 60 + startup) if minutes else None}
    return {"bots": bots, "offset_ms": round(offset), "startup_s": round(warm_wall - started, 1),
            "steady_minutes": round(minutes, 2), "clients": clients,
            "latency_s": {"gateway_polling": summary(close_latencies(bots["gateway"], offset, warm_wall)),
                          "direct_ws": summary(close_latencies(bots["direct"], offset, warm_wall))},
            "latencies": {"gateway_polling": close_latencies(bots["gateway"], offset, warm_wall),
                          "direct_ws": close_latencies(bots["direct"], offset, warm_wall)}}
