"""`freqfeed serve` with exchange.name hyperliquid: Hyperliquid's `POST /info` for the bots of one feeder.

Point ccxt's `urls.api.public` here (never `private`: /exchange is refused). Each body is checked against
the allowlist of types and fields (admission.py) and then:

- candleSnapshot, fundingHistory for the configured coins and intervals: answered from InfluxDB with the
  exchange's semantics (local.py: 5000-candle horizon, the candle in progress from the producer, 500 funding
  rows a page); when InfluxDB does not hold all of it (not recorded, InfluxDB down, the producer behind), a
  request waits at most `gateway.close_wait` just after a close, then is forwarded (the reason is counted);
- every other public type (meta, metaAndAssetCtxs, spotMeta, allMids, l2Book, ...): forwarded, the answer
  reused for `gateway.cache_ttl[type]` seconds (admission.DEFAULT_TTL) and concurrent identical requests
  coalesced into one upstream request (l2Book too: 0.5 s, never older);
- user types (clearinghouseState, openOrders, userFills, ...): forwarded, each request on its own, never
  cached or coalesced.

Forwarded requests go through the weight limiter of the Hyperliquid REST client (freqfeed.ratelimit, a
`exchange.max_weight_share` of 1200 a minute, at most `gateway.max_wait` seconds of waiting, then a local
429). The exchange's clock comes from exchangeStatus (rest.py), so horizons and closes are right against a
simulator running fast. `GET /_freqfeed/status` says what was answered where.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from freqfeed import schema
from freqfeed.config import Config
from freqfeed.exchanges.base import ExchangeClock
from freqfeed.exchanges.hyperliquid import admission, local, wire
from freqfeed.exchanges.hyperliquid.admission import Refused
from freqfeed.exchanges.hyperliquid.books import BookStreams
from freqfeed.exchanges.hyperliquid.rest import HyperliquidRest
from freqfeed.exchanges.hyperliquid.wire import HyperliquidError, InfoRequest
from freqfeed.gateway.lifecycle import listen, release, serve_until_stopped
from freqfeed.gateway.notify import notify
from freqfeed.gateway.threads import DaemonWorkers
from freqfeed.influx import InfluxDB, InfluxDBError, Select
from freqfeed.ratelimit import RateLimited
from freqfeed.timeframes import candle_open

log = logging.getLogger(__name__)

STATUS_PATH = "/_freqfeed/status"
USER_AGENT = "freqfeed-gateway"
CACHE_ENTRIES = 1024  # answers kept (forwarded and local), least recently used dropped first
CACHE_BYTES = 64 * 1024 * 1024
CLOCK_SYNC_EVERY = 60.0  # real seconds between exchangeStatus samples (weight 2)
FAST_POLL = 0.1  # real seconds between InfluxDB reads while a request waits just after a close
JSON = "application/json"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = JSON


class AnswerCache:
    """Answers by key, each valid until its deadline (monotonic), bounded in entries and bytes; and the
    requests under way, so that concurrent identical ones share one."""

    def __init__(self, entries: int = CACHE_ENTRIES, max_bytes: int = CACHE_BYTES) -> None:
        self.entries, self.max_bytes = entries, max_bytes
        self._answers: OrderedDict[str, tuple[float, Reply]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Reply]] = {}  # bounded by the requests under way
        self.bytes = 0
        self.hits = self.coalesced = self.evictions = 0

    def get(self, key: str) -> Reply | None:
        held = self._answers.get(key)
        if held is None:
            return None
        if held[0] < time.monotonic():
            self._drop(key)
            return None
        self._answers.move_to_end(key)
        self.hits += 1
        return held[1]

    def put(self, key: str, reply: Reply, ttl: float) -> None:
        if ttl <= 0 or reply.status != 200 or len(reply.body) > self.max_bytes // 4:
            return
        self._drop(key)
        self._answers[key] = (time.monotonic() + ttl, reply)
        self.bytes += len(reply.body)
        while len(self._answers) > self.entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._answers)))
            self.evictions += 1

    def _drop(self, key: str) -> None:
        held = self._answers.pop(key, None)
        if held is not None:
            self.bytes -= len(held[1].body)

    async def shared(self, key: str, ttl: float, make: Callable[[], Awaitable[Reply]]) -> Reply:
        """The cached answer, or the one under way for the same key, or a new one from `make()`. The work runs
        as a task of its own: a client that goes away cancels neither it nor the others waiting for it."""
        cached = self.get(key)
        if cached is not None:
            return cached
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._make(key, ttl, make))
            pending.add_done_callback(_retrieve)
            self._pending[key] = pending
        else:
            self.coalesced += 1
        return await asyncio.shield(pending)

    async def _make(self, key: str, ttl: float, make: Callable[[], Awaitable[Reply]]) -> Reply:
        try:
            reply = await make()
        finally:
            self._pending.pop(key, None)
        self.put(key, reply, ttl)
        return reply

    def __len__(self) -> int:
        return len(self._answers)


class HyperliquidGateway:
    def __init__(self, config: Config, influx: InfluxDB | None = None) -> None:
        self.config = config
        self.clock = ExchangeClock()
        self.rest = HyperliquidRest(config.exchange.rest_url, clock=self.clock, share=config.exchange.max_weight_share,
                                    timeout=config.exchange.timeout, user_agent=USER_AGENT)
        self.influx = influx or InfluxDB(config.influxdb, retries=1)
        self.workers = DaemonWorkers(max(1, min(4, config.influxdb.concurrency)), name="hyperliquid-read")
        self.ttl = admission.TtlRules(config.gateway.cache_ttl)
        self.cache = AnswerCache(min(CACHE_ENTRIES, max(config.gateway.forward_cache_entries, 1)),
                                 int(config.gateway.forward_cache_mb * 1024 * 1024))
        self.coins: dict[str, str] = {}  # coin (as meta spells it) -> pair, for the configured pairs listed
        self.books: BookStreams | None = None  # the configured coins' l2Book subscriptions, once ready
        self.meta_at = 0.0  # monotonic time of the last meta answer
        self.influxdb_error: str | None = None
        self.influxdb_ok_at = 0.0
        self.started = time.time()
        self.ready_after: float | None = None  # seconds from start until the clock and meta were in
        self.counters: Counter[str] = Counter()
        self.by_type: dict[str, Counter[str]] = {}
        self.ready = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._charges: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.port = config.gateway.port
        self.metrics: Any = None  # freqfeed.metrics.MetricsServer when gateway.metrics_listen is set
        self.latency: Any = None  # its request duration histogram (freqfeed.metrics.Latency)

    # -- life cycle -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=admission.MAX_BODY)
        app.router.add_get(STATUS_PATH, self.status_endpoint)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def start(self) -> None:
        self._runner, self.port = await listen(self.app(), self.config.gateway.host, self.config.gateway.port)
        self._tasks.append(asyncio.create_task(self._run(), name="hyperliquid-gateway"))
        if self.config.gateway.metrics_listen:
            await self._start_metrics()
        log.info("gateway listening on http://%s:%d for Hyperliquid /info (InfluxDB %s, Hyperliquid %s)",
                 self.config.gateway.host, self.port, self.config.influxdb.url, self.config.exchange.rest_url)

    async def _start_metrics(self) -> None:
        from freqfeed import metrics
        from freqfeed.exchanges.hyperliquid.gateway_metrics import HyperliquidGatewayCollector

        self.metrics, self.latency = await metrics.serve_gateway_metrics(self.config.gateway.metrics_listen,
                                                                          HyperliquidGatewayCollector(self))

    async def _run(self) -> None:
        """The exchange's clock and meta before anything is answered from InfluxDB; then kept fresh."""
        reported = 0.0
        while not self.ready.is_set():
            try:
                await self.rest.sync_time()
                await asyncio.sleep(1.0)
                await self.rest.sync_time()  # a second sample gives the clock's rate
                await self._refresh_meta()
            except (HyperliquidError, RateLimited, KeyError, TypeError, ValueError) as exc:
                if time.monotonic() - reported > 60:
                    reported = time.monotonic()
                    log.error("gateway: Hyperliquid (%s) gives no time or meta yet (%s); retrying every 5s",
                              self.config.exchange.rest_url, exc)
                await asyncio.sleep(5)
                continue
            self.books = BookStreams(self.config.gateway.ws_url, self.coins,
                                     max_age_s=self.config.gateway.book_max_age,
                                     silence_s=self.config.gateway.book_silence)
            self.books.start()
            self.ready.set()
            self.ready_after = time.time() - self.started
        last_meta = time.monotonic()
        while True:
            await asyncio.sleep(CLOCK_SYNC_EVERY)
            with contextlib.suppress(HyperliquidError, RateLimited, KeyError, TypeError, ValueError):
                await self.rest.sync_time()
                if time.monotonic() - last_meta > self.config.gateway.exchange_info_refresh:
                    await self._refresh_meta()
                    last_meta = time.monotonic()

    async def _refresh_meta(self) -> None:
        """meta (through the cache: a bot asking at the same time shares it): which configured pair is which
        coin. Pairs Hyperliquid does not list (or lists as delisted) are forwarded, loudly."""
        request = wire.parse_info({"type": "meta"})
        reply = await self._forward(request, "meta for the coins")
        if reply.status != 200:
            raise HyperliquidError(reply.status, reply.body.decode(errors="replace")[:200], "meta")
        universe = wire.Universe.from_answer(json.loads(reply.body))
        coins: dict[str, str] = {}
        for pair in self.config.pairs:
            asset = universe.by_pair.get(pair)
            if asset is None or asset.delisted:
                log.error("gateway: %s is not a listed Hyperliquid perpetual: its candles are forwarded", pair)
                continue
            coins[asset.name] = pair
        self.coins = coins
        self.meta_at = time.monotonic()

    async def stop(self) -> None:
        for task in [*self._tasks, *self._charges]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._charges, return_exceptions=True)
        if self.books is not None:
            await self.books.stop()
        await release(self._runner, self.metrics, self.rest, self.influx)

    # -- requests ---------------------------------------------------------------------------------

    def _count(self, label: str, outcome: str, started: float = 0.0) -> None:
        """Per type of the allowlist (a bounded table), outcome local / forwarded / refused / errors; and the
        request's duration in the metrics' histogram (endpoint `info:<type>` or `other`)."""
        kind = label if label in admission.FIELDS else "other"
        if self.latency is not None and started:
            self.latency.observe(f"info:{kind}" if kind != "other" else kind, outcome, time.perf_counter() - started)
        self.counters["requests"] += 1
        self.counters[outcome] += 1
        self.by_type.setdefault(kind, Counter())[outcome] += 1

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            admission.route(request.method, request.path)
        except Refused as refused:
            self._count("other", "refused", started)
            self.counters[f"refused: {refused.kind}"] += 1
            refusals = self.counters["refused: exchange"]
            if refused.kind == "exchange" and (refusals <= 10 or refusals % 1000 == 0):  # a bot's loop: not a flood
                log.warning("refused %s %s (%d so far): signed actions are never forwarded; point only ccxt's "
                            "urls.api.public here (%s)", request.method, request.path[:100], refusals,
                            request.headers.get("User-Agent", "?")[:100])
            return _text(refused.status, refused.body)
        try:
            raw = await request.read()
            info = admission.parse_body(raw)
        except web.HTTPRequestEntityTooLarge:
            return self._refused_body(HyperliquidError(413, "Payload Too Large", "body over the limit"), started)
        except HyperliquidError as exc:
            return self._refused_body(exc, started)
        reply = await self.answer(info, started)
        return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)

    def _refused_body(self, exc: HyperliquidError, started: float = 0.0) -> web.Response:
        self._count("other", "refused", started)
        self.counters[f"refused: {exc.status}"] += 1
        log.debug("refused /info body: %s", exc.detail[:200])
        return _text(exc.status, exc.body)

    async def answer(self, info: InfoRequest, started: float = 0.0) -> Reply:
        reason = ""
        if info.type in ("l2Book", "allMids") and self.books is not None:
            book = self.books.answer(info)
            if book is not None:
                self._count(info.type, "local", started)
                return Reply(200, book)
            streamed = (info.type == "allMids" and not info.dex) or (info.coin in self.books.coins
                                                                      and info.n_sig_figs is None)
            if streamed:
                reason = "no fresh streamed book"
        elif info.type in ("candleSnapshot", "fundingHistory"):
            try:
                reply = await self._local(info)
            except local.Incomplete as why:
                reason = str(why)
                log.debug("forwarding %s: %s", info.type, reason)
            else:
                self._count(info.type, "local", started)
                return reply
        if reason:
            self.counters[f"forward: {_reason_kind(reason)}"] += 1
        reply = await self._forward(info, reason)
        self._count(info.type, "forwarded", started)
        return reply

    # -- from InfluxDB ----------------------------------------------------------------------------

    async def _local(self, info: InfoRequest) -> Reply:
        if not self.ready.is_set():
            raise local.Incomplete("starting: no exchange clock or meta yet")
        pair = self.coins.get(info.coin or "")
        if pair is None:
            raise local.Incomplete(f"coin {str(info.coin)[:40]!r} is not recorded (not a configured pair)")
        if info.type == "candleSnapshot" and info.interval not in self.config.timeframes:
            raise local.Incomplete(f"interval {info.interval} is not recorded")
        now = self.clock.now()
        epoch = candle_open(now, str(info.interval)) if info.type == "candleSnapshot" else now // local.HOUR_MS
        # an answer is shared while the exchange's newest candle (funding hour) is the same one
        key = f"local {epoch} {admission.canonical(info)}"
        return await self.cache.shared(key, 1.0, lambda: self._read(info, pair))

    async def _read(self, info: InfoRequest, pair: str) -> Reply:
        close_wait_ms = self.config.gateway.close_wait * 1000 * self.clock.rate
        deadline = time.monotonic() + self.config.gateway.close_wait
        while True:
            now = self.clock.now()
            try:
                if info.type == "candleSnapshot":
                    rows = await self._candles(info, pair, now)
                else:
                    rows = await self._funding(info, pair, now)
                return Reply(200, json.dumps(rows, separators=(",", ":")).encode())
            except local.Incomplete:
                # just after a close (or an hour), the producer writes within a second: wait for it a little
                period = wire.interval_ms(str(info.interval)) if info.type == "candleSnapshot" else local.HOUR_MS
                if now % period > close_wait_ms or time.monotonic() >= deadline:
                    raise
            if time.monotonic() + FAST_POLL > deadline:
                raise local.Incomplete("close wait over")
            await asyncio.sleep(FAST_POLL)

    async def _select(self, selects: list[Select]) -> list[list[dict[str, Any]]]:
        try:
            answers = await self.workers.run(self.influx.select, selects)
        except InfluxDBError as exc:
            self.influxdb_error = str(exc)[:300]
            raise local.Incomplete(f"InfluxDB: {exc}") from None
        self.influxdb_error = None
        self.influxdb_ok_at = time.monotonic()
        return [[row for series in answer for row in series.rows()] for answer in answers]

    async def _candles(self, info: InfoRequest, pair: str, now: int) -> list[dict[str, Any]]:
        plan = local.candle_plan(info, now)
        if plan.window.count == 0:
            return []
        interval = plan.window.interval
        selects: list[Select] = []
        if plan.closed_last is not None:
            selects.append(schema.series_select(schema.ohlcv_measurement(interval), local.CANDLE_FIELDS, pair,
                                                plan.window.first_open, plan.closed_last))
        if plan.live_open is not None:
            selects.append(Select(schema.LIVE_MEASUREMENT, local.LIVE_FIELDS, plan.live_open, plan.live_open,
                                  tags=(("exchange", schema.EXCHANGE), ("pair", pair), ("price", schema.LIVE_TRADE),
                                        ("timeframe", interval))))
        answers = await self._select(selects)
        closed = answers[0] if plan.closed_last is not None else []
        live = answers[-1] if plan.live_open is not None else []
        max_age = int(self.config.gateway.live_max_age * 1000 * self.clock.rate)
        return local.candle_answer(str(info.coin), plan, closed, live, self.clock.now(), max_age)

    async def _funding(self, info: InfoRequest, pair: str, now: int) -> list[dict[str, Any]]:
        span = local.funding_span(info, now)
        if span is None:
            return []
        [stored] = await self._select([schema.series_select(schema.FUNDING_MEASUREMENT, local.FUNDING_FIELDS, pair,
                                                            *span)])
        return local.funding_answer(str(info.coin), info, span, stored, now)

    # -- forwarded --------------------------------------------------------------------------------

    async def _forward(self, info: InfoRequest, reason: str) -> Reply:
        ttl = self.ttl.ttl(info)
        if ttl is None:  # a user's own query: alone, every time
            return await self._upstream(info)
        return await self.cache.shared(f"forward {admission.canonical(info)}", ttl, lambda: self._upstream(info))

    async def _upstream(self, info: InfoRequest) -> Reply:
        now = self.clock.now()
        expected = admission.expected_rows(info, now)
        weight = wire.info_weight(info.type, expected)
        try:
            await self.rest.limiter.acquire(weight, max_wait=self.config.gateway.max_wait, endpoint=info.type)
        except RateLimited as exc:
            self.counters["refused locally: rate limited"] += 1
            log.warning("gateway: %s not forwarded: %s", info.type, exc.reason)
            return _reply(429, wire.RATE_LIMITED_BODY)
        self.counters["upstream requests"] += 1
        status, text = await self.rest.forward(json.loads(admission.canonical(info)))
        if status == 200 and info.type in wire.EXTRA_PER_20 | wire.EXTRA_PER_60 and not expected:
            # rows of a user's history: their extra weight is known only now (counted, without delaying the answer)
            with contextlib.suppress(ValueError):
                answer = json.loads(text)
                extra = wire.extra_weight(info.type, len(answer) if isinstance(answer, list) else 0)
                if extra:
                    task = asyncio.create_task(self.rest.limiter.acquire(extra, endpoint=f"{info.type} rows"))
                    self._charges.add(task)
                    task.add_done_callback(self._charges.discard)
        if status == 429:
            self.counters["upstream 429"] += 1
        return _reply(status, text)

    # -- status -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        stats = self.rest.limiter.stats
        minute = self.clock.now() // 60_000
        ready = self.ready.is_set()
        progress = "serving Hyperliquid /info" if ready else "waiting for Hyperliquid's time and meta"
        return {  # the keys `freqfeed status` reads of Binance's gateway, where they mean the same
            "up": True, "exchange": "hyperliquid",
            "listen": f"{self.config.gateway.host}:{self.port}",
            "started": int(self.started * 1000),
            "state": "ready" if ready else "connecting",
            "load": {"seconds": round(self.ready_after, 2) if self.ready_after is not None else None,
                     "progress": progress},
            "close_wait_fallbacks": self.counters["forward: close wait"],
            "requests": self.counters["requests"], "local": self.counters["local"],
            "forwarded": self.counters["forwarded"], "refused": self.counters["refused"],
            "refused_reasons": {k.removeprefix("refused: "): v for k, v in self.counters.items()
                                if k.startswith("refused: ")},
            "forward_reasons": {k.removeprefix("forward: "): v for k, v in self.counters.items()
                                if k.startswith("forward: ")},
            "refused_locally_rate_limited": self.counters["refused locally: rate limited"],
            "upstream_requests": self.counters["upstream requests"],
            "upstream_429": self.counters["upstream 429"],
            "cache_hits": self.cache.hits, "coalesced": self.cache.coalesced,
            "cache": {"entries": len(self.cache), "bytes": self.cache.bytes, "evictions": self.cache.evictions},
            "forwarded_weight_last_minute": stats.by_minute.get(minute - 1, 0),
            "forwarded_weight_peak_minute": max((w for m, w in stats.by_minute.items() if m < minute), default=0),
            "forwarded_weight_total": stats.weight,
            "rate_limited": stats.rate_limited,
            "coins": sorted(self.coins),
            "influxdb_ok": ready and self.influxdb_error is None,
            "influxdb_error": self.influxdb_error,
            "exchange_info_age_s": round(time.monotonic() - self.meta_at, 1) if self.meta_at else None,
            "books": self.books.status() if self.books is not None else None,
            "by_type": {k: dict(v) for k, v in sorted(self.by_type.items())},
        }

    async def status_endpoint(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())


def _retrieve(task: asyncio.Future[Reply]) -> None:
    """Its exception went to whoever waited; if nobody did any more, it must not be logged as unretrieved."""
    if not task.cancelled():
        task.exception()


def _reason_kind(reason: str) -> str:
    for kind in ("not recorded", "closed", "current", "stale", "funding", "InfluxDB:", "starting", "close wait",
                 "streamed book"):
        if kind in reason:
            return kind
    return "other"


def _reply(status: int, text: str) -> Reply:
    return Reply(status, text.encode(), JSON if status == 200 else "text/plain")


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


async def serve(config: Config) -> int:
    gateway = HyperliquidGateway(config)

    async def announce(stop: asyncio.Event) -> None:
        notify("STATUS=waiting for Hyperliquid's time and meta")
        await gateway.ready.wait()
        notify("READY=1", "STATUS=serving Hyperliquid /info")
        log.info("gateway ready: serving %d coins' candles and funding from InfluxDB", len(gateway.coins))

    return await serve_until_stopped(config, gateway, announce)


def main(config: Config) -> int:
    return asyncio.run(serve(config))
