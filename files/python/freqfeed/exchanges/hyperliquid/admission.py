"""What the Hyperliquid gateway lets in: `POST /info` with a JSON body of an allowed `type` and exactly that
type's fields; nothing else, and never `/exchange` (signed actions). Pure functions, no I/O.

Hyperliquid itself ignores fields it does not know (serde); the gateway is stricter: a field not listed here
for its type is refused with Hyperliquid's own 422, so nothing unchecked reaches the exchange or a cache key.
Values are checked by wire.parse_info (types, addresses, intervals); the body's size by MAX_BODY.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from freqfeed.exchanges.hyperliquid import wire
from freqfeed.exchanges.hyperliquid.wire import HyperliquidError, InfoRequest

MAX_BODY = 16 * 1024  # bytes: the largest /info body freqtrade/ccxt send is a few hundred

# type -> the fields besides `type` it takes (info endpoint, perpetuals, spot; SDK hyperliquid/info.py; ccxt)
_MARKET_FIELDS: dict[str, frozenset[str]] = {
    "meta": frozenset({"dex"}), "metaAndAssetCtxs": frozenset({"dex"}), "allMids": frozenset({"dex"}),
    "predictedFundings": frozenset(), "perpDexs": frozenset(), "spotMeta": frozenset(),
    "spotMetaAndAssetCtxs": frozenset(), "exchangeStatus": frozenset(),
    "l2Book": frozenset({"coin", "nSigFigs", "mantissa"}),
    "candleSnapshot": frozenset({"req"}),
    "fundingHistory": frozenset({"coin", "startTime", "endTime"}),
}
CANDLE_REQ_FIELDS = frozenset({"coin", "interval", "startTime", "endTime"})
_USER_EXTRA: dict[str, frozenset[str]] = {
    "userFills": frozenset({"aggregateByTime"}),
    "userFillsByTime": frozenset({"startTime", "endTime", "aggregateByTime"}),
    "userFunding": frozenset({"startTime", "endTime"}),
    "userNonFundingLedgerUpdates": frozenset({"startTime", "endTime"}),
    "orderStatus": frozenset({"oid"}),
    "activeAssetData": frozenset({"coin"}),
    "vaultDetails": frozenset({"vaultAddress"}),
    "portfolio": frozenset(), "twapHistory": frozenset(),
}
USER_FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset({"user", "dex"}) | _USER_EXTRA.get(kind, frozenset()) for kind in sorted(wire.USER_TYPES)}
FIELDS: dict[str, frozenset[str]] = {**_MARKET_FIELDS, **USER_FIELDS}
assert set(_MARKET_FIELDS) == set(wire.MARKET_TYPES), "every market type wire knows has its fields here"


class Refused(Exception):
    """Not an /info request this gateway serves: HTTP status, a short plain-text body, a counter label."""

    def __init__(self, status: int, body: str, kind: str) -> None:
        super().__init__(f"{status} {kind}: {body}")
        self.status, self.body, self.kind = status, body, kind


EXCHANGE_REFUSAL = ("freqfeed gateway: /exchange (signed actions) is never served or forwarded; point only "
                    "ccxt's urls.api.public here, never urls.api.private")


def route(method: str, path: str) -> None:
    """Refused unless the request is `POST /info`: `/exchange` 403 (counted apart), other methods on /info
    405, every other path 404 (Hyperliquid answers only these two paths)."""
    if path.rstrip("/") == "/exchange" or path.startswith("/exchange/"):
        raise Refused(403, EXCHANGE_REFUSAL, "exchange")
    if path != wire.INFO_PATH:
        raise Refused(404, "Not Found", "path")
    if method != "POST":
        raise Refused(405, "Method Not Allowed", "method")


def parse_body(raw: bytes) -> InfoRequest:
    """The body of a `POST /info`, as Hyperliquid checks it (wire.parse_info: 400 for what is not JSON, 422
    for what does not deserialize) and with only the fields its type takes (422)."""
    if len(raw) > MAX_BODY:
        raise HyperliquidError(413, "Payload Too Large", f"{len(raw)} bytes, at most {MAX_BODY}")
    try:
        body = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError included
        raise wire.not_json(str(exc)[:100]) from None
    request = wire.parse_info(body)
    allowed = FIELDS.get(request.type)
    if allowed is None:  # wire knows it, this gateway does not serve it
        raise wire.bad_body(f"`{request.type}` is not served by this gateway")
    extra = sorted(set(body) - allowed - {"type"})
    if extra:
        raise wire.bad_body(f"unknown field `{str(extra[0])[:40]}` for `{request.type}`")
    if request.type == "candleSnapshot":
        extra = sorted(set(body["req"]) - CANDLE_REQ_FIELDS)
        if extra:
            raise wire.bad_body(f"unknown field `{str(extra[0])[:40]}` in `req`")
    for name in allowed - {"req"}:  # every value a scalar: nothing nested reaches the exchange
        value = body.get(name)
        if isinstance(value, (dict, list)):
            raise wire.bad_body(f"`{name}` is not a scalar")
    return request


def canonical(request: InfoRequest) -> str:
    """The body as one string (keys sorted, compact): what is forwarded, and the key of the cache and of
    coalescing (the same request spelled differently is one request)."""
    return json.dumps(request.body, sort_keys=True, separators=(",", ":"))


# -- forwarded answers: how long each is reused --------------------------------------------------

# seconds a forwarded answer of a public type is reused (gateway.cache_ttl: {type: seconds} overrides);
# user types are never cached nor coalesced
DEFAULT_TTL: dict[str, float] = {
    "meta": 5.0, "metaAndAssetCtxs": 2.0, "spotMeta": 5.0, "spotMetaAndAssetCtxs": 2.0, "perpDexs": 5.0,
    "predictedFundings": 2.0, "allMids": 1.0, "l2Book": 0.5, "exchangeStatus": 0.0,
    "candleSnapshot": 1.0, "fundingHistory": 1.0,
}


@dataclass(frozen=True)
class TtlRules:
    overrides: Mapping[str, float]

    def ttl(self, request: InfoRequest) -> float | None:
        """Seconds a forwarded answer may be reused; None: never shared (a user's own query)."""
        if request.is_user:
            return None
        if request.type in self.overrides:
            return float(self.overrides[request.type])
        return DEFAULT_TTL.get(request.type, 1.0)


def expected_rows(request: InfoRequest, now_ms: int) -> int:
    """Rows a candleSnapshot / fundingHistory answer will hold, for its weight (others: 0)."""
    if request.type == "candleSnapshot" and request.interval in wire.GRID_INTERVALS:
        assert request.interval is not None and request.start_ms is not None
        end = now_ms if request.end_ms is None else request.end_ms
        return wire.candle_window(request.start_ms, end, now_ms, request.interval).count
    if request.type == "fundingHistory":
        assert request.start_ms is not None
        end = now_ms if request.end_ms is None else min(request.end_ms, now_ms)
        return len(wire.funding_times(request.start_ms, end))
    return 0
