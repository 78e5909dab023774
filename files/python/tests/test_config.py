from __future__ import annotations

from pathlib import Path

import pytest

from freqfeed import config
from freqfeed.config import ConfigError, exchange_symbol

MINIMAL = {
    "influxdb": {"url": "http://127.0.0.1:8086", "database": "market"},
    "pairs": ["BTC/USDT:USDT"],
}


def load(raw: dict, environ: dict | None = None) -> config.Config:
    return config.from_mapping(raw, "host.yml", environ or {})


def errors_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load(raw)
    return str(info.value)


def test_defaults_for_futures() -> None:
    cfg = load(MINIMAL)
    assert cfg.timeframes == ("3m", "15m", "1h")
    assert cfg.trading_mode == "futures"
    assert cfg.exchange.rest_url == "https://fapi.binance.com"
    assert cfg.exchange.ws_url == "wss://fstream.binance.com/market"
    assert cfg.exchange.request_delay == 0.6
    assert cfg.backfill.candles == 1500
    assert cfg.sync.candles == 1500
    assert cfg.influxdb.verify_tls is True
    assert cfg.influxdb.retention_policy is None


def test_spot_defaults_point_at_spot_endpoints() -> None:
    cfg = load({**MINIMAL, "pairs": ["BTC/USDT"], "trading_mode": "spot"})
    assert cfg.exchange.rest_url == "https://api.binance.com"
    assert cfg.exchange.ws_url == "wss://stream.binance.com:9443"


def test_token_from_environment_wins_over_file() -> None:
    raw = {**MINIMAL, "influxdb": {**MINIMAL["influxdb"], "token": "from-file"}}
    assert load(raw, {"FREQFEED_INFLUXDB_TOKEN": "from-env"}).influxdb.token == "from-env"
    assert load(raw).influxdb.token == "from-file"


def test_token_is_not_in_repr() -> None:
    cfg = load({**MINIMAL, "influxdb": {**MINIMAL["influxdb"], "token": "s3cret"}})
    assert "s3cret" not in repr(cfg)


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"influxdb": {"url": 42, "database": "m"}}, "influxdb.url: expected a non-empty string, got 42 (int)"),
        ({"influxdb": {"url": "ftp://x", "database": "m"}}, "influxdb.url: expected a URL starting with http://"),
        ({"influxdb": {"url": "http://x"}}, "influxdb.database: missing"),
        ({"influxdb": {"url": "http://x", "database": "m", "verify_tls": "yes"}},
         "influxdb.verify_tls: expected true or false, got 'yes' (str)"),
        ({"pairs": "BTC/USDT:USDT"}, "pairs: expected a non-empty list of strings"),
        ({"pairs": ["BTCUSDT"]}, "pairs[0]: expected freqtrade futures notation BASE/QUOTE:SETTLE"),
        ({"pairs": ["BTC/USDT"], "trading_mode": "futures"}, "pairs[0]: expected freqtrade futures notation"),
        ({"pairs": ["BTC/USDT:USDT", "BTC/USDT:USDT"]}, "pairs: each pair once"),
        ({"timeframes": ["3m", "7m"]}, "timeframes[1]: expected one of 1m, 3m"),
        ({"trading_mode": "margin"}, "trading_mode: expected one of futures, spot, got 'margin' (str)"),
        ({"sync": {"candles": -1}}, "sync.candles: expected a value >= 0, got -1 (int)"),
        ({"sync": {"candles": 1.5}}, "sync.candles: expected an integer, got 1.5 (float)"),
        ({"exchange": {"ws_url": "http://x"}}, "exchange.ws_url: expected a URL starting with ws:// or wss://"),
        ({"exchange": {"max_weight_share": 2}}, "exchange.max_weight_share: expected a value in (0.0, 1.0]"),
        ({"exchange": {"request_delay": True}}, "exchange.request_delay: expected a number, got True (bool)"),
        ({"influxdb": {"url": "http://x", "database": "m", "tokn": "x"}}, "influxdb.tokn: unknown key"),
        ({"backfil": {}}, "backfil: unknown key"),
        ({"sync": "x"}, "sync: expected a mapping of settings, got 'x' (str)"),
        ({"influxdb": {"url": "http://x", "database": "m", "password": "p"}}, "influxdb.username: missing"),
    ],
)
def test_bad_values_name_key_value_and_expectation(patch: dict, expected: str) -> None:
    assert expected in errors_of({**MINIMAL, **patch})


def test_all_errors_are_reported_together() -> None:
    message = errors_of({"influxdb": {"url": 1}, "pairs": ["nope"], "timeframes": ["2x"]})
    assert "influxdb.url" in message
    assert "influxdb.database" in message
    assert "pairs[0]" in message
    assert "timeframes[0]" in message


def test_load_reports_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        config.load(tmp_path / "absent.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("influxdb: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(bad)
    top = tmp_path / "list.yml"
    top.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a YAML mapping at the top level"):
        config.load(top)


def test_exchange_symbol() -> None:
    assert exchange_symbol("BTC/USDT:USDT") == "BTCUSDT"
    assert exchange_symbol("ETH/USDT") == "ETHUSDT"


def test_env_file_as_ansible_writes_it_feeds_the_token(tmp_path: Path) -> None:
    from freqfeed import cli

    token = 'a$b`c"d\\e'
    escaped = token.replace("\\", "\\\\").replace('"', '\\"')
    env_file = tmp_path / "sync.env"
    env_file.write_text(f'# managed\nFREQFEED_INFLUXDB_TOKEN="{escaped}"\nFREQFEED_INFLUXDB_PASSWORD=""\n')
    assert config.read_env_file(env_file) == {"FREQFEED_INFLUXDB_TOKEN": token, "FREQFEED_INFLUXDB_PASSWORD": ""}

    config_file = tmp_path / "sync.yml"
    config_file.write_text("influxdb: {url: 'http://127.0.0.1:1', database: db}\npairs: ['BTC/USDT:USDT']\n")
    args = cli.build_parser().parse_args(["check-config", "--config", str(config_file), "--env-file", str(env_file)])
    assert cli._config(args).influxdb.token == token


def test_env_file_errors_name_the_line(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("FREQFEED_INFLUXDB_TOKEN=x\nnot a variable\n")
    with pytest.raises(ConfigError, match=r"bad.env:2: expected KEY=value"):
        config.read_env_file(env_file)
    with pytest.raises(ConfigError, match="cannot read environment file"):
        config.read_env_file(tmp_path / "missing.env")
