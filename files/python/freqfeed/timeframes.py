"""Timeframe arithmetic shared by the producer, the sync and the simulator (all times in epoch ms)."""

from __future__ import annotations

import re
from functools import lru_cache

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_TIMEFRAME = re.compile(r"^(\d+)([mhdw])$")

# Intervals Binance serves; 1M (calendar month) is left out on purpose: it is not a fixed grid.
BINANCE_TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")

# 1w candles start on Monday; the epoch (1970-01-01) was a Thursday.
_WEEK_OFFSET_MS = 4 * 86_400_000


@lru_cache(maxsize=64)
def timeframe_ms(timeframe: str) -> int:
    """Length of one candle in milliseconds ('3m' -> 180000)."""
    match = _TIMEFRAME.match(timeframe)
    if not match:
        raise ValueError(f"not a timeframe: {timeframe!r} (expected e.g. 3m, 15m, 1h)")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def candle_open(timestamp_ms: int, timeframe: str) -> int:
    """Open time of the candle that contains `timestamp_ms`."""
    period = timeframe_ms(timeframe)
    offset = _WEEK_OFFSET_MS if timeframe.endswith("w") else 0
    return (timestamp_ms - offset) // period * period + offset


def last_closed_open(now_ms: int, timeframe: str) -> int:
    """Open time of the newest candle that is closed at `now_ms`."""
    return candle_open(now_ms, timeframe) - timeframe_ms(timeframe)
