"""Binance REST access for the producer: klines, mark-price klines, funding history, server time and
exchange info, behind one weight-aware rate limiter.

The limiter keeps a fixed delay between requests (`exchange.request_delay`), reads Binance's
X-MBX-USED-WEIGHT-1M header and stays under `exchange.max_weight_share` of the minute's budget,
honours Retry-After on 429, and on 418 (IP ban) stops all REST traffic until the ban ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from freqfeed.config import Config, exchange_symbol
from freqfeed.schema import Candle, FundingRate
from freqfeed.timeframes import timeframe_ms

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0


class ExchangeError(Exception):
    """Binance refused a request for a reason retrying does not fix (bad symbol, bad parameter)."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"Binance answered HTTP {status}" + (f" code {code}" if code is not None else "")
                         + f": {message}")
        self.status, self.code = status, code


class UnknownPairsError(Exception):
    """Pairs in the configuration that the exchange does not list."""


def klines_weight(limit: int, futures: bool) -> int:
    if not futures:
        return 2
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


class ExchangeClock:
    """The exchange's time, estimated from /time samples: offset and rate.

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


@dataclass
class RestStats:
    requests: int = 0
    weight: int = 0
    peak_used_weight: int = 0  # the highest X-MBX-USED-WEIGHT-1M seen
    rate_limited: int = 0
    banned: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)


class BinanceRest:
    def __init__(self, config: Config, clock: ExchangeClock | None = None) -> None:
        self.config = config
        self.futures = config.futures
        self.base = config.exchange.rest_url + ("/fapi/v1" if self.futures else "/api/v3")
        self.max_klines = 1500 if self.futures else 1000
        self.clock = clock or ExchangeClock()
        self.weight_limit = 2400 if self.futures else 6000
        self.stats = RestStats()
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self._last_request = 0.0
        self._used_weight = 0
        self._used_minute = 0
        self._paused_until = 0.0  # monotonic; set by 429 and 418
        self._last_exchange = (0.0, 0.0)  # monotonic send and answer times of the last request

    async def __aenter__(self) -> BinanceRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def budget(self) -> int:
        return int(self.weight_limit * self.config.exchange.max_weight_share)

    # -- endpoints ------------------------------------------------------------------------------

    async def sync_time(self) -> int:
        answer = await self._get("time", {}, weight=1)
        self.clock.observe(*self._last_exchange, int(answer["serverTime"]))  # around the HTTP exchange only
        return int(answer["serverTime"])

    async def exchange_info(self) -> dict[str, Any]:
        info: dict[str, Any] = await self._get("exchangeInfo", {}, weight=1 if self.futures else 20)
        for limit in info.get("rateLimits", []):
            if limit.get("rateLimitType") == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
                self.weight_limit = int(limit["limit"]) // int(limit.get("intervalNum", 1))
        return info

    def check_pairs(self, info: dict[str, Any], pairs: Iterable[str]) -> None:
        """Raise UnknownPairsError naming every configured pair the exchange does not trade."""
        trading = {s["symbol"] for s in info.get("symbols", []) if s.get("status", "TRADING") == "TRADING"
                   and (not self.futures or s.get("contractType") == "PERPETUAL")}
        unknown = [pair for pair in pairs if exchange_symbol(pair) not in trading]
        if unknown:
            kind = "USDT-M perpetual" if self.futures else "spot"
            raise UnknownPairsError(f"pairs not traded on Binance {kind} ({self.config.exchange.rest_url}): "
                                    f"{', '.join(unknown)} — fix `pairs` in {self.config.source}")

    async def klines(self, pair: str, timeframe: str, start: int, end: int, *, mark: bool = False) -> list[Candle]:
        """Closed candles with open time in [start, end], oldest first, paging as needed."""
        period = timeframe_ms(timeframe)
        candles: list[Candle] = []
        cursor = start
        while cursor <= end:
            count = min(self.max_klines, (end - cursor) // period + 1)
            params = {"symbol": exchange_symbol(pair), "interval": timeframe, "startTime": cursor,
                      "endTime": cursor + (count - 1) * period + period - 1, "limit": count}
            rows = await self._get("markPriceKlines" if mark else "klines", params,
                                   weight=klines_weight(count, self.futures))
            # Binance includes the candle in progress; closed means its close time has passed
            # (with 0.2 real seconds to spare for the clock estimate).
            closed_before = self.clock.now() - int(200 * self.clock.rate)
            page = [Candle(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]))
                    for r in rows if int(r[6]) < closed_before and start <= int(r[0]) <= end]
            candles.extend(page)
            if len(rows) < count:
                break
            cursor += count * period
        return candles

    async def funding_rates(self, pair: str, start: int, end: int) -> list[FundingRate]:
        rates: list[FundingRate] = []
        cursor = start
        while cursor <= end:
            rows = await self._get("fundingRate", {"symbol": exchange_symbol(pair), "startTime": cursor,
                                                   "endTime": end, "limit": 1000}, weight=1)
            rates.extend(FundingRate(int(r["fundingTime"]), float(r["fundingRate"])) for r in rows)
            if len(rows) < 1000:
                break
            cursor = int(rows[-1]["fundingTime"]) + 1
        return rates

    async def next_funding_times(self) -> dict[str, int]:
        """Next funding time per symbol (one request for all symbols)."""
        rows = await self._get("premiumIndex", {}, weight=10)
        return {r["symbol"]: int(r["nextFundingTime"]) for r in rows if int(r.get("nextFundingTime") or 0) > 0}

    # -- transport ------------------------------------------------------------------------------

    async def _get(self, endpoint: str, params: dict[str, Any], *, weight: int) -> Any:
        url = f"{self.base}/{endpoint}"
        backoff = 1.0
        while True:
            async with self._lock:
                await self._wait_turn(weight)
                try:
                    status, headers, body = await self._send(url, params)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    reason = str(exc) or type(exc).__name__
                    log.warning("Binance %s: %s; retrying in %.0fs", endpoint, reason, backoff)
                    status = 0
                    headers, body = {}, None
                self._account(endpoint, weight, headers)
            if status == 200:
                return body
            if status in (429, 418):
                await self._pause(status, headers, body)
                continue
            if status == 0 or status >= 500:
                if status:
                    log.warning("Binance %s answered HTTP %d; retrying in %.0fs", endpoint, status, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            code = body.get("code") if isinstance(body, dict) else None
            message = body.get("msg") if isinstance(body, dict) else str(body)[:200]
            raise ExchangeError(status, code, f"{message} ({endpoint} {params})")

    async def _send(self, url: str, params: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.config.exchange.timeout)
            # the threaded resolver: aiodns (pulled in by cryptofeed) keeps a busy helper thread
            connector = aiohttp.TCPConnector(resolver=aiohttp.ThreadedResolver())
            self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        sent = time.monotonic()
        async with self._session.get(url, params=params) as response:
            self._last_exchange = (sent, time.monotonic())
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = (await response.text())[:300]
            return response.status, dict(response.headers), body

    async def _wait_turn(self, weight: int) -> None:
        """The fixed delay, any 429/418 pause, and the minute's weight budget."""
        delay = self._paused_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        spacing = self.config.exchange.request_delay - (time.monotonic() - self._last_request)
        if spacing > 0:
            await asyncio.sleep(spacing)
        minute = self.clock.now() // 60_000
        if minute != self._used_minute:
            self._used_minute, self._used_weight = minute, 0
        if self._used_weight + weight > self.budget:
            wait = self.clock.real_seconds(60_000 - self.clock.now() % 60_000) + 0.05
            log.info("rate limit: %d of %d weight used this minute (budget %d%% of %d); waiting %.1fs",
                     self._used_weight, self.budget, round(self.config.exchange.max_weight_share * 100),
                     self.weight_limit, wait)
            await asyncio.sleep(wait)
            self._used_minute, self._used_weight = self.clock.now() // 60_000, 0
        self._last_request = time.monotonic()

    def _account(self, endpoint: str, weight: int, headers: dict[str, str]) -> None:
        self.stats.requests += 1
        self.stats.weight += weight
        self.stats.by_endpoint[endpoint] = self.stats.by_endpoint.get(endpoint, 0) + 1
        used = headers.get("X-MBX-USED-WEIGHT-1M") or headers.get("x-mbx-used-weight-1m")
        if used is not None and used.isdigit():
            self._used_weight = int(used)  # the exchange's count wins over ours
            self.stats.peak_used_weight = max(self.stats.peak_used_weight, int(used))
        else:
            self._used_weight += weight

    async def _pause(self, status: int, headers: dict[str, str], body: Any) -> None:
        retry_after = headers.get("Retry-After") or headers.get("retry-after")
        seconds = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else 60.0
        self._paused_until = time.monotonic() + seconds
        message = body.get("msg") if isinstance(body, dict) else ""
        if status == 418:
            self.stats.banned += 1
            log.error("Binance banned this IP (HTTP 418: %s): all REST traffic stopped for %.0fs", message, seconds)
        else:
            self.stats.rate_limited += 1
            log.warning("Binance rate limit hit (HTTP 429): pausing REST traffic for %.0fs as Retry-After says",
                        seconds)
        await asyncio.sleep(seconds)
