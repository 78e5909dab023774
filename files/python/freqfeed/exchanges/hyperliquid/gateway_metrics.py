"""Prometheus metrics of the Hyperliquid gateway (`gateway.metrics_listen`): the same families as Binance's
gateway (freqfeed.metrics.METRICS), so the dashboards and alert rules read both.

Labels stay bounded: `endpoint` is `info:<type>` for a type of the allowlist (admission.FIELDS), else `other`
(never the body's text); forward, refusal and book reasons come from the fixed sets below, always exposed
(at 0 until counted). Read at scrape time from what the gateway already counts (its /_freqfeed/status).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from freqfeed import metrics
from freqfeed.exchanges.hyperliquid import admission

if TYPE_CHECKING:
    from freqfeed.exchanges.hyperliquid.gateway import HyperliquidGateway

# gateway._reason_kind's kinds (plus "other"), exposed at 0 until counted
FORWARD_REASONS = ("not recorded", "closed", "current", "stale", "funding", "InfluxDB:", "starting", "close wait",
                   "streamed book", "other")
# gateway's `refused: <kind>` counters: admission.route's kinds and the body's HTTP status
REFUSAL_REASONS = {"exchange": "exchange", "path": "path", "method": "method", "400": "not_json",
                   "413": "too_large", "422": "invalid_body"}
BOOK_FORWARD_REASONS = ("stale or dropped",)  # a configured coin's book not fresh (or not received yet)
GATEWAY_STATES = ("connecting", "ready")  # HyperliquidGateway.status()["state"]


def endpoint_label(kind: str) -> str:
    """`info:candleSnapshot` for an allowlisted type, `other` for anything else."""
    return f"info:{kind}" if kind in admission.FIELDS else "other"


class HyperliquidGatewayCollector(Collector):
    def __init__(self, gateway: HyperliquidGateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        g = self.gateway
        requests = metrics.family("freqfeed_gateway_requests_total")
        for kind, outcomes in sorted(g.by_type.items()):
            for outcome, count in sorted(outcomes.items()):
                requests.add_metric([endpoint_label(kind), outcome], count)
        yield requests
        counters = list(g.counters.items())
        yield metrics._by("freqfeed_gateway_forwards_total",
                          [(metrics.slug(k.removeprefix("forward: ")), v) for k, v in counters
                           if k.startswith("forward: ")], FORWARD_REASONS)
        yield metrics._by("freqfeed_gateway_refusals_total",
                          [(REFUSAL_REASONS.get(k.removeprefix("refused: "), "other"), v) for k, v in counters
                           if k.startswith("refused: ")], REFUSAL_REASONS.values())
        yield metrics.family("freqfeed_gateway_close_wait_fallbacks_total", float(g.counters["forward: close wait"]))
        cache = g.cache
        yield metrics.family("freqfeed_gateway_cache_hits_total", float(cache.hits))
        yield metrics.family("freqfeed_gateway_coalesced_total", float(cache.coalesced))
        yield metrics.family("freqfeed_gateway_forward_cache_entries", float(len(cache)))
        yield metrics.family("freqfeed_gateway_forward_cache_bytes", float(cache.bytes))
        yield metrics.family("freqfeed_gateway_forward_cache_evictions_total", float(cache.evictions))
        yield metrics.family("freqfeed_gateway_refused_locally_rate_limited_total",
                             float(g.counters["refused locally: rate limited"]))
        yield from metrics._rest("freqfeed_gateway_upstream", g.rest.limiter)
        ready = g.ready.is_set()
        states = metrics.family("freqfeed_gateway_state")
        for name in metrics.GATEWAY_STATES:  # Binance's four: the same series in every fleet
            states.add_metric([name], float(name == ("ready" if ready else "connecting")))
        yield states
        mono = time.monotonic()
        yield metrics.family("freqfeed_gateway_influxdb_up", float(ready and g.influxdb_error is None))
        if g.influxdb_ok_at:
            yield metrics.family("freqfeed_gateway_influxdb_last_poll_age_seconds", mono - g.influxdb_ok_at)
        if g.meta_at:
            yield metrics.family("freqfeed_gateway_exchange_info_age_seconds", mono - g.meta_at)
        books = g.books
        served = books.served if books is not None else 0
        yield metrics.family("freqfeed_gateway_book_served_total", float(served))
        yield metrics._by("freqfeed_gateway_book_forwards_total",
                          [("stale_or_dropped", float(books.stale if books is not None else 0))],
                          BOOK_FORWARD_REASONS)
        yield metrics.family("freqfeed_gateway_book_oldest_served_age_seconds",
                             books.oldest_served_ms / 1000 if books is not None else 0.0)
        connections = metrics.family("freqfeed_gateway_book_connections")
        up = float(books is not None and books.connected)
        connections.add_metric(["up"], up)
        connections.add_metric(["down"], float(books is not None) - up)
        yield connections
        streams = metrics.family("freqfeed_gateway_book_streams")
        streams.add_metric(["depth"], float(len(books.coins)) if books is not None else 0.0)  # l2Book
        streams.add_metric(["mids"], float(books is not None))  # allMids
        yield streams
        yield metrics.family("freqfeed_gateway_book_reconnects_total", float(books.reconnects if books else 0))
        yield metrics.family("freqfeed_gateway_book_silences_total", float(books.silences if books else 0))
        yield metrics.family("freqfeed_gateway_start_time_seconds", g.started)
