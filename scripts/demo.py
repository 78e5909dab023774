#!/usr/bin/env python3
"""The whole data path on this machine, without containers, in about a minute:

a throwaway influxd + `freqfeed simulate` (60x clock) + `freqfeed produce` -> InfluxDB, then
`freqfeed sync` twice -> freqtrade feather files, then freqtrade's own loader reads them.
Everything lives under .cache/demo and is stopped at the end.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "files" / "python"))

from freqfeed.localinflux import LocalInfluxDB, free_port

WORK = REPO / ".cache" / "demo"
PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
FREQFEED = [sys.executable, "-m", "freqfeed"]


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def wait_for_text(path: Path, text: str, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise SystemExit(f"demo: the process exited; see {path}")
        time.sleep(0.2)
    raise SystemExit(f"demo: {text!r} did not appear in {path} within {timeout:.0f}s")


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    datadir = WORK / "user_data" / "data" / "binance"
    processes: list[subprocess.Popen[bytes]] = []
    influxd = LocalInfluxDB(WORK / "influxd")
    try:
        step("starting a throwaway InfluxDB (Debian's influxd)")
        influxd.start()
        print(f"    {influxd.url}")

        step("starting the Binance-compatible simulator (clock 60x: a 3m candle closes every 3 s)")
        port = free_port()
        with open(WORK / "simulator.log", "wb") as log:
            processes.append(subprocess.Popen([*FREQFEED, "simulate", "--port", str(port), "--speed", "60"],
                                              stdout=log, stderr=log))
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/fapi/v1/ping", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        print(f"    REST http://127.0.0.1:{port}  websocket ws://127.0.0.1:{port}/market")

        config = {
            "influxdb": {"url": influxd.url, "database": "freqfeed"},
            "pairs": PAIRS, "timeframes": ["3m", "15m", "1h"], "trading_mode": "futures",
            "exchange": {"rest_url": f"http://127.0.0.1:{port}", "ws_url": f"ws://127.0.0.1:{port}/market",
                         "request_delay": 0.05},
            "backfill": {"candles": 500},
            "sync": {"datadir": str(datadir), "candles": 500},
        }
        config_path = WORK / "freqfeed.yml"
        config_path.write_text(yaml.safe_dump(config))

        step("freqfeed produce: backfill 500 candles per series over REST, then live websocket streams")
        producer_log = WORK / "producer.log"
        with open(producer_log, "wb") as log:
            processes.append(subprocess.Popen([*FREQFEED, "produce", "--config", str(config_path)],
                                              stdout=log, stderr=log))
        wait_for_text(producer_log, "backfill done", 120, processes[-1])
        print("    " + next(line for line in producer_log.read_text().splitlines() if "backfill done" in line))

        step("freqfeed sync: InfluxDB -> freqtrade feather files (first run writes everything)")
        subprocess.run([*FREQFEED, "sync", "--config", str(config_path)], check=True)
        time.sleep(7)
        step("freqfeed sync again 7 s later: only the candles closed since then")
        subprocess.run([*FREQFEED, "sync", "--config", str(config_path)], check=True)

        step(f"files in {datadir.relative_to(REPO)}")
        for path in sorted(datadir.rglob("*.feather")):
            print(f"    {path.relative_to(datadir)}  ({path.stat().st_size:,} bytes)")

        freqtrade = REPO / ".cache" / "freqtrade-venv" / "bin" / "python"
        if freqtrade.exists():
            step("freqtrade's own loader reads them")
            code = ("from pathlib import Path; from freqtrade.data.history import load_pair_history; "
                    "from freqtrade.enums import CandleType; "
                    f"df = load_pair_history(pair='BTC/USDT:USDT', timeframe='3m', datadir=Path({str(datadir)!r}), "
                    "data_format='feather', candle_type=CandleType.FUTURES); print(df.tail(3).to_string())")
            subprocess.run([str(freqtrade), "-c", code], check=True)
        step("done; stopping everything (logs stay in .cache/demo)")
        return 0
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        influxd.stop()


if __name__ == "__main__":
    sys.exit(main())
