"""`freqfeed plan`: the window equals freqtrade's own `get_required_data_timerange`; the settings cover every
bot; bad configs get clear errors; `--config` reports what InfluxDB and the files hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from freqfeed import plan

FREQAI_CONFIG: dict[str, Any] = {
    "trading_mode": "futures", "margin_mode": "isolated", "stake_currency": "USDT", "timeframe": "3m",
    "startup_candle_count": 40,
    "exchange": {"name": "binance", "pair_whitelist": ["BTC/USDT:USDT", "ETH/USDT:USDT"]},
    "pairlists": [{"method": "StaticPairList"}],
    "freqai": {"enabled": True, "train_period_days": 30, "backtest_period_days": 7,
               "feature_parameters": {"include_timeframes": ["3m", "15m", "1h"],
                                      "include_corr_pairlist": ["SOL/USDT:USDT", "BTC/USDT:USDT"],
                                      "indicator_periods_candles": [10, 20, 60]}},
}

# freqtrade's own function, run in freqtrade's venv. freqtrade.freqai.utils imports the training stack
# (datasieve, scikit-learn) that the download path never uses and that this venv does not have: those two
# imports are stood in for; get_required_data_timerange itself runs unchanged.
FREQTRADE_TIMERANGE = r"""
import json, sys, types
for name in ("datasieve", "datasieve.pipeline", "datasieve.transforms", "sklearn", "sklearn.model_selection",
             "sklearn.preprocessing", "sklearn.metrics", "sklearn.utils"):
    sys.modules.setdefault(name, types.ModuleType(name))
sys.modules["datasieve.pipeline"].Pipeline = object
sys.modules["sklearn.model_selection"].train_test_split = None
sys.modules["datasieve.transforms"].SKLearnWrapper = object
from freqtrade.freqai.utils import get_required_data_timerange
config = json.loads(sys.argv[1])
timerange = get_required_data_timerange(config)
print(json.dumps({"start": timerange.startts, "stop": timerange.stopts,
                  "startup_candle_count": config["startup_candle_count"]}))
"""


def freqtrade_timerange(config: dict[str, Any]) -> dict[str, int]:
    python = os.environ.get("FREQFEED_FREQTRADE_PYTHON")
    if not python:
        pytest.skip("FREQFEED_FREQTRADE_PYTHON is not set (make unit sets it)")
    result = subprocess.run([python, "-c", FREQTRADE_TIMERANGE, json.dumps(config)], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.freqtrade
@pytest.mark.parametrize(("days", "timeframes", "periods", "startup"), [
    (30, ["3m", "15m", "1h"], [10, 20, 60], 40),
    (90, ["5m", "4h"], [8, 16], 200),
    (0, ["1m"], [5], 0),
    (2.5, ["1h", "15m"], [12], 30),
])
def test_window_equals_freqtrades_own(days: float, timeframes: list[str], periods: list[int], startup: int) -> None:
    config = json.loads(json.dumps(FREQAI_CONFIG))
    config["freqai"]["train_period_days"] = days
    config["freqai"]["feature_parameters"].update(include_timeframes=timeframes, indicator_periods_candles=periods)
    config["startup_candle_count"] = startup
    config["timeframe"] = timeframes[0]
    before = int(time.time())
    theirs = freqtrade_timerange(config)
    need = plan.bot_need(config, "bot.json", theirs["stop"] * 1000)
    assert (need.start_ms // 1000, need.stop_ms // 1000) == (theirs["start"], theirs["stop"])
    assert need.max_period == theirs["startup_candle_count"]
    assert theirs["stop"] >= before


def test_plan_covers_every_bot(tmp_path: Path) -> None:
    first = tmp_path / "bot1.json"
    first.write_text("// a freqtrade config may hold comments\n" + json.dumps(FREQAI_CONFIG, indent=1)[:-2]
                     + ",\n}\n")  # and trailing commas
    second = dict(FREQAI_CONFIG, timeframe="5m", exchange={"name": "binance", "pair_whitelist": ["XRP/USDT:USDT"]},
                  pairlists=[{"method": "StaticPairList"}, {"method": "VolumePairList"}],
                  freqai={**FREQAI_CONFIG["freqai"], "train_period_days": 60, "feature_parameters": {
                      **FREQAI_CONFIG["freqai"]["feature_parameters"], "include_timeframes": ["5m", "1h"]}})
    (tmp_path / "bot2.json").write_text(json.dumps(second))
    bots = [plan.bot_need(plan.load_freqtrade_config(p), str(p)) for p in (first, tmp_path / "bot2.json")]
    result = plan.Plan.of(bots)
    assert result.pairs == ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT"]
    assert result.timeframes == ["3m", "5m", "15m", "1h"]
    # bot 1: 30 days + int(max(40, 60) * 1.5) = 90 candles of 1h = 33.75 days; bot 2: 60 days + 90 h = 63.75
    # days; whole days, plus one
    assert result.days == {"3m": 35, "15m": 35, "1h": 65, "5m": 65}
    fragment = result.yaml_fragment()
    assert "freqfeed_history_days: {3m: 35, 5m: 65, 15m: 35, 1h: 65}" in fragment
    assert "VolumePairList" in fragment, "dynamic pairlists are reported as unknown in advance"


def run_plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "freqfeed", "plan", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_bad_configs_are_clear_errors(tmp_path: Path) -> None:
    cases = {
        "missing.json": None,
        "notjson.json": "{this is not json",
        "list.json": "[1, 2]",
        "noexchange.json": json.dumps({"freqai": {}}),
        "kraken.json": json.dumps({"exchange": {"name": "kraken"}}),
        "nofeatures.json": json.dumps({"exchange": {"name": "binance"}, "freqai": {"enabled": True}}),
    }
    expected = {"missing.json": "cannot read freqtrade config", "notjson.json": "not JSON",
                "list.json": "expected a JSON object", "noexchange.json": "no exchange.name",
                "kraken.json": "freqfeed serves Binance and Hyperliquid only",
                "nofeatures.json": "freqai.feature_parameters.include_timeframes is missing"}
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        result = run_plan("--freqtrade-config", str(path))
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        assert expected[name] in result.stderr and str(path) in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr
