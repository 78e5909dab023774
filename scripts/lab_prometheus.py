#!/usr/bin/env python3
"""The lab's Prometheus: its scrape configuration from the lab inventory, a lab copy of the shipped alert rules
with shorter `for:`, and what `lab.py up` prints (targets, active alerts) from its HTTP API.

The jobs and the `host` label are the ones monitoring/prometheus/freqfeed-rules.yml and the Grafana dashboard
expect (monitoring/prometheus/prometheus.example.yml): `freqfeed_producer` (each producer's
influx_producer_metrics_listen), `freqfeed_gateway` (each feeder's feather_sync_gateway_metrics_listen, unless
feather_sync_gateway_enabled is false) and `node` (every host's node_exporter_web_listen_address, unless
freqfeed_node_exporter is false). The lab's targets all share 127.0.0.1 (host networking), so the `host` label
is set per target from the inventory's host name instead of being derived from the address. Producer and gateway
targets also carry `exchange` (the host's freqfeed_exchange, binance by default): FreqfeedNoProducerUp fires per
exchange, so a fleet with a Hyperliquid producer is told when Binance's are all down.

Everything above the HTTP helpers is pure (tests/quick/test_lab_prometheus.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "monitoring" / "prometheus" / "freqfeed-rules.yml"

# job name, the inventory group whose hosts run it (None: every host), the variable with its listen address,
# the role whose defaults/main.yml holds that variable's default, and the variable that turns it off.
# (producer and gateway targets are labelled with their exchange: EXCHANGE_VARIABLES)
JOBS: tuple[tuple[str, str | None, str, str, tuple[str, bool] | None], ...] = (
    ("freqfeed_producer", "producers", "influx_producer_metrics_listen", "influx_producer", None),
    ("freqfeed_gateway", "feeders", "feather_sync_gateway_metrics_listen", "feather_sync",
     ("feather_sync_gateway_enabled", True)),
    ("node", None, "node_exporter_web_listen_address", "node_exporter", ("freqfeed_node_exporter", True)),
)


# per job: the role variable naming a host's exchange (its default: freqfeed_exchange, else binance)
EXCHANGE_VARIABLES = {"freqfeed_producer": "influx_producer_exchange", "freqfeed_gateway": "feather_sync_exchange"}


class LabPrometheusError(ValueError):
    """The inventory does not give Prometheus a target it can scrape (with what to change)."""


@dataclass(frozen=True)
class Target:
    job: str
    host: str
    address: str  # HOST:PORT Prometheus scrapes
    exchange: str | None = None  # producer and gateway targets: the exchange they serve


# ---------------------------------------------------------------------------------------------
# the inventory


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def _vars_file(path: Path) -> dict[str, Any]:
    """A vars file's plain values; an Ansible Vault file (encrypted, or with !vault tags) has none we read."""
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return {}
    return content if isinstance(content, dict) else {}


def _group_vars(inventory_dir: Path, group: str) -> dict[str, Any]:
    """group_vars/<group>.yml, or every *.yml in group_vars/<group>/ (sorted, later files win)."""
    merged: dict[str, Any] = {}
    base = inventory_dir / "group_vars"
    for name in (f"{group}.yml", f"{group}.yaml"):
        if (base / name).is_file():
            merged.update(_vars_file(base / name))
    if (base / group).is_dir():
        for path in sorted((base / group).glob("*.y*ml")):
            merged.update(_vars_file(path))
    return merged


def host_vars(inventory_dir: Path) -> dict[str, tuple[set[str], dict[str, Any]]]:
    """Every host of inventory_dir/hosts.yml: its groups and its variables (all < group < host, as Ansible
    merges them for these plain values; host_vars/ files win last)."""
    inventory = _load(inventory_dir / "hosts.yml")["all"]
    base = {**_group_vars(inventory_dir, "all"), **(inventory.get("vars") or {})}
    hosts: dict[str, tuple[set[str], dict[str, Any]]] = {}
    for group, content in (inventory.get("children") or {}).items():
        group_values = {**_group_vars(inventory_dir, group), **((content or {}).get("vars") or {})}
        for host, values in ((content or {}).get("hosts") or {}).items():
            groups, merged = hosts.setdefault(host, (set(), dict(base)))
            groups.add(group)
            merged.update(group_values)
            merged.update(values or {})
    for host, (_, merged) in hosts.items():
        for name in (f"{host}.yml", f"{host}.yaml"):
            if (inventory_dir / "host_vars" / name).is_file():
                merged.update(_vars_file(inventory_dir / "host_vars" / name))
    return hosts


def role_defaults(roles_dir: Path) -> dict[str, Any]:
    """The defaults of the variables JOBS reads, from each role's defaults/main.yml."""
    found: dict[str, Any] = {}
    for _, _, variable, role, _ in JOBS:
        path = roles_dir / role / "defaults" / "main.yml"
        found[variable] = _load(path).get(variable) if path.is_file() else None
    return found


def scrape_address(listen: str, where: str) -> str:
    """The address Prometheus scrapes for a listen address: 0.0.0.0 / [::] (every interface) -> 127.0.0.1."""
    if "{{" in listen or "{%" in listen:
        raise LabPrometheusError(f"{where}: {listen!r} is a template; give the lab a literal HOST:PORT")
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):(\d{1,5})", listen)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise LabPrometheusError(f"{where}: {listen!r} is not HOST:PORT")
    host = "127.0.0.1" if match.group(1) in ("0.0.0.0", "[::]") else match.group(1)
    return f"{host}:{match.group(2)}"


def _on(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return bool(value)


def exchange_of(job: str, values: dict[str, Any]) -> str | None:
    """The exchange a producer or gateway target serves, as its role reads it; None for other jobs."""
    if job not in EXCHANGE_VARIABLES:
        return None
    value = values.get(EXCHANGE_VARIABLES[job])
    if value is None or "{{" in str(value):
        value = values.get("freqfeed_exchange", "binance")
    return str(value)


def targets(inventory_dir: Path, roles_dir: Path, only: Iterable[str] | None = None) -> list[Target]:
    """Every scrape target the inventory's hosts (or those in `only`) serve, in inventory order per job.

    A listen address set to the empty string (metrics off) gives no target; two targets on one address are an
    error (with host networking they would be one process, and the other's /metrics never served)."""
    hosts = host_vars(inventory_dir)
    wanted = None if only is None else set(only)
    if wanted is not None and wanted - set(hosts):
        raise LabPrometheusError(f"not in {inventory_dir}/hosts.yml: {', '.join(sorted(wanted - set(hosts)))}")
    defaults = role_defaults(roles_dir)
    found: list[Target] = []
    for job, group, variable, _, switch in JOBS:
        for host, (groups, values) in hosts.items():
            if (wanted is not None and host not in wanted) or (group is not None and group not in groups):
                continue
            if switch is not None and not _on(values.get(switch[0], switch[1])):
                continue
            listen = values.get(variable, defaults[variable])
            if listen is None:
                raise LabPrometheusError(f"{host}: no {variable} in the inventory and no role default for it")
            if str(listen) == "":
                continue
            address = scrape_address(str(listen), f"{host}: {variable}")
            found.append(Target(job, host, address, exchange_of(job, values)))
    seen: dict[str, Target] = {}
    for target in found:
        if target.address in seen:
            other = seen[target.address]
            raise LabPrometheusError(
                f"{target.address} is both {other.host}'s {other.job} and {target.host}'s {target.job}: give each "
                "host its own port in the inventory (host networking: every container shares 127.0.0.1)")
        seen[target.address] = target
    return found


# ---------------------------------------------------------------------------------------------
# Prometheus' files


def scrape_config(found: list[Target], rule_files: list[str], interval: str = "5s") -> dict[str, Any]:
    """A prometheus.yml: one job per kind of target, each target with its `host` label (and `exchange`)."""
    jobs: dict[str, list[dict[str, Any]]] = {}
    for target in found:
        labels = {"host": target.host, **({"exchange": target.exchange} if target.exchange else {})}
        jobs.setdefault(target.job, []).append({"targets": [target.address], "labels": labels})
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "external_labels": {"freqfeed": "lab"}},
        "rule_files": list(rule_files),
        "scrape_configs": [{"job_name": job, "static_configs": static} for job, static in jobs.items()],
    }


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def duration_seconds(text: str) -> float:
    """A Prometheus duration ("1h30m", "2m", "500ms") in seconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise LabPrometheusError(f"{text!r} is not a Prometheus duration")
    return sum(int(number) * _UNITS[unit] for number, unit in parts)


# Alerts whose shipped `for:` the lab keeps: FreqfeedHistoryShort's 2h covers a fresh fleet whose files grow to
# the plan over the first syncs after the producer's backfill, which is what every lab start is.
LAB_KEEPS_FOR = frozenset({"FreqfeedHistoryShort"})
# Alerts whose range windows the lab shortens to 2m: each resolves only once its window (10-15 minutes as
# shipped) has slid past the fault, and the lab's drills wait for every alert to resolve. FreqfeedExchangeRateLimited
# fires on any 429 in its window; the gateway's forwarded share and close-wait fallbacks rise in the exchange drills.
LAB_WINDOWS = {"FreqfeedExchangeRateLimited": "2m", "FreqfeedGatewayForwarding": "2m",
               "FreqfeedGatewayCloseWaitFallbacks": "2m"}
_RANGE = re.compile(r"\[(\d+(?:ms|s|m|h|d|w|y))+\]")


def lab_rules(rules: dict[str, Any], max_for: str, keep: frozenset[str] = LAB_KEEPS_FOR,
              windows: dict[str, str] | None = None) -> dict[str, Any]:
    """The shipped rules with every `for:` longer than max_for cut to max_for, except the alerts in `keep`, and
    the range windows of the alerts in `windows` (default LAB_WINDOWS) set to theirs (the lab's drills wait for
    alerts to fire and to resolve; expressions and thresholds stay as shipped). The shipped file is not changed."""
    cap = duration_seconds(max_for)
    windows = LAB_WINDOWS if windows is None else windows
    groups = []
    for group in rules["groups"]:
        changed = []
        for shipped in group["rules"]:
            rule = dict(shipped)
            if "for" in rule and rule.get("alert") not in keep and duration_seconds(str(rule["for"])) > cap:
                rule["for"] = max_for
            if rule.get("alert") in windows:
                rule["expr"] = _RANGE.sub(f"[{windows[rule['alert']]}]", str(rule["expr"]))
            changed.append(rule)
        groups.append({**group, "rules": changed})
    return {**rules, "groups": groups}


def write_files(work: Path, found: list[Target], interval: str, max_for: str, rules: Path = RULES) -> Path:
    """prometheus.yml and freqfeed-rules.lab.yml in `work`; returns the config's path."""
    work.mkdir(parents=True, exist_ok=True)
    lab_copy = work / "freqfeed-rules.lab.yml"
    source = rules.relative_to(REPO) if rules.is_relative_to(REPO) else rules
    header = (f"# Generated by scripts/lab_prometheus.py from {source}: every for: cut to at most {max_for}, "
              f"except {', '.join(sorted(LAB_KEEPS_FOR))}'s; range windows: "
              + ", ".join(f"{alert} {window}" for alert, window in sorted(LAB_WINDOWS.items())) + ".\n")
    lab_copy.write_text(header + yaml.safe_dump(lab_rules(_load(rules), max_for), sort_keys=False, width=1000))
    config = work / "prometheus.yml"
    config.write_text("# Generated by scripts/lab_prometheus.py from the lab inventory.\n"
                      + yaml.safe_dump(scrape_config(found, [str(lab_copy)], interval), sort_keys=False))
    return config


# ---------------------------------------------------------------------------------------------
# its HTTP API


def api(base: str, path: str, **params: str) -> Any:
    answer = requests.get(f"{base}/api/v1/{path}", params=params, timeout=10)
    answer.raise_for_status()
    body = answer.json()
    if body.get("status") != "success":
        raise RuntimeError(f"{base}/api/v1/{path}: {body}")
    return body["data"]


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def timestamp(text: str) -> float:
    """Unix time of the API's RFC 3339 times (Go's: up to 9 fraction digits, trailing zeros cut); 0 if none."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return 0.0
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    whole = datetime.fromisoformat(match.group(1) + zone).timestamp()
    return whole + float("0." + (match.group(2) or "0"))


def wait_evaluated(base: str, timeout: float) -> bool:
    """Until every target has been scraped since this call and every rule group evaluated after that (or
    timeout): the alerts then say what the targets said from now on, not before (e.g. during a deploy)."""
    since = time.time()
    deadline = time.monotonic() + timeout
    scraped_by = 0.0  # when the last of the targets had its first scrape since the call
    while time.monotonic() < deadline:
        try:
            if not scraped_by:
                active = api(base, "targets", state="active")["activeTargets"]
                scraped = [timestamp(t["lastScrape"]) for t in active]
                if active and min(scraped) > since:
                    scraped_by = max(scraped)
            if scraped_by:
                groups = api(base, "rules")["groups"]
                if groups and all(timestamp(g.get("lastEvaluation", "")) > scraped_by for g in groups):
                    return True
        except (requests.RequestException, RuntimeError):
            pass
        time.sleep(1)
    return False


def active_alerts(base: str) -> list[dict[str, Any]]:
    """Firing and pending alerts (what ALERTS holds), firing first."""
    alerts = list(api(base, "alerts")["alerts"])
    return sorted(alerts, key=lambda a: (a["state"] != "firing", a["labels"].get("alertname", ""),
                                         a["labels"].get("host", "")))


DASHBOARD = REPO / "monitoring" / "grafana" / "freqfeed-fleet.json"


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel / legend, PromQL) of every panel query, for every host ($host -> .*, as tests/test_metrics.py)."""
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace('"$host"', '".*"').replace("$__rate_interval", "30s")
            found.append((f"{panel['title']} / {target.get('legendFormat', '')}", expr))
    return found


def empty_panels(base: str, queries: list[tuple[str, str]]) -> list[str]:
    """The panel queries that return nothing from this Prometheus now."""
    return [title for title, expr in queries if not api(base, "query", query=expr)["result"]]


def report(base: str) -> list[str]:
    """Lines for the end of `lab.py up`: the targets that are down, then the active alerts ("none")."""
    active = api(base, "targets", state="active")["activeTargets"]
    down = [t for t in active if t.get("health") != "up"]
    lines = [f"targets up: {len(active) - len(down)}/{len(active)}"]
    lines += [f"  down: {t['labels'].get('job')} {t['labels'].get('host')} {t['scrapeUrl']}: "
              f"{t.get('lastError') or t.get('health')}" for t in down]
    alerts = active_alerts(base)
    lines.append("active alerts: " + ("none" if not alerts else str(len(alerts))))
    lines += [f"  {a['state']:8} {a['labels'].get('alertname')} {a['labels'].get('host', '')}: "
              f"{a.get('annotations', {}).get('summary', '')}" for a in alerts]
    return lines


def main() -> int:
    """Write the lab's prometheus.yml and rules copy into a directory (`make rules` checks them with promtool)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="where to write prometheus.yml and the rules copy")
    parser.add_argument("--inventory", type=Path, default=REPO / "inventory" / "lab")
    parser.add_argument("--hosts", default="", help="only these hosts (comma-separated); default: every host")
    parser.add_argument("--interval", default="5s")
    parser.add_argument("--max-for", default="30s")
    args = parser.parse_args()
    try:
        found = targets(args.inventory.resolve(), REPO / "roles", [h for h in args.hosts.split(",") if h] or None)
        print(write_files(args.dir.resolve(), found, args.interval, args.max_for))
    except LabPrometheusError as error:
        print(f"lab_prometheus: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
