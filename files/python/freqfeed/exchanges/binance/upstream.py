"""What the gateway asks Binance itself: forwarded requests, exchangeInfo and the exchange's clock, on the
same RestSession and limiter as the producer's client (rest.py), but never retried: a bot gets its answer now.

Every forwarded request goes through one weight-aware limiter (freqfeed.ratelimit, as the producer's):
Binance's used-weight header counts, a 429 pauses all traffic for Retry-After and a 418 until the ban
ends, and while paused every request is answered at once with the same status and a Retry-After,
never sent. Identical requests share one upstream request while it is under way (coalescing) and its
answer for a short time after (`gateway.cache_ttl`, per endpoint), so N bots asking for the same book
cost one request per TTL. Binance's status, body and weight header pass through unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from freqfeed import __version__
from freqfeed.config import Config
from freqfeed.exchanges.base import ExchangeClock
from freqfeed.exchanges.binance.rest import binance_limiter, market_of
from freqfeed.exchanges.binance.wire import market_info, request_weight
from freqfeed.exchanges.http import RestSession
from freqfeed.ratelimit import USED_WEIGHT_HEADER, RateLimited

log = logging.getLogger(__name__)

PASSED_HEADERS = ("Content-Type", USED_WEIGHT_HEADER, "Retry-After")
UNKNOWN_WEIGHT = 5  # an endpoint wire.py has no weight for; Binance's header corrects the count
CLOCK_SYNC_EVERY = 60.0  # real seconds between /time requests (weight 1)


@dataclass(frozen=True)
class Reply:
    """An HTTP answer as it goes back to the bot."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, status: int, code: int, msg: str, retry_after: float | None = None) -> Reply:
        headers = {"Content-Type": "application/json"}
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        return cls(status, json.dumps({"code": code, "msg": msg}).encode(), headers)


@dataclass
class _Cached:
    expires: float  # monotonic
    reply: Reply


class Upstream(RestSession):
    """The gateway's requests to Binance: forwarded as they are (never retried), cached and coalesced, on the
    same session, limiter and clock code as the producer's client (binance.rest)."""

    def __init__(self, config: Config, clock: ExchangeClock | None = None) -> None:
        clock = clock or ExchangeClock()
        self.user_agent = f"freqfeed-gateway/{__version__} ({socket.gethostname()})"
        super().__init__(clock, binance_limiter(config, clock), timeout=config.exchange.timeout,
                         headers={"User-Agent": self.user_agent}, connections=64)
        self.config = config
        self.market = market_of(config)
        self.prefix = market_info(self.market).rest_prefix
        self.base = config.exchange.rest_url
        self._cache: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], _Cached] = OrderedDict()
        self.max_cache_entries = config.gateway.forward_cache_entries
        self.max_cache_bytes = int(config.gateway.forward_cache_mb * 1_000_000)
        self.cache_bytes = 0
        self.cache_evictions = 0
        self._in_flight: dict[tuple[str, tuple[tuple[str, str], ...]], asyncio.Future[Reply]] = {}
        self.exchange_info: dict[str, Any] | None = None
        self.exchange_info_body: bytes = b""
        self.exchange_info_at = 0.0  # monotonic
        self.forwarded = 0
        self.cache_hits = 0
        self.coalesced = 0
        self.refused_locally = 0  # answered 429/418 without asking Binance

    # -- forwarding ------------------------------------------------------------------------------

    async def get(self, path: str, params: Sequence[tuple[str, str]], *, endpoint: str, ttl: float | None = None,
                  reason: str = "") -> Reply:
        """Binance's answer to GET `path` (`/fapi/v1/depth`), from the cache while it is fresh, shared with
        identical requests in flight, else sent through the limiter. `path` is an allowlisted endpoint's
        and `params` its normalised parameters (freqfeed.exchanges.binance.gateway.admission): both key the cache."""
        key = (path, tuple(sorted(params)))
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached.expires > now:
            self.cache_hits += 1
            self._cache.move_to_end(key)
            return cached.reply
        in_flight = self._in_flight.get(key)
        if in_flight is not None:
            self.coalesced += 1
            return await asyncio.shield(in_flight)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            reply = await self._send(path, params, endpoint, reason)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: the waiters, if any, get it too
            raise
        else:
            future.set_result(reply)
        finally:
            self._in_flight.pop(key, None)
        seconds = self.config.gateway.ttl(endpoint) if ttl is None else ttl
        if reply.status == 200 and seconds > 0:
            self._store(key, _Cached(time.monotonic() + seconds, reply))
        return reply

    def _store(self, key: tuple[str, tuple[tuple[str, str], ...]], entry: _Cached) -> None:
        """Keep `entry` within `gateway.forward_cache_entries` and `forward_cache_mb`: expired answers go
        first, then the least recently used."""
        size = len(entry.reply.body)
        if size > self.max_cache_bytes or self.max_cache_entries == 0:
            return
        old = self._cache.pop(key, None)
        if old is not None:
            self.cache_bytes -= len(old.reply.body)
        if len(self._cache) >= self.max_cache_entries or self.cache_bytes + size > self.max_cache_bytes:
            now = time.monotonic()
            for stale in [k for k, v in self._cache.items() if v.expires <= now]:
                self.cache_bytes -= len(self._cache.pop(stale).reply.body)
        while self._cache and (len(self._cache) >= self.max_cache_entries
                               or self.cache_bytes + size > self.max_cache_bytes):
            _, dropped = self._cache.popitem(last=False)
            self.cache_bytes -= len(dropped.reply.body)
            self.cache_evictions += 1
        self._cache[key] = entry
        self.cache_bytes += size

    async def _send(self, path: str, params: Sequence[tuple[str, str]], endpoint: str, reason: str) -> Reply:
        try:
            weight = request_weight(self.market, endpoint, dict(params))
        except ValueError:
            weight = UNKNOWN_WEIGHT
        try:
            await self.limiter.acquire(weight, max_wait=self.config.gateway.max_wait, endpoint=endpoint)
        except RateLimited as exc:
            self.refused_locally += 1
            return Reply.error(exc.status, -1003, f"freqfeed gateway: {exc.reason}; not forwarded to Binance "
                                                  f"(retry in {math.ceil(exc.retry_after)}s)", exc.retry_after)
        url = self.base + path
        try:
            async with self.session().get(url, params=list(params)) as response:
                body = await response.read()
                headers = {name: response.headers[name] for name in PASSED_HEADERS if name in response.headers}
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("forwarding %s to Binance failed: %s", path, str(exc) or type(exc).__name__)
            return Reply.error(503, -1001, f"freqfeed gateway: Binance did not answer ({type(exc).__name__})")
        self.forwarded += 1
        self.limiter.observe(headers)
        if status in (429, 418):
            try:
                message = json.loads(body).get("msg", "")
            except (ValueError, AttributeError):
                message = ""
            self.limiter.rejected(status, headers, str(message))
        log.debug("forwarded %s %s -> HTTP %d (weight %d%s)", path, dict(params), status, weight,
                  f"; {reason}" if reason else "")
        return Reply(status, body, headers)

    # -- exchangeInfo and the clock ---------------------------------------------------------------

    async def refresh_exchange_info(self) -> bool:
        """Fetch exchangeInfo (weight 1 on futures, 20 on spot); False when Binance did not give it."""
        reply = await self._send(f"{self.prefix}/exchangeInfo", [], "exchangeInfo", "exchangeInfo cache")
        if reply.status != 200:
            log.warning("exchangeInfo from Binance: HTTP %d %s", reply.status, reply.body[:200])
            return False
        try:
            info = json.loads(reply.body)
        except ValueError:
            log.warning("exchangeInfo from Binance is not JSON: %r", reply.body[:200])
            return False
        self.exchange_info, self.exchange_info_body = info, reply.body
        self.exchange_info_at = time.monotonic()
        return True

    async def sync_clock(self) -> bool:
        sent = time.monotonic()
        reply = await self._send(f"{self.prefix}/time", [], "time", "clock")
        if reply.status != 200:
            return False
        try:
            server_ms = int(json.loads(reply.body)["serverTime"])
        except (ValueError, KeyError, TypeError):
            return False
        self.clock.observe(sent, time.monotonic(), server_ms)
        return True

    async def keep_fresh(self) -> None:
        """exchangeInfo every `gateway.exchange_info_refresh` seconds, the clock every minute."""
        last_clock = time.monotonic()
        while True:
            await asyncio.sleep(5.0)
            now = time.monotonic()
            if now - self.exchange_info_at > self.config.gateway.exchange_info_refresh:
                await self.refresh_exchange_info()
            if now - last_clock > CLOCK_SYNC_EVERY:
                last_clock = now
                await self.sync_clock()
