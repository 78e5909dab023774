"""The configuration schema (freqfeed/config.py's `setting()` fields) drives the reader: defaults, known keys
and error messages all come from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from freqfeed import config
from freqfeed.config import ConfigError

MINIMAL = {"influxdb": {"url": "http://127.0.0.1:8086", "database": "market"}, "pairs": ["BTC/USDT:USDT"]}
SECTIONS = ("influxdb", "exchange", "backfill", "producer", "sync", "gateway")
WRONG = {"str": 7, "url": 7, "path": 7, "bool": "yes", "int": 1.5, "number": "fast", "str_list": "3m",
         "off_str": 7, "off_path": 7}
EXPECTED = {"str": "a non-empty string", "url": "a non-empty string", "path": "a non-empty string",
            "bool": "true or false", "int": "an integer", "number": "a number",
            "str_list": "a non-empty list of strings", "off_str": "a string (empty: off)",
            "off_path": "a path (empty: off)"}


def value_of(cfg: config.Config, name: str) -> Any:
    value: Any = cfg
    for part in name.split("."):
        value = getattr(value, part)
    return value


def with_key(name: str, value: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {**MINIMAL, "influxdb": dict(MINIMAL["influxdb"])}
    section, _, key = name.rpartition(".")
    if section:
        raw[section] = {**raw.get(section, {}), key: value}
    else:
        raw[key] = value
    return raw


def test_every_key_has_a_meaning_and_a_known_kind() -> None:
    names = [key.name for key in config.config_keys()]
    assert len(names) == len(set(names))
    assert {"influxdb.url", "gateway.listen", "history", "log_level"} <= set(names)
    for key in config.config_keys():
        assert key.doc.strip(), key.name
        assert key.kind in {*WRONG, "custom"}, key.name


@pytest.mark.parametrize("mode", ["futures", "spot"])
def test_a_file_without_a_key_gets_the_schemas_default(mode: str) -> None:
    pairs = ["BTC/USDT:USDT"] if mode == "futures" else ["BTC/USDT"]
    cfg = config.from_mapping({**MINIMAL, "pairs": pairs, "trading_mode": mode}, "host.yml", {})
    for key in config.config_keys():
        if not key.required and key.name != "trading_mode":  # the one key this file sets
            assert value_of(cfg, key.name) == key.default(mode), key.name


def test_the_dataclasses_defaults_are_the_readers() -> None:
    built = {"influxdb": config.InfluxDBConfig(url="http://x", database="m"), "exchange": config.ExchangeConfig(),
             "backfill": config.BackfillConfig(), "producer": config.ProducerConfig(), "sync": config.SyncConfig(),
             "gateway": config.GatewayConfig()}
    for key in config.config_keys():
        section, _, name = key.name.rpartition(".")
        if section and not key.required:
            assert getattr(built[section], name) == key.default("futures"), key.name


@pytest.mark.parametrize("key", [k for k in config.config_keys() if k.kind != "custom"], ids=lambda k: k.name)
def test_every_key_of_the_wrong_type_is_named_with_value_and_expectation(key: config.Key) -> None:
    wrong = WRONG[key.kind]
    with pytest.raises(ConfigError) as info:
        config.from_mapping(with_key(key.name, wrong), "host.yml", {})
    assert f"{key.name}: expected {EXPECTED[key.kind]}, got {wrong!r} ({type(wrong).__name__})" in str(info.value)


@pytest.mark.parametrize("section", SECTIONS)
def test_unknown_keys_list_the_sections_known_keys(section: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.from_mapping(with_key(f"{section}.no_such_key", 1), "host.yml", {})
    known = sorted(k.name.split(".", 1)[1] for k in config.config_keys() if k.name.startswith(f"{section}."))
    assert f"{section}.no_such_key: unknown key (known keys here: {', '.join(known)})" in str(info.value)


def test_required_keys_are_reported_missing_with_their_type() -> None:
    with pytest.raises(ConfigError) as info:
        config.from_mapping({"influxdb": {}}, "host.yml", {})
    message = str(info.value)
    assert "influxdb.url: missing (expected a non-empty string)" in message
    assert "influxdb.database: missing (expected a non-empty string)" in message
    assert "pairs: missing (expected a non-empty list of strings)" in message


def test_conversions_environment_and_listen() -> None:
    raw = {**MINIMAL, "influxdb": {**MINIMAL["influxdb"], "url": "http://db:8086/", "token": "file"},
           "sync": {"datadir": "/data"}, "gateway": {"listen": "[::1]:9000"}}
    cfg = config.from_mapping(raw, "host.yml", {config.TOKEN_ENV: "env"})
    assert cfg.influxdb.url == "http://db:8086"
    assert cfg.influxdb.token == "env"
    assert cfg.sync.datadir == Path("/data")
    assert (cfg.gateway.host, cfg.gateway.port, cfg.gateway.configured) == ("::1", 9000, True)
    assert not config.from_mapping(MINIMAL, "host.yml", {}).gateway.configured


def test_checks_name_the_value_and_the_bound() -> None:
    with pytest.raises(ConfigError) as info:
        config.from_mapping(with_key("gateway.cache_candles", 20000), "host.yml", {})
    assert "gateway.cache_candles: expected a value in (0, 10000], got 20000 (int)" in str(info.value)
    with pytest.raises(ConfigError) as info:
        config.from_mapping(with_key("log_level", "LOUD"), "host.yml", {})
    assert "log_level: expected one of DEBUG, INFO, WARNING, ERROR, got 'LOUD' (str)" in str(info.value)


def test_a_new_setting_is_read_checked_and_listed() -> None:
    """What a key added with setting() gets without another line: read, default, check, known key."""

    @dataclasses.dataclass(frozen=True)
    class Extra:
        seconds: float = config.setting(2.0, "a new key", kind="number", check=lambda v: None if v > 1 else "> 1")

    reader = config._Reader()
    assert reader.fields({}, "extra.", Extra, {}, "futures") == {"seconds": 2.0}
    assert reader.fields({"seconds": 5}, "extra.", Extra, {}, "futures") == {"seconds": 5.0}
    reader.fields({"seconds": 0.5}, "extra.", Extra, {}, "futures")
    assert reader.errors == ["extra.seconds: > 1, got 0.5 (float)"]


@pytest.mark.parametrize("name", ["producer.metrics_listen", "gateway.metrics_listen"])
def test_metrics_listen_is_host_port_or_empty_for_off(name: str) -> None:
    section, key = name.split(".")
    base = {"influxdb": {"url": "http://127.0.0.1:8086", "database": "d"}, "pairs": ["BTC/USDT:USDT"]}
    assert getattr(getattr(config.from_mapping({**base, section: {key: ""}}, "t", environ={}), section), key) == ""
    on = config.from_mapping({**base, section: {key: "0.0.0.0:9999"}}, "t", environ={})
    assert getattr(getattr(on, section), key) == "0.0.0.0:9999"
    with pytest.raises(config.ConfigError, match=rf"{name}: expected HOST:PORT.*got 'nine'"):
        config.from_mapping({**base, section: {key: "nine"}}, "t", environ={})


def test_sync_metrics_file_is_off_by_default_and_when_empty() -> None:
    base = {"influxdb": {"url": "http://127.0.0.1:8086", "database": "d"}, "pairs": ["BTC/USDT:USDT"]}
    assert config.from_mapping(base, "t", environ={}).sync.metrics_file is None
    assert config.from_mapping({**base, "sync": {"metrics_file": ""}}, "t", environ={}).sync.metrics_file is None
    chosen = config.from_mapping({**base, "sync": {"metrics_file": "/x/f.prom"}}, "t", environ={})
    assert str(chosen.sync.metrics_file) == "/x/f.prom"
