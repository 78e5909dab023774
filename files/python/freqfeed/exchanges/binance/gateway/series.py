"""The gateway's closed candles of one series, compact: the newest rows as ready-to-send JSON in one byte
buffer, the older ones in zlib-compressed blocks.

A series keeps its newest contiguous run of closed candles as Binance's JSON rows, each followed by a
comma. The newest `hot` rows (and up to one block more) are kept plain in one `bytearray`, with the offset
of each row in an `array('I')` (4 bytes a row): a window within them (every bot's poll: limit 500 and less)
is one slice of the buffer, a single copy whatever its length. Older rows are kept in blocks of `block`
rows each, zlib-compressed (JSON rows compress about 2.7-fold): a window reaching into them (freqtrade's
start-up download, limit 1500) decompresses only the blocks it needs. Each block holds its rows' lengths
(`array('I')`) before the rows, so a window can start or end inside a block without looking at the rows.

Appending a candle is amortised O(1): every `block` appends, the oldest `block` plain rows are compressed
into a block. Old rows are dropped a whole block at a time (plain rows, while there are no blocks, in
batches of `slack`), so a series holds at most `capacity + slack` rows (`capacity + block - 1` with blocks).
"""

from __future__ import annotations

import zlib
from array import array
from collections import OrderedDict
from collections.abc import Iterable

BLOCK_ROWS = 64  # rows a compressed block holds
HOT_ROWS = 512  # newest rows kept plain (at least): every window of limit <= 500 is a plain slice
LEVEL = 6  # zlib level: 48.6 bytes a realistic row at 64 rows a block (level 1: 54.2)
_LEN = array("I").itemsize


class BlockCache:
    """Decompressed blocks, shared by every series of a gateway and bounded in bytes (least recently used
    dropped first). A window reaching into the blocks (limit 1500: about 15 blocks) costs about 1 ms of zlib
    when decompressed each time; the bots of a feeder that start together ask the same windows. Keyed by the
    compressed block itself: blocks never change (bytes), CPython keeps a bytes object's hash once computed,
    and a block dropped from its series leaves with its entry's turn. Its size counts the key it keeps alive."""

    __slots__ = ("entries", "hits", "max_bytes", "misses", "nbytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(int(max_bytes), 0)
        self.entries: OrderedDict[bytes, memoryview] = OrderedDict()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, compressed: bytes) -> memoryview:
        raw = self.entries.get(compressed)
        if raw is not None:
            self.entries.move_to_end(compressed)
            self.hits += 1
            return raw
        self.misses += 1
        raw = memoryview(zlib.decompress(compressed))
        size = len(raw) + len(compressed)
        if size <= self.max_bytes:
            self.entries[compressed] = raw
            self.nbytes += size
            while self.nbytes > self.max_bytes:
                key, value = self.entries.popitem(last=False)
                self.nbytes -= len(value) + len(key)
        return raw

    def status(self) -> dict[str, int]:
        return {"entries": len(self.entries), "bytes": self.nbytes, "max_bytes": self.max_bytes, "hits": self.hits,
                "misses": self.misses}


class SeriesCache:
    """The newest closed candles of one series, contiguous: plain JSON rows, the older ones compressed."""

    __slots__ = ("block", "blocks", "buffer", "capacity", "first", "hot", "loaded", "offsets", "period", "polled",
                 "slack")

    def __init__(self, period: int, capacity: int, *, hot: int = HOT_ROWS, block: int = BLOCK_ROWS) -> None:
        self.period = period
        self.capacity = max(capacity, 1)
        self.hot = max(hot, 1)
        self.block = max(block, 1)
        self.slack = max(self.capacity // 16, 8, self.block)
        self.first: int | None = None  # open time of the first row (of the first block, if any)
        self.blocks: list[bytes] = []  # the oldest rows, `block` rows a block, compressed
        self.buffer = bytearray()  # the newer rows, plain
        self.offsets = array("I", [0])  # offsets[i]: where plain row i starts; offsets[-1]: the end
        self.loaded = False  # filled from InfluxDB at least once (even if InfluxDB holds nothing)
        self.polled = 0.0

    def __len__(self) -> int:
        return len(self.blocks) * self.block + len(self.offsets) - 1

    @property
    def last(self) -> int | None:
        return None if self.first is None else self.first + (len(self) - 1) * self.period

    @property
    def nbytes(self) -> int:
        return sum(map(len, self.blocks)) + len(self.buffer) + self.offsets.itemsize * len(self.offsets)

    def rows(self) -> list[bytes]:
        """Every row (for tests)."""
        rows: list[bytes] = []
        for compressed in self.blocks:
            raw = zlib.decompress(compressed)
            lengths = array("I")
            lengths.frombytes(raw[:self.block * _LEN])
            at = self.block * _LEN
            for length in lengths:
                rows.append(raw[at:at + length - 1])
                at += length
        rows += [bytes(self.buffer[self.offsets[i]:self.offsets[i + 1] - 1]) for i in range(len(self.offsets) - 1)]
        return rows

    def _pack(self, rows: list[bytes]) -> bytes:
        """One block: its rows' lengths (each with its comma), then the rows, compressed."""
        lengths = array("I", [len(row) + 1 for row in rows])
        return zlib.compress(lengths.tobytes() + b"".join(row + b"," for row in rows), LEVEL)

    def load(self, candles: Iterable[tuple[int, bytes | None]]) -> None:
        """Start over from the newest contiguous run of `candles` (ascending; None rows are holes)."""
        run: list[tuple[int, bytes]] = []
        for open_time, row in candles:
            if row is None or (run and open_time != run[-1][0] + self.period):
                run = []
            if row is not None:
                run.append((open_time, row))
        run = run[-self.capacity:]
        cold = max(0, (len(run) - self.hot) // self.block) * self.block
        self.blocks = [self._pack([row for _, row in run[at:at + self.block]]) for at in range(0, cold, self.block)]
        plain = [row for _, row in run[cold:]]
        buffer = bytearray(b",".join(plain) + b"," if plain else b"")  # allocated to size (+= would leave slack)
        offsets = array("I", [0])
        end = 0
        for row in plain:
            end += len(row) + 1
            offsets.append(end)
        self.first = run[0][0] if run else None
        self.buffer, self.offsets = buffer, offsets
        self.loaded = True

    def adopt(self, other: SeriesCache) -> None:
        """Take over the rows of `other` (a cache of the same series loaded on a worker thread: compressing the
        blocks of a load there keeps it off the event loop; zlib lets go of the GIL while it works)."""
        self.first, self.blocks, self.buffer, self.offsets = other.first, other.blocks, other.buffer, other.offsets
        self.loaded = True

    def restore(self, first: int | None, blocks: list[bytes], buffer: bytearray, offsets: array[int]) -> None:
        """Take over rows kept earlier (gateway.snapshot), as they were (blocks of `block` rows)."""
        if first is None or len(offsets) < 1 or (not blocks and len(offsets) < 2):
            return
        self.first, self.blocks, self.buffer, self.offsets = first, blocks, buffer, offsets
        self.loaded = True
        self._freeze()
        self._trim()

    def extend(self, candles: Iterable[tuple[int, bytes | None]]) -> None:
        """Append newer candles while they continue the run; a hole stops it (until it is filled). When the
        first newer candle is more than `capacity` periods past the run, the run starts over from them."""
        candles = list(candles)
        last = self.last
        if last is None or not self.loaded:
            self.load(candles)
            return
        newer = [(t, row) for t, row in candles if t > last]
        if newer and newer[0][0] - last > self.capacity * self.period:
            self.load(candles)  # the gap is deeper than the cache: what is kept now starts after it
            return
        for open_time, row in newer:
            if open_time != last + self.period or row is None:
                break
            self.buffer += row
            self.buffer += b","
            self.offsets.append(len(self.buffer))
            last = open_time
        self._freeze()
        self._trim()

    def _freeze(self) -> None:
        """Compress the oldest plain rows, a block at a time, while more than `hot + block` are plain."""
        block = self.block
        if len(self.offsets) - 1 < self.hot + block:
            return
        count = (len(self.offsets) - 1 - self.hot) // block
        for index in range(count):
            base = index * block
            rows = [bytes(self.buffer[self.offsets[base + i]:self.offsets[base + i + 1] - 1]) for i in range(block)]
            self.blocks.append(self._pack(rows))
        cut = self.offsets[count * block]
        self.buffer = self.buffer[cut:]  # a new buffer of just the plain rows (a del would keep the old allocation)
        self.offsets = array("I", (o - cut for o in self.offsets[count * block:]))

    def _trim(self) -> None:
        """Drop the oldest rows beyond `capacity`: a whole block as soon as a block's worth is over (so a series
        with blocks holds fewer than capacity + block rows), plain rows in batches of `slack`."""
        excess = len(self) - self.capacity
        if excess <= 0:
            return
        assert self.first is not None
        whole = min(len(self.blocks), excess // self.block)
        del self.blocks[:whole]
        self.first += whole * self.block * self.period
        excess -= whole * self.block
        if self.blocks or excess <= self.slack:
            return  # fewer than a block too many: dropped with the next block
        cut = self.offsets[excess]
        del self.buffer[:cut]
        self.offsets = array("I", (o - cut for o in self.offsets[excess:]))
        self.first += excess * self.period

    def covers(self, first_open: int, count: int) -> bool:
        """Whether the rows of `count` candles from `first_open` are all here."""
        if self.first is None or first_open < self.first or count <= 0:
            return False
        start, off = divmod(first_open - self.first, self.period)
        return not off and start + count <= len(self)

    def pieces(self, first_open: int, count: int,
               blocks: BlockCache | None = None) -> list[memoryview | bytes] | None:
        """The rows of `count` candles from `first_open`, comma-separated, as consecutive pieces (joined, they
        are the rows), or None when not all are here. The pieces are views without a copy: of the plain buffer
        (it pins the buffer: use them before the next await; the answer is joined from them at once, one
        allocation for the whole answer) and of the blocks it needs, decompressed or taken from `blocks`."""
        if not self.covers(first_open, count):
            return None
        assert self.first is not None
        start = (first_open - self.first) // self.period
        end = start + count
        block = self.block
        cold = len(self.blocks) * block
        if start >= cold:
            return [memoryview(self.buffer)[self.offsets[start - cold]:self.offsets[end - cold] - 1]]
        pieces: list[bytes | memoryview] = []
        head = block * _LEN
        for index in range(start // block, min(end, cold) // block + (min(end, cold) % block > 0)):
            compressed = self.blocks[index]
            raw = blocks.get(compressed) if blocks is not None else memoryview(zlib.decompress(compressed))
            base = index * block
            skip, keep = max(start - base, 0), min(end - base, block)
            if not skip and keep == block:
                pieces.append(raw[head:])  # a whole block: its rows, no lengths needed
                continue
            lengths = array("I")
            lengths.frombytes(raw[:head])
            lo = head + (sum(lengths[:skip]) if skip else 0)
            hi = head + sum(lengths[:keep]) if keep < block else len(raw)
            pieces.append(raw[lo:hi])
        if end > cold:
            pieces.append(memoryview(self.buffer)[:self.offsets[end - cold]])
        pieces[-1] = pieces[-1][:-1]  # the last row's comma
        return pieces

    def view(self, first_open: int, count: int, blocks: BlockCache | None = None) -> memoryview | bytes | None:
        """As pieces(), in one: a window within the plain rows is a view without a copy (it pins the buffer),
        one reaching into the blocks new bytes (one join)."""
        pieces = self.pieces(first_open, count, blocks)
        if pieces is None:
            return None
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def window(self, first_open: int, count: int) -> bytes | None:
        """As view(), copied."""
        view = self.view(first_open, count)
        if view is None or isinstance(view, bytes):
            return view
        with view:
            return bytes(view)
