"""freqtrade's own code is the judge of the history freqfeed keeps for FreqAI.

One FreqAI bot config (30 training days, 3m/15m/1h, a correlated pair, futures). `freqfeed plan` turns it
into the fleet's settings; the producer backfills them from an empty database (the simulator runs in real
time, as FreqAI's window is measured from the wall clock) and the sync writes the files. Then:
- FreqAI's start-up download (`download_all_data_for_training`, the exchange pointed at the simulator,
  `only_from_ccxt`) asks for nothing older than the newest local candle, at most one request per series,
  and freqtrade loads the whole window from the files without "earlier than local data start";
- a `freqtrade backtesting` run over the synced files gives the same trades and profit as over files
  `freqtrade download-data` fetched itself from the simulator.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from freqfeed import config as config_module
from freqfeed import feather, sync
from freqfeed.influx import InfluxDB
from freqfeed.localinflux import LocalInfluxDB
from freqfeed.timeframes import timeframe_ms

from .conftest import InfluxServer
from .helpers import influx_section
from .processes import ProducerProcess, SimulatorProcess, producer_config, stored, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.freqtrade]

WHITELIST = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
CORR = ["SOL/USDT:USDT"]
BOT_AGENT = "freqfeed-test-freqai-bot"
DOWNLOAD_AGENT = "freqfeed-test-download-data"

STRATEGY = '''
from pandas import DataFrame
from freqtrade.strategy import IStrategy


class FreqfeedEmaCross(IStrategy):
    """Long when the fast EMA crosses above the slow one, out when it crosses back; shorts the mirror."""
    INTERFACE_VERSION = 3
    timeframe = "3m"
    can_short = True
    minimal_roi = {"0": 0.03}
    stoploss = -0.02
    startup_candle_count = 60

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["fast"] = dataframe["close"].ewm(span=12, adjust=False).mean()
        dataframe["slow"] = dataframe["close"].ewm(span=48, adjust=False).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        up = (dataframe["fast"] > dataframe["slow"]) & (dataframe["fast"].shift(1) <= dataframe["slow"].shift(1))
        down = (dataframe["fast"] < dataframe["slow"]) & (dataframe["fast"].shift(1) >= dataframe["slow"].shift(1))
        dataframe.loc[up, "enter_long"] = 1
        dataframe.loc[down, "enter_short"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[dataframe["fast"] < dataframe["slow"], "exit_long"] = 1
        dataframe.loc[dataframe["fast"] > dataframe["slow"], "exit_short"] = 1
        return dataframe

    def leverage(self, pair, current_time, current_rate, proposed_leverage, max_leverage, entry_tag, side,
                 **kwargs) -> float:
        return 2.0
'''


def freqtrade_python() -> str:
    python = os.environ.get("FREQFEED_FREQTRADE_PYTHON")
    if not python:
        pytest.skip("FREQFEED_FREQTRADE_PYTHON is not set (make unit sets it)")
    return python


def exchange_section(sim: SimulatorProcess, agent: str, pairs: list[str]) -> dict[str, Any]:
    """Binance through ccxt, its public market data at the simulator (the bot's trading stays Binance's)."""
    return {"name": "binance", "key": "", "secret": "", "only_from_ccxt": True, "pair_whitelist": pairs,
            "pair_blacklist": [],
            "ccxt_config": {"options": {"fetchMarkets": {"types": ["linear"]}}, "userAgent": agent,
                            "urls": {"api": {"fapiPublic": f"{sim.url}/fapi/v1",
                                             "fapiPublicV2": f"{sim.url}/fapi/v2"}}},
            "ccxt_async_config": {"userAgent": agent}}


def bot_config(sim: SimulatorProcess) -> dict[str, Any]:
    return {
        "dry_run": True, "dry_run_wallet": 1000, "trading_mode": "futures", "margin_mode": "isolated",
        "stake_currency": "USDT", "stake_amount": 100, "max_open_trades": 2, "timeframe": "3m",
        "startup_candle_count": 40, "dataformat_ohlcv": "feather",
        "entry_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        "exchange": exchange_section(sim, BOT_AGENT, WHITELIST),
        "pairlists": [{"method": "StaticPairList"}],
        "freqai": {"enabled": True, "identifier": "freqfeed-test", "train_period_days": 30, "backtest_period_days": 7,
                   "live_retrain_hours": 0, "purge_old_models": 2,
                   "feature_parameters": {"include_timeframes": ["3m", "15m", "1h"], "include_corr_pairlist": CORR,
                                          "label_period_candles": 20, "include_shifted_candles": 0,
                                          "indicator_periods_candles": [10, 20, 60]},
                   "data_split_parameters": {"test_size": 0.33, "random_state": 1},
                   "model_training_parameters": {}},
    }


@dataclass
class Synced:
    sim: SimulatorProcess
    root: Path
    userdir: Path
    bot: Path
    plan: dict[str, Any]
    synced_at: int  # the simulator's time when the sync ran
    newest: dict[str, int]  # file name -> the newest row freqtrade's loader keeps (ms): the one before the last


@pytest.fixture(scope="module")
def synced(influxd: LocalInfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    root = tmp_path_factory.mktemp("freqai")
    sim = SimulatorProcess(root, speed=1)
    server = InfluxServer.in_front_of(influxd, "1.x")
    server.create_database("freqai_history")
    try:
        bot = root / "bot.json"
        bot.write_text(json.dumps(bot_config(sim), indent=1))
        planned = subprocess.run([sys.executable, "-m", "freqfeed", "plan", "--freqtrade-config", str(bot)],
                                 capture_output=True, text=True, timeout=60, check=False)
        assert planned.returncode == 0, planned.stderr
        fragment = yaml.safe_load(planned.stdout[planned.stdout.index("# freqfeed plan"):])
        assert fragment["freqfeed_pairs"] == [*WHITELIST, *CORR]
        assert fragment["freqfeed_timeframes"] == ["3m", "15m", "1h"]
        influx = server.config("freqai_history")
        settings = {"pairs": fragment["freqfeed_pairs"], "timeframes": fragment["freqfeed_timeframes"],
                    "history": fragment["freqfeed_history_days"]}
        producer = ProducerProcess(root, producer_config(influx, sim, settings["pairs"], candles=100,
                                                         timeframes=settings["timeframes"],
                                                         history=settings["history"],
                                                         exchange={"request_delay": 0.005}))
        producer.start()
        producer.wait_for_log("backfill done", timeout=600)
        candles_3m = settings["history"]["3m"] * 480
        with InfluxDB(influx, retries=0) as client:
            wait_for(lambda: all(len(stored(client, "ohlcv_3m", pair, "close", 0)) >= candles_3m
                                 for pair in settings["pairs"]), 30, "the backfill in InfluxDB")
        code, _ = producer.terminate()
        assert code == 0
        userdir = root / "user_data"
        for sub in ("data", "strategies", "models"):
            (userdir / sub).mkdir(parents=True, exist_ok=True)
        feeder_raw = {"influxdb": influx_section(influx), **settings,
                      "sync": {"datadir": str(userdir / "data" / "binance")}}
        (root / "feeder.yml").write_text(yaml.safe_dump(feeder_raw))
        feeder = config_module.from_mapping(feeder_raw, "test")
        synced_at = sim.now()
        report = sync.run(feeder)
        assert report.ok, report.errors
        # freqtrade's loader drops a file's newest row as possibly incomplete (`drop_incomplete=True` in
        # `_load_cached_data_for_updating`) and resumes from the row before: the newest it keeps
        newest = {}
        for job in sync.plan(feeder):
            table = feather.read_table(job.path, job.candle_type)
            assert table is not None and table.num_rows > 1, job.path
            newest[job.path.name] = int(feather.date_ns(table)[-2]) // 1_000_000
        yield Synced(sim, root, userdir, bot, fragment, synced_at, newest)
    finally:
        sim.stop()
        server.drop_database("freqai_history")


def test_plan_with_the_feeder_config_reports_the_window_covered(synced: Synced) -> None:
    shown = subprocess.run([sys.executable, "-m", "freqfeed", "plan", "--freqtrade-config", str(synced.bot),
                            "--config", str(synced.root / "feeder.yml")], capture_output=True, text=True,
                           timeout=120, check=False)
    print(shown.stdout)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines() if line.endswith((" yes", " NO"))]
    assert len(rows) == 3 * 3 + 3 * 2, shown.stdout  # 3 pairs x 3 timeframes, mark and funding
    assert all(row[-1] == "yes" for row in rows), shown.stdout
    assert "15 of 15 series cover the window" in shown.stdout


def market_requests(sim: SimulatorProcess, agent: str) -> list[dict[str, Any]]:
    return [r for r in sim.requests(agent) if r["path"] in
            ("/fapi/v1/klines", "/fapi/v1/markPriceKlines", "/fapi/v1/fundingRate")]


def file_of(request: dict[str, Any]) -> str:
    """The feather file a klines / markPriceKlines / fundingRate request is for."""
    symbol = request["query"]["symbol"]
    base = symbol[:-len("USDT")]
    if request["path"] == "/fapi/v1/fundingRate":
        return f"{base}_USDT_USDT-1h-funding_rate.feather"
    kind = "mark" if request["path"] == "/fapi/v1/markPriceKlines" else "futures"
    return f"{base}_USDT_USDT-{request['query']['interval']}-{kind}.feather"


def test_freqai_startup_download_finds_the_window_in_the_files(synced: Synced) -> None:
    python = freqtrade_python()
    result = subprocess.run([python, str(Path(__file__).with_name("freqai_runner.py")), str(synced.bot),
                             str(synced.userdir)], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    asked = market_requests(synced.sim, BOT_AGENT)
    per_file = Counter(file_of(r) for r in asked)
    assert per_file, "FreqAI's download asked nothing (not even the tail): it did not run"
    assert max(per_file.values()) <= 1, f"more than one request per series: {per_file}"
    for r in asked:
        start = int(r["query"].get("startTime", 0))
        if r["path"] == "/fapi/v1/fundingRate":
            # freqtrade's own choice: a window that fits one call (1000 hourly rates) is fetched whole, for
            # all pairs in parallel, whatever the files hold (`_download_all_pairs_history_parallel`)
            assert start >= outcome["start"] - 3_600_000, r
            continue
        assert start >= synced.newest[file_of(r)], \
            f"{r['path']} {r['query']} asks for candles older than the newest local one ({synced.newest[file_of(r)]})"
    assert not [line for line in outcome["log"] if "earlier than local data start" in line], outcome["log"]
    for series, loaded in outcome["loaded"].items():
        _, timeframe, candle_type = series.split("|")
        period = timeframe_ms(timeframe)
        assert loaded["first"] is not None, f"{series}: nothing loaded"
        if candle_type == "funding_rate":
            assert loaded["first"] - outcome["start"] < 8 * 3_600_000, f"{series} starts late: {loaded}"
            continue
        assert loaded["first"] - outcome["start"] < period, f"{series} starts after the window: {loaded}"
        assert loaded["rows"] >= (outcome["stop"] - outcome["start"]) // period - 1, f"{series}: {loaded}"


def run_backtest(python: str, userdir: Path, config: dict[str, Any], timerange: str) -> dict[str, Any]:
    """`freqtrade backtesting` of FreqfeedEmaCross over `timerange` (--cache none): freqtrade's own result of
    the strategy (trades, backtest_start_ts, backtest_end_ts, ...) from the exported archive."""
    path = userdir / "backtest.json"
    path.write_text(json.dumps(config))
    (userdir / "strategies").mkdir(parents=True, exist_ok=True)
    (userdir / "strategies" / "freqfeed_ema_cross.py").write_text(STRATEGY)
    out = userdir / "backtest_results"
    freqtrade = str(Path(python).with_name("freqtrade"))
    result = subprocess.run([freqtrade, "backtesting", "--userdir", str(userdir), "-c", str(path), "-s",
                             "FreqfeedEmaCross", "--timerange", timerange, "--export", "trades",
                             "--backtest-directory", str(out), "--cache", "none"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    (userdir / "backtest.log").write_text(result.stdout + result.stderr)
    archives = sorted(out.glob("backtest-result-*.zip"))
    assert len(archives) == 1, (result.stdout[-3000:], result.stderr[-3000:])
    [archive] = archives
    with zipfile.ZipFile(archive) as z:
        [name] = [n for n in z.namelist() if re.fullmatch(r"backtest-result-[\d_-]+\.json", n)]
        results = json.loads(z.read(name))
    strategy: dict[str, Any] = results["strategy"]["FreqfeedEmaCross"]
    return strategy


def backtest(python: str, userdir: Path, config: dict[str, Any], timerange: str) -> dict[str, Any]:
    strategy = run_backtest(python, userdir, config, timerange)
    trades = [{k: t[k] for k in ("pair", "is_short", "open_date", "close_date", "open_rate", "close_rate",
                                 "amount", "profit_abs", "funding_fees", "exit_reason")} for t in strategy["trades"]]
    return {"trades": trades, "profit_total_abs": strategy["profit_total_abs"]}


def test_backtest_over_the_synced_window_equals_one_over_downloaded_files(synced: Synced) -> None:
    python = freqtrade_python()
    hour = 3_600_000
    start = (synced.synced_at - 30 * 86_400_000) // hour * hour
    stop = synced.synced_at // hour * hour - hour  # complete in both: the sync's newest candles and after
    timerange = f"{start // 1000}-{stop // 1000}"
    common = {"dry_run": True, "dry_run_wallet": 1000, "trading_mode": "futures", "margin_mode": "isolated",
              "stake_currency": "USDT", "stake_amount": 100, "max_open_trades": 2, "timeframe": "3m",
              "dataformat_ohlcv": "feather", "pairlists": [{"method": "StaticPairList"}],
              "entry_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
              "exit_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1}}
    peer = synced.root / "download_data"
    (peer / "data").mkdir(parents=True, exist_ok=True)
    download = {**common, "exchange": exchange_section(synced.sim, DOWNLOAD_AGENT, WHITELIST)}
    (peer / "download.json").write_text(json.dumps(download))
    freqtrade = str(Path(python).with_name("freqtrade"))
    fetched = subprocess.run([freqtrade, "download-data", "--userdir", str(peer), "-c", str(peer / "download.json"),
                              "--timerange", f"{(start - 86_400_000) // 1000}-", "-t", "3m"],
                             capture_output=True, text=True, timeout=600, check=False)
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    assert market_requests(synced.sim, DOWNLOAD_AGENT), "download-data fetched nothing"
    config = {**common, "exchange": exchange_section(synced.sim, DOWNLOAD_AGENT, WHITELIST)}
    theirs = backtest(python, peer, config, timerange)
    ours = backtest(python, synced.userdir, config, timerange)
    assert theirs["trades"], "the strategy made no trade: nothing compared"
    assert ours == theirs
