"""A deterministic Hyperliquid (perpetuals) on one local port, for tests, benchmarks and the lab.

    python -m freqfeed.exchanges.hyperliquid.simulator --port 8090 --speed 60 --seed 1

Prices come from freqfeed.simulator.market.Market (the Binance simulator's data source: every 1m candle a
pure function of seed, coin and minute, any interval an exact aggregate), registered under Hyperliquid's
coin names; the clock is freqfeed.simulator.clock.SimClock. What requests and answers look like lives in
freqfeed.exchanges.hyperliquid.wire. Served:

  POST /info  meta, metaAndAssetCtxs, allMids, l2Book, candleSnapshot (the most recent 5000 candles per coin
              and interval, the one in progress included), fundingHistory (hourly, at most 500 rows, times
              with ms jitter as Hyperliquid's), exchangeStatus, perpDexs, spotMeta, spotMetaAndAssetCtxs,
              predictedFundings; user types answer empty (this market has no users). Bad bodies: 422 with
              Hyperliquid's text. Weight per IP and exchange minute (20 / 2 / 60, + per 20 or 60 rows);
              over 1200: 429 (no Retry-After: Hyperliquid documents none).
  GET  /ws    text "Websocket connection established.", then subscribe / unsubscribe (acks
              subscriptionResponse, errors on channel "error"), ping -> pong; channels candle (the candle in
              progress, no closed flag; before a new candle starts, the previous one's final state if it was
              not the last sent), l2Book (every 0.5 s when changed), bbo (when changed), activeAssetCtx (1 s),
              allMids (0.5 s). At most 10 connections (the 11th: HTTP 429) and 1000 subscriptions per IP;
              a connection on which nothing was sent for 60 s (--idle-close) is closed.

Coins: majors (BTC, ETH, ...), kPEPE (case-sensitive), MATIC (delisted, keeps its index) and --coins N more
(SIM001...). The truth for tests is `HyperliquidMarket(seed)`: `candle_rows`, `funding_rows`.

Faults (POST /_sim/fault?name=NAME&value=VALUE): drop (abort every websocket), silent=SECONDS (no websocket
message at all), 429=COUNT (the next COUNT /info requests), delist=COIN (from now on: isDelisted, no new
candles, empty book). GET /_sim/requests lists the last /info requests (exchange time, ip, agent, type,
coin, interval, startTime, endTime, rows, weight, status; ?type= selects one type); GET /_sim/stats the
clock, counters, weight per IP and minute, answered requests per type and weight per client (User-Agent:
`by_client`), websocket connections and subscriptions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import sys
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
from aiohttp import WSMsgType, web

from freqfeed.exchanges.hyperliquid import wire
from freqfeed.exchanges.hyperliquid.wire import Asset, AssetCtx, HyperliquidError, Subscription
from freqfeed.simulator.clock import SimClock
from freqfeed.simulator.market import Candles, Instrument, Market
from freqfeed.simulator.serving import SimServer, run_until_signalled
from freqfeed.timeframes import candle_open

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
REQUEST_LOG = 20_000
MAX_CLIENTS = 1000  # User-Agents counted apart in /_sim/stats by_client; beyond: "(other)"
CHUNK_MINUTES = 200_000  # 1m candles computed at once (a 5000-row 1d answer is 7.2 million minutes)
PUBLISH_EVERY = 0.05  # real seconds between publisher rounds
PARTIAL_EVERY = 0.25  # real seconds between updates of a candle in progress (Hyperliquid: on each trade)
BOOK_EVERY = 0.5  # l2Book: "pushed on a block at least 0.5 s after the previous"
CTX_EVERY = 1.0
MIDS_EVERY = 0.5
DELISTED_BEFORE_MS = 2 * 86_400_000  # MATIC was delisted two days before the simulator starts
FUNDING_JITTER_MS = 250  # published funding times are a few ms to a few hundred ms after the hour

MAJORS = ("BTC", "ETH", "ATOM", "MATIC", "DYDX", "SOL", "AVAX", "BNB", "APE", "OP", "LTC", "ARB", "DOGE", "INJ",
          "SUI", "kPEPE", "XRP", "LINK", "NEAR", "TRX")
DELISTED = ("MATIC",)
_PRICES = {"MATIC": 0.4, "DYDX": 0.6, "APE": 0.7, "kPEPE": 0.012}


def _sz_decimals(price: float) -> int:
    return max(0, min(5, math.floor(math.log10(price)) + 1))


def _price_decimals(price: float, sz_decimals: int) -> int:
    """5 significant figures and at most 6 - szDecimals decimals (tick and lot size)."""
    return max(0, min(6 - sz_decimals, 5 - (math.floor(math.log10(price)) + 1)))


class HyperliquidMarket:
    """Hyperliquid's perpetuals over the deterministic Market: coins, candles, funding, books, contexts."""

    def __init__(self, seed: int = 1, extra_coins: int = 0, start_ms: int | None = None) -> None:
        self.seed = seed
        self.market = Market(seed)
        names = list(MAJORS) + [f"SIM{i:03d}" for i in range(1, extra_coins + 1)]
        self.assets: list[Asset] = []
        for name in names:
            known = self.market.instruments.get(f"{name}USDT") or self.market.instruments.get(f"{name.upper()}USDT")
            price = _PRICES.get(name) or (known.base_price if known else 1.0)
            sz = _sz_decimals(price)
            inst = Instrument(name, name, wire.QUOTE, _price_decimals(price, sz), sz, float(price))
            self.market.instruments[name] = inst  # Market keys candles, books and salts by this name
            self.assets.append(Asset(name, sz, 50 if price > 1000 else 20, delisted=name in DELISTED))
        start = int(time.time() * 1000) if start_ms is None else start_ms
        self.delisted_at: dict[str, int] = {name: start - DELISTED_BEFORE_MS for name in DELISTED}

    # -- names ----------------------------------------------------------------------------------

    def instrument(self, coin: str) -> Instrument | None:
        inst = self.market.instruments.get(coin)
        return inst if inst is not None and inst.quote == wire.QUOTE else None

    def delist(self, coin: str, at_ms: int) -> None:
        index = next((i for i, a in enumerate(self.assets) if a.name == coin), None)
        if index is None:
            raise ValueError(f"unknown coin {coin!r}")
        asset = self.assets[index]
        self.assets[index] = Asset(asset.name, asset.sz_decimals, asset.max_leverage, True, asset.only_isolated)
        self.delisted_at.setdefault(coin, at_ms)

    def trading_until(self, coin: str, now_ms: int) -> int:
        """The exchange time up to which `coin` traded: now, or just before it was delisted."""
        return min(now_ms, self.delisted_at.get(coin, now_ms + 1) - 1)

    # -- candles --------------------------------------------------------------------------------

    def _candles(self, coin: str, interval: str, first_open: int, count: int) -> Candles:
        per = wire.interval_ms(interval) // MINUTE_MS
        step = max(1, CHUNK_MINUTES // per)
        parts = [self.market.candles(coin, interval, first_open + i * per * MINUTE_MS, min(step, count - i))
                 for i in range(0, count, step)] or [self.market.candles(coin, interval, first_open, 0)]
        return Candles(*(np.concatenate([getattr(p, f) for p in parts])
                         for f in ("open_time", "open", "high", "low", "close", "volume", "trades")))

    def candle_rows(self, coin: str, interval: str, start_ms: int, end_ms: int, now_ms: int) -> list[dict[str, Any]]:
        """candleSnapshot's answer at `now_ms`; [] for an unknown coin (unconfirmed: ccxt treats any
        non-list as empty)."""
        inst = self.instrument(coin)
        if inst is None:
            return []
        until = self.trading_until(coin, now_ms)
        window = wire.candle_window(start_ms, end_ms, until, interval)
        if window.count == 0:
            return []
        current = candle_open(until, interval)
        closed = window.count - (1 if window.last_open == current else 0)
        candles = self._candles(coin, interval, window.first_open, closed)
        rows = self._rows(inst, interval, candles)
        if closed < window.count:
            rows += self._rows(inst, interval, self.market.partial_candle(coin, interval, until))
        return rows

    def _rows(self, inst: Instrument, interval: str, candles: Candles) -> list[dict[str, Any]]:
        price, size = inst.price_decimals, inst.quantity_decimals
        return [wire.candle_row(inst.symbol, interval, int(t), wire.decimal_string(o, price),
                                wire.decimal_string(c, price), wire.decimal_string(h, price),
                                wire.decimal_string(lo, price), wire.decimal_string(v, size), int(n))
                for t, o, h, lo, c, v, n in zip(candles.open_time.tolist(), candles.open.tolist(),
                                                candles.high.tolist(), candles.low.tolist(), candles.close.tolist(),
                                                candles.volume.tolist(), candles.trades.tolist(), strict=True)]

    def current_candle(self, coin: str, interval: str, now_ms: int) -> dict[str, Any] | None:
        """The candle in progress at `now_ms` as the `candle` channel sends it (None once delisted)."""
        inst = self.instrument(coin)
        if inst is None or self.trading_until(coin, now_ms) < now_ms:
            return None
        return self._rows(inst, interval, self.market.partial_candle(coin, interval, now_ms))[0]

    def final_candle(self, coin: str, interval: str, open_ms: int) -> dict[str, Any] | None:
        inst = self.instrument(coin)
        if inst is None:
            return None
        return self._rows(inst, interval, self._candles(coin, interval, open_ms, 1))[0]

    # -- funding --------------------------------------------------------------------------------

    def _funding_parts(self, coin: str, hours: np.ndarray) -> tuple[list[str], list[str]]:
        # Market's rates are per 8 h in 1e-8 and one per 8 h bucket: hours x 8 gives one per hour; /8 hourly
        rates = self.market.funding_rates(coin, hours * 8)
        premiums = self.market.funding_rates(f"{coin}|premium", hours * 8)
        scale = Decimal(8 * 10**8)
        return ([_plain(Decimal(int(r)) / scale) for r in rates.tolist()],
                [_plain(Decimal(int(p)) / scale) for p in premiums.tolist()])

    def funding_time(self, coin: str, hour_ms: int) -> int:
        jitter = self.market.funding_rates(f"{coin}|jitter", np.array([hour_ms * 8]))[0]
        return hour_ms + int(jitter) % FUNDING_JITTER_MS

    def funding_rows(self, coin: str, start_ms: int, end_ms: int | None, now_ms: int) -> list[dict[str, Any]]:
        """fundingHistory's answer: settled hours whose (jittered) time lies in [startTime, endTime], oldest
        first, at most 500."""
        if self.instrument(coin) is None:
            return []
        until = self.trading_until(coin, now_ms)
        end = until if end_ms is None else min(end_ms, until)
        hours = [h for h in wire.funding_times(max(0, start_ms - HOUR_MS + 1), end, limit=wire.FUNDING_PAGE + 1)
                 if start_ms <= self.funding_time(coin, h) <= end][:wire.FUNDING_PAGE]
        if not hours:
            return []
        rates, premiums = self._funding_parts(coin, np.array(hours, dtype=np.int64))
        return [wire.funding_row(coin, rate, premium, self.funding_time(coin, hour))
                for hour, rate, premium in zip(hours, rates, premiums, strict=True)]

    # -- books, mids, contexts ------------------------------------------------------------------

    def book(self, coin: str, now_ms: int) -> dict[str, Any] | None:
        """l2Book: 20 levels per side; None for an unknown coin (unconfirmed), empty sides once delisted."""
        inst = self.instrument(coin)
        if inst is None:
            return None
        if self.trading_until(coin, now_ms) < now_ms:
            return wire.l2_book(coin, now_ms, [], [])
        book = self.market.book(coin, now_ms, wire.L2_LEVELS)

        def side(rows: np.ndarray) -> list[dict[str, Any]]:
            return [wire.level(wire.decimal_string(px, inst.price_decimals),
                               wire.decimal_string(sz, inst.quantity_decimals), 1 + sz % 5)
                    for px, sz in rows.tolist()]

        return wire.l2_book(coin, book.transaction_ms, side(book.bids), side(book.asks))

    def top(self, coin: str, now_ms: int) -> tuple[int, int, int] | None:
        """(best bid, best ask, price decimals) in ticks; None when not trading."""
        inst = self.instrument(coin)
        if inst is None or self.trading_until(coin, now_ms) < now_ms:
            return None
        book = self.market.book(coin, now_ms, 1)
        return int(book.bids[0][0]), int(book.asks[0][0]), inst.price_decimals

    def mid(self, coin: str, now_ms: int) -> str | None:
        top = self.top(coin, now_ms)
        if top is None:
            return None
        bid, ask, decimals = top
        return wire.decimal_string((bid + ask) * 5, decimals + 1)  # (bid + ask) / 2, one decimal more

    def mids(self, now_ms: int) -> dict[str, str]:
        return {a.name: mid for a in self.assets if (mid := self.mid(a.name, now_ms)) is not None}

    def ctx(self, coin: str, now_ms: int) -> AssetCtx:
        """The coin's context: mark from Market's mark candles, oracle = the last trade's close, funding the
        running hour's rate (that of the next hour)."""
        inst = self.market.instruments[coin]
        until = self.trading_until(coin, now_ms)
        price, size = inst.price_decimals, inst.quantity_decimals
        mark = self.market.partial_candle(coin, "1m", until, mark=True).close[0]
        last = self.market.partial_candle(coin, "1m", until)
        day = self.market.candles(coin, "1h", candle_open(until, "1h") - 23 * HOUR_MS, 24)
        prev = self.market.candles(coin, "1m", candle_open(until - 86_400_000, "1m"), 1).close[0]
        base_volume = int(day.volume.sum())
        notional = Decimal(int((day.volume * day.close).sum())).scaleb(-(price + size))
        next_hour = np.array([candle_open(until, "1h") + HOUR_MS], dtype=np.int64)
        rates, premiums = self._funding_parts(coin, next_hour)
        top = self.top(coin, now_ms)
        impact = (wire.decimal_string(top[0], price), wire.decimal_string(top[1], price)) if top else None
        return AssetCtx(rates[0], wire.decimal_string(base_volume * 3, size), wire.decimal_string(prev, price),
                        _plain(notional.quantize(Decimal("0.0001"))), premiums[0] if top else None,
                        wire.decimal_string(int(last.close[0]), price), wire.decimal_string(int(mark), price),
                        self.mid(coin, now_ms), impact, wire.decimal_string(base_volume, size))

    def ctxs(self, now_ms: int) -> list[AssetCtx]:
        return [self.ctx(a.name, now_ms) for a in self.assets]


def _plain(value: Decimal) -> str:
    """A Decimal as Hyperliquid prints rates: '0.0000125', '-0.0000034', '0.0'."""
    text = f"{value.normalize():f}"
    return text if "." in text else text + ".0"


# -- the server -------------------------------------------------------------------------------------


class HyperliquidSource(Protocol):
    """What the /info and /ws server needs from whatever produces the data: HyperliquidMarket here; the
    gateway can serve the same wire from InfluxDB and live subscriptions behind this interface."""

    assets: list[Asset]

    def instrument(self, coin: str) -> Instrument | None: ...

    def candle_rows(self, coin: str, interval: str, start_ms: int, end_ms: int,
                    now_ms: int) -> list[dict[str, Any]]: ...

    def current_candle(self, coin: str, interval: str, now_ms: int) -> dict[str, Any] | None: ...

    def final_candle(self, coin: str, interval: str, open_ms: int) -> dict[str, Any] | None: ...

    def funding_rows(self, coin: str, start_ms: int, end_ms: int | None, now_ms: int) -> list[dict[str, Any]]: ...

    def book(self, coin: str, now_ms: int) -> dict[str, Any] | None: ...

    def mids(self, now_ms: int) -> dict[str, str]: ...

    def ctx(self, coin: str, now_ms: int) -> AssetCtx: ...

    def delist(self, coin: str, at_ms: int) -> None: ...


@dataclass(eq=False)
class WsConnection:
    ws: web.WebSocketResponse
    ip: str
    transport: Any
    subscriptions: dict[tuple[Any, ...], Subscription] = field(default_factory=dict)
    last_sent: float = field(default_factory=time.monotonic)


class HyperliquidSimulator(SimServer):
    name = "hyperliquid simulator"

    def __init__(self, market: HyperliquidSource | None = None, clock: SimClock | None = None, *, seed: int = 1,
                 idle_close_s: float = wire.WS_IDLE_CLOSE_S, weight_limit: int = wire.WEIGHT_LIMIT) -> None:
        self.clock = clock or SimClock()
        self.market: HyperliquidSource = market or HyperliquidMarket(seed, start_ms=self.clock.start_ms)
        self.idle_close_s = idle_close_s
        self.weight_limit = weight_limit
        self.connections: set[WsConnection] = set()
        self.stats: Counter[str] = Counter()
        self.weight: defaultdict[str, dict[int, int]] = defaultdict(dict)  # ip -> exchange minute -> weight
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG)
        # User-Agent -> {"requests": {type: count}, "weight": n}: what each client cost (at most MAX_CLIENTS)
        self.by_client: dict[str, dict[str, Any]] = {}
        self.fail_429 = 0
        self.silent_until = 0.0
        self._sent: dict[tuple[Any, ...], Any] = {}  # (subscription key) -> what was last published
        self._due: dict[tuple[Any, ...], float] = {}
        self._minute: dict[tuple[Any, ...], int] = {}  # candle subscription -> exchange minute last computed
        self._ctx_cache: tuple[int, dict[str, AssetCtx]] = (-1, {})
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self.host, self.port = "127.0.0.1", 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(wire.INFO_PATH, self.info)
        app.router.add_get(wire.WS_PATH, self.websocket)
        app.router.add_post("/_sim/fault", self.fault_endpoint)
        app.router.add_get("/_sim/requests", self.requests_endpoint)
        app.router.add_get("/_sim/stats", self.stats_endpoint)
        return app

    # -- REST -------------------------------------------------------------------------------------

    def _charge(self, ip: str, weight: int, now: int, *, check: bool) -> bool:
        """Count `weight` for `ip` in the exchange minute of `now`; False (and nothing counted) when `check`
        and it would go over the limit."""
        minute = now // MINUTE_MS
        per_minute = self.weight[ip]
        used = per_minute.get(minute, 0)
        if check and used + weight > self.weight_limit:
            return False
        per_minute[minute] = used + weight
        for old in [m for m in per_minute if m < minute - 60]:
            del per_minute[old]
        return True

    async def info(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        ip = request.remote or "?"
        entry: dict[str, Any] = {"t": now, "ip": ip, "agent": request.headers.get("User-Agent", "(none)")}
        self.request_log.append(entry)
        self.stats["info requests"] += 1
        try:
            try:
                body = json.loads(await request.text())
            except ValueError as exc:
                raise wire.not_json(str(exc)) from None
            parsed = wire.parse_info(body)
            entry.update({"type": parsed.type, "coin": parsed.coin, "interval": parsed.interval,
                          "startTime": parsed.start_ms, "endTime": parsed.end_ms})
            if self.fail_429 > 0:
                self.fail_429 -= 1
                raise wire.rate_limited()
            base = wire.base_weight(parsed.type)
            if not self._charge(ip, base, now, check=True):
                raise wire.rate_limited()
            answer, rows = self._answer(parsed, now)
            extra = wire.extra_weight(parsed.type, rows)
            self._charge(ip, extra, now, check=False)
            entry.update({"rows": rows, "weight": base + extra, "status": 200})
            self._count_client(entry["agent"], parsed.type, base + extra)
            self.stats[f"info {parsed.type}"] += 1
            return web.Response(text=json.dumps(answer, separators=(",", ":")), content_type="application/json")
        except HyperliquidError as exc:
            entry["status"] = exc.status
            self.stats[f"info {exc.status}"] += 1
            return web.Response(status=exc.status, text=exc.body, content_type="text/plain")

    def _count_client(self, agent: str, info_type: str, weight: int) -> None:
        if agent not in self.by_client and len(self.by_client) >= MAX_CLIENTS:
            agent = "(other)"
        client = self.by_client.setdefault(agent, {"requests": {}, "weight": 0})
        client["requests"][info_type] = client["requests"].get(info_type, 0) + 1
        client["weight"] += weight

    def _answer(self, req: wire.InfoRequest, now: int) -> tuple[Any, int]:  # noqa: PLR0911 - one per type
        market = self.market
        if req.type == "candleSnapshot":
            assert req.coin is not None and req.interval is not None and req.start_ms is not None
            if req.interval not in wire.GRID_INTERVALS:
                return [], 0  # 1M: not simulated
            rows = market.candle_rows(req.coin, req.interval, req.start_ms,
                                      now if req.end_ms is None else req.end_ms, now)
            return rows, len(rows)
        if req.type == "fundingHistory":
            assert req.coin is not None and req.start_ms is not None
            funding = market.funding_rows(req.coin, req.start_ms, req.end_ms, now)
            return funding, len(funding)
        if req.type == "l2Book":
            assert req.coin is not None
            return market.book(req.coin, now), 0
        if req.type == "meta":
            return wire.meta(market.assets), 0
        if req.type == "metaAndAssetCtxs":
            ctxs = self._ctxs(now)
            return wire.meta_and_asset_ctxs(market.assets, [ctxs[a.name] for a in market.assets]), 0
        if req.type == "allMids":
            return market.mids(now), 0
        if req.type == "exchangeStatus":
            return {"specialStatuses": None, "time": now}, 0
        if req.type == "perpDexs":
            return [None], 0
        if req.type == "spotMeta":
            return _SPOT_META, 0
        if req.type == "spotMetaAndAssetCtxs":
            return [_SPOT_META, []], 0
        if req.type == "predictedFundings":
            ctxs = self._ctxs(now)
            next_hour = candle_open(now, "1h") + HOUR_MS
            return [[a.name, [["HlPerp", {"fundingRate": ctxs[a.name].funding, "nextFundingTime": next_hour,
                                          "fundingIntervalHours": 1}]]] for a in market.assets if not a.delisted], 0
        if req.type == "clearinghouseState":
            zero = {"accountValue": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "0.0", "totalMarginUsed": "0.0"}
            return {"marginSummary": zero, "crossMarginSummary": zero, "crossMaintenanceMarginUsed": "0.0",
                    "withdrawable": "0.0", "assetPositions": [], "time": now}, 0
        return [], 0  # every other user type: this market has no users

    def _ctxs(self, now: int) -> dict[str, AssetCtx]:
        second = now // 1000
        if self._ctx_cache[0] != second:
            self._ctx_cache = (second, {a.name: self.market.ctx(a.name, now) for a in self.market.assets})
        return self._ctx_cache[1]

    # -- websocket --------------------------------------------------------------------------------

    def _ip_subscriptions(self, ip: str) -> int:
        return sum(len(c.subscriptions) for c in self.connections if c.ip == ip)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        ip = request.remote or "?"
        if sum(1 for c in self.connections if c.ip == ip) >= wire.MAX_WS_CONNECTIONS:
            self.stats["ws refused"] += 1
            return web.Response(status=429, text="Too many connections")  # unconfirmed
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = WsConnection(ws, ip, request.transport)
        self.connections.add(conn)
        self.stats["ws connections"] += 1
        try:
            await self._send_text(conn, wire.WS_WELCOME)
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                await self._on_message(conn, message.data)
        finally:
            self.connections.discard(conn)
        return ws

    async def _on_message(self, conn: WsConnection, text: str) -> None:  # noqa: PLR0911 - one per outcome
        try:
            message = json.loads(text)
        except ValueError:
            await self._send(conn, wire.ws_error(f"Invalid JSON: {text[:100]}"))
            return
        method = message.get("method") if isinstance(message, dict) else None
        if method == "ping":
            await self._send(conn, wire.PONG)
            return
        if method not in ("subscribe", "unsubscribe"):
            await self._send(conn, wire.ws_error(f"Unknown method: {text[:100]}"))
            return
        try:
            sub = wire.parse_subscription(message.get("subscription"))
        except wire.SubscriptionError as exc:
            await self._send(conn, wire.ws_error(str(exc)))
            return
        key = _key(sub)
        if method == "subscribe":
            if key in conn.subscriptions:
                await self._send(conn, wire.ws_error(f"Already subscribed: {json.dumps(sub.as_json())}"))
                return
            if self._ip_subscriptions(conn.ip) >= wire.MAX_WS_SUBSCRIPTIONS:
                await self._send(conn, wire.ws_error("Cannot track more than 1000 total websocket subscriptions"))
                return
            conn.subscriptions[key] = sub
            await self._send(conn, wire.subscription_ack(method, sub))
            await self._initial(conn, sub)
        else:
            if conn.subscriptions.pop(key, None) is None:
                await self._send(conn, wire.ws_error(f"Already unsubscribed: {json.dumps(sub.as_json())}"))
                return
            await self._send(conn, wire.subscription_ack(method, sub))

    async def _initial(self, conn: WsConnection, sub: Subscription) -> None:
        """What a new subscriber gets at once: the candle in progress, the book (unconfirmed for Hyperliquid:
        a client must not rely on it, and freqfeed's does not)."""
        now = self.clock.now()
        if sub.type == "candle" and sub.coin and sub.interval in wire.GRID_INTERVALS:
            assert sub.interval is not None
            row = self.market.current_candle(sub.coin, sub.interval, now)
            if row is not None:
                await self._send(conn, wire.channel_message("candle", row))
        elif sub.type == "l2Book" and sub.coin:
            book = self.market.book(sub.coin, now)
            if book is not None:
                await self._send(conn, wire.channel_message("l2Book", book))

    async def _send(self, conn: WsConnection, message: Any) -> None:
        await self._send_text(conn, json.dumps(message, separators=(",", ":")))

    async def _send_text(self, conn: WsConnection, text: str) -> None:
        if conn.ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.send_str(text)
            conn.last_sent = time.monotonic()
            self.stats["ws messages"] += 1

    async def _publisher(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_EVERY)
            try:
                await self._publish_round()
            except Exception:  # a bug here must not stop every stream silently
                log.exception("hyperliquid simulator: publishing failed")

    async def _publish_round(self) -> None:
        real = time.monotonic()
        if real < self.silent_until:
            return
        for conn in list(self.connections):  # the idle close
            if real - conn.last_sent > self.idle_close_s and not conn.ws.closed:
                self.stats["ws idle closes"] += 1
                await conn.ws.close()
        now = self.clock.now()
        by_sub: defaultdict[tuple[Any, ...], list[WsConnection]] = defaultdict(list)
        subs: dict[tuple[Any, ...], Subscription] = {}
        for conn in self.connections:
            for key, sub in conn.subscriptions.items():
                by_sub[key].append(conn)
                subs[key] = sub
        for key, conns in by_sub.items():
            for message in self._messages(subs[key], key, now, real):
                payload = json.dumps(message, separators=(",", ":"))
                for conn in conns:
                    await self._send_text(conn, payload)
        for key in [k for k in {*self._sent, *self._due} if k not in by_sub]:  # bounded by live subscriptions
            self._sent.pop(key, None)
            self._due.pop(key, None)
            self._minute.pop(key, None)

    def _every(self, key: tuple[Any, ...], seconds: float, real: float) -> bool:
        if real < self._due.get(key, 0.0):
            return False
        self._due[key] = real + seconds
        return True

    def _messages(  # noqa: PLR0911 - one return per channel
            self, sub: Subscription, key: tuple[Any, ...], now: int, real: float) -> list[dict[str, Any]]:
        market, coin = self.market, sub.coin or ""
        if sub.type == "candle" and sub.interval in wire.GRID_INTERVALS:
            return self._candle_messages(coin, str(sub.interval), key, now, real)
        if sub.type == "l2Book" and self._every(key, BOOK_EVERY, real):
            book = market.book(coin, now)
            if book is None or self._sent.get(key) == book["time"]:
                return []
            self._sent[key] = book["time"]
            return [wire.channel_message("l2Book", book)]
        if sub.type == "bbo":
            book = market.book(coin, now)
            if book is None:
                return []
            bids, asks = book["levels"]
            top = (bids[0] if bids else None, asks[0] if asks else None)
            if self._sent.get(key) == top:
                return []
            self._sent[key] = top
            return [wire.channel_message("bbo", wire.bbo(coin, book["time"], *top))]
        if sub.type == "activeAssetCtx" and market.instrument(coin) and self._every(key, CTX_EVERY, real):
            return [wire.channel_message("activeAssetCtx", wire.active_asset_ctx(coin, self._ctxs(now)[coin]))]
        if sub.type == "allMids" and self._every(key, MIDS_EVERY, real):
            return [wire.channel_message("allMids", wire.all_mids(market.mids(now)))]
        return []

    def _candle_messages(self, coin: str, interval: str, key: tuple[Any, ...], now: int,
                         real: float) -> list[dict[str, Any]]:
        """The candle in progress; when a new one has started, first the final state of each earlier one the
        subscriber has not seen final (Hyperliquid's last update of a candle is its last trade)."""
        last = self._sent.get(key)
        minute = now // MINUTE_MS
        if last is not None and self._minute.get(key) == minute:
            return []  # the candle in progress is a function of the minute: nothing new to send
        row = self.market.current_candle(coin, interval, now)
        if row is None:
            return []
        self._minute[key] = minute
        messages: list[dict[str, Any]] = []
        if last is not None and last["t"] < row["t"]:
            period = wire.interval_ms(interval)
            for open_ms in range(last["t"], row["t"], period)[-3:]:  # at most a few: a fast clock skips more
                final = self.market.final_candle(coin, interval, open_ms)
                if final is not None and final != last:
                    messages.append(wire.channel_message("candle", final))
        elif last == row or not self._every(key, PARTIAL_EVERY, real):
            return []
        self._sent[key] = row
        messages.append(wire.channel_message("candle", row))
        return messages

    # -- test endpoints and faults -------------------------------------------------------------------

    async def apply_fault(self, name: str, value: str | None) -> str:
        if name == "drop":
            count = len(self.connections)
            for conn in list(self.connections):
                if conn.transport is not None:
                    conn.transport.abort()
            self.stats["fault drop"] += 1
            return f"dropped {count} websocket connections"
        if name == "silent":
            seconds = float(value or 30)
            self.silent_until = time.monotonic() + seconds
            return f"silent for {seconds:g}s"
        if name == "429":
            self.fail_429 = int(float(value or 10))
            return f"answering the next {self.fail_429} /info requests with 429"
        if name == "delist":
            if not value:
                raise ValueError("delist needs value=COIN")
            self.market.delist(value, self.clock.now())
            self._ctx_cache = (-1, {})
            return f"{value} delisted"
        raise ValueError(f"unknown fault {name!r} (drop, silent, 429, delist)")

    async def fault_endpoint(self, request: web.Request) -> web.Response:
        try:
            result = await self.apply_fault(request.query.get("name", ""), request.query.get("value"))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        log.info("hyperliquid simulator fault: %s", result)
        return web.json_response({"ok": True, "result": result})

    async def requests_endpoint(self, request: web.Request) -> web.Response:
        kind = request.query.get("type")
        return web.json_response([r for r in self.request_log if kind is None or r.get("type") == kind])

    async def stats_endpoint(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats_snapshot())

    def stats_snapshot(self) -> dict[str, Any]:
        """The clock, counters, weight per IP and minute, websocket connections and subscriptions."""
        return {
            "now": self.clock.now(), "speed": self.clock.speed, "counters": dict(self.stats),
            "weight_by_minute": {ip: {str(m): w for m, w in sorted(per.items())} for ip, per in self.weight.items()},
            "peak_weight_per_minute": {ip: max(per.values(), default=0) for ip, per in self.weight.items()},
            "by_client": self.by_client,
            "ws_connections": len(self.connections),
            "ws_subscriptions": sum(len(c.subscriptions) for c in self.connections)}


_SPOT_META = {"tokens": [{"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
                          "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True, "evmContract": None,
                          "fullName": None}], "universe": []}


def _key(sub: Subscription) -> tuple[Any, ...]:
    return (sub.type, sub.coin, sub.interval, sub.n_sig_figs, sub.mantissa)


# -- entry point ------------------------------------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    start = args.start
    if start is not None and args.origin is not None:  # the clock read --start at wall time --origin: catch up
        start += int((time.time() * 1000 - args.origin) * args.speed)
    clock = SimClock(start, args.speed)
    market_start = args.start if args.start is not None else clock.start_ms
    simulator = HyperliquidSimulator(HyperliquidMarket(args.seed, args.coins, market_start), clock,
                                     idle_close_s=args.idle_close)
    await simulator.start(args.host, args.port)
    for fault in args.fault:
        name, _, value = fault.partition("=")
        log.info("fault at start-up: %s", await simulator.apply_fault(name, value or None))
    await run_until_signalled(simulator)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m freqfeed.exchanges.hyperliquid.simulator",
                                     description="A deterministic Hyperliquid perpetuals exchange on one port.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--speed", type=float, default=1.0, help="exchange seconds per real second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=None, help="exchange time at start-up, epoch ms (default now)")
    parser.add_argument("--origin", type=int, default=None,
                        help="wall time (epoch ms) at which the clock read --start (default: when it starts): at "
                             "--speed 1 with --start = --origin, the exchange clock is the wall clock")
    parser.add_argument("--coins", type=int, default=0, help="extra coins SIM001... besides the majors")
    parser.add_argument("--idle-close", type=float, default=wire.WS_IDLE_CLOSE_S,
                        help="real seconds without a message sent before a websocket is closed")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME[=VALUE]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.speed <= 0 or args.coins < 0 or args.idle_close <= 0:
        parser.error("--speed and --idle-close must be positive, --coins at least 0")
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", args.host, args.port, exc.strerror or exc)
        return 1
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
