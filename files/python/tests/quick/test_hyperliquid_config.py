"""exchange.name: hyperliquid in the configuration, the InfluxDB tag and freqtrade's file layout (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from freqfeed import feather, schema
from freqfeed.config import ConfigError, from_mapping
from freqfeed.schema import Candle
from freqfeed.sync import plan

BASE: dict[str, Any] = {"influxdb": {"url": "http://127.0.0.1:8086", "database": "d"},
                        "exchange": {"name": "hyperliquid"}, "pairs": ["BTC/USDC:USDC", "KPEPE/USDC:USDC"],
                        "timeframes": ["1m", "3m", "1h"], "sync": {"datadir": "/u/data/hyperliquid"}}


def test_hyperliquid_defaults() -> None:
    config = from_mapping(BASE)
    assert config.exchange.name == "hyperliquid"
    assert config.exchange.rest_url == "https://api.hyperliquid.xyz"
    assert config.exchange.ws_url == "wss://api.hyperliquid.xyz/ws"
    assert config.gateway.ws_url == "wss://api.hyperliquid.xyz/ws"
    binance = from_mapping({**BASE, "exchange": {}, "pairs": ["BTC/USDT:USDT"]})
    assert binance.exchange.name == "binance"
    assert binance.exchange.rest_url == "https://fapi.binance.com"


def test_hyperliquid_refusals_name_the_key() -> None:
    with pytest.raises(ConfigError) as error:
        from_mapping({**BASE, "trading_mode": "spot", "pairs": ["BTC/USDT:USDT", "ETH/USDC"],
                      "timeframes": ["6h", "3m"]})
    text = str(error.value)
    assert "trading_mode: exchange.name hyperliquid has perpetuals only (futures)" in text
    assert "pairs[0]: expected a Hyperliquid perpetual BASE/USDC:USDC" in text
    assert "pairs[1]: expected a Hyperliquid perpetual" in text
    assert "timeframes[0]: expected one of 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 8h, 12h, 1d, 3d, 1w (hyperliquid)" in text
    with pytest.raises(ConfigError, match=r"exchange\.name: expected one of binance, hyperliquid, got 'kraken'"):
        from_mapping({**BASE, "exchange": {"name": "kraken"}})
    with pytest.raises(ConfigError, match=r"timeframes\[0\]: expected one of .*6h.* \(binance\), got '2m'"):
        from_mapping({**BASE, "exchange": {}, "pairs": ["BTC/USDT:USDT"], "timeframes": ["2m"]})


def test_sync_layout_has_no_mark_files() -> None:
    jobs = plan(from_mapping(BASE))
    names = sorted(job.path.name for job in jobs)
    assert all(job.path.parent == Path("/u/data/hyperliquid/futures") for job in jobs)
    assert "BTC_USDC_USDC-1h-futures.feather" in names
    assert "KPEPE_USDC_USDC-3m-futures.feather" in names
    assert "BTC_USDC_USDC-1h-funding_rate.feather" in names
    assert not [name for name in names if "-mark" in name]
    assert len(jobs) == 2 * 3 + 2
    binance = plan(from_mapping({**BASE, "exchange": {}, "pairs": ["BTC/USDT:USDT"],
                                 "sync": {"datadir": "/u/data/binance"}}))
    assert "BTC_USDT_USDT-1h-mark.feather" in [job.path.name for job in binance]
    assert feather.has_mark_files("binance") and not feather.has_mark_files("hyperliquid")
    assert schema.has_mark_series("binance") and not schema.has_mark_series("hyperliquid")


def test_exchange_tag() -> None:
    candle = Candle(60_000, 1.0, 2.0, 0.5, 1.5, 10.0, None, 7)
    try:
        schema.use_exchange("hyperliquid")
        line = schema.candle_line("ohlcv_1m", "BTC/USDC:USDC", candle)
        assert line.startswith("ohlcv_1m,exchange=hyperliquid,pair=BTC/USDC:USDC ")
        assert "trades=7i" in line and "quote_volume" not in line
        assert ("exchange", "hyperliquid") in schema._pair_tags("BTC/USDC:USDC")
        with pytest.raises(ValueError, match="unknown exchange 'kraken'"):
            schema.use_exchange("kraken")
    finally:
        schema.use_exchange("binance")
    assert schema.candle_line("ohlcv_1m", "BTC/USDC:USDC", candle).startswith("ohlcv_1m,exchange=binance,")
