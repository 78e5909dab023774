"""The gateway's closed-candle caches on disk, so a restart is ready in seconds instead of re-reading
every series from InfluxDB (at 300 pairs x 5 timeframes + mark, 2.7 million rows: minutes of influxd's
and the gateway's CPU on a small host).

`<state dir>/gateway-cache.bin`: a header (JSON: what the caches were built for, each symbol's price and
quantity decimals, and per series its first open time, rows a block and sizes), then each series'
compressed blocks, plain row buffer and offsets as they are in memory (gateway.series). Written
every SNAPSHOT_EVERY seconds and once the load is done, to a temporary file renamed over the old one
(atomic). A snapshot of another version is ignored (the gateway loads from InfluxDB). At start, series
whose configuration and symbol format still match and that are not too far behind are restored, the rest
is loaded from InfluxDB; everything restored is then topped up from InfluxDB (one poll) before the
gateway says it is ready. The candles in a snapshot are closed candles read from InfluxDB: they never
change.
"""

from __future__ import annotations

import json
import os
from array import array
from pathlib import Path
from typing import Any

from freqfeed.exchanges.binance.gateway.series import SeriesCache

MAGIC = b"freqfeed-gateway-cache 2\n"  # 2: compressed blocks (1: plain rows only)
KIND = b"freqfeed-gateway-cache "
SNAPSHOT_EVERY = 300.0  # real seconds
NAME = "gateway-cache.bin"

SeriesKey = tuple[str, str, str]  # kind ("trade"/"mark"), timeframe, pair


class Writer:
    """A snapshot written series by series straight from the caches' buffers (no copy of the caches in
    memory): MAGIC, each series' blocks, buffer and offsets, then the header (JSON) and its length (8 bytes). The
    caller adds series on the event loop (each write is a page-cache copy of one series) and finishes on a
    worker thread (fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp = path.with_name(path.name + ".tmp")
        self.handle = open(self.temp, "wb")  # noqa: SIM115 - closed in finish/abort
        self.handle.write(MAGIC)
        self.entries: list[list[Any]] = []
        self.size = len(MAGIC)

    def add(self, key: SeriesKey, cache: SeriesCache) -> None:
        for block in cache.blocks:
            self.handle.write(block)
        self.handle.write(cache.buffer)
        self.handle.write(cache.offsets.tobytes())
        blocks = [len(block) for block in cache.blocks]
        offsets_len = len(cache.offsets) * cache.offsets.itemsize
        self.entries.append([*key, cache.first, cache.block, blocks, len(cache.buffer), offsets_len])
        self.size += sum(blocks) + len(cache.buffer) + offsets_len

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


Kept = tuple[int | None, int, list[bytes], bytearray, "array[int]"]  # first open, rows a block, blocks, buffer, offsets


def write(path: Path, header: dict[str, Any], series: list[tuple[SeriesKey, SeriesCache]]) -> int:
    """The whole snapshot at once (tests)."""
    writer = Writer(path)
    for key, cache in series:
        writer.add(key, cache)
    return writer.finish(header)


def read(path: Path) -> tuple[dict[str, Any], dict[SeriesKey, Kept]]:
    """(On a worker thread) the header and each series' (first open, rows a block, blocks, buffer, offsets),
    read straight into their buffers (no second copy of the file in memory); ValueError when the file is not
    a snapshot of this version or is cut short."""
    series: dict[SeriesKey, Kept] = {}
    damaged = ValueError(f"{path} is cut short or damaged")
    with open(path, "rb") as handle:
        magic = handle.read(len(MAGIC))
        if magic != MAGIC:
            if magic.startswith(KIND):
                version = magic.strip().decode(errors="replace")
                raise ValueError(f"{path} was written by another version of the gateway ({version})")
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
        try:
            entries = [(str(kind), str(tf), str(pair), first, int(rows), [int(n) for n in blocks], int(buffer_len),
                        int(offsets_len))
                       for kind, tf, pair, first, rows, blocks, buffer_len, offsets_len in header.get("series", [])]
        except (TypeError, ValueError):
            raise damaged from None
        for kind, tf, pair, first, block_rows, block_lens, buffer_len, offsets_len in entries:
            blocks = [handle.read(length) for length in block_lens]
            buffer = bytearray(buffer_len)
            offsets = array("I")
            try:
                if any(len(block) != length for block, length in zip(blocks, block_lens, strict=True)) or \
                        handle.readinto(buffer) != buffer_len or offsets_len % offsets.itemsize:
                    raise EOFError
                offsets.fromfile(handle, offsets_len // offsets.itemsize)
            except (EOFError, ValueError):
                raise damaged from None
            if not offsets or offsets[-1] != buffer_len:
                raise damaged
            series[(kind, tf, pair)] = (first, block_rows, blocks, buffer, offsets)
    return header, series
