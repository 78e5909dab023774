"""The Hyperliquid gateway's Prometheus metrics without servers: Binance's families only, bounded labels, the
reasons exposed in step with the code that counts them, requests of a HyperliquidGateway through its own
handler (aiohttp's test request, no socket)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import json

from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from freqfeed import config as config_module
from freqfeed import metrics
from freqfeed.exchanges.hyperliquid import admission, gateway, gateway_metrics
from freqfeed.exchanges.hyperliquid.books import BookStreams

RAW = {"influxdb": {"url": "http://127.0.0.1:1", "database": "d"}, "exchange": {"name": "hyperliquid"},
       "pairs": ["BTC/USDC:USDC", "KPEPE/USDC:USDC"], "timeframes": ["1m", "1h"],
       "gateway": {"metrics_listen": ""}}


def exposed(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(registry).decode()
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(text)}


def make_gateway() -> gateway.HyperliquidGateway:
    return gateway.HyperliquidGateway(config_module.from_mapping(RAW, "test", environ={}))


async def post(g: gateway.HyperliquidGateway, path: str, body: bytes, method: str = "POST") -> int:
    request = make_mocked_request(method, path, headers={"Content-Type": "application/json"})
    request._read_bytes = body  # what request.read() returns
    response = await g.handle(request)
    return response.status


def test_the_reasons_exposed_are_the_gateways_reason_kinds() -> None:
    tree = ast.parse(inspect.getsource(gateway._reason_kind))
    kinds = {e.value for node in ast.walk(tree) if isinstance(node, ast.Tuple)
             for e in node.elts if isinstance(e, ast.Constant)}
    assert kinds | {"other"} == set(gateway_metrics.FORWARD_REASONS)
    assert set(gateway_metrics.GATEWAY_STATES) <= set(metrics.GATEWAY_STATES)
    assert gateway_metrics.endpoint_label("candleSnapshot") == "info:candleSnapshot"
    assert gateway_metrics.endpoint_label("x" * 1000) == "other"


def test_requests_and_refusals_counted_with_bounded_labels() -> None:
    g = make_gateway()
    registry = metrics.registry_of(gateway_metrics.HyperliquidGatewayCollector(g))
    g.latency = metrics.Latency(registry)

    async def traffic() -> list[int]:
        statuses = [await post(g, "/exchange", b'{"action": {}}'), await post(g, "/info", b"", "GET"),
                    await post(g, "/nope", b"{}"), await post(g, "/info", b"not json")]
        for i in range(50):  # junk types and fields: 422, never a label
            statuses.append(await post(g, "/info", json.dumps({"type": f"junk{i}"}).encode()))
            statuses.append(await post(g, "/info", json.dumps({"type": "meta", f"field{i}": 1}).encode()))
        statuses.append(await post(g, "/info", b" " * (admission.MAX_BODY + 1)))
        return statuses

    statuses = asyncio.run(traffic())
    assert statuses[:4] == [403, 405, 404, 400] and set(statuses[4:-1]) == {422} and statuses[-1] == 413
    g._count("candleSnapshot", "local")
    g._count("meta", "forwarded")
    g.counters["forward: not recorded"] += 1
    families = exposed(registry)
    declared = {name.removesuffix("_total") for name in metrics.METRICS}
    assert {name.removesuffix("_created") for name in families if name.startswith("freqfeed_")} <= declared
    requests = {(labels["endpoint"], labels["outcome"]): value
                for labels, value in families["freqfeed_gateway_requests"] if "endpoint" in labels}
    assert requests == {("other", "refused"): 105.0, ("info:candleSnapshot", "local"): 1.0,
                        ("info:meta", "forwarded"): 1.0}
    refusals = {labels["reason"]: value for labels, value in families["freqfeed_gateway_refusals"]}
    assert refusals == {"exchange": 1, "method": 1, "path": 1, "not_json": 1, "invalid_body": 100, "too_large": 1}
    forwards = {labels["reason"]: value for labels, value in families["freqfeed_gateway_forwards"]}
    assert forwards["not_recorded"] == 1 and set(forwards) == {metrics.slug(r) for r in gateway_metrics.FORWARD_REASONS}
    durations = {labels["endpoint"] for labels, _ in families["freqfeed_gateway_request_duration_seconds"]
                 if "endpoint" in labels}
    assert durations == {"other"}  # the refusals above were timed; _count without a start time is not
    states = {labels["state"]: value for labels, value in families["freqfeed_gateway_state"]}
    assert states == {"connecting": 1.0, "loading": 0.0, "ready": 0.0, "degraded": 0.0}
    assert families["freqfeed_gateway_influxdb_up"][0][1] == 0.0  # not ready: nothing read yet
    assert families["freqfeed_gateway_upstream_weight_budget"][0][1] == 1200 * g.config.exchange.max_weight_share
    names = generate_latest(registry).decode()
    assert "junk" not in names and "field1" not in names


def test_books_figures() -> None:
    g = make_gateway()
    g.books = BookStreams("ws://127.0.0.1:1/ws", ["BTC", "kPEPE"], max_age_s=5, silence_s=30)
    g.books.on_connect("gateway books", False)
    g.books.on_message("l2Book", {"coin": "BTC", "time": 1, "levels": [[], []]})
    from freqfeed.exchanges.hyperliquid.wire import parse_info
    assert g.books.answer(parse_info({"type": "l2Book", "coin": "BTC"})) is not None
    assert g.books.answer(parse_info({"type": "l2Book", "coin": "kPEPE"})) is None
    g.books.on_disconnect("gateway books", "no data for 30s", 1.0)
    g.books.on_connect("gateway books", True)
    families = exposed(metrics.registry_of(gateway_metrics.HyperliquidGatewayCollector(g)))
    one = {name: samples[0][1] for name, samples in families.items() if len(samples) == 1}
    assert one["freqfeed_gateway_book_served"] == 1 and one["freqfeed_gateway_book_reconnects"] == 1
    assert one["freqfeed_gateway_book_silences"] == 1
    assert 0 <= one["freqfeed_gateway_book_oldest_served_age_seconds"] < 5
    assert {labels["reason"]: v for labels, v in families["freqfeed_gateway_book_forwards"]} == {"stale_or_dropped": 1}
    assert {labels["state"]: v for labels, v in families["freqfeed_gateway_book_connections"]} == {"up": 1, "down": 0}
    assert {labels["kind"]: v for labels, v in families["freqfeed_gateway_book_streams"]} == {"depth": 2, "mids": 1}
