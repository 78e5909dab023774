"""Binance USD-M perpetuals and spot: wire format (`wire`), REST client (`rest`), the gateway's forwarding
client built on the same limiter and clock (`upstream`), its websocket client (`websocket`) under the
producer's streams (`streams`) and the gateway's book streams (`books`), the gateway itself (`gateway/`,
`freqfeed serve`) and a deterministic simulator (`simulator`, `freqfeed simulate`).

`EXCHANGE` is what the rest of freqfeed knows about Binance (freqfeed.exchanges.base.Exchange).
Facts and their sources: shared/reference/binance-futures-api.md; layout: docs/exchanges.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from freqfeed.config import FUTURES_PAIR, SPOT_PAIR
from freqfeed.exchanges.base import Exchange, ExchangeClock, StreamEvents
from freqfeed.timeframes import BINANCE_TIMEFRAMES

if TYPE_CHECKING:
    from freqfeed.config import Config
    from freqfeed.exchanges.binance.rest import BinanceRest
    from freqfeed.exchanges.binance.streams import LiveStreams


def pair_problem(pair: str, trading_mode: str) -> str | None:
    """Problem with a pair in freqtrade notation, or None when it is well-formed."""
    if trading_mode == "futures":
        match = FUTURES_PAIR.match(pair)
        if not match:
            return "expected freqtrade futures notation BASE/QUOTE:SETTLE, e.g. BTC/USDT:USDT"
        if match.group(2) != match.group(3):
            return "expected a USDT-M perpetual whose settle currency equals its quote (e.g. BTC/USDT:USDT)"
        return None
    if not SPOT_PAIR.match(pair):
        return "expected freqtrade spot notation BASE/QUOTE, e.g. BTC/USDT"
    return None


def producer_rest(config: Config, clock: ExchangeClock) -> BinanceRest:
    from freqfeed.exchanges.binance.rest import BinanceRest

    return BinanceRest(config, clock)


def producer_streams(config: Config, info: dict[str, Any], rest: Any, events: StreamEvents) -> LiveStreams:
    from freqfeed.exchanges.binance.streams import LiveStreams

    return LiveStreams(config, info, events)


def serve(config: Config) -> int:
    from freqfeed.exchanges.binance.gateway import app

    return app.main(config)


def simulate(host: str, port: int, speed: float, seed: int, start: int | None, faults: Sequence[str]) -> int:
    from freqfeed.exchanges.binance import simulator

    return simulator.main(host=host, port=port, speed=speed, seed=seed, start=start, faults=list(faults))


EXCHANGE = Exchange(
    name="binance", title="Binance", markets="USDT-M perpetuals and spot", trading_modes=("futures", "spot"),
    timeframes=BINANCE_TIMEFRAMES, horizon=None, has_mark_series=True, funding_has_mark_price=True,
    funding_timeframe=None, endpoint_profile=None, pair_problem=pair_problem, producer_rest=producer_rest,
    producer_streams=producer_streams, serve=serve, simulate=simulate)
