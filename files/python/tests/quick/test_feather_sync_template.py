"""roles/feather_sync/templates/sync.yml.j2 rendered with the role's defaults (Jinja2 with stand-ins for
Ansible's few filters it uses), read by freqfeed's own config reader: a Binance feeder and a Hyperliquid
feeder's gateway (exchange, listen, cache_ttl per /info type)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import yaml

from freqfeed import config as config_module
from freqfeed.exchanges.hyperliquid import admission

ROLE = Path(__file__).resolve().parents[4] / "roles" / "feather_sync"


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")


def render(**overrides: Any) -> dict[str, Any]:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters.update({"to_json": json.dumps, "bool": _bool,
                        "comment": lambda text: "\n".join(f"# {line}" for line in str(text).splitlines())})
    variables: dict[str, Any] = {"ansible_managed": "Ansible managed", "feather_sync_pairs": ["BTC/USDT:USDT"],
                                 "feather_sync_timeframes": ["3m"], "feather_sync_influxdb_url": "http://10.0.0.5:8086",
                                 **yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()),
                                 **yaml.safe_load((ROLE / "vars" / "main.yml").read_text())}
    variables.update(overrides)
    for _ in range(5):  # the defaults' and vars' own {{ }} (fleet fallbacks, derived paths)
        variables = {k: env.from_string(v).render(variables) if isinstance(v, str) and "{{" in v else v
                     for k, v in variables.items()}
    variables = {k: yaml.safe_load(v) if isinstance(v, str) and v[:1] in "[{" else v for k, v in variables.items()}
    text = env.from_string((ROLE / "templates" / "sync.yml.j2").read_text()).render(variables)
    rendered: dict[str, Any] = yaml.safe_load(text)
    return rendered


def test_a_binance_feeder_renders_a_valid_config() -> None:
    raw = render()
    assert raw["exchange"]["name"] == "binance" and "cache_ttl" not in raw["gateway"]
    config = config_module.from_mapping(raw, "sync.yml", environ={})
    assert config.gateway.listen == "127.0.0.1:8091"


def test_a_hyperliquid_feeders_gateway() -> None:
    raw = render(feather_sync_exchange="hyperliquid", feather_sync_pairs=["BTC/USDC:USDC", "KPEPE/USDC:USDC"],
                 feather_sync_timeframes=["1m", "1h"],
                 feather_sync_gateway_cache_ttl={"meta": 10, "metaAndAssetCtxs": 2})
    assert raw["exchange"]["name"] == "hyperliquid" and raw["sync"]["datadir"].endswith("/data/hyperliquid")
    config = config_module.from_mapping(raw, "sync.yml", environ={})
    assert config.exchange.name == "hyperliquid"
    assert config.exchange.rest_url == "https://api.hyperliquid.xyz"
    assert config.gateway.ws_url == "wss://api.hyperliquid.xyz/ws"
    assert config.gateway.listen == "127.0.0.1:8091" and config.gateway.metrics_listen == "127.0.0.1:9818"
    ttl = admission.TtlRules(config.gateway.cache_ttl)
    from freqfeed.exchanges.hyperliquid.wire import parse_info
    assert ttl.ttl(parse_info({"type": "meta"})) == 10
    assert ttl.ttl(parse_info({"type": "spotMeta"})) == admission.DEFAULT_TTL["spotMeta"]
