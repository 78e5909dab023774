"""The per-host YAML configuration: loading, defaults and validation.

Every key is declared once, as a field of the dataclasses below made with `setting()`: its default, its
meaning (`doc`), how it is read (`kind`, `check`) and how the docs show it. The reader walks those fields,
so a key added there is read, validated, listed among the known keys and documented
(`scripts/gen_docs.py` writes docs/configuration.md from them; `make lint` fails when it is out of date).

Every error names the key, the bad value and what is expected; all problems of a file are
reported together so an operator fixes them in one pass.
"""

# RUF009: `setting()` returns a dataclasses.field (the schema's point), not a shared mutable default.
# ruff: noqa: RUF009

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import yaml

from freqfeed.timeframes import timeframe_ms

EXCHANGES = ("binance", "hyperliquid")  # exchange.name: each a package freqfeed/exchanges/<name>/ (its EXCHANGE)

TOKEN_ENV = "FREQFEED_INFLUXDB_TOKEN"
PASSWORD_ENV = "FREQFEED_INFLUXDB_PASSWORD"

TradingMode = Literal["futures", "spot"]
FundingLayout = Literal["current", "legacy"]

FUTURES_PAIR = re.compile(r"^([A-Z0-9]+)/([A-Z0-9]+):([A-Z0-9]+)$")
SPOT_PAIR = re.compile(r"^([A-Z0-9]+)/([A-Z0-9]+)$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

DEFAULT_ENDPOINTS: dict[str, dict[str, str]] = {
    # ws_url: klines and mark price (the producer); public_ws_url: books and book tickers (the gateway)
    "futures": {"rest_url": "https://fapi.binance.com", "ws_url": "wss://fstream.binance.com/market",
                "public_ws_url": "wss://fstream.binance.com/public"},
    "spot": {"rest_url": "https://api.binance.com", "ws_url": "wss://stream.binance.com:9443",
             "public_ws_url": "wss://stream.binance.com:9443"},
    # exchange.name: hyperliquid (perpetuals only; one /info and one /ws: exchanges/hyperliquid/wire.py)
    "hyperliquid": {"rest_url": "https://api.hyperliquid.xyz", "ws_url": "wss://api.hyperliquid.xyz/ws",
                    "public_ws_url": "wss://api.hyperliquid.xyz/ws"},
}


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid."""


# ---------------------------------------------------------------------------------------------
# checks: each returns the problem (completed with ", got <value>" by the reader) or None


def _url(*schemes: str) -> Callable[[Any], str | None]:
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


class _one_of:  # lower case: used like the other check factories
    """A check that the value is one of `choices` (which the docs show as the key's type)."""

    def __init__(self, *choices: str) -> None:
        self.choices = choices

    def __call__(self, value: str) -> str | None:
        return None if value in self.choices else f"expected one of {', '.join(self.choices)}"


def _name(value: str) -> str | None:
    return None if _NAME.match(value) else "expected a name of letters, digits, '_', '.', '-'"


def _listen(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "expected HOST:PORT, e.g. 127.0.0.1:8091"
    return None


def _listen_or_off(value: str) -> str | None:
    return None if value == "" else _listen(value)


def _readable_file(value: str) -> str | None:
    path = Path(value)
    if not path.is_absolute():
        return "expected an absolute path to a PEM file"
    if not path.is_file():
        return "no such file"
    try:
        with path.open("rb") as handle:
            head = handle.read(65536)
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    return None if b"-----BEGIN CERTIFICATE-----" in head else "not a PEM certificate bundle"


def _without_credentials(r: _Reader, section: Mapping[str, Any]) -> Mapping[str, Any]:
    """influxdb.url refused (and never echoed) when it carries credentials: those live in the env file."""
    raw = section.get("url")
    if isinstance(raw, str) and "@" in urlparse(raw).netloc:
        r.errors.append(f"influxdb.url: must not carry credentials (user:password@ before the host); set "
                        f"influxdb.username in this file and the password ({PASSWORD_ENV}) or token ({TOKEN_ENV}) "
                        "in the service's environment file (sync.env / producer.env, mode 0600)")
        return {**section, "url": "https://invalid"}
    return section


# ---------------------------------------------------------------------------------------------
# the schema


def setting(
    default: Any = MISSING,
    doc: str = "",
    *,
    kind: str,
    check: Callable[[Any], str | None] | None = None,
    shows: str | None = None,
    default_shows: str | None = None,
    env: str | None = None,
    endpoint: str | None = None,
    factory: Callable[[], Any] | None = None,
    repr: bool = True,
) -> Any:
    """A configuration key: a dataclass field whose metadata says how it is read and documented.

    kind: str, url, bool, int, number, str_list, path (read by the generic reader), or custom (read by
    hand in from_mapping, e.g. mappings); check: a further validation; shows: the type column of the docs
    (default: from kind); default_shows: the default column when the value alone says too little;
    env: an environment variable that wins over the file; endpoint: the default is DEFAULT_ENDPOINTS'
    entry of that name for the trading mode (the dataclass default is the futures one)."""
    metadata = {"doc": doc, "kind": kind, "check": check, "shows": shows, "default_shows": default_shows,
                "env": env, "endpoint": endpoint}
    if endpoint is not None:
        default = DEFAULT_ENDPOINTS["futures"][endpoint]
    if factory is not None:
        return field(default_factory=factory, metadata=metadata, repr=repr)
    if default is MISSING:
        return field(metadata=metadata, repr=repr)
    return field(default=default, metadata=metadata, repr=repr)


def derived(default: Any, doc: str) -> Any:
    """A field that is no configuration key: the reader sets it from something else. Every other field of the
    configuration's dataclasses is a `setting()` (`scripts/gen_docs.py --check` fails on a plain one, which the
    reader would neither read nor document)."""
    return field(default=default, metadata={"derived": doc})


def _section(cls: type, doc: str, *, required: bool = False) -> Any:
    metadata = {"doc": doc, "section": cls}
    return field(metadata=metadata) if required else field(default_factory=cls, metadata=metadata)


_HTTP = _url("http", "https")
_WS = _url("ws", "wss")


@dataclass(frozen=True)
class InfluxDBConfig:
    url: str = setting(doc="InfluxDB's HTTP endpoint", kind="url", check=_HTTP)
    database: str = setting(doc="database (InfluxDB 1.x) or bucket (2.x/3.x)", kind="str", check=_name,
                            shows="name")
    retention_policy: str | None = setting(
        None, "retention policy (1.x), DBRP mapping's rp (2.x); an error on 3.x/Cloud", kind="str", check=_name,
        shows="name", default_shows="server default")
    token: str | None = setting(
        None, "sent as `Authorization: Token ...` (2.x/3.x, or 1.8+ `user:password`)",
        kind="str", env=TOKEN_ENV, repr=False)
    username: str | None = setting(None, "basic auth (1.x)", kind="str")
    password: str | None = setting(None, "basic auth (1.x)", kind="str",
                                   env=PASSWORD_ENV, repr=False)
    verify_tls: bool = setting(True, "verify the server certificate (false: encrypted but unverified, warned once)",
                               kind="bool")
    ca_file: str | None = setting(
        None, "PEM bundle of the CA(s) that verify InfluxDB's certificate (https only; absolute path)", kind="str",
        check=_readable_file, shows="path", default_shows="system CAs")
    timeout: float = setting(10.0, "per request", kind="number", check=_at_least(0.1), shows="seconds")
    retention_days: int = setting(
        360, "duration used when the producer creates the database or policy (1.x), and in the commands "
        "freqfeed tells operators to run elsewhere", kind="int", check=_at_least(1))
    concurrency: int = setting(
        8, "requests at a time where the server takes one statement per request (InfluxDB 3.0-3.6)",
        kind="int", check=_between(0, 64), shows="1-64")


@dataclass(frozen=True)
class ExchangeConfig:
    name: str = setting("binance", "the exchange: `hyperliquid` (USDC perpetuals, futures only) changes the endpoints' "
                        "defaults, the pairs (`BTC/USDC:USDC`) and timeframes accepted", kind="str",
                        check=_one_of(*EXCHANGES))
    rest_url: str = setting(doc="REST base (testnet, simulator)", kind="url", check=_HTTP, endpoint="rest_url")
    ws_url: str = setting(doc="websocket base of the kline and mark price streams; `ws://` allowed", kind="url",
                          check=_WS, endpoint="ws_url")
    request_delay: float = setting(
        0.6, "fixed pause between REST requests (with the weight budget, it sizes the backfill's pages)",
        kind="number", check=_at_least(0.0), shows="seconds")
    max_weight_share: float = setting(
        0.5, "share of Binance's per-minute request weight the producer (or the gateway's forwarded requests) "
        "may use", kind="number", check=_between(0.0, 1.0), shows="0-1")
    timeout: float = setting(10.0, "per REST request", kind="number", check=_at_least(0.1), shows="seconds")


@dataclass(frozen=True)
class BackfillConfig:
    candles: int = setting(1500, "window the producer keeps complete in InfluxDB, per series", kind="int",
                           check=_at_least(1))


@dataclass(frozen=True)
class ProducerConfig:
    batch_size: int = setting(5000, "points per InfluxDB write", kind="int", check=_at_least(1))
    flush_interval: float = setting(0.2, "longest a point waits before it is written", kind="number",
                                    check=_at_least(0.01), shows="seconds")
    buffer_limit: int = setting(
        2_000_000, "points buffered while InfluxDB is down (~250 MB worst case); past it the oldest are dropped "
        "and fetched again over REST later", kind="int", check=_at_least(1000))
    silent_periods: float = setting(2.0, "periods without a closed candle after which a stream counts as silent",
                                    kind="number", check=_at_least(1.0))
    health_file: Path | None = setting(None, "JSON health snapshot, rewritten every 5 s", kind="path")
    live_interval: float = setting(1.0, "how often the candles in progress are written to `live_candle`",
                                   kind="number", check=_at_least(0.1), shows="seconds")
    metrics_listen: str = setting("127.0.0.1:9817", "where the producer serves Prometheus `/metrics` (empty: off)",
                                  kind="off_str", check=_listen_or_off, shows="HOST:PORT or empty")


@dataclass(frozen=True)
class SyncConfig:
    datadir: Path | None = setting(None, "freqtrade's `user_data/data/binance`", kind="path",
                                   default_shows="required for sync")
    candles: int = setting(1500, "candles a file keeps (never fewer than `history`); `0` = everything InfluxDB "
                           "has", kind="int", check=_at_least(0))
    owner: str | None = setting(None, "chown written files to this user (needs root; normally the service runs "
                                "as the owner)", kind="str", shows="name")
    group: str | None = setting(None, "chown written files to this group (needs root)", kind="str", shows="name")
    funding_timeframe: str = setting(
        "1h", "timeframe in funding-rate file names: freqtrade's `funding_fee_timeframe` (1h since 2025.12, 8h "
        "before)", kind="str", check=_one_of("1h", "4h", "8h"))
    funding_rate_layout: FundingLayout = setting(
        "current", "funding file columns: `date, funding_rate` (freqtrade 2026.x) or the OHLCV shape with the "
        "rate in `open` that every version reads", kind="str", check=_one_of("current", "legacy"))
    status_file: Path | None = setting(None, "last run's result", kind="path",
                                       default_shows="`<datadir>/.freqfeed-sync-status.json`")
    metrics_file: Path | None = setting(None, "Prometheus `.prom` file each run writes atomically, for "
                                        "node_exporter's textfile collector (empty: off)", kind="off_path",
                                        default_shows="off")


DEFAULT_CACHE_TTL: dict[str, float] = {
    "default": 1.0, "depth": 0.5, "ticker/bookTicker": 0.5, "ticker/24hr": 2.0, "ticker/price": 1.0,
    "premiumIndex": 1.0,
}


@dataclass(frozen=True)
class GatewayConfig:
    listen: str = setting("127.0.0.1:8091", "where `freqfeed serve` listens (a section `gateway:` also tells "
                          "`freqfeed status` this feeder runs one)", kind="str", check=_listen, shows="HOST:PORT")
    close_wait: float = setting(3.0, "longest a request waits for a candle that just closed before it goes to "
                                "Binance", kind="number", check=_at_least(0.0), shows="seconds")
    live_max_age: float = setting(10.0, "a candle in progress updated longer ago is stale: never served",
                                  kind="number", check=_at_least(0.5), shows="seconds")
    poll_interval: float = setting(0.5, "how often the gateway reads new candles from InfluxDB", kind="number",
                                   check=_at_least(0.05), shows="seconds")
    cache_candles: int = setting(1500, "closed candles per series kept in memory (older windows are read from "
                                 "InfluxDB; 1500 covers freqtrade's start-up downloads)", kind="int",
                                 check=_between(0, 10000), shows="1-10000")
    load_timeout: float = setting(60.0, "longest a start may take loading the caches: then ready anyway (systemd "
                                  "READY=1), forwarding what is not loaded, loudly", kind="number",
                                  check=_between(1.0, 3600.0), shows="seconds")
    state_dir: Path | None = setting(None, "the cache snapshot and immutable answers, kept across restarts",
                                     kind="path", default_shows="$STATE_DIRECTORY (systemd's StateDirectory=)")
    cache_ttl: dict[str, float] = setting(
        doc="seconds a forwarded answer is reused, per endpoint (the ones given replace these)", kind="custom",
        factory=lambda: dict(DEFAULT_CACHE_TTL), shows="mapping")
    exchange_info_refresh: float = setting(600.0, "how often exchangeInfo is fetched again", kind="number",
                                           check=_at_least(10.0), shows="seconds")
    max_wait: float = setting(2.0, "longest a forwarded request waits for room in the minute's weight budget "
                              "(then a local 429)", kind="number", check=_at_least(0.0), shows="seconds")
    ws_url: str = setting(doc="websocket base of the book streams", kind="url", check=_WS,
                          endpoint="public_ws_url")
    book_max_age: float = setting(1.0, "a book or book ticker received longer ago is never served", kind="number",
                                  check=_at_least(0.1), shows="seconds")
    book_idle: float = setting(600.0, "a symbol's book streams stop when no bot asked for it that long "
                               "(configured pairs stay)", kind="number", check=_at_least(10.0), shows="seconds")
    book_silence: float = setting(10.0, "a streaming book connection with no message for this long is replaced",
                                  kind="number", check=_between(1.0, 300.0), shows="seconds")
    book_heartbeat: float = setting(30.0, "websocket ping on every book connection this often; no pong within "
                                    "half of it: replaced", kind="number", check=_between(2.0, 170.0),
                                    shows="seconds")
    forward_cache_entries: int = setting(2000, "forwarded answers kept (least recently used dropped first)",
                                         kind="int", check=_between(0, 1_000_000))
    forward_cache_mb: float = setting(64.0, "and at most this many MB of their bodies", kind="number",
                                      check=_between(0.0, 65536.0), shows="MB")
    block_cache_mb: float = setting(32.0, "decompressed blocks of older candles kept for windows that reach them "
                                    "(limit 1500; least recently used dropped first)", kind="number",
                                    check=_between(0.0, 65536.0), shows="MB")
    metrics_listen: str = setting("127.0.0.1:9818", "where the gateway serves Prometheus `/metrics` (empty: off)",
                                  kind="off_str", check=_listen_or_off, shows="HOST:PORT or empty")
    configured: bool = derived(False, "the file has a gateway section: this host runs `freqfeed serve`")

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def ttl(self, endpoint: str) -> float:
        return self.cache_ttl.get(endpoint, self.cache_ttl.get("default", 1.0))


@dataclass(frozen=True)
class Config:
    influxdb: InfluxDBConfig = _section(InfluxDBConfig, "where the candles are kept", required=True)
    exchange: ExchangeConfig = _section(ExchangeConfig, "Binance, for the producer and the gateway's forwarding",
                                        required=True)
    pairs: tuple[str, ...] = setting(doc="freqtrade notation: `BTC/USDT:USDT` (futures) or `BTC/USDT` (spot)",
                                     kind="str_list")
    timeframes: tuple[str, ...] = setting(("3m", "15m", "1h"), "candle timeframes (Binance intervals)",
                                          kind="str_list")
    trading_mode: TradingMode = setting("futures", "USDT-M perpetuals (with mark price and funding) or spot",
                                        kind="str", check=_one_of("futures", "spot"))
    backfill: BackfillConfig = _section(BackfillConfig, "the producer's backfill")
    producer: ProducerConfig = _section(ProducerConfig, "the producer")
    sync: SyncConfig = _section(SyncConfig, "the sync into freqtrade's files")
    gateway: GatewayConfig = _section(GatewayConfig, "the market-data gateway")
    history: dict[str, float] = setting(
        doc="days per timeframe kept complete beyond `backfill.candles`, e.g. `{3m: 35, 1h: 35}` (each a "
        "configured timeframe, > 0, at most `influxdb.retention_days`); mark candles and funding keep the "
        "longest; the sync's files keep at least as much. `freqfeed plan` prints it", kind="custom",
        factory=dict, shows="mapping", default_shows="none")
    log_level: str = setting("INFO", "log level of the command", kind="str",
                             check=_one_of("DEBUG", "INFO", "WARNING", "ERROR"))
    source: str = derived("<dict>", "the file it was read from")

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
# the keys, for the reader and the docs


@dataclass(frozen=True)
class Key:
    """One documented configuration key."""

    name: str  # dotted: influxdb.url
    field: Field[Any]

    @property
    def doc(self) -> str:
        return str(self.field.metadata["doc"])

    @property
    def kind(self) -> str:
        return str(self.field.metadata["kind"])

    @property
    def required(self) -> bool:
        return self.field.default is MISSING and self.field.default_factory is MISSING

    def default(self, trading_mode: str = "futures") -> Any:
        """The value the reader uses when the file does not set the key."""
        endpoint = self.field.metadata.get("endpoint")
        if endpoint is not None:
            return DEFAULT_ENDPOINTS[trading_mode][endpoint]
        if self.field.default_factory is not MISSING:
            return self.field.default_factory()
        return None if self.field.default is MISSING else self.field.default


def _keys_of(cls: type) -> Iterator[Field[Any]]:
    return (f for f in fields(cls) if "kind" in f.metadata)


def undeclared_fields() -> list[str]:
    """Fields of the configuration's dataclasses made neither with setting() nor derived()."""
    found = []
    for top in fields(Config):
        section = top.metadata.get("section")
        found += [f"{top.name}.{f.name}" for f in fields(section) if not {"kind", "derived"} & set(f.metadata)] \
            if section else ([] if {"kind", "derived", "section"} & set(top.metadata) else [top.name])
    return found


def config_keys() -> list[Key]:
    """Every configuration key in file order: the top-level ones, then each section's."""
    found: list[Key] = []
    for top in fields(Config):
        section = top.metadata.get("section")
        if section is not None:
            found.extend(Key(f"{top.name}.{f.name}", f) for f in _keys_of(section))
        elif "kind" in top.metadata:
            found.append(Key(top.name, top))
    return found


def config_key(name: str) -> Key:
    """The key of a dotted name (KeyError when there is none)."""
    for candidate in config_keys():
        if candidate.name == name:
            return candidate
    raise KeyError(name)


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
        if kind == "url":
            return converted.rstrip("/")
        if kind in ("path", "off_path"):  # off_path: empty is off (None)
            return Path(converted) if converted.strip() else None
        return converted

    def fields(
        self, raw: Mapping[str, Any], prefix: str, cls: type, env: Mapping[str, str], trading_mode: str,
    ) -> dict[str, Any]:
        """Every key of `cls` the generic reader handles (all but kind=custom), as keyword arguments."""
        values: dict[str, Any] = {}
        for f in _keys_of(cls):
            spec = Key(prefix + f.name, f)
            variable = f.metadata["env"]
            if spec.kind == "custom":
                continue
            if variable and env.get(variable):
                values[f.name] = env[variable]
            else:
                values[f.name] = self.get(raw, prefix, f.name, spec.kind, spec.default(trading_mode),
                                          required=spec.required, check=f.metadata["check"])
        return values


_INVALID = object()


def _as_str(value: Any) -> Any:
    return value if isinstance(value, str) and value.strip() else _INVALID


def _as_any_str(value: Any) -> Any:
    return value if isinstance(value, str) else _INVALID


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
    "url": (_as_str, "a non-empty string"),
    "path": (_as_str, "a non-empty string"),
    "off_str": (_as_any_str, "a string (empty: off)"),
    "off_path": (_as_any_str, "a path (empty: off)"),
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


# ---------------------------------------------------------------------------------------------


def validate_pair(pair: str, trading_mode: str, exchange: str = "binance") -> str | None:
    """Problem with a pair in freqtrade notation, or None when it is well-formed (the exchange package says)."""
    from freqfeed import exchanges

    return exchanges.get(exchange).pair_problem(pair, trading_mode)


def exchange_symbol(pair: str) -> str:
    """Binance symbol of a freqtrade pair: BTC/USDT:USDT -> BTCUSDT."""
    return pair.split(":", 1)[0].replace("/", "")


_SECTIONS: dict[str, type] = {f.name: f.metadata["section"] for f in fields(Config) if "section" in f.metadata}


def from_mapping(raw: Any, source: str = "<dict>", environ: Mapping[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a YAML mapping at the top level, got {_show(raw)}")
    r = _Reader()
    r.unknown(raw, "", {f.name for f in fields(Config) if "kind" in f.metadata or "section" in f.metadata})
    # trading_mode first: other keys' defaults and checks depend on it
    mode = r.get(raw, "", "trading_mode", "str", "futures", check=_one_of("futures", "spot"))
    top = r.fields({k: v for k, v in raw.items() if k != "trading_mode"}, "", Config, env, mode)
    del top["trading_mode"]
    pairs: tuple[str, ...] = top["pairs"] or ()
    timeframes: tuple[str, ...] = top["timeframes"]
    raw_exchange = raw.get("exchange")
    exchange = raw_exchange.get("name", "binance") if isinstance(raw_exchange, Mapping) else "binance"
    from freqfeed import exchanges

    described = exchanges.get(exchange if exchange in EXCHANGES else "binance")  # a bad name is reported below
    if mode not in described.trading_modes:
        r.errors.append(f"trading_mode: exchange.name {exchange} has {described.markets} only "
                        f"({', '.join(described.trading_modes)}), got {_show(mode)}")
    allowed = described.timeframes

    for index, pair in enumerate(pairs):
        problem = validate_pair(pair, mode, described.name)
        if problem:
            r.errors.append(f"pairs[{index}]: {problem}, got {_show(pair)}")
    duplicates = sorted({p for p in pairs if pairs.count(p) > 1})
    if duplicates:
        r.errors.append(f"pairs: each pair once, got duplicates {', '.join(duplicates)}")
    for index, timeframe in enumerate(timeframes):
        problem = None if timeframe in allowed else f"expected one of {', '.join(allowed)} ({exchange})"
        if problem:
            r.errors.append(f"timeframes[{index}]: {problem}, got {_show(timeframe)}")
    if len(set(timeframes)) != len(timeframes):
        r.errors.append(f"timeframes: each timeframe once, got {list(timeframes)}")

    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        section = r.section(raw, name)
        r.unknown(section, f"{name}.", {f.name for f in _keys_of(cls)})
        if name == "influxdb":
            section = _without_credentials(r, section)
        values = r.fields(section, f"{name}.", cls, env, described.endpoint_profile or mode)
        if name == "gateway":
            values["cache_ttl"] = _cache_ttl(r, section.get("cache_ttl"))
            values["configured"] = "gateway" in r.present
        sections[name] = values
    fixed = described.funding_timeframe
    if fixed is not None and sections["sync"]["funding_timeframe"] != fixed:
        every = "hourly" if fixed == "1h" else f"every {fixed}"
        r.errors.append(f"sync.funding_timeframe: {described.title} funds {every} and freqtrade names its files "
                        f"-{fixed}-funding_rate, got {_show(sections['sync']['funding_timeframe'])}")
    ix = sections["influxdb"]
    if ix["password"] and not ix["username"]:
        r.errors.append("influxdb.username: missing (a password is set, so a username is expected too)")
    if ix["ca_file"] and not str(ix["url"] or "").startswith("https://"):
        r.errors.append("influxdb.ca_file: set, but influxdb.url is not https:// (the CA verifies a TLS server)")
    history = _history(r, raw.get("history"), timeframes, ix["retention_days"])

    if r.errors:
        listing = "\n".join(f"  - {error}" for error in r.errors)
        raise ConfigError(f"invalid configuration in {source}:\n{listing}")
    built = {name: cls(**sections[name]) for name, cls in _SECTIONS.items()}
    return Config(**built, **top, trading_mode=mode, history=history, source=source)



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


def _cache_ttl(r: _Reader, raw: Any) -> dict[str, float]:
    """`gateway.cache_ttl: {depth: 0.2}`: seconds per endpoint, over DEFAULT_CACHE_TTL."""
    ttl = dict(DEFAULT_CACHE_TTL)
    if raw is None:
        return ttl
    if not isinstance(raw, Mapping):
        r.errors.append(f"gateway.cache_ttl: expected a mapping of endpoint: seconds, got {_show(raw)}")
        return ttl
    for endpoint, seconds in raw.items():
        value = _as_number(seconds)
        if not isinstance(endpoint, str) or value is _INVALID or value < 0:
            r.errors.append(f"gateway.cache_ttl.{endpoint}: expected seconds >= 0, got {_show(seconds)}")
        else:
            ttl[endpoint] = value
    return ttl


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
