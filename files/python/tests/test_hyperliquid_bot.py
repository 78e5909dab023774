"""A real freqtrade 2026.9 dry-run bot on Hyperliquid through the gateway for several closes, side by side with
the same bot straight to the exchange (issue 18's acceptance): its candles equal the exchange's, it opens no
websocket (no connection at all) to the exchange, and the exchange weight of both setups is measured from the
simulator's per-client counters.

The simulator runs in real time (1m candles: a close a minute); a producer records BTC and kPEPE (1m, 1h,
funding); the gateway serves them. Bot "gateway" uses docs/exchanges.md's snippet as written (enable_ws false:
it polls the gateway); bot "direct" uses freqtrade's defaults against the simulator (enable_ws true: its candles
from the simulator's /ws, the rest over REST). About 5 minutes: start-up, then 3 closes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from freqfeed.localinflux import LocalInfluxDB, free_port

from .conftest import InfluxServer
from .helpers import influx_section
from .hyperliquid_bots import COINS, PAIRS, side_by_side
from .processes import GatewayProcess, HyperliquidSim, ProducerProcess, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.freqtrade]

CLOSES = 3


@dataclass
class Setup:
    sim: HyperliquidSim
    producer: ProducerProcess
    gateway: GatewayProcess
    tmp: Path


@pytest.fixture(scope="module")
def setup(influxd: LocalInfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    if not os.environ.get("FREQFEED_FREQTRADE_PYTHON"):
        pytest.skip("FREQFEED_FREQTRADE_PYTHON is not set (make unit sets it)")
    tmp = tmp_path_factory.mktemp("hl-bot")
    influx = InfluxServer.in_front_of(influxd, "1.x")
    database = "t_hyperliquid_bot"
    influx.create_database(database)
    sim = HyperliquidSim(tmp, speed=1, wall_clock=True)
    common: dict[str, Any] = {
        "influxdb": influx_section(influx.config(database)),
        "exchange": {"name": "hyperliquid", "rest_url": sim.url, "ws_url": sim.ws_url},
        "pairs": PAIRS, "timeframes": ["1m", "1h"], "log_level": "INFO",
    }
    producer = ProducerProcess(tmp, {**common, "backfill": {"candles": 1300}, "history": {"1m": 3.5},
                                     "sync": {"datadir": str(tmp / "data")}}).start()
    producer.wait_for_log("backfill done", timeout=150)
    gateway = GatewayProcess(tmp, {**common, "gateway": {"listen": f"127.0.0.1:{free_port()}", "metrics_listen": "",
                                                         "ws_url": sim.ws_url, "live_max_age": 70}}).start()
    wait_for(lambda: (gateway.status()["books"] or {}).get("held") == len(PAIRS), 30, "the gateway's books")
    yield Setup(sim, producer, gateway, tmp)
    gateway.terminate()
    producer.terminate()
    sim.stop()
    influx.drop_database(database)


def test_a_dry_run_bot_through_the_gateway(setup: Setup) -> None:
    sim, gateway = setup.sim, setup.gateway
    upstream_before = dict(sim.stats()["by_client"].get("freqfeed-gateway", {}).get("requests", {}))
    reasons_before = gateway.status()["forward_reasons"]
    result = side_by_side(os.environ["FREQFEED_FREQTRADE_PYTHON"], setup.tmp / "bots", sim_url=sim.url,
                          sim_ws_url=sim.ws_url, gateway_url=gateway.url, stats=sim.stats, sim_now=sim.now,
                          closes=CLOSES)
    bots, clients = result.pop("bots"), result["clients"]
    out = os.environ.get("FREQFEED_HL_BOT_RESULTS")
    if out:
        Path(out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "latencies"}, indent=1))

    # its candles equal the exchange's: every closed candle either bot's strategy saw
    for name, bot in bots.items():
        for pair in PAIRS:
            seen = bot.candles(pair)
            assert len(seen) >= 10, (name, pair, len(seen))
            for open_ms, values in seen.items():
                truth = sim.market.final_candle(COINS[pair], "1m", open_ms)
                assert truth is not None
                assert values == [float(truth[k]) for k in "ohlcv"], (name, pair, open_ms)

    # no connection at all from the gateway's bot but to the gateway: no websocket (nor REST) to the exchange
    gateway_port, sim_port = int(gateway.url.rpartition(":")[2]), sim.port
    assert bots["gateway"].connections == {gateway_port}, bots["gateway"].connections
    assert sim_port in bots["direct"].connections  # the same sampling sees the direct bot's
    assert clients["gateway_bot"]["startup_weight"] == clients["gateway_bot"]["steady_weight"] == 0
    assert not bots["gateway"].errors(), bots["gateway"].errors()[:5]

    # candles, funding and books from InfluxDB and the gateway's subscriptions: what reached the exchange is what
    # the freshness rules sent there (a late write on a loaded machine), counted
    upstream = sim.stats()["by_client"].get("freqfeed-gateway", {}).get("requests", {})
    reasons = gateway.status()["forward_reasons"]
    reached = sum(upstream.get(k, 0) - upstream_before.get(k, 0) for k in ("candleSnapshot", "fundingHistory"))
    late = sum(reasons.get(k, 0) - reasons_before.get(k, 0) for k in ("close wait", "closed", "current", "stale"))
    assert reached == late, (upstream, reasons)
    assert upstream.get("l2Book", 0) == upstream_before.get("l2Book", 0)

    # the weight: what the direct bot asks the exchange after its start-up (order books), the gateway does not;
    # it sends only its own clock and meta (and the late forwards counted above), whatever its bots do
    direct, through = clients["direct_bot"], clients["gateway"]
    assert direct["steady_weight"] > 0 and "l2Book" in direct["steady_requests"]
    assert direct["startup_weight"] > through["startup_weight"]
    assert set(through["steady_requests"]) - {"candleSnapshot", "fundingHistory"} <= {"exchangeStatus", "meta"}, \
        clients
