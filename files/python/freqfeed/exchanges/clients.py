"""The producer's REST and stream clients for `exchange.name`: the one place that picks an exchange's package.

Both clients of an exchange answer the producer with the same methods and events (Binance:
binance.rest.BinanceRest and binance.streams.LiveStreams; Hyperliquid: hyperliquid.rest.HyperliquidProducerRest
and hyperliquid.feed.HyperliquidLiveStreams), so the producer holds either without knowing which.
"""

from __future__ import annotations

from typing import Any

from freqfeed.config import Config
from freqfeed.exchanges.base import ExchangeClock, StreamEvents
from freqfeed.exchanges.binance.rest import BinanceRest
from freqfeed.exchanges.binance.streams import LiveStreams
from freqfeed.exchanges.hyperliquid.feed import HyperliquidLiveStreams
from freqfeed.exchanges.hyperliquid.rest import HyperliquidProducerRest, HyperliquidRest

ProducerRest = BinanceRest | HyperliquidProducerRest
ProducerStreams = LiveStreams | HyperliquidLiveStreams


def producer_rest(config: Config, clock: ExchangeClock) -> ProducerRest:
    if config.exchange.name == "hyperliquid":
        return HyperliquidProducerRest(HyperliquidRest(config.exchange.rest_url, clock=clock,
                                                       share=config.exchange.max_weight_share,
                                                       timeout=config.exchange.timeout))
    return BinanceRest(config, clock)


def producer_streams(config: Config, info: dict[str, Any], rest: ProducerRest, events: StreamEvents) -> ProducerStreams:
    """The live streams, after `rest.check_pairs(info, pairs)` (Hyperliquid: which coin each pair is)."""
    if isinstance(rest, HyperliquidProducerRest):
        return HyperliquidLiveStreams(config.exchange.ws_url, rest.coins, config.timeframes, events, now=rest.clock.now)
    return LiveStreams(config, info, events)
