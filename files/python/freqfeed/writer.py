"""The producer's write path: a bounded buffer of line-protocol points, flushed to InfluxDB in batches.

A batch goes out when `batch_size` points are waiting or `flush_interval` seconds after its first
point, whichever comes first. While InfluxDB is down or refusing, points stay buffered and writes are
retried with backoff; the buffer holds at most `buffer_limit` points (at ~120 bytes a point, the
default two million is ~250 MB worst case, hours of live data). Past that the oldest points are
dropped, once-logged, and `overflowed` tells the producer to repair the gap over REST once InfluxDB
answers again. Points are idempotent (time = candle open), so a retried batch never duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable

from freqfeed.influx import InfluxDB, InfluxDBError, InfluxDBRejected

log = logging.getLogger(__name__)


class BufferedWriter:
    def __init__(self, client: InfluxDB, *, batch_size: int = 5000, flush_interval: float = 0.2,
                 buffer_limit: int = 2_000_000) -> None:
        self.client = client
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.buffer_limit = buffer_limit
        self._lines: deque[str] = deque()
        self._first_pending: float | None = None
        self._flush_now = False  # drain(): send what is buffered without waiting for the interval
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.written = 0
        self.dropped = 0
        self.added = 0  # lines ever added: every one ends up written or dropped, in order
        self._processed = asyncio.Event()  # set after each batch is written or dropped
        self.overflowed = False  # set when points were dropped; the producer clears it after repairing
        self.failing_since: float | None = None
        self.last_error: str | None = None
        self._last_report = 0.0
        self.peak_pending = 0

    @property
    def pending(self) -> int:
        return len(self._lines)

    def add(self, lines: Iterable[str]) -> None:
        before = len(self._lines)
        self._lines.extend(lines)
        if len(self._lines) == before:
            return
        self.added += len(self._lines) - before
        if self._first_pending is None:
            self._first_pending = time.monotonic()
        self._idle.clear()
        overflow = len(self._lines) - self.buffer_limit
        if overflow > 0:
            for _ in range(overflow):
                self._lines.popleft()
            if not self.overflowed:
                log.error("write buffer full (%d points, producer.buffer_limit) while InfluxDB is unavailable: "
                          "dropping the oldest points; they are fetched again over REST once InfluxDB is back",
                          self.buffer_limit)
            self.dropped += overflow
            self.overflowed = True
        self.peak_pending = max(self.peak_pending, len(self._lines))
        if before == 0 or len(self._lines) >= self.batch_size:
            self._wakeup.set()

    async def run(self) -> None:
        backoff = 0.5
        while True:
            if not self._lines:
                self._first_pending = None
                self._flush_now = False
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            wait = self._until_due()
            if wait > 0:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=wait)
                continue
            batch = [self._lines.popleft() for _ in range(min(self.batch_size, len(self._lines)))]
            try:
                await asyncio.to_thread(self.client.write, batch)
            except InfluxDBRejected as exc:
                self._rejected(exc, batch)
            except InfluxDBError as exc:
                self._lines.extendleft(reversed(batch))
                self._failing(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 15.0)
                continue
            else:
                self.written += len(batch)
                if self.failing_since is not None:
                    log.warning("InfluxDB accepts writes again after %.0fs; %d points still buffered",
                                time.monotonic() - self.failing_since, len(self._lines))
                    self.failing_since = None
                    self.last_error = None
            self._processed.set()
            backoff = 0.5
            if not self._lines:  # points left over were waiting as long as the batch: still due
                self._first_pending = None

    def _until_due(self) -> float:
        """Seconds until the next batch should go out (0: now)."""
        if self._flush_now or len(self._lines) >= self.batch_size or self._first_pending is None:
            return 0.0
        return self._first_pending + self.flush_interval - time.monotonic()

    def _failing(self, exc: InfluxDBError) -> None:
        message = str(exc)
        now = time.monotonic()
        if self.failing_since is None or message != self.last_error:
            log.error("cannot write to InfluxDB, buffering (%d points pending): %s", len(self._lines), message)
            self._last_report = now
        elif now - self._last_report >= 60:
            log.error("InfluxDB still unavailable after %.0fs: %d points buffered", now - self.failing_since,
                      len(self._lines))
            self._last_report = now
        if self.failing_since is None:
            self.failing_since = now
        self.last_error = message

    def _rejected(self, exc: InfluxDBRejected, batch: list[str]) -> None:
        message = str(exc)
        if "beyond retention policy" in message:
            # InfluxDB stored the rest of the batch; candles older than the retention are not kept anyway.
            log.warning("InfluxDB dropped points older than its retention policy: %s", message)
            self.written += len(batch)
            return
        self.dropped += len(batch)
        log.error("InfluxDB rejected a batch of %d points, dropped: %s (first point: %s)", len(batch), message,
                  batch[0][:200])

    async def written_through(self, mark: int, timeout: float) -> bool:
        """Wait until the first `mark` lines ever added (`added` when they were) are written (or dropped),
        sending them without waiting for the interval; False when the timeout passed first. Unlike drain(),
        lines added meanwhile (the live streams) do not hold it up."""
        self._flush_now = True
        self._wakeup.set()
        deadline = time.monotonic() + timeout
        while self.written + self.dropped < mark:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._processed.clear()
            try:
                await asyncio.wait_for(self._processed.wait(), timeout=remaining)
            except TimeoutError:
                return self.written + self.dropped >= mark
        return True

    async def drain(self, timeout: float) -> bool:
        """Wait until everything buffered is written; False when the timeout passed first."""
        self._flush_now = True
        self._wakeup.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=timeout)
        except TimeoutError:
            return False
        return True
