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


class Writer:
    """A snapshot written series by series straight from the caches' buffers (no copy of the caches in
    memory): MAGIC, each series' buffer and offsets, then the header (JSON) and its length (8 bytes). The
    caller adds series on the event loop (each write is a page-cache copy of one series) and finishes on a
    worker thread (fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp = path.with_name(path.name + ".tmp")
        self.handle = open(self.temp, "wb")  # noqa: SIM115 - closed in finish/abort
        self.handle.write(MAGIC)
        self.entries: list[list[Any]] = []
        self.size = len(MAGIC)

    def add(self, key: SeriesKey, first: int | None, buffer: bytearray, offsets: array[int]) -> None:
        self.handle.write(buffer)
        self.handle.write(offsets.tobytes())
        self.entries.append([*key, first, len(buffer), len(offsets) * offsets.itemsize])
        self.size += len(buffer) + len(offsets) * offsets.itemsize

    def finish(self, header: dict[str, Any]) -> int:
        head = json.dumps({**header, "series": self.entries}, separators=(",", ":")).encode()
        self.handle.write(head)
        self.handle.write(len(head).to_bytes(8, "little"))
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.temp, self.path)
        return self.size + len(head) + 8

    def abort(self) -> None:
        self.handle.close()
        self.temp.unlink(missing_ok=True)


def write(path: Path, header: dict[str, Any], series: list[tuple[SeriesKey, int | None, bytearray, array[int]]]) -> int:
    """The whole snapshot at once (tests)."""
    writer = Writer(path)
    for key, first, buffer, offsets in series:
        writer.add(key, first, buffer, offsets)
    return writer.finish(header)


def read(path: Path) -> tuple[dict[str, Any], dict[SeriesKey, tuple[int | None, bytearray, array[int]]]]:
    """(On a worker thread) the header and each series' (first open, buffer, offsets), read straight into
    their buffers (no second copy of the file in memory); ValueError when the file is not a snapshot or is
    cut short."""
    series: dict[SeriesKey, tuple[int | None, bytearray, array[int]]] = {}
    damaged = ValueError(f"{path} is cut short or damaged")
    with open(path, "rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise ValueError(f"{path} is not a gateway cache snapshot")
        try:
            end = handle.seek(-8, os.SEEK_END)
            length = int.from_bytes(handle.read(8), "little")
            if not len(MAGIC) <= end - length:
                raise damaged
            handle.seek(end - length)
            header = json.loads(handle.read(length))
        except (OSError, ValueError):
            raise damaged from None
        handle.seek(len(MAGIC))
        for kind, tf, pair, first, buffer_len, offsets_len in header.get("series", []):
            buffer = bytearray(buffer_len)
            offsets = array("I")
            try:
                if handle.readinto(buffer) != buffer_len or offsets_len % offsets.itemsize:
                    raise EOFError
                offsets.fromfile(handle, offsets_len // offsets.itemsize)
            except (EOFError, ValueError):
                raise damaged from None
            if not offsets or offsets[-1] != buffer_len:
                raise damaged
            series[(kind, tf, pair)] = (first, buffer, offsets)
    return header, series
