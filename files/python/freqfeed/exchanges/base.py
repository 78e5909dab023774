"""What every exchange package shares: the exchange's clock, the producer's stream events, the error for
pairs an exchange does not list. Exchange-neutral: no exchange's names, URLs or wire format here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from freqfeed.schema import Candle


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
