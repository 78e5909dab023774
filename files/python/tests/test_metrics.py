"""The fleet watched the Prometheus way, end to end: simulator, influxd, a producer, a sync and a gateway as
processes, scraped by a real `prometheus` (Debian's package) with the shipped rules loaded, and the sync's
`.prom` file through node_exporter's textfile collector (only that collector on).

Every query of the Grafana dashboard (monitoring/grafana/freqfeed-fleet.json) must return data; the gateway's
series stay bounded under junk requests; the rules load and none fires in this healthy fleet.
Set FREQFEED_METRICS_EXCERPTS=<dir> to keep what /metrics and the .prom file said (docs/notes/metrics.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from freqfeed.config import InfluxDBConfig
from freqfeed.localinflux import LocalInfluxDB, free_port

from .processes import (
    RUNNING,
    GatewayProcess,
    ProducerProcess,
    SimulatorProcess,
    gateway_config,
    producer_config,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.dialects("1.x")]

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "monitoring" / "prometheus" / "freqfeed-rules.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "freqfeed-fleet.json"
PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
TIMEFRAMES = ["1m", "3m"]
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")


@dataclass
class Watched:
    producer_metrics: str
    gateway_metrics: str
    gateway: GatewayProcess
    prom_file: Path
    prometheus: str  # base URL of the Prometheus HTTP API


def _start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "ab")  # noqa: SIM115 - the process owns it
    process = subprocess.Popen(command, stdout=handle, stderr=handle)
    RUNNING.append(process)
    handle.close()
    return process


def _scrape_config(job: str, port: int) -> dict[str, Any]:
    # the host label as monitoring/prometheus/prometheus.example.yml derives it: the target's address
    return {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
            "relabel_configs": [{"source_labels": ["__address__"], "regex": "([^:]+):\\d+", "target_label": "host"}]}


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory, influxd: LocalInfluxDB) -> Iterator[Watched]:
    if shutil.which("prometheus") is None or NODE_EXPORTER is None:
        pytest.skip("prometheus and prometheus-node-exporter are not installed (scripts/setup.sh installs them)")
    work = tmp_path_factory.mktemp("metrics")
    requests.post(f"{influxd.url}/query", data={"q": 'CREATE DATABASE "watched" WITH DURATION 360d'}, timeout=10)
    influx = InfluxDBConfig(url=influxd.url, database="watched")
    sim = SimulatorProcess(work, speed=1, seed=7)
    ports = {name: free_port() for name in ("producer", "gateway", "node", "prometheus")}
    textfiles = work / "textfile"
    textfiles.mkdir()
    producer = ProducerProcess(work, producer_config(
        influx, sim, PAIRS, candles=300, timeframes=TIMEFRAMES,
        producer={"metrics_listen": f"127.0.0.1:{ports['producer']}"})).start()
    processes: list[subprocess.Popen[bytes]] = []
    gateway = None
    try:
        producer.wait_for_log("backfill done", timeout=120)
        sync_config = {**producer_config(influx, sim, PAIRS, candles=300, timeframes=TIMEFRAMES),
                       "sync": {"datadir": str(work / "user_data" / "data" / "binance"), "candles": 300,
                                "metrics_file": str(textfiles / "freqfeed_sync.prom")}}
        (work / "sync.yml").write_text(yaml.safe_dump(sync_config))
        subprocess.run([sys.executable, "-m", "freqfeed", "sync", "--config", str(work / "sync.yml")], check=True,
                       capture_output=True, timeout=120)
        gateway = GatewayProcess(work, gateway_config(
            influx, sim, PAIRS, TIMEFRAMES, gateway={"metrics_listen": f"127.0.0.1:{ports['gateway']}"})).start()
        processes.append(_start([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{ports['node']}",
                                 "--collector.disable-defaults", "--collector.textfile",
                                 f"--collector.textfile.directory={textfiles}"], work / "node-exporter.log"))
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": [str(RULES)],
                  "scrape_configs": [_scrape_config("freqfeed_producer", ports["producer"]),
                                     _scrape_config("freqfeed_gateway", ports["gateway"]),
                                     _scrape_config("node", ports["node"])]}
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        processes.append(_start(["prometheus", f"--config.file={work / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={work / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{ports['prometheus']}"], work / "prometheus.log"))
        yield Watched(f"http://127.0.0.1:{ports['producer']}/metrics", f"http://127.0.0.1:{ports['gateway']}/metrics",
                      gateway, textfiles / "freqfeed_sync.prom", f"http://127.0.0.1:{ports['prometheus']}")
    finally:
        for process in processes:
            process.terminate()
            process.wait(15)
        if gateway is not None and gateway.process is not None and gateway.process.poll() is None:
            gateway.terminate()
        producer.terminate()
        sim.stop()


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", f"{expr}: {answer}"
    return list(answer["data"]["result"])


def _expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace('"$host"', '".*"').replace("$__rate_interval", "30s")
            found.append((f"{panel['title']} / {target['legendFormat']}", expr))
    return found


def _series(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _traffic(gateway_url: str) -> None:
    """What bots do: candles (answered here), a 24h ticker (forwarded), a book (streamed after the first ask)."""
    for _ in range(3):
        for timeframe in TIMEFRAMES:
            requests.get(f"{gateway_url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": timeframe,
                                                                  "limit": 100}, timeout=10)
        requests.get(f"{gateway_url}/fapi/v1/ticker/24hr", params={"symbol": "ETHUSDT"}, timeout=10)
        requests.get(f"{gateway_url}/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 5}, timeout=10)
        requests.get(f"{gateway_url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m",
                                                              "limit": 5, "startTime": 0}, timeout=10)
        time.sleep(0.5)


def test_the_dashboard_json_is_what_its_builder_writes() -> None:
    sys.path.insert(0, str(DASHBOARD.parent))
    try:
        import build_dashboard  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    assert DASHBOARD.read_text() == build_dashboard.render(), "run: python monitoring/grafana/build_dashboard.py"


def test_every_dashboard_query_returns_data_from_a_real_prometheus(watched: Watched) -> None:
    _traffic(watched.gateway.url)
    expressions = _expressions(json.loads(DASHBOARD.read_text()))
    assert len(expressions) >= 30

    def all_up() -> bool:
        try:
            up = _query(watched.prometheus, 'up{job=~"freqfeed_.*|node"}')
        except requests.RequestException:
            return False
        return len(up) == 3 and all(r["value"][1] == "1" for r in up)

    wait_for(all_up, 60, "Prometheus to scrape the producer, the gateway and node_exporter")

    def empty() -> list[str]:
        _traffic(watched.gateway.url)
        return [title for title, expr in expressions if not _query(watched.prometheus, expr)]

    missing: list[str] = []

    def answered() -> bool:
        nonlocal missing
        missing = empty()
        return not missing

    try:
        wait_for(answered, 90, "every panel's query to return data", interval=2)
    except AssertionError:
        raise AssertionError(f"panels whose query returned nothing: {missing}") from None


def test_rules_load_and_nothing_fires_in_a_healthy_fleet(watched: Watched) -> None:
    def loaded() -> list[dict[str, Any]]:
        groups = requests.get(f"{watched.prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(rule.get("lastEvaluation", "").startswith("2") for rule in rules) else []

    rules = wait_for(loaded, 60, "the rules to be evaluated")
    shipped = [rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    assert sorted(rule["name"] for rule in rules) == sorted(shipped) and len(shipped) == 20
    assert all(rule["health"] == "ok" for rule in rules), [(r["name"], r.get("lastError")) for r in rules]
    firing = [r["name"] for r in rules if r["state"] == "firing"]
    assert not firing, firing


def test_gateway_series_stay_bounded_under_junk_requests(watched: Watched) -> None:
    url = watched.gateway.url
    _traffic(url)
    before = _series(requests.get(watched.gateway_metrics, timeout=10).text)

    def junk(round_: int) -> None:
        with requests.Session() as session:
            for i in range(1000):
                n = f"{round_}x{i}"
                target = [f"/junk{n}/path", f"/fapi/v1/klines?symbol=J{n}&interval=1m", f"/fapi/v1/klines?x{n}=1",
                          f"/fapi/v1/ticker/24hr?symbol=Q{n}", f"/fapi/v9/{n}", f"/api/v3/klines?symbol={n}",
                          f"/fapi/v1/depth?symbol=BTCUSDT&limit={i}", f"/sapi/v1/{n}"][i % 8]
                session.get(url + target, timeout=10)

    junk(1)
    first = _series(requests.get(watched.gateway_metrics, timeout=10).text)
    junk(2)
    second = _series(requests.get(watched.gateway_metrics, timeout=10).text)
    names = {line.split(" ")[0] for line in second}
    assert not [n for n in names if "junk" in n or "1x" in n or "2x" in n or "J1" in n], "a client's text in a label"
    assert len(first) - len(before) <= 120, f"{len(first) - len(before)} new series from 1000 junk requests"
    # the second thousand finds every label value the first one made: not one series more
    grown = {line.split(" ")[0] for line in second} - {line.split(" ")[0] for line in first}
    assert not grown, sorted(grown)
    excerpts = os.environ.get("FREQFEED_METRICS_EXCERPTS")
    if excerpts:
        out = Path(excerpts)
        out.mkdir(parents=True, exist_ok=True)
        (out / "gateway.metrics").write_text(requests.get(watched.gateway_metrics, timeout=10).text)
        (out / "producer.metrics").write_text(requests.get(watched.producer_metrics, timeout=10).text)
        (out / "freqfeed_sync.prom").write_text(watched.prom_file.read_text())
        (out / "series-counts.json").write_text(json.dumps({"before": len(before), "after_1000_junk": len(first),
                                                            "after_2000_junk": len(second)}))


def test_the_sync_writes_its_prom_file(watched: Watched) -> None:
    text = watched.prom_file.read_text()
    assert "freqfeed_sync_success 1.0" in text
    assert 'freqfeed_sync_newest_candle_timestamp_seconds{timeframe="3m"}' in text
    assert 'freqfeed_sync_history_planned_candles{timeframe="1m"} 300.0' in text
    assert not list(watched.prom_file.parent.glob("*.tmp*")), "a temporary file left next to the .prom file"
