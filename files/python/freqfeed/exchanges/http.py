"""What every exchange's REST client shares: the exchange's clock, its weight limiter (freqfeed.ratelimit) and
one aiohttp session, opened on first use and closed once.

Binance's producer client (binance.rest.BinanceRest), Binance's gateway forwarding (binance.upstream.Upstream)
and Hyperliquid's client (hyperliquid.rest.HyperliquidRest, used by its producer and its gateway) build on it;
what they do with a request (retry and parse, or forward the bytes) is theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import aiohttp

from freqfeed.exchanges.base import ExchangeClock
from freqfeed.ratelimit import LimiterStats, WeightLimiter


class RestSession:
    def __init__(self, clock: ExchangeClock, limiter: WeightLimiter, *, timeout: float,
                 headers: Mapping[str, str] | None = None, connections: int = 100) -> None:
        self.clock = clock
        self.limiter = limiter
        self._timeout = timeout
        self._headers = dict(headers) if headers else None
        self._connections = connections  # aiohttp's default pool size is 100
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def stats(self) -> LimiterStats:
        return self.limiter.stats

    @property
    def weight_limit(self) -> int:
        return self.limiter.weight_limit

    def session(self) -> aiohttp.ClientSession:
        """The session, opened on first use (in the running event loop). The threaded resolver: aiodns, when
        installed, keeps a busy helper thread."""
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=aiohttp.ThreadedResolver(), limit=self._connections)
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout),
                                                  connector=connector, headers=self._headers)
        return self._session
