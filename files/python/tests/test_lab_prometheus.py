"""The lab's Prometheus as scripts/services.py starts it (Debian's `prometheus`), without the lab: the config
generated from inventory/lab loads, the lab copy of the shipped rules loads and evaluates with health ok, every
inventory target is scraped with its `host` label, and `services.py down` stops it. The containers are not
running here, so the targets are down and FreqfeedProducerDown/GatewayDown go pending, then fire: that is the
lab copy's `for:` (30 s) at work, and the alerts API answers as `lab.py up` reads it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from freqfeed.localinflux import free_port

from .processes import wait_for

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[3]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


services = _load("services")
lab_prometheus = sys.modules["lab_prometheus"]  # imported by services.py from scripts/


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (scripts/setup.sh installs Debian's package)")
    state = tmp_path_factory.mktemp("lab-services")
    port = free_port()
    process = services.start_prometheus(state, port, ROOT / "inventory" / "lab", interval="1s")
    (state / "pids.json").write_text(json.dumps({"prometheus": process.pid}))
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        services.down(state)
        if process.poll() is None:
            process.kill()
        process.wait(15)


def _rules(base: str) -> list[dict[str, Any]]:
    groups = lab_prometheus.api(base, "rules")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_load_and_evaluate_with_health_ok(prometheus: tuple[str, Path]) -> None:
    base, _ = prometheus
    assert lab_prometheus.wait_evaluated(base, timeout=60), "no scrape of every target and evaluation after it"
    rules = _rules(base)
    assert len(rules) == 20
    assert all(rule["health"] == "ok" for rule in rules), [(r["name"], r.get("lastError")) for r in rules]
    # the lab copy: every for: cut to 30s, but FreqfeedHistoryShort's 2h
    assert {rule["name"]: rule["duration"] for rule in rules if rule["duration"] > 30} == {"FreqfeedHistoryShort": 7200}
    assert {rule["name"] for rule in rules} >= {"FreqfeedProducerDown", "FreqfeedGatewayDown", "FreqfeedSyncFailing"}


def test_every_inventory_target_is_scraped_with_its_host_label(prometheus: tuple[str, Path]) -> None:
    base, _ = prometheus
    expected = {(t.job, t.host, f"http://{t.address}/metrics")
                for t in lab_prometheus.targets(ROOT / "inventory" / "lab", ROOT / "roles")}
    active = lab_prometheus.api(base, "targets", state="active")["activeTargets"]
    assert {(t["labels"]["job"], t["labels"]["host"], t["scrapeUrl"]) for t in active} == expected
    # 3 producers (Binance's host73 and host120, Hyperliquid's host121), 4 gateways, 5 node_exporters
    assert len(expected) == 12
    assert {t["labels"]["host"]: t["labels"]["exchange"] for t in active if t["labels"]["job"] == "freqfeed_producer"} \
        == {"host73": "binance", "host120": "binance", "host121": "hyperliquid"}


def test_down_targets_fire_the_lab_s_alerts_and_the_report_says_so(prometheus: tuple[str, Path]) -> None:
    base, _ = prometheus

    def firing() -> set[tuple[str, str]]:
        alerts = lab_prometheus.active_alerts(base)
        return {(a["labels"]["alertname"], a["labels"]["host"]) for a in alerts if a["state"] == "firing"}

    # nothing listens on the lab's ports here: up == 0 for 30s (the lab's for:) fires the "down" alerts
    wait_for(lambda: {("FreqfeedProducerDown", "host73"), ("FreqfeedGatewayDown", "host120")} <= firing(), 90,
             "FreqfeedProducerDown and FreqfeedGatewayDown to fire for the lab's unreachable targets")
    # no producer of either exchange: FreqfeedNoProducerUp once per exchange
    wait_for(lambda: {a["labels"].get("exchange") for a in lab_prometheus.active_alerts(base)
                      if a["labels"]["alertname"] == "FreqfeedNoProducerUp" and a["state"] == "firing"}
             == {"binance", "hyperliquid"}, 90, "FreqfeedNoProducerUp for each exchange")
    lines = lab_prometheus.report(base)
    assert lines[0] == "targets up: 0/12"
    assert any(line.startswith("active alerts: ") and line != "active alerts: none" for line in lines)
    assert any("FreqfeedProducerDown host73: freqfeed producer on host73 is down" in line for line in lines)


def test_the_dashboard_queries_run_against_it(prometheus: tuple[str, Path]) -> None:
    """lab.py test's dashboard report: every query is valid PromQL here (an error raises); with no target up,
    a query returns data only if it also counts what is absent (e.g. the fleet row's `up`)."""
    base, _ = prometheus
    queries = lab_prometheus.dashboard_queries(json.loads(lab_prometheus.DASHBOARD.read_text()))
    empty = lab_prometheus.empty_panels(base, queries)
    assert 0 < len(empty) < len(queries)


def test_down_stops_it(prometheus: tuple[str, Path]) -> None:  # last: the module's Prometheus is gone after it
    base, state = prometheus
    services.down(state)
    with pytest.raises(requests.RequestException):
        requests.get(f"{base}/-/ready", timeout=2)
    assert not (state / "pids.json").exists()
