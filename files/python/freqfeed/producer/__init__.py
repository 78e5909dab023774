"""`freqfeed produce`: keep InfluxDB complete with the exchange's candles, mark prices and funding rates (the
exchange's package gives the clients: freqfeed.exchanges).

Start-up: connect to InfluxDB (create the database if it may), validate the pairs against the
exchange, open the live streams, then backfill over REST whatever InfluxDB is missing within the
last `backfill.candles` candles of every series (all of it on an empty database, only the gap after
a restart), with "now" taken from the exchange's clock.

Live: the exchange's streams deliver closed candles and mark-price updates; every point is buffered and written
in batches. A watchdog keeps every series complete over REST:
- a gap between two streamed candles, or the candles missed while a connection was down, are fetched
  as soon as it is seen (or the connection is back);
- a series whose stream has delivered no closed candle for `producer.silent_periods` periods
  (connection up or not) is logged as silent and filled over REST at every close until it recovers;
- 1h mark-price candles and settled funding rates are fetched over REST when they become due (the
  markPrice stream tells when a funding time has passed);
- once an hour (exchange time), and after the write buffer overflowed, InfluxDB is checked against
  the window and anything missing is fetched again.

The package, one module per concern (each a class the next builds on, all of them `Producer`):
    state.py     Series, Funding, the attributes every concern reads, the repair queue
    health.py    the health file
    backfill.py  backfill planning and verification (windows, holes, pages, progress, funding rates)
    watchdog.py  repairs, silent streams, funding times, the hourly check
    events.py    the live events from the exchange package's streams
    __init__.py  Producer: start-up, tasks, shutdown; `main`
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from typing import Any

from freqfeed import exchanges
from freqfeed.config import Config, exchange_symbol
from freqfeed.exchanges.base import ExchangeClock, ExchangeError, ProducerStreams, UnknownPairsError
from freqfeed.influx import InfluxDB, InfluxDBAuthError, InfluxDBError, InfluxDBNotFound, InfluxDBUnavailable
from freqfeed.live import LiveCandles
from freqfeed.producer.backfill import REPORT_EVERY, _duration, _Gap, _Progress, missing_ranges
from freqfeed.producer.events import LiveEvents
from freqfeed.producer.state import Funding, Series
from freqfeed.schema import MARK_MEASUREMENT, MARK_TIMEFRAME, has_mark_series, ohlcv_measurement, use_exchange
from freqfeed.writer import BufferedWriter

__all__ = ["REPORT_EVERY", "Funding", "Producer", "Series", "_Gap", "_Progress", "_duration", "main", "missing_ranges"]

log = logging.getLogger("freqfeed.producer")  # one logger for the whole producer, as before the split

SHUTDOWN_FLUSH_TIMEOUT = 5.0


class Producer(LiveEvents):
    def __init__(self, config: Config, influx: InfluxDB | None = None) -> None:
        self.config = config
        self.influx = influx or InfluxDB(config.influxdb, retries=1)
        self.clock = ExchangeClock()
        use_exchange(config.exchange.name)
        self.exchange = exchanges.get(config.exchange.name)
        self.rest = self.exchange.producer_rest(config, self.clock)
        self.writer = BufferedWriter(self.influx, batch_size=config.producer.batch_size,
                                     flush_interval=config.producer.flush_interval,
                                     buffer_limit=config.producer.buffer_limit)
        self.live = LiveCandles(self.writer, config.producer.live_interval)
        self.series: dict[tuple[str, str, str], Series] = {}
        for timeframe in config.timeframes:
            for pair in config.pairs:
                self.series[("ohlcv", pair, timeframe)] = Series("ohlcv", pair, timeframe, ohlcv_measurement(timeframe))
        self.funding: dict[str, Funding] = {}
        if config.futures:
            for pair in config.pairs:
                if has_mark_series(config.exchange.name):
                    self.series[("mark", pair, MARK_TIMEFRAME)] = Series("mark", pair, MARK_TIMEFRAME,
                                                                         MARK_MEASUREMENT)
                self.funding[pair] = Funding(pair)
        self.counters: Counter[str] = Counter()
        self.stopping = asyncio.Event()
        self.streams: ProducerStreams | None = None
        self.stream_started_ms: int | None = None
        self.mark_stream_last = time.monotonic()
        self.mark_stream_silent = False
        self.stream_seen: dict[str, float] = {}  # timeframe -> monotonic time of its stream's last kline message
        self.stream_up: dict[str, bool] = {}
        self.metrics_server: Any = None  # stream label -> connected (freqfeed.metrics reads both)
        self.backfill_summary: dict[str, Any] = {}
        self.backfill_progress: _Progress | None = None
        self.last_verify_ms = 0
        self._pending: dict[Any, tuple[int, int, str]] = {}
        self._in_flight: set[Any] = set()
        self._repairs: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = time.time()
        self.exit_code = 0
        self._funding_by_symbol = {exchange_symbol(pair): state for pair, state in self.funding.items()}
        self.listing_suspects: set[str] = set()
        self.listing_next_check = 0.0
        self.listing_task: asyncio.Task[None] | None = None
        self.ended_pairs: dict[str, int] = {}

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        await self._start_metrics()
        try:
            if not await self._connect_influxdb():
                return 0
            await self.rest.sync_time()
            info = await self.rest.exchange_info()
            self.rest.check_pairs(info, self.config.pairs)
            self._start_task(self.writer.run(), "writer")
            self._start_task(self.live.run(), "live candles")
            self.streams = self.exchange.producer_streams(self.config, info, self.rest, self)
            self.streams.start()
            self._start_task(self._health_loop(), "health")
            await asyncio.sleep(1.0)
            await self.rest.sync_time()  # a second sample gives the exchange clock's rate
            self.stream_started_ms = self.clock.now()
            self._start_task(self._start_up(), "backfill")
            await self.stopping.wait()
            return self.exit_code
        except UnknownPairsError as exc:
            log.error("%s", exc)
            return 2
        except (InfluxDBAuthError, InfluxDBNotFound) as exc:
            log.error("%s", exc)
            return 1
        except ExchangeError as exc:
            log.error("cannot start: %s", exc)
            return 1
        finally:
            await self._shutdown()

    async def _start_metrics(self) -> None:
        """/metrics on producer.metrics_listen; a port taken is logged, the producer runs on without."""
        if not self.config.producer.metrics_listen:
            return
        from freqfeed import metrics

        server = metrics.MetricsServer(self.config.producer.metrics_listen,
                                       metrics.registry_of(metrics.ProducerCollector(self)))
        try:
            await server.start()
        except OSError as exc:
            log.error("cannot serve metrics on %s: %s (set producer.metrics_listen to a free HOST:PORT, or empty "
                      "to turn them off)", self.config.producer.metrics_listen, exc.strerror or exc)
            return
        self.metrics_server = server

    async def _connect_influxdb(self) -> bool:
        reported = 0.0
        while not self.stopping.is_set():
            try:
                await asyncio.to_thread(self.influx.ping)
                await asyncio.to_thread(self.influx.ensure_database)
                log.info("InfluxDB database %r at %s is ready", self.config.influxdb.database,
                         self.config.influxdb.url)
                return True
            except InfluxDBUnavailable as exc:
                if time.monotonic() - reported > 60:
                    log.error("%s; waiting for InfluxDB before starting", exc)
                    reported = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=5)
        return False

    def _start_task(self, coroutine: Any, name: str) -> None:
        """Run a task for the producer's lifetime; if it dies, the producer stops with exit status 1
        (systemd restarts it, and the start-up backfill closes any gap) instead of running on half-dead."""
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.append(task)

        def check(done: asyncio.Task[Any]) -> None:
            if not done.cancelled() and done.exception() is not None and not self.stopping.is_set():
                log.error("internal task %r failed, stopping", name, exc_info=done.exception())
                self.exit_code = 1
                self.stopping.set()

        task.add_done_callback(check)

    async def _start_up(self) -> None:
        while True:
            try:
                await self.backfill()
                break
            except InfluxDBError as exc:
                log.error("backfill interrupted, InfluxDB: %s; starting it again in 10s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=10)
                if self.stopping.is_set():
                    return
        self._start_task(self._repairer(), "repairer")
        self._start_task(self._watchdog(), "watchdog")
        self._start_task(self._time_sync_loop(), "time sync")

    async def _time_sync_loop(self) -> None:
        """Keep the exchange clock estimate fresh (weight 1 every 30 s)."""
        while True:
            await asyncio.sleep(30)
            await self.rest.sync_time()

    async def _shutdown(self) -> None:
        started = time.monotonic()
        if self.streams is not None:
            try:
                await asyncio.wait_for(self.streams.stop(), timeout=3)
            except Exception as exc:
                log.debug("stopping the streams: %s", exc)
        if self.listing_task is not None:
            self.listing_task.cancel()
        for task in self._tasks:
            if task.get_name() != "writer":
                task.cancel()
        if self.writer.pending and not await self.writer.drain(SHUTDOWN_FLUSH_TIMEOUT):
            log.error("shutdown: %d buffered points not written (InfluxDB unavailable); the next start-up "
                      "backfill fetches them again", self.writer.pending)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.rest.close()
        self.influx.close()
        self._write_health()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        log.info("stopped in %.1fs: %d points written, %d candles streamed, %d fetched over REST",
                 time.monotonic() - started, self.writer.written, self.counters["streamed candles"],
                 self.counters["fetched candles"])


def main(config: Config) -> int:
    return asyncio.run(Producer(config).run())
