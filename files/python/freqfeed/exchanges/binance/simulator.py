"""`freqfeed simulate`: a Binance-compatible exchange on one local port, for tests, benchmarks and the lab.

Server plumbing only: what Binance's requests, answers, errors, weights and streams look like lives in
freqfeed.exchanges.binance.wire (shared with the gateway); prices and books come from a DataSource (the
deterministic Market by default), so a later source can serve real data through the same server.

REST, with Binance's parameters, JSON shapes, request weights, X-MBX-USED-WEIGHT-1M header, 429 with
Retry-After when the minute's weight is spent, 418 bans for clients that keep going, error codes:
  futures /fapi/v1: ping, time, exchangeInfo, klines, markPriceKlines, fundingRate, premiumIndex, depth,
                    ticker/bookTicker, ticker/24hr, ticker/price (and /fapi/v2/ticker/price)
  spot /api/v3:     ping, time, exchangeInfo, klines, depth, ticker/bookTicker, ticker/24hr, ticker/price
The order book is the DataSource's book of the answer's moment: futures depth carries it in E/T.

Websocket: combined streams (`/stream?streams=a/b`), raw streams (`/ws/<name>`) and live SUBSCRIBE;
each route delivers what Binance's does (wire.route_delivers) and accepts the rest silently:
  /market/...  USD-M futures routed base: `<s>@kline_<i>`, `<s>@markPrice`, `<s>@markPrice@1s`
  /public/...  futures public route: `<s>@depth<5|10|20>[@100ms|@500ms]` (250 ms without a speed),
               `<s>@bookTicker`, `!bookTicker` (every 5 s)
  /...         the bare futures base: delivers only what /public delivers (as Binance since 2026-04-23)
  /spot/...    spot streams: klines, `<s>@depth<N>[@100ms]` (1000 ms without), `<s>@bookTicker`
Other names (trades, diff depth, ...) are acknowledged and carry nothing. Every depth and book-ticker
event is the book at its own E (spot events, which have no E: at lastUpdateId / u x 100 ms).
Per connection, as Binance: more streams than allowed (200 futures, 1024 spot) -> error frame and
close; more incoming messages than allowed (10 per second futures, 5 spot; pings and pongs count)
-> disconnected (close code 1008).

Fault switches (CLI `--fault NAME[=VALUE]` at start-up, or POST /_sim/fault?name=NAME&value=VALUE):
  drop                 abort every websocket connection now
  refuse=SECONDS       refuse all TCP connections (REST and websocket) for that long
  429=COUNT            answer the next COUNT REST requests with 429 + Retry-After
  ban=SECONDS          answer every REST request with 418 + Retry-After for that long
  malformed=COUNT      send COUNT malformed frames on every open websocket connection
  silent=SECONDS       keep connections open but deliver no stream event at all for that long
  unlimited=SECONDS    benchmarks: no weight limit (no 429, no ban) for that long
  firehose=SECONDS     load test: replay historical closed klines as fast as each client reads them
GET /_sim/stats reports the clock, requests, weight per minute, websocket counters and, per
User-Agent, requests per path and weight (`by_client`). GET /_sim/requests lists the last REST requests
(REQUEST_LOG of them: exchange time, User-Agent, path, query), what a test counts when it must know which
candles a client asked for (`?agent=` selects one User-Agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections import Counter, defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from freqfeed.exchanges.binance import wire
from freqfeed.exchanges.binance.wire import BinanceError, Stream
from freqfeed.simulator.clock import SimClock
from freqfeed.simulator.market import Book, Candles, Instrument, Market
from freqfeed.simulator.serving import SimServer, run_until_signalled
from freqfeed.timeframes import BINANCE_TIMEFRAMES, last_closed_open, timeframe_ms

log = logging.getLogger(__name__)

BAN_AFTER_429S = 10  # requests sent while limited before the IP is banned
BAN_SECONDS = 120
PARTIAL_KLINE_EVERY = 0.5  # real seconds between in-progress kline updates (Binance: 250 ms)
BOOK_TICKER_EVERY = 0.1  # real seconds: "real-time" book tickers, at most as often as the book changes at 1x
PUBLISH_EVERY = 0.025  # real seconds between publisher rounds
PUBLISHED_BOOK_LEVELS = max(wire.PARTIAL_DEPTH_LEVELS)
FUNDING_LOOKBACK_MS = 1000 * 8 * 3_600_000  # no startTime: the newest of the last 1000 settlements
DAY_MS = 86_400_000
MINUTE_MS = 60_000
REQUEST_LOG = 20_000


class DataSource(Protocol):
    """What the wire server needs from whatever produces the prices."""

    instruments: dict[str, Instrument]

    def candles(self, symbol: str, timeframe: str, first_open: int, count: int, *, mark: bool = False) -> Candles:
        ...

    def partial_candle(self, symbol: str, timeframe: str, now_ms: int, *, mark: bool = False) -> Candles:
        ...

    def funding_times(self, start_ms: int, end_ms: int) -> np.ndarray:
        ...

    def funding_rates(self, symbol: str, times: np.ndarray) -> np.ndarray:
        ...

    def next_funding_time(self, now_ms: int) -> int:
        ...

    def book(self, symbol: str, at_ms: int, levels: int = ...) -> Book:
        ...


@dataclass
class ClientStats:
    """What one client (User-Agent) asked for."""

    requests: Counter[str] = field(default_factory=Counter)
    weight: int = 0
    ws_connections: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"requests": dict(self.requests), "weight": self.weight, "ws_connections": self.ws_connections}


# -- websocket connections ------------------------------------------------------------------------


@dataclass(eq=False)
class WsConnection:
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    route: str  # market | bare | public | spot
    combined: bool
    streams: set[str] = field(default_factory=set)
    delivered: dict[str, Stream] = field(default_factory=dict)  # the subscribed streams this route delivers
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(maxsize=10_000))
    incoming: deque[float] = field(default_factory=deque)  # monotonic times of the last second's messages

    @property
    def market(self) -> str:
        return wire.route_market(self.route)

    def abort(self) -> None:
        """Cut the TCP connection without a closing handshake, as a network failure would."""
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]

    def wrap(self, stream: str, payload: str) -> str:
        return f'{{"stream":"{stream}","data":{payload}}}' if self.combined else payload

    def count_incoming(self, now: float) -> bool:
        """Record one incoming message; False once more arrived within a second than Binance allows."""
        self.incoming.append(now)
        while self.incoming and self.incoming[0] <= now - 1.0:
            self.incoming.popleft()
        return len(self.incoming) <= wire.market_info(self.market).max_incoming_messages_per_second


# -- the server -----------------------------------------------------------------------------------


class Simulator(SimServer):
    def __init__(self, source: DataSource | None = None, clock: SimClock | None = None, seed: int = 1) -> None:
        self.source: DataSource = source or Market(seed)
        self.clock = clock or SimClock()
        self.connections: set[WsConnection] = set()
        self.stats: Counter[str] = Counter()
        self.by_client: defaultdict[str, ClientStats] = defaultdict(ClientStats)
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG)
        self.weight_by_minute: dict[str, dict[int, int]] = {"futures": defaultdict(int), "spot": defaultdict(int)}
        self.funding_requests: list[float] = []  # exchange ms of fundingRate requests (5-minute limit)
        self.limited_requests: dict[int, int] = defaultdict(int)
        self.fail_429 = 0
        self.banned_until_ms = 0
        self.refuse_until = 0.0
        self.silent_until = 0.0
        self.unlimited_until = 0.0
        self._cursors: dict[str, int] = {}  # kline stream -> open time of the last closed candle sent
        self._last_partial: dict[str, float] = {}
        self._last_mark: dict[str, float] = {}
        self._next_push: dict[tuple[str, str], float] = {}  # (market, book stream) -> real time it is due
        self._last_update_id: dict[tuple[str, str], int] = {}  # (market, book stream) -> update id last sent
        self._tasks: list[asyncio.Task[None]] = []
        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # -- app ------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        for market, prefix in (("futures", "/fapi/v1"), ("spot", "/api/v3")):
            for endpoint, handler in (("ping", self.ping), ("time", self.time), ("exchangeInfo", self.exchange_info),
                                      ("klines", self.klines), ("depth", self.depth),
                                      ("ticker/bookTicker", self.book_ticker), ("ticker/24hr", self.ticker_24hr),
                                      ("ticker/price", self.ticker_price)):
                app.router.add_get(f"{prefix}/{endpoint}", self._handler(market, endpoint, handler))
        for endpoint, handler in (("markPriceKlines", self.mark_price_klines), ("fundingRate", self.funding_rate),
                                  ("premiumIndex", self.premium_index)):
            app.router.add_get(f"/fapi/v1/{endpoint}", self._handler("futures", endpoint, handler))
        app.router.add_get("/fapi/v2/ticker/price", self._handler("futures", "ticker/price", self.ticker_price))
        for prefix, route in (("/market", "market"), ("", "bare"), ("/public", "public"), ("/spot", "spot")):
            app.router.add_get(f"{prefix}/stream", self._websocket(route, combined=True))
            app.router.add_get(f"{prefix}/ws", self._websocket(route, combined=False))
            app.router.add_get(f"{prefix}/ws/{{stream}}", self._websocket(route, combined=False))
        app.router.add_post("/_sim/fault", self.fault_endpoint)
        app.router.add_get("/_sim/fault", self.fault_endpoint)
        app.router.add_get("/_sim/stats", self.stats_endpoint)
        app.router.add_get("/_sim/requests", self.requests_endpoint)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except BinanceError as exc:
            return web.json_response(exc.body(), status=exc.status, headers=exc.headers)

    # -- REST plumbing ----------------------------------------------------------------------------

    def _handler(self, market: str, endpoint: str, answer: Any) -> Any:
        async def handle(request: web.Request) -> web.Response:
            agent = request.headers.get("User-Agent") or "(none)"
            client = self.by_client[agent]
            client.requests[request.path] += 1
            self.request_log.append({"t": self.clock.now(), "agent": agent, "path": request.path,
                                     "query": dict(request.query)})
            self.stats[f"rest {request.path}"] += 1
            self.stats["rest requests"] += 1
            now = self.clock.now()
            if now < self.banned_until_ms:
                self.stats["rest 418"] += 1
                retry = max(1, math.ceil(self.clock.real_seconds(self.banned_until_ms - now)))
                raise wire.ip_banned(market, self.banned_until_ms, retry)
            if self.fail_429 > 0:
                self.fail_429 -= 1
                self._reject_429(market, now)
            public = wire.public_endpoint(request.path)
            if public is not None:  # unknown (-1104) and repeated (-1101) parameters, as Binance
                wire.read_params(public, list(request.query.items()))
            payload = answer(request.query, market, now)
            weight = wire.request_weight(market, endpoint, request.query)
            used = self._charge(market, weight, now)
            client.weight += weight
            return web.json_response(payload, headers={"X-MBX-USED-WEIGHT-1M": str(used)})

        return handle

    def _charge(self, market: str, weight: int, now: int) -> int:
        minute = now // 60_000
        used = self.weight_by_minute[market][minute]
        if used + weight > wire.market_info(market).weight_limit and time.monotonic() >= self.unlimited_until:
            self.limited_requests[minute] += 1
            if self.limited_requests[minute] > BAN_AFTER_429S:
                self.banned_until_ms = now + int(BAN_SECONDS * 1000 * self.clock.speed)
                self.stats["bans"] += 1
                log.warning("simulator: client kept going after 429s: banned for %ds", BAN_SECONDS)
            self._reject_429(market, now)
        self.weight_by_minute[market][minute] = used + weight
        return used + weight

    def _reject_429(self, market: str, now: int) -> None:
        self.stats["rest 429"] += 1
        retry = max(1, math.ceil(self.clock.real_seconds(60_000 - now % 60_000)))
        raise wire.too_many_requests(market, retry, self.weight_by_minute[market][now // 60_000])

    def _selected(self, selection: wire.SymbolSelection) -> list[Instrument]:
        if selection.symbols is None:
            return list(self.source.instruments.values())
        return [self.source.instruments[symbol] for symbol in selection.symbols]

    @staticmethod
    def _answer(selection: wire.SymbolSelection, entries: list[dict[str, Any]]) -> Any:
        return entries[0] if selection.single else entries

    # -- REST endpoints: each answers (query parameters, market, exchange time) with a payload ------

    def ping(self, params: Mapping[str, str], market: str, now: int) -> Any:
        return {}

    def time(self, params: Mapping[str, str], market: str, now: int) -> Any:
        return {"serverTime": now}

    def exchange_info(self, params: Mapping[str, str], market: str, now: int) -> Any:
        symbols = []
        for inst in self.source.instruments.values():
            tick = wire.format_ticks([1], inst.price_decimals)[0]
            step = wire.format_ticks([1], inst.quantity_decimals)[0]
            filters = [{"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000", "tickSize": tick},
                       {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "100000", "stepSize": step}]
            entry: dict[str, Any] = {"symbol": inst.symbol, "status": "TRADING", "baseAsset": inst.base,
                                     "quoteAsset": inst.quote, "filters": filters}
            if market == "futures":
                entry.update({"pair": inst.symbol, "contractType": "PERPETUAL", "marginAsset": inst.quote,
                              "pricePrecision": inst.price_decimals, "quantityPrecision": inst.quantity_decimals,
                              "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
                              "deliveryDate": 4133404800000, "onboardDate": 1569398400000})
            else:
                entry.update({"baseAssetPrecision": 8, "quoteAssetPrecision": 8, "isSpotTradingAllowed": True})
            symbols.append(entry)
        return {"timezone": "UTC", "serverTime": now, "symbols": symbols,
                "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                                "limit": wire.market_info(market).weight_limit},
                               {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200}]}

    def klines(self, params: Mapping[str, str], market: str, now: int) -> Any:
        return self._klines(params, market, now, mark=False)

    def mark_price_klines(self, params: Mapping[str, str], market: str, now: int) -> Any:
        return self._klines(params, market, now, mark=True)

    def _klines(self, params: Mapping[str, str], market: str, now: int, *, mark: bool) -> Any:
        query = wire.parse_klines(market, params, self.source.instruments)
        inst = self.source.instruments[query.symbol]
        window = wire.kline_window(query, now)
        rows: list[list[Any]] = []
        if window.closed_count > 0:
            candles = self.source.candles(inst.symbol, query.interval, window.first_open, window.closed_count,
                                          mark=mark)
            rows = self._kline_rows(inst, candles, query.interval, mark=mark)
        if window.in_progress:  # the candle in progress comes last, as Binance includes it
            partial = self.source.partial_candle(inst.symbol, query.interval, now, mark=mark)
            rows += self._kline_rows(inst, partial, query.interval, mark=mark)
        self.stats["klines rows"] += len(rows)
        return rows

    @staticmethod
    def _kline_rows(inst: Instrument, candles: Candles, interval: str, *, mark: bool) -> list[list[Any]]:
        return wire.kline_rows_from_ticks(candles.open_time, candles.open, candles.high, candles.low, candles.close,
                                          candles.volume, candles.trades, period_ms=timeframe_ms(interval),
                                          price_decimals=inst.price_decimals,
                                          quantity_decimals=inst.quantity_decimals, mark=mark)

    def funding_rate(self, params: Mapping[str, str], market: str, now: int) -> Any:
        window_start = now - 5 * 60_000 * self.clock.speed  # the 500/5min limit in real minutes
        self.funding_requests = [t for t in self.funding_requests if t > window_start]
        if len(self.funding_requests) >= wire.FUNDING_LIMIT_PER_5MIN:
            self._reject_429(market, now)
        self.funding_requests.append(now)
        query = wire.parse_funding(params, self.source.instruments)
        window = wire.funding_window(query, now)
        start = window.start_ms if window.start_ms is not None else window.end_ms - FUNDING_LOOKBACK_MS
        times = self.source.funding_times(start, window.end_ms)[window.pick()]
        inst = self.source.instruments[query.symbol]
        rates = wire.format_ticks(self.source.funding_rates(inst.symbol, times), 8)
        return [wire.funding_row(inst.symbol, int(t), rate, self._mark_price(inst, int(t)))
                for t, rate in zip(times, rates, strict=True)]

    def premium_index(self, params: Mapping[str, str], market: str, now: int) -> Any:
        selection = wire.parse_symbols(market, params, self.source.instruments)
        return self._answer(selection, [self._premium(inst, now) for inst in self._selected(selection)])

    def _premium(self, inst: Instrument, now: int) -> dict[str, Any]:
        next_time = self.source.next_funding_time(now)
        rate = wire.format_ticks(self.source.funding_rates(inst.symbol, np.array([next_time])), 8)[0]
        mark = self._mark_price(inst, now)
        return wire.premium_index(inst.symbol, mark_price=mark, index_price=mark, estimated_settle_price=mark,
                                  last_funding_rate=rate, interest_rate="0.00010000", next_funding_time=next_time,
                                  time_ms=now)

    def _mark_price(self, inst: Instrument, at_ms: int) -> str:
        candle = self.source.partial_candle(inst.symbol, "1m", at_ms, mark=True)
        return wire.format_ticks(candle.close, inst.price_decimals)[0]

    def _last_price(self, inst: Instrument, at_ms: int) -> str:
        return wire.format_ticks(self.source.partial_candle(inst.symbol, "1m", at_ms).close, inst.price_decimals)[0]

    def _levels(self, inst: Instrument, side: np.ndarray) -> list[list[str]]:
        return wire.book_levels(side[:, 0], side[:, 1], inst.price_decimals, inst.quantity_decimals)

    def _top(self, inst: Instrument, book: Book) -> tuple[str, str, str, str]:
        [[bid, bid_qty]] = self._levels(inst, book.bids[:1])
        [[ask, ask_qty]] = self._levels(inst, book.asks[:1])
        return bid, bid_qty, ask, ask_qty

    def depth(self, params: Mapping[str, str], market: str, now: int) -> Any:
        query = wire.parse_depth(market, params, self.source.instruments)
        inst = self.source.instruments[query.symbol]
        book = self.source.book(inst.symbol, now, query.limit)
        return wire.depth_snapshot(market, book.update_id, self._levels(inst, book.bids), self._levels(inst, book.asks),
                                   event_ms=now, transaction_ms=book.transaction_ms)

    def book_ticker(self, params: Mapping[str, str], market: str, now: int) -> Any:
        selection = wire.parse_symbols(market, params, self.source.instruments)
        entries = []
        for inst in self._selected(selection):
            book = self.source.book(inst.symbol, now, 1)
            entries.append(wire.book_ticker(market, inst.symbol, *self._top(inst, book), time_ms=book.transaction_ms,
                                            update_id=book.update_id))
        return self._answer(selection, entries)

    def ticker_price(self, params: Mapping[str, str], market: str, now: int) -> Any:
        selection = wire.parse_symbols(market, params, self.source.instruments)
        return self._answer(selection, [wire.ticker_price(market, inst.symbol, self._last_price(inst, now), time_ms=now)
                                        for inst in self._selected(selection)])

    def ticker_24hr(self, params: Mapping[str, str], market: str, now: int) -> Any:
        selection = wire.parse_symbols(market, params, self.source.instruments, ticker_type=True)
        return self._answer(selection, [wire.ticker_24hr(market, self._ticker_stats(inst, now), mini=selection.mini)
                                        for inst in self._selected(selection)])

    def _ticker_stats(self, inst: Instrument, now: int) -> wire.TickerStats:
        """The rolling 24 hours up to `now`: the 1440 one-minute candles ending with the one in progress."""
        minute_open = now // MINUTE_MS * MINUTE_MS
        ones = self.source.candles(inst.symbol, "1m", minute_open - 1440 * MINUTE_MS, 1441)
        prev_close, day = int(ones.close[0]), slice(1, None)
        volume = [int(v) for v in ones.volume[day]]
        closes = [int(c) for c in ones.close[day]]
        quote = sum(v * c for v, c in zip(volume, closes, strict=True))  # ticks x lots, exact
        lots = sum(volume)
        count = int(ones.trades[day].sum())
        scale = Decimal(1).scaleb(-(inst.price_decimals + inst.quantity_decimals))
        average = (Decimal(quote) / lots) if lots else Decimal(closes[-1])
        prices = wire.format_ticks([int(ones.open[1]), int(ones.high[day].max()), int(ones.low[day].min()),
                                    closes[-1], prev_close, int(average.to_integral_value())], inst.price_decimals)
        first_id = (minute_open - 1439 * MINUTE_MS) // 1000
        last_qty = max(1, volume[-1] // max(1, int(ones.trades[-1])))
        bid, bid_qty, ask, ask_qty = self._top(inst, self.source.book(inst.symbol, now, 1))
        return wire.TickerStats(
            symbol=inst.symbol, open_price=prices[0], high_price=prices[1], low_price=prices[2], last_price=prices[3],
            last_qty=wire.format_ticks([last_qty], inst.quantity_decimals)[0],
            volume=wire.format_ticks([lots], inst.quantity_decimals)[0],
            quote_volume=f"{(Decimal(quote) * scale).quantize(Decimal('0.00000001')):f}",
            weighted_avg_price=prices[5], open_time=now - DAY_MS, close_time=now, first_id=first_id,
            last_id=first_id + count - 1, count=count, prev_close_price=prices[4], bid_price=bid, bid_qty=bid_qty,
            ask_price=ask, ask_qty=ask_qty)

    # -- websocket --------------------------------------------------------------------------------

    def _websocket(self, route: str, *, combined: bool) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            # autoping off: pings and pongs count against the incoming-message limit, so they pass through here
            ws = web.WebSocketResponse(heartbeat=180.0, autoping=False, max_msg_size=1 << 20)
            await ws.prepare(request)
            conn = WsConnection(ws, request.transport, route, combined)
            self.by_client[request.headers.get("User-Agent") or "(none)"].ws_connections += 1
            if combined:
                names = [s for s in request.query.get("streams", "").split("/") if s]
            else:
                names = [request.match_info["stream"]] if "stream" in request.match_info else []
            if len(names) > wire.market_info(conn.market).max_streams_per_connection:
                await self._close_too_many_streams(conn, None)
                return ws
            self._subscribe(conn, names)
            self.connections.add(conn)
            self.stats["ws connects"] += 1
            sender = asyncio.create_task(self._sender(conn))
            try:
                async for message in ws:
                    if not conn.count_incoming(time.monotonic()):
                        self.stats["ws disconnected: too many messages"] += 1
                        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Too many requests")
                        break
                    if message.type == WSMsgType.TEXT:
                        await self._client_message(conn, message.data)
                    elif message.type == WSMsgType.PING:
                        await ws.pong(message.data)
                    elif message.type == WSMsgType.ERROR:
                        break
            finally:
                self.connections.discard(conn)
                sender.cancel()
            return ws

        return handle

    async def _close_too_many_streams(self, conn: WsConnection, request_id: Any) -> None:
        self.stats["ws closed: too many streams"] += 1
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.send_str(json.dumps(wire.too_many_streams_error(request_id)))
        await conn.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Too many streams")

    def _subscribe(self, conn: WsConnection, names: list[str]) -> None:
        now = self.clock.now()
        for name in names:
            conn.streams.add(name)
            stream = wire.parse_stream(name, conn.market)
            if wire.route_delivers(conn.route, stream):
                conn.delivered[name] = stream
            if stream.kind == "kline" and name not in self._cursors and stream.interval in BINANCE_TIMEFRAMES:
                self._cursors[name] = last_closed_open(now, stream.interval)

    async def _client_message(self, conn: WsConnection, data: str) -> None:
        try:
            request = json.loads(data)
            method, ident = request.get("method"), request.get("id")
        except (ValueError, AttributeError):
            await conn.ws.send_str(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}))
            return
        params = request.get("params") or []
        if method == "SUBSCRIBE":
            if len(conn.streams | set(params)) > wire.market_info(conn.market).max_streams_per_connection:
                await self._close_too_many_streams(conn, ident)
                return
            self._subscribe(conn, params)
            result: Any = None
        elif method == "UNSUBSCRIBE":
            conn.streams.difference_update(params)
            for name in params:
                conn.delivered.pop(name, None)
            result = None
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(conn.streams)
        else:
            await conn.ws.send_str(json.dumps({"error": {"code": 1, "msg": f"Unknown method {method}"}, "id": ident}))
            return
        await conn.ws.send_str(json.dumps({"result": result, "id": ident}))

    async def _sender(self, conn: WsConnection) -> None:
        while True:
            message = await conn.queue.get()
            try:
                await conn.ws.send_str(message)
            except (ConnectionError, RuntimeError):
                return

    def _send(self, conn: WsConnection, stream: str, payload: str) -> None:
        try:
            conn.queue.put_nowait(conn.wrap(stream, payload))
            self.stats["ws messages"] += 1
        except asyncio.QueueFull:  # a client that does not read is dropped, as Binance does
            self.stats["ws slow consumers dropped"] += 1
            conn.abort()

    async def _publisher(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_EVERY)
            try:
                self._publish()
            except Exception:
                log.exception("simulator: publishing failed")

    def _publish(self) -> None:
        """One round: every delivered stream that is due gets its event; nothing is computed for streams
        nobody receives (except the kline cursors, which move with the clock regardless)."""
        now = self.clock.now()
        real = time.monotonic()
        silent = real < self.silent_until
        klines: dict[str, list[WsConnection]] = defaultdict(list)  # same events on futures and spot
        others: dict[tuple[str, str], list[WsConnection]] = defaultdict(list)  # (market, stream)
        streams: dict[str, Stream] = {}
        if not silent:
            for conn in self.connections:
                for name, stream in conn.delivered.items():
                    streams[name] = stream
                    if stream.kind == "kline":
                        klines[name].append(conn)
                    else:
                        others[(conn.market, name)].append(conn)
        # Every kline cursor moves with the clock, listened to or not: what closes while nobody
        # receives it (silence, a dropped connection) is never replayed, as on Binance.
        for name, cursor in list(self._cursors.items()):
            interval = name.rsplit("_", 1)[1]
            newest_closed = last_closed_open(now, interval)
            if newest_closed > cursor:
                self._cursors[name] = newest_closed
                if klines.get(name):
                    self._send_closed_klines(name, interval, cursor, newest_closed, klines[name])
        for name, conns in klines.items():
            stream = streams[name]
            inst = self.source.instruments.get(stream.symbol or "")
            if inst is None or stream.interval not in BINANCE_TIMEFRAMES or \
                    real - self._last_partial.get(name, 0.0) < PARTIAL_KLINE_EVERY:
                continue
            self._last_partial[name] = real
            assert stream.interval is not None
            [row] = self._kline_rows(inst, self.source.partial_candle(inst.symbol, stream.interval, now),
                                     stream.interval, mark=False)
            self._fan_out(name, wire.kline_event(inst.symbol, row, stream.interval, closed=False, event_ms=now), conns)
        books: dict[str, Book] = {}  # one book per symbol and round, whatever streams show it
        for (market, name), conns in others.items():
            stream = streams[name]
            if stream.kind == "markPrice":
                self._publish_mark(stream, conns, now, real)
            elif stream.kind in ("depth", "bookTicker"):
                self._publish_book(market, stream, conns, now, real, books)
            elif stream.kind == "allBookTicker" and self._due((market, name), stream.every_ms or 5000, real):
                for inst in self.source.instruments.values():
                    book = self._book(books, inst.symbol, now)
                    event = wire.book_ticker_event(market, inst.symbol, book.update_id, *self._top(inst, book),
                                                   event_ms=now, transaction_ms=book.transaction_ms)
                    self._fan_out(name, event, conns)

    def _book(self, books: dict[str, Book], symbol: str, now: int) -> Book:
        book = books.get(symbol)
        if book is None:
            book = books[symbol] = self.source.book(symbol, now, PUBLISHED_BOOK_LEVELS)
        return book

    def _due(self, key: tuple[str, str], every_ms: int, real: float) -> bool:
        """Whether a stream pushing every `every_ms` (real time) is due; if so, schedules the next push."""
        due = self._next_push.get(key)
        if due is not None and real < due:
            return False
        every = every_ms / 1000
        self._next_push[key] = real + every if due is None or real - due > every else due + every
        return True

    def _publish_book(self, market: str, stream: Stream, conns: list[WsConnection], now: int, real: float,
                      books: dict[str, Book]) -> None:
        inst = self.source.instruments.get(stream.symbol or "")
        if inst is None:
            return
        key = (market, stream.name)
        due = self._next_push.get(key)
        if due is not None and real < due:
            return
        book = self._book(books, inst.symbol, now)
        previous = self._last_update_id.get(key)
        if previous == book.update_id:  # the book has not changed since the last push: try next round
            return
        self._due(key, stream.every_ms or int(BOOK_TICKER_EVERY * 1000), real)
        self._last_update_id[key] = book.update_id
        if stream.kind == "bookTicker":
            event = wire.book_ticker_event(market, inst.symbol, book.update_id, *self._top(inst, book), event_ms=now,
                                           transaction_ms=book.transaction_ms)
        else:
            levels = stream.levels or PUBLISHED_BOOK_LEVELS
            event = wire.depth_event(market, inst.symbol, self._levels(inst, book.bids[:levels]),
                                     self._levels(inst, book.asks[:levels]), final_update_id=book.update_id,
                                     previous_final_update_id=book.update_id - 1 if previous is None else previous,
                                     event_ms=now, transaction_ms=book.transaction_ms)
        self._fan_out(stream.name, event, conns)

    def _publish_mark(self, stream: Stream, conns: list[WsConnection], now: int, real: float) -> None:
        inst = self.source.instruments.get(stream.symbol or "")
        every = (stream.every_ms or 3000) / 1000
        if inst is None or real - self._last_mark.get(stream.name, 0.0) < every:
            return
        self._last_mark[stream.name] = real
        self._fan_out(stream.name, wire.mark_price_event(self._premium(inst, now), event_ms=now), conns)

    def _send_closed_klines(self, name: str, interval: str, cursor: int, newest_closed: int,
                            conns: list[WsConnection]) -> None:
        inst = self.source.instruments.get(name.partition("@")[0].upper())
        if inst is None:
            return
        period = timeframe_ms(interval)
        candles = self.source.candles(inst.symbol, interval, cursor + period, (newest_closed - cursor) // period)
        for row in self._kline_rows(inst, candles, interval, mark=False):
            self._fan_out(name, wire.kline_event(inst.symbol, row, interval, closed=True, event_ms=row[6] + 1), conns)
            self.stats["ws closed klines"] += 1

    def _fan_out(self, stream: str, event: dict[str, Any], conns: list[WsConnection]) -> None:
        payload = json.dumps(event, separators=(",", ":"))
        for conn in conns:
            self._send(conn, stream, payload)

    # -- faults -----------------------------------------------------------------------------------

    async def apply_fault(self, name: str, value: float | None = None) -> str:
        faults = {"drop": self._fault_drop, "refuse": self._fault_refuse, "429": self._fault_429,
                  "ban": self._fault_ban, "malformed": self._fault_malformed, "firehose": self._fault_firehose,
                  "silent": self._fault_silent, "unlimited": self._fault_unlimited}
        if name not in faults:
            raise ValueError(f"unknown fault {name!r} ({', '.join(faults)})")
        return faults[name](value)

    def _fault_drop(self, value: float | None) -> str:
        dropped = len(self.connections)
        for conn in list(self.connections):
            conn.abort()
        self.stats["fault drop"] += 1
        return f"dropped {dropped} websocket connections"

    def _fault_refuse(self, value: float | None) -> str:
        seconds = float(value or 10)
        self._tasks.append(asyncio.create_task(self._refuse(seconds)))
        return f"refusing connections for {seconds:g}s"

    def _fault_429(self, value: float | None) -> str:
        self.fail_429 = int(value or 10)
        return f"answering the next {self.fail_429} REST requests with 429"

    def _fault_ban(self, value: float | None) -> str:
        seconds = float(value or BAN_SECONDS)
        self.banned_until_ms = self.clock.now() + int(seconds * 1000 * self.clock.speed)
        return f"banned (418) for {seconds:g}s"

    def _fault_malformed(self, value: float | None) -> str:
        count = int(value or 3)
        for conn in list(self.connections):
            for index in range(count):
                stream, payload = self._malformed(conn, index)
                self._send(conn, stream, payload)
        self.stats["malformed frames"] += count * len(self.connections)
        return f"sent {count} malformed frames on {len(self.connections)} connections"

    def _fault_firehose(self, value: float | None) -> str:
        seconds = float(value or 30)
        for conn in list(self.connections):
            if any(stream.kind == "kline" for stream in conn.delivered.values()):
                self._tasks.append(asyncio.create_task(self._firehose(conn, seconds)))
        return f"firehose of historical closed klines for {seconds:g}s"

    def _fault_unlimited(self, value: float | None) -> str:
        """Benchmarks only: no weight limit (no 429, no ban) for that long, so latency can be measured."""
        seconds = float(value or 60)
        self.unlimited_until = time.monotonic() + seconds
        return f"no weight limit for {seconds:g}s"

    def _fault_silent(self, value: float | None) -> str:
        seconds = float(value or 30)
        self.silent_until = time.monotonic() + seconds
        return f"silent for {seconds:g}s"

    async def _firehose(self, conn: WsConnection, seconds: float) -> None:
        """Closed klines from the past, pre-serialised, sent as fast as the client takes them (a load
        test: each one is a real point for the client to write; rewriting history is idempotent)."""
        now = self.clock.now()
        frames: list[str] = []
        for name in sorted(conn.delivered):
            stream = conn.delivered[name]
            inst = self.source.instruments.get(stream.symbol or "")
            if inst is None or stream.kind != "kline" or stream.interval not in BINANCE_TIMEFRAMES:
                continue
            assert stream.interval is not None
            period = timeframe_ms(stream.interval)
            last = last_closed_open(now, stream.interval) - 200 * period
            candles = self.source.candles(inst.symbol, stream.interval, last - 999 * period, 1000)
            for row in self._kline_rows(inst, candles, stream.interval, mark=False):
                event = wire.kline_event(inst.symbol, row, stream.interval, closed=True, event_ms=now)
                frames.append(conn.wrap(name, json.dumps(event, separators=(",", ":"))))
        if not frames:
            return
        deadline = time.monotonic() + seconds
        index = 0
        while time.monotonic() < deadline and not conn.ws.closed:
            for frame in frames[index:index + 200]:
                await conn.ws.send_str(frame)
            self.stats["firehose frames"] += min(200, len(frames) - index)
            index = (index + 200) % len(frames)

    def _malformed(self, conn: WsConnection, index: int) -> tuple[str, str]:
        """Frames a client must survive, shaped like the connection's first stream: not JSON, a field
        missing, an unknown symbol, a value that is not a number."""
        stream = next(iter(sorted(conn.streams)), "btcusdt@kline_3m")
        parsed = wire.parse_stream(stream, conn.market)
        symbol = parsed.symbol or "BTCUSDT"
        now = self.clock.now()
        if parsed.kind in ("depth", "bookTicker", "allBookTicker"):
            level = [["1", "1"]]
            if parsed.kind == "depth":
                unknown = wire.depth_event(conn.market, "NOSUCHUSDT", level, level, final_update_id=2,
                                           previous_final_update_id=1, event_ms=now, transaction_ms=now)
                missing: dict[str, Any] = {"e": "depthUpdate", "E": now, "s": symbol} \
                    if conn.market == "futures" else {"lastUpdateId": 1}
                not_a_number = {**unknown, "s": symbol, "b" if conn.market == "futures" else "bids": [["NaN?", "1"]]}
            else:
                unknown = wire.book_ticker_event(conn.market, "NOSUCHUSDT", 1, "1", "1", "2", "1", event_ms=now,
                                                 transaction_ms=now)
                missing = {"e": "bookTicker", "E": now, "s": symbol} if conn.market == "futures" else {"u": 1}
                not_a_number = {**unknown, "s": symbol, "b": "NaN?"}
            kinds = ["this is not json {", json.dumps(missing), json.dumps(unknown), json.dumps(not_a_number)]
            return stream, kinds[index % len(kinds)]
        kinds = [
            "this is not json {",
            json.dumps({"e": "kline", "E": now, "s": symbol}),  # no "k"
            json.dumps(wire.kline_event("NOSUCHUSDT", [0, "1", "1", "1", "1", "1", 59_999, "1", 1, "1", "1", "0"],
                                        "3m", closed=True, event_ms=now)),
            json.dumps({"e": "kline", "E": now, "s": symbol,
                        "k": {"t": 0, "T": 1, "s": symbol, "i": "3m", "o": "NaN?", "x": True}}),
        ]
        return stream, kinds[index % len(kinds)]

    async def _refuse(self, seconds: float) -> None:
        assert self._runner is not None and self._site is not None
        self.refuse_until = time.monotonic() + seconds
        await self._site.stop()
        for conn in list(self.connections):
            conn.abort()
        if self._runner.server is not None:  # kept-alive HTTP connections go down too, as in an outage
            for handler in self._runner.server.connections:
                handler.force_close()
        await asyncio.sleep(seconds)
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        log.info("simulator: accepting connections again")

    async def fault_endpoint(self, request: web.Request) -> web.Response:
        name = request.query.get("name", "")
        raw = request.query.get("value")
        try:
            result = await self.apply_fault(name, float(raw) if raw else None)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        log.info("simulator fault: %s", result)
        return web.json_response({"ok": True, "result": result})

    async def requests_endpoint(self, request: web.Request) -> web.Response:
        agent = request.query.get("agent")
        return web.json_response([r for r in self.request_log if agent is None or r["agent"] == agent])

    async def stats_endpoint(self, request: web.Request) -> web.Response:
        minutes = {market: {str(k): v for k, v in sorted(per.items())} for market, per in self.weight_by_minute.items()}
        peak = {market: max(per.values(), default=0) for market, per in self.weight_by_minute.items()}
        return web.json_response({"now": self.clock.now(), "speed": self.clock.speed, "counters": dict(self.stats),
                                  "weight_by_minute": minutes, "peak_weight_per_minute": peak,
                                  "ws_connections": len(self.connections),
                                  "by_client": {agent: stats.as_json() for agent, stats in self.by_client.items()}})


async def serve(host: str, port: int, speed: float, seed: int, start: int | None, faults: list[str]) -> None:
    simulator = Simulator(clock=SimClock(start, speed), seed=seed)
    await simulator.start(host, port)
    for fault in faults:
        name, _, value = fault.partition("=")
        log.info("simulator fault at start-up: %s", await simulator.apply_fault(name, float(value) if value else None))
    await run_until_signalled(simulator)


def main(host: str, port: int, speed: float, seed: int, start: int | None, faults: list[str]) -> int:
    try:
        asyncio.run(serve(host, port, speed, seed, start, faults))
    except OSError as exc:
        log.error("simulator cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        return 1
    except ValueError as exc:
        log.error("simulator: %s", exc)
        return 2
    return 0
