"""Binance REST access for the producer: klines, mark-price klines, funding history, server time and
exchange info, behind one weight-aware rate limiter. The gateway's forwarding (upstream.py) builds on the
same RestSession (freqfeed.exchanges.http) and the same limiter (`binance_limiter`).

The limiter keeps a fixed delay between requests (`exchange.request_delay`), reads Binance's
X-MBX-USED-WEIGHT-1M header and stays under `exchange.max_weight_share` of the minute's budget,
honours Retry-After on 429, and on 418 (IP ban) stops all REST traffic until the ban ends.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterable
from typing import Any

import aiohttp

from freqfeed import __version__
from freqfeed.config import Config, exchange_symbol
from freqfeed.exchanges.base import ExchangeClock, ExchangeError, UnknownPairsError
from freqfeed.exchanges.binance.wire import market_info, page_size, request_weight
from freqfeed.exchanges.http import RestSession
from freqfeed.ratelimit import WeightLimiter
from freqfeed.schema import Candle, FundingRate
from freqfeed.timeframes import candle_open, timeframe_ms

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0


def candle_from_row(row: list[Any], *, mark: bool = False) -> Candle:
    """A Binance REST kline row as a Candle (mark-price rows carry no volumes)."""
    if mark:
        return Candle(int(row[0]), float(row[1]), float(row[2]), float(row[3]), float(row[4]), 0.0)
    return Candle(int(row[0]), float(row[1]), float(row[2]), float(row[3]), float(row[4]), float(row[5]),
                  float(row[7]), int(row[8]), float(row[9]), float(row[10]))


def binance_limiter(config: Config, clock: ExchangeClock) -> WeightLimiter:
    """Binance's weight budget for the configured market, as the producer and the gateway both keep it."""
    return WeightLimiter(clock, weight_limit=market_info(market_of(config)).weight_limit,
                         share=config.exchange.max_weight_share, exchange="Binance")


def market_of(config: Config) -> str:
    return "futures" if config.futures else "spot"


class BinanceRest(RestSession):
    """The producer's requests: retried until answered (backoff on errors, pauses on 429/418), parsed into
    freqfeed's types. The gateway's forwarding (binance.upstream) builds on the same session, limiter and clock."""

    def __init__(self, config: Config, clock: ExchangeClock | None = None) -> None:
        clock = clock or ExchangeClock()
        # who is asking, host included: two producers (issue 17) are two clients in an exchange's logs
        super().__init__(clock, binance_limiter(config, clock), timeout=config.exchange.timeout,
                         headers={"User-Agent": f"freqfeed-producer/{__version__} ({socket.gethostname()})"})
        self.config = config
        self.futures = config.futures
        self.base = config.exchange.rest_url + ("/fapi/v1" if self.futures else "/api/v3")
        self.max_klines = 1500 if self.futures else 1000
        self.market = market_of(config)
        self._lock = asyncio.Lock()
        self._last_request = 0.0
        self._last_exchange = (0.0, 0.0)  # monotonic send and answer times of the last request

    # -- endpoints ------------------------------------------------------------------------------

    async def sync_time(self) -> int:
        answer = await self._get("time", {})
        self.clock.observe(*self._last_exchange, int(answer["serverTime"]))  # around the HTTP exchange only
        return int(answer["serverTime"])

    async def exchange_info(self) -> dict[str, Any]:
        info: dict[str, Any] = await self._get("exchangeInfo", {})
        for limit in info.get("rateLimits", []):
            if limit.get("rateLimitType") == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
                self.limiter.weight_limit = int(limit["limit"]) // int(limit.get("intervalNum", 1))
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
        candles, _ = await self.klines_and_current(pair, timeframe, start, end, mark=mark, current=False)
        return candles

    async def klines_and_current(self, pair: str, timeframe: str, start: int, end: int, *, mark: bool = False,
                                 current: bool = True) -> tuple[list[Candle], Candle | None]:
        """Closed candles with open time in [start, end], and (with `current`, when `end` reaches the newest
        closed candle) the candle in progress that Binance returns after them, in the same requests."""
        period = timeframe_ms(timeframe)
        now_open = candle_open(self.clock.now(), timeframe)
        last = max(end, now_open) if current and end >= now_open - period else end
        candles: list[Candle] = []
        in_progress: Candle | None = None
        cursor = start
        page = self.page_candles((last - start) // period + 1)
        while cursor <= last:
            count = min(page, (last - cursor) // period + 1)
            params = {"symbol": exchange_symbol(pair), "interval": timeframe, "startTime": cursor,
                      "endTime": cursor + (count - 1) * period + period - 1, "limit": count}
            rows = await self._get("markPriceKlines" if mark else "klines", params)
            # Binance includes the candle in progress; closed means its close time has passed
            # (with 0.2 real seconds to spare for the clock estimate).
            closed_before = self.clock.now() - int(200 * self.clock.rate)
            for row in rows:
                if int(row[6]) < closed_before:
                    if start <= int(row[0]) <= end:
                        candles.append(candle_from_row(row, mark=mark))
                elif current and int(row[0]) > end:
                    in_progress = candle_from_row(row, mark=mark)
            if len(rows) < count:
                break
            cursor += count * period
        return candles, in_progress

    def page_candles(self, candles: int) -> int:
        """Candles per request for a range of `candles`: soonest done within the request spacing and the
        weight budget, then the least weight (wire.page_size)."""
        return page_size(self.market, candles, request_seconds=self.config.exchange.request_delay,
                         weight_per_second=self.limiter.budget / 60 * self.clock.rate)

    async def funding_rates(self, pair: str, start: int, end: int) -> list[FundingRate]:
        rates: list[FundingRate] = []
        cursor = start
        while cursor <= end:
            rows = await self._get("fundingRate", {"symbol": exchange_symbol(pair), "startTime": cursor,
                                                   "endTime": end, "limit": 1000})
            rates.extend(FundingRate(int(r["fundingTime"]), float(r["fundingRate"]),
                                     float(r["markPrice"]) if r.get("markPrice") not in (None, "") else None)
                         for r in rows)
            if len(rows) < 1000:
                break
            cursor = int(rows[-1]["fundingTime"]) + 1
        return rates

    async def next_funding_times(self) -> dict[str, int]:
        """Next funding time per symbol (one request for all symbols)."""
        rows = await self._get("premiumIndex", {})
        return {r["symbol"]: int(r["nextFundingTime"]) for r in rows if int(r.get("nextFundingTime") or 0) > 0}

    # -- transport ------------------------------------------------------------------------------

    async def _get(self, endpoint: str, params: dict[str, Any]) -> Any:
        url = f"{self.base}/{endpoint}"
        weight = request_weight(self.market, endpoint, {k: str(v) for k, v in params.items()})
        backoff = 1.0
        while True:
            async with self._lock:
                await self._wait_turn(weight, endpoint)
                try:
                    status, headers, body = await self._send(url, params)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    reason = str(exc) or type(exc).__name__
                    log.warning("Binance %s: %s; retrying in %.0fs", endpoint, reason, backoff)
                    status = 0
                    headers, body = {}, None
                self.limiter.observe(headers)
            if status == 200:
                return body
            if status in (429, 418):
                message = body.get("msg") if isinstance(body, dict) else ""
                await asyncio.sleep(self.limiter.rejected(status, headers, str(message)))
                continue
            if status == 0 or status >= 500:
                if status:
                    log.warning("Binance %s answered HTTP %d; retrying in %.0fs", endpoint, status, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            code = body.get("code") if isinstance(body, dict) else None
            message = body.get("msg") if isinstance(body, dict) else str(body)[:200]
            raise ExchangeError(status, code, f"{message} ({endpoint} {params})", exchange="Binance")

    async def _send(self, url: str, params: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        sent = time.monotonic()
        async with self.session().get(url, params=params) as response:
            self._last_exchange = (sent, time.monotonic())
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = (await response.text())[:300]
            return response.status, dict(response.headers), body

    async def _wait_turn(self, weight: int, endpoint: str) -> None:
        """Any 429/418 pause, the fixed delay between requests, then the minute's weight budget."""
        paused = self.limiter.paused_for()
        if paused > 0:
            await asyncio.sleep(paused)
        spacing = self.config.exchange.request_delay - (time.monotonic() - self._last_request)
        if spacing > 0:
            await asyncio.sleep(spacing)
        await self.limiter.acquire(weight, endpoint=endpoint)
        self._last_request = time.monotonic()
