"""The gateway's closed candles of one series, compact: one byte buffer of ready-to-send JSON rows.

A series keeps its newest contiguous run of closed candles as Binance's JSON rows, each followed by a
comma, in one `bytearray`, with the offset of each row in an `array('I')` (4 bytes a row). A window is one
slice of the buffer, so an answer costs a single copy whatever its length, and the memory is the rows'
bytes plus 4 bytes each, instead of a Python string object per row (about 50 bytes of overhead each) and a
list slot. Old rows are dropped in batches (`slack`), so appending a candle is amortised O(1).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable


class SeriesCache:
    """The newest closed candles of one series, contiguous, as JSON rows in one buffer."""

    __slots__ = ("buffer", "capacity", "first", "loaded", "offsets", "period", "polled", "slack")

    def __init__(self, period: int, capacity: int) -> None:
        self.period = period
        self.capacity = max(capacity, 1)
        self.slack = max(self.capacity // 16, 8)
        self.first: int | None = None  # open time of the first row
        self.buffer = bytearray()
        self.offsets = array("I", [0])  # offsets[i]: where row i starts; offsets[-1]: the end
        self.loaded = False  # filled from InfluxDB at least once (even if InfluxDB holds nothing)
        self.polled = 0.0

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def last(self) -> int | None:
        return None if self.first is None else self.first + (len(self) - 1) * self.period

    @property
    def nbytes(self) -> int:
        return len(self.buffer) + self.offsets.itemsize * len(self.offsets)

    def rows(self) -> list[bytes]:
        """Every row (for tests and snapshots)."""
        return [bytes(self.buffer[self.offsets[i]:self.offsets[i + 1] - 1]) for i in range(len(self))]

    def load(self, candles: Iterable[tuple[int, bytes | None]]) -> None:
        """Start over from the newest contiguous run of `candles` (ascending; None rows are holes)."""
        run: list[tuple[int, bytes]] = []
        for open_time, row in candles:
            if row is None or (run and open_time != run[-1][0] + self.period):
                run = []
            if row is not None:
                run.append((open_time, row))
        run = run[-self.capacity:]
        buffer = bytearray()
        offsets = array("I", [0])
        for _, row in run:
            buffer += row
            buffer += b","
            offsets.append(len(buffer))
        self.first = run[0][0] if run else None
        self.buffer, self.offsets = buffer, offsets
        self.loaded = True

    def restore(self, first: int | None, buffer: bytearray, offsets: array[int]) -> None:
        """Take over rows kept earlier (freqfeed.gateway.snapshot), as they were."""
        if first is None or len(offsets) < 2:
            return
        self.first, self.buffer, self.offsets = first, buffer, offsets
        self.loaded = True
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
        self._trim()

    def _trim(self) -> None:
        count = len(self)
        if count <= self.capacity + self.slack:
            return
        drop = count - self.capacity
        cut = self.offsets[drop]
        del self.buffer[:cut]
        self.offsets = array("I", (o - cut for o in self.offsets[drop:]))
        assert self.first is not None
        self.first += drop * self.period

    def view(self, first_open: int, count: int) -> memoryview | None:
        """The rows of `count` candles from `first_open`, comma-separated, without a copy, or None when not all
        are here. The view pins the buffer: use it before the next await (the answer is joined from it at once,
        one allocation for the whole answer)."""
        if self.first is None or first_open < self.first or count <= 0:
            return None
        start, off = divmod(first_open - self.first, self.period)
        if off or start + count > len(self):
            return None
        return memoryview(self.buffer)[self.offsets[start]:self.offsets[start + count] - 1]

    def window(self, first_open: int, count: int) -> bytes | None:
        """As view(), copied."""
        view = self.view(first_open, count)
        if view is None:
            return None
        with view:
            return bytes(view)
