"""Hyperliquid's /info over REST: one small aiohttp client behind the shared weight limiter.

- every body is validated with wire.parse_info before it is sent (a bad body is our bug: it fails here with
  Hyperliquid's own 422, without costing weight);
- weight: freqfeed.ratelimit.WeightLimiter with Hyperliquid's 1200 a minute and `share` of it; a request
  is charged its base weight plus the extra weight of the rows it is expected to return (the window
  arithmetic of wire.candle_window / wire.funding_times), so a page never overdraws the minute;
- 429: Hyperliquid documents no Retry-After, so the pause lasts until the exchange's next minute (when
  the per-minute budget refills), as the limiter's Retry-After; 5xx and network errors: backoff, retry;
  other statuses raise HyperliquidError;
- time: Hyperliquid has no time endpoint but `exchangeStatus` (weight 2) answers {"time"}: the
  ExchangeClock (freqfeed.exchanges.base) learns offset and rate from it, so the same code is right against a
  simulator running faster than real time;
- candles: pages backwards from the end over the 5000-candle horizon and stops where the exchange's
  history stops; funding: pages forwards past 500 rows (startTime = last time + 1).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from freqfeed.config import exchange_symbol
from freqfeed.exchanges.base import ExchangeClock, UnknownPairsError
from freqfeed.exchanges.http import RestSession
from freqfeed.exchanges.hyperliquid import wire
from freqfeed.exchanges.hyperliquid.wire import AssetCtx, HyperliquidError, Universe
from freqfeed.ratelimit import LimiterStats, WeightLimiter
from freqfeed.schema import Candle, FundingRate
from freqfeed.timeframes import candle_open

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
CLOSED_MARGIN_MS = 200  # exchange ms past a candle's T before it counts as closed (clock estimate error)
HORIZON_MARGIN_MS = 2_000  # exchange ms the clock may run ahead when judging that a page reached the horizon


def candle_from_row(row: Mapping[str, Any]) -> Candle:
    """A candleSnapshot row / `candle` message as freqfeed's Candle (Hyperliquid has no quote or taker
    volumes: None; `n` is the number of trades)."""
    return Candle(int(row["t"]), float(row["o"]), float(row["h"]), float(row["l"]), float(row["c"]),
                  float(row["v"]), None, int(row["n"]))


def funding_from_row(row: Mapping[str, Any]) -> FundingRate:
    """A fundingHistory row at its hour (the published time has ms jitter), the row's premium and time kept."""
    premium = row.get("premium")
    return FundingRate(wire.funding_hour(int(row["time"])), float(row["fundingRate"]),
                       premium=float(premium) if premium is not None else None, published=int(row["time"]))


@dataclass(frozen=True)
class CandleHistory:
    """What candleSnapshot still has of [start, end]: closed candles oldest first, the one in progress
    (if `end` reached it), and whether the exchange's horizon cut the start (`truncated`: candles before
    `closed[0]` exist on no Hyperliquid server any more)."""

    closed: list[dict[str, Any]]
    in_progress: dict[str, Any] | None
    truncated: bool


class HyperliquidRest(RestSession):
    def __init__(self, base_url: str = wire.MAINNET_URL, *, clock: ExchangeClock | None = None,
                 limiter: WeightLimiter | None = None, share: float = 0.5, timeout: float = 10.0,
                 user_agent: str = "freqfeed") -> None:
        clock = clock or ExchangeClock()
        super().__init__(clock, limiter or WeightLimiter(clock, weight_limit=wire.WEIGHT_LIMIT, share=share,
                                                         exchange="Hyperliquid"),
                         timeout=timeout, headers={"User-Agent": user_agent})
        self.url = base_url.rstrip("/") + wire.INFO_PATH
        self.timeout = timeout
        self.user_agent = user_agent
        self._last_exchange = (0.0, 0.0)  # monotonic send and answer times of the last request

    # -- transport --------------------------------------------------------------------------------

    async def info(self, body: Mapping[str, Any], *, expected_items: int = 0) -> Any:
        """POST /info `body`; waits for the weight it costs (base + `expected_items` rows' extra)."""
        request = wire.parse_info(body)  # raises HyperliquidError 422 for a body Hyperliquid would refuse
        weight = wire.info_weight(request.type, expected_items)
        backoff = 1.0
        while True:
            await self.limiter.acquire(weight, endpoint=request.type)
            # no used-weight header here: the peak is our own count of the exchange minute
            self.stats.peak_used_weight = max(self.stats.peak_used_weight, self.limiter.used_weight)
            try:
                status, text = await self._post(body)
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("Hyperliquid %s: %s; retrying in %.0fs", request.type, str(exc) or type(exc).__name__,
                            backoff)
                status, text = 0, ""
            if status == 200:
                try:
                    return json.loads(text)
                except ValueError:  # a truncated or proxy-made answer: retried like a 5xx
                    log.warning("Hyperliquid %s: an answer that is not JSON (%.100s); retrying in %.0fs",
                                request.type, text, backoff)
                    status = 0
            if status == 429:
                wait = self.clock.real_seconds(60_000 - self.clock.now() % 60_000) + 0.05
                await asyncio.sleep(self.limiter.rejected(429, {"Retry-After": f"{wait:.3f}"}, text[:200]))
                continue
            if status == 0 or status >= 500:
                if status:
                    log.warning("Hyperliquid %s answered HTTP %d; retrying in %.0fs", request.type, status, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            raise HyperliquidError(status, text[:300], f"{request.type} {json.dumps(dict(body))[:200]}")

    async def forward(self, body: Mapping[str, Any]) -> tuple[int, str]:
        """POST /info `body` once, as it is, for the gateway (whose caller has acquired the weight and whose
        client retries): the exchange's status and text; 502 when it cannot be reached. A 429 pauses the
        limiter until the exchange's next minute, as in `info`."""
        try:
            status, text = await self._post(body)
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("Hyperliquid %s (forwarded): %s", body.get("type"), str(exc) or type(exc).__name__)
            return 502, "Bad Gateway"
        if status == 429:
            wait = self.clock.real_seconds(60_000 - self.clock.now() % 60_000) + 0.05
            self.limiter.rejected(429, {"Retry-After": f"{wait:.3f}"}, text[:200])
        return status, text

    async def _post(self, body: Mapping[str, Any]) -> tuple[int, str]:
        sent = time.monotonic()
        async with self.session().post(self.url, json=body) as response:
            text = await response.text()
            self._last_exchange = (sent, time.monotonic())
            return response.status, text

    # -- market data ------------------------------------------------------------------------------

    async def sync_time(self) -> int:
        """The exchange's time from exchangeStatus (weight 2), fed to the clock."""
        answer = await self.info({"type": "exchangeStatus"})
        server = int(answer["time"])
        self.clock.observe(*self._last_exchange, server)
        return server

    async def universe(self) -> tuple[Universe, list[AssetCtx | None]]:
        """metaAndAssetCtxs (weight 20): the perpetuals and their contexts, ctx i for asset i."""
        answer = await self.info({"type": "metaAndAssetCtxs"})
        universe = Universe.from_answer(answer)
        ctxs: list[AssetCtx | None] = []
        for ctx in answer[1] if isinstance(answer, list) and len(answer) > 1 else []:
            try:
                impact = ctx.get("impactPxs")
                ctxs.append(AssetCtx(ctx["funding"], ctx["openInterest"], ctx["prevDayPx"], ctx["dayNtlVlm"],
                                     ctx.get("premium"), ctx["oraclePx"], ctx["markPx"], ctx.get("midPx"),
                                     (impact[0], impact[1]) if impact else None, ctx.get("dayBaseVlm", "0.0")))
            except (KeyError, TypeError, AttributeError):
                ctxs.append(None)
        return universe, ctxs

    async def l2_book(self, coin: str) -> dict[str, Any] | None:
        answer = await self.info({"type": "l2Book", "coin": coin})
        return answer if isinstance(answer, dict) else None

    async def candles(self, coin: str, interval: str, start_ms: int, end_ms: int) -> CandleHistory:
        """Candles opening in [start_ms, end_ms] that Hyperliquid still has, paging backwards from the end
        (one request covers the whole 5000-candle horizon; more only for ranges longer than that)."""
        rows: dict[int, dict[str, Any]] = {}
        page_end = end_ms
        truncated = False
        first_wanted = candle_open(start_ms, interval)
        while page_end >= first_wanted:
            page_start, page_stop = wire.candle_page_back(start_ms, page_end, interval)
            expected = wire.candle_window(page_start, page_stop, self.clock.now(), interval).count
            answer = await self.info(wire.candle_snapshot_body(coin, interval, page_start, page_stop),
                                     expected_items=expected)
            page = [r for r in answer if isinstance(r, dict)] if isinstance(answer, list) else []
            for row in page:
                if first_wanted <= int(row["t"]) <= end_ms:
                    rows[int(row["t"])] = row
            first_row = int(page[0]["t"]) if page else None
            # nothing older exists when the answer started late, or when the page reached back to the horizon
            # (as of our clock less HORIZON_MARGIN_MS: a clock running ahead must not skip the horizon's first one)
            horizon = wire.horizon_first_open(self.clock.now() - HORIZON_MARGIN_MS, interval)
            if wire.horizon_reached(page_start, first_row, interval) or page_start <= horizon:
                truncated = first_row is None or first_row > first_wanted
                break
            page_end = page_start - 1
        now = self.clock.now() - int(CLOSED_MARGIN_MS * self.clock.rate)
        ordered = [rows[t] for t in sorted(rows)]
        # a candle is final once a later one started (as the stream's CandleCloser judges), whatever our clock
        # estimate says; the newest one by its end time
        closed = ordered[:-1] + [r for r in ordered[-1:] if int(r["T"]) < now]
        in_progress = ordered[-1] if ordered and int(ordered[-1]["T"]) >= now else None
        return CandleHistory(closed, in_progress, truncated)

    async def funding(self, coin: str, start_ms: int, end_ms: int | None = None) -> list[dict[str, Any]]:
        """fundingHistory rows in [start_ms, end_ms], oldest first, paging past 500 rows a request."""
        rows: list[dict[str, Any]] = []
        cursor = start_ms
        end = end_ms if end_ms is not None else self.clock.now()
        while cursor <= end:
            expected = len(wire.funding_times(cursor, end))
            page = await self.info(wire.funding_history_body(coin, cursor, end_ms), expected_items=expected)
            page = [r for r in page if isinstance(r, dict)] if isinstance(page, list) else []
            rows.extend(page)
            if len(page) < wire.FUNDING_PAGE:
                break
            cursor = int(page[-1]["time"]) + 1
        return rows


class HyperliquidProducerRest:
    """HyperliquidRest with the methods the producer calls on Binance's REST client (freqfeed.exchanges.
    binance.rest.BinanceRest), pairs in and freqfeed's types out, so the producer can take either:
    sync_time, exchange_info, check_pairs, klines, klines_and_current, page_candles, funding_rates,
    next_funding_times, stats, limiter, weight_limit, close.

    Hyperliquid has no mark-price candles (freqtrade uses 1h futures candles as mark candles there): asking for
    them is an error, so a producer configured for Hyperliquid must not schedule mark series."""

    def __init__(self, rest: HyperliquidRest) -> None:
        self.rest = rest
        self.coins: dict[str, str] = {}  # pair -> coin, filled by check_pairs

    async def __aenter__(self) -> HyperliquidProducerRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def clock(self) -> ExchangeClock:
        return self.rest.clock

    @property
    def stats(self) -> LimiterStats:
        return self.rest.stats

    @property
    def limiter(self) -> WeightLimiter:
        return self.rest.limiter

    @property
    def weight_limit(self) -> int:
        return self.rest.limiter.weight_limit

    async def close(self) -> None:
        await self.rest.close()

    async def sync_time(self) -> int:
        return await self.rest.sync_time()

    async def exchange_info(self) -> dict[str, Any]:
        """The perpetuals (metaAndAssetCtxs): {"universe": wire.Universe, "ctxs": [...]}."""
        universe, ctxs = await self.rest.universe()
        return {"universe": universe, "ctxs": ctxs}

    def check_pairs(self, info: Mapping[str, Any], pairs: Sequence[str]) -> None:
        """Remember each pair's coin (added to those of earlier checks: the producer checks a pair again alone
        when its stream falls silent, and a delisted pair's coin still names its history);
        freqfeed.exchanges.base.UnknownPairsError naming every pair Hyperliquid does not list or lists as
        delisted."""
        universe: Universe = info["universe"]
        try:
            self.coins = {**self.coins, **universe.coins(pairs)}
        except wire.UnknownPairs as exc:
            raise UnknownPairsError(f"{exc} ({self.rest.url})") from None

    def coin(self, pair: str) -> str:
        coin = self.coins.get(pair)
        if coin is None:
            raise UnknownPairsError(f"{pair}: not checked against Hyperliquid's perpetuals (check_pairs first)")
        return coin

    async def klines(self, pair: str, timeframe: str, start: int, end: int, *, mark: bool = False) -> list[Candle]:
        candles, _ = await self.klines_and_current(pair, timeframe, start, end, mark=mark, current=False)
        return candles

    async def klines_and_current(self, pair: str, timeframe: str, start: int, end: int, *, mark: bool = False,
                                 current: bool = True) -> tuple[list[Candle], Candle | None]:
        """Closed candles with open time in [start, end] that Hyperliquid still has (its last 5000), and with
        `current` the candle in progress from the same request."""
        if mark:
            raise ValueError("Hyperliquid has no mark-price candles (freqtrade uses 1h futures candles as mark)")
        if not current and end < wire.horizon_first_open(self.clock.now() - HORIZON_MARGIN_MS, timeframe):
            return [], None  # all before the horizon: gone from every Hyperliquid server, not worth 20 weight
        # without `current`, one candle more: the candle at `end` is known final when its successor has started
        last = max(end, self.clock.now()) if current else end + wire.interval_ms(timeframe)
        history = await self.rest.candles(self.coin(pair), timeframe, start, last)
        candles = [candle_from_row(row) for row in history.closed if start <= int(row["t"]) <= end]
        in_progress = candle_from_row(history.in_progress) if current and history.in_progress else None
        return candles, in_progress

    def page_candles(self, candles: int) -> int:
        """One candleSnapshot holds the whole horizon: the fewest requests are the cheapest (+1 per 60 rows)."""
        return max(1, min(candles, wire.CANDLE_HORIZON))

    async def funding_rates(self, pair: str, start: int, end: int) -> list[FundingRate]:
        """Settled rates at the hours in [start, end] (published a few ms after the hour: asked up to a minute
        later, kept by their hour)."""
        rows = await self.rest.funding(self.coin(pair), start, end + 59_999)
        return [rate for rate in map(funding_from_row, rows) if start <= rate.time <= end]

    async def next_funding_times(self) -> dict[str, int]:
        """Every hour, for every pair (keyed as the producer keys Binance's: BTC/USDC:USDC -> BTCUSDC)."""
        next_hour = candle_open(self.clock.now(), "1h") + wire.FUNDING_INTERVAL_MS
        return {exchange_symbol(pair): next_hour for pair in self.coins}
