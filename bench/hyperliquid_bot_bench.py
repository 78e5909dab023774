#!/usr/bin/env python3
"""Websocket vs polling for freqtrade bots on Hyperliquid: how soon after a close a real bot has the candle.

  PYTHONPATH=files/python python bench/hyperliquid_bot_bench.py [--closes 8] [--json bench/results/hyperliquid_bot.json]

Starts a real influxd, the Hyperliquid simulator in real time (1m candles), a producer (BTC, kPEPE: 1m, 1h,
funding) and the gateway, then two freqtrade 2026.9 dry-run bots side by side (tests/hyperliquid_bots.py):
(a) through the gateway with docs/exchanges.md's snippet (enable_ws false: it polls the gateway's /info) and
(b) straight to the simulator with freqtrade's defaults (enable_ws true: its candles from the simulator's
/ws, the best a gateway /ws could do, since a gateway relays what the exchange's stream sends). For each
candle closed after start-up: seconds from the close to the bot's strategy having it (populate_indicators
called with it as the newest row). Also the exchange weight of each setup (the simulator's per-client
counters), start-up and per minute after it, extrapolated to an hour. Needs FREQFEED_FREQTRADE_PYTHON
(freqtrade's venv) or /work/main/.cache/freqtrade-venv.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "files" / "python"))

from freqfeed.localinflux import LocalInfluxDB, free_port
from tests.freqtrade_bots import THROTTLE_S
from tests.hyperliquid_bots import PAIRS, side_by_side
from tests.processes import GatewayProcess, HyperliquidSim, ProducerProcess, wait_for


def answer_times(metrics_listen: str) -> dict[str, Any]:
    """The gateway's own request durations (its /metrics histogram) per /info type answered from InfluxDB:
    count, mean, and the upper bound of the bucket holding the median."""
    text = requests.get(f"http://{metrics_listen}/metrics", timeout=10).text
    found: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "freqfeed_gateway_request_duration_seconds":
            continue
        by: dict[str, dict[str, Any]] = {}
        for sample in family.samples:
            if sample.labels.get("outcome") != "local":
                continue
            entry = by.setdefault(sample.labels["endpoint"], {"buckets": []})
            if sample.name.endswith("_count"):
                entry["count"] = sample.value
            elif sample.name.endswith("_sum"):
                entry["sum"] = sample.value
            elif sample.name.endswith("_bucket"):
                entry["buckets"].append((float(sample.labels["le"]), sample.value))
        for endpoint, entry in by.items():
            count = entry.get("count", 0)
            if not count:
                continue
            median_le = next(le for le, n in sorted(entry["buckets"]) if n >= count / 2)
            found[endpoint] = {"count": int(count), "mean_s": round(entry["sum"] / count, 3),
                               "median_at_most_s": median_le}
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    python = os.environ.get("FREQFEED_FREQTRADE_PYTHON") or str(REPO / ".cache" / "freqtrade-venv" / "bin" / "python")
    workdir = Path(tempfile.mkdtemp(prefix="hl-bot-bench-"))
    with LocalInfluxDB(workdir / "influxd") as influxd:
        requests.post(f"{influxd.url}/query", data={"q": 'CREATE DATABASE "bench" WITH DURATION 360d'}, timeout=30)
        sim = HyperliquidSim(workdir, speed=1, wall_clock=True)
        common: dict[str, Any] = {
            "influxdb": {"url": influxd.url, "database": "bench"},
            "exchange": {"name": "hyperliquid", "rest_url": sim.url, "ws_url": sim.ws_url},
            "pairs": PAIRS, "timeframes": ["1m", "1h"], "log_level": "INFO"}
        producer = ProducerProcess(workdir, {**common, "backfill": {"candles": 1300}, "history": {"1m": 3.5},
                                             "sync": {"datadir": str(workdir / "data")}}).start()
        gateway = None
        try:
            producer.wait_for_log("backfill done", timeout=300)
            gateway = GatewayProcess(workdir, {**common, "gateway": {
                "listen": f"127.0.0.1:{free_port()}", "metrics_listen": f"127.0.0.1:{free_port()}",
                "ws_url": sim.ws_url, "live_max_age": 70}}).start()
            wait_for(lambda: (gateway.status()["books"] or {}).get("held") == len(PAIRS), 30, "the gateway's books")
            started = time.monotonic()
            result = side_by_side(python, workdir / "bots", sim_url=sim.url, sim_ws_url=sim.ws_url,
                                  gateway_url=gateway.url, stats=sim.stats, sim_now=sim.now, closes=args.closes,
                                  timeout=args.closes * 60 + 300)
            bots = result.pop("bots")
            result["seconds"] = round(time.monotonic() - started)
            result["gateway_forward_reasons"] = gateway.status()["forward_reasons"]
            result["gateway_answer_s"] = answer_times(gateway.config["gateway"]["metrics_listen"])
            result["gateway_bot_connections"] = sorted(bots["gateway"].connections)
            result["gateway_bot_errors"] = bots["gateway"].errors()[:5]
            result["direct_bot_errors"] = bots["direct"].errors()[:5]
        finally:
            if gateway is not None:
                gateway.terminate()
            producer.terminate()
            sim.stop()
    result["setup"] = {"pairs": PAIRS, "timeframe": "1m", "process_throttle_secs": THROTTLE_S,
                       "freqtrade_python": python, "host": platform.node(), "cpus": os.cpu_count(),
                       "load_average": list(os.getloadavg()),
                       "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--closes", type=int, default=8, help="closes each bot must see after its start-up")
    parser.add_argument("--json", default=str(REPO / "bench" / "results" / "hyperliquid_bot.json"))
    args = parser.parse_args()
    result = run(args)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    latency, clients = result["latency_s"], result["clients"]
    print(json.dumps({k: v for k, v in result.items() if k != "latencies"}, indent=1))
    print(f"\nclose -> bot's strategy: polling the gateway p50 {latency['gateway_polling'].get('p50')} s, max "
          f"{latency['gateway_polling'].get('max')} s; websocket to the exchange p50 {latency['direct_ws'].get('p50')}"
          f" s, max {latency['direct_ws'].get('max')} s (freqtrade's throttle {THROTTLE_S} s)")
    direct, through = clients["direct_bot"], clients["gateway"]
    print(f"weight/h: direct bot {direct['steady_weight_per_hour']} (+{direct['startup_weight']} per start), "
          f"through the gateway {through['steady_weight_per_hour']} (+{through['startup_weight']} per start)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
