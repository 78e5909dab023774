"""Hyperliquid's public market-data wire format, in one place: /info request types, validation and errors,
answer shapes, weights, limits, coin and pair names, websocket messages.

Shared by the simulator, the REST and websocket clients and (later) the gateway, which answers
Hyperliquid-compatible requests, so that they cannot disagree about what Hyperliquid says. Everything here
is a small pure function or a frozen dataclass: no I/O, no clock, no data source.

Sources (shared/reference/hyperliquid.md cites each): Hyperliquid's docs (info endpoint, perpetuals,
rate limits and user limits, websocket, subscriptions, timeouts and heartbeats), the official Python SDK and
its recorded answers, ccxt 4.5.90 `hyperliquid.py` (the client freqtrade uses) and freqtrade 2026.9. Where
Hyperliquid's behaviour is not documented the choice is marked "unconfirmed" and kept in one constant.
tests/quick/test_hyperliquid_wire.py repeats every number literally.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from freqfeed.timeframes import candle_open, timeframe_ms

# -- endpoints and limits -----------------------------------------------------------------------

MAINNET_URL = "https://api.hyperliquid.xyz"  # ccxt urls.api.public / private ('https://api.{hostname}')
TESTNET_URL = "https://api.hyperliquid-testnet.xyz"
MAINNET_WS_URL = "wss://api.hyperliquid.xyz/ws"  # ccxt.pro urls.api.ws.public
INFO_PATH = "/info"  # every read, POST with a JSON body; /exchange (signed actions) is never ours
WS_PATH = "/ws"

WEIGHT_LIMIT = 1200  # per IP and minute, /info and /exchange together (rate limits and user limits)
CANDLE_HORIZON = 5000  # "Only the most recent 5000 candles are available" per coin and interval
FUNDING_PAGE = 500  # fundingHistory rows per answer at most (freqtrade PR #10839, measured)
FUNDING_INTERVAL_MS = 3_600_000  # funding is paid every hour; published rates are hourly
L2_LEVELS = 20  # l2Book: at most 20 levels per side

MAX_WS_CONNECTIONS = 10  # per IP (older revisions of the docs: 100)
MAX_NEW_WS_CONNECTIONS_PER_MINUTE = 30
MAX_WS_SUBSCRIPTIONS = 1000  # per IP, over all its connections
MAX_WS_MESSAGES_PER_MINUTE = 2000  # messages sent by the client, per IP
WS_IDLE_CLOSE_S = 60.0  # the server closes a connection on which it sent nothing for 60 s
WS_PING_EVERY_S = 20.0  # ours, as ccxt.pro (the SDK: 50 s): well before the idle close
WS_WELCOME = "Websocket connection established."  # the first frame, plain text (SDK websocket_manager.py)

# Intervals candleSnapshot and the candle subscription accept (no 6h). 1M is a calendar month: accepted
# on the wire, but not a fixed grid, so nothing in freqfeed records it.
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w", "1M")
GRID_INTERVALS = INTERVALS[:-1]

QUOTE = "USDC"  # perpetuals are USDC-settled; freqtrade/ccxt pairs BASE/USDC:USDC

# -- errors -------------------------------------------------------------------------------------

DESERIALIZE_ERROR = "Failed to deserialize the JSON body into the target type"  # HTTP 422 (ccxt #27160, #26071)
JSON_SYNTAX_ERROR = "Failed to parse the request body as JSON"  # HTTP 400: axum's text (unconfirmed)
RATE_LIMITED_BODY = "null"  # HTTP 429 body: undocumented (unconfirmed); ccxt maps any 429 to RateLimitExceeded


class HyperliquidError(Exception):
    """An answer Hyperliquid gives instead of data: HTTP status and a plain-text body. `detail` says, for our
    own logs only, what was wrong (Hyperliquid's body does not)."""

    def __init__(self, status: int, body: str, detail: str = "") -> None:
        super().__init__(f"HTTP {status}: {body}" + (f" ({detail})" if detail else ""))
        self.status, self.body, self.detail = status, body, detail


def bad_body(detail: str) -> HyperliquidError:
    """422: a body that does not deserialize (unknown type, missing or mistyped field, bad interval)."""
    return HyperliquidError(422, DESERIALIZE_ERROR, detail)


def not_json(detail: str = "") -> HyperliquidError:
    return HyperliquidError(400, JSON_SYNTAX_ERROR, detail)


def rate_limited() -> HyperliquidError:
    return HyperliquidError(429, RATE_LIMITED_BODY, "over 1200 weight this minute")


# -- request weights (rate limits and user limits) ----------------------------------------------

WEIGHT_2 = frozenset({"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState",
                      "exchangeStatus"})
WEIGHT_60 = frozenset({"userRole"})
DEFAULT_INFO_WEIGHT = 20  # "All other documented info requests have weight 20"
EXTRA_PER_20 = frozenset({"recentTrades", "historicalOrders", "userFills", "userFillsByTime", "fundingHistory",
                          "userFunding", "nonUserFundingUpdates", "twapHistory", "userTwapSliceFills",
                          "userTwapSliceFillsByTime", "delegatorHistory", "delegatorRewards", "validatorStats"})
EXTRA_PER_60 = frozenset({"candleSnapshot"})


def base_weight(info_type: str) -> int:
    """The weight of an /info request before counting what it returns."""
    if info_type in WEIGHT_2:
        return 2
    if info_type in WEIGHT_60:
        return 60
    return DEFAULT_INFO_WEIGHT


def extra_weight(info_type: str, items: int) -> int:
    """"Additional rate limit weight per 20 (candleSnapshot: 60) items returned": one per full 20 / 60 (the
    amount per step is not stated; one is what other clients assume)."""
    if info_type in EXTRA_PER_20:
        return items // 20
    if info_type in EXTRA_PER_60:
        return items // 60
    return 0


def info_weight(info_type: str, items: int = 0) -> int:
    """What one /info request costs of the 1200 a minute, `items` being the rows it returned."""
    return base_weight(info_type) + extra_weight(info_type, items)


def exchange_weight(batch_length: int) -> int:
    """/exchange actions: 1 + floor(batch_length / 40) (never sent by freqfeed; the gateway counts them)."""
    return 1 + batch_length // 40


# -- intervals, horizon, pages ------------------------------------------------------------------


def interval_ms(interval: str) -> int:
    """Length of one candle of a grid interval ('3m' -> 180000); ValueError for 1M and unknown ones."""
    if interval not in GRID_INTERVALS:
        raise ValueError(f"not a Hyperliquid candle interval on a fixed grid: {interval!r} "
                         f"({', '.join(GRID_INTERVALS)})")
    return timeframe_ms(interval)


def horizon_first_open(now_ms: int, interval: str, horizon: int = CANDLE_HORIZON) -> int:
    """Open time of the oldest candle Hyperliquid still serves at `now_ms`: the newest `horizon` candles,
    the one in progress included."""
    return candle_open(now_ms, interval) - (horizon - 1) * interval_ms(interval)


@dataclass(frozen=True)
class CandleWindow:
    """The candles a candleSnapshot answer holds: `count` candles from `first_open` on."""

    first_open: int
    count: int
    interval: str

    @property
    def last_open(self) -> int:
        return self.first_open + (self.count - 1) * interval_ms(self.interval)

    def opens(self) -> range:
        period = interval_ms(self.interval)
        return range(self.first_open, self.first_open + self.count * period, period)


def candle_window(start_ms: int, end_ms: int, now_ms: int, interval: str, *,
                  horizon: int = CANDLE_HORIZON) -> CandleWindow:
    """The candles of a candleSnapshot {startTime, endTime} at `now_ms`: from the one containing startTime
    to the one containing endTime (unaligned times are fine: SDK cassette test_get_candles_snapshot), cut
    to the last `horizon` candles and to the candle in progress (no future candles). Empty when
    startTime > endTime or the range lies before the horizon."""
    period = interval_ms(interval)
    first = max(candle_open(start_ms, interval), horizon_first_open(now_ms, interval, horizon))
    last = min(candle_open(end_ms, interval), candle_open(now_ms, interval))
    if start_ms > end_ms or last < first:
        return CandleWindow(first, 0, interval)
    return CandleWindow(first, (last - first) // period + 1, interval)


def candle_page_back(start_ms: int, end_ms: int, interval: str, *, page: int = CANDLE_HORIZON) -> tuple[int, int]:
    """The (startTime, endTime) of the newest page of at most `page` candles in [start_ms, end_ms]:
    clients page backwards from `end_ms`, because the horizon cuts the old end."""
    period = interval_ms(interval)
    last = candle_open(end_ms, interval)
    first = max(candle_open(start_ms, interval), last - (page - 1) * period)
    return first, last + period - 1


def horizon_reached(requested_start_ms: int, first_row_open: int | None, interval: str) -> bool:
    """Whether an answer shows that Hyperliquid has nothing older: it is empty, or its first candle opens
    after the candle that contains the requested start (the exchange cut it at its horizon)."""
    return first_row_open is None or first_row_open > candle_open(requested_start_ms, interval)


def funding_times(start_ms: int, end_ms: int, *, limit: int = FUNDING_PAGE) -> list[int]:
    """The hourly funding times (exact hours) a fundingHistory {startTime, endTime} answer holds, oldest
    first, at most `limit` (500): what follows comes with the next page (startTime = last time + 1)."""
    first = -(-start_ms // FUNDING_INTERVAL_MS) * FUNDING_INTERVAL_MS
    if first > end_ms:
        return []
    last = min(end_ms // FUNDING_INTERVAL_MS * FUNDING_INTERVAL_MS, first + (limit - 1) * FUNDING_INTERVAL_MS)
    return list(range(first, last + 1, FUNDING_INTERVAL_MS))


def funding_hour(time_ms: int) -> int:
    """A published funding `time` carries ms jitter (1683849600048): the hour it belongs to."""
    return time_ms // FUNDING_INTERVAL_MS * FUNDING_INTERVAL_MS


# -- /info requests -----------------------------------------------------------------------------

MARKET_TYPES = frozenset({"meta", "metaAndAssetCtxs", "allMids", "l2Book", "candleSnapshot", "fundingHistory",
                          "predictedFundings", "perpDexs", "spotMeta", "spotMetaAndAssetCtxs", "exchangeStatus"})
# Unsigned user queries: they name an address and are answered per user; a gateway forwards them and never
# caches them across users (info endpoint; SDK hyperliquid/info.py).
USER_TYPES = frozenset({"clearinghouseState", "spotClearinghouseState", "openOrders", "frontendOpenOrders",
                        "userFills", "userFillsByTime", "userFunding", "userNonFundingLedgerUpdates",
                        "historicalOrders", "orderStatus", "userRateLimit", "userFees", "userRole", "portfolio",
                        "subAccounts", "userAbstraction", "twapHistory", "userTwapSliceFills", "userVaultEquities",
                        "delegations", "delegatorSummary", "delegatorHistory", "delegatorRewards",
                        "maxBuilderFee", "referral", "extraAgents", "vaultDetails", "activeAssetData"})
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_U64_MAX = 2**64 - 1


@dataclass(frozen=True)
class InfoRequest:
    """A validated /info body. Fields a type does not use stay None; `body` is the body as sent."""

    type: str
    coin: str | None = None
    interval: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    dex: str | None = None
    n_sig_figs: int | None = None
    mantissa: int | None = None
    user: str | None = None
    body: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_user(self) -> bool:
        return self.type in USER_TYPES


def _u64(value: Any, name: str, *, required: bool) -> int | None:
    """serde's u64: a JSON integer from 0 to 2^64-1 (not a float, string, bool or negative number)."""
    if value is None:
        if required:
            raise bad_body(f"missing field `{name}`")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U64_MAX:
        raise bad_body(f"`{name}` is not an unsigned integer: {value!r}")
    return value


def _string(value: Any, name: str, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise bad_body(f"missing field `{name}`")
        return None
    if not isinstance(value, str):
        raise bad_body(f"`{name}` is not a string: {value!r}")
    return value


def _interval(value: Any) -> str:
    interval = _string(value, "interval", required=True)
    if interval not in INTERVALS:
        raise bad_body(f"unknown variant `{interval}` for `interval` ({', '.join(INTERVALS)})")
    assert interval is not None
    return interval


def _n_sig_figs(body: Mapping[str, Any]) -> tuple[int | None, int | None]:
    figures = body.get("nSigFigs")
    mantissa = body.get("mantissa")
    if figures is not None and (isinstance(figures, bool) or figures not in (2, 3, 4, 5)):
        raise bad_body(f"`nSigFigs` must be 2 to 5 or null: {figures!r}")
    if mantissa is not None and (isinstance(mantissa, bool) or mantissa not in (1, 2, 5) or figures != 5):
        raise bad_body(f"`mantissa` must be 1, 2 or 5, and only with nSigFigs 5: {mantissa!r}")
    return figures, mantissa


def parse_info(body: Any) -> InfoRequest:
    """Validate a decoded /info body as Hyperliquid deserializes it: HyperliquidError 422 for anything it
    cannot (not an object, unknown `type`, a missing or mistyped field, an interval outside INTERVALS).
    Fields Hyperliquid does not know are ignored, as serde does; unknown coins are not an error here."""
    if not isinstance(body, Mapping):
        raise bad_body("the body is not a JSON object")
    info_type = body.get("type")
    if not isinstance(info_type, str):
        raise bad_body("missing field `type`")
    if info_type in ("meta", "metaAndAssetCtxs", "allMids"):
        return InfoRequest(info_type, dex=_string(body.get("dex"), "dex", required=False), body=body)
    if info_type in ("predictedFundings", "perpDexs", "spotMeta", "spotMetaAndAssetCtxs", "exchangeStatus"):
        return InfoRequest(info_type, body=body)
    if info_type == "l2Book":
        figures, mantissa = _n_sig_figs(body)
        return InfoRequest(info_type, coin=_string(body.get("coin"), "coin", required=True), n_sig_figs=figures,
                           mantissa=mantissa, body=body)
    if info_type == "candleSnapshot":
        req = body.get("req")
        if not isinstance(req, Mapping):
            raise bad_body("missing field `req`")
        # endTime: the SDK and ccxt always send it; taken as now when absent (unconfirmed)
        return InfoRequest(info_type, coin=_string(req.get("coin"), "coin", required=True),
                           interval=_interval(req.get("interval")),
                           start_ms=_u64(req.get("startTime"), "startTime", required=True),
                           end_ms=_u64(req.get("endTime"), "endTime", required=False), body=body)
    if info_type == "fundingHistory":
        return InfoRequest(info_type, coin=_string(body.get("coin"), "coin", required=True),
                           start_ms=_u64(body.get("startTime"), "startTime", required=True),
                           end_ms=_u64(body.get("endTime"), "endTime", required=False), body=body)
    if info_type in USER_TYPES:
        user = _string(body.get("user"), "user", required=True)
        if user is None or not _ADDRESS.match(user):
            raise bad_body(f"`user` is not an address: {user!r}")
        return InfoRequest(info_type, user=user, body=body)
    raise bad_body(f"unknown variant `{info_type}` for `type`")


def candle_snapshot_body(coin: str, interval: str, start_ms: int, end_ms: int) -> dict[str, Any]:
    return {"type": "candleSnapshot", "req": {"coin": coin, "interval": interval, "startTime": int(start_ms),
                                              "endTime": int(end_ms)}}


def funding_history_body(coin: str, start_ms: int, end_ms: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "fundingHistory", "coin": coin, "startTime": int(start_ms)}
    if end_ms is not None:
        body["endTime"] = int(end_ms)
    return body


# -- decimals and answer shapes -----------------------------------------------------------------


def decimal_string(ticks: int, decimals: int) -> str:
    """Integer ticks as Hyperliquid prints numbers: no trailing zeros, at least one decimal
    (4200010 with 2 decimals -> '42000.1'; 4200000 -> '42000.0'; 5 with 8 -> '0.00000005')."""
    return _printed(f"{Decimal(int(ticks)).scaleb(-decimals):f}")


def float_string(value: float) -> str:
    """A number read back as a float (InfluxDB) printed as Hyperliquid printed it: the float's shortest
    repr, without an exponent (1.25e-05 -> '0.0000125'; 42000.0 -> '42000.0'). Exact for every string
    decimal_string makes (fewer than 16 significant figures)."""
    return _printed(f"{Decimal(repr(float(value))):f}")


def _printed(text: str) -> str:
    if "." not in text:
        return text + ".0"
    text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text


def candle_row(coin: str, interval: str, open_ms: int, o: str, c: str, h: str, low: str, v: str,
               n: int) -> dict[str, Any]:
    """A candleSnapshot row or a `candle` websocket message's data:
    {t, T (= t + length - 1 ms), s (coin), i, o, c, h, l, v (strings), n (trades)}."""
    return {"t": int(open_ms), "T": int(open_ms) + interval_ms(interval) - 1, "s": coin, "i": interval,
            "o": o, "c": c, "h": h, "l": low, "v": v, "n": int(n)}


def funding_row(coin: str, rate: str, premium: str, time_ms: int) -> dict[str, Any]:
    """A fundingHistory row: {coin, fundingRate, premium, time}."""
    return {"coin": coin, "fundingRate": rate, "premium": premium, "time": int(time_ms)}


def level(px: str, sz: str, orders: int) -> dict[str, Any]:
    return {"px": px, "sz": sz, "n": int(orders)}


def l2_book(coin: str, time_ms: int, bids: Sequence[Mapping[str, Any]],
            asks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The l2Book answer and the `l2Book` websocket data: {coin, time, levels: [bids, asks]}, best first."""
    return {"coin": coin, "time": int(time_ms), "levels": [list(bids[:L2_LEVELS]), list(asks[:L2_LEVELS])]}


def bbo(coin: str, time_ms: int, bid: Mapping[str, Any] | None, ask: Mapping[str, Any] | None) -> dict[str, Any]:
    """The `bbo` websocket data: {coin, time, bbo: [bid|null, ask|null]}."""
    return {"coin": coin, "time": int(time_ms), "bbo": [bid, ask]}


@dataclass(frozen=True)
class AssetCtx:
    """One perpetual's context (metaAndAssetCtxs, activeAssetCtx), numbers as Hyperliquid's strings."""

    funding: str
    open_interest: str
    prev_day_px: str
    day_ntl_vlm: str
    premium: str | None
    oracle_px: str
    mark_px: str
    mid_px: str | None
    impact_pxs: tuple[str, str] | None
    day_base_vlm: str

    def as_json(self) -> dict[str, Any]:
        return {"funding": self.funding, "openInterest": self.open_interest, "prevDayPx": self.prev_day_px,
                "dayNtlVlm": self.day_ntl_vlm, "premium": self.premium, "oraclePx": self.oracle_px,
                "markPx": self.mark_px, "midPx": self.mid_px,
                "impactPxs": list(self.impact_pxs) if self.impact_pxs else None, "dayBaseVlm": self.day_base_vlm}


@dataclass(frozen=True)
class Asset:
    """One entry of meta's `universe`; its asset index is its position there (never compacted)."""

    name: str  # the coin as every request spells it: case-sensitive (kPEPE)
    sz_decimals: int
    max_leverage: int
    delisted: bool = False
    only_isolated: bool = False

    def as_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"szDecimals": self.sz_decimals, "name": self.name, "maxLeverage": self.max_leverage,
                                 "marginTableId": self.max_leverage}
        if self.only_isolated:
            entry["onlyIsolated"] = True
        if self.delisted:
            entry["isDelisted"] = True
        return entry

    @property
    def max_price_decimals(self) -> int:
        """Prices have at most 6 - szDecimals decimals (tick and lot size) and 5 significant figures."""
        return max(0, 6 - self.sz_decimals)


def meta(assets: Sequence[Asset]) -> dict[str, Any]:
    """The `meta` answer: {universe, marginTables, collateralToken}."""
    tables = sorted({a.max_leverage for a in assets})
    return {"universe": [a.as_json() for a in assets],
            "marginTables": [[t, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": t}]}]
                             for t in tables],
            "collateralToken": 0}


def meta_and_asset_ctxs(assets: Sequence[Asset], ctxs: Sequence[AssetCtx]) -> list[Any]:
    """`[meta, [ctx, ...]]`, ctx i for universe entry i."""
    if len(assets) != len(ctxs):
        raise ValueError(f"{len(assets)} assets but {len(ctxs)} contexts")
    return [meta(assets), [ctx.as_json() for ctx in ctxs]]


def parse_universe(answer: Any) -> list[Asset]:
    """The universe of a `meta` answer or of `[meta, ctxs]` (metaAndAssetCtxs), in index order."""
    if isinstance(answer, list) and answer and isinstance(answer[0], Mapping):
        answer = answer[0]
    if not isinstance(answer, Mapping) or not isinstance(answer.get("universe"), list):
        raise ValueError(f"not a meta answer: {str(answer)[:200]}")
    assets = []
    for entry in answer["universe"]:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ValueError(f"meta universe entry without a name: {str(entry)[:200]}")
        assets.append(Asset(entry["name"], int(entry.get("szDecimals", 0)), int(entry.get("maxLeverage", 1)),
                            bool(entry.get("isDelisted", False)), bool(entry.get("onlyIsolated", False))))
    return assets


# -- coins and pairs ----------------------------------------------------------------------------


def coin_to_pair(coin: str) -> str:
    """freqtrade's (ccxt's) pair of a main-dex perpetual: base = the coin upper-cased, ':' -> '-' (HIP-3
    'xyz:TSLA' -> 'XYZ-TSLA', whose quote would be its dex's collateral: not supported here).
    'BTC' -> 'BTC/USDC:USDC', 'kPEPE' -> 'KPEPE/USDC:USDC'."""
    if ":" in coin:
        raise ValueError(f"HIP-3 coin {coin!r}: only the main dex's perpetuals are supported")
    return f"{coin.upper()}/{QUOTE}:{QUOTE}"


class UnknownPairs(ValueError):
    """Pairs Hyperliquid does not list (or lists only as delisted)."""


@dataclass(frozen=True)
class Universe:
    """Hyperliquid's perpetuals as `meta` lists them, with freqtrade's pair for each coin."""

    assets: tuple[Asset, ...]
    by_pair: Mapping[str, Asset]
    index: Mapping[str, int]  # coin -> asset index

    @classmethod
    def of(cls, assets: Iterable[Asset]) -> Universe:
        listed = tuple(assets)
        by_pair: dict[str, Asset] = {}
        for asset in listed:
            if ":" in asset.name:
                continue
            pair = coin_to_pair(asset.name)
            if pair in by_pair:  # two coins differing only in case: a pair could not name one of them
                raise ValueError(f"coins {by_pair[pair].name!r} and {asset.name!r} both map to {pair}")
            by_pair[pair] = asset
        return cls(listed, by_pair, {asset.name: i for i, asset in enumerate(listed)})

    @classmethod
    def from_answer(cls, answer: Any) -> Universe:
        return cls.of(parse_universe(answer))

    def pair_to_coin(self, pair: str) -> str:
        """'KPEPE/USDC:USDC' -> 'kPEPE', exactly as meta spells it; UnknownPairs if not listed."""
        asset = self.by_pair.get(pair)
        if asset is None:
            raise UnknownPairs(f"{pair} is not a Hyperliquid perpetual (pairs look like BTC/USDC:USDC)")
        return asset.name

    def coins(self, pairs: Iterable[str], *, allow_delisted: bool = False) -> dict[str, str]:
        """pair -> coin for every pair; UnknownPairs naming all that are not listed (or are delisted)."""
        unknown: list[str] = []
        result: dict[str, str] = {}
        for pair in pairs:
            asset = self.by_pair.get(pair)
            if asset is None or (asset.delisted and not allow_delisted):
                unknown.append(pair + (" (delisted)" if asset is not None else ""))
            else:
                result[pair] = asset.name
        if unknown:
            raise UnknownPairs(f"pairs not traded on Hyperliquid perpetuals: {', '.join(unknown)}")
        return result

    def asset(self, coin: str) -> Asset | None:
        index = self.index.get(coin)
        return None if index is None else self.assets[index]


# -- websocket ----------------------------------------------------------------------------------

# subscription type -> its required fields (subscriptions page); one coin per subscription
SUBSCRIPTION_FIELDS: dict[str, tuple[str, ...]] = {
    "candle": ("coin", "interval"), "l2Book": ("coin",), "bbo": ("coin",), "activeAssetCtx": ("coin",),
    "allMids": (), "trades": ("coin",),
}
PING = {"method": "ping"}
PONG = {"channel": "pong"}


class SubscriptionError(ValueError):
    """A subscription Hyperliquid refuses; str() is the text of its error message (unconfirmed wording)."""


@dataclass(frozen=True)
class Subscription:
    type: str
    coin: str | None = None
    interval: str | None = None
    n_sig_figs: int | None = None
    mantissa: int | None = None

    def as_json(self) -> dict[str, Any]:
        sub: dict[str, Any] = {"type": self.type}
        if self.coin is not None:
            sub["coin"] = self.coin
        if self.interval is not None:
            sub["interval"] = self.interval
        if self.n_sig_figs is not None:
            sub["nSigFigs"] = self.n_sig_figs
        if self.mantissa is not None:
            sub["mantissa"] = self.mantissa
        return sub


def candle_subscription(coin: str, interval: str) -> Subscription:
    return Subscription("candle", coin, interval)


def parse_subscription(sub: Any) -> Subscription:
    """A `subscription` object of a subscribe / unsubscribe message, or SubscriptionError."""
    if not isinstance(sub, Mapping) or sub.get("type") not in SUBSCRIPTION_FIELDS:
        raise SubscriptionError(f"Invalid subscription {_compact(sub)}")
    fields = SUBSCRIPTION_FIELDS[str(sub["type"])]
    for name in fields:
        if not isinstance(sub.get(name), str):
            raise SubscriptionError(f"Invalid subscription {_compact(sub)}")
    if "interval" in fields and sub["interval"] not in INTERVALS:
        raise SubscriptionError(f"Invalid subscription {_compact(sub)}")
    figures, mantissa = None, None
    if sub["type"] == "l2Book":
        try:
            figures, mantissa = _n_sig_figs(sub)
        except HyperliquidError:
            raise SubscriptionError(f"Invalid subscription {_compact(sub)}") from None
    return Subscription(str(sub["type"]), sub.get("coin") if "coin" in fields else None,
                        sub.get("interval") if "interval" in fields else None, figures, mantissa)


def subscribe(sub: Subscription) -> dict[str, Any]:
    return {"method": "subscribe", "subscription": sub.as_json()}


def unsubscribe(sub: Subscription) -> dict[str, Any]:
    return {"method": "unsubscribe", "subscription": sub.as_json()}


def subscription_ack(method: str, sub: Subscription) -> dict[str, Any]:
    """{"channel":"subscriptionResponse","data":{"method", "subscription"}}: subscribe and unsubscribe. The
    subscription is echoed as Hyperliquid deserialized it: l2Book with nSigFigs and mantissa, null when not
    sent (ccxt.pro's recorded example)."""
    echo = sub.as_json()
    if sub.type == "l2Book":
        echo = {"type": "l2Book", "coin": sub.coin, "nSigFigs": sub.n_sig_figs, "mantissa": sub.mantissa}
    return {"channel": "subscriptionResponse", "data": {"method": method, "subscription": echo}}


def ws_error(text: str) -> dict[str, Any]:
    """An error message on the websocket: {"channel":"error","data":"<text>"} (wording unconfirmed)."""
    return {"channel": "error", "data": text}


def channel_message(channel: str, data: Any) -> dict[str, Any]:
    return {"channel": channel, "data": data}


def active_asset_ctx(coin: str, ctx: AssetCtx) -> dict[str, Any]:
    """The `activeAssetCtx` data: {coin, ctx} (spot coins answer on `activeSpotAssetCtx`)."""
    return {"coin": coin, "ctx": ctx.as_json()}


def all_mids(mids: Mapping[str, str]) -> dict[str, Any]:
    """The `allMids` websocket data is wrapped, {"mids": {...}}, unlike the REST answer."""
    return {"mids": dict(mids)}


def plan_connections(subscriptions: Sequence[Subscription], *, per_connection: int = MAX_WS_SUBSCRIPTIONS,
                     max_connections: int = MAX_WS_CONNECTIONS,
                     max_subscriptions: int = MAX_WS_SUBSCRIPTIONS) -> list[list[Subscription]]:
    """Split subscriptions over as few connections as `per_connection` allows, within the per-IP limits
    (10 connections, 1000 subscriptions in all); ValueError saying which limit a plan would break."""
    unique = list(dict.fromkeys(subscriptions))
    if len(unique) > max_subscriptions:
        raise ValueError(f"{len(unique)} websocket subscriptions: Hyperliquid allows {max_subscriptions} per IP")
    batches = [unique[i:i + per_connection] for i in range(0, len(unique), per_connection)] or []
    if len(batches) > max_connections:
        raise ValueError(f"{len(batches)} websocket connections of {per_connection} subscriptions: Hyperliquid "
                         f"allows {max_connections} per IP")
    return batches


def _compact(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)
