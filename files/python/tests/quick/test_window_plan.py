"""The FreqAI window (freqfeed.plan) and the windows the producer and the sync keep (Config.window)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest

from freqfeed import config as config_module
from freqfeed import plan

H = 3_600_000
DAY = 86_400_000
NOW = 1_795_572_000_000

BOT: dict[str, Any] = {
    "trading_mode": "futures", "timeframe": "3m", "startup_candle_count": 40,
    "exchange": {"name": "binance", "pair_whitelist": ["BTC/USDT:USDT", "ETH/USDT:USDT"]},
    "pairlists": [{"method": "StaticPairList"}],
    "freqai": {"enabled": True, "train_period_days": 30,
               "feature_parameters": {"include_timeframes": ["3m", "15m", "1h"],
                                      "include_corr_pairlist": ["SOL/USDT:USDT", "BTC/USDT:USDT"],
                                      "indicator_periods_candles": [10, 20, 60]}},
}


def bot(**changes: Any) -> dict[str, Any]:
    config = copy.deepcopy(BOT)
    for key, value in changes.items():
        if key in ("train_period_days", "enabled"):
            config["freqai"][key] = value
        elif key in ("include_timeframes", "indicator_periods_candles", "include_corr_pairlist"):
            config["freqai"]["feature_parameters"][key] = value
        else:
            config[key] = value
    return config


def test_window_is_train_days_plus_one_and_a_half_times_the_longest_period() -> None:
    need = plan.bot_need(bot(), "bot.json", NOW)
    assert need.max_period == 90  # int(max(40, 60) * 1.5)
    assert need.stop_ms == NOW and need.start_ms == NOW - 30 * DAY - 90 * H  # in candles of the largest, 1h
    assert need.candles("1h") == 30 * 24 + 90 and need.candles("3m") == (30 * 24 + 90) * 20
    assert need.all_pairs == ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"), "corr pairs once, in order"
    assert need.timeframes == ("3m", "15m", "1h")


def test_startup_candles_beyond_the_indicator_periods_count() -> None:
    need = plan.bot_need(bot(startup_candle_count=201), "bot.json", NOW)
    assert need.max_period == 301  # int(201 * 1.5)


def test_whole_seconds_like_freqtrade() -> None:
    need = plan.bot_need(bot(train_period_days=0.3333), "bot.json", NOW + 999)
    assert need.stop_ms % 1000 == 0 and need.start_ms % 1000 == 0


def test_a_disabled_freqai_downloads_no_corr_pairs_and_no_freqai_means_startup_candles_only() -> None:
    assert plan.bot_need(bot(enabled=False), "bot.json", NOW).corr_pairs == ()
    plain = {k: v for k, v in bot(timeframe="5m", startup_candle_count=100).items() if k != "freqai"}
    need = plan.bot_need(plain, "bot.json", NOW)
    assert not need.freqai and need.timeframes == ("5m",) and need.max_period == 150
    assert need.span_ms == 150 * 5 * 60_000


def test_the_strategy_timeframe_is_added() -> None:
    assert plan.bot_need(bot(timeframe="5m"), "bot.json", NOW).timeframes == ("3m", "15m", "1h", "5m")


def test_dynamic_pairlists_are_reported_not_guessed() -> None:
    volume = plan.bot_need(bot(pairlists=[{"method": "VolumePairList"}]), "bot.json", NOW)
    assert volume.pairs == () and volume.dynamic == ("VolumePairList",)
    both = plan.bot_need(bot(pairlists=[{"method": "StaticPairList"}, {"method": "AgeFilter"}]), "b", NOW)
    assert both.pairs == ("BTC/USDT:USDT", "ETH/USDT:USDT") and both.dynamic == ("AgeFilter",)


@pytest.mark.parametrize(("changes", "message"), [
    ({"exchange": {"name": "kraken"}}, "freqfeed serves Binance and Hyperliquid only"),
    ({"exchange": {}}, "no exchange.name"),
    ({"include_timeframes": []}, "must not be empty"),
    ({"include_timeframes": ["2m"]}, "timeframe '2m' is not one freqfeed collects"),
])
def test_bad_bot_configs_say_what_is_wrong(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(plan.PlanError, match=message):
        plan.bot_need(bot(**changes), "bot.json", NOW)


def test_missing_freqai_keys_are_named() -> None:
    config = bot()
    del config["freqai"]["feature_parameters"]["indicator_periods_candles"]
    with pytest.raises(plan.PlanError, match=r"freqai\.feature_parameters\.indicator_periods_candles is missing"):
        plan.bot_need(config, "bot.json", NOW)


def test_plan_of_several_bots_takes_the_longest_window_in_whole_days() -> None:
    short = plan.bot_need(bot(), "a.json", NOW)  # 33.75 days
    long = plan.bot_need(bot(train_period_days=60, include_timeframes=["5m", "1h"], timeframe="5m"), "b.json",
                         NOW)  # 63.75
    result = plan.Plan.of([short, long])
    assert result.days == {"3m": 35, "15m": 35, "1h": 65, "5m": 65}
    assert result.timeframes == ["3m", "5m", "15m", "1h"]
    assert result.candles("1h") == 65 * 24 and result.candles("4h") == 0
    with pytest.raises(plan.PlanError, match="different modes"):
        plan.Plan.of([short, plan.bot_need(bot(trading_mode="spot"), "c.json", NOW)])
    with pytest.raises(plan.PlanError, match="no freqtrade config given"):
        plan.Plan.of([])


def test_covers_lists_what_the_fleet_lacks() -> None:
    result = plan.Plan.of([plan.bot_need(bot(), "a.json", NOW)])  # 35 days of 3m, 15m and 1h
    raw: dict[str, Any] = {"influxdb": {"url": "http://127.0.0.1:8086", "database": "d"},
                           "pairs": ["BTC/USDT:USDT"], "timeframes": ["3m", "1h"], "history": {"3m": 20}}
    assert plan.covers(config_module.from_mapping(raw, "test"), result) == [
        "pairs not collected: ETH/USDT:USDT, SOL/USDT:USDT",
        "timeframes not collected: 15m",
        "3m: the producer keeps 9600 candles, the bots need 16800 (35 days)",
        "15m: the producer keeps 1500 candles, the bots need 3360 (35 days)",
    ]  # 1h: backfill.candles (1500) is more than 35 days (840)
    raw.update(pairs=list(result.pairs), timeframes=["3m", "15m", "1h"], history={"3m": 35, "15m": 35})
    assert plan.covers(config_module.from_mapping(raw, "test"), result) == []


def test_comments_and_trailing_commas_like_freqtrade(tmp_path: Path) -> None:
    text = '{\n // comment\n "a": "x // not a comment", /* block */ "b": [1, 2,],\n}\n'
    assert plan._strip_json(text) == '{\n \n "a": "x // not a comment",  "b": [1, 2]\n}\n'
    (tmp_path / "base.json").write_text('{"exchange": {"name": "binance", "pair_whitelist": ["A"]}, "x": 1}')
    (tmp_path / "bot.json").write_text('{"add_config_files": ["base.json"], "exchange": {"pair_whitelist": ["B"]}}')
    merged = plan.load_freqtrade_config(tmp_path / "bot.json")
    assert merged["exchange"] == {"name": "binance", "pair_whitelist": ["B"]} and merged["x"] == 1


def test_unreadable_or_looping_configs(tmp_path: Path) -> None:
    with pytest.raises(plan.PlanError, match="cannot read freqtrade config"):
        plan.load_freqtrade_config(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(plan.PlanError, match="expected a JSON object, got list"):
        plan.load_freqtrade_config(tmp_path / "list.json")
    (tmp_path / "loop.json").write_text('{"add_config_files": ["loop.json"]}')
    with pytest.raises(plan.PlanError, match="nest more than 5 deep"):
        plan.load_freqtrade_config(tmp_path / "loop.json")


# -- what the producer and the sync keep ------------------------------------------------------------


def cfg(history: dict[str, float] | None = None, candles: int = 1500) -> config_module.Config:
    raw: dict[str, Any] = {"influxdb": {"url": "http://127.0.0.1:8086", "database": "d"},
                           "pairs": ["BTC/USDT:USDT"], "timeframes": ["3m", "1h"], "backfill": {"candles": candles}}
    if history is not None:
        raw["history"] = history
    return config_module.from_mapping(raw, "test")


def test_window_is_the_larger_of_backfill_and_history() -> None:
    assert cfg().window("3m") == 1500 and cfg().history_candles("3m") == 0
    assert cfg({"3m": 35}).window("3m") == 35 * 480 and cfg({"3m": 35}).window("1h") == 1500
    assert cfg({"3m": 2}).window("3m") == 1500, "2 days of 3m are fewer than backfill.candles"
    assert cfg({"1h": 0.5}, candles=1).window("1h") == 12


def test_mark_and_funding_keep_the_longest_history() -> None:
    both = cfg({"3m": 35, "1h": 90}, candles=10)
    assert both.window("1h", hourly=True) == 90 * 24
    assert both.history_candles("1h", hourly=True) == 90 * 24 and both.history_candles("1h") == 90 * 24
    assert cfg({"3m": 35}, candles=10).window("1h", hourly=True) == 35 * 24


def test_fractional_days_round_up_to_whole_candles() -> None:
    assert cfg({"1h": 1.01}, candles=1).window("1h") == math.ceil(1.01 * 24)
