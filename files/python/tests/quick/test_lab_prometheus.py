"""scripts/lab_prometheus.py: the lab Prometheus' scrape targets from the inventory, its config, and the lab copy
of the alert rules (pure: files only)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[4]
LAB = ROOT / "inventory" / "lab"
ROLES = ROOT / "roles"
RULES = ROOT / "monitoring" / "prometheus" / "freqfeed-rules.yml"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lab_prometheus", ROOT / "scripts" / "lab_prometheus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lab_prometheus"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


lab_prometheus = _load()


def _lab_groups() -> dict[str, list[str]]:
    groups = yaml.safe_load((LAB / "hosts.yml").read_text())["all"]["children"]
    return {name: list(group["hosts"]) for name, group in groups.items()}


def _lab_hosts() -> dict[str, dict[str, object]]:
    """Every host's variables, merged over its groups (host120 is a feeder and the second producer)."""
    merged: dict[str, dict[str, object]] = {}
    for group in yaml.safe_load((LAB / "hosts.yml").read_text())["all"]["children"].values():
        for host, values in group["hosts"].items():
            merged.setdefault(host, {}).update(values or {})
    return merged


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """A copy of the lab inventory a test may change."""
    shutil.copytree(LAB, tmp_path / "lab")
    return tmp_path / "lab"


def _edit(inventory: Path, host: str, **values: object) -> None:
    path = inventory / "hosts.yml"
    data = yaml.safe_load(path.read_text())
    for group in data["all"]["children"].values():
        if host in group["hosts"]:
            group["hosts"][host].update(values)
    path.write_text(yaml.safe_dump(data))


def test_every_lab_host_is_a_target_with_the_inventory_s_port() -> None:
    hosts = _lab_hosts()
    found = lab_prometheus.targets(LAB, ROLES)
    by_job: dict[str, dict[str, str]] = {}
    for target in found:
        by_job.setdefault(target.job, {})[target.host] = target.address
    groups = _lab_groups()
    # host120: a feeder and Binance's second producer; host121: Hyperliquid's producer and feeder
    assert groups["producers"] == ["host73", "host120", "host121"]
    assert by_job["freqfeed_producer"] == {h: hosts[h]["influx_producer_metrics_listen"] for h in groups["producers"]}
    feeders = groups["feeders"]
    assert by_job["freqfeed_gateway"] == {h: hosts[h]["feather_sync_gateway_metrics_listen"] for h in feeders}
    assert by_job["node"] == {h: hosts[h]["node_exporter_web_listen_address"] for h in hosts}
    assert len(found) == len(groups["producers"]) + len(feeders) + len(hosts)
    # producers and gateways carry their exchange (FreqfeedNoProducerUp fires per exchange); node targets do not
    exchanges = {(t.job, t.host): t.exchange for t in found}
    assert exchanges[("freqfeed_producer", "host121")] == exchanges[("freqfeed_gateway", "host121")] == "hyperliquid"
    assert {exchanges[("freqfeed_producer", h)] for h in ("host73", "host120")} == {"binance"}
    assert {t.exchange for t in found if t.job == "node"} == {None}
    config = lab_prometheus.scrape_config(found, [], "5s")
    producer_job = next(j for j in config["scrape_configs"] if j["job_name"] == "freqfeed_producer")
    assert {"host": "host121", "exchange": "hyperliquid"} in [s["labels"] for s in producer_job["static_configs"]]


def test_the_lab_s_ports_are_all_different() -> None:
    """Host networking: every listen address of every lab host, and the lab host's own services, on one
    loopback; the inventory's comment promises a port each."""
    listens = [str(value) for values in _lab_hosts().values() for key, value in values.items()
               if key.endswith(("_listen", "_listen_address"))]
    ports = [int(listen.rsplit(":", 1)[1]) for listen in listens]
    lab_host_ports = [18286, 18290, 18291, 18295]  # influxd, both simulators, Prometheus (scripts/lab.py)
    assert len(set(ports + lab_host_ports)) == len(ports) + len(lab_host_ports), sorted(ports)
    assert all(listen.startswith("127.0.0.1:") for listen in listens)


def test_the_config_has_the_jobs_the_rules_and_the_dashboard_expect_and_a_host_label_per_target() -> None:
    found = lab_prometheus.targets(LAB, ROLES)
    config = lab_prometheus.scrape_config(found, ["/x/rules.yml"], "5s")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    rules_jobs = set(re.findall(r'job="([^"]+)"', RULES.read_text()))
    assert rules_jobs <= set(jobs)
    assert set(jobs) == {"freqfeed_producer", "freqfeed_gateway", "node"}
    dashboard = json.loads((ROOT / "monitoring" / "grafana" / "freqfeed-fleet.json").read_text())
    host_query = next(v for v in dashboard["templating"]["list"] if v["name"] == "host")
    assert all(re.fullmatch(r"freqfeed_.*|node", job) for job in jobs)
    assert "freqfeed_.*|node" in host_query["query"]["query"]  # label_values(up{job=~"freqfeed_.*|node"}, host)
    for job in jobs.values():
        assert "relabel_configs" not in job  # the host label is the inventory's name, not the address (127.0.0.1)
        for static in job["static_configs"]:
            assert len(static["targets"]) == 1
            assert static["labels"]["host"] in _lab_hosts()
    labels = {(job["job_name"], s["labels"]["host"]) for job in jobs.values() for s in job["static_configs"]}
    assert len(labels) == len(found)
    assert config["global"] == {"scrape_interval": "5s", "evaluation_interval": "5s",
                                "external_labels": {"freqfeed": "lab"}}
    assert config["rule_files"] == ["/x/rules.yml"]


def test_a_subset_of_hosts_gives_their_targets_only() -> None:
    found = lab_prometheus.targets(LAB, ROLES, ["host73", "host120"])
    assert sorted((t.job, t.host) for t in found) == [
        ("freqfeed_gateway", "host120"), ("freqfeed_producer", "host120"), ("freqfeed_producer", "host73"),
        ("node", "host120"), ("node", "host73")]
    with pytest.raises(lab_prometheus.LabPrometheusError, match="host999"):
        lab_prometheus.targets(LAB, ROLES, ["host73", "host999"])


def test_two_targets_on_one_port_are_refused_naming_both(inventory: Path) -> None:
    _edit(inventory, "host121", feather_sync_gateway_metrics_listen="127.0.0.1:19403")
    with pytest.raises(lab_prometheus.LabPrometheusError, match=r"127\.0\.0\.1:19403 is both host120's "
                                                                 r"freqfeed_gateway and host121's freqfeed_gateway"):
        lab_prometheus.targets(inventory, ROLES)
    # the role defaults (9818 on every feeder) collide too: the lab inventory must set a port per host
    _edit(inventory, "host121", feather_sync_gateway_metrics_listen="127.0.0.1:19404")
    data = yaml.safe_load((inventory / "hosts.yml").read_text())
    for values in data["all"]["children"]["feeders"]["hosts"].values():
        del values["feather_sync_gateway_metrics_listen"]
    (inventory / "hosts.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(lab_prometheus.LabPrometheusError, match=r"127\.0\.0\.1:9818 is both"):
        lab_prometheus.targets(inventory, ROLES)


def test_role_defaults_fill_what_the_inventory_does_not_set() -> None:
    found = lab_prometheus.targets(ROOT / "inventory" / "production", ROLES, ["host73"])
    assert {(t.job, t.address) for t in found} == {("freqfeed_producer", "127.0.0.1:9817"),
                                                   ("node", "127.0.0.1:9100")}


def test_switched_off_parts_give_no_target(inventory: Path) -> None:
    _edit(inventory, "host75", feather_sync_gateway_enabled=False)
    _edit(inventory, "host120", feather_sync_gateway_metrics_listen="")
    _edit(inventory, "host121", freqfeed_node_exporter=False)
    found = {(t.job, t.host) for t in lab_prometheus.targets(inventory, ROLES)}
    assert ("freqfeed_gateway", "host75") not in found
    assert ("freqfeed_gateway", "host120") not in found
    assert ("node", "host121") not in found
    assert ("node", "host75") in found
    # the fleet-wide switch in group_vars: no node_exporter target at all
    (inventory / "group_vars" / "all" / "zz-test.yml").write_text("freqfeed_node_exporter: false\n")
    assert not [t for t in lab_prometheus.targets(inventory, ROLES) if t.job == "node"]


def test_vault_files_in_group_vars_are_skipped(inventory: Path) -> None:
    (inventory / "group_vars" / "all" / "vault.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n6638643965\n")
    (inventory / "group_vars" / "all" / "tagged.yml").write_text("token: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n")
    assert len(lab_prometheus.targets(inventory, ROLES)) == 12


@pytest.mark.parametrize(("listen", "address"), [
    ("127.0.0.1:9100", "127.0.0.1:9100"), ("0.0.0.0:9100", "127.0.0.1:9100"), ("[::]:9100", "127.0.0.1:9100"),
    ("[::1]:9100", "[::1]:9100"), ("host120:9818", "host120:9818")])
def test_scrape_address(listen: str, address: str) -> None:
    assert lab_prometheus.scrape_address(listen, "x") == address


@pytest.mark.parametrize("listen", ["9100", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "a b:1",
                                    "{{ lookup('env', 'X') }}"])
def test_a_listen_address_prometheus_cannot_scrape_is_refused(listen: str) -> None:
    with pytest.raises(lab_prometheus.LabPrometheusError, match="host9: node_exporter_web_listen_address"):
        lab_prometheus.scrape_address(listen, "host9: node_exporter_web_listen_address")


def test_the_lab_rules_cut_every_for_and_change_nothing_else() -> None:
    shipped = yaml.safe_load(RULES.read_text())
    before = json.dumps(shipped)
    lab = lab_prometheus.lab_rules(shipped, "30s")
    assert json.dumps(shipped) == before  # the input is not changed
    pairs = list(zip(shipped["groups"][0]["rules"], lab["groups"][0]["rules"], strict=True))
    assert len(pairs) == 20
    for original, copy in pairs:
        changed = {"for", "expr"} if original["alert"] in lab_prometheus.LAB_WINDOWS else {"for"}
        assert {k: v for k, v in copy.items() if k not in changed} == {k: v for k, v in original.items()
                                                                       if k not in changed}
        if "for" not in original:
            assert "for" not in copy
        elif original["alert"] == "FreqfeedHistoryShort":  # a fresh lab's files grow to the plan: kept
            assert copy["for"] == original["for"] == "2h"
        else:
            seconds = lab_prometheus.duration_seconds(original["for"])
            assert copy["for"] == ("30s" if seconds > 30 else original["for"])
    assert sum(copy.get("for") == "30s" for _, copy in pairs) == 14  # 15 rules have a for:
    limited = next(copy for _, copy in pairs if copy["alert"] == "FreqfeedExchangeRateLimited")
    assert limited["expr"] == ("increase(freqfeed_producer_rest_rate_limited_total[2m]) > 0 "
                               "or increase(freqfeed_gateway_upstream_rate_limited_total[2m]) > 0")
    assert lab_prometheus.lab_rules(shipped, "30s", keep=frozenset())["groups"][0]["rules"][-1]["for"] == "30s"


def test_the_generated_files(tmp_path: Path) -> None:
    found = lab_prometheus.targets(LAB, ROLES, ["host73"])
    config_path = lab_prometheus.write_files(tmp_path / "p", found, "5s", "30s")
    config = yaml.safe_load(config_path.read_text())
    assert config["rule_files"] == [str(tmp_path / "p" / "freqfeed-rules.lab.yml")]
    rules = yaml.safe_load((tmp_path / "p" / "freqfeed-rules.lab.yml").read_text())
    assert {rule.get("for", "0s") for rule in rules["groups"][0]["rules"]} == {"0s", "30s", "2h"}
    # the templates in the annotations survive YAML's round trip
    assert "{{ $labels.host }}" in rules["groups"][0]["rules"][0]["annotations"]["summary"]


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("2m", 120), ("1h30m", 5400), ("500ms", 0.5),
                                               ("2h", 7200)])
def test_durations(text: str, seconds: float) -> None:
    assert lab_prometheus.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "2 m", "m2", "1.5m", "2mx"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(lab_prometheus.LabPrometheusError, match="not a Prometheus duration"):
        lab_prometheus.duration_seconds(text)


def test_api_times() -> None:
    assert lab_prometheus.timestamp("1970-01-01T00:00:10Z") == 10
    assert lab_prometheus.timestamp("1970-01-01T00:00:10.123456789Z") == pytest.approx(10.123456789)
    assert lab_prometheus.timestamp("1970-01-01T01:00:10.5+01:00") == pytest.approx(10.5)
    assert lab_prometheus.timestamp("0001-01-01T00:00:00Z") < 0  # Go's zero time: "never scraped"
    assert lab_prometheus.timestamp("") == 0


def test_the_dashboard_queries_are_read_for_every_host() -> None:
    queries = lab_prometheus.dashboard_queries(json.loads(lab_prometheus.DASHBOARD.read_text()))
    assert len(queries) >= 30
    assert not [expr for _, expr in queries if "$" in expr]  # no Grafana variable left for Prometheus
