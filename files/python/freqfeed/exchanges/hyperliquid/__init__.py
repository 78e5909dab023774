"""Hyperliquid perpetuals (USDC): wire format (`wire`), REST client (`rest`), websocket client (`streams`)
and a deterministic simulator (`simulator`, `python -m freqfeed.exchanges.hyperliquid.simulator`).

`EXCHANGE` is what the rest of freqfeed knows about Hyperliquid (freqfeed.exchanges.base.Exchange).
Facts and their sources: shared/reference/hyperliquid.md; decisions: docs/notes/hl.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from freqfeed.config import FUTURES_PAIR
from freqfeed.exchanges.base import Exchange, ExchangeClock, StreamEvents
from freqfeed.exchanges.hyperliquid.wire import CANDLE_HORIZON, GRID_INTERVALS

if TYPE_CHECKING:
    from freqfeed.config import Config
    from freqfeed.exchanges.hyperliquid.feed import HyperliquidLiveStreams
    from freqfeed.exchanges.hyperliquid.rest import HyperliquidProducerRest


def pair_problem(pair: str, trading_mode: str) -> str | None:
    """Problem with a pair in freqtrade notation, or None when it is well-formed."""
    match = FUTURES_PAIR.match(pair)
    ok = match is not None and match.group(2) == match.group(3) == "USDC"
    return None if ok else "expected a Hyperliquid perpetual BASE/USDC:USDC, e.g. BTC/USDC:USDC"


def producer_rest(config: Config, clock: ExchangeClock) -> HyperliquidProducerRest:
    from freqfeed.exchanges.hyperliquid.rest import HyperliquidProducerRest, HyperliquidRest

    return HyperliquidProducerRest(HyperliquidRest(config.exchange.rest_url, clock=clock,
                                                   share=config.exchange.max_weight_share,
                                                   timeout=config.exchange.timeout))


def producer_streams(config: Config, info: dict[str, Any], rest: Any, events: StreamEvents) -> HyperliquidLiveStreams:
    """The live streams, after `rest.check_pairs(info, pairs)` (which coin each pair is)."""
    from freqfeed.exchanges.hyperliquid.feed import HyperliquidLiveStreams

    return HyperliquidLiveStreams(config.exchange.ws_url, rest.coins, config.timeframes, events, now=rest.clock.now)


def serve(config: Config) -> int:
    from freqfeed.exchanges.hyperliquid import gateway

    return gateway.main(config)


def simulate(host: str, port: int, speed: float, seed: int, start: int | None, faults: Sequence[str]) -> int:
    from freqfeed.exchanges.hyperliquid import simulator

    return simulator.main([f"--host={host}", f"--port={port}", f"--speed={speed}", f"--seed={seed}",
                           *([f"--start={start}"] if start is not None else []), *(f"--fault={f}" for f in faults)])


EXCHANGE = Exchange(
    name="hyperliquid", title="Hyperliquid", markets="perpetuals", trading_modes=("futures",),
    timeframes=GRID_INTERVALS, horizon=CANDLE_HORIZON, has_mark_series=False, funding_has_mark_price=False,
    funding_timeframe="1h", endpoint_profile="hyperliquid", pair_problem=pair_problem, producer_rest=producer_rest,
    producer_streams=producer_streams, serve=serve, simulate=simulate, ends_delisted_pairs=True)
