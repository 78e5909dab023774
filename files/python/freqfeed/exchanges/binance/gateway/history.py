"""Klines, mark-price klines and funding rates answered from InfluxDB, exactly as Binance would answer.

The gateway keeps, per series, the newest closed candles (`gateway.cache_candles`) as JSON rows ready to
send, contiguous and in step with InfluxDB (a poll every `gateway.poll_interval`, one statement per
measurement), the candle in progress of each series from `live_candle` (what the producer's streams last
saw), and every stored funding rate. A request is answered from those when they hold all of it:

- every closed candle of its window, without a hole (older windows are read from InfluxDB, and must be
  complete there too);
- the candle in progress, when the window reaches the present (Binance returns it as the last row), and
  only while it is fresh: an update older than `gateway.live_max_age` means the producer stopped, and a
  stale candle is never served as current;
- for funding, every settlement up to the end of the window (the markPrice stream's next funding time
  tells when one is due).

When only the candle that just closed (or the one that just opened) is missing, the request waits for
it, at most `gateway.close_wait`: the producer writes it within a second of the close. Anything else it
cannot answer completely, it forwards (the caller does), never a partial answer.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import ctypes
import ctypes.util
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freqfeed.config import Config, exchange_symbol
from freqfeed.exchanges.base import ExchangeClock
from freqfeed.exchanges.binance import wire
from freqfeed.exchanges.binance.gateway import snapshot
from freqfeed.exchanges.binance.gateway.rows import kline_row_bytes
from freqfeed.exchanges.binance.gateway.series import BlockCache, SeriesCache
from freqfeed.gateway.threads import DaemonWorkers
from freqfeed.influx import InfluxDB, InfluxDBError, Select, Series
from freqfeed.schema import (
    EXCHANGE,
    FUNDING_ALL_FIELDS,
    FUNDING_MEASUREMENT,
    FUTURE_MARGIN_MS,
    KLINE_FIELDS,
    LIVE_MARK,
    LIVE_MEASUREMENT,
    LIVE_TRADE,
    MARK_FIELDS,
    MARK_MEASUREMENT,
    MARK_TIMEFRAME,
    density_ms,
    ohlcv_measurement,
    pairs_select,
    retention_floor,
    series_select,
)
from freqfeed.timeframes import candle_open, last_closed_open, timeframe_ms

log = logging.getLogger(__name__)

LIVE_FIELDS = (*KLINE_FIELDS, "event_time", "next_funding_time")
REFRESH_EVERY = 30.0  # real seconds: closed candles are polled at least this often (repairs), funding too
FAST_POLL = 0.1  # real seconds between polls while a request waits for a candle


LOAD_PIECE_ROWS = 30_000  # rows per load statement: a few MB of JSON, well inside influxdb.timeout
LOAD_CONCURRENCY = 4  # at most this many pieces at once (and never more than influxdb.concurrency)
LOAD_RETRY = 2.0  # real seconds before a failed piece is asked again (doubling, at most 30 s)
MARGIN_CANDLES = 16  # kept beyond cache_candles, for windows that end a few candles back


def _dumps(row: object) -> str:
    return json.dumps(row, separators=(",", ":"))



def _return_free_heap() -> None:
    """Give the heap's free pages back to the system once a load is done (glibc's malloc_trim): a load or a
    snapshot restore parses far more than it keeps (InfluxDB's JSON, the snapshot's buffers), and glibc
    keeps the freed small chunks mapped, so the RSS at ready would carry the load's peak. No-op elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


class Forward(Exception):
    """The request cannot be answered completely from InfluxDB: forward it (the reason is logged/counted)."""

    def __init__(self, reason: str, *, fallback: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fallback = fallback  # a close-wait ran out


@dataclass(frozen=True)
class Live:
    open_time: int
    row: bytes
    event_ms: int
    next_funding_ms: int | None = None


@dataclass
class FundingCache:
    times: list[int]
    rows: list[str]
    complete: bool = True  # False while some stored rate lacks its mark price (written before the gateway)


class History:
    def __init__(self, config: Config, influx: InfluxDB, clock: ExchangeClock,
                 formats: Callable[[str], wire.SymbolFormat | None], *, state_dir: Path | None = None) -> None:
        self.config = config
        self.snapshot_path = state_dir / snapshot.NAME if state_dir is not None else None
        self.restored = 0  # series taken from the snapshot at start
        self.snapshot_error: str | None = None
        self._poll_seq = 0  # polls started
        self._polled_seq = -1  # the newest started poll that succeeded
        self._fresh_from = 0  # restored caches are current once a poll started after the restore succeeded
        self._prefetched: asyncio.Future[tuple[dict[str, Any], dict[snapshot.SeriesKey, Any]]] | None = None
        self.influx = influx
        self.clock = clock
        self.formats = formats
        self.futures = config.futures
        self.symbols = {exchange_symbol(pair): pair for pair in config.pairs}
        self.capacity = max(config.gateway.cache_candles, 1) + MARGIN_CANDLES
        capacity = self.capacity
        self.trade = {(pair, tf): SeriesCache(timeframe_ms(tf), capacity)
                      for tf in config.timeframes for pair in config.pairs}
        self.mark = {pair: SeriesCache(timeframe_ms(MARK_TIMEFRAME), capacity)
                     for pair in config.pairs} if self.futures else {}
        self.blocks = BlockCache(int(config.gateway.block_cache_mb * 1_000_000))
        self.live: dict[tuple[str, str, str], Live] = {}
        self.funding: dict[str, FundingCache] = {}
        self.funding_loaded = not self.futures
        self.live_loaded = False
        self.live_timeframes = sorted({*config.timeframes, *([MARK_TIMEFRAME] if self.futures else [])},
                                      key=timeframe_ms)
        self._changed = asyncio.Event()
        self._waiting = 0
        self._loaded = asyncio.Event()
        self._settled = asyncio.Event()  # loaded, or the load ran out of time (degraded): READY=1
        self.workers = DaemonWorkers(max(self.influx.concurrency, 1) + 1)
        # The load's state, for status and systemd: connecting (Binance), loading, ready, degraded.
        self.state = "connecting"
        self.started = time.monotonic()
        self.deadline = self.started + config.gateway.load_timeout
        self.load_started: float | None = None
        self.load_seconds: float | None = None
        self.pieces_total = 0
        self.pieces_done = 0
        self.load_rows = 0
        self.load_error: str | None = None
        self.last_poll_ok = 0.0  # monotonic
        self.poll_error: str | None = None
        self._last_refresh = 0.0
        self._reported = 0.0

    # -- loading ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Load the caches in pieces, concurrently (each usable once it is in), while the candles in
        progress and the loaded caches are polled; then keep everything in step with InfluxDB."""
        if self.state == "connecting":
            self.state = "loading"
        self.load_started = time.monotonic()
        poller = asyncio.create_task(self._poll_loop(), name="history-poll")
        keeper = asyncio.create_task(self.keep_snapshots(), name="history-snapshot")
        try:
            await self._load()
            await poller
        finally:
            poller.cancel()
            keeper.cancel()

    async def watch_load(self) -> None:
        """Past gateway.load_timeout the gateway serves anyway (READY=1), forwarding what is not loaded, loudly;
        the load goes on."""
        await asyncio.sleep(max(0.0, self.deadline - time.monotonic()))
        if not self.loaded:
            self.state = "degraded"
            self._settled.set()
            self._wake()
            log.error("gateway: caches not loaded after gateway.load_timeout (%gs): %d of %d pieces in (%s); "
                      "serving now, forwarding requests for what is not loaded; the load goes on",
                      self.config.gateway.load_timeout, self.pieces_done, self.pieces_total,
                      self.load_error or "InfluxDB slow")

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _poll_loop(self) -> None:
        while True:
            try:
                await self.poll()
            except InfluxDBError as exc:
                self._failed(exc)
            self._wake()
            await asyncio.sleep(FAST_POLL if self._waiting else self.config.gateway.poll_interval)

    def _failed(self, exc: InfluxDBError) -> None:
        self.poll_error = str(exc)
        if time.monotonic() - self._reported > 60:
            self._reported = time.monotonic()
            log.error("gateway: cannot read InfluxDB (%s); requests it cannot answer go to Binance", exc)

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    @property
    def settled(self) -> asyncio.Event:
        return self._settled

    def progress(self) -> str:
        """One line for systemd's STATUS= and the log."""
        if self.state == "ready":
            return f"ready: {len(self.trade) + len(self.mark)} series loaded in {self.load_seconds:.1f}s"
        text = f"{self.state}: {self.pieces_done}/{self.pieces_total} pieces, {self.load_rows} candles"
        if self.state == "degraded":
            text += ", forwarding what is not loaded"
        return text + (f" ({self.load_error})" if self.load_error else "")

    def _pieces(self) -> list[tuple[str, str, list[str]]]:
        """The load, cut into statements of at most LOAD_PIECE_ROWS rows: (kind, timeframe, pairs)."""
        per = max(1, LOAD_PIECE_ROWS // self.capacity)

        def groups(kind: str, tf: str) -> list[tuple[str, str, list[str]]]:
            pairs = [p for p in self.config.pairs
                     if not (self.trade[(p, tf)] if kind == "trade" else self.mark[p]).loaded]  # not restored
            return [(kind, tf, pairs[i:i + per]) for i in range(0, len(pairs), per)]

        pieces: list[tuple[str, str, list[str]]] = [("live", "", []), *([("funding", "", [])] if self.futures else [])]
        # short timeframes first: they are the ones most asked for at a close
        for tf in self.live_timeframes:
            if tf in self.config.timeframes:
                pieces += groups("trade", tf)
            if self.futures and tf == MARK_TIMEFRAME:
                pieces += groups("mark", tf)
        return pieces

    async def _load(self) -> None:
        await self._restore()
        pieces = self._pieces()
        self.pieces_total = len(pieces)
        # concurrent pieces: enough to keep influxd and the gateway busy at once, few enough that the answers
        # being parsed (a few MB each) do not add up
        limit = asyncio.Semaphore(max(min(self.influx.concurrency, LOAD_CONCURRENCY), 1))

        async def load(piece: tuple[str, str, list[str]]) -> None:
            delay = LOAD_RETRY
            while True:
                try:
                    async with limit:
                        await self._load_piece(*piece)
                    break
                except InfluxDBError as exc:
                    self.load_error = str(exc)
                    self._failed(exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                except Exception as exc:  # a bug must not stall the load silently
                    self.load_error = f"{type(exc).__name__}: {exc}"
                    log.exception("gateway: loading %s %s failed", piece[0], piece[1])
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
            self.pieces_done += 1
            self._wake()

        await asyncio.gather(*(load(piece) for piece in pieces))
        while not self.current:  # what was restored is topped up from InfluxDB before the gateway is ready
            await self._wait(time.monotonic() + 1.0, fast=False)
        self.load_seconds = time.monotonic() - (self.load_started or self.started)
        self.load_error = None
        _return_free_heap()
        was = self.state
        self.state = "ready"
        self._loaded.set()
        self._settled.set()
        self._wake()
        log.info("gateway: caches loaded in %.1fs (%d series, %d candles, up to %d each; %d series from the "
                 "snapshot, %d pieces from InfluxDB)%s", self.load_seconds, len(self.trade) + len(self.mark),
                 self.load_rows, self.capacity, self.restored, self.pieces_total,
                 " after running degraded" if was == "degraded" else "")

    # -- snapshot --------------------------------------------------------------------------------

    def _fingerprint(self) -> dict[str, Any]:
        return {"market": "futures" if self.futures else "spot", "influxdb": self.config.influxdb.url,
                "database": self.config.influxdb.database, "rp": self.config.influxdb.retention_policy,
                "capacity": self.capacity}

    def _caches(self) -> dict[snapshot.SeriesKey, SeriesCache]:
        caches: dict[snapshot.SeriesKey, SeriesCache] = {("trade", tf, p): c for (p, tf), c in self.trade.items()}
        caches.update({("mark", MARK_TIMEFRAME, p): c for p, c in self.mark.items()})
        return caches

    def prefetch_snapshot(self) -> asyncio.Future[tuple[dict[str, Any], dict[snapshot.SeriesKey, Any]]]:
        """Start reading the snapshot (while the gateway still connects to Binance: it needs exchangeInfo to
        check the snapshot against, not to read it)."""
        if self._prefetched is None:
            assert self.snapshot_path is not None
            self._prefetched = asyncio.ensure_future(self.workers.run(snapshot.read, self.snapshot_path))
        return self._prefetched

    async def _restore(self) -> None:
        """The caches kept at the last run, where they still fit; a snapshot that does not is ignored."""
        path = self.snapshot_path
        if path is None or (self._prefetched is None and not path.exists()):
            return
        try:
            header, kept = await (self._prefetched or self.prefetch_snapshot())
        except (OSError, ValueError) as exc:
            self.snapshot_error = f"{path}: {exc}"
            log.warning("gateway: ignoring the cache snapshot %s", self.snapshot_error)
            return
        if header.get("fingerprint") != self._fingerprint():
            log.info("gateway: the cache snapshot was made for another configuration; loading from InfluxDB")
            return
        formats = header.get("formats", {})
        now = self.clock.now()
        caches = self._caches()
        for key, (first, block_rows, blocks, buffer, offsets) in kept.items():
            cache = caches.get(key)
            fmt = self.formats(exchange_symbol(key[2]))
            if cache is None or first is None or fmt is None or block_rows != cache.block or \
                    formats.get(key[2]) != [fmt.price_decimals, fmt.quantity_decimals]:
                continue
            last = first + (len(blocks) * block_rows + len(offsets) - 2) * cache.period
            if (last_closed_open(now, key[1]) - last) // cache.period > self.capacity // 2:
                continue  # too far behind: one piece reads it faster than a poll tops it up
            cache.restore(first, blocks, buffer, offsets)
            self.restored += 1
            self.load_rows += len(cache)
        self._fresh_from = self._poll_seq
        self._prefetched = None
        log.info("gateway: %d of %d series restored from %s", self.restored, len(caches), path)

    async def keep_snapshots(self) -> None:
        """Write the snapshot once loaded and every SNAPSHOT_EVERY seconds: series by series from the loop
        (each a page-cache write of one buffer, a pause every 64 series), fsync and rename on a worker thread."""
        path = self.snapshot_path
        if path is None:
            return
        await self._loaded.wait()
        while True:
            formats: dict[str, list[int]] = {}
            try:
                writer = snapshot.Writer(path)
                finishing = False
                try:
                    for count, (key, cache) in enumerate(self._caches().items()):
                        fmt = self.formats(exchange_symbol(key[2]))
                        if cache.first is not None and fmt is not None:
                            formats[key[2]] = [fmt.price_decimals, fmt.quantity_decimals]
                            writer.add(key, cache)
                        if count % 64 == 63:
                            await asyncio.sleep(0)
                    header = {"fingerprint": self._fingerprint(), "formats": formats, "written": self.clock.now()}
                    finishing = True  # from here on the worker owns the file (a stop abandons it there)
                    size = await self.workers.run(writer.finish, header)
                except BaseException:
                    if not finishing:
                        writer.abort()
                    raise
                self.snapshot_error = None
                log.debug("gateway: cache snapshot written (%d series, %d bytes)", len(writer.entries), size)
            except OSError as exc:
                self.snapshot_error = f"{path}: {exc.strerror or exc}"
                log.error("gateway: cannot write the cache snapshot %s", self.snapshot_error)
            await asyncio.sleep(snapshot.SNAPSHOT_EVERY)

    async def _load_piece(self, kind: str, tf: str, pairs: list[str]) -> None:
        if kind == "live":
            answers = await self.workers.run(self._query_live, self.clock.now())
            self._apply_live(answers)
            self.live_loaded = True
            return
        if kind == "funding":
            answer = await self.workers.run(lambda: self._query_funding(self.clock.now(), full=True))
            self._apply_funding(answer, full=True)
            self.funding_loaded = True
            return
        loaded = await self.workers.run(self._read_piece, kind, tf, pairs, self.clock.now())
        for pair, built in loaded.items():
            cache = self.trade[(pair, tf)] if kind == "trade" else self.mark[pair]
            cache.adopt(built)
            self.load_rows += len(cache)

    def _read_piece(self, kind: str, tf: str, pairs: list[str], now: int) -> dict[str, SeriesCache]:
        """(On a worker thread) the newest candles of some series of one measurement, as loaded caches."""
        mark = kind == "mark"
        measurement, fields = (MARK_MEASUREMENT, MARK_FIELDS) if mark else (ohlcv_measurement(tf), KLINE_FIELDS)
        since = last_closed_open(now, tf) - (self.capacity + 2) * timeframe_ms(tf)
        [answer] = self.influx.select([pairs_select(measurement, fields, pairs, since, now + FUTURE_MARGIN_MS,
                                                    newest=self.capacity)])
        found = {series.tags.get("pair", ""): series for series in answer}
        built: dict[str, SeriesCache] = {}
        for pair in pairs:
            cache = built[pair] = SeriesCache(timeframe_ms(tf), self.capacity)
            cache.load(self._rows(found[pair], pair, tf, mark=mark) if pair in found else [])
        return built

    async def poll(self) -> None:
        seq = self._poll_seq
        self._poll_seq += 1
        await self._poll()
        self._polled_seq = max(self._polled_seq, seq)

    @property
    def current(self) -> bool:
        """Restored caches have been topped up from InfluxDB (always true without a snapshot)."""
        return self._polled_seq >= self._fresh_from

    async def _poll(self) -> None:
        now = self.clock.now()
        refresh = time.monotonic() - self._last_refresh > REFRESH_EVERY
        plan = self._closed_plan(now, refresh)
        live, closed, funding = await self.workers.run(self._poll_queries, now, plan, refresh)
        self._apply_live(live)
        for (kind, tf, members), answer in zip(plan, closed, strict=True):
            by_pair = {s.tags.get("pair", ""): s for s in answer}
            for pair in members:
                cache = self.trade[(pair, tf)] if kind == "trade" else self.mark[pair]
                series = by_pair.get(pair)
                if series is not None:
                    cache.extend(self._rows(series, pair, tf, mark=kind == "mark"))
        if funding is not None:
            self._apply_funding(funding, full=False)
        if refresh:
            self._last_refresh = time.monotonic()
        self.last_poll_ok = time.monotonic()
        self.poll_error = None

    def _closed_plan(self, now: int, refresh: bool) -> list[tuple[str, str, list[str]]]:
        """Which caches to ask for newer candles: those behind the newest close (or all, every REFRESH_EVERY),
        grouped by measurement and the time they need rows from."""
        plan: dict[tuple[str, str, int], list[str]] = {}
        caches: list[tuple[str, str, str, SeriesCache]] = [
            ("trade", tf, pair, c) for (pair, tf), c in self.trade.items()]
        caches += [("mark", MARK_TIMEFRAME, pair, c) for pair, c in self.mark.items()]
        for kind, tf, pair, cache in caches:
            if not cache.loaded:
                continue  # the load reads it
            due = last_closed_open(now, tf)
            if cache.last is not None and cache.last >= due and not refresh:
                continue
            since = (cache.last + cache.period) if cache.last is not None else \
                due - self.capacity * cache.period
            plan.setdefault((kind, tf, since), []).append(pair)
        return [(kind, tf, members) for (kind, tf, _), members in plan.items()] if plan else []

    def _poll_queries(self, now: int, plan: list[tuple[str, str, list[str]]],
                      refresh: bool) -> tuple[list[list[Series]], list[list[Series]], list[Series] | None]:
        until = now + FUTURE_MARGIN_MS
        selects = self._live_selects(now)
        for kind, tf, members in plan:
            measurement, fields = (ohlcv_measurement(tf), KLINE_FIELDS) if kind == "trade" else \
                (MARK_MEASUREMENT, MARK_FIELDS)
            caches = [self.trade[(p, tf)] if kind == "trade" else self.mark[p] for p in members]
            last = caches[0].last
            period = caches[0].period
            since = (last + period) if last is not None else \
                last_closed_open(now, tf) - self.capacity * period
            selects.append(pairs_select(measurement, fields, members, since, max(until, since),
                                        newest=self.capacity))
        funding_select = self._funding_select(now, full=False) if self.funding_loaded and (
            (self.futures and refresh) or self._funding_due(now)) else None
        if funding_select is not None:
            selects.append(funding_select)
        answers = self.influx.select(selects)
        count = len(self.live_timeframes)
        live, closed = answers[:count], answers[count:count + len(plan)]
        funding = answers[-1] if funding_select is not None else None
        return live, closed, funding

    # -- live candles ----------------------------------------------------------------------------

    def _live_selects(self, now: int) -> list[Select]:
        selects = []
        for tf in self.live_timeframes:
            current = candle_open(now, tf)
            selects.append(Select(LIVE_MEASUREMENT, LIVE_FIELDS, current - timeframe_ms(tf), now + FUTURE_MARGIN_MS,
                                  tags=(("exchange", EXCHANGE), ("timeframe", tf)), group_by=("pair", "price"),
                                  newest=1, density_ms=density_ms(ohlcv_measurement(tf))))
        return selects

    def _query_live(self, now: int) -> list[list[Series]]:
        return self.influx.select(self._live_selects(now))

    def _apply_live(self, answers: list[list[Series]]) -> None:
        for tf, answer in zip(self.live_timeframes, answers, strict=True):
            period = timeframe_ms(tf)
            for series in answer:
                pair, price = series.tags.get("pair", ""), series.tags.get("price", "")
                if not series.values or pair not in self.config.pairs:
                    continue
                row = dict(zip(series.columns, series.values[0], strict=False))
                fmt = self.formats(exchange_symbol(pair))
                if fmt is None or row.get("event_time") is None:
                    continue
                held = self.live.get((pair, tf, price))
                if held is not None and held.event_ms == int(row["event_time"]) and \
                        held.open_time == int(row["time"]):
                    continue  # unchanged since the last poll
                try:
                    kline = kline_row_bytes(int(row["time"]), period, fmt, [
                        row["open"], row["high"], row["low"], row["close"], row.get("volume"), row.get("quote_volume"),
                        row.get("trades"), row.get("taker_buy_volume"), row.get("taker_buy_quote_volume")],
                        mark=price == LIVE_MARK)
                except (ValueError, TypeError):
                    continue
                next_funding = row.get("next_funding_time")
                self.live[(pair, tf, price)] = Live(int(row["time"]), kline, int(row["event_time"]),
                                                    int(next_funding) if next_funding is not None else None)

    def _fresh_live(self, pair: str, tf: str, price: str, open_time: int) -> Live | None:
        live = self.live.get((pair, tf, price))
        if live is None or live.open_time != open_time:
            return None
        max_age = self.config.gateway.live_max_age * 1000 * self.clock.rate
        return live if self.clock.now() - live.event_ms <= max_age else None

    # -- closed candles --------------------------------------------------------------------------

    def _rows(self, series: Series, pair: str, tf: str, *, mark: bool) -> list[tuple[int, bytes | None]]:
        """(open time, JSON row or None when a field is missing) of an InfluxDB answer, ascending."""
        fmt = self.formats(exchange_symbol(pair))
        period = timeframe_ms(tf)
        out: list[tuple[int, bytes | None]] = []
        for values in sorted(series.values, key=lambda v: v[0]):
            if fmt is None:
                out.append((int(values[0]), None))
                continue
            try:
                row = kline_row_bytes(int(values[0]), period, fmt, values[1:], mark=mark)
            except (ValueError, TypeError):
                out.append((int(values[0]), None))  # a candle stored before it had every field
                continue
            out.append((int(values[0]), row))
        return out

    async def _from_influxdb(self, pair: str, tf: str, first: int, count: int, *, mark: bool) -> bytes:
        """Closed candles older than the cache, read from InfluxDB; Forward unless every one is there."""
        period = timeframe_ms(tf)
        last = first + (count - 1) * period
        measurement, fields = (MARK_MEASUREMENT, MARK_FIELDS) if mark else (ohlcv_measurement(tf), KLINE_FIELDS)
        if first < retention_floor(self.clock.now(), self.config.influxdb.retention_days):
            raise Forward("older than InfluxDB's retention")
        try:
            [answer] = await self.workers.run(self.influx.select, [series_select(measurement, fields, pair, first,
                                                                                 last)])
        except InfluxDBError as exc:
            raise Forward(f"InfluxDB: {exc}") from None
        rows = self._rows(answer[0], pair, tf, mark=mark) if answer else []
        if len(rows) != count or any(row is None for _, row in rows) or \
                [t for t, _ in rows] != list(range(first, last + 1, period)):
            raise Forward("InfluxDB does not hold every candle of the window")
        return b",".join(row for _, row in rows if row is not None)

    # -- answers ---------------------------------------------------------------------------------

    async def klines(self, query: wire.KlinesQuery, *, mark: bool) -> bytes:
        """Binance's answer to a klines (or markPriceKlines) request; raises Forward when it cannot be
        answered completely."""
        pair = self.symbols.get(query.symbol)
        if pair is None:
            raise Forward(f"{query.symbol} is not collected by the producer")
        if (mark and query.interval != MARK_TIMEFRAME) or (not mark and query.interval not in self.config.timeframes):
            raise Forward(f"{'mark ' if mark else ''}{query.interval} is not collected by the producer")
        cache = self.mark[pair] if mark else self.trade[(pair, query.interval)]
        if not await self.hold(lambda: cache.loaded and self.live_loaded and self.current):
            raise Forward("the gateway is still loading its caches")
        deadline = time.monotonic() + self.config.gateway.close_wait
        while True:
            now = self.clock.now()
            window = wire.kline_window(query, now)
            if window.count == 0:
                return b"[]"
            try:
                return await self._klines_now(pair, query.interval, cache, window, now, mark=mark)
            except _NotYet as wait:
                if time.monotonic() >= deadline:
                    raise Forward(f"{wait} after {self.config.gateway.close_wait:g}s", fallback=True) from None
                await self._wait(deadline)

    async def _klines_now(self, pair: str, tf: str, cache: SeriesCache, window: wire.KlineWindow, now: int, *,
                          mark: bool) -> bytes:
        period = window.period_ms
        parts: list[bytes | memoryview] = []
        closed = window.closed_count
        from_cache = False
        if closed:
            closed_last = window.first_open + (closed - 1) * period
            if cache.last is not None and closed_last > cache.last:
                # the newest closed candle(s) not in InfluxDB yet: wait only if they just closed
                if closed_last - cache.last <= period and now - (closed_last + period) <= self._wait_ms():
                    raise _NotYet(f"the {tf} candle of {pair} that closed at {closed_last + period} is not in "
                                  f"InfluxDB yet")
                raise Forward(f"InfluxDB's newest {tf} candle of {pair} is {cache.last}, the window needs "
                              f"{closed_last}")
            from_cache = cache.covers(window.first_open, closed)  # taken below, after the last await
            if not from_cache:
                if cache.last is None:
                    raise Forward(f"no {tf} candles of {pair} in InfluxDB")
                parts.append(await self._from_influxdb(pair, tf, window.first_open, closed, mark=mark))
        if window.in_progress:
            live = self._fresh_live(pair, tf, LIVE_MARK if mark else LIVE_TRADE, window.last_open)
            if live is None:
                held = self.live.get((pair, tf, LIVE_MARK if mark else LIVE_TRADE))
                if (now - window.last_open <= self._wait_ms()) and (held is None or held.open_time < window.last_open):
                    raise _NotYet(f"the {tf} candle of {pair} in progress since {window.last_open} is not in "
                                  f"InfluxDB yet")
                raise Forward(f"no current {tf} {'mark ' if mark else ''}candle of {pair} from the producer "
                              f"(last update {held.event_ms if held else 'never'})")
            parts.append(live.row)
        pieces: list[bytes | memoryview] = [b"["]
        if closed and from_cache:
            rows = cache.pieces(window.first_open, closed, self.blocks)  # no await from here on: used at once
            if rows is None:
                raise Forward(f"the {tf} cache of {pair} changed under the request")  # cannot happen: no await
            pieces += rows
        for part in parts:
            pieces += [b",", part] if len(pieces) > 1 else [part]
        pieces.append(b"]")
        return b"".join(pieces)  # one allocation for the whole answer

    async def hold(self, ready: Callable[[], bool]) -> bool:
        """Wait while the gateway starts until `ready()` (what a request needs is loaded); False when the start
        is over (degraded: gateway.load_timeout ran out) and it is still not there."""
        while not ready():
            if self.state not in ("connecting", "loading") or time.monotonic() >= self.deadline:
                return False
            await self._wait(self.deadline, fast=False)
        return True

    def _wait_ms(self) -> int:
        """How recent a close must be for a request to wait for it, in exchange ms."""
        return int((self.config.gateway.close_wait + 2 * self.config.gateway.poll_interval + 1) * 1000 *
                   self.clock.rate)

    async def _wait(self, deadline: float, *, fast: bool = True) -> None:
        if not fast:  # a load piece or the deadline wakes it, not a poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.0, deadline - time.monotonic()))
            return
        self._waiting += 1
        try:
            await asyncio.wait_for(self._changed.wait(), timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            pass
        finally:
            self._waiting -= 1

    # -- funding ---------------------------------------------------------------------------------

    def _funding_select(self, now: int, *, full: bool) -> Select:
        newest = max((c.times[-1] for c in self.funding.values() if c.times), default=None)
        since = retention_floor(now, self.config.influxdb.retention_days) if full or newest is None else \
            min((c.times[-1] for c in self.funding.values() if c.times), default=newest) + 1
        return pairs_select(FUNDING_MEASUREMENT, FUNDING_ALL_FIELDS, self.config.pairs, since,
                            max(now + FUTURE_MARGIN_MS, since))

    def _funding_due(self, now: int) -> bool:
        """A settlement has passed that the funding cache does not hold yet."""
        if not self.futures:
            return False
        for pair, cache in self.funding.items():
            live = self.live.get((pair, MARK_TIMEFRAME, LIVE_MARK))
            if live is None or live.next_funding_ms is None or not cache.times:
                continue
            interval = cache.times[-1] - cache.times[-2] if len(cache.times) > 1 else None
            if interval and live.next_funding_ms - interval > cache.times[-1]:
                return True
        return False

    def _query_funding(self, now: int, *, full: bool) -> list[Series] | None:
        if not self.futures:
            return None
        [answer] = self.influx.select([self._funding_select(now, full=full)])
        return answer

    def _apply_funding(self, answer: list[Series] | None, *, full: bool) -> None:
        if answer is None:
            return
        for series in answer:
            pair = series.tags.get("pair", "")
            symbol = exchange_symbol(pair)
            fmt = self.formats(symbol)
            if fmt is None:
                continue
            cache = self.funding.get(pair)
            if cache is None or full:
                cache = self.funding[pair] = FundingCache([], [])
            for values in sorted(series.values, key=lambda v: v[0]):
                funding_time, rate, mark_price = int(values[0]), values[1], values[2]
                if cache.times and funding_time <= cache.times[-1]:
                    continue
                if rate is None or mark_price is None:
                    cache.complete = False
                    continue
                cache.times.append(funding_time)
                cache.rows.append(_dumps(wire.funding_row(symbol, funding_time,
                                                          wire.format_float(rate, wire.RATE_DECIMALS),
                                                          fmt.price(mark_price))))

    async def funding_rates(self, query: wire.FundingQuery) -> bytes:
        """Binance's answer to a fundingRate request; raises Forward when it cannot be answered completely."""
        pair = self.symbols.get(query.symbol)
        if pair is None or not self.futures:
            raise Forward(f"{query.symbol} is not collected by the producer")
        if not await self.hold(lambda: self.funding_loaded and self.live_loaded):
            raise Forward("the gateway is still loading its caches")
        deadline = time.monotonic() + self.config.gateway.close_wait
        while True:
            try:
                return self._funding_now(pair, query, self.clock.now())
            except _NotYet as wait:
                if time.monotonic() >= deadline:
                    raise Forward(f"{wait} after {self.config.gateway.close_wait:g}s", fallback=True) from None
                await self._wait(deadline)

    def _funding_now(self, pair: str, query: wire.FundingQuery, now: int) -> bytes:
        cache = self.funding.get(pair)
        if cache is None or not cache.times or not cache.complete:
            raise Forward(f"no complete funding history of {pair} in InfluxDB")
        window = wire.funding_window(query, now)
        complete_until, due = self._funding_complete_until(pair, cache, now)
        low = 0 if window.start_ms is None else bisect.bisect_left(cache.times, window.start_ms)
        high = bisect.bisect_right(cache.times, window.end_ms)
        if window.start_ms is None:
            if high - low < window.limit:
                raise Forward(f"InfluxDB holds {high - low} funding rates of {pair}, the request wants {window.limit}")
            picked = range(high - window.limit, high)
        else:
            if window.start_ms < cache.times[0]:
                raise Forward(f"the request starts before InfluxDB's funding history of {pair}")
            picked = range(low, min(high, low + window.limit))
        filled = window.start_ms is not None and len(picked) == window.limit
        if window.end_ms > complete_until and not filled:
            if due is not None and now - due <= self._wait_ms():
                raise _NotYet(f"the funding rate of {pair} settled at {due} is not in InfluxDB yet")
            raise Forward(f"funding rates of {pair} after {complete_until} are not known to be complete")
        return ("[" + ",".join(cache.rows[i] for i in picked) + "]").encode()

    def _funding_complete_until(self, pair: str, cache: FundingCache, now: int) -> tuple[int, int | None]:
        """Up to when the stored funding rates of `pair` are complete, and the settlement that is missing if
        one is. Complete up to now when the markPrice stream's next funding time (fresh) follows the newest
        stored settlement by one interval; else up to that settlement."""
        newest = cache.times[-1]
        live = self.live.get((pair, MARK_TIMEFRAME, LIVE_MARK))
        max_age = self.config.gateway.live_max_age * 1000 * self.clock.rate
        if live is None or live.next_funding_ms is None or now - live.event_ms > max_age or len(cache.times) < 2:
            return newest, None
        interval = newest - cache.times[-2]
        expected = live.next_funding_ms - interval  # the settlement before the next one
        if expected <= newest:
            return now, None
        return newest, expected


class _NotYet(Exception):
    """What the request needs has just closed and is not in InfluxDB yet: worth waiting for."""
