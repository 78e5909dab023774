"""What every exchange package shares: its description (`Exchange`, one per package, found by
freqfeed.exchanges.get), the exchange's clock, the producer's stream events, the error for pairs an exchange
does not list. Exchange-neutral: no exchange's names, URLs or wire format here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from freqfeed.config import Config
    from freqfeed.ratelimit import LimiterStats, WeightLimiter
    from freqfeed.schema import Candle, FundingRate


@dataclass(frozen=True)
class Exchange:
    """One exchange as the producer, sync, gateway, plan, status and the CLI see it. Each package's
    `__init__` defines one (`EXCHANGE`); nothing outside the package asks which exchange it is.

    The factories import their package's modules when called, so reading the description stays cheap (config
    validation and `freqfeed plan` load no client).
    """

    name: str  # config's exchange.name, the `exchange` tag in InfluxDB, freqtrade's data/<name> directory
    title: str  # for messages: "Binance"
    markets: str  # what freqfeed collects there, for messages: "perpetuals"
    trading_modes: tuple[str, ...]  # freqtrade trading modes served (the first is the default)
    timeframes: tuple[str, ...]  # candle intervals the exchange serves
    horizon: int | None  # candles the exchange still serves per series (None: all its history)
    has_mark_series: bool  # a mark-price candle series (and freqtrade's -mark files); else futures candles serve
    funding_has_mark_price: bool  # settled funding rates carry the mark price
    funding_timeframe: str | None  # the timeframe freqtrade names funding files with, when the exchange fixes it
    endpoint_profile: str | None  # config.DEFAULT_ENDPOINTS' entry for its URLs (None: the trading mode's)
    pair_problem: Callable[[str, str], str | None]  # (pair, trading_mode) -> what is wrong with it, or None
    producer_rest: Callable[[Config, ExchangeClock], ProducerRest]  # (config, clock) -> the producer's REST
    # the producer's live streams, (config, exchange info, its REST client after check_pairs, events)
    producer_streams: Callable[[Config, dict[str, Any], Any, StreamEvents], ProducerStreams]
    serve: Callable[[Config], int]  # `freqfeed serve`: the gateway until stopped; the exit status
    # `freqfeed simulate`: (host, port, speed, seed, start, faults) -> exit status
    simulate: Callable[[str, int, float, int, int | None, Sequence[str]], int]
    # a pair whose series fall silent is looked up in the listing again, and ended when the exchange no longer
    # lists it (Hyperliquid's isDelisted is final; Binance's statuses include temporary halts: not done there)
    ends_delisted_pairs: bool = False


class ProducerRest(Protocol):
    """What the producer asks an exchange over REST, in freqfeed's types (pairs in, Candle/FundingRate out).
    Each exchange's REST code is its gateway's too (freqfeed.exchanges.http.RestSession: clock, limiter,
    session): Binance's rest.BinanceRest next to the gateway's upstream.Upstream; Hyperliquid's
    rest.HyperliquidRest, behind the producer's adapter rest.HyperliquidProducerRest."""

    @property
    def clock(self) -> ExchangeClock: ...

    @property
    def limiter(self) -> WeightLimiter: ...

    @property
    def stats(self) -> LimiterStats: ...

    @property
    def weight_limit(self) -> int: ...

    async def close(self) -> None: ...

    async def sync_time(self) -> int: ...

    async def exchange_info(self) -> dict[str, Any]: ...

    def check_pairs(self, info: dict[str, Any], pairs: Sequence[str]) -> None: ...

    async def klines(self, pair: str, timeframe: str, start: int, end: int, *, mark: bool = False) -> list[Candle]: ...

    async def klines_and_current(self, pair: str, timeframe: str, start: int, end: int, *, mark: bool = False,
                                 current: bool = True) -> tuple[list[Candle], Candle | None]: ...

    def page_candles(self, candles: int) -> int: ...

    async def funding_rates(self, pair: str, start: int, end: int) -> list[FundingRate]: ...

    async def next_funding_times(self) -> dict[str, int]: ...


class ProducerStreams(Protocol):
    """The producer's live streams: started in the running event loop, report through StreamEvents."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class ExchangeError(Exception):
    """The exchange refused a request for a reason retrying does not fix (bad symbol, bad parameter)."""

    def __init__(self, status: int, code: int | None, message: str, *, exchange: str) -> None:
        super().__init__(f"{exchange} answered HTTP {status}" + (f" code {code}" if code is not None else "")
                         + f": {message}")
        self.status, self.code = status, code


class UnknownPairsError(Exception):
    """Pairs in the configuration that the exchange does not list."""


class ExchangeClock:
    """The exchange's time, estimated from its time samples (Binance /time, Hyperliquid exchangeStatus):
    offset and rate.

    The rate is 1.0 against Binance; against a simulator running faster than real time it is the
    simulator's speed, so deadlines measured in exchange time convert to the right real delays.
    """

    def __init__(self) -> None:
        self._first: tuple[float, int] | None = None  # (local monotonic s, exchange ms)
        self._last: tuple[float, int] | None = None
        self.rate = 1.0

    def observe(self, local_before: float, local_after: float, server_ms: int) -> None:
        sample = ((local_before + local_after) / 2, server_ms)
        if self._first is None:
            self._first = sample
        self._last = sample
        elapsed = sample[0] - self._first[0]
        if elapsed >= 1.0:
            rate = (sample[1] - self._first[1]) / 1000 / elapsed
            self.rate = 1.0 if abs(rate - 1.0) < 0.02 else max(rate, 1e-3)

    @property
    def synced(self) -> bool:
        return self._last is not None

    def now(self) -> int:
        if self._last is None:
            return int(time.time() * 1000)
        local, server = self._last
        return server + int((time.monotonic() - local) * 1000 * self.rate)

    def real_seconds(self, exchange_ms: float) -> float:
        return exchange_ms / 1000 / self.rate


@dataclass(frozen=True)
class MarkPrice:
    pair: str
    mark_price: float
    funding_rate: float | None  # the rate for the next funding time (an estimate until then)
    next_funding_ms: int | None
    event_ms: int


class StreamEvents:
    """What the producer hears from the streams; every method must return quickly."""

    async def on_candle(self, pair: str, timeframe: str, candle: Candle) -> None: ...

    def on_live_candle(self, pair: str, timeframe: str, candle: Candle, event_ms: int) -> None: ...

    async def on_mark_price(self, update: MarkPrice) -> None: ...

    def on_connect(self, label: str, reconnect: bool) -> None: ...

    def on_disconnect(self, label: str, reason: str, retry_in: float) -> None: ...

    def on_malformed(self, label: str, error: str, message: str) -> None: ...
