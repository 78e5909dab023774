"""The configuration keys of issue 16: influxdb.ca_file / verify_tls / credentials in the URL, gateway bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from freqfeed import config as config_module
from freqfeed.config import ConfigError

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def load(influxdb: dict[str, Any], **extra: Any) -> config_module.Config:
    raw = {"influxdb": {"database": "x", **influxdb}, "pairs": ["BTC/USDT:USDT"], **extra}
    return config_module.from_mapping(raw, "test", environ={})


def errors(influxdb: dict[str, Any], **extra: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        load(influxdb, **extra)
    return str(raised.value)


def test_a_url_with_user_info_is_refused_without_echoing_it() -> None:
    for url in ("https://feeder:hunter2@influx:8086", "http://hunter2@influx:8086", "https://:hunter2@influx"):
        message = errors({"url": url})
        assert "influxdb.url: must not carry credentials" in message
        assert "influxdb.username" in message and "FREQFEED_INFLUXDB_PASSWORD" in message
        assert "FREQFEED_INFLUXDB_TOKEN" in message and "hunter2" not in message


def test_ca_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(PEM)
    assert load({"url": "https://influx:8086", "ca_file": str(ca)}).influxdb.ca_file == str(ca)
    assert load({"url": "https://influx:8086"}).influxdb.ca_file is None
    assert "influxdb.ca_file: no such file" in errors({"url": "https://i", "ca_file": str(tmp_path / "nope.pem")})
    assert "absolute path" in errors({"url": "https://i", "ca_file": "ca.pem"})
    (tmp_path / "junk.pem").write_text("not a certificate")
    assert "not a PEM certificate" in errors({"url": "https://i", "ca_file": str(tmp_path / "junk.pem")})
    assert "is not https://" in errors({"url": "http://i:8086", "ca_file": str(ca)})


def test_gateway_bounds() -> None:
    gateway = load({"url": "http://i"}, gateway={}).gateway
    assert (gateway.book_silence, gateway.book_heartbeat, gateway.forward_cache_entries, gateway.forward_cache_mb) \
        == (10.0, 30.0, 2000, 64.0)
    custom = load({"url": "http://i"}, gateway={"book_silence": 3, "book_heartbeat": 5, "forward_cache_entries": 10,
                                               "forward_cache_mb": 1}).gateway
    assert (custom.book_silence, custom.book_heartbeat, custom.forward_cache_entries, custom.forward_cache_mb) == \
        (3, 5, 10, 1)
    message = errors({"url": "http://i"}, gateway={"book_silence": 0.1, "forward_cache_entries": -1})
    assert "gateway.book_silence" in message and "gateway.forward_cache_entries" in message
