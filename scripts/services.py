#!/usr/bin/env python3
"""Host-side services for Molecule and the lab: Debian's influxd (auth on) and `freqfeed simulate`.

  services.py up   --dir DIR --influx-port P --sim-port Q [--speed S] --password-file F [--produce PAIRS]
  services.py down --dir DIR

Containers run with host networking, so they reach both on 127.0.0.1. `up` replaces whatever a
previous `up` with the same DIR left running, waits until both answer, and creates the InfluxDB
user `freqfeed` (all privileges) with the password from --password-file. `down` stops both; the
data directory stays until DIR is removed. With --produce, a host-side `freqfeed produce` also streams
those pairs into InfluxDB (a stand-in producer for the feeder scenario); `up` returns once it has
backfilled.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "files" / "python"))

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
        if _alive(pid):
            os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
            print(f"stopped {name} (pid {pid})")
    pids_file.unlink()


def _wait(url: str, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"services: {what} did not answer {url} within {timeout:.0f}s")


def _start_producer(state: Path, influx_url: str, sim_port: int, password: str, pairs: list[str]) -> int:
    config = {
        "influxdb": {"url": influx_url, "database": "freqfeed", "username": INFLUX_USER},
        "pairs": pairs,
        "exchange": {"rest_url": f"http://127.0.0.1:{sim_port}", "ws_url": f"ws://127.0.0.1:{sim_port}/market",
                     "request_delay": 0.1},
        "producer": {"health_file": str(state / "producer-health.json")},
    }
    (state / "producer.yml").write_text(json.dumps(config))
    with open(state / "producer.log", "ab") as log:
        producer = subprocess.Popen(
            [sys.executable, "-m", "freqfeed", "produce", "--config", str(state / "producer.yml")],
            stdout=log, stderr=log, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(REPO / "files" / "python"), "FREQFEED_INFLUXDB_PASSWORD": password})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if producer.poll() is not None:
            raise SystemExit(f"services: the producer exited with {producer.returncode}; see {state}/producer.log")
        if "backfill done" in (state / "producer.log").read_text(errors="replace"):
            return producer.pid
        time.sleep(0.5)
    raise SystemExit(f"services: the producer did not finish its backfill in 180s; see {state}/producer.log")


def up(state: Path, influx_port: int, sim_port: int, speed: float, password: str, produce: list[str]) -> None:
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
    with open(state / "simulator.log", "ab") as log:
        simulator = subprocess.Popen(
            [sys.executable, "-m", "freqfeed", "simulate", "--host", "127.0.0.1", "--port", str(sim_port),
             "--speed", str(speed)], stdout=log, stderr=log, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(REPO / "files" / "python")})
    pids["simulator"] = simulator.pid
    (state / "pids.json").write_text(json.dumps(pids))
    _wait(f"http://127.0.0.1:{sim_port}/fapi/v1/time", "the simulator")
    if produce:
        pids["producer"] = _start_producer(state, influxd.url, sim_port, password, produce)
        (state / "pids.json").write_text(json.dumps(pids))
    print(f"influxd http://127.0.0.1:{influx_port} (user {INFLUX_USER}), "
          f"simulator http://127.0.0.1:{sim_port} (speed {speed}x); state in {state}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--influx-port", type=int, default=18086)
    parser.add_argument("--sim-port", type=int, default=18090)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--password-file", type=Path)
    parser.add_argument("--produce", default="", help="comma-separated pairs to stream with a host-side producer")
    args = parser.parse_args()
    state = args.dir.resolve()
    if args.action == "down":
        down(state)
        return 0
    if args.password_file is None:
        parser.error("up needs --password-file")
    up(state, args.influx_port, args.sim_port, args.speed, args.password_file.read_text().strip(),
       [pair for pair in args.produce.split(",") if pair])
    return 0


if __name__ == "__main__":
    sys.exit(main())
