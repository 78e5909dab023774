"""Runs FreqAI's start-up download and freqtrade's loader (from freqtrade's own venv) on a data directory.

    python freqai_runner.py CONFIG.json USERDIR [NOW_MS] > result.json

What a dry-run FreqAI bot does at start (`strategy/interface.py` `load_freqAI_model`): freqtrade's own
Configuration, exchange and DataProvider, then `download_all_data_for_training`; then, per pair and
`include_timeframes` (and mark and funding on futures), `load_pair_history` over
`get_required_data_timerange`, as FreqAI's data drawer loads it. Prints JSON: the timerange, each series'
first and last candle and row count, and every log line about the local data's start. freqtrade's
training stack (datasieve, scikit-learn) is imported by freqai.utils but never used by these two
functions; the venv does not have it, so those imports are stood in for. Kept free of freqfeed imports.

Mark candles are what freqtrade itself uses as mark: the exchange's `mark_ohlcv_price` candle type at its
`mark_ohlcv_timeframe` (Binance: `mark` 1h; Hyperliquid: `futures` 1h, there are no mark candles). NOW_MS
(optional) is the wall clock FreqAI's window is measured from: a simulator whose clock runs elsewhere than
the wall clock is then the exchange "now". The exchange's FreqAI check (`validate_freqai`) runs as at a
bot's start; its log line (refused, or the override's warning) is in the output.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import types
from pathlib import Path


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def _stand_ins() -> None:
    for name in ("datasieve", "datasieve.pipeline", "datasieve.transforms", "sklearn", "sklearn.model_selection",
                 "sklearn.preprocessing", "sklearn.metrics", "sklearn.utils"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["datasieve.pipeline"].Pipeline = object  # type: ignore[attr-defined]
    sys.modules["sklearn.model_selection"].train_test_split = None  # type: ignore[attr-defined]
    sys.modules["datasieve.transforms"].SKLearnWrapper = object  # type: ignore[attr-defined]


def _pin_clock(module: types.ModuleType, now_ms: int) -> None:
    """`datetime.now()` in FreqAI's utils (where the window is computed) answers `now_ms`."""
    real = module.datetime

    class Pinned(real):  # type: ignore[misc, valid-type]
        @classmethod
        def now(cls, tz: object = None) -> Pinned:  # type: ignore[override]
            return cls.fromtimestamp(now_ms / 1000, tz=tz)  # type: ignore[arg-type]

    module.datetime = Pinned  # type: ignore[attr-defined]


def main() -> int:
    config_path, userdir = sys.argv[1], sys.argv[2]
    now_ms = int(sys.argv[3]) if len(sys.argv) > 3 else None
    collect = _Collect()
    logging.getLogger().addHandler(collect)
    logging.getLogger().setLevel(logging.INFO)
    _stand_ins()
    from freqtrade.configuration import Configuration
    from freqtrade.data.dataprovider import DataProvider
    from freqtrade.data.history import load_pair_history
    from freqtrade.enums import CandleType, RunMode
    from freqtrade.freqai import utils as freqai_utils
    from freqtrade.freqai.utils import download_all_data_for_training, get_required_data_timerange
    from freqtrade.resolvers import ExchangeResolver

    if now_ms is not None:
        _pin_clock(freqai_utils, now_ms)
    config = Configuration({"config": [config_path], "user_data_dir": userdir}, RunMode.DRY_RUN).get_config()
    exchange = ExchangeResolver.load_exchange(config, validate=False)
    exchange.validate_freqai(config)  # what a bot's start checks (validate=True checks much else besides)
    # the window the download uses (computed on a copy: the function overwrites startup_candle_count)
    timerange = get_required_data_timerange(copy.deepcopy(config))
    download_all_data_for_training(DataProvider(config, exchange), config)
    features = config["freqai"]["feature_parameters"]
    pairs = list(dict.fromkeys([*config["exchange"]["pair_whitelist"], *features["include_corr_pairlist"]]))
    series = [(p, tf, CandleType.FUTURES if config["trading_mode"] == "futures" else CandleType.SPOT)
              for p in pairs for tf in features["include_timeframes"]]
    mark_series = None
    if config["trading_mode"] == "futures":
        mark = CandleType.from_string(exchange.get_option("mark_ohlcv_price"))
        mark_timeframe = exchange.get_option("mark_ohlcv_timeframe")
        funding_timeframe = exchange.get_option("funding_fee_timeframe")
        series += [(p, mark_timeframe, mark) for p in pairs] + [(p, funding_timeframe, CandleType.FUNDING_RATE)
                                                                for p in pairs]
        mark_series = [mark.value, mark_timeframe]
    series = list(dict.fromkeys(series))  # Hyperliquid: the mark candles are the 1h futures ones
    loaded = {}
    for pair, timeframe, candle_type in series:
        frame = load_pair_history(pair=pair, timeframe=timeframe, datadir=Path(config["datadir"]),
                                  timerange=timerange, data_format="feather", candle_type=candle_type)
        loaded[f"{pair}|{timeframe}|{candle_type.value}"] = {
            "rows": len(frame),
            "first": int(frame["date"].iloc[0].timestamp() * 1000) if len(frame) else None,
            "last": int(frame["date"].iloc[-1].timestamp() * 1000) if len(frame) else None}
    exchange.close()
    print(json.dumps({"start": timerange.startts * 1000, "stop": timerange.stopts * 1000,
                      "startup_candle_count": config["startup_candle_count"], "loaded": loaded,
                      "mark": mark_series,
                      "log": [line for line in collect.lines if "data start" in line or "earlier" in line
                              or "Downloaded data for" in line or "Download history data" in line
                              or "freqAI" in line]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
