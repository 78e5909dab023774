"""`freqfeed serve`: Binance's public REST market-data API for the bots of one feeder.

Answered here, from InfluxDB (gateway.history), with Binance's semantics: futures
`/fapi/v1/klines`, `markPriceKlines`, `fundingRate`; spot `/api/v3/klines`; `ping` and `time` (from the
exchange clock, kept in step with Binance's); `exchangeInfo` from a cache refreshed from Binance. What
cannot be answered completely, and every other public endpoint, is forwarded to `exchange.rest_url`
(freqfeed.exchanges.binance.upstream: cached briefly, coalesced, weight-limited). Only the public endpoints
exchanges.binance.wire lists are let in, checked on the raw request (gateway.admission); signed and private
requests are refused whatever the path: only the public URL keys of ccxt may point here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

from freqfeed.config import Config
from freqfeed.exchanges.base import ExchangeClock
from freqfeed.exchanges.binance import wire
from freqfeed.exchanges.binance.books import BookStreams
from freqfeed.exchanges.binance.gateway.admission import Admitted, Refused, admit
from freqfeed.exchanges.binance.gateway.history import Forward, History
from freqfeed.exchanges.binance.gateway.permanent import PermanentAnswers
from freqfeed.exchanges.binance.upstream import Reply, Upstream
from freqfeed.gateway.lifecycle import listen, release, serve_until_stopped
from freqfeed.gateway.notify import notify
from freqfeed.influx import InfluxDB
from freqfeed.ratelimit import USED_WEIGHT_HEADER

log = logging.getLogger(__name__)

STATUS_PATH = "/_freqfeed/status"


class Gateway:
    def __init__(self, config: Config, influx: InfluxDB | None = None) -> None:
        self.config = config
        self.market = "futures" if config.futures else "spot"
        self.clock = ExchangeClock()
        self.upstream = Upstream(config, self.clock)
        self.influx = influx or InfluxDB(config.influxdb, retries=1)
        self.formats: dict[str, wire.SymbolFormat] = {}
        state_dir = config.gateway.state_dir or os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        self.history = History(config, self.influx, self.clock, self.formats.get,
                               state_dir=Path(state_dir) if state_dir else None)
        self.books = BookStreams(config, self.formats)
        self.permanent = PermanentAnswers(Path(state_dir) if state_dir else None)
        self.started = time.time()
        self.counters: Counter[str] = Counter()
        self.by_endpoint: dict[str, Counter[str]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._runner: web.AppRunner | None = None
        self.port = config.gateway.port
        self.metrics: Any = None  # freqfeed.metrics.MetricsServer when gateway.metrics_listen is set
        self.latency: Any = None  # its request duration histogram (freqfeed.metrics.Latency)

    # -- life cycle -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(STATUS_PATH, self.status_endpoint)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name="gateway"))
        self._runner, self.port = await listen(self.app(), self.config.gateway.host, self.config.gateway.port)
        if self.config.gateway.metrics_listen:
            from freqfeed import metrics

            self.metrics, self.latency = await metrics.serve_gateway_metrics(self.config.gateway.metrics_listen,
                                                                              metrics.GatewayCollector(self))
        log.info("gateway listening on http://%s:%d for %s market data (InfluxDB %s, Binance %s)",
                 self.config.gateway.host, self.port, self.market, self.config.influxdb.url,
                 self.config.exchange.rest_url)

    async def _run(self) -> None:
        self._tasks.append(asyncio.create_task(self.history.watch_load(), name="load-deadline"))
        if self.history.snapshot_path is not None and self.history.snapshot_path.exists():
            self.history.prefetch_snapshot()
        await self._connect_binance()
        self._tasks.append(asyncio.create_task(self.history.run(), name="history"))
        self._tasks.append(asyncio.create_task(self.books.run(), name="books"))
        self._tasks.append(asyncio.create_task(self.upstream.keep_fresh(), name="upstream"))
        self._tasks.append(asyncio.create_task(self._report(), name="report"))

    async def _connect_binance(self) -> None:
        """exchangeInfo and the clock, before serving: without them nothing can be checked or timed."""
        reported = 0.0
        while True:
            if await self.upstream.sync_clock() and await self.upstream.refresh_exchange_info():
                self._update_formats()
                await asyncio.sleep(1.0)
                await self.upstream.sync_clock()  # a second sample gives the clock's rate
                return
            if time.monotonic() - reported > 60:
                reported = time.monotonic()
                log.error("gateway: Binance (%s) gives no exchangeInfo or time yet; retrying every 5s",
                          self.config.exchange.rest_url)
            await asyncio.sleep(5)

    def _update_formats(self) -> None:
        info = self.upstream.exchange_info
        if info is not None:
            self.formats.update(wire.symbol_formats(self.market, info))
            self.books.trading = [str(s.get("symbol")) for s in info.get("symbols") or []
                                  if s.get("status", "TRADING") == "TRADING"]

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await release(self._runner, self.metrics, self.upstream, self.influx)

    # -- requests ---------------------------------------------------------------------------------

    def _count(self, endpoint: str, outcome: str, started: float = 0.0) -> None:
        """Counted per known endpoint (admission's labels) plus one "other": the table stays bounded."""
        if self.latency is not None and started:
            self.latency.observe(endpoint, outcome, time.perf_counter() - started)
        self.counters["requests"] += 1
        self.counters[outcome] += 1
        self.by_endpoint.setdefault(endpoint, Counter())[outcome] += 1

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            admitted = self._refusal(request)
        except Refused as refused:
            self._count(refused.label, "refused", started)
            self.counters[f"refused: {refused.kind}"] += 1
            return _send(refused.reply)
        endpoint, params = admitted.label, admitted.params
        try:
            reply = await self._local(endpoint, dict(params))
        except wire.BinanceError as exc:
            self._count(endpoint, "local errors", started)
            reply = Reply(exc.status, json.dumps({"code": exc.code, "msg": exc.msg}).encode(),
                          {"Content-Type": "application/json", **exc.headers})
            return _send(reply)
        except Forward as why:
            if why.fallback:
                self.counters["close-wait fallbacks"] += 1
                log.warning("close wait over, asking Binance: %s %s: %s", admitted.endpoint.path, dict(params),
                            why.reason)
            reply = None
            reason = why.reason
        else:
            reason = ""
        if reply is None and (kept := self.permanent.get(endpoint, dict(params))) is not None:
            reply = self._json(kept)  # an immutable answer kept from an earlier forward
        if reply is None:
            if reason:
                self.counters[f"forward: {_reason_kind(reason)}"] += 1
            reply = await self.upstream.get(admitted.endpoint.path, params, endpoint=endpoint, reason=reason)
            self._count(endpoint, "forwarded", started)
            self.permanent.offer(endpoint, dict(params), reply.status, reply.body, self.clock.now())
        else:
            self._count(endpoint, "local", started)
        return _send(reply)

    def _refusal(self, request: web.Request) -> Admitted:
        """The request as admitted (gateway.admission, on the raw target), or Refused: other methods,
        other markets' paths, anything not a public endpoint, signed or private requests, unknown parameters."""
        try:
            return admit(self.market, request.method, request.raw_path, request.headers)
        except Refused as refused:
            if refused.kind in ("signed", "private"):
                path = request.raw_path.partition("?")[0][:200]  # never the query: it may hold a signature
                log.warning("refused %s %r: signed or private (%s)", request.method, path,
                            request.headers.get("User-Agent", "?")[:100])
            raise

    async def _local(self, endpoint: str, params: dict[str, str]) -> Reply | None:
        """The answer from here, or None for endpoints that are always forwarded."""
        answers = {"ping": self._ping, "time": self._time, "exchangeInfo": self._exchange_info, "klines": self._klines,
                   "depth": self._depth, "ticker/bookTicker": self._book_ticker}
        if self.market == "futures":
            answers.update({"markPriceKlines": self._mark_klines, "fundingRate": self._funding})
        answer = answers.get(endpoint)
        if answer is None:
            symbol = params.get("symbol")
            if symbol is not None and self.formats and symbol not in self.formats:
                raise wire.invalid_symbol()  # Binance's answer, without spending forwarded weight on it
            return None
        if not self.formats and endpoint not in ("ping", "time"):
            # starting: held (at most gateway.load_timeout) until exchangeInfo is in, not forwarded
            await self.history.hold(lambda: bool(self.formats))
        return self._json(await answer(params))

    async def _ping(self, params: dict[str, str]) -> bytes:
        return b"{}"

    async def _time(self, params: dict[str, str]) -> bytes:
        return json.dumps({"serverTime": self.clock.now()}).encode()

    async def _exchange_info(self, params: dict[str, str]) -> bytes:
        if not self.upstream.exchange_info_body:
            raise Forward("no exchangeInfo cached yet")
        return self.upstream.exchange_info_body

    async def _klines(self, params: dict[str, str]) -> bytes:
        return await self.history.klines(wire.parse_klines(self.market, params, self._known()), mark=False)

    async def _mark_klines(self, params: dict[str, str]) -> bytes:
        return await self.history.klines(wire.parse_klines(self.market, params, self._known()), mark=True)

    async def _funding(self, params: dict[str, str]) -> bytes:
        if "symbol" not in params:
            raise Forward("fundingRate of every symbol")
        return await self.history.funding_rates(wire.parse_funding(params, self._known()))

    async def _depth(self, params: dict[str, str]) -> bytes:
        return self.books.depth(wire.parse_depth(self.market, params, self._known()))

    async def _book_ticker(self, params: dict[str, str]) -> bytes:
        return self.books.book_tickers(wire.parse_symbols(self.market, params, self._known()))

    def _known(self) -> frozenset[str] | dict[str, wire.SymbolFormat]:
        if not self.formats:
            raise Forward("no exchangeInfo yet to check symbols against")
        return self.formats

    def _json(self, body: bytes) -> Reply:
        return Reply(200, body, {"Content-Type": "application/json",
                                 USED_WEIGHT_HEADER: str(self.upstream.limiter.used_weight)})

    # -- status -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        stats = self.upstream.limiter.stats
        minute = self.clock.now() // 60_000
        weights = [w for m, w in stats.by_minute.items() if m < minute]
        history = self.history
        return {
            "up": True,
            "listen": f"{self.config.gateway.host}:{self.port}",
            "market": self.market,
            "started": int(self.started * 1000),
            "requests": self.counters["requests"],
            "local": self.counters["local"],
            "forwarded": self.counters["forwarded"],
            "refused": self.counters["refused"],
            "refused_reasons": {k.removeprefix("refused: "): v for k, v in self.counters.items()
                                if k.startswith("refused: ")},
            "local_errors": self.counters["local errors"],
            "close_wait_fallbacks": self.counters["close-wait fallbacks"],
            "forward_reasons": {k.removeprefix("forward: "): v for k, v in self.counters.items()
                                if k.startswith("forward: ")},
            "cache_hits": self.upstream.cache_hits,
            "forward_cache": {"entries": len(self.upstream._cache), "bytes": self.upstream.cache_bytes,
                              "evictions": self.upstream.cache_evictions},
            "coalesced": self.upstream.coalesced,
            "upstream_requests": self.upstream.forwarded,
            "refused_locally_rate_limited": self.upstream.refused_locally,
            "forwarded_weight_last_minute": stats.by_minute.get(minute - 1, 0),
            "forwarded_weight_peak_minute": max(weights, default=0),
            "forwarded_weight_total": stats.weight,
            "used_weight": self.upstream.limiter.used_weight,
            "rate_limited": stats.rate_limited,
            "banned": stats.banned,
            "state": history.state,
            "load": {"state": history.state,
                     "seconds": round(history.load_seconds, 2) if history.load_seconds is not None else None,
                     "pieces": history.pieces_done, "pieces_total": history.pieces_total,
                     "candles": history.load_rows, "error": history.load_error, "progress": history.progress(),
                     "restored_series": history.restored, "snapshot_error": history.snapshot_error},
            "block_cache": history.blocks.status(),
            "influxdb_ok": history.poll_error is None and history.loaded,
            "influxdb_error": history.poll_error,
            "influxdb_last_poll_s": round(time.monotonic() - history.last_poll_ok, 1) if history.last_poll_ok else None,
            "exchange_info_age_s": round(time.monotonic() - self.upstream.exchange_info_at, 1)
            if self.upstream.exchange_info_at else None,
            "books": self.books.status(),
            "permanent": self.permanent.status(),
            "by_endpoint": {k: dict(v) for k, v in sorted(self.by_endpoint.items())},
        }

    async def status_endpoint(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())

    async def _report(self) -> None:
        """A log line a minute: what was served here, what went to Binance."""
        before = Counter(self.counters)
        while True:
            await asyncio.sleep(60)
            self._update_formats()
            now = Counter(self.counters)
            delta = {k: now[k] - before[k] for k in ("requests", "local", "forwarded", "close-wait fallbacks")}
            before = now
            if delta["requests"]:
                stats = self.upstream.limiter.stats
                log.info("gateway, last minute: %d requests, %d answered here, %d forwarded (weight %d), "
                         "%d close-wait fallbacks; %d cache hits and %d coalesced so far", delta["requests"],
                         delta["local"], delta["forwarded"],
                         stats.by_minute.get(self.clock.now() // 60_000 - 1, 0), delta["close-wait fallbacks"],
                         self.upstream.cache_hits, self.upstream.coalesced)


def _reason_kind(reason: str) -> str:
    for kind in ("not collected", "retention", "does not hold", "no current", "newest", "before InfluxDB",
                 "close wait", "after", "InfluxDB:", "loading", "exchangeInfo", "holds", "complete", "every symbol"):
        if kind in reason:
            return kind
    return "other"


def _send(reply: Reply) -> web.Response:
    headers = dict(reply.headers)
    content_type = headers.pop("Content-Type", "application/json").split(";")[0]
    return web.Response(status=reply.status, body=reply.body, headers=headers, content_type=content_type)


async def serve(config: Config) -> int:
    gateway = Gateway(config)
    return await serve_until_stopped(config, gateway, lambda stop: _notify_systemd(gateway, stop))


async def _notify_systemd(gateway: Gateway, stop: asyncio.Event) -> None:
    """STATUS= with the load's progress every second, READY=1 once loaded or degraded (gateway.load_timeout)."""
    history = gateway.history
    while not history.settled.is_set():
        notify(f"STATUS={history.progress()}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(history.settled.wait(), timeout=1.0)
    notify("READY=1", f"STATUS={history.progress()}")
    log.log(logging.INFO if history.state == "ready" else logging.ERROR, "gateway %s", history.progress())
    while history.state != "ready":  # degraded: say when the load completes
        await asyncio.sleep(1.0)
        notify(f"STATUS={history.progress()}")
    notify(f"STATUS={history.progress()}")


def main(config: Config) -> int:
    return asyncio.run(serve(config))
