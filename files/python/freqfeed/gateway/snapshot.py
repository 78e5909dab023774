"""The gateway's closed-candle caches on disk, so a restart is ready in seconds instead of re-reading
every series from InfluxDB (at 300 pairs x 5 timeframes + mark, 2.7 million rows: minutes of influxd's
and the gateway's CPU on a small host).

`<state dir>/gateway-cache.bin`: a header (JSON: what the caches were built for, each symbol's price and
quantity decimals, and per series its first open time and sizes), then each series' row buffer and
offsets as they are in memory. Written every SNAPSHOT_EVERY seconds and once the load is done, to a
temporary file renamed over the old one (atomic). At start, series whose configuration and symbol format
still match and that are not too far behind are restored, the rest is loaded from InfluxDB; everything
restored is then topped up from InfluxDB (one poll) before the gateway says it is ready. The candles in a
snapshot are closed candles read from InfluxDB: they never change.
"""

from __future__ import annotations

import json
import os
from array import array
from pathlib import Path
from typing import Any

MAGIC = b"freqfeed-gateway-cache 1\n"
SNAPSHOT_EVERY = 300.0  # real seconds
NAME = "gateway-cache.bin"

SeriesKey = tuple[str, str, str]  # kind ("trade"/"mark"), timeframe, pair


def write(path: Path, header: dict[str, Any], series: list[tuple[SeriesKey, int | None, bytes, bytes]]) -> int:
    """(On a worker thread) header + every series' (key, first open, buffer, offsets bytes); returns bytes."""
    entries = [[*key, first, len(buffer), len(offsets)] for key, first, buffer, offsets in series]
    head = json.dumps({**header, "series": entries}, separators=(",", ":")).encode()
    temp = path.with_name(path.name + ".tmp")
    size = 0
    with open(temp, "wb") as handle:
        handle.write(MAGIC)
        handle.write(len(head).to_bytes(8, "little"))
        handle.write(head)
        for _, _, buffer, offsets in series:
            handle.write(buffer)
            handle.write(offsets)
            size += len(buffer) + len(offsets)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    return size + len(head)


def read(path: Path) -> tuple[dict[str, Any], dict[SeriesKey, tuple[int | None, bytearray, array[int]]]]:
    """(On a worker thread) the header and each series' (first open, buffer, offsets), read straight into
    their buffers (no second copy of the file in memory); ValueError when the file is not a snapshot or is
    cut short."""
    series: dict[SeriesKey, tuple[int | None, bytearray, array[int]]] = {}
    with open(path, "rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise ValueError(f"{path} is not a gateway cache snapshot")
        length = int.from_bytes(handle.read(8), "little")
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            raise ValueError(f"{path} is cut short or damaged") from None
        for kind, tf, pair, first, buffer_len, offsets_len in header.get("series", []):
            buffer = bytearray(buffer_len)
            offsets = array("I")
            try:
                if handle.readinto(buffer) != buffer_len or offsets_len % offsets.itemsize:
                    raise EOFError
                offsets.fromfile(handle, offsets_len // offsets.itemsize)
            except (EOFError, ValueError):
                raise ValueError(f"{path} is cut short or damaged") from None
            if not offsets or offsets[-1] != buffer_len:
                raise ValueError(f"{path} is cut short or damaged")
            series[(kind, tf, pair)] = (first, buffer, offsets)
    return header, series
