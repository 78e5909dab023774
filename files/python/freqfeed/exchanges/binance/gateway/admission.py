"""What the gateway lets in: an allowlist of Binance's public market-data endpoints, checked on the raw request.

A request is admitted only when all of this holds, checked on the request target exactly as it arrived
(aiohttp's `raw_path`, before any decoding or normalisation):

- the method is GET or HEAD;
- no `X-MBX-APIKEY` header, and no `signature`, `timestamp` or `recvWindow` parameter (in any case, encoded
  or not): signed requests are refused whatever the path (403, -2015);
- the target is in origin form (`/...`, not `http://host/...`), has no `#`, no control character and no
  byte outside printable ASCII;
- the path is, byte for byte, one of the public endpoints `exchanges.binance.wire.PUBLIC_ENDPOINTS` lists for this
  gateway's market: no `%` at all (Binance's public paths are letters, digits and `/`, so no encoding is ever
  needed: `%2e`, `%2f`, `%3f`, `%25` are all refused, not decoded), no dot segment, no `//`, no `;`, no `\\`,
  the exact case;
- every query parameter is one the endpoint reads, each sent once (Binance's -1104 and -1101 otherwise).

What is admitted carries the endpoint from the table and its normalised parameters (defaults applied,
sorted): the upstream URL is built from those (`Endpoint.path` + the parameters), never from the raw path,
and caches and coalescing are keyed by them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from freqfeed.exchanges.binance import wire
from freqfeed.exchanges.binance.upstream import Reply

# Endpoints that need an account (USER_DATA, TRADE, USER_STREAM): refused with the hint about ccxt's URL keys.
PRIVATE_ENDPOINTS = frozenset({
    "order", "batchOrders", "openOrder", "openOrders", "allOrders", "allOpenOrders", "countdownCancelAll", "account",
    "balance", "positionRisk", "positionSide/dual", "multiAssetsMargin", "leverage", "marginType", "positionMargin",
    "positionMargin/history", "userTrades", "income", "income/asyn", "income/asyn/id", "leverageBracket",
    "adlQuantile", "forceOrders", "commissionRate", "apiTradingStatus", "listenKey", "rateLimit/order",
    "order/amendment", "myTrades", "order/oco", "orderList", "orderList/oco", "orderList/oto", "orderList/otoco",
    "allOrderList", "openOrderList", "myPreventedMatches", "myAllocations", "account/commission", "userDataStream",
    "order/test", "order/cancelReplace", "sor/order", "sor/order/test", "historicalTrades", "symbolConfig",
    "accountConfig", "feeBurn", "pmAccountInfo", "convert/getQuote", "convert/acceptQuote", "convert/orderStatus",
})
REFUSAL = ("freqfeed gateway serves Binance's public market data only: point only ccxt's public URL keys at it "
           "(futures: urls.api.fapiPublic, fapiPublicV2, fapiPublicV3; spot: urls.api.public) and keep "
           "fapiPrivate/sapi/private on Binance")
OTHER = "other"  # the counter of everything that is not a known endpoint
_SIGNED_LOWER = {name.lower() for name in wire.SIGNED_PARAMS}
_PRINTABLE = re.compile(r"^[\x21-\x7e]*$")
_WELL_FORMED_PATH = re.compile(r"^/(?:[A-Za-z0-9]+/)*[A-Za-z0-9]+$")
_VERSIONED = re.compile(r"^/(?:fapi|api|sapi|dapi|papi|eapi)/v\d+/(.+)$")


@dataclass(frozen=True)
class Admitted:
    """A request to a public endpoint with its normalised parameters."""

    endpoint: wire.Endpoint
    params: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        return self.endpoint.name


class Refused(Exception):
    """A request that is not served and not forwarded: `reply` is the answer, `label` the counter it goes to
    (a known endpoint's name or "other"), `kind` why ("method", "signed", "target", "path", "private",
    "market", "parameters")."""

    def __init__(self, reply: Reply, label: str, kind: str) -> None:
        super().__init__(kind)
        self.reply, self.label, self.kind = reply, label, kind


def admit(market: str, method: str, raw_target: str, headers: Mapping[str, str]) -> Admitted:
    """The admitted request, or Refused with Binance's (or the gateway's) answer."""
    if method not in ("GET", "HEAD"):
        raise Refused(Reply.error(405, -1000, f"freqfeed gateway: {_show(method)} is not served; {REFUSAL}"),
                      OTHER, "method")
    if any(name.lower() == wire.API_KEY_HEADER.lower() for name in headers):
        raise Refused(Reply.error(403, -2015, REFUSAL), OTHER, "signed")
    if not raw_target.startswith("/") or not _PRINTABLE.match(raw_target) or "#" in raw_target:
        raise Refused(_bad_target("the request target must be an origin-form path of printable ASCII without "
                                  "'#' (no absolute URL, no control or non-ASCII character)"), OTHER, "target")
    path, _, query = raw_target.partition("?")
    params = _query(query)
    if any(name.lower() in _SIGNED_LOWER for name, _ in params):
        raise Refused(Reply.error(403, -2015, REFUSAL), OTHER, "signed")
    endpoint = wire.public_endpoint(path)
    if endpoint is None:
        raise _unknown_path(market, path)
    if endpoint.market != market:
        prefix = wire.market_info(market).rest_prefix
        raise Refused(Reply.error(404, -1000, f"freqfeed gateway: {path} is {endpoint.market} market data; this "
                                              f"gateway serves {market} ({prefix}/...)"), OTHER, "market")
    try:
        normalised = wire.read_params(endpoint, params)
    except wire.BinanceError as exc:
        raise Refused(Reply.error(exc.status, exc.code, exc.msg), endpoint.name, "parameters") from None
    return Admitted(endpoint, normalised)


def _query(query: str) -> list[tuple[str, str]]:
    """`a=1&b=%5B%22X%22%5D` -> [("a", "1"), ("b", '["X"]')]: names and values decoded (`+` is a space), as
    Binance reads them; a value that does not decode to printable text is refused (-1100)."""
    params = []
    for piece in query.split("&"):
        if not piece:
            continue
        raw_name, _, raw_value = piece.partition("=")
        try:
            name = unquote_plus(raw_name, errors="strict")
            value = unquote_plus(raw_value, errors="strict")
        except UnicodeDecodeError:
            raise Refused(Reply.error(400, -1100, "Illegal characters found in a parameter."), OTHER,
                          "parameters") from None
        if not name.isprintable() or not value.isprintable():
            raise Refused(Reply.error(400, -1100, "Illegal characters found in a parameter."), OTHER, "parameters")
        params.append((name, value))
    return params


def _unknown_path(market: str, path: str) -> Refused:
    if not _WELL_FORMED_PATH.match(path):
        return Refused(_bad_target("the path is not a plain one (letters, digits and single '/'): encoded "
                                   "characters (%), dot segments, '//', ';' and '\\' are never needed by "
                                   "Binance's public endpoints"),
                       OTHER, "path")
    versioned = _VERSIONED.match(path)
    if path.startswith("/sapi/") or (versioned is not None and versioned.group(1) in PRIVATE_ENDPOINTS):
        return Refused(Reply.error(403, -2015, REFUSAL), OTHER, "private")
    prefix = wire.market_info(market).rest_prefix
    return Refused(Reply.error(404, -1000, f"freqfeed gateway: {_show(path)} is not a public {market} market-data "
                                           f"endpoint (this gateway serves {prefix}/...)"), OTHER, "path")


def _bad_target(why: str) -> Reply:
    return Reply.error(400, -1000, f"freqfeed gateway: refused: {why}; {REFUSAL}")


def _show(text: str) -> str:
    """A client's text in a message: printable, at most 120 characters."""
    shown = text.encode("ascii", "backslashreplace").decode()
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in shown)
    return shown[:120] + ("..." if len(shown) > 120 else "")
