"""exchange.name: hyperliquid in the configuration, the InfluxDB tag and freqtrade's file layout (pure)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from freqfeed import feather, schema
from freqfeed.config import ConfigError, from_mapping
from freqfeed.exchanges.hyperliquid.rest import HyperliquidProducerRest, HyperliquidRest
from freqfeed.plan import Plan, PlanError, bot_need
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
    with pytest.raises(ConfigError, match=r"sync\.funding_timeframe: Hyperliquid funds hourly"):
        from_mapping({**BASE, "sync": {"funding_timeframe": "8h"}})
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


HL_BOT: dict[str, Any] = {
    "trading_mode": "futures", "margin_mode": "isolated", "stake_currency": "USDC", "timeframe": "3m",
    "startup_candle_count": 40,
    "exchange": {"name": "hyperliquid", "pair_whitelist": ["BTC/USDC:USDC", "ETH/USDC:USDC"]},
    "freqai": {"enabled": True, "train_period_days": 30,
               "feature_parameters": {"include_timeframes": ["3m", "1h"], "indicator_periods_candles": [10, 20]}},
}


def test_plan_accepts_hyperliquid_bots_and_names_the_freqai_override() -> None:
    now = 1_795_572_000_000
    bot = bot_need(HL_BOT, "hl.json", now)
    assert bot.exchange == "hyperliquid" and not bot.override_exchange_checks
    plan = Plan.of([bot])
    text = "\n".join(plan.describe())
    assert "3m: Hyperliquid itself serves only its last 5000 candles (10.4 days)" in text
    assert "1h: Hyperliquid" not in text  # 32 days of 1h: inside its 208 days
    assert "freqai.override_exchange_checks: true" in text and "NOT set: freqtrade refuses to start FreqAI" in text
    assert "no mark files" in text and "mark 1h" not in text
    assert "freqfeed_exchange: hyperliquid" in plan.yaml_fragment()
    overridden = bot_need({**HL_BOT, "freqai": {**HL_BOT["freqai"], "override_exchange_checks": True}}, "b", now)
    assert "override_exchange_checks: true (freqtrade's ohlcv_has_history is False there) with freqfeed's files in " \
           "data/hyperliquid: set" in "\n".join(Plan.of([overridden]).describe())
    binance = bot_need({**HL_BOT, "exchange": {"name": "binance", "pair_whitelist": ["BTC/USDT:USDT"]}}, "bn", now)
    with pytest.raises(PlanError, match="different exchanges"):
        Plan.of([bot, binance])
    with pytest.raises(PlanError, match="Hyperliquid spot: freqfeed collects Hyperliquid's perpetuals only"):
        bot_need({**HL_BOT, "trading_mode": "spot"}, "s", now)
    with pytest.raises(PlanError, match="timeframe '6h' is not one freqfeed collects on hyperliquid"):
        bot_need({**HL_BOT, "freqai": {**HL_BOT["freqai"], "feature_parameters": {
            "include_timeframes": ["6h"], "indicator_periods_candles": [10]}}}, "t", now)


def test_a_page_before_the_horizon_costs_no_request() -> None:
    """With `history` longer than the horizon, the producer asks for pages Hyperliquid no longer has: answered
    empty without a request (they become the producer's known exchange gaps)."""
    rest = HyperliquidProducerRest(HyperliquidRest("http://127.0.0.1:9"))  # nothing listens: a request would fail
    rest.coins = {"BTC/USDC:USDC": "BTC"}
    now = rest.clock.now()
    end = now - 5001 * 180_000
    # a request would retry against the closed port until the timeout fails the test
    page = rest.klines("BTC/USDC:USDC", "3m", end - 4999 * 180_000, end)
    assert asyncio.run(asyncio.wait_for(page, timeout=5)) == []
    assert rest.stats.requests == 0
    asyncio.run(rest.close())
