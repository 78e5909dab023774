"""Writes freqfeed-fleet.json, the Grafana dashboard (one fleet overview, a row per host), from the panel table
below: `python monitoring/grafana/build_dashboard.py`. files/python/tests/test_metrics.py runs every panel's
query against a real Prometheus scraping a producer, a gateway and a sync; test_metrics also checks that
the JSON is what this script writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("freqfeed-fleet.json")
H = 'host=~"$host"'
R = "$__rate_interval"

# (title, unit, [(legend, expr)]) per host, grouped by what they watch
HOST_PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Producer: lag behind the close", "s", [
        ("{{pair}} {{timeframe}} {{kind}}",
         f"max by (pair, timeframe, kind) (freqfeed_producer_series_lag_seconds{{{H}}})")]),
    ("Producer: newest candle age", "s", [
        ("{{timeframe}} {{kind}}", f"freqfeed_producer_newest_candle_age_seconds{{{H}}}")]),
    ("Producer: streams connected", "none", [
        ("{{stream}}", f"freqfeed_producer_stream_connected{{{H}}}")]),
    ("Producer: stream last message age", "s", [
        ("{{stream}}", f"freqfeed_producer_stream_last_message_age_seconds{{{H}}}")]),
    ("Producer: silent series", "none", [
        ("{{timeframe}} {{kind}}", f"freqfeed_producer_silent_series{{{H}}}")]),
    ("Producer: reconnects and silences", "none", [
        ("reconnects", f"increase(freqfeed_producer_stream_reconnects_total{{{H}}}[{R}])"),
        ("silent streams", f"increase(freqfeed_producer_silent_streams_total{{{H}}}[{R}])")]),
    ("Producer: REST weight used vs budget", "none", [
        ("used this minute", f"freqfeed_producer_rest_weight_used{{{H}}}"),
        ("budget", f"freqfeed_producer_rest_weight_budget{{{H}}}")]),
    ("Exchange: 429 and 418", "none", [
        ("{{job}} 429",
         f'increase({{__name__=~"freqfeed_(producer_rest|gateway_upstream)_rate_limited_total",{H}}}[{R}])'),
        ("{{job}} 418", f'increase({{__name__=~"freqfeed_(producer_rest|gateway_upstream)_banned_total",{H}}}[{R}])'),
        ("{{job}} paused s", f'{{__name__=~"freqfeed_(producer_rest|gateway_upstream)_paused_seconds",{H}}}')]),
    ("Producer: backfill progress", "percentunit", [
        ("candles", (f'freqfeed_producer_backfill_candles{{state="done",{H}}} '
                    f'/ ignoring(state) freqfeed_producer_backfill_candles{{state="total",{H}}}'))]),
    ("InfluxDB: errors", "none", [
        ("producer {{operation}}",
         f"sum by (operation) (increase(freqfeed_producer_influxdb_errors_total{{{H}}}[{R}]))"),
        ("gateway reads down", f"1 - freqfeed_gateway_influxdb_up{{{H}}}")]),
    ("InfluxDB: write buffer and points written", "none", [
        ("buffered", f"freqfeed_producer_write_buffer_points{{{H}}}"),
        ("written/s", f"rate(freqfeed_producer_influxdb_written_points_total{{{H}}}[{R}])")]),
    ("Producer: repairs", "none", [
        ("{{reason}}", f"sum by (reason) (increase(freqfeed_producer_repairs_total{{{H}}}[{R}]))")]),
    ("Gateway: requests by outcome", "reqps", [
        ("{{outcome}}", f"sum by (outcome) (rate(freqfeed_gateway_requests_total{{{H}}}[{R}]))")]),
    ("Gateway: share forwarded", "percentunit", [
        ("forwarded", (f'(sum(rate(freqfeed_gateway_requests_total{{outcome="forwarded",{H}}}[{R}])) or vector(0)) '
                      f'/ sum(rate(freqfeed_gateway_requests_total{{outcome=~"local|forwarded",{H}}}[{R}]))'))]),
    ("Gateway: forwards by reason", "none", [
        ("{{reason}}", f"sum by (reason) (increase(freqfeed_gateway_forwards_total{{{H}}}[{R}]))"),
        ("close-wait fallbacks", f"increase(freqfeed_gateway_close_wait_fallbacks_total{{{H}}}[{R}])")]),
    ("Gateway: refusals by reason", "none", [
        ("{{reason}}", f"sum by (reason) (increase(freqfeed_gateway_refusals_total{{{H}}}[{R}]))")]),
    ("Gateway: upstream weight used vs budget", "none", [
        ("used this minute", f"freqfeed_gateway_upstream_weight_used{{{H}}}"),
        ("budget", f"freqfeed_gateway_upstream_weight_budget{{{H}}}")]),
    ("Gateway: forward cache", "none", [
        ("hits/s", f"rate(freqfeed_gateway_cache_hits_total{{{H}}}[{R}])"),
        ("coalesced/s", f"rate(freqfeed_gateway_coalesced_total{{{H}}}[{R}])"),
        ("entries", f"freqfeed_gateway_forward_cache_entries{{{H}}}")]),
    ("Gateway: latency p50 / p99", "s", [
        ("p50 {{outcome}}", (f"histogram_quantile(0.5, sum by (le, outcome) "
                            f"(rate(freqfeed_gateway_request_duration_seconds_bucket{{{H}}}[{R}])))")),
        ("p99 {{outcome}}", (f"histogram_quantile(0.99, sum by (le, outcome) "
                            f"(rate(freqfeed_gateway_request_duration_seconds_bucket{{{H}}}[{R}])))"))]),
    ("Gateway: books", "s", [
        ("oldest served", f"freqfeed_gateway_book_oldest_served_age_seconds{{{H}}}"),
        ("forwarded {{reason}}/s", f"sum by (reason) (rate(freqfeed_gateway_book_forwards_total{{{H}}}[{R}]))")]),
    ("Gateway: state (1 = current) and block cache", "none", [
        ("{{state}}", f"freqfeed_gateway_state{{{H}}}"),
        ("block cache hits/s", f"rate(freqfeed_gateway_block_cache_hits_total{{{H}}}[{R}])"),
        ("block cache misses/s", f"rate(freqfeed_gateway_block_cache_misses_total{{{H}}}[{R}])")]),
    ("Gateway: cached candle age", "s", [
        ("{{timeframe}}", f"max by (timeframe) (freqfeed_gateway_newest_candle_age_seconds{{{H}}})")]),
    ("Sync: last run", "s", [
        ("since last run", f"time() - freqfeed_sync_last_run_timestamp_seconds{{{H}}}"),
        ("duration", f"freqfeed_sync_duration_seconds{{{H}}}")]),
    ("Sync: files written, errors", "none", [
        ("files written", f"freqfeed_sync_files_written{{{H}}}"),
        ("errors", f"freqfeed_sync_errors{{{H}}}"),
        ("ok", f"freqfeed_sync_success{{{H}}}")]),
    ("Sync: newest candle in the files, in periods", "none", [
        ("{{timeframe}}", (f"(time() - freqfeed_sync_newest_candle_timestamp_seconds{{{H}}}) "
                          f"/ freqfeed_sync_period_seconds{{{H}}}"))]),
    ("Sync: history coverage", "percentunit", [
        ("{{timeframe}}", f"freqfeed_sync_history_candles{{{H}}} / freqfeed_sync_history_planned_candles{{{H}}}")]),
]

FLEET_PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Targets up", "none", [("{{host}} {{job}}", 'up{job=~"freqfeed_.*|node"}')]),
    ("Alerts firing", "none", [("firing", 'count(ALERTS{alertstate="firing",alertname=~"Freqfeed.*"}) or vector(0)')]),
    ("Requests served here vs forwarded (fleet)", "reqps", [
        ("{{outcome}}",
         f'sum by (outcome) (rate(freqfeed_gateway_requests_total{{outcome=~"local|forwarded"}}[{R}]))')]),
]


def panel(number: int, title: str, unit: str, targets: list[tuple[str, str]], x: int, y: int,
          kind: str = "timeseries") -> dict[str, Any]:
    return {"id": number, "type": kind, "title": title, "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 7, "w": 8, "x": x, "y": y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
            "targets": [{"refId": chr(65 + i), "expr": expr, "legendFormat": legend,
                         "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                        for i, (legend, expr) in enumerate(targets)]}


def dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    number = 1
    y = 0
    panels.append({"id": number, "type": "row", "title": "Fleet", "collapsed": False, "panels": [],
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
    y += 1
    for i, (title, unit, targets) in enumerate(FLEET_PANELS):
        number += 1
        panels.append(panel(number, title, unit, targets, 8 * i, y, "stat" if title == "Alerts firing" else
                            "timeseries"))
    y += 7
    number += 1
    panels.append({"id": number, "type": "row", "title": "$host", "repeat": "host", "collapsed": False,
                   "panels": [], "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
    y += 1
    for i, (title, unit, targets) in enumerate(HOST_PANELS):
        number += 1
        panels.append(panel(number, title, unit, targets, 8 * (i % 3), y + 7 * (i // 3)))
    return {
        "uid": "freqfeed-fleet", "title": "freqfeed fleet", "tags": ["freqfeed"], "timezone": "utc",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus",
             "current": {}, "hide": 0},
            {"name": "host", "type": "query", "label": "host", "multi": True, "includeAll": True,
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "definition": 'label_values(up{job=~"freqfeed_.*|node"}, host)',
             "query": {"query": 'label_values(up{job=~"freqfeed_.*|node"}, host)', "refId": "host"},
             "refresh": 2, "sort": 1, "current": {}, "hide": 0},
        ]},
        "annotations": {"list": []},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=1) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
