#!/usr/bin/env python3
"""Real freqtrade 2026.9 dry-run bots in the lab, through a feeder's gateway and straight to the exchange.

  lab_bots.py run --gateway http://127.0.0.1:18392 --exchange http://127.0.0.1:18290 --bots 3 --seconds 240

starts `--bots` dry-run futures bots through the gateway and as many straight to the exchange (the lab's
simulator), side by side on the same pairs, strategy and clock (1m candles, order-book pricing, trades
opened at once and held a few minutes: the open trades' exit pricing is most of a bot's weight; the strategy
and config are files/python/tests/freqtrade_bots.py's, as the Hyperliquid bot test's). Each bot
has a User-Agent of its own, so the simulator's per-client counters tell the traffic apart. Afterwards it
checks, for the gateway's bots:
- the closed candles each bot's strategy saw equal the exchange's (the simulator's REST klines);
- every entry and exit rate is a price the exchange's book had at the moment the bot asked (the simulator's
  book is a pure function of time: every 100 ms step in the seconds before each order is tried);
- no klines, markPriceKlines or fundingRate request reached the exchange from the feeder;
- with --feeder-container, also across a `systemctl restart freqfeed-gateway` and a reboot of the feeder
  container while the bots run (the gateway's bots stopped for the reboot and started again once the gateway
  is active, as units ordered after it would be), with no ERROR in the gateway bots' logs;
and reports each setup's exchange weight per hour: the direct bots' own, and everything the feeder's gateway
sent (its User-Agent) while serving its bots. Exit 0 when every check passed and the weight fell by at
least 95%; the figures go to stdout (and --json).
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "files" / "python"))

from freqfeed.exchanges.binance import wire
from freqfeed.simulator.market import Market
from tests.freqtrade_bots import bot_config, strategy_source

FREQTRADE = REPO / ".cache" / "freqtrade-venv" / "bin" / "freqtrade"
PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]


def readme_ccxt_config(api: str) -> dict[str, Any]:
    """docs/gateway.md's freqtrade snippet as written, with this lab's address."""
    text = (REPO / "docs" / "gateway.md").read_text()
    block = re.search(r"<!-- freqtrade-futures-config -->\s*```json\n(.*?)```", text, re.DOTALL)
    if block is None:
        raise SystemExit("lab_bots: docs/gateway.md has no freqtrade-futures-config block")
    config: dict[str, Any] = json.loads(block.group(1).replace("http://127.0.0.1:8091", api))["exchange"]["ccxt_config"]
    return config


def start(name: str, api: str, agent: str, root: Path) -> subprocess.Popen[bytes]:
    userdir = root / name
    subprocess.run([str(FREQTRADE), "create-userdir", "--userdir", str(userdir)], check=True,
                   capture_output=True)
    (userdir / "strategies" / "lab_bot.py").write_text(strategy_source("LabBot"))
    config = userdir / "config.json"
    exchange = {"name": "binance", "only_from_ccxt": True, "ccxt_config": readme_ccxt_config(api)}
    config.write_text(json.dumps(bot_config(name, exchange, agent, userdir, pairs=PAIRS, stake_currency="USDT"),
                                 indent=1))
    log = open(userdir / "bot.log", "wb")  # noqa: SIM115 - the process owns it
    return subprocess.Popen([str(FREQTRADE), "trade", "--dry-run", "--userdir", str(userdir), "-c", str(config),
                             "-s", "LabBot"], stdout=log, stderr=log, start_new_session=True)


def clients(exchange: str) -> dict[str, dict[str, Any]]:
    return dict(requests.get(f"{exchange}/_sim/stats", timeout=10).json().get("by_client", {}))


def weight(stats: dict[str, dict[str, Any]], prefix: str) -> tuple[int, dict[str, int]]:
    """Weight and requests per path of the clients whose User-Agent starts with `prefix`."""
    total, paths = 0, {}
    for agent, client in stats.items():
        if agent.startswith(prefix):
            total += int(client.get("weight", 0))
            for path, count in client.get("requests", {}).items():
                paths[path] = paths.get(path, 0) + int(count)
    return total, paths


def check_candles(root: Path, name: str, exchange: str) -> tuple[int, list[str]]:
    """The closed candles a bot's strategy saw against the exchange's klines."""
    problems, checked = [], 0
    for pair in PAIRS:
        path = root / name / "candles" / (pair.replace("/", "_").replace(":", "_") + ".json")
        if not path.exists():
            problems.append(f"{name}: no candles seen for {pair}")
            continue
        seen = json.loads(path.read_text())
        first = min(int(t) for t in seen)
        truth = requests.get(f"{exchange}/fapi/v1/klines", params={"symbol": pair.split("/")[0] + "USDT",
                                                                   "interval": "1m", "startTime": first,
                                                                   "limit": 1000}, timeout=10).json()
        rows = {str(r[0]): [float(x) for x in r[1:6]] for r in truth}
        for open_time, values in seen.items():
            checked += 1
            if rows.get(open_time) != values:
                problems.append(f"{name} {pair} {open_time}: saw {values}, the exchange has {rows.get(open_time)}")
    return checked, problems


def check_fresh(root: Path, name: str, start: float, end: float, exempt: list[tuple[float, float]],
                within: float = 60.0) -> tuple[list[float], list[str]]:
    """Never a stale candle as current: every 1m candle that closed between `start` and `end` became the
    strategy's newest candle within `within` seconds of its close (before the next one closed), except closes
    inside an `exempt` window (the bot's own feeder down). Returns each close's delay and the problems."""
    delays: list[float] = []
    problems: list[str] = []
    for pair in PAIRS:
        path = root / name / "candles" / (pair.replace("/", "_").replace(":", "_") + ".times")
        records = [tuple(float(x) for x in line.split()) for line in path.read_text().splitlines()] \
            if path.exists() else []
        for close in range(int(start // 60 + 1) * 60, int((end - within) // 60) * 60 + 1, 60):
            if any(lo - within <= close <= hi for lo, hi in exempt):
                continue
            got = [wall for wall, newest in records if newest >= (close - 60) * 1000 and wall >= close]
            if not got or min(got) - close > within:
                at = time.strftime("%H:%M:%S", time.gmtime(close))
                problems.append(f"{name} {pair}: the candle that closed at {at} was not the strategy's newest "
                                f"within {within:.0f}s")
                continue
            delays.append(min(got) - close)
    return delays, problems


def check_rates(root: Path, name: str, market: Market) -> tuple[int, list[str]]:
    """Every entry and exit rate must be the top of the exchange's book at a moment shortly before the order."""
    database = root / name / "trades.sqlite"
    problems, checked = [], 0
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT ft_pair, ft_order_side, price, order_date FROM orders "
                          "WHERE price IS NOT NULL").fetchall()
    for pair, side, price, order_date in rows:
        symbol = pair.split("/")[0] + "USDT"
        inst = market.instrument(symbol)
        whole, _, fraction = str(order_date).partition(".")
        at = calendar.timegm(time.strptime(whole, "%Y-%m-%d %H:%M:%S")) * 1000 + int((fraction + "000")[:3])
        candidates = set()
        for step in range(at - 8_000, at + 1_000, 100):  # the book changes every 100 ms
            book = market.book(symbol, step, 1)
            candidates.add(round(float(wire.format_ticks([book.asks[0][0]], inst.price_decimals)[0]), 10))
            candidates.add(round(float(wire.format_ticks([book.bids[0][0]], inst.price_decimals)[0]), 10))
        checked += 1
        if round(float(price), 10) not in candidates:
            problems.append(f"{name} {pair} {side} at {price} ({order_date}): not a price the book had")
    return checked, problems


def podman_exec(container: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", "exec", container, *command], capture_output=True, text=True, check=False)


def disrupt(kind: str, args: argparse.Namespace, bots: dict[str, subprocess.Popen[bytes]],
            root: Path) -> dict[str, Any]:
    """While the bots run: `systemctl restart freqfeed-gateway` on the feeder (timed: with Type=notify it
    returns once the gateway is loaded), or a reboot of the feeder container with its bots stopped first and
    started again once the gateway is active (on a host they are ordered after it), as at a host reboot."""
    container = args.feeder_container
    started = time.monotonic()
    if kind == "restart":
        done = podman_exec(container, "systemctl", "restart", "freqfeed-gateway")
        took = time.monotonic() - started
        print(f"lab_bots: systemctl restart freqfeed-gateway returned after {took:.1f}s (rc {done.returncode})",
              flush=True)
        return {"gateway_restart_s": round(took, 2), "gateway_restart_rc": done.returncode}
    ours = [name for name in bots if name.startswith("gateway")]
    for name in ours:
        os.killpg(bots[name].pid, signal.SIGTERM)
    for name in ours:
        bots[name].wait(timeout=60)
    subprocess.run(["podman", "restart", "-t", "20", container], capture_output=True, check=False)
    while podman_exec(container, "systemctl", "is-active", "freqfeed-gateway").stdout.strip() != "active":
        if time.monotonic() - started > 180:
            raise SystemExit("lab_bots: the feeder's gateway was not active 180s after the reboot")
        time.sleep(0.5)
    took = time.monotonic() - started
    shown = podman_exec(container, "systemctl", "show", "freqfeed-gateway", "-p", "StatusText").stdout.strip()
    print(f"lab_bots: feeder rebooted, gateway active (ready) {took:.1f}s after the reboot began: {shown}", flush=True)
    for name in ours:
        index = name.removeprefix("gateway")
        bots[name] = start(name, args.gateway, f"freqfeed-lab-bot-gateway{index}", root)
    return {"reboot_to_gateway_ready_s": round(took, 2), "gateway_status_after_reboot": shown}


def bot_errors(root: Path, name: str) -> list[str]:
    """ERROR lines a bot logged (a gateway that refused or failed a request shows here)."""
    log = root / name / "bot.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return [f"{name}: {line[:300]}" for line in lines if " - ERROR - " in line]


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    seed = int(args.seed)
    bots: dict[str, subprocess.Popen[bytes]] = {}
    before = clients(args.exchange)
    started = time.monotonic()
    for i in range(1, args.bots + 1):
        bots[f"gateway{i}"] = start(f"gateway{i}", args.gateway, f"freqfeed-lab-bot-gateway{i}", root)
        if not args.drill:
            bots[f"direct{i}"] = start(f"direct{i}", args.exchange, f"freqfeed-lab-bot-direct{i}", root)
    disruptions: dict[str, Any] = {}
    plan = ["restart", "reboot"] if args.feeder_container and not args.drill else []
    stop_file = Path(args.stop_file) if args.stop_file else None
    wall_start = time.time()
    try:
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline and not (stop_file and stop_file.exists()):
            for name, bot in bots.items():
                if bot.poll() is not None:
                    print((root / name / "bot.log").read_text()[-3000:], file=sys.stderr)
                    raise SystemExit(f"lab_bots: bot {name} exited with {bot.returncode}")
            elapsed = time.monotonic() - started
            if plan and elapsed > args.seconds * (0.3 if plan[0] == "restart" else 0.55):
                disruptions.update(disrupt(plan.pop(0), args, bots, root))
            time.sleep(2)
    finally:
        for bot in bots.values():
            if bot.poll() is None:
                os.killpg(bot.pid, signal.SIGTERM)
        for bot in bots.values():
            try:
                bot.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(bot.pid, signal.SIGKILL)
    hours = (time.monotonic() - started) / 3600
    if args.drill:
        return drill_checks(args, root, wall_start, time.time())
    after = clients(args.exchange)
    diff = {agent: {"weight": int(stats.get("weight", 0)) - int(before.get(agent, {}).get("weight", 0)),
                    "requests": {p: n - int(before.get(agent, {}).get("requests", {}).get(p, 0))
                                 for p, n in stats.get("requests", {}).items()}}
            for agent, stats in after.items()}
    direct_weight, direct_paths = weight(diff, "freqfeed-lab-bot-direct")
    feeder = {agent: stats for agent, stats in diff.items() if agent.startswith("freqfeed-gateway/")
              and (not args.feeder or agent.endswith(f"({args.feeder})"))}
    feeder_weight, feeder_paths = weight(feeder, "freqfeed-gateway/")
    bot_leak, _ = weight(diff, "freqfeed-lab-bot-gateway")  # the gateway's bots must not reach the exchange
    market = Market(seed)
    problems: list[str] = []
    candles = rates = 0
    for i in range(1, args.bots + 1):
        checked, found = check_candles(root, f"gateway{i}", args.exchange)
        candles += checked
        problems += found
        checked, found = check_rates(root, f"gateway{i}", market)
        rates += checked
        problems += found
    if bot_leak:
        problems.append(f"the gateway's bots sent {bot_leak} weight straight to the exchange")
    status = requests.get(f"{args.gateway}/_freqfeed/status", timeout=10).json()
    for path in ("/fapi/v1/klines", "/fapi/v1/markPriceKlines", "/fapi/v1/fundingRate"):
        if feeder_paths.get(path, 0):  # with the gateway's own reasons (counted since its last start)
            problems.append(f"{feeder_paths[path]} {path} requests reached the exchange from the feeder (the "
                            f"gateway's forward reasons: {status.get('forward_reasons')}, close-wait fallbacks: "
                            f"{status.get('close_wait_fallbacks')})")
    if args.feeder_container:
        for i in range(1, args.bots + 1):
            problems += bot_errors(root, f"gateway{i}")
    if not rates:
        problems.append("the gateway's bots made no order: nothing to check the prices of")
    books = status.get("books", {})
    if books.get("forwarded"):
        problems.append(f"the gateway forwarded {books['forwarded']} book requests over REST: "
                        f"{books.get('forward_reasons')}")
    saving = 1 - feeder_weight / direct_weight if direct_weight else 0.0
    result = {"bots_per_setup": args.bots, "seconds": round(hours * 3600), "direct_weight": direct_weight,
              "direct_weight_per_hour": round(direct_weight / hours), "feeder_weight": feeder_weight,
              "feeder_weight_per_hour": round(feeder_weight / hours), "saving": round(saving, 4),
              "direct_requests": direct_paths, "feeder_requests": feeder_paths, "candles_checked": candles,
              "orders_checked": rates, "gateway_books": books, **disruptions, "problems": problems[:20]}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(f"\n{args.bots} bots straight to the exchange: weight {result['direct_weight_per_hour']}/h; "
          f"the same bots through the feeder's gateway: {result['feeder_weight_per_hour']}/h "
          f"({saving:.1%} less); {candles} candles and {rates} orders checked, {len(problems)} problems")
    return 0 if not problems and saving >= 0.95 else 1


def drill_checks(args: argparse.Namespace, root: Path, start: float, end: float) -> int:
    """While the lab's drills ran (scripts/lab_drills.py): the closed candles the gateway's bots saw equal the
    exchange's, and each became their newest within a minute of its close (never a stale candle as current),
    except while their own feeder was down (`--exempt`: the drills' JSON list of [start, end])."""
    exempt = [(float(lo), float(hi)) for lo, hi in json.loads(Path(args.exempt).read_text())] \
        if args.exempt and Path(args.exempt).exists() else []
    problems: list[str] = []
    candles = 0
    delays: list[float] = []
    startup = start + 120  # the bots' first analysis needs their start-up candles
    for i in range(1, args.bots + 1):
        checked, found = check_candles(root, f"gateway{i}", args.exchange)
        candles += checked
        problems += found
        got, late = check_fresh(root, f"gateway{i}", startup, end, exempt)
        delays += got
        problems += late
    delays.sort()
    result = {"bots": args.bots, "seconds": round(end - start), "candles_checked": candles, "closes_checked":
              len(delays), "close_to_bot_p50_s": round(delays[len(delays) // 2], 1) if delays else None,
              "close_to_bot_max_s": round(delays[-1], 1) if delays else None, "exempt": exempt,
              "problems": problems[:20]}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(f"\nduring the drills: {candles} candles equal to the exchange's, {len(delays)} closes each the bots' newest "
          f"candle within a minute (max {result['close_to_bot_max_s']}s), {len(problems)} problems")
    return 0 if not problems and delays else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["run"])
    parser.add_argument("--gateway", required=True, help="the feeder gateway's URL")
    parser.add_argument("--exchange", required=True, help="the lab simulator's URL")
    parser.add_argument("--feeder", default="", help="the feeder's host name (its gateway's User-Agent)")
    parser.add_argument("--feeder-container", default="",
                        help="the feeder's podman container: restart its gateway, then reboot it, while the bots run")
    parser.add_argument("--bots", type=int, default=3, help="bots per setup")
    parser.add_argument("--seconds", type=float, default=240)
    parser.add_argument("--seed", default="1", help="the simulator's seed")
    parser.add_argument("--dir", default=str(REPO / ".lab" / "bots"))
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--stop-file", help="stop the bots (and check) once this file exists")
    parser.add_argument("--drill", action="store_true",
                        help="the lab's drills: the gateway's bots alone, checked for candles and freshness only")
    parser.add_argument("--exempt", help="with --drill: a JSON file of [start, end] times the feeder was down")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
