"""An exchange's request-weight budget per IP, shared by every freqfeed process that talks to its REST API
(Binance and Hyperliquid alike; `exchange` names it in logs and refusals).

One `WeightLimiter` per process and market: the producer's backfill and repairs, and the gateway's
forwarded requests. It keeps the minute's weight under `share` of the exchange's limit, trusting the
exchange's own count where it sends one (Binance's `X-MBX-USED-WEIGHT-1M`) over its estimate, honours
`Retry-After` on 429, and on 418 (an IP ban) refuses everything until the ban ends. Minutes and bans are
measured on the exchange's clock, so the same code is right against the exchange and against a simulator
running faster than real time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)

USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"


class Clock(Protocol):
    rate: float

    def now(self) -> int: ...

    def real_seconds(self, exchange_ms: float) -> float: ...


class RateLimited(Exception):
    """No request may go out now: banned (418), told to wait (429), or the budget is spent for longer than
    the caller would wait. `retry_after` is in real seconds."""

    def __init__(self, status: int, retry_after: float, reason: str) -> None:
        super().__init__(reason)
        self.status, self.retry_after, self.reason = status, retry_after, reason


@dataclass
class LimiterStats:
    requests: int = 0
    weight: int = 0
    peak_used_weight: int = 0  # the highest X-MBX-USED-WEIGHT-1M seen
    rate_limited: int = 0  # 429s received
    banned: int = 0  # 418s received
    by_minute: dict[int, int] = field(default_factory=dict)  # exchange minute -> weight this process sent
    by_endpoint: dict[str, int] = field(default_factory=dict)  # requests per endpoint

    def weight_last_minutes(self, now_minute: int, minutes: int = 1) -> int:
        return sum(w for m, w in self.by_minute.items() if now_minute - minutes < m <= now_minute)


class WeightLimiter:
    def __init__(self, clock: Clock, *, weight_limit: int, share: float, exchange: str) -> None:
        self.clock = clock
        self.exchange = exchange  # its name in logs and refusals: "Binance"
        self.weight_limit = weight_limit
        self.share = share
        self.stats = LimiterStats()
        self._used_minute = 0
        self._used_weight = 0
        self._paused_until = 0.0  # monotonic: 429's Retry-After or a 418 ban
        self._pause_status = 0

    @property
    def budget(self) -> int:
        return int(self.weight_limit * self.share)

    @property
    def used_weight(self) -> int:
        """Weight used this minute, as the exchange last said (or as counted since)."""
        self._roll()
        return self._used_weight

    def _roll(self) -> None:
        minute = self.clock.now() // 60_000
        if minute != self._used_minute:
            self._used_minute, self._used_weight = minute, 0

    @property
    def pause_status(self) -> int:
        """429 or 418: why requests are (or were last) paused; 0: never."""
        return self._pause_status

    def paused_for(self) -> float:
        """Real seconds until requests may go out again after a 429/418 (0: not paused)."""
        return max(0.0, self._paused_until - time.monotonic())

    def check(self, weight: int) -> float:
        """Real seconds to wait before a request of `weight` may go out (0: now). Raises RateLimited while
        banned or told to wait by the exchange."""
        paused = self.paused_for()
        if paused > 0:
            reason = f"banned by {self.exchange} (418)" if self._pause_status == 418 \
                else f"rate limited by {self.exchange} (429)"
            raise RateLimited(self._pause_status, paused, reason)
        self._roll()
        if self._used_weight + weight <= self.budget:
            return 0.0
        return self.clock.real_seconds(60_000 - self.clock.now() % 60_000) + 0.05

    async def acquire(self, weight: int, *, max_wait: float | None = None, endpoint: str = "") -> None:
        """Wait for room for `weight` in the minute's budget (and any pause), then count it as sent.

        With `max_wait`, raise RateLimited instead of waiting longer than that (and at once when paused)."""
        while True:
            paused = self.paused_for()
            if paused > 0:
                if max_wait is not None:
                    self.check(weight)  # raises
                await asyncio.sleep(paused)
                continue
            wait = self.check(weight)
            if wait <= 0:
                break
            if max_wait is not None and wait > max_wait:
                raise RateLimited(429, wait, f"weight budget spent: {self._used_weight} of {self.budget} this minute "
                                             f"({round(self.share * 100)}% of {self.weight_limit})")
            log.info("rate limit: %d of %d weight used this minute (budget %d%% of %d); waiting %.1fs",
                     self._used_weight, self.budget, round(self.share * 100), self.weight_limit, wait)
            await asyncio.sleep(wait)
        self._used_weight += weight  # counted now, so concurrent callers see it; the exchange's header corrects it
        minute = self.clock.now() // 60_000
        self.stats.by_minute[minute] = self.stats.by_minute.get(minute, 0) + weight
        for old in [m for m in self.stats.by_minute if m < minute - 60]:
            del self.stats.by_minute[old]
        self.stats.requests += 1
        self.stats.weight += weight
        if endpoint:
            self.stats.by_endpoint[endpoint] = self.stats.by_endpoint.get(endpoint, 0) + 1

    def observe(self, headers: Mapping[str, str]) -> None:
        """The exchange's count of the minute's weight (Binance's used-weight header) wins over ours."""
        used = _header(headers, USED_WEIGHT_HEADER)
        if used is not None and used.isdigit():
            self._roll()
            self._used_weight = int(used)
            self.stats.peak_used_weight = max(self.stats.peak_used_weight, int(used))

    def rejected(self, status: int, headers: Mapping[str, str], message: str = "") -> float:
        """A 429 or 418: stop sending for Retry-After seconds (60 when the exchange gives none); returns them."""
        retry_after = _header(headers, "Retry-After")
        try:
            seconds = float(retry_after) if retry_after is not None else 60.0
        except ValueError:
            seconds = 60.0
        seconds = max(seconds, 0.0) if math.isfinite(seconds) else 60.0
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        self._pause_status = status
        if status == 418:
            self.stats.banned += 1
            log.error("%s banned this IP (HTTP 418: %s): all REST traffic stopped for %.0fs", self.exchange, message,
                      seconds)
        else:
            self.stats.rate_limited += 1
            log.warning("%s rate limit hit (HTTP 429): pausing REST traffic for %.0fs as Retry-After says",
                        self.exchange, seconds)
        return seconds


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name.lower():
                return candidate
    return value
