"""freqtrade's own history loader reads what the sync wrote: exactly the candles that are in InfluxDB.

freqtrade runs in a virtualenv of its own (installed from PyPI by `make setup`, or by this test
when missing), so its dependencies never mix with freqfeed's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from freqfeed import sync
from freqfeed.config import InfluxDBConfig
from freqfeed.influx import InfluxDB
from freqfeed.timeframes import last_closed_open

from .conftest import make_config
from .helpers import funding_truth, truth, write_candles, write_funding

pytestmark = [pytest.mark.integration, pytest.mark.freqtrade]

REPO = Path(__file__).resolve().parents[3]
FREQTRADE_VERSION = os.environ.get("FREQTRADE_VERSION", "2026.9")
NOW = 1_795_572_000_000 + 7 * 60_000

LOADER = r"""
import json, sys
from pathlib import Path
from freqtrade.data.history import load_pair_history
from freqtrade.data.history.datahandlers import get_datahandler
from freqtrade.enums import CandleType, TradingMode

datadir, trading_mode, requests = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
out = {"available": sorted(
    "|".join(map(str, item)) for item in
    get_datahandler(datadir, "feather").ohlcv_get_available_data(datadir, TradingMode(trading_mode)))}
for pair, timeframe, candle_type in requests:
    frame = load_pair_history(pair=pair, timeframe=timeframe, datadir=datadir, data_format="feather",
                              candle_type=CandleType(candle_type))
    rows = frame.copy()
    rows["date"] = rows["date"].dt.as_unit("ms").astype("int64")
    out[f"{pair}|{timeframe}|{candle_type}"] = {"columns": list(frame.columns),
                                                "rows": rows.to_numpy().tolist()}
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def freqtrade_python() -> str:
    configured = os.environ.get("FREQFEED_FREQTRADE_PYTHON")
    python = Path(configured) if configured else REPO / ".cache" / "freqtrade-venv" / "bin" / "python"
    if not python.exists():
        venv = python.parent.parent
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"freqtrade=={FREQTRADE_VERSION}"], check=True)
    return str(python)


def load_with_freqtrade(python: str, datadir: Path, trading_mode: str,
                        requests: list[tuple[str, str, str]]) -> dict:
    result = subprocess.run([python, "-c", LOADER, str(datadir), trading_mode, json.dumps(requests)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_freqtrade_loads_futures_candles_mark_and_funding(freqtrade_python: str, client: InfluxDB,
                                                          influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    pairs = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    expected: dict[str, list[list[float]]] = {}
    for pair in pairs:
        for tf in ("3m", "15m", "1h"):
            candles = truth(pair, tf, last_closed_open(NOW, tf), 300)
            write_candles(client, pair, tf, candles)
            expected[f"{pair}|{tf}|futures"] = [[c.open_time, c.open, c.high, c.low, c.close, c.volume]
                                                for c in candles]
        mark = truth(pair, "1h", last_closed_open(NOW, "1h"), 300, mark=True)
        write_candles(client, pair, "1h", mark, mark=True)
        expected[f"{pair}|1h|mark"] = [[c.open_time, c.open, c.high, c.low, c.close, 0.0] for c in mark]
        rates = funding_truth(pair, NOW - 30 * 86_400_000, NOW)
        write_funding(client, pair, rates)
        expected[f"{pair}|1h|funding_rate"] = [[f.time, f.rate] for f in rates]

    cfg = make_config(influx_config, tmp_path, pairs=pairs)
    assert sync.run(cfg, now_ms=NOW).ok
    assert cfg.sync.datadir is not None
    requests = [tuple(key.split("|")) for key in expected]
    loaded = load_with_freqtrade(freqtrade_python, cfg.sync.datadir, "futures", requests)  # type: ignore[arg-type]

    for key, rows in expected.items():
        width = len(rows[0])  # funding frames carry an in-memory `open` alias after date, funding_rate
        assert [row[:width] for row in loaded[key]["rows"]] == rows, key
    assert loaded["BTC/USDT:USDT|1h|funding_rate"]["columns"][:2] == ["date", "funding_rate"]
    assert loaded["BTC/USDT:USDT|3m|futures"]["columns"] == ["date", "open", "high", "low", "close", "volume"]
    for pair in pairs:
        for tf in ("3m", "15m", "1h"):
            assert f"{pair}|{tf}|futures" in loaded["available"]
        assert f"{pair}|1h|mark" in loaded["available"]
        assert f"{pair}|1h|funding_rate" in loaded["available"]


def test_freqtrade_loads_spot_candles(freqtrade_python: str, client: InfluxDB, influx_config: InfluxDBConfig,
                                     tmp_path: Path) -> None:
    pairs = ["BTC/USDT", "ETH/USDT"]
    expected = {}
    for pair in pairs:
        for tf in ("3m", "1h"):
            candles = truth(pair + ":USDT", tf, last_closed_open(NOW, tf), 200)
            write_candles(client, pair, tf, candles)
            expected[f"{pair}|{tf}|spot"] = [[c.open_time, c.open, c.high, c.low, c.close, c.volume]
                                             for c in candles]
    cfg = make_config(influx_config, tmp_path, pairs=pairs, timeframes=["3m", "1h"], trading_mode="spot")
    assert sync.run(cfg, now_ms=NOW).ok
    assert cfg.sync.datadir is not None
    requests = [tuple(key.split("|")) for key in expected]
    loaded = load_with_freqtrade(freqtrade_python, cfg.sync.datadir, "spot", requests)  # type: ignore[arg-type]
    for key, rows in expected.items():
        assert loaded[key]["rows"] == rows, key
    assert sorted(loaded["available"]) == sorted(f"{p}|{tf}|spot" for p in pairs for tf in ("3m", "1h"))


def test_legacy_funding_layout_loads_in_freqtrade(freqtrade_python: str, client: InfluxDB,
                                                  influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    pair = "BTC/USDT:USDT"
    rates = funding_truth(pair, NOW - 20 * 86_400_000, NOW)
    write_funding(client, pair, rates)
    cfg = make_config(influx_config, tmp_path, pairs=[pair], timeframes=["1h"],
                      sync={"funding_rate_layout": "legacy"})
    assert sync.run(cfg, now_ms=NOW).ok
    assert cfg.sync.datadir is not None
    loaded = load_with_freqtrade(freqtrade_python, cfg.sync.datadir, "futures", [(pair, "1h", "funding_rate")])
    frame = loaded[f"{pair}|1h|funding_rate"]
    assert frame["columns"][:2] == ["date", "funding_rate"]
    assert [row[:2] for row in frame["rows"]] == [[f.time, f.rate] for f in rates]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
