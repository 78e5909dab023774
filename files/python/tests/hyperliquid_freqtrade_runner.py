"""Runs freqtrade's own Hyperliquid exchange class (freqtrade's venv) with a given `exchange` config section:
markets, then the candles and funding rates a dry-run bot refreshes at start-up.

    python hyperliquid_freqtrade_runner.py '<exchange section JSON>' '<[[pair, timeframe, candle_type], ...]>'

Prints one JSON object: {"markets": [...symbols], "frames": {"pair|tf|type": [[date, values...], ...]}}.
Kept free of freqfeed imports: this venv has only freqtrade and ccxt.
"""

from __future__ import annotations

import json
import sys

from freqtrade.enums import CandleType, RunMode
from freqtrade.resolvers import ExchangeResolver


def main() -> int:
    exchange = json.loads(sys.argv[1])
    wanted = [(pair, timeframe, CandleType(kind)) for pair, timeframe, kind in json.loads(sys.argv[2])]
    pricing = {"price_side": "same", "use_order_book": True, "order_book_top": 1}
    config = {"trading_mode": "futures", "margin_mode": "isolated", "stake_currency": "USDC", "dry_run": True,
              "runmode": RunMode.DRY_RUN, "timeframe": wanted[0][1], "max_open_trades": 1, "stake_amount": 10,
              "dry_run_wallet": 1000, "entry_pricing": pricing, "exit_pricing": pricing,
              "candle_type_def": CandleType.FUTURES, "exchange": exchange}
    api = ExchangeResolver.load_exchange(config, validate=True, load_leverage_tiers=False)
    frames = api.refresh_latest_ohlcv(wanted, cache=False)
    print(json.dumps({"markets": sorted(api.markets),
                      "frames": {f"{pair}|{tf}|{kind.value}": frame.astype(str).values.tolist()
                                 for (pair, tf, kind), frame in frames.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
