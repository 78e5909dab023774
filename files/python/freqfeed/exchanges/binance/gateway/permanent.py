"""Answers that can never change, kept on disk across restarts: a second download-data costs Binance nothing.

freqtrade's download-data into an empty data directory first asks each new series for its listing date
(freqtrade 2026.9, exchange/binance.py `get_historic_ohlcv`: `_async_get_candle_history(..., since_ms=0)`,
i.e. `klines` / `markPriceKlines` with `startTime=0` and its candle limit): the first candles of the
pair, older than InfluxDB's retention, so the gateway forwards them. Such an answer, and any other
forwarded klines, markPriceKlines or fundingRate answer with a `startTime` whose every row is closed and
whose window is full (as many rows as the limit, or ending at an `endTime` in the past), is immutable:
it is kept here and answered from here from then on.

One file per answer in `<state dir>/permanent/` (the request's key on the first line, then the body),
written to a temporary name and renamed (atomic: a crash never leaves a partial answer). Bounded: at most
`MAX_ENTRIES` answers and `MAX_BYTES` bytes, the oldest dropped first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENDPOINTS = {"klines": 500, "markPriceKlines": 500, "fundingRate": 100}  # endpoint -> Binance's default limit
MAX_ENTRIES = 20_000
MAX_BYTES = 256 * 1024 * 1024
CLOSED_MARGIN_MS = 60_000  # a row counts as closed this long after its close (clock skew, late trades)
SUFFIX = ".json"


def request_key(endpoint: str, params: dict[str, str]) -> str | None:
    """The request's identity (endpoint and sorted parameters), or None when it is not one to keep."""
    if endpoint not in ENDPOINTS or "startTime" not in params:
        return None
    return endpoint + "?" + "&".join(f"{k}={params[k]}" for k in sorted(params))


def immutable(endpoint: str, params: dict[str, str], body: bytes, now_ms: int) -> bool:
    """Every row closed and the window full: the same request gets the same answer forever."""
    try:
        rows: Any = json.loads(body)
        limit = int(params.get("limit", ENDPOINTS[endpoint]))
        end = int(params["endTime"]) if "endTime" in params else None
    except (ValueError, KeyError):
        return False
    if not isinstance(rows, list) or not rows:
        return False
    closed_before = now_ms - CLOSED_MARGIN_MS
    try:
        if endpoint == "fundingRate":
            times = [int(row["fundingTime"]) for row in rows]
        else:
            times = [int(row[6]) for row in rows]  # close time
    except (TypeError, ValueError, KeyError, IndexError):
        return False
    if max(times) >= closed_before:
        return False
    return len(rows) == limit or (end is not None and end < closed_before)


class PermanentAnswers:
    def __init__(self, directory: Path | None, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.directory = directory / "permanent" if directory is not None else None
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._sizes: OrderedDict[str, int] = OrderedDict()  # file name -> bytes, oldest first
        self._total = 0
        self.hits = 0
        self.stored = 0
        self.error: str | None = None
        if self.directory is not None:
            self._open()

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    @property
    def size(self) -> int:
        return self._total

    def _open(self) -> None:
        assert self.directory is not None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            files = [(p.stat().st_mtime, p.name, p.stat().st_size) for p in self.directory.iterdir()
                     if p.name.endswith(SUFFIX)]
            for leftover in self.directory.glob("*.tmp"):
                leftover.unlink(missing_ok=True)
        except OSError as exc:
            self._disable(exc)
            return
        for _, name, size in sorted(files):
            self._sizes[name] = size
            self._total += size
        self._evict()
        log.info("gateway: %d immutable answers kept in %s (%d bytes)", len(self._sizes), self.directory, self.size)

    def _disable(self, exc: OSError) -> None:
        self.error = f"{self.directory}: {exc.strerror or exc}"
        log.error("gateway: cannot keep immutable answers (%s); they are forwarded every time", self.error)
        self.directory = None

    @staticmethod
    def _name(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()[:40] + SUFFIX

    def get(self, endpoint: str, params: dict[str, str]) -> bytes | None:
        key = request_key(endpoint, params)
        if key is None or self.directory is None:
            return None
        name = self._name(key)
        if name not in self._sizes:
            return None
        try:
            stored_key, _, body = (self.directory / name).read_bytes().partition(b"\n")
        except OSError:
            self._total -= self._sizes.pop(name, 0)
            return None
        if stored_key.decode(errors="replace") != key:
            return None
        self.hits += 1
        return body

    def offer(self, endpoint: str, params: dict[str, str], status: int, body: bytes, now_ms: int) -> bool:
        """Keep a forwarded answer if it is immutable; True when kept."""
        key = request_key(endpoint, params)
        if key is None or self.directory is None or status != 200 or not immutable(endpoint, params, body, now_ms):
            return False
        name = self._name(key)
        if name in self._sizes:
            return False
        data = key.encode() + b"\n" + body
        path = self.directory / name
        temp = path.with_suffix(".tmp")
        try:
            with open(temp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            log.warning("gateway: cannot keep an immutable answer in %s: %s", self.directory, exc.strerror or exc)
            return False
        self._sizes[name] = len(data)
        self._total += len(data)
        self.stored += 1
        self._evict()
        return True

    def _evict(self) -> None:
        while self._sizes and (len(self._sizes) > self.max_entries or self._total > self.max_bytes):
            name, size = self._sizes.popitem(last=False)
            self._total -= size
            if self.directory is not None:
                with contextlib.suppress(OSError):
                    (self.directory / name).unlink()

    def status(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "answers": len(self._sizes), "bytes": self.size, "hits": self.hits,
                "stored": self.stored, "error": self.error}
