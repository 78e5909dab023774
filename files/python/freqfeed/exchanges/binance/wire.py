"""Binance's public market-data wire format, in one place: paths, parameters, errors, weights, shapes.

Shared by the simulator (`freqfeed simulate`) and the gateway (`freqfeed serve`), which both answer
Binance-compatible requests, so that they cannot disagree about what Binance says. Everything here is
a small pure function or a frozen dataclass; no I/O, no clock, no data source.

- markets: USD-M futures (`/fapi/v1`, 2400 weight per minute) and spot (`/api/v3`, 6000)
- errors: `BinanceError` and one constructor per Binance error the public endpoints return
- decimals: exact decimal strings from integer ticks (`format_ticks`) or from floats (`format_float`)
- requests: parsing and validation of klines, markPriceKlines, fundingRate, depth and ticker parameters
- windows: which candles (`kline_window`) and funding times (`funding_window`) an answer holds
- shapes: kline rows and events, funding rows, premiumIndex, depth snapshots and events, book
  tickers, 24hr tickers, price tickers
- weights: `request_weight(market, endpoint, params)`, Binance's documented numbers
- websocket: stream names, which route delivers which stream, per-connection limits

Sources: Binance's USD-M futures pages on developers.binance.com, the spot documentation in
binance/binance-spot-api-docs (rest-api.md, web-socket-streams.md, errors.md) and this project's
shared/reference/binance-futures-api.md; each number says where it comes from. tests/test_binance_wire.py
repeats every number literally.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from freqfeed.schema import Candle
from freqfeed.timeframes import BINANCE_TIMEFRAMES, candle_open, timeframe_ms

MarketName = Literal["futures", "spot"]

# -- markets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketInfo:
    """What differs between Binance's USD-M futures and spot public APIs."""

    name: MarketName
    rest_prefix: str  # the versioned REST prefix most endpoints live under
    weight_limit: int  # REQUEST_WEIGHT per minute per IP
    klines_default_limit: int
    klines_max_limit: int
    depth_default_limit: int
    max_streams_per_connection: int
    max_incoming_messages_per_second: int


FUTURES = MarketInfo(
    name="futures", rest_prefix="/fapi/v1", weight_limit=2400, klines_default_limit=500, klines_max_limit=1500,
    depth_default_limit=500,
    # 200 as in this project's reference (shared/reference/binance-futures-api.md) and Binance's routed
    # (/public, /market) connect page; the general USD-M page now says 1024. The stricter one wins here:
    # a client that keeps to 200 works against both.
    max_streams_per_connection=200,
    max_incoming_messages_per_second=10,  # "WebSocket connections have a limit of 10 incoming messages per second."
)
SPOT = MarketInfo(
    name="spot", rest_prefix="/api/v3", weight_limit=6000, klines_default_limit=500, klines_max_limit=1000,
    depth_default_limit=100,
    max_streams_per_connection=1024,  # spot web-socket-streams.md, "WebSocket Limits"
    max_incoming_messages_per_second=5,  # ditto: PING, PONG and JSON control messages all count
)
MARKETS: dict[str, MarketInfo] = {"futures": FUTURES, "spot": SPOT}

INTERVALS = BINANCE_TIMEFRAMES  # 1M (calendar month) is not served: it is not a fixed grid
FUTURES_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
SPOT_DEPTH_MAX = 5000  # "If limit > 5000, only 5000 entries will be returned." (not an error)
FUNDING_DEFAULT_LIMIT = 100
FUNDING_MAX_LIMIT = 1000
FUNDING_LIMIT_PER_5MIN = 500  # fundingRate has no minute weight but its own 500 requests / 5 min / IP
PARTIAL_DEPTH_LEVELS = (5, 10, 20)


def market_info(market: str) -> MarketInfo:
    """The MarketInfo of "futures" or "spot"."""
    try:
        return MARKETS[market]
    except KeyError:
        raise ValueError(f"unknown market {market!r} (futures, spot)") from None


def split_path(path: str) -> tuple[MarketName, str] | None:
    """`/fapi/v1/ticker/price` -> ("futures", "ticker/price"); `/api/v3/depth` -> ("spot", "depth");
    None for anything that is not a public REST path of either market (any futures version)."""
    match = re.match(r"^/(fapi|api)/v(\d+)/(.+)$", path)
    if not match:
        return None
    if match.group(1) == "fapi":
        return "futures", match.group(3)
    return ("spot", match.group(3)) if match.group(2) == "3" else None


# -- public endpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One public market-data REST endpoint: `path` as Binance spells it (`/fapi/v1/klines`), `name` the part
    after the versioned prefix (`klines`, what weights and answers are keyed by), the query parameters it reads
    and the defaults Binance applies to absent ones (so that two requests meaning the same share one key)."""

    market: MarketName
    path: str
    name: str
    params: frozenset[str]
    defaults: tuple[tuple[str, str], ...] = ()


_KLINE_PARAMS = ("symbol", "interval", "startTime", "endTime", "limit")
# What the USD-M futures "Market Data Endpoints" pages and spot rest-api.md ("Market Data endpoints",
# "General endpoints") list as NONE-security (public) GET endpoints, with their parameters. Anything else
# (USER_DATA, TRADE, USER_STREAM, MARKET_DATA with an API key such as historicalTrades) is not public.
_PUBLIC: dict[MarketName, dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]]] = {
    "futures": {
        "/fapi/v1/ping": ((), ()),
        "/fapi/v1/time": ((), ()),
        "/fapi/v1/exchangeInfo": ((), ()),
        "/fapi/v1/depth": (("symbol", "limit"), (("limit", "500"),)),
        "/fapi/v1/trades": (("symbol", "limit"), (("limit", "500"),)),
        "/fapi/v1/aggTrades": (("symbol", "fromId", "startTime", "endTime", "limit"), (("limit", "500"),)),
        "/fapi/v1/klines": (_KLINE_PARAMS, (("limit", "500"),)),
        "/fapi/v1/continuousKlines": (("pair", "contractType", "interval", "startTime", "endTime", "limit"),
                                      (("limit", "500"),)),
        "/fapi/v1/indexPriceKlines": (("pair", "interval", "startTime", "endTime", "limit"), (("limit", "500"),)),
        "/fapi/v1/markPriceKlines": (_KLINE_PARAMS, (("limit", "500"),)),
        "/fapi/v1/premiumIndexKlines": (_KLINE_PARAMS, (("limit", "500"),)),
        "/fapi/v1/premiumIndex": (("symbol",), ()),
        "/fapi/v1/fundingRate": (("symbol", "startTime", "endTime", "limit"), (("limit", "100"),)),
        "/fapi/v1/fundingInfo": ((), ()),
        "/fapi/v1/ticker/24hr": (("symbol",), ()),
        "/fapi/v1/ticker/price": (("symbol",), ()),
        "/fapi/v2/ticker/price": (("symbol",), ()),
        "/fapi/v1/ticker/bookTicker": (("symbol",), ()),
        "/fapi/v1/openInterest": (("symbol",), ()),
        "/fapi/v1/indexInfo": (("symbol",), ()),
        "/fapi/v1/assetIndex": (("symbol",), ()),
        "/fapi/v1/constituents": (("symbol",), ()),
    },
    "spot": {
        "/api/v3/ping": ((), ()),
        "/api/v3/time": ((), ()),
        "/api/v3/exchangeInfo": (("symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus"), ()),
        "/api/v3/depth": (("symbol", "limit"), (("limit", "100"),)),
        "/api/v3/trades": (("symbol", "limit"), (("limit", "500"),)),
        "/api/v3/aggTrades": (("symbol", "fromId", "startTime", "endTime", "limit"), (("limit", "500"),)),
        "/api/v3/klines": ((*_KLINE_PARAMS, "timeZone"), (("limit", "500"),)),
        "/api/v3/uiKlines": ((*_KLINE_PARAMS, "timeZone"), (("limit", "500"),)),
        "/api/v3/avgPrice": (("symbol",), ()),
        "/api/v3/ticker/24hr": (("symbol", "symbols", "type"), ()),
        "/api/v3/ticker/tradingDay": (("symbol", "symbols", "timeZone", "type"), ()),
        "/api/v3/ticker/price": (("symbol", "symbols"), ()),
        "/api/v3/ticker/bookTicker": (("symbol", "symbols"), ()),
        "/api/v3/ticker": (("symbol", "symbols", "windowSize", "type"), ()),
    },
}
PUBLIC_ENDPOINTS: dict[str, Endpoint] = {
    path: Endpoint(market, path, path.split("/", 3)[3], frozenset(params), defaults)
    for market, paths in _PUBLIC.items() for path, (params, defaults) in paths.items()
}
# Parameters that only signed (private) requests carry: refused on every path.
SIGNED_PARAMS = frozenset({"signature", "timestamp", "recvWindow"})
API_KEY_HEADER = "X-MBX-APIKEY"


def public_endpoint(path: str) -> Endpoint | None:
    """The public endpoint at exactly `path` (`/fapi/v1/klines`; case, prefix and version as Binance's), else None."""
    return PUBLIC_ENDPOINTS.get(path)


def read_params(endpoint: Endpoint, params: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The parameters of a request to `endpoint`, checked as Binance does and normalised: each sent once
    (-1101 otherwise), each one the endpoint reads (-1104 otherwise), defaults applied to absent ones, sorted
    by name. The result is what is forwarded and what caches and coalescing are keyed by."""
    names = [name for name, _ in params]
    if len(set(names)) != len(names):
        raise duplicate_parameter()
    unread = [name for name in names if name not in endpoint.params]
    if unread:
        raise unread_parameters(len(names) - len(unread), len(names))
    given = dict(params)
    for name, value in endpoint.defaults:
        given.setdefault(name, value)
    return tuple(sorted(given.items()))


# -- errors -------------------------------------------------------------------------------------


class BinanceError(Exception):
    """An answer Binance gives instead of data: HTTP status, Binance's code and message, extra headers."""

    def __init__(self, status: int, code: int, msg: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body Binance sends: {"code": ..., "msg": ...}."""
        return {"code": self.code, "msg": self.msg}


def invalid_symbol() -> BinanceError:
    """-1121 BAD_SYMBOL: a symbol the exchange does not list."""
    return BinanceError(400, -1121, "Invalid symbol.")


def invalid_interval() -> BinanceError:
    """-1120 BAD_INTERVAL: an interval outside Binance's list."""
    return BinanceError(400, -1120, "Invalid interval.")


def mandatory_parameter(name: str) -> BinanceError:
    """-1102 MANDATORY_PARAM_EMPTY_OR_MALFORMED."""
    return BinanceError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal_characters(name: str, legal: str = "^[0-9]{1,20}$") -> BinanceError:
    """-1100 ILLEGAL_CHARS: e.g. a time that is not digits."""
    return BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def invalid_parameter(name: str) -> BinanceError:
    """-1130 INVALID_PARAMETER: e.g. a limit out of range."""
    return BinanceError(400, -1130, f"Data sent for parameter '{name}' is not valid.")


def invalid_depth_limit() -> BinanceError:
    """-4021 INVALID_DEPTH_LIMIT (USD-M futures error-code page): a futures depth limit within 1..1000 that is
    not one of 5, 10, 20, 50, 100, 500, 1000 (e.g. 7); beyond that range USD-M answers -1130."""
    return BinanceError(400, -4021, "Invalid depth limit.")


def unread_parameters(read: int, sent: int) -> BinanceError:
    """-1104 UNREAD_PARAMETERS (errors.md of both markets): a parameter the endpoint does not know, e.g. spot
    depth with `depth=` instead of `limit=` answers "read '1' parameter(s) but was sent '2'"."""
    return BinanceError(400, -1104, f"Not all sent parameters were read; read '{read}' parameter(s) but was sent "
                                    f"'{sent}'.")


def duplicate_parameter() -> BinanceError:
    """-1101 TOO_MANY_PARAMETERS: the same parameter sent twice."""
    return BinanceError(400, -1101, "Duplicate values for a parameter detected.")


def start_after_end() -> BinanceError:
    """-1023: startTime > endTime."""
    return BinanceError(400, -1023, "Start time is greater than end time.")


def bad_parameter_combination() -> BinanceError:
    """-1128 OPTIONAL_PARAMS_BAD_COMBO: spot's `symbol` and `symbols` sent together."""
    return BinanceError(400, -1128, "Combination of optional parameters invalid.")


def invalid_ticker_type() -> BinanceError:
    """-1139 INVALID_TICKER_TYPE: spot 24hr ticker `type` other than FULL or MINI."""
    return BinanceError(400, -1139, "Invalid ticker type.")


def too_many_requests(market: str, retry_after_s: int, used_weight: int) -> BinanceError:
    """429 -1003: the minute's request weight is spent (Retry-After: seconds to the next minute)."""
    info = market_info(market)
    if info.name == "futures":  # futures error-code page
        msg = (f"Too many requests; current limit is {info.weight_limit} requests per minute. "
               "Please use the websocket for live updates to avoid polling the API.")
    else:  # spot errors.md
        msg = (f"Too much request weight used; current limit is {info.weight_limit} request weight per 1 MINUTE. "
               "Please use WebSocket Streams for live updates to avoid polling the API.")
    return BinanceError(429, -1003, msg, {"Retry-After": str(retry_after_s), "X-MBX-USED-WEIGHT-1M": str(used_weight)})


def ip_banned(market: str, until_ms: int, retry_after_s: int) -> BinanceError:
    """418 -1003: the IP kept going after 429s and is banned until `until_ms`."""
    if market_info(market).name == "futures":
        msg = (f"Way too many requests; IP banned until {until_ms}. "
               "Please use the websocket for live updates to avoid bans.")
    else:
        msg = (f"Way too much request weight used; IP banned until {until_ms}. "
               "Please use WebSocket Streams for live updates to avoid bans.")
    return BinanceError(418, -1003, msg, {"Retry-After": str(retry_after_s)})


# -- decimals -----------------------------------------------------------------------------------


def format_ticks(values: Iterable[Any], decimals: int) -> list[str]:
    """Integer ticks as exact decimal strings: 4200012 with 2 decimals -> '42000.12'."""
    if decimals == 0:
        return [str(int(v)) for v in values]
    scale = 10**decimals
    return [f"{'-' if v < 0 else ''}{abs(int(v)) // scale}.{abs(int(v)) % scale:0{decimals}d}" for v in values]


_EXACT_SCALED = float(2**50)  # below this, round(value * 10**decimals) is the nearest tick exactly


def format_float(value: float, decimals: int) -> str:
    """A float as Binance's decimal string with `decimals` places: 42000.1 with 2 -> '42000.10'.

    Exact for every value on the tick grid (a float parsed from a decimal string with at most
    `decimals` places and at most 15 significant digits, which is all a double holds); other values
    are rounded to the nearest tick, ties to even.
    """
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    scaled = value * 10**decimals
    if abs(scaled) < _EXACT_SCALED:
        return format_ticks([round(scaled)], decimals)[0]
    exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)
    return f"{exact:f}"


def format_floats(values: Iterable[float], decimals: int) -> list[str]:
    """format_float over many values."""
    return [format_float(float(v), decimals) for v in values]


# -- request parsing ----------------------------------------------------------------------------

_DIGITS = re.compile(r"^[0-9]{1,20}$")


def int_param(params: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    """An optional integer parameter; absent or empty -> default; anything but digits -> -1100."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not _DIGITS.match(raw):
        raise illegal_characters(name)
    return int(raw)


def symbol_param(params: Mapping[str, str], known: Container[str]) -> str:
    """The mandatory `symbol`: missing -> -1102, not listed -> -1121."""
    symbol = params.get("symbol")
    if not symbol:
        raise mandatory_parameter("symbol")
    if symbol not in known:
        raise invalid_symbol()
    return symbol


@dataclass(frozen=True)
class KlinesQuery:
    """A validated klines or markPriceKlines request."""

    symbol: str
    interval: str
    start_ms: int | None
    end_ms: int | None
    limit: int


def parse_klines(market: str, params: Mapping[str, str], known: Container[str]) -> KlinesQuery:
    """symbol, interval, startTime, endTime, limit (default 500; max 1500 futures, 1000 spot), checked in
    Binance's order: symbol, interval, limit, times."""
    info = market_info(market)
    symbol = symbol_param(params, known)
    interval = params.get("interval")
    if not interval:
        raise mandatory_parameter("interval")
    if interval not in INTERVALS:
        raise invalid_interval()
    limit = int_param(params, "limit", info.klines_default_limit)
    assert limit is not None
    if not 1 <= limit <= info.klines_max_limit:
        raise invalid_parameter("limit")
    start, end = int_param(params, "startTime"), int_param(params, "endTime")
    if start is not None and end is not None and start > end:
        raise start_after_end()
    return KlinesQuery(symbol, interval, start, end, limit)


@dataclass(frozen=True)
class FundingQuery:
    """A validated fundingRate request."""

    symbol: str
    start_ms: int | None
    end_ms: int | None
    limit: int


def parse_funding(params: Mapping[str, str], known: Container[str]) -> FundingQuery:
    """symbol, startTime, endTime, limit (default 100, max 1000)."""
    symbol = symbol_param(params, known)
    limit = int_param(params, "limit", FUNDING_DEFAULT_LIMIT)
    assert limit is not None
    if not 1 <= limit <= FUNDING_MAX_LIMIT:
        raise invalid_parameter("limit")
    return FundingQuery(symbol, int_param(params, "startTime"), int_param(params, "endTime"), limit)


@dataclass(frozen=True)
class DepthQuery:
    """A validated depth request; `limit` is the number of levels per side to return."""

    symbol: str
    limit: int


def parse_depth(market: str, params: Mapping[str, str], known: Container[str]) -> DepthQuery:
    """Futures: limit one of 5, 10, 20, 50, 100, 500, 1000 (default 500). Spot: default 100, at least 1,
    anything above 5000 answered with 5000 levels."""
    info = market_info(market)
    symbol = symbol_param(params, known)
    limit = int_param(params, "limit", info.depth_default_limit)
    assert limit is not None
    if info.name == "futures":
        if limit not in FUTURES_DEPTH_LIMITS:
            raise invalid_depth_limit() if 1 <= limit <= max(FUTURES_DEPTH_LIMITS) else invalid_parameter("limit")
    elif limit < 1:
        raise invalid_parameter("limit")
    return DepthQuery(symbol, min(limit, SPOT_DEPTH_MAX))


@dataclass(frozen=True)
class SymbolSelection:
    """Which symbols a ticker-style request asks for. `single`: the answer is one object, not a list."""

    symbols: tuple[str, ...] | None  # None: every symbol
    single: bool
    mini: bool = False  # spot 24hr `type=MINI`


_SYMBOLS_LEGAL = r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'


def parse_symbols(market: str, params: Mapping[str, str], known: Container[str], *,
                  ticker_type: bool = False) -> SymbolSelection:
    """The optional `symbol` (both markets) or `symbols` (spot: a JSON list) of bookTicker, ticker/price,
    ticker/24hr and premiumIndex; `ticker_type` also reads spot's `type` (FULL or MINI)."""
    info = market_info(market)
    mini = False
    if ticker_type and info.name == "spot":
        kind = params.get("type", "FULL") or "FULL"
        if kind not in ("FULL", "MINI"):
            raise invalid_ticker_type()
        mini = kind == "MINI"
    symbol, many = params.get("symbol"), params.get("symbols") if info.name == "spot" else None
    if symbol is not None and many is not None:
        raise bad_parameter_combination()
    if symbol is not None:
        if symbol not in known:
            raise invalid_symbol() if symbol else mandatory_parameter("symbol")
        return SymbolSelection((symbol,), single=True, mini=mini)
    if many is None:
        return SymbolSelection(None, single=False, mini=mini)
    try:
        names = json.loads(many)
    except ValueError:
        raise illegal_characters("symbols", _SYMBOLS_LEGAL) from None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise illegal_characters("symbols", _SYMBOLS_LEGAL)
    for name in names:
        if name not in known:
            raise invalid_symbol()
    return SymbolSelection(tuple(names), single=False, mini=mini)


# -- formats ------------------------------------------------------------------------------------

QUOTE_DECIMALS = 8  # quote volumes, as the simulator writes them (Binance's own vary by symbol)
RATE_DECIMALS = 8  # funding rates: "0.00010000"


@dataclass(frozen=True)
class SymbolFormat:
    """How one symbol's prices and quantities are written: the decimals of its tick and its lot."""

    price_decimals: int
    quantity_decimals: int

    def price(self, value: float) -> str:
        return format_float(value, self.price_decimals)

    def quantity(self, value: float) -> str:
        return format_float(value, self.quantity_decimals)


def _step_decimals(step: str) -> int:
    """Decimals of a tick or lot size as Binance writes it: "0.01000000" -> 2, "1" -> 0."""
    fraction = str(step).partition(".")[2]
    return len(fraction.rstrip("0"))


def symbol_formats(market: str, exchange_info: Mapping[str, Any]) -> dict[str, SymbolFormat]:
    """Each symbol's format from an exchangeInfo answer: futures `pricePrecision` / `quantityPrecision`;
    spot (and futures entries without them) the decimals of PRICE_FILTER tickSize and LOT_SIZE stepSize."""
    formats: dict[str, SymbolFormat] = {}
    for entry in exchange_info.get("symbols") or []:
        filters = {f.get("filterType"): f for f in entry.get("filters") or []}
        price = entry.get("pricePrecision") if market == "futures" else None
        quantity = entry.get("quantityPrecision") if market == "futures" else None
        if price is None:
            price = _step_decimals(filters.get("PRICE_FILTER", {}).get("tickSize", "0.00000001"))
        if quantity is None:
            quantity = _step_decimals(filters.get("LOT_SIZE", {}).get("stepSize", "0.00000001"))
        formats[str(entry.get("symbol"))] = SymbolFormat(int(price), int(quantity))
    return formats


def kline_row_from_floats(open_time: int, period_ms: int, fmt: SymbolFormat, open_: float, high: float, low: float,
                          close: float, volume: float | None = None, quote_volume: float | None = None,
                          trades: int | None = None, taker_buy_base: float | None = None,
                          taker_buy_quote: float | None = None, *, mark: bool = False) -> list[Any]:
    """A REST kline from stored numbers (the gateway's InfluxDB rows). Mark-price klines carry "0" volumes,
    as Binance's do."""
    prices = (fmt.price(open_), fmt.price(high), fmt.price(low), fmt.price(close))
    if mark:
        return kline_row(open_time, period_ms, *prices, "0", "0", 0, "0", "0")
    if volume is None or quote_volume is None or trades is None or taker_buy_base is None or taker_buy_quote is None:
        raise ValueError("a kline needs every field")
    return kline_row(open_time, period_ms, *prices, fmt.quantity(volume), format_float(quote_volume, QUOTE_DECIMALS),
                     int(trades), fmt.quantity(taker_buy_base), format_float(taker_buy_quote, QUOTE_DECIMALS))


# -- windows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KlineWindow:
    """The candles a klines answer holds: `count` consecutive opens from `first_open`; when
    `in_progress`, the last of them is the candle still open at `now` (Binance includes it)."""

    first_open: int
    count: int
    period_ms: int
    in_progress: bool

    @property
    def closed_count(self) -> int:
        return self.count - 1 if self.in_progress else self.count

    @property
    def last_open(self) -> int:
        return self.first_open + (self.count - 1) * self.period_ms


def kline_window(query: KlinesQuery, now_ms: int) -> KlineWindow:
    """Binance's selection: no startTime/endTime -> the newest `limit` candles including the one in
    progress; startTime -> from the first open >= startTime; endTime -> the newest with open <= endTime;
    both -> from startTime, at most up to endTime; never past the candle in progress; at most `limit`."""
    period = timeframe_ms(query.interval)
    newest = candle_open(now_ms, query.interval)
    if query.end_ms is not None:
        newest = min(newest, candle_open(query.end_ms, query.interval))
    if query.start_ms is not None:
        first = candle_open(query.start_ms + period - 1, query.interval)
        count = max(0, min(query.limit, (newest - first) // period + 1))
    else:
        count = query.limit
        first = newest - (count - 1) * period
    in_progress = count > 0 and first + count * period > now_ms
    return KlineWindow(first, count, period, in_progress)


@dataclass(frozen=True)
class FundingWindow:
    """The settlements a fundingRate answer holds: those in [start_ms, end_ms], ascending; the first
    `limit` of them when a start was given, else the newest `limit`."""

    start_ms: int | None
    end_ms: int
    limit: int

    def pick(self) -> slice:
        """Which of the ascending settlement times in [start_ms, end_ms] are answered: `times[window.pick()]`."""
        return slice(None, self.limit) if self.start_ms is not None else slice(-self.limit, None)


def funding_window(query: FundingQuery, now_ms: int) -> FundingWindow:
    """No startTime/endTime -> the most recent `limit`; startTime -> startTime + limit; never after now."""
    end = now_ms if query.end_ms is None else min(query.end_ms, now_ms)
    return FundingWindow(query.start_ms, end, query.limit)


# -- shapes -------------------------------------------------------------------------------------


def kline_row(open_time: int, period_ms: int, open_: str, high: str, low: str, close: str, volume: str,
              quote_volume: str, trades: int, taker_buy_base: str, taker_buy_quote: str) -> list[Any]:
    """One REST kline: [openTime, "open", "high", "low", "close", "volume", closeTime, "quoteVolume",
    trades, "takerBuyBase", "takerBuyQuote", "0"] with closeTime = openTime + period - 1."""
    return [int(open_time), open_, high, low, close, volume, int(open_time) + period_ms - 1, quote_volume,
            int(trades), taker_buy_base, taker_buy_quote, "0"]


def kline_rows_from_ticks(open_time: Iterable[Any], open_: Iterable[Any], high: Iterable[Any], low: Iterable[Any],
                          close: Iterable[Any], volume: Iterable[Any], trades: Iterable[Any], *, period_ms: int,
                          price_decimals: int, quantity_decimals: int, mark: bool = False) -> list[list[Any]]:
    """REST klines from integer ticks (prices) and lots (volume). Mark-price klines carry "0" volumes;
    otherwise quote volume = volume x close and the taker-buy half of the volume, to 8 decimals."""
    prices = [format_ticks(column, price_decimals) for column in (open_, high, low, close)]
    if mark:
        return [kline_row(int(t), period_ms, o, h, lo, c, "0", "0", 0, "0", "0")
                for t, o, h, lo, c in zip(open_time, *prices, strict=True)]
    lots = [int(v) for v in volume]
    volumes = format_ticks(lots, quantity_decimals)
    takers = format_ticks([v // 2 for v in lots], quantity_decimals)
    rows = []
    for t, o, h, lo, c, v, n, taker in zip(open_time, *prices, volumes, trades, takers, strict=True):
        price = float(c)
        rows.append(kline_row(int(t), period_ms, o, h, lo, c, v, f"{float(v) * price:.8f}", int(n), taker,
                              f"{float(taker) * price:.8f}"))
    return rows


def kline_event(symbol: str, row: Sequence[Any], interval: str, *, closed: bool, event_ms: int) -> dict[str, Any]:
    """`<symbol>@kline_<interval>` event from a REST kline row; `x` says whether the candle is closed."""
    first_trade = int(row[0]) // 1000
    return {"e": "kline", "E": event_ms, "s": symbol, "k": {
        "t": row[0], "T": row[6], "s": symbol, "i": interval, "f": first_trade, "L": first_trade + row[8],
        "o": row[1], "c": row[4], "h": row[2], "l": row[3], "v": row[5], "n": row[8], "x": closed,
        "q": row[7], "V": row[9], "Q": row[10], "B": "0"}}


def funding_row(symbol: str, funding_time: int, funding_rate: str, mark_price: str) -> dict[str, Any]:
    """One fundingRate entry."""
    return {"symbol": symbol, "fundingTime": int(funding_time), "fundingRate": funding_rate, "markPrice": mark_price}


def premium_index(symbol: str, *, mark_price: str, index_price: str, estimated_settle_price: str,
                  last_funding_rate: str, interest_rate: str, next_funding_time: int, time_ms: int) -> dict[str, Any]:
    """One premiumIndex entry."""
    return {"symbol": symbol, "markPrice": mark_price, "indexPrice": index_price,
            "estimatedSettlePrice": estimated_settle_price, "lastFundingRate": last_funding_rate,
            "interestRate": interest_rate, "nextFundingTime": int(next_funding_time), "time": int(time_ms)}


def mark_price_event(premium: Mapping[str, Any], *, event_ms: int) -> dict[str, Any]:
    """`<symbol>@markPrice[@1s]` event from a premiumIndex entry."""
    return {"e": "markPriceUpdate", "E": event_ms, "s": premium["symbol"], "p": premium["markPrice"],
            "i": premium["indexPrice"], "P": premium["estimatedSettlePrice"], "r": premium["lastFundingRate"],
            "T": premium["nextFundingTime"]}


def book_levels(prices: Iterable[Any], quantities: Iterable[Any], price_decimals: int,
                quantity_decimals: int) -> list[list[str]]:
    """Book levels [["price", "qty"], ...] from integer ticks and lots."""
    return [list(level) for level in zip(format_ticks(prices, price_decimals),
                                         format_ticks(quantities, quantity_decimals), strict=True)]


def depth_snapshot(market: str, last_update_id: int, bids: list[list[str]], asks: list[list[str]], *,
                   event_ms: int, transaction_ms: int) -> dict[str, Any]:
    """GET depth: futures {"lastUpdateId","E","T","bids","asks"}, spot {"lastUpdateId","bids","asks"}."""
    if market_info(market).name == "futures":
        return {"lastUpdateId": last_update_id, "E": event_ms, "T": transaction_ms, "bids": bids, "asks": asks}
    return {"lastUpdateId": last_update_id, "bids": bids, "asks": asks}


def depth_event(market: str, symbol: str, bids: list[list[str]], asks: list[list[str]], *, final_update_id: int,
                previous_final_update_id: int, event_ms: int, transaction_ms: int) -> dict[str, Any]:
    """Partial book `<symbol>@depth<N>[@100ms]` event. Futures: {"e":"depthUpdate","E","T","s","U","u","pu",
    "b","a"} (U: first update id in the event = pu + 1); spot: {"lastUpdateId","bids","asks"}."""
    if market_info(market).name == "futures":
        return {"e": "depthUpdate", "E": event_ms, "T": transaction_ms, "s": symbol,
                "U": previous_final_update_id + 1, "u": final_update_id, "pu": previous_final_update_id,
                "b": bids, "a": asks}
    return {"lastUpdateId": final_update_id, "bids": bids, "asks": asks}


def book_ticker(market: str, symbol: str, bid_price: str, bid_qty: str, ask_price: str, ask_qty: str, *,
                time_ms: int, update_id: int = 0) -> dict[str, Any]:
    """GET ticker/bookTicker entry. Futures {"lastUpdateId","symbol","bidPrice","bidQty","askPrice","askQty",
    "time"} (the book's update id and transaction time); spot {"symbol","bidPrice","bidQty","askPrice","askQty"}."""
    if market_info(market).name == "futures":
        return {"lastUpdateId": update_id, "symbol": symbol, "bidPrice": bid_price, "bidQty": bid_qty,
                "askPrice": ask_price, "askQty": ask_qty, "time": time_ms}
    return {"symbol": symbol, "bidPrice": bid_price, "bidQty": bid_qty, "askPrice": ask_price, "askQty": ask_qty}


def book_ticker_event(market: str, symbol: str, update_id: int, bid_price: str, bid_qty: str, ask_price: str,
                      ask_qty: str, *, event_ms: int, transaction_ms: int) -> dict[str, Any]:
    """`<symbol>@bookTicker` / `!bookTicker` event. Futures {"e":"bookTicker","u","E","T","s","b","B","a","A"};
    spot {"u","s","b","B","a","A"}."""
    if market_info(market).name == "futures":
        return {"e": "bookTicker", "u": update_id, "E": event_ms, "T": transaction_ms, "s": symbol,
                "b": bid_price, "B": bid_qty, "a": ask_price, "A": ask_qty}
    return {"u": update_id, "s": symbol, "b": bid_price, "B": bid_qty, "a": ask_price, "A": ask_qty}


@dataclass(frozen=True)
class TickerStats:
    """A rolling 24-hour window of one symbol, as decimal strings (prices, quantities) and ints."""

    symbol: str
    open_price: str
    high_price: str
    low_price: str
    last_price: str
    last_qty: str
    volume: str
    quote_volume: str
    weighted_avg_price: str
    open_time: int
    close_time: int
    first_id: int
    last_id: int
    count: int
    # spot FULL only
    prev_close_price: str = "0"
    bid_price: str = "0"
    bid_qty: str = "0"
    ask_price: str = "0"
    ask_qty: str = "0"


def _price_change(stats: TickerStats) -> tuple[str, str]:
    last, first = Decimal(stats.last_price), Decimal(stats.open_price)
    places = max(0, -int(Decimal(stats.last_price).as_tuple().exponent))
    change = (last - first).quantize(Decimal(1).scaleb(-places))
    percent = (change / first * 100).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN) if first else Decimal(0)
    return f"{change:f}", f"{percent:f}"


def ticker_24hr(market: str, stats: TickerStats, *, mini: bool = False) -> dict[str, Any]:
    """GET ticker/24hr entry. Futures: symbol, priceChange, priceChangePercent, weightedAvgPrice, lastPrice,
    lastQty, openPrice, highPrice, lowPrice, volume, quoteVolume, openTime, closeTime, firstId, lastId, count.
    Spot FULL adds prevClosePrice and the best bid/ask; spot MINI has no change, average, lastQty or book."""
    change, percent = _price_change(stats)
    tail = {"openPrice": stats.open_price, "highPrice": stats.high_price, "lowPrice": stats.low_price,
            "volume": stats.volume, "quoteVolume": stats.quote_volume, "openTime": stats.open_time,
            "closeTime": stats.close_time, "firstId": stats.first_id, "lastId": stats.last_id, "count": stats.count}
    if market_info(market).name == "futures":
        return {"symbol": stats.symbol, "priceChange": change, "priceChangePercent": percent,
                "weightedAvgPrice": stats.weighted_avg_price, "lastPrice": stats.last_price,
                "lastQty": stats.last_qty, **tail}
    if mini:
        return {"symbol": stats.symbol, "openPrice": stats.open_price, "highPrice": stats.high_price,
                "lowPrice": stats.low_price, "lastPrice": stats.last_price, "volume": stats.volume,
                "quoteVolume": stats.quote_volume, "openTime": stats.open_time, "closeTime": stats.close_time,
                "firstId": stats.first_id, "lastId": stats.last_id, "count": stats.count}
    return {"symbol": stats.symbol, "priceChange": change, "priceChangePercent": percent,
            "weightedAvgPrice": stats.weighted_avg_price, "prevClosePrice": stats.prev_close_price,
            "lastPrice": stats.last_price, "lastQty": stats.last_qty, "bidPrice": stats.bid_price,
            "bidQty": stats.bid_qty, "askPrice": stats.ask_price, "askQty": stats.ask_qty, **tail}


def ticker_price(market: str, symbol: str, price: str, *, time_ms: int) -> dict[str, Any]:
    """GET ticker/price entry: futures {"symbol","price","time"}, spot {"symbol","price"}."""
    if market_info(market).name == "futures":
        return {"symbol": symbol, "price": price, "time": time_ms}
    return {"symbol": symbol, "price": price}


# -- request weights ----------------------------------------------------------------------------


def _limit(params: Mapping[str, str], default: int) -> int:
    raw = params.get("limit")
    return int(raw) if raw and _DIGITS.match(raw) else default


def _klines_weight(market: MarketInfo, params: Mapping[str, str]) -> int:
    # futures Kline/Candlestick Data (and Mark Price Kline): limit < 100 1, < 500 2, <= 1000 5, else 10;
    # spot rest-api.md Kline/Candlestick data: 2
    if market.name == "spot":
        return 2
    limit = _limit(params, market.klines_default_limit)
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


def _depth_weight(market: MarketInfo, params: Mapping[str, str]) -> int:
    limit = _limit(params, market.depth_default_limit)
    if market.name == "futures":  # Order Book: 5, 10, 20, 50 -> 2; 100 -> 5; 500 -> 10; 1000 -> 20
        return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
    # spot rest-api.md "Order book": 1-100 5, 101-500 25, 501-1000 50, 1001-5000 250
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _symbols_count(params: Mapping[str, str]) -> int | None:
    """How many symbols a spot `symbols` list names (None: no list)."""
    raw = params.get("symbols")
    if raw is None:
        return None
    try:
        names = json.loads(raw)
    except ValueError:
        return 1
    return len(names) if isinstance(names, list) else 1


def _ticker_weight(market: MarketInfo, endpoint: str, params: Mapping[str, str]) -> int:
    one = bool(params.get("symbol"))
    if market.name == "futures":
        # 24hr Ticker: 1 for a single symbol, 40 without; Symbol Price Ticker (v1 and v2): 1 / 2;
        # Symbol Order Book Ticker: "2 for a single symbol; 5 when the symbol parameter is omitted"
        single, every = {"ticker/24hr": (1, 40), "ticker/price": (1, 2), "ticker/bookTicker": (2, 5)}[endpoint]
        return single if one else every
    if endpoint == "ticker/24hr":  # spot: symbol 2, omitted 80; symbols 1-20 2, 21-100 40, 101+ 80
        count = _symbols_count(params)
        if one:
            return 2
        if count is None:
            return 80
        return 2 if count <= 20 else 40 if count <= 100 else 80
    return 2 if one else 4  # spot ticker/price and ticker/bookTicker: symbol 2; omitted or symbols 4


_FIXED_WEIGHTS: dict[tuple[str, str], int] = {
    ("futures", "ping"): 1, ("spot", "ping"): 1,
    ("futures", "time"): 1, ("spot", "time"): 1,
    ("futures", "exchangeInfo"): 1, ("spot", "exchangeInfo"): 20,
    ("futures", "openInterest"): 1,
    ("futures", "fundingRate"): 0,  # no minute weight: its own 500 requests / 5 min / IP (FUNDING_LIMIT_PER_5MIN)
}


def request_weight(market: str, endpoint: str, params: Mapping[str, str] | None = None) -> int:
    """The REQUEST_WEIGHT Binance charges for one public request.

    `endpoint` is the path after the versioned prefix ("klines", "depth", "ticker/24hr", ...); `params` the
    query parameters as sent (limits that do not parse count as the default). Raises ValueError for an
    endpoint this table does not know.
    """
    info = market_info(market)
    params = params or {}
    if endpoint in ("klines", "markPriceKlines") and (info.name == "futures" or endpoint == "klines"):
        return _klines_weight(info, params)  # futures Mark Price Kline: "based on parameter LIMIT" like klines
    if endpoint == "depth":
        return _depth_weight(info, params)
    if endpoint in ("ticker/24hr", "ticker/price", "ticker/bookTicker"):
        return _ticker_weight(info, endpoint, params)
    if endpoint == "premiumIndex" and info.name == "futures":
        return 1 if params.get("symbol") else 10
    try:
        return _FIXED_WEIGHTS[(info.name, endpoint)]
    except KeyError:
        raise ValueError(f"no request weight known for {info.name} {endpoint!r}") from None


def page_size(market: str, candles: int, *, request_seconds: float = 0.0, weight_per_second: float | None = None,
              endpoint: str = "klines") -> int:
    """Candles per request for fetching `candles` klines soonest: each request takes `request_seconds` (a
    client's fixed spacing) or, when the weight budget is the bound, its weight / `weight_per_second`;
    less weight, then fewer requests, break ties. Bound by weight, futures' 499 a request (weight 2) beats
    1500 (weight 10) by 40%; bound by the spacing, the largest page does."""
    info = market_info(market)
    if candles <= 1:
        return 1

    def cost(size: int) -> tuple[float, int, int]:
        full, rest = divmod(candles, size)
        weights = [request_weight(market, endpoint, {"limit": str(size)})] * full
        if rest:
            weights.append(request_weight(market, endpoint, {"limit": str(rest)}))
        seconds = sum(max(request_seconds, w / weight_per_second) if weight_per_second else request_seconds
                      for w in weights)
        return round(seconds, 6), sum(weights), len(weights)

    sizes = {min(candles, size) for size in (99, 499, 1000, info.klines_max_limit) if size <= info.klines_max_limit}
    return min(sorted(sizes, reverse=True), key=cost)


# -- websocket streams --------------------------------------------------------------------------

StreamKind = Literal["kline", "markPrice", "depth", "diffDepth", "bookTicker", "allBookTicker", "aggTrade", "trade",
                     "other"]
Route = Literal["market", "public", "bare", "spot"]

BOOK_TICKER_ALL = "!bookTicker"
ALL_BOOK_TICKER_EVERY_MS = 5000  # futures All Book Tickers Stream "Update Speed: 5s"
MARK_PRICE_EVERY_MS = {"": 3000, "1s": 1000}


@dataclass(frozen=True)
class Stream:
    """A parsed stream name. `symbol` upper-case (None for `!` streams); `interval` for klines;
    `levels` for partial depth; `every_ms` the documented push period where it has one."""

    name: str
    kind: StreamKind
    symbol: str | None = None
    interval: str | None = None
    levels: int | None = None
    every_ms: int | None = None


_DEPTH = re.compile(r"^depth(\d+)?(?:@(\d+)ms)?$")


def parse_stream(name: str, market: str = "futures") -> Stream:  # noqa: PLR0911 - one return per kind of stream
    """`btcusdt@depth5@100ms` -> Stream(kind="depth", symbol="BTCUSDT", levels=5, every_ms=100). Partial depth
    without a speed pushes every 250 ms on futures and every 1000 ms on spot; futures also has @500ms."""
    if name == BOOK_TICKER_ALL:
        return Stream(name, "allBookTicker", every_ms=ALL_BOOK_TICKER_EVERY_MS)
    symbol_part, _, kind = name.partition("@")
    symbol = symbol_part.upper() if symbol_part and not symbol_part.startswith("!") else None
    if symbol is None:
        return Stream(name, "other")
    if kind.startswith("kline_"):
        return Stream(name, "kline", symbol, interval=kind[len("kline_"):])
    if kind in ("markPrice", "markPrice@1s"):
        return Stream(name, "markPrice", symbol, every_ms=MARK_PRICE_EVERY_MS[kind.partition("@")[2]])
    if kind == "bookTicker":
        return Stream(name, "bookTicker", symbol)
    if kind in ("aggTrade", "trade"):
        return Stream(name, "aggTrade" if kind == "aggTrade" else "trade", symbol)
    match = _DEPTH.match(kind)
    if match:
        speeds = (100, 250, 500) if market_info(market).name == "futures" else (100, 1000)
        default = 250 if market_info(market).name == "futures" else 1000
        every = int(match.group(2)) if match.group(2) else default
        if every not in speeds:
            return Stream(name, "other", symbol)
        if match.group(1) is None:
            return Stream(name, "diffDepth", symbol, every_ms=every)
        levels = int(match.group(1))
        if levels not in PARTIAL_DEPTH_LEVELS:
            return Stream(name, "other", symbol)
        return Stream(name, "depth", symbol, levels=levels, every_ms=every)
    return Stream(name, "other", symbol)


# Since 2026-04-23 USD-M futures splits market streams by route (shared/reference/binance-futures-api.md,
# Binance's "USD-M Futures routes streams by path"): /market carries klines, mark price and aggregated
# trades, /public book tickers, depth and trades; a connection on the bare base receives only /public
# data, silently. Spot has no routes.
_MARKET_ROUTE_KINDS: frozenset[str] = frozenset({"kline", "markPrice", "aggTrade"})
_PUBLIC_ROUTE_KINDS: frozenset[str] = frozenset({"bookTicker", "allBookTicker", "depth", "diffDepth", "trade"})
_SPOT_KINDS: frozenset[str] = frozenset({"kline", "aggTrade", "trade", "bookTicker", "depth", "diffDepth"})


def route_market(route: str) -> MarketName:
    """The market a websocket route belongs to."""
    return "spot" if route == "spot" else "futures"


def stream_route(stream: Stream) -> Literal["market", "public"] | None:
    """The futures route that carries a stream (None: neither)."""
    if stream.kind in _MARKET_ROUTE_KINDS:
        return "market"
    if stream.kind in _PUBLIC_ROUTE_KINDS:
        return "public"
    return None


def route_delivers(route: str, stream: Stream) -> bool:
    """Whether a connection on `route` (market, public, bare: futures; spot) receives `stream`'s events.
    Every route accepts and acknowledges every name; undelivered ones simply stay silent, as on Binance."""
    if route == "spot":
        return stream.kind in _SPOT_KINDS  # spot has no mark price and no !bookTicker (removed 2022)
    if route == "market":
        return stream_route(stream) == "market"
    if route in ("public", "bare"):
        return stream_route(stream) == "public"
    return False


def too_many_streams_error(request_id: Any = None) -> dict[str, Any]:
    """The error frame sent before closing a connection that asks for more streams than allowed."""
    error: dict[str, Any] = {"error": {"code": 2, "msg": "Invalid request: too many streams"}}
    if request_id is not None:
        error["id"] = request_id
    return error


# -- stream events, as a client reads them -------------------------------------------------------


def kline_stream(symbol: str, interval: str) -> str:
    """`BTCUSDT`, `3m` -> `btcusdt@kline_3m`."""
    return f"{symbol.lower()}@kline_{interval}"


def mark_price_stream(symbol: str, every: str = "1s") -> str:
    """`BTCUSDT` -> `btcusdt@markPrice@1s` (`every=""`: the 3-second stream)."""
    return f"{symbol.lower()}@markPrice" + (f"@{every}" if every else "")


def combined_event(text: str) -> tuple[str, dict[str, Any]] | None:
    """A combined-stream frame `{"stream": name, "data": event}` -> (name, event); None for the answer to a
    control message (`{"result": ..., "id": n}`) or an error frame (`{"error": {...}}`, see `frame_error`).
    ValueError for anything else (not JSON, not an object, no event)."""
    message = json.loads(text)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    stream, data = message.get("stream"), message.get("data")
    if isinstance(stream, str) and isinstance(data, dict):
        return stream, data
    if "result" in message or "error" in message:
        return None
    raise ValueError("neither a stream event nor an answer")


def frame_error(text: str) -> str | None:
    """The error an error frame carries (`{"error": {"code": 2, "msg": ...}}`), or None."""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    error = message.get("error") if isinstance(message, dict) else None
    if error is None:
        return None
    return f"{error.get('code')}: {error.get('msg')}" if isinstance(error, dict) else str(error)


@dataclass(frozen=True)
class KlineUpdate:
    """One `<symbol>@kline_<interval>` event: the candle with every field Binance sends, closed or not."""

    symbol: str
    interval: str
    closed: bool
    event_ms: int
    candle: Candle


def kline_update(event: Mapping[str, Any]) -> KlineUpdate:
    """A kline event (the `data` of a combined frame). KeyError/ValueError/TypeError when a field is missing
    or not a number."""
    k = event["k"]
    candle = Candle(int(k["t"]), float(k["o"]), float(k["h"]), float(k["l"]), float(k["c"]), float(k["v"]),
                    float(k["q"]), int(k["n"]), float(k["V"]), float(k["Q"]))
    return KlineUpdate(str(k["s"]), str(k["i"]), bool(k["x"]), int(event["E"]), candle)


@dataclass(frozen=True)
class MarkPriceUpdate:
    symbol: str
    mark_price: float
    funding_rate: float | None  # `r`, the estimate for the next funding time ("" on delivery contracts)
    next_funding_ms: int | None  # `T` (0 on delivery contracts)
    event_ms: int


def mark_price_update(event: Mapping[str, Any]) -> MarkPriceUpdate:
    """A `markPriceUpdate` event. KeyError/ValueError/TypeError when a field is missing or not a number."""
    rate = event.get("r")
    next_ms = event.get("T")
    return MarkPriceUpdate(str(event["s"]), float(event["p"]), float(rate) if rate not in (None, "") else None,
                           int(next_ms) if next_ms else None, int(event["E"]))
