"""The fast kline row builder gives exactly the exact way's bytes (freqfeed.exchanges.binance.gateway.rows)."""

from __future__ import annotations

import json
import random

import pytest

from freqfeed.exchanges.binance import wire
from freqfeed.exchanges.binance.gateway.rows import kline_row_bytes


def exact(t: int, fmt: wire.SymbolFormat, values: list[float], *, mark: bool) -> bytes:
    row = wire.kline_row_from_floats(t, 60_000, fmt, *values[:4], *values[4:], mark=mark)
    return json.dumps(row, separators=(",", ":")).encode()


@pytest.mark.parametrize("decimals", [(0, 0), (1, 3), (2, 3), (4, 1), (7, 0), (8, 8)])
def test_fast_rows_equal_the_exact_rows(decimals: tuple[int, int]) -> None:
    rng = random.Random(sum(decimals))
    fmt = wire.SymbolFormat(*decimals)
    for _ in range(2000):
        magnitude = 10 ** rng.randint(-3, 6)
        prices = sorted(round(rng.random() * magnitude, decimals[0]) for _ in range(4))
        lo, o, c, h = prices
        volume = round(rng.random() * 10 ** rng.randint(0, 7), decimals[1])
        taker = round(volume * rng.random(), decimals[1])
        values = [float(f"{x:.{decimals[0]}f}") for x in (o, h, lo, c)]
        quote = float(f"{volume * c:.8f}")
        full = [*values, float(f"{volume:.{decimals[1]}f}"), quote, rng.randint(0, 10**6),
                float(f"{taker:.{decimals[1]}f}"), float(f"{taker * c:.8f}")]
        assert kline_row_bytes(1_700_000_000_000, 60_000, fmt, full, mark=False) == \
            exact(1_700_000_000_000, fmt, full, mark=False), full
        assert kline_row_bytes(1_700_000_000_000, 60_000, fmt, values, mark=True) == \
            exact(1_700_000_000_000, fmt, values, mark=True), values


def test_missing_or_odd_fields_go_the_exact_way() -> None:
    fmt = wire.SymbolFormat(2, 3)
    with pytest.raises((ValueError, TypeError)):
        kline_row_bytes(0, 60_000, fmt, [1.0, 2.0, 0.5, 1.5, 10.0, None, None, None, None], mark=False)
    with pytest.raises(ValueError, match="finite"):
        kline_row_bytes(0, 60_000, fmt, [float("nan"), 2.0, 0.5, 1.5], mark=True)
    huge = [1e14, 1e14, 1e14, 1e14, 1e12, 1e16, 5, 1e11, 1e15]
    assert kline_row_bytes(0, 60_000, fmt, huge, mark=False) == exact(0, fmt, huge, mark=False)
