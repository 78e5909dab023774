"""Runs FreqAI's start-up download and freqtrade's loader (from freqtrade's own venv) on a data directory.

    python freqai_runner.py CONFIG.json USERDIR > result.json

What a dry-run FreqAI bot does at start (`strategy/interface.py` `load_freqAI_model`): freqtrade's own
Configuration, exchange and DataProvider, then `download_all_data_for_training`; then, per pair and
`include_timeframes` (and mark and funding on futures), `load_pair_history` over
`get_required_data_timerange`, as FreqAI's data drawer loads it. Prints JSON: the timerange, each series'
first and last candle and row count, and every log line about the local data's start. freqtrade's
training stack (datasieve, scikit-learn) is imported by freqai.utils but never used by these two
functions; the venv does not have it, so those imports are stood in for. Kept free of freqfeed imports.
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


def main() -> int:
    config_path, userdir = sys.argv[1], sys.argv[2]
    collect = _Collect()
    logging.getLogger().addHandler(collect)
    logging.getLogger().setLevel(logging.INFO)
    _stand_ins()
    from freqtrade.configuration import Configuration
    from freqtrade.data.dataprovider import DataProvider
    from freqtrade.data.history import load_pair_history
    from freqtrade.enums import CandleType, RunMode
    from freqtrade.freqai.utils import download_all_data_for_training, get_required_data_timerange
    from freqtrade.resolvers import ExchangeResolver

    config = Configuration({"config": [config_path], "user_data_dir": userdir}, RunMode.DRY_RUN).get_config()
    exchange = ExchangeResolver.load_exchange(config, validate=False)
    # the window the download uses (computed on a copy: the function overwrites startup_candle_count)
    timerange = get_required_data_timerange(copy.deepcopy(config))
    download_all_data_for_training(DataProvider(config, exchange), config)
    features = config["freqai"]["feature_parameters"]
    pairs = list(dict.fromkeys([*config["exchange"]["pair_whitelist"], *features["include_corr_pairlist"]]))
    series = [(p, tf, CandleType.FUTURES if config["trading_mode"] == "futures" else CandleType.SPOT)
              for p in pairs for tf in features["include_timeframes"]]
    if config["trading_mode"] == "futures":
        series += [(p, "1h", CandleType.MARK) for p in pairs] + [(p, "1h", CandleType.FUNDING_RATE) for p in pairs]
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
                      "log": [line for line in collect.lines if "data start" in line or "earlier" in line
                              or "Downloaded data for" in line or "Download history data" in line]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
