"""The per-host YAML configuration: loading, defaults and validation.

Every error names the key, the bad value and what is expected; all problems of a file are
reported together so an operator fixes them in one pass.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import yaml

from freqfeed.timeframes import BINANCE_TIMEFRAMES, timeframe_ms

TOKEN_ENV = "FREQFEED_INFLUXDB_TOKEN"
PASSWORD_ENV = "FREQFEED_INFLUXDB_PASSWORD"

TradingMode = Literal["futures", "spot"]
FundingLayout = Literal["current", "legacy"]

_FUTURES_PAIR = re.compile(r"^([A-Z0-9]+)/([A-Z0-9]+):([A-Z0-9]+)$")
_SPOT_PAIR = re.compile(r"^([A-Z0-9]+)/([A-Z0-9]+)$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

DEFAULT_ENDPOINTS: dict[str, dict[str, str]] = {
    # ws_url: klines and mark price (the producer); public_ws_url: books and book tickers (the gateway)
    "futures": {"rest_url": "https://fapi.binance.com", "ws_url": "wss://fstream.binance.com/market",
                "public_ws_url": "wss://fstream.binance.com/public"},
    "spot": {"rest_url": "https://api.binance.com", "ws_url": "wss://stream.binance.com:9443",
             "public_ws_url": "wss://stream.binance.com:9443"},
}


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid."""


@dataclass(frozen=True)
class InfluxDBConfig:
    url: str
    database: str
    retention_policy: str | None = None
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify_tls: bool = True
    timeout: float = 10.0
    retention_days: int = 360
    concurrency: int = 8


@dataclass(frozen=True)
class ExchangeConfig:
    rest_url: str
    ws_url: str
    request_delay: float = 0.6
    max_weight_share: float = 0.5
    timeout: float = 10.0


@dataclass(frozen=True)
class BackfillConfig:
    candles: int = 1500

@dataclass(frozen=True)
class ProducerConfig:
    batch_size: int = 5000
    flush_interval: float = 0.2
    buffer_limit: int = 2_000_000
    silent_periods: float = 2.0
    health_file: Path | None = None
    live_interval: float = 1.0


@dataclass(frozen=True)
class SyncConfig:
    datadir: Path | None = None
    candles: int = 1500
    owner: str | None = None
    group: str | None = None
    funding_timeframe: str = "1h"
    funding_rate_layout: FundingLayout = "current"
    status_file: Path | None = None


DEFAULT_CACHE_TTL: dict[str, float] = {
    "default": 1.0, "depth": 0.5, "ticker/bookTicker": 0.5, "ticker/24hr": 2.0, "ticker/price": 1.0,
    "premiumIndex": 1.0,
}


@dataclass(frozen=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 8091
    close_wait: float = 3.0
    live_max_age: float = 10.0
    poll_interval: float = 0.5
    cache_candles: int = 1500
    load_timeout: float = 60.0  # seconds from start: then ready (READY=1) even if not loaded, forwarding, loudly
    state_dir: str | None = None  # where immutable answers are kept across restarts ($STATE_DIRECTORY if unset)
    cache_ttl: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_CACHE_TTL))
    exchange_info_refresh: float = 600.0
    max_wait: float = 2.0
    ws_url: str = "wss://fstream.binance.com/public"
    book_max_age: float = 1.0
    book_idle: float = 600.0
    configured: bool = False  # the file has a gateway section: this host runs `freqfeed serve`

    @property
    def listen(self) -> str:
        return f"{self.host}:{self.port}"

    def ttl(self, endpoint: str) -> float:
        return self.cache_ttl.get(endpoint, self.cache_ttl.get("default", 1.0))


@dataclass(frozen=True)
class Config:
    influxdb: InfluxDBConfig
    exchange: ExchangeConfig
    pairs: tuple[str, ...]
    timeframes: tuple[str, ...] = ("3m", "15m", "1h")
    trading_mode: TradingMode = "futures"
    backfill: BackfillConfig = BackfillConfig()
    producer: ProducerConfig = ProducerConfig()
    sync: SyncConfig = SyncConfig()
    gateway: GatewayConfig = GatewayConfig()
    history: dict[str, float] = field(default_factory=dict)  # timeframe -> days every series of it keeps
    log_level: str = "INFO"
    source: str = "<dict>"

    @property
    def futures(self) -> bool:
        return self.trading_mode == "futures"

    def window(self, timeframe: str, *, hourly: bool = False) -> int:
        """Candles of `timeframe` the producer keeps complete in InfluxDB and the sync keeps in files: the
        larger of `backfill.candles` and the `history` days. `hourly` (mark candles and funding rates, kept
        for as long as the longest history of any timeframe) takes the longest span configured."""
        return max(self.backfill.candles, self.history_candles(timeframe, hourly=hourly))

    def history_candles(self, timeframe: str, *, hourly: bool = False) -> int:
        """The `history` days of `timeframe` in candles (0 without a history)."""
        days = max(self.history.values(), default=0.0) if hourly else self.history.get(timeframe, 0.0)
        return math.ceil(days * 86_400_000 / timeframe_ms(timeframe))


# ---------------------------------------------------------------------------------------------
# validation helpers


class _Reader:
    """Walks the raw mapping, records every problem, and remembers which keys were consumed."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.present: set[str] = set()  # top-level sections the file has

    def section(self, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        if key in raw:
            self.present.add(key)
        value = raw.get(key, {})
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.errors.append(f"{key}: expected a mapping of settings, got {_show(value)}")
            return {}
        return value

    def unknown(self, raw: Mapping[str, Any], prefix: str, known: set[str]) -> None:
        for key in raw:
            if key not in known:
                name = f"{prefix}{key}"
                self.errors.append(f"{name}: unknown key (known keys here: {', '.join(sorted(known))})")

    def get(
        self,
        raw: Mapping[str, Any],
        prefix: str,
        key: str,
        kind: str,
        default: Any = None,
        *,
        required: bool = False,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        name = f"{prefix}{key}"
        if key not in raw or raw[key] is None:
            if required:
                self.errors.append(f"{name}: missing (expected {_KINDS[kind][1]})")
            return default
        value = raw[key]
        converted = _KINDS[kind][0](value)
        if converted is _INVALID:
            self.errors.append(f"{name}: expected {_KINDS[kind][1]}, got {_show(value)}")
            return default
        if check is not None:
            problem = check(converted)
            if problem:
                self.errors.append(f"{name}: {problem}, got {_show(value)}")
                return default
        return converted


_INVALID = object()


def _as_str(value: Any) -> Any:
    return value if isinstance(value, str) and value.strip() else _INVALID


def _as_bool(value: Any) -> Any:
    return value if isinstance(value, bool) else _INVALID


def _as_int(value: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else _INVALID


def _as_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _INVALID
    return float(value)


def _as_str_list(value: Any) -> Any:
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    return _INVALID


_KINDS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "str": (_as_str, "a non-empty string"),
    "bool": (_as_bool, "true or false"),
    "int": (_as_int, "an integer"),
    "number": (_as_number, "a number"),
    "str_list": (_as_str_list, "a non-empty list of strings"),
}


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _url(schemes: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: str) -> str | None:
        parsed = urlparse(value)
        if parsed.scheme not in schemes or not parsed.netloc:
            return f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}"
        return None

    return check


def _at_least(minimum: float) -> Callable[[float], str | None]:
    return lambda value: None if value >= minimum else f"expected a value >= {minimum}"


def _between(low: float, high: float) -> Callable[[float], str | None]:
    return lambda value: None if low < value <= high else f"expected a value in ({low}, {high}]"


def _one_of(*choices: str) -> Callable[[str], str | None]:
    return lambda value: None if value in choices else f"expected one of {', '.join(choices)}"


def _name(value: str) -> str | None:
    return None if _NAME.match(value) else "expected a name of letters, digits, '_', '.', '-'"


def _timeframe(value: str) -> str | None:
    return None if value in BINANCE_TIMEFRAMES else f"expected one of {', '.join(BINANCE_TIMEFRAMES)}"


# ---------------------------------------------------------------------------------------------


def validate_pair(pair: str, trading_mode: str) -> str | None:
    """Problem with a pair in freqtrade notation, or None when it is well-formed."""
    if trading_mode == "futures":
        match = _FUTURES_PAIR.match(pair)
        if not match:
            return "expected freqtrade futures notation BASE/QUOTE:SETTLE, e.g. BTC/USDT:USDT"
        if match.group(2) != match.group(3):
            return "expected a USDT-M perpetual whose settle currency equals its quote (e.g. BTC/USDT:USDT)"
        return None
    if not _SPOT_PAIR.match(pair):
        return "expected freqtrade spot notation BASE/QUOTE, e.g. BTC/USDT"
    return None


def exchange_symbol(pair: str) -> str:
    """Binance symbol of a freqtrade pair: BTC/USDT:USDT -> BTCUSDT."""
    return pair.split(":", 1)[0].replace("/", "")


def from_mapping(raw: Any, source: str = "<dict>", environ: Mapping[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a YAML mapping at the top level, got {_show(raw)}")
    r = _Reader()
    top_keys = {"influxdb", "exchange", "pairs", "timeframes", "trading_mode", "backfill", "producer", "sync",
                "gateway", "history", "log_level"}
    r.unknown(raw, "", top_keys)

    trading_mode = r.get(raw, "", "trading_mode", "str", "futures", check=_one_of("futures", "spot"))
    log_level = r.get(raw, "", "log_level", "str", "INFO",
                      check=_one_of("DEBUG", "INFO", "WARNING", "ERROR"))

    pairs = r.get(raw, "", "pairs", "str_list", (), required=True)
    for index, pair in enumerate(pairs):
        problem = validate_pair(pair, trading_mode)
        if problem:
            r.errors.append(f"pairs[{index}]: {problem}, got {_show(pair)}")
    duplicates = sorted({p for p in pairs if pairs.count(p) > 1})
    if duplicates:
        r.errors.append(f"pairs: each pair once, got duplicates {', '.join(duplicates)}")

    timeframes = r.get(raw, "", "timeframes", "str_list", ("3m", "15m", "1h"))
    for index, timeframe in enumerate(timeframes):
        problem = _timeframe(timeframe)
        if problem:
            r.errors.append(f"timeframes[{index}]: {problem}, got {_show(timeframe)}")
    if len(set(timeframes)) != len(timeframes):
        r.errors.append(f"timeframes: each timeframe once, got {list(timeframes)}")

    ix = r.section(raw, "influxdb")
    r.unknown(ix, "influxdb.", {"url", "database", "retention_policy", "token", "username", "password",
                               "verify_tls", "timeout", "retention_days", "concurrency"})
    token = env.get(TOKEN_ENV) or r.get(ix, "influxdb.", "token", "str")
    password = env.get(PASSWORD_ENV) or r.get(ix, "influxdb.", "password", "str")
    username = r.get(ix, "influxdb.", "username", "str")
    if password and not username:
        r.errors.append("influxdb.username: missing (a password is set, so a username is expected too)")
    influxdb = InfluxDBConfig(
        url=r.get(ix, "influxdb.", "url", "str", "", required=True, check=_url(("http", "https"))).rstrip("/"),
        database=r.get(ix, "influxdb.", "database", "str", "", required=True, check=_name),
        retention_policy=r.get(ix, "influxdb.", "retention_policy", "str", check=_name),
        token=token,
        username=username,
        password=password,
        verify_tls=r.get(ix, "influxdb.", "verify_tls", "bool", True),
        timeout=r.get(ix, "influxdb.", "timeout", "number", 10.0, check=_at_least(0.1)),
        retention_days=r.get(ix, "influxdb.", "retention_days", "int", 360, check=_at_least(1)),
        concurrency=r.get(ix, "influxdb.", "concurrency", "int", 8, check=_between(0, 64)),
    )

    ex = r.section(raw, "exchange")
    r.unknown(ex, "exchange.", {"rest_url", "ws_url", "request_delay", "max_weight_share", "timeout"})
    endpoints = DEFAULT_ENDPOINTS.get(trading_mode, DEFAULT_ENDPOINTS["futures"])
    exchange = ExchangeConfig(
        rest_url=r.get(ex, "exchange.", "rest_url", "str", endpoints["rest_url"],
                       check=_url(("http", "https"))).rstrip("/"),
        ws_url=r.get(ex, "exchange.", "ws_url", "str", endpoints["ws_url"], check=_url(("ws", "wss"))).rstrip("/"),
        request_delay=r.get(ex, "exchange.", "request_delay", "number", 0.6, check=_at_least(0.0)),
        max_weight_share=r.get(ex, "exchange.", "max_weight_share", "number", 0.5, check=_between(0.0, 1.0)),
        timeout=r.get(ex, "exchange.", "timeout", "number", 10.0, check=_at_least(0.1)),
    )

    bf = r.section(raw, "backfill")
    r.unknown(bf, "backfill.", {"candles"})
    backfill = BackfillConfig(candles=r.get(bf, "backfill.", "candles", "int", 1500, check=_at_least(1)))
    history = _history(r, raw.get("history"), timeframes, influxdb.retention_days)

    pr = r.section(raw, "producer")
    r.unknown(pr, "producer.", {"batch_size", "flush_interval", "buffer_limit", "silent_periods", "health_file",
                                "live_interval"})
    health_file = r.get(pr, "producer.", "health_file", "str")
    producer = ProducerConfig(
        batch_size=r.get(pr, "producer.", "batch_size", "int", 5000, check=_at_least(1)),
        flush_interval=r.get(pr, "producer.", "flush_interval", "number", 0.2, check=_at_least(0.01)),
        buffer_limit=r.get(pr, "producer.", "buffer_limit", "int", 2_000_000, check=_at_least(1000)),
        silent_periods=r.get(pr, "producer.", "silent_periods", "number", 2.0, check=_at_least(1.0)),
        health_file=Path(health_file) if health_file else None,
        live_interval=r.get(pr, "producer.", "live_interval", "number", 1.0, check=_at_least(0.1)),
    )

    sy = r.section(raw, "sync")
    r.unknown(sy, "sync.", {"datadir", "candles", "owner", "group", "funding_timeframe", "funding_rate_layout",
                           "status_file"})
    datadir = r.get(sy, "sync.", "datadir", "str")
    status_file = r.get(sy, "sync.", "status_file", "str")
    sync = SyncConfig(
        datadir=Path(datadir) if datadir else None,
        candles=r.get(sy, "sync.", "candles", "int", 1500, check=_at_least(0)),
        owner=r.get(sy, "sync.", "owner", "str"),
        group=r.get(sy, "sync.", "group", "str"),
        funding_timeframe=r.get(sy, "sync.", "funding_timeframe", "str", "1h", check=_one_of("1h", "4h", "8h")),
        funding_rate_layout=r.get(sy, "sync.", "funding_rate_layout", "str", "current",
                                  check=_one_of("current", "legacy")),
        status_file=Path(status_file) if status_file else None,
    )

    gateway = _gateway(r, r.section(raw, "gateway"), DEFAULT_ENDPOINTS.get(trading_mode, DEFAULT_ENDPOINTS["futures"]))

    if r.errors:
        listing = "\n".join(f"  - {error}" for error in r.errors)
        raise ConfigError(f"invalid configuration in {source}:\n{listing}")
    return Config(
        influxdb=influxdb,
        exchange=exchange,
        pairs=pairs,
        timeframes=timeframes,
        trading_mode=trading_mode,
        backfill=backfill,
        producer=producer,
        sync=sync,
        gateway=gateway,
        history=history,
        log_level=log_level,
        source=source,
    )


def _history(r: _Reader, raw: Any, timeframes: tuple[str, ...], retention_days: int) -> dict[str, float]:
    """`history: {3m: 90, 1h: 360}`: days of candles kept per timeframe (beyond backfill.candles)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        r.errors.append(f"history: expected a mapping of timeframe: days, e.g. {{3m: 90}}, got {_show(raw)}")
        return {}
    history: dict[str, float] = {}
    for timeframe, days in raw.items():
        value = _as_number(days)
        if timeframe not in timeframes:
            r.errors.append(f"history.{timeframe}: not one of the configured timeframes ({', '.join(timeframes)})")
        elif value is _INVALID or value <= 0:
            r.errors.append(f"history.{timeframe}: expected a number of days > 0, got {_show(days)}")
        elif value > retention_days:
            r.errors.append(f"history.{timeframe}: {value:g} days is longer than InfluxDB keeps "
                            f"(influxdb.retention_days = {retention_days})")
        else:
            history[timeframe] = value
    return history


def _listen(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "expected HOST:PORT, e.g. 127.0.0.1:8091"
    return None


def _gateway(r: _Reader, gw: Mapping[str, Any], endpoints: Mapping[str, str]) -> GatewayConfig:
    r.unknown(gw, "gateway.", {"listen", "close_wait", "live_max_age", "poll_interval", "cache_candles", "cache_ttl",
                               "exchange_info_refresh", "max_wait", "ws_url", "book_max_age", "book_idle",
                               "load_timeout", "state_dir"})
    listen = r.get(gw, "gateway.", "listen", "str", "127.0.0.1:8091", check=_listen)
    host, _, port = listen.rpartition(":")
    ttl = dict(DEFAULT_CACHE_TTL)
    raw_ttl = gw.get("cache_ttl")
    if raw_ttl is not None:
        if not isinstance(raw_ttl, Mapping):
            r.errors.append(f"gateway.cache_ttl: expected a mapping of endpoint: seconds, got {_show(raw_ttl)}")
        else:
            for endpoint, seconds in raw_ttl.items():
                value = _as_number(seconds)
                if not isinstance(endpoint, str) or value is _INVALID or value < 0:
                    r.errors.append(f"gateway.cache_ttl.{endpoint}: expected seconds >= 0, got {_show(seconds)}")
                else:
                    ttl[endpoint] = value
    return GatewayConfig(
        host=host.strip("[]"),
        port=int(port),
        close_wait=r.get(gw, "gateway.", "close_wait", "number", 3.0, check=_at_least(0.0)),
        live_max_age=r.get(gw, "gateway.", "live_max_age", "number", 10.0, check=_at_least(0.5)),
        poll_interval=r.get(gw, "gateway.", "poll_interval", "number", 0.5, check=_at_least(0.05)),
        cache_candles=r.get(gw, "gateway.", "cache_candles", "int", 1500, check=_between(0, 10000)),
        load_timeout=r.get(gw, "gateway.", "load_timeout", "number", 60.0, check=_between(1.0, 3600.0)),
        state_dir=r.get(gw, "gateway.", "state_dir", "str", None) or None,
        cache_ttl=ttl,
        exchange_info_refresh=r.get(gw, "gateway.", "exchange_info_refresh", "number", 600.0, check=_at_least(10.0)),
        max_wait=r.get(gw, "gateway.", "max_wait", "number", 2.0, check=_at_least(0.0)),
        ws_url=r.get(gw, "gateway.", "ws_url", "str", endpoints["public_ws_url"],
                     check=_url(("ws", "wss"))).rstrip("/"),
        book_max_age=r.get(gw, "gateway.", "book_max_age", "number", 1.0, check=_at_least(0.1)),
        book_idle=r.get(gw, "gateway.", "book_idle", "number", 600.0, check=_at_least(10.0)),
        configured="gateway" in r.present,
    )


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate one host's configuration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return from_mapping(raw, str(path), environ)


def read_env_file(path: str | Path) -> dict[str, str]:
    """Variables from a systemd EnvironmentFile (KEY=value, optionally double-quoted with \\ escapes).

    Lets operators run `freqfeed status --env-file /etc/freqfeed/sync.env` with the service's credentials
    without sourcing the file in a shell, where `$` or backticks in a token would be expanded.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read environment file {path}: {exc.strerror}") from None
    variables: dict[str, str] = {}
    for number, raw_line in enumerate(lines, 1):
        line = raw_line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"{path}:{number}: expected KEY=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = re.sub(r"\\(.)", r"\1", value)
        variables[key] = value
    return variables
