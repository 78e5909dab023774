#!/usr/bin/env python3
"""The lab's Hyperliquid part: a real freqtrade dry-run bot through host121's gateway, beside one straight to the
exchange, until each has seen a few closes (issue 18: a lab variant with a Hyperliquid bot).

  lab_hyperliquid.py --gateway http://127.0.0.1:18393 --exchange http://127.0.0.1:18291 [--closes 3] [--json F]

host121 is the fleet's Hyperliquid producer and feeder (inventory/lab/hosts.yml), deployed by site.yml like every
other host; the exchange is `freqfeed simulate --exchange hyperliquid` (scripts/services.py). The bots are
tests/hyperliquid_bots.py's (the gateway's bot configured with docs/exchanges.md's snippet as written: it polls
the gateway; the direct one with freqtrade's defaults). Checked, exit 1 otherwise:
- every closed candle either bot's strategy saw equals the exchange's own candleSnapshot;
- the gateway's bot connected to nothing but the gateway (no websocket, no REST to the exchange) and cost the
  exchange no weight; no ERROR line in its log;
- what the gateway itself asked the exchange meanwhile (its clock and meta; books and candles come from its
  subscriptions and InfluxDB) is printed beside the direct bot's weight.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "files" / "python"))

from freqfeed.exchanges.hyperliquid import wire
from tests.hyperliquid_bots import COINS, MINUTE, PAIRS, side_by_side

FREQTRADE_PYTHON = REPO / ".cache" / "freqtrade-venv" / "bin" / "python"


def exchange_candles(exchange: str, coin: str, first: int, last: int) -> dict[int, list[float]]:
    """The exchange's own 1m candles from `first` to `last` (open times, ms): the truth the bots' candles meet."""
    body = wire.candle_snapshot_body(coin, "1m", first, last + MINUTE - 1)
    answer = requests.post(f"{exchange}/info", json=body, headers={"User-Agent": "freqfeed-lab-check"}, timeout=30)
    answer.raise_for_status()
    return {int(c["t"]): [float(c[k]) for k in "ohlcv"] for c in answer.json()}


def check(result: dict[str, Any], exchange: str, gateway_port: int) -> list[str]:
    problems: list[str] = []
    bots, clients = result["bots"], result["clients"]
    for name, bot in bots.items():
        for pair in PAIRS:
            seen = bot.candles(pair)
            if len(seen) < 10:
                problems.append(f"bot {name} saw only {len(seen)} candles of {pair}")
                continue
            truth = exchange_candles(exchange, COINS[pair], min(seen), max(seen))
            wrong = sorted(t for t, values in seen.items() if truth.get(t) != values)
            if wrong:
                problems.append(f"bot {name}: {len(wrong)} of {len(seen)} {pair} candles differ from the exchange's, "
                                f"first at {wrong[0]}")
    gateway_bot = bots["gateway"]
    if gateway_bot.connections != {gateway_port}:
        problems.append(f"the gateway's bot connected to ports {sorted(gateway_bot.connections)}, not only to the "
                        f"gateway's {gateway_port}")
    if clients["gateway_bot"]["startup_weight"] or clients["gateway_bot"]["steady_weight"]:
        problems.append(f"the gateway's bot cost the exchange weight: {clients['gateway_bot']}")
    if gateway_bot.errors():
        problems.append(f"the gateway's bot logged errors: {gateway_bot.errors()[:3]}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", required=True, help="host121's gateway, e.g. http://127.0.0.1:18393")
    parser.add_argument("--exchange", required=True, help="the Hyperliquid simulator, e.g. http://127.0.0.1:18291")
    parser.add_argument("--closes", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="the bots' user directories (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    ws = args.exchange.replace("http://", "ws://").replace("https://", "wss://") + "/ws"

    def stats() -> dict[str, Any]:
        return dict(requests.get(f"{args.exchange}/_sim/stats", timeout=10).json())

    with tempfile.TemporaryDirectory() as scratch:
        root = args.dir or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        try:
            result = side_by_side(str(FREQTRADE_PYTHON), root, sim_url=args.exchange, sim_ws_url=ws,
                                  gateway_url=args.gateway, stats=stats, sim_now=lambda: int(stats()["now"]),
                                  closes=args.closes)
        except AssertionError as error:
            print(f"lab hyperliquid: {error}", file=sys.stderr)
            return 1
        problems = check(result, args.exchange, int(args.gateway.rpartition(":")[2]))
    figures = {k: v for k, v in result.items() if k not in ("bots", "latencies")}
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    clients = figures["clients"]
    print(f"Hyperliquid exchange weight per hour: direct bot {clients['direct_bot']['per_hour_with_one_start']}, "
          f"through the gateway: the bot {clients['gateway_bot']['per_hour_with_one_start']}, the gateway itself "
          f"{clients['gateway']['per_hour_with_one_start']} (over {figures['steady_minutes']} min)")
    for problem in problems:
        print(f"lab hyperliquid: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
