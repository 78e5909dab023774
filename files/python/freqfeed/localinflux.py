"""A throwaway InfluxDB 1.x server (Debian's `influxd`) on a free loopback port.

Used by the tests, the benchmarks and the local run; never in production.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import requests

_CONFIG = """\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "10s"
[monitor]
  store-enabled = false
[http]
  bind-address = "{host}:{port}"
  log-enabled = false
  max-body-size = 0
  auth-enabled = {auth}
{https}[ifql]
  enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
  suppress-logo = true
"""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalInfluxDB:
    """Start, stop and restart one influxd; the data directory survives restarts."""

    def __init__(self, root: Path | None = None, port: int | None = None, host: str = "127.0.0.1",
                 auth: bool = False, tls: tuple[Path, Path] | None = None) -> None:
        """`tls`: (certificate, private key) PEM files: https instead of http."""
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="freqfeed-influxd-"))
        self.host = host
        self.auth = auth
        self.port = port or free_port(host)
        self.rpc_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> LocalInfluxDB:
        binary = shutil.which("influxd") or "/usr/bin/influxd"
        if not Path(binary).exists():
            raise RuntimeError("influxd not found: install Debian's influxdb package (make setup does)")
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "influxdb.conf"
        config.write_text(_CONFIG.format(root=self.root, host=self.host, port=self.port, rpc_port=self.rpc_port,
                                         auth=str(self.auth).lower(), https=self._https()))
        log = open(self.root / "influxd.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen([binary, "-config", str(config)], stdout=log, stderr=log,
                                        start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"influxd exited with {self.process.returncode}; see {self.root}/influxd.log")
            try:
                # /ping needs no auth; over https it only has to answer (the tests check the certificate)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    answered = requests.get(f"{self.url}/ping", timeout=1, verify=False).status_code == 204
                if answered:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"influxd did not answer /ping within {timeout:.0f}s; see {self.root}/influxd.log")

    def _https(self) -> str:
        if self.tls is None:
            return ""
        certificate, key = self.tls
        return f'  https-enabled = true\n  https-certificate = "{certificate}"\n  https-private-key = "{key}"\n'

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalInfluxDB:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
