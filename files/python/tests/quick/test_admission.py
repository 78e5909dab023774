"""The gateway's allowlist (freqfeed.exchanges.binance.gateway.admission) on raw request targets: pure, no server."""

from __future__ import annotations

import pytest

from freqfeed.exchanges.binance import wire
from freqfeed.exchanges.binance.gateway.admission import OTHER, Refused, admit

BYPASSES = [
    "/fapi/v1/klines%3Fsignature=x",
    "/fapi/v1/%2e%2e/%2e%2e/sapi/v1/account",
    "/fapi/v1/exchangeInfo/../../v2/account",
    "/fapi/v1/%2E%2E/v2/account",
    "/fapi/v1/klines%2f..%2f..%2fv2%2faccount",
    "/fapi/v1/%252e%252e/%252e%252e/sapi/v1/account",
    "/fapi/v1/./klines",
    "/fapi/v1//klines",
    "/fapi/v1/klines/",
    "/fapi/v1/KLINES",
    "/FAPI/v1/klines",
    "/fapi/V1/klines",
    "/fapi/v1/klines;signature=x",
    "/fapi/v1/klines\\..\\..\\v2\\account",
    "/fapi/v1/kli%6Ees",
    "/fapi/v1/klines%00",
    "/fapi/v1/klines\x00",
    "/fapi/v1/klines\t",
    "/fapi/v1/klines#x",
    "/fapi/v1/klines%23",
    "/fapi/v1/kl\u00efnes",
    "http://127.0.0.1/fapi/v1/klines",
    "//evil/fapi/v1/klines",
    "*",
    "",
    "/sapi/v1/account",
    "/fapi/v2/account",
    "/fapi/v1/order",
    "/fapi/v3/ticker/price",
    "/api/v1/klines",
]


@pytest.mark.parametrize("target", BYPASSES)
def test_every_bypass_is_refused(target: str) -> None:
    with pytest.raises(Refused) as refused:
        admit("futures", "GET", target, {})
    assert refused.value.reply.status in (400, 403, 404)
    assert refused.value.label == OTHER, "junk is counted under one label"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "get"])
def test_methods_other_than_get_and_head_are_refused(method: str) -> None:
    with pytest.raises(Refused) as refused:
        admit("futures", method, "/fapi/v1/ping", {})
    assert refused.value.reply.status == 405


@pytest.mark.parametrize("query", ["signature=x", "timestamp=1", "recvWindow=5000", "SIGNATURE=x", "sig%6Eature=x",
                                   "recvwindow=1", "symbol=BTCUSDT&signature=x"])
def test_signed_parameters_are_refused_on_every_path(query: str) -> None:
    for path in ("/fapi/v1/klines", "/fapi/v1/ping", "/nowhere"):
        with pytest.raises(Refused) as refused:
            admit("futures", "GET", f"{path}?{query}", {})
        assert (refused.value.reply.status, refused.value.kind) == (403, "signed")


def test_an_api_key_header_is_refused() -> None:
    for name in ("X-MBX-APIKEY", "x-mbx-apikey"):
        with pytest.raises(Refused) as refused:
            admit("futures", "GET", "/fapi/v1/depth?symbol=BTCUSDT", {name: "k"})
        assert refused.value.reply.status == 403


def test_unknown_and_duplicate_parameters_get_binances_errors() -> None:
    with pytest.raises(Refused) as refused:
        admit("futures", "GET", "/fapi/v1/depth?symbol=BTCUSDT&x=1", {})
    assert refused.value.reply.status == 400 and refused.value.label == "depth"
    assert refused.value.reply.body == (b'{"code": -1104, "msg": "Not all sent parameters were read; read \'1\' '
                                        b'parameter(s) but was sent \'2\'."}')
    with pytest.raises(Refused) as refused:
        admit("futures", "GET", "/fapi/v1/depth?symbol=BTCUSDT&symbol=ETHUSDT", {})
    assert b"-1101" in refused.value.reply.body
    with pytest.raises(Refused) as refused:
        admit("futures", "GET", "/fapi/v1/depth?symbol=%FF", {})
    assert b"-1100" in refused.value.reply.body


def test_admitted_requests_carry_normalised_parameters() -> None:
    one = admit("futures", "GET", "/fapi/v1/depth?symbol=BTCUSDT", {})
    two = admit("futures", "HEAD", "/fapi/v1/depth?limit=500&symbol=BTCUSDT", {})
    assert one.params == two.params == (("limit", "500"), ("symbol", "BTCUSDT"))
    assert one.endpoint.path == "/fapi/v1/depth" and one.label == "depth"
    spot = admit("spot", "GET", "/api/v3/ticker/24hr?symbols=%5B%22BTCUSDT%22%5D", {})
    assert spot.params == (("symbols", '["BTCUSDT"]'),)
    assert admit("futures", "GET", "/fapi/v2/ticker/price", {}).endpoint.path == "/fapi/v2/ticker/price"


def test_the_other_markets_paths_are_refused() -> None:
    with pytest.raises(Refused) as refused:
        admit("futures", "GET", "/api/v3/klines", {})
    assert refused.value.reply.status == 404 and refused.value.kind == "market"


def test_every_public_endpoint_is_one_binance_has() -> None:
    for path, endpoint in wire.PUBLIC_ENDPOINTS.items():
        assert path.startswith(wire.market_info(endpoint.market).rest_prefix[:-1])
        assert not wire.SIGNED_PARAMS & endpoint.params
        assert set(dict(endpoint.defaults)) <= endpoint.params
    for name in ("klines", "markPriceKlines", "fundingRate", "depth", "ticker/bookTicker", "time", "ping",
                 "exchangeInfo", "premiumIndex", "ticker/24hr", "ticker/price"):
        assert wire.public_endpoint(f"/fapi/v1/{name}") is not None, name
