"""What every real freqtrade dry-run bot of the tests, benches and lab shares, whatever the exchange: the
recording strategy and the bot's config. Used by scripts/lab_bots.py (Binance, the lab: `LabBot`) and by
tests/hyperliquid_bots.py (Hyperliquid: `HlBot`, for tests/test_hyperliquid_bot.py and
bench/hyperliquid_bot_bench.py).

The strategy goes long on every candle and out after three minutes: trades open at once and stay open, so
entry and exit pricing read the order book at every loop (most of a bot's exchange weight). It writes down
what it saw, in the bot's user_data directory:
- `candles/<pair>.json`: the closed candles (the last 10 of each dataframe, by open time), to compare with
  the exchange's;
- when it first had each candle as its newest (wall clock): `candles/<pair>.times` (lines `wall newest`,
  read by lab_bots.py's check_fresh) and `seen.jsonl` (`{"pair", "newest", "wall"}`, read by
  hyperliquid_bots.py's close latencies).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

THROTTLE_S = 5  # freqtrade's default process_throttle_secs

_STRATEGY = '''
import json
import time
from pathlib import Path

from freqtrade.strategy import IStrategy
from pandas import DataFrame


class {name}(IStrategy):
    """Long on every candle, out after three minutes: trades open at once and stay open (exit pricing reads the
    order book at every loop). Writes down the closed candles it saw and when, for the checks against the
    exchange (tests/freqtrade_bots.py)."""

    INTERFACE_VERSION = 3
    timeframe = "1m"
    can_short = False
    minimal_roi = {{"3": -1}}
    stoploss = -0.5
    startup_candle_count = 5
    process_only_new_candles = True

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        wall = time.time()
        root = Path(self.config["user_data_dir"])
        seen = root / "candles" / (metadata["pair"].replace("/", "_").replace(":", "_") + ".json")
        seen.parent.mkdir(exist_ok=True)
        rows = json.loads(seen.read_text()) if seen.exists() else {{}}
        for row in dataframe.tail(10).itertuples():
            rows[str(int(row.date.timestamp() * 1000))] = [row.open, row.high, row.low, row.close, row.volume]
        seen.write_text(json.dumps(rows))
        if len(dataframe):  # when the strategy got which candle as the newest
            newest = int(dataframe["date"].iloc[-1].timestamp() * 1000)
            with seen.with_suffix(".times").open("a") as times:
                times.write(f"{{wall:.3f}} {{newest}}\\n")
            with open(root / "seen.jsonl", "a") as out:
                out.write(json.dumps({{"pair": metadata["pair"], "newest": newest, "wall": wall}}) + "\\n")
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
'''


def strategy_source(class_name: str) -> str:
    """The recording strategy's module source, its class called `class_name` (freqtrade's `-s`)."""
    if not class_name.isidentifier():
        raise ValueError(f"strategy class name {class_name!r} is not a Python identifier")
    return _STRATEGY.format(name=class_name)


def bot_config(name: str, exchange: dict[str, Any], agent: str, userdir: Path, *, pairs: list[str],
               stake_currency: str) -> dict[str, Any]:
    """A dry-run futures bot's freqtrade config: 1m, order-book pricing on both sides, one trade per pair.
    `exchange` is the config's exchange section without keys and pairs (name, ccxt_config, ...); the bot's
    ccxt gets `agent` as its User-Agent, so the simulator's per-client counters tell the bots apart."""
    pricing = {"price_side": "other", "use_order_book": True, "order_book_top": 1}
    ccxt_config = {**exchange.get("ccxt_config", {}), "userAgent": agent}
    return {
        "bot_name": name, "dry_run": True, "dry_run_wallet": 10_000, "trading_mode": "futures",
        "margin_mode": "isolated", "stake_currency": stake_currency, "stake_amount": 100,
        "max_open_trades": len(pairs), "tradable_balance_ratio": 0.99, "timeframe": "1m", "initial_state": "running",
        "internals": {"process_throttle_secs": THROTTLE_S},
        "unfilledtimeout": {"entry": 10, "exit": 10, "unit": "minutes"},
        "entry_pricing": {**pricing, "price_last_balance": 0.0,
                          "check_depth_of_market": {"enabled": False, "bids_to_ask_delta": 1}},
        "exit_pricing": pricing,
        "order_types": {"entry": "limit", "exit": "limit", "stoploss": "market", "stoploss_on_exchange": False},
        "exchange": {**exchange, "ccxt_config": ccxt_config, "key": "", "secret": "",
                     "pair_whitelist": pairs, "pair_blacklist": []},
        "pairlists": [{"method": "StaticPairList"}],
        "db_url": f"sqlite:///{userdir / 'trades.sqlite'}",
    }
