"""freqfeed.metrics without servers: names and labels by Prometheus' conventions, every exposed family declared,
the always-exposed label values in step with the code that counts them, the sync's .prom figures."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from freqfeed import config as config_module
from freqfeed import metrics, producer
from freqfeed.exchanges.binance.gateway import app, history
from freqfeed.sync import SyncReport, plan

ALLOWED_LABELS = {"pair", "timeframe", "kind", "stream", "state", "operation", "reason", "endpoint", "outcome"}
RAW = {"influxdb": {"url": "http://127.0.0.1:1", "database": "d"}, "pairs": ["BTC/USDT:USDT", "ETH/USDT:USDT"],
       "timeframes": ["3m", "1h"], "producer": {"metrics_listen": ""}, "gateway": {"metrics_listen": ""}}


def cfg(tmp_path: Path | None = None) -> config_module.Config:
    raw = dict(RAW)
    if tmp_path is not None:
        raw["sync"] = {"datadir": str(tmp_path / "data"), "metrics_file": str(tmp_path / "t" / "f.prom")}
    return config_module.from_mapping(raw, "test", environ={})


@pytest.mark.parametrize("spec", list(metrics.METRICS.values()), ids=lambda s: s.name)
def test_names_and_labels_follow_prometheus_conventions(spec: metrics.Spec) -> None:
    assert re.fullmatch(r"freqfeed_(producer|gateway|sync)_[a-z0-9_]+", spec.name)
    assert spec.name.endswith("_total") == (spec.kind == "counter")
    if re.search(r"(^|_)(age|lag|duration|timestamp|paused|failing)(_|$)", spec.name):
        assert spec.name.endswith("_seconds"), "a time in seconds says so in its name"
    assert not spec.name.endswith(("_ms", "_milliseconds", "_minutes")), "base units only"
    assert set(spec.labels) <= ALLOWED_LABELS, "bounded labels only: never a path, parameter or symbol"


def _tuple_in(function: object) -> set[str]:
    tree = ast.parse(inspect.getsource(function))  # type: ignore[arg-type]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and len(node.elts) > 3:
            found |= {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return found


def test_the_forward_reasons_exposed_are_the_gateways_reason_kinds() -> None:
    assert _tuple_in(app._reason_kind) | {"other"} == set(metrics.FORWARD_REASONS)


def test_the_repair_reasons_exposed_are_the_producers() -> None:
    used = set()
    modules = [producer, *(module for module in vars(producer).values() if inspect.ismodule(module)
                           and module.__name__.startswith("freqfeed.producer."))]  # the package's concerns
    assert len(modules) > 1
    for node in (node for module in modules for node in ast.walk(ast.parse(inspect.getsource(module)))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("_enqueue", "_repair_if_due"):
            reason = node.args[-1]
            if isinstance(reason, ast.Constant):
                used.add(reason.value)
    assert used == set(metrics.REPAIR_REASONS)


def test_the_gateway_states_exposed_are_the_histories() -> None:
    assigned = {node.value.value for node in ast.walk(ast.parse(inspect.getsource(history)))
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                and any(isinstance(t, ast.Attribute) and t.attr == "state" for t in node.targets)}
    assert assigned == set(metrics.GATEWAY_STATES)


def test_slugs_are_plain_label_values() -> None:
    assert metrics.slug("InfluxDB:") == "influxdb"
    assert metrics.slug("book ticker stale or dropped") == "book_ticker_stale_or_dropped"
    assert metrics.slug("???") == "other"


def _exposed(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(registry).decode()
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = [(s.labels, s.value) for s in family.samples]
    return families


def test_the_producer_exposes_declared_families_only() -> None:
    exposed = _exposed(metrics.registry_of(metrics.ProducerCollector(producer.Producer(cfg()))))
    ours = {name for name in exposed if name.startswith("freqfeed_")}
    declared = {name.removesuffix("_total") for name in metrics.METRICS}
    assert ours <= declared, ours - declared
    assert len(exposed["freqfeed_producer_silent_series"]) == 2 + 1  # 2 timeframes + the mark candles
    assert {labels["reason"] for labels, _ in exposed["freqfeed_producer_repairs"]} == {
        metrics.slug(r) for r in metrics.REPAIR_REASONS}


def test_the_gateway_exposes_declared_families_only() -> None:
    gateway = app.Gateway(cfg())
    gateway._count("klines", "local")
    gateway._count("other", "refused")
    gateway.counters["refused: path"] += 1
    exposed = _exposed(metrics.registry_of(metrics.GatewayCollector(gateway)))
    ours = {name for name in exposed if name.startswith("freqfeed_")}
    assert ours <= {name.removesuffix("_total") for name in metrics.METRICS}, ours
    requests = {(labels["endpoint"], labels["outcome"]): value
                for labels, value in exposed["freqfeed_gateway_requests"] if "endpoint" in labels}
    assert requests == {("klines", "local"): 1.0, ("other", "refused"): 1.0}
    states = {labels["state"]: value for labels, value in exposed["freqfeed_gateway_state"]}
    assert states == {"connecting": 1.0, "loading": 0.0, "ready": 0.0, "degraded": 0.0}


def test_the_sync_figures(tmp_path: Path) -> None:
    config = cfg(tmp_path)
    jobs = plan(config)
    report = SyncReport(series=len(jobs), files_updated=3, candles_added=10)
    for job in jobs:
        report.newest[job.label] = 1_800_000_000_000 if job.timeframe == "3m" else 1_799_996_400_000
    families = {f.name: f for f in metrics.sync_families(config, report, jobs, {}, None, 0.0)}
    assert families["freqfeed_sync_success"].samples[0].value == 1.0
    newest = {s.labels["timeframe"]: s.value for s in families["freqfeed_sync_newest_candle_timestamp_seconds"].samples}
    assert newest == {"3m": 1_800_000_000.0, "1h": 1_799_996_400.0}
    failed = metrics.sync_families(config, None, jobs, {}, None, 123.0)
    assert {f.name: f.samples[0].value for f in failed}["freqfeed_sync_last_success_timestamp_seconds"] == 123.0


def test_the_sync_prom_file_keeps_the_last_success_through_a_failure(tmp_path: Path) -> None:
    config = cfg(tmp_path)
    path = config.sync.metrics_file
    assert path is not None
    path.parent.mkdir(parents=True)
    path.write_text("freqfeed_sync_last_success_timestamp_seconds 1.5e+09\n")
    metrics.write_sync_metrics(config, None)
    text = path.read_text()
    assert "freqfeed_sync_last_success_timestamp_seconds 1.5e+09" in text
    assert "freqfeed_sync_success 0.0" in text
    assert [p.name for p in path.parent.iterdir()] == ["f.prom"]
