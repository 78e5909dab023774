#!/usr/bin/env python3
"""Host-side services for Molecule and the lab: Debian's influxd (auth on), `freqfeed simulate` and Prometheus.

  services.py up   --dir DIR --influx-port P --sim-port Q [--speed S] --password-file F [--produce PAIRS]
                   [--hl-sim-port H [--hl-produce PAIRS]] [--prometheus-port R --inventory INV [--hosts H1,H2]]
  services.py down --dir DIR
  services.py stop-influxd --dir DIR / start-influxd --dir DIR --influx-port P   (the lab's InfluxDB drill)

Containers run with host networking, so they reach both on 127.0.0.1. `up` replaces whatever a
previous `up` with the same DIR left running, waits until both answer, and creates the InfluxDB
user `freqfeed` (all privileges) with the password from --password-file. `down` stops both; the
data directory stays until DIR is removed. With --produce, a host-side `freqfeed produce` also streams
those pairs into InfluxDB (a stand-in producer for the feeder scenario); `up` returns once it has
backfilled. With --hl-sim-port, `freqfeed simulate --exchange hyperliquid` also serves 127.0.0.1:H (its /info and
/ws), and --hl-produce streams those Hyperliquid pairs with a second host-side producer. With --prometheus-port,
Debian's `prometheus` also runs on 127.0.0.1:R (data in DIR/prometheus),
scraping every target the inventory INV gives the hosts (all, or --hosts) with a lab copy of the shipped rules
(scripts/lab_prometheus.py); `up` returns once it is ready.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "files" / "python"))
sys.path.insert(0, str(REPO / "scripts"))

import lab_prometheus

from freqfeed.localinflux import LocalInfluxDB

INFLUX_USER = "freqfeed"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def down(state: Path) -> None:
    pids_file = state / "pids.json"
    if not pids_file.exists():
        return
    pids = json.loads(pids_file.read_text())
    for name, pid in pids.items():
        _stop(pid, name)
    pids_file.unlink()


def _stop(pid: int, name: str) -> None:
    if not _alive(pid):
        return
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    print(f"stopped {name} (pid {pid})")


def stop_influxd(state: Path) -> None:
    """Stop the influxd an `up` started (its data stay): what a drill does to see the fleet without InfluxDB."""
    pids = json.loads((state / "pids.json").read_text())
    _stop(int(pids["influxd"]), "influxd")


def start_influxd(state: Path, influx_port: int) -> None:
    """Start it again on the same port and data; returns once it answers."""
    pids = json.loads((state / "pids.json").read_text())
    if _alive(int(pids["influxd"])):
        raise SystemExit(f"services: influxd (pid {pids['influxd']}) is running already")
    influxd = LocalInfluxDB(state / "influxd", port=influx_port, auth=True)
    influxd.start()
    assert influxd.process is not None
    pids["influxd"] = influxd.process.pid
    (state / "pids.json").write_text(json.dumps(pids))
    print(f"influxd http://127.0.0.1:{influx_port} again (pid {influxd.process.pid})")


def _wait(url: str, what: str, timeout: float = 30, body: dict[str, Any] | None = None) -> None:
    """Until `url` answers 2xx (a GET, or a POST of `body`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = requests.get(url, timeout=1) if body is None else requests.post(url, json=body, timeout=1)
            if answer.ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"services: {what} did not answer {url} within {timeout:.0f}s")


def _start_producer(state: Path, influx_url: str, password: str, pairs: list[str], exchange: dict[str, Any],
                    name: str = "producer") -> int:
    config = {
        "influxdb": {"url": influx_url, "database": "freqfeed", "username": INFLUX_USER},
        "pairs": pairs,
        "exchange": {**exchange, "request_delay": 0.1},
        "producer": {"health_file": str(state / f"{name}-health.json")},
    }
    (state / f"{name}.yml").write_text(json.dumps(config))
    log_path = state / f"{name}.log"
    with open(log_path, "ab") as log:
        producer = subprocess.Popen(
            [sys.executable, "-m", "freqfeed", "produce", "--config", str(state / f"{name}.yml")],
            stdout=log, stderr=log, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(REPO / "files" / "python"), "FREQFEED_INFLUXDB_PASSWORD": password})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if producer.poll() is not None:
            raise SystemExit(f"services: the {name} exited with {producer.returncode}; see {log_path}")
        if "backfill done" in log_path.read_text(errors="replace"):
            return producer.pid
        time.sleep(0.5)
    raise SystemExit(f"services: the {name} did not finish its backfill in 180s; see {log_path}")


def _start_simulator(state: Path, exchange: str, port: int, speed: float) -> int:
    with open(state / f"simulator-{exchange}.log", "ab") as log:
        simulator = subprocess.Popen(
            [sys.executable, "-m", "freqfeed", "simulate", "--exchange", exchange, "--host", "127.0.0.1",
             "--port", str(port), "--speed", str(speed)], stdout=log, stderr=log, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(REPO / "files" / "python")})
    return simulator.pid


def start_prometheus(state: Path, port: int, inventory: Path, hosts: list[str] | None = None,
                     interval: str = "5s", max_for: str = "30s", timeout: float = 60) -> subprocess.Popen[bytes]:
    """Debian's prometheus on 127.0.0.1:port with a config generated from the inventory; returns once ready."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("services: no prometheus here (Debian's `prometheus` package; scripts/setup.sh installs it)")
    try:
        found = lab_prometheus.targets(inventory.resolve(), REPO / "roles", hosts)
    except lab_prometheus.LabPrometheusError as error:
        raise SystemExit(f"services: the lab's Prometheus: {error}") from None
    work = state / "prometheus"
    config = lab_prometheus.write_files(work, found, interval, max_for)
    with open(work / "prometheus.log", "ab") as log:
        prometheus = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
             "--storage.tsdb.retention.time=7d", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if prometheus.poll() is not None:
            tail = (work / "prometheus.log").read_text(errors="replace").splitlines()[-5:]
            raise SystemExit(f"services: prometheus exited with {prometheus.returncode}; {work}/prometheus.log ends:\n"
                             + "\n".join(tail))
        try:
            if requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).ok:
                return prometheus
        except requests.RequestException:
            pass
        time.sleep(0.2)
    prometheus.terminate()
    raise SystemExit(f"services: prometheus was not ready on 127.0.0.1:{port} within {timeout:.0f}s; see {work}")


def up(state: Path, influx_port: int, sim_port: int, speed: float, password: str, produce: list[str],
       prometheus_port: int = 0, inventory: Path | None = None, hosts: list[str] | None = None,
       hl_sim_port: int = 0, hl_produce: list[str] | None = None) -> None:
    down(state)
    state.mkdir(parents=True, exist_ok=True)
    influxd = LocalInfluxDB(state / "influxd", port=influx_port, auth=True)
    influxd.start()
    assert influxd.process is not None
    pids = {"influxd": influxd.process.pid}
    # The first user on an auth-enabled 1.x server may be created without credentials; later runs log in.
    auth = (INFLUX_USER, password)
    statement = f"CREATE USER {INFLUX_USER} WITH PASSWORD '{password}' WITH ALL PRIVILEGES"
    answer = requests.post(f"{influxd.url}/query", data={"q": statement}, timeout=10)
    if not answer.ok:
        requests.post(f"{influxd.url}/query", data={"q": "SHOW DATABASES"}, auth=auth, timeout=10).raise_for_status()
    pids["simulator"] = _start_simulator(state, "binance", sim_port, speed)
    if hl_sim_port:
        pids["hyperliquid simulator"] = _start_simulator(state, "hyperliquid", hl_sim_port, speed)
    (state / "pids.json").write_text(json.dumps(pids))
    _wait(f"http://127.0.0.1:{sim_port}/fapi/v1/time", "the simulator")
    if hl_sim_port:
        _wait(f"http://127.0.0.1:{hl_sim_port}/info", "the Hyperliquid simulator", body={"type": "exchangeStatus"})
    if produce:
        pids["producer"] = _start_producer(state, influxd.url, password, produce, {
            "rest_url": f"http://127.0.0.1:{sim_port}", "ws_url": f"ws://127.0.0.1:{sim_port}/market"})
        (state / "pids.json").write_text(json.dumps(pids))
    if hl_produce:
        pids["hyperliquid producer"] = _start_producer(state, influxd.url, password, hl_produce, {
            "name": "hyperliquid", "rest_url": f"http://127.0.0.1:{hl_sim_port}",
            "ws_url": f"ws://127.0.0.1:{hl_sim_port}/ws"}, name="producer-hyperliquid")
        (state / "pids.json").write_text(json.dumps(pids))
    if prometheus_port:
        assert inventory is not None
        pids["prometheus"] = start_prometheus(state, prometheus_port, inventory, hosts).pid
        (state / "pids.json").write_text(json.dumps(pids))
    print(f"influxd http://127.0.0.1:{influx_port} (user {INFLUX_USER}), "
          f"simulator http://127.0.0.1:{sim_port} (speed {speed}x)"
          + (f", Hyperliquid simulator http://127.0.0.1:{hl_sim_port}" if hl_sim_port else "") + f"; state in {state}")
    if prometheus_port:
        print(f"prometheus http://127.0.0.1:{prometheus_port} (config {state}/prometheus/prometheus.yml)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "stop-influxd", "start-influxd"])
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--influx-port", type=int, default=18086)
    parser.add_argument("--sim-port", type=int, default=18090)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--password-file", type=Path)
    parser.add_argument("--produce", default="", help="comma-separated pairs to stream with a host-side producer")
    parser.add_argument("--hl-sim-port", type=int, default=0, help="also serve a Hyperliquid simulator on this port")
    parser.add_argument("--hl-produce", default="", help="with --hl-sim-port: Hyperliquid pairs a host-side producer "
                        "streams (comma-separated)")
    parser.add_argument("--prometheus-port", type=int, default=0, help="also run Prometheus on 127.0.0.1:PORT")
    parser.add_argument("--inventory", type=Path, help="with --prometheus-port: the inventory whose hosts it scrapes")
    parser.add_argument("--hosts", default="", help="with --prometheus-port: only these hosts (comma-separated)")
    args = parser.parse_args()
    state = args.dir.resolve()
    if args.action == "down":
        down(state)
        return 0
    if args.action == "stop-influxd":
        stop_influxd(state)
        return 0
    if args.action == "start-influxd":
        start_influxd(state, args.influx_port)
        return 0
    if args.password_file is None:
        parser.error("up needs --password-file")
    if args.prometheus_port and args.inventory is None:
        parser.error("--prometheus-port needs --inventory")
    if args.hl_produce and not args.hl_sim_port:
        parser.error("--hl-produce needs --hl-sim-port (the Hyperliquid simulator its producer streams from)")
    up(state, args.influx_port, args.sim_port, args.speed, args.password_file.read_text().strip(),
       [pair for pair in args.produce.split(",") if pair], args.prometheus_port, args.inventory,
       [host for host in args.hosts.split(",") if host] or None, args.hl_sim_port,
       [pair for pair in args.hl_produce.split(",") if pair])
    return 0


if __name__ == "__main__":
    sys.exit(main())
