"""Binance's JSON kline rows from InfluxDB's numbers, fast: one f-string a row instead of a list of
formatted strings through json.dumps (about 6x less CPU, which is most of a load's cost in the gateway).

The fast path writes each number with Python's correctly rounded fixed-point formatting, which gives the
same string as wire.format_float for every value it rounds through a float product (|value| x
10^decimals below 2^50: every price, volume and quote volume the exchange sends); anything else (larger
values, missing fields, non-finite numbers) goes the exact way, wire.kline_row_from_floats.
"""

from __future__ import annotations

import json
from typing import Any

from freqfeed.exchanges.binance import wire

_LIMIT = float(2**50)
QUOTE_DECIMALS = wire.QUOTE_DECIMALS


def kline_row_bytes(open_time: int, period_ms: int, fmt: wire.SymbolFormat, values: list[Any] | tuple[Any, ...], *,
                    mark: bool) -> bytes:
    """One row (as JSON bytes) from [open, high, low, close, volume, quote_volume, trades, taker_buy_volume,
    taker_buy_quote_volume] (mark: the four prices); ValueError/TypeError when a field is missing."""
    pd, qd = fmt.price_decimals, fmt.quantity_decimals
    try:
        o, h, lo, c = values[0], values[1], values[2], values[3]
        price_scale = 10.0**pd
        fast = lo >= 0 and h * price_scale < _LIMIT and 0 <= o * price_scale < _LIMIT and 0 <= c * price_scale < _LIMIT
        if mark:
            if fast:
                return (f'[{open_time},"{o:.{pd}f}","{h:.{pd}f}","{lo:.{pd}f}","{c:.{pd}f}","0",'
                        f'{open_time + period_ms - 1},"0",0,"0","0","0"]').encode()
        else:
            v, qv, n, tbv, tbqv = values[4], values[5], values[6], values[7], values[8]
            quantity_scale = 10.0**qd
            if fast and 0 <= tbv <= v and v * quantity_scale < _LIMIT and 0 <= tbqv <= qv and \
                    qv * 10.0**QUOTE_DECIMALS < _LIMIT and n == int(n):
                return (f'[{open_time},"{o:.{pd}f}","{h:.{pd}f}","{lo:.{pd}f}","{c:.{pd}f}","{v:.{qd}f}",'
                        f'{open_time + period_ms - 1},"{qv:.{QUOTE_DECIMALS}f}",{int(n)},"{tbv:.{qd}f}",'
                        f'"{tbqv:.{QUOTE_DECIMALS}f}","0"]').encode()
    except (TypeError, IndexError, OverflowError):
        pass  # a missing field: the exact way raises what the caller expects
    row = wire.kline_row_from_floats(open_time, period_ms, fmt, *values[:4], *values[4:], mark=mark)
    return json.dumps(row, separators=(",", ":")).encode()
