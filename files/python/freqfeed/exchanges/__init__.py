"""One package per exchange, each behind the same small interface (issue 18).

The layout, modelled on cryptofeed's split between a feed (what one exchange says and how to ask it) and
its backends (what the rest of the program does with it):

    freqfeed/exchanges/base.py    the interface: `Exchange` (the description each package gives), the
                                  producer's ProducerRest/ProducerStreams protocols and StreamEvents,
                                  ExchangeClock, UnknownPairsError
    freqfeed/exchanges/<name>/
        __init__.py   EXCHANGE: name, timeframes, history horizon, mark series, funding layout, pair check,
                      and the factories (producer REST and streams, gateway, simulator), importing lazily
        wire.py       the exchange's wire format in one place: request validation and the exchange's own
                      errors, answer shapes, weights and limits, names (coins, symbols, pairs), websocket
                      messages. Pure: no I/O, no clock. Shared by the simulator, the clients and the gateway,
                      so they cannot disagree about what the exchange says.
        rest.py       one REST client (aiohttp) behind the shared weight limiter (freqfeed.ratelimit): the
                      only code that sends REST requests to that exchange, for the producer and the gateway.
        streams.py    the websocket client: subscriptions within the exchange's limits, keep-alive,
                      reconnects with backoff, silence detection, closed candles.
        gateway       `freqfeed serve` for that exchange (EXCHANGE.serve): Binance's is a subpackage
                      (gateway/app.py, admission.py, history.py, ...), Hyperliquid's gateway.py beside its
                      admission.py and local.py; what both share is freqfeed.gateway (lifecycle, notify, threads).
        simulator.py  a deterministic market that speaks the wire format (candles a pure function of seed,
                      coin and time: freqfeed.simulator.market), for tests, benchmarks and the lab.

`get(config.exchange.name)` finds a package's EXCHANGE; the names are config.EXCHANGES (the choices of
`exchange.name`). Adding an exchange: its package and its name there. docs/exchanges.md, "Package layout".
"""

from __future__ import annotations

import importlib
from functools import cache

from freqfeed.config import EXCHANGES
from freqfeed.exchanges.base import Exchange


@cache
def get(name: str) -> Exchange:
    """The exchange called `name` (config's exchange.name); ValueError naming the known ones otherwise."""
    if name not in EXCHANGES:
        raise ValueError(f"unknown exchange {name!r} (expected one of {', '.join(EXCHANGES)})")
    exchange: Exchange = importlib.import_module(f"freqfeed.exchanges.{name}").EXCHANGE
    return exchange


def titles() -> str:
    """"Binance and Hyperliquid", for messages."""
    names = [get(name).title for name in EXCHANGES]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
