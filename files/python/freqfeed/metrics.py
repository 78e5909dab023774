"""Prometheus metrics of the producer, the gateway and the sync: every name, help text and label set is in METRICS.

The producer and the gateway serve `/metrics` on their own listen address (`producer.metrics_listen`,
`gateway.metrics_listen`; empty: off) from the process's event loop. What they expose is read at scrape time
from the state each process already keeps (counters, the writer, the limiter, the series, the caches) by a
custom collector: the hot path is unchanged, except the gateway's latency histogram (one observation per
request). The sync, a oneshot, writes its figures atomically as a `.prom` file for node_exporter's textfile
collector (`sync.metrics_file`).

Labels are bounded: `endpoint` is a known endpoint's name or `other` (Binance's
freqfeed.exchanges.binance.gateway.admission, Hyperliquid's info types), `outcome` and `reason` come from fixed
sets, `pair` and `timeframe` only from the configuration; never a raw path, a parameter or a client's text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, generate_latest, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from freqfeed.timeframes import timeframe_ms

if TYPE_CHECKING:
    from freqfeed.config import Config
    from freqfeed.exchanges.binance.gateway.app import Gateway
    from freqfeed.producer import Producer
    from freqfeed.ratelimit import WeightLimiter
    from freqfeed.sync import SeriesJob, SyncReport

log = logging.getLogger(__name__)

Kind = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True)
class Spec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()


_SERIES = ("pair", "timeframe", "kind")
_REST = {  # the same figures for the producer's REST client and the gateway's forwarding (prefix differs)
    "requests_total": ("counter", "REST requests sent to Binance"),
    "weight_total": ("counter", "request weight sent to Binance"),
    "weight_used": ("gauge", "request weight used this minute, as Binance last said (X-MBX-USED-WEIGHT-1M)"),
    "weight_budget": ("gauge", "request weight this process may use per minute (exchange.max_weight_share)"),
    "weight_limit": ("gauge", "Binance's request weight limit per minute"),
    "rate_limited_total": ("counter", "HTTP 429 answers from Binance"),
    "banned_total": ("counter", "HTTP 418 answers (IP bans) from Binance"),
    "ban_until_timestamp_seconds": ("gauge", "when the current 418 ban ends (0: not banned)"),
    "paused_seconds": ("gauge", "seconds until REST requests may go out again after a 429/418 (0: not paused)"),
}

METRICS: dict[str, Spec] = {s.name: s for s in [
    # -- producer
    Spec("freqfeed_producer_series_lag_seconds", "gauge",
         "exchange seconds the newest stored candle is behind the newest close, per series (its age is this plus "
         "the period)", _SERIES),
    Spec("freqfeed_producer_newest_candle_age_seconds", "gauge",
         "exchange seconds since the newest stored candle opened, the oldest of the timeframe's pairs",
         ("timeframe", "kind")),
    Spec("freqfeed_producer_silent_series", "gauge", "series whose stream delivers no closed candle, per timeframe",
         ("timeframe", "kind")),
    Spec("freqfeed_producer_stream_connected", "gauge", "1 while the websocket stream is connected", ("stream",)),
    Spec("freqfeed_producer_stream_last_message_age_seconds", "gauge",
         "seconds since the stream's last message", ("stream",)),
    Spec("freqfeed_producer_stream_reconnects_total", "counter", "websocket reconnections"),
    Spec("freqfeed_producer_stream_disconnects_total", "counter", "websocket disconnections"),
    Spec("freqfeed_producer_stream_malformed_messages_total", "counter", "stream messages skipped as malformed"),
    Spec("freqfeed_producer_silent_streams_total", "counter", "times a stream was found silent"),
    Spec("freqfeed_producer_streamed_candles_total", "counter", "closed candles received over the streams"),
    *(Spec(f"freqfeed_producer_rest_{suffix}", kind, help) for suffix, (kind, help) in _REST.items()),  # type: ignore[arg-type]
    Spec("freqfeed_producer_backfill_running", "gauge", "1 while the start-up backfill runs"),
    Spec("freqfeed_producer_backfill_pages", "gauge", "backfill pages (REST requests) planned and done",
         ("state",)),
    Spec("freqfeed_producer_backfill_candles", "gauge", "backfill candles planned and done", ("state",)),
    Spec("freqfeed_producer_influxdb_errors_total", "counter", "failed InfluxDB requests", ("operation",)),
    Spec("freqfeed_producer_influxdb_written_points_total", "counter", "points written to InfluxDB"),
    Spec("freqfeed_producer_influxdb_dropped_points_total", "counter",
         "buffered points dropped past producer.buffer_limit (fetched again over REST)"),
    Spec("freqfeed_producer_influxdb_write_failing_seconds", "gauge",
         "seconds InfluxDB has refused writes (0: writes succeed)"),
    Spec("freqfeed_producer_write_buffer_points", "gauge", "points waiting to be written to InfluxDB"),
    Spec("freqfeed_producer_write_buffer_limit_points", "gauge", "producer.buffer_limit"),
    Spec("freqfeed_producer_repairs_total", "counter", "REST repairs of a series, by why", ("reason",)),
    Spec("freqfeed_producer_repairs_pending", "gauge", "repairs queued"),
    Spec("freqfeed_producer_start_time_seconds", "gauge", "when the producer started (unix time)"),
    # -- gateway
    Spec("freqfeed_gateway_requests_total", "counter",
         "requests by endpoint (known endpoints, plus `other`) and outcome (local, forwarded, refused, local_error)",
         ("endpoint", "outcome")),
    Spec("freqfeed_gateway_forwards_total", "counter", "requests forwarded to Binance, by reason kind", ("reason",)),
    Spec("freqfeed_gateway_refusals_total", "counter", "requests refused, by reason kind", ("reason",)),
    Spec("freqfeed_gateway_close_wait_fallbacks_total", "counter",
         "requests forwarded because the candle that just closed did not arrive within gateway.close_wait"),
    Spec("freqfeed_gateway_request_duration_seconds", "histogram", "time to answer a request",
         ("endpoint", "outcome")),
    Spec("freqfeed_gateway_cache_hits_total", "counter", "forwarded requests answered from the forward cache"),
    Spec("freqfeed_gateway_coalesced_total", "counter", "forwarded requests that joined one already in flight"),
    Spec("freqfeed_gateway_forward_cache_entries", "gauge", "answers in the forward cache"),
    Spec("freqfeed_gateway_forward_cache_bytes", "gauge", "bytes of answers in the forward cache"),
    Spec("freqfeed_gateway_forward_cache_evictions_total", "counter", "answers dropped from the forward cache"),
    Spec("freqfeed_gateway_state", "gauge", "1 for the gateway's state: connecting, loading, ready or degraded "
         "(load_timeout ran out: what is not loaded is forwarded)", ("state",)),
    Spec("freqfeed_gateway_block_cache_bytes", "gauge", "bytes of decompressed candle blocks kept (block_cache_mb)"),
    Spec("freqfeed_gateway_block_cache_hits_total", "counter", "candle blocks found decompressed in the block cache"),
    Spec("freqfeed_gateway_block_cache_misses_total", "counter", "candle blocks decompressed (not in the block cache)"),
    Spec("freqfeed_gateway_refused_locally_rate_limited_total", "counter",
         "forwards refused here (429) because the weight budget was spent"),
    *(Spec(f"freqfeed_gateway_upstream_{suffix}", kind, help) for suffix, (kind, help) in _REST.items()),  # type: ignore[arg-type]
    Spec("freqfeed_gateway_influxdb_up", "gauge", "1 when the caches are loaded and the last InfluxDB poll succeeded"),
    Spec("freqfeed_gateway_influxdb_last_poll_age_seconds", "gauge", "seconds since the last successful poll"),
    Spec("freqfeed_gateway_exchange_info_age_seconds", "gauge", "seconds since exchangeInfo was fetched"),
    Spec("freqfeed_gateway_newest_candle_age_seconds", "gauge",
         "exchange seconds since the newest cached closed candle opened, the oldest of the timeframe's pairs "
         "(per timeframe, not per pair: the scrape stays small at 300 pairs; the producer has them per series)",
         ("timeframe",)),
    Spec("freqfeed_gateway_book_served_total", "counter", "depth and bookTicker answers served from the streams"),
    Spec("freqfeed_gateway_book_forwards_total", "counter", "depth and bookTicker requests forwarded, by reason",
         ("reason",)),
    Spec("freqfeed_gateway_book_oldest_served_age_seconds", "gauge",
         "age of the oldest book served this minute (never above gateway.book_max_age)"),
    Spec("freqfeed_gateway_book_connections", "gauge", "book stream connections, by state", ("state",)),
    Spec("freqfeed_gateway_book_streams", "gauge", "streamed books, by kind (depth, ticker)", ("kind",)),
    Spec("freqfeed_gateway_book_reconnects_total", "counter", "book stream reconnections"),
    Spec("freqfeed_gateway_book_silences_total", "counter", "book connections replaced after a silence"),
    Spec("freqfeed_gateway_start_time_seconds", "gauge", "when the gateway started (unix time)"),
    # -- sync (the .prom file)
    Spec("freqfeed_sync_last_run_timestamp_seconds", "gauge", "when the last sync run finished"),
    Spec("freqfeed_sync_last_success_timestamp_seconds", "gauge", "when the last successful sync run finished"),
    Spec("freqfeed_sync_success", "gauge", "1 when the last sync run had no error"),
    Spec("freqfeed_sync_duration_seconds", "gauge", "how long the last sync run took"),
    Spec("freqfeed_sync_series", "gauge", "files the sync keeps"),
    Spec("freqfeed_sync_files_written", "gauge", "files rewritten by the last run"),
    Spec("freqfeed_sync_candles_added", "gauge", "candles added by the last run"),
    Spec("freqfeed_sync_errors", "gauge", "errors of the last run (series failed)"),
    Spec("freqfeed_sync_files_quarantined", "gauge", "foreign files set aside by the last run"),
    Spec("freqfeed_sync_newest_candle_timestamp_seconds", "gauge",
         "open time of the oldest 'newest candle' among the candle files of a timeframe", ("timeframe",)),
    Spec("freqfeed_sync_period_seconds", "gauge", "the timeframe's period", ("timeframe",)),
    Spec("freqfeed_sync_history_candles", "gauge",
         "candles the shortest candle file of a timeframe spans (first to last)", ("timeframe",)),
    Spec("freqfeed_sync_history_planned_candles", "gauge",
         "candles the files of a timeframe should keep (backfill.candles or history; 0: everything)",
         ("timeframe",)),
]}

# Label values always exposed (at 0 until counted), so a panel or rule finds its series in a healthy fleet.
REPAIR_REASONS = ("start-up", "gap in the stream", "reconnect", "closed", "silent stream", "late candle",
                  "funding time")  # freqfeed.producer's reasons for a REST repair
FORWARD_REASONS = ("not collected", "retention", "does not hold", "no current", "newest", "before InfluxDB",
                   "close wait", "after", "InfluxDB:", "loading", "exchangeInfo", "holds", "complete",
                   "every symbol", "other")  # freqfeed.exchanges.binance.gateway.app._reason_kind
GATEWAY_STATES = ("connecting", "loading", "ready", "degraded")  # binance gateway.history.History.state
REFUSAL_REASONS = ("method", "signed", "target", "path", "private", "market", "parameters")  # binance gateway.admission
BOOK_FORWARD_REASONS = ("deeper than 20 levels", "not streamed yet", "stale or dropped", "book ticker not streamed yet",
                        "book ticker stale or dropped")  # freqfeed.exchanges.binance.books
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def family(name: str, value: float | None = None) -> GaugeMetricFamily | CounterMetricFamily:
    """The metric family of `name` as METRICS declares it (a single value when given, else add_metric)."""
    spec = METRICS[name]
    labels = list(spec.labels) if value is None else None
    if spec.kind == "counter":
        return CounterMetricFamily(spec.name, spec.help, value=value, labels=labels)
    return GaugeMetricFamily(spec.name, spec.help, value=value, labels=labels)


def histogram(name: str, registry: CollectorRegistry) -> Histogram:
    spec = METRICS[name]
    base = spec.name.removeprefix("freqfeed_")
    return Histogram(base, spec.help, list(spec.labels), namespace="freqfeed", registry=registry,
                     buckets=LATENCY_BUCKETS)


class Latency:
    """The gateway's request duration histogram, one observation per request: its children are kept per
    (endpoint, outcome), bounded like the gateway's own table, so the hot path skips `labels()` (a lock and
    a lookup, ~3 us) after the first request of each."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = histogram("freqfeed_gateway_request_duration_seconds", registry)
        self._children: dict[tuple[str, str], Any] = {}

    def observe(self, endpoint: str, outcome: str, seconds: float) -> None:
        child = self._children.get((endpoint, outcome))
        if child is None:
            child = self.histogram.labels(endpoint, _OUTCOMES.get(outcome, "other"))
            self._children[(endpoint, outcome)] = child
        child.observe(seconds)


def slug(text: str) -> str:
    """A reason's text as a label value: `not collected` -> `not_collected`, `InfluxDB:` -> `influxdb`."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "other"


def _rest(prefix: str, limiter: WeightLimiter) -> Iterator[Metric]:
    stats = limiter.stats
    paused = limiter.paused_for()
    banned = limiter.pause_status == 418 and paused > 0
    values = {"requests_total": stats.requests, "weight_total": stats.weight, "weight_used": limiter.used_weight,
              "weight_budget": limiter.budget, "weight_limit": limiter.weight_limit,
              "rate_limited_total": stats.rate_limited, "banned_total": stats.banned,
              "ban_until_timestamp_seconds": time.time() + paused if banned else 0.0, "paused_seconds": paused}
    for suffix, value in values.items():
        yield family(f"{prefix}_{suffix}", float(value))


def _by(name: str, counts: Iterable[tuple[str, float]], known: Iterable[str] = ()) -> Metric:
    metric = family(name)
    merged: dict[str, float] = {slug(label): 0.0 for label in known}
    for label, count in counts:
        merged[label] = merged.get(label, 0.0) + count
    for label, count in sorted(merged.items()):
        metric.add_metric([label], count)
    return metric


class ProducerCollector(Collector):
    """The producer's state at scrape time (the same data as its health file)."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer

    def collect(self) -> Iterator[Metric]:
        p = self.producer
        now = p.clock.now()
        lag = family("freqfeed_producer_series_lag_seconds")
        oldest: dict[tuple[str, str], int] = {}
        silent: dict[tuple[str, str], int] = {}
        for s in list(p.series.values()):
            kind = "trade" if s.kind == "ohlcv" else s.kind
            group = (s.timeframe, kind)
            silent[group] = silent.get(group, 0) + s.silent
            if s.last_open is not None:
                lag.add_metric([s.pair, s.timeframe, kind], max(0.0, (now - s.last_open - s.period) / 1000))
                oldest[group] = min(s.last_open, oldest.get(group, s.last_open))
        age, quiet = family("freqfeed_producer_newest_candle_age_seconds"), family("freqfeed_producer_silent_series")
        for group, last in oldest.items():
            age.add_metric(list(group), max(0.0, (now - last) / 1000))
        for group, count in silent.items():
            quiet.add_metric(list(group), float(count))
        yield from (lag, age, quiet)
        connected = family("freqfeed_producer_stream_connected")
        for label, up in sorted(p.stream_up.items()):
            connected.add_metric([slug(label)], float(up))
        yield connected
        seen = family("freqfeed_producer_stream_last_message_age_seconds")
        mono = time.monotonic()
        for timeframe, at in sorted(p.stream_seen.items()):
            seen.add_metric([f"klines_{timeframe}"], mono - at)
        if p.funding:
            seen.add_metric(["markprice"], mono - p.mark_stream_last)
        yield seen
        counters = p.counters
        for name, key in (("reconnects", "reconnects"), ("disconnects", "disconnects"),
                          ("malformed_messages", "malformed messages"), ("streamed_candles", "streamed candles")):
            yield family(f"freqfeed_producer_stream_{name}_total" if name != "streamed_candles"
                         else "freqfeed_producer_streamed_candles_total", float(counters[key]))
        yield family("freqfeed_producer_silent_streams_total", float(counters["silent streams"]))
        yield from _rest("freqfeed_producer_rest", p.rest.limiter)
        progress = p.backfill_progress
        yield family("freqfeed_producer_backfill_running", float(progress is not None and not p.backfill_summary))
        pages, candles = family("freqfeed_producer_backfill_pages"), family("freqfeed_producer_backfill_candles")
        if progress is not None:
            pages.add_metric(["total"], progress.pages_total)
            pages.add_metric(["done"], progress.pages_done)
            candles.add_metric(["total"], progress.candles_total)
            candles.add_metric(["done"], progress.candles_done)
        yield from (pages, candles)
        yield _by("freqfeed_producer_influxdb_errors_total", getattr(p.influx, "errors", {}).items())
        writer = p.writer
        yield family("freqfeed_producer_influxdb_written_points_total", float(writer.written))
        yield family("freqfeed_producer_influxdb_dropped_points_total", float(writer.dropped))
        failing = 0.0 if writer.failing_since is None else mono - writer.failing_since
        yield family("freqfeed_producer_influxdb_write_failing_seconds", failing)
        yield family("freqfeed_producer_write_buffer_points", float(writer.pending))
        yield family("freqfeed_producer_write_buffer_limit_points", float(writer.buffer_limit))
        repairs = [(slug(k.removeprefix("repair: ")), v) for k, v in list(counters.items()) if k.startswith("repair: ")]
        yield _by("freqfeed_producer_repairs_total", repairs, REPAIR_REASONS)
        yield family("freqfeed_producer_repairs_pending", float(len(p._pending)))
        yield family("freqfeed_producer_start_time_seconds", p.started)


_OUTCOMES = {"local": "local", "forwarded": "forwarded", "refused": "refused", "local errors": "local_error"}


class GatewayCollector(Collector):
    """The gateway's counters and caches at scrape time (the data of its /_freqfeed/status)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        g = self.gateway
        requests = family("freqfeed_gateway_requests_total")
        for endpoint, outcomes in sorted(g.by_endpoint.items()):
            for outcome, count in sorted(outcomes.items()):
                requests.add_metric([endpoint, _OUTCOMES.get(outcome, "other")], count)
        yield requests
        counters = list(g.counters.items())
        yield _by("freqfeed_gateway_forwards_total",
                  [(slug(k.removeprefix("forward: ")), v) for k, v in counters if k.startswith("forward: ")],
                  FORWARD_REASONS)
        yield _by("freqfeed_gateway_refusals_total",
                  [(slug(k.removeprefix("refused: ")), v) for k, v in counters if k.startswith("refused: ")],
                  REFUSAL_REASONS)
        yield family("freqfeed_gateway_close_wait_fallbacks_total", float(g.counters["close-wait fallbacks"]))
        up = g.upstream
        yield family("freqfeed_gateway_cache_hits_total", float(up.cache_hits))
        yield family("freqfeed_gateway_coalesced_total", float(up.coalesced))
        yield family("freqfeed_gateway_forward_cache_entries", float(len(up._cache)))
        yield family("freqfeed_gateway_forward_cache_bytes", float(up.cache_bytes))
        yield family("freqfeed_gateway_forward_cache_evictions_total", float(up.cache_evictions))
        yield family("freqfeed_gateway_refused_locally_rate_limited_total", float(up.refused_locally))
        blocks = getattr(g.history, "blocks", None)
        if blocks is not None:
            yield family("freqfeed_gateway_block_cache_bytes", float(blocks.nbytes))
            yield family("freqfeed_gateway_block_cache_hits_total", float(blocks.hits))
            yield family("freqfeed_gateway_block_cache_misses_total", float(blocks.misses))
        yield from _rest("freqfeed_gateway_upstream", up.limiter)
        history = g.history
        states = family("freqfeed_gateway_state")
        for name in GATEWAY_STATES:
            states.add_metric([name], float(getattr(history, "state", "") == name))
        yield states
        mono = time.monotonic()
        loaded = bool(getattr(history, "loaded", False))
        yield family("freqfeed_gateway_influxdb_up", float(loaded and getattr(history, "poll_error", None) is None))
        last_poll = getattr(history, "last_poll_ok", 0.0)
        if last_poll:
            yield family("freqfeed_gateway_influxdb_last_poll_age_seconds", mono - last_poll)
        if up.exchange_info_at:
            yield family("freqfeed_gateway_exchange_info_age_seconds", mono - up.exchange_info_at)
        oldest: dict[str, int] = {}
        for (_, timeframe), cache in list(getattr(history, "trade", {}).items()):
            last = getattr(cache, "last", None)
            if last is not None:
                oldest[timeframe] = min(last, oldest.get(timeframe, last))
        age = family("freqfeed_gateway_newest_candle_age_seconds")
        now = g.clock.now()
        for timeframe, last in oldest.items():
            age.add_metric([timeframe], max(0.0, (now - last) / 1000))
        yield age
        books = g.books
        yield family("freqfeed_gateway_book_served_total", float(books.served))
        yield _by("freqfeed_gateway_book_forwards_total", [(slug(k), v) for k, v in list(books.forwarded.items())],
                  BOOK_FORWARD_REASONS)
        yield family("freqfeed_gateway_book_oldest_served_age_seconds", books.oldest_served_ms / 1000)
        state = books.status()
        connections = family("freqfeed_gateway_book_connections")
        connections.add_metric(["up"], state["connections_up"])
        connections.add_metric(["down"], state["connections"] - state["connections_up"])
        yield connections
        streams = family("freqfeed_gateway_book_streams")
        streams.add_metric(["depth"], state["streamed"])
        streams.add_metric(["ticker"], state["ticker_streams"])
        yield streams
        yield family("freqfeed_gateway_book_reconnects_total", float(state["reconnects"]))
        yield family("freqfeed_gateway_book_silences_total", float(state["silences"]))
        yield family("freqfeed_gateway_start_time_seconds", g.started)


def registry_of(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    return registry


class MetricsServer:
    """`/metrics` of one registry on its own listen address, in the running event loop."""

    def __init__(self, listen: str, registry: CollectorRegistry) -> None:
        self.host = listen.rpartition(":")[0].strip("[]")
        self.port = int(listen.rpartition(":")[2])
        self.registry = registry
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, reuse_address=True).start()
        self.port = int(self._runner.addresses[0][1])
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        """Stops within a second: a scrape under way (or a scraper's open connection) does not hold the exit."""
        if self._runner is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._runner.cleanup(), timeout=1.0)
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def serve_gateway_metrics(listen: str, collector: Collector) -> tuple[MetricsServer | None, Latency]:
    """A gateway's /metrics (either exchange's): its collector and the request latency histogram, served on
    `listen`. An address that cannot be bound is logged with what to change, and the gateway serves on without
    /metrics (the bots' data first): the server is then None."""
    registry = registry_of(collector)
    latency = Latency(registry)
    server = MetricsServer(listen, registry)
    try:
        await server.start()
    except OSError as exc:
        log.error("cannot serve metrics on %s: %s (set gateway.metrics_listen to a free HOST:PORT, or empty to turn "
                  "them off)", listen, exc.strerror or exc)
        return None, latency
    return server, latency


# -- the sync's .prom file --------------------------------------------------------------------------


def _previous_success(path: Path) -> float:
    """The last success time the previous file holds (0 when none): a failing run keeps it."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith("freqfeed_sync_last_success_timestamp_seconds "):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def sync_families(config: Config, report: SyncReport | None, jobs: list[SeriesJob],
                  state: Mapping[str, Any], datadir: Path | None, previous_success: float) -> list[Metric]:
    """The figures of one sync run (report None: the run could not start, e.g. another sync held the lock)."""
    finished = time.time()
    ok = report is not None and report.ok
    families: list[Metric] = [family("freqfeed_sync_last_run_timestamp_seconds", finished),
                family("freqfeed_sync_last_success_timestamp_seconds", finished if ok else previous_success),
                family("freqfeed_sync_success", float(ok))]
    if report is None:
        return families
    families += [family("freqfeed_sync_duration_seconds", report.duration),
                 family("freqfeed_sync_series", float(report.series)),
                 family("freqfeed_sync_files_written", float(report.files_updated)),
                 family("freqfeed_sync_candles_added", float(report.candles_added)),
                 family("freqfeed_sync_errors", float(len(report.errors))),
                 family("freqfeed_sync_files_quarantined", float(len(report.quarantined)))]
    newest, period, spans, planned = (family(n) for n in (
        "freqfeed_sync_newest_candle_timestamp_seconds", "freqfeed_sync_period_seconds",
        "freqfeed_sync_history_candles", "freqfeed_sync_history_planned_candles"))
    by_tf: dict[str, list[SeriesJob]] = {}
    for job in jobs:
        if job.candle_type in ("spot", "futures"):
            by_tf.setdefault(job.timeframe, []).append(job)
    for timeframe, group in by_tf.items():
        step = timeframe_ms(timeframe)
        period.add_metric([timeframe], step / 1000)
        planned.add_metric([timeframe], float(group[0].keep))
        lasts = [report.newest.get(job.label) for job in group]
        if lasts and all(last is not None for last in lasts):
            newest.add_metric([timeframe], min(last for last in lasts if last is not None) / 1000)
        counts = []
        for job in group:
            known = state.get(str(job.path.relative_to(datadir))) if datadir is not None else None
            first, last = getattr(known, "first_ms", None), getattr(known, "last_ms", None)
            counts.append(0 if first is None or last is None else (last - first) // step + 1)
        spans.add_metric([timeframe], float(min(counts, default=0)))
    return [*families, newest, period, spans, planned]


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def write_sync_metrics(config: Config, report: SyncReport | None) -> None:
    """The sync's `.prom` file, written atomically (write_to_textfile: a temporary file, then a rename)."""
    path = config.sync.metrics_file
    if path is None:
        return
    from freqfeed import sync

    try:
        jobs = sync.plan(config)
        datadir = sync._datadir(config)
        state = sync._load_state(datadir) if report is not None else {}
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(sync_families(config, report, jobs, state, datadir, _previous_success(path))))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), registry)
    except (OSError, ValueError) as exc:
        log.warning("cannot write the sync metrics file %s: %s", path, exc)
