"""Live Binance streams through cryptofeed (pinned 2.4.1): closed candles and mark-price updates.

Kept only for bench/stream_client_bench.py: freqfeed's streams.py as it was on main before its own websocket
client replaced it (needs `pip install cryptofeed==2.4.1`, no longer a dependency). Not used by freqfeed.

What freqfeed adds around cryptofeed's Binance feeds:
- the websocket base comes from `exchange.ws_url` (default the routed futures base
  wss://fstream.binance.com/market, where klines and markPrice are delivered since 2026-04-23;
  cryptofeed's default bare host no longer delivers them); plain ws:// works for a local simulator;
- symbols come from the exchange info the producer already fetched (no second, blocking request);
- candles in progress are passed on too (for the gateway's last row, through InfluxDB), with every field
  of Binance's kline (quote volume, trades, taker-buy volumes), which cryptofeed's Candle leaves out;
- futures mark price from `@markPrice@1s`, every second;
- a malformed frame is logged and skipped instead of tearing the connection down;
- reconnects never give up (cryptofeed raises ExhaustedRetries after 10) and back off at most 30 s,
  and every (re)connect and disconnect is reported, so the producer can repair over REST what was
  missed while the connection was down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from cryptofeed import FeedHandler
from cryptofeed.connection import WebsocketEndpoint, WSAsyncConn
from cryptofeed.connection_handler import ConnectionHandler
from cryptofeed.defines import CANDLES, FUNDING, PERPETUAL, SPOT
from cryptofeed.exchanges import Binance, BinanceFutures
from cryptofeed.symbols import Symbol, Symbols

from freqfeed.config import Config
from freqfeed.exchanges.base import MarkPrice, StreamEvents
from freqfeed.schema import Candle

log = logging.getLogger(__name__)

MAX_RECONNECT_DELAY = 30.0
SILENCE_TIMEOUT = 90  # seconds without any message before cryptofeed's own watcher reconnects


def cryptofeed_symbol(pair: str, futures: bool) -> str:
    """BTC/USDT:USDT -> BTC-USDT-PERP; BTC/USDT -> BTC-USDT."""
    base, quote = pair.split(":", 1)[0].split("/")
    return Symbol(base, quote, type=PERPETUAL if futures else SPOT).normalized


class _ReportingConnectionHandler(ConnectionHandler):
    """cryptofeed's connection loop with infinite retries, a capped backoff and connect/disconnect reports."""

    def __init__(self, *args: Any, events: StreamEvents, label: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events = events
        self.label = label

    async def _create_connection(self) -> None:
        await asyncio.sleep(self.start_delay)
        delay = 1.0
        connected_before = False
        while self.running:
            try:
                async with self.conn.connect() as connection:
                    await self.authenticate(connection)
                    await self.subscribe(connection)
                    self.events.on_connect(self.label, connected_before)
                    connected_before = True
                    delay = 1.0
                    if self.timeout != -1:
                        asyncio.get_running_loop().create_task(self._watcher())
                    await self._handler(connection, self.handler)
                reason = "connection closed"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means: reconnect
                reason = f"{type(exc).__name__}: {exc}"[:300]
            if not self.running:
                break
            self.events.on_disconnect(self.label, reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY)


def _feed_class(futures: bool, ws_url: str, events: StreamEvents) -> type[Any]:
    base: type[Any] = BinanceFutures if futures else Binance
    scheme, rest = ws_url.split("://", 1)
    plain = scheme == "ws"

    class FreqfeedBinance(base):
        # cryptofeed accepts wss:// addresses only; a ws:// simulator address is restored in connect()
        websocket_endpoints = [WebsocketEndpoint(f"wss://{rest}", options={"compression": None})]
        # futures: the mark price every second (the candle in progress of the mark price is built from it)
        websocket_channels = {**base.websocket_channels, **({FUNDING: "markPrice@1s"} if futures else {})}

        def connect(self) -> list[Any]:
            connections: list[Any] = super().connect()
            if plain:
                for conn, *_ in connections:
                    if isinstance(conn, WSAsyncConn) and conn.address.startswith("wss://"):
                        conn.address = "ws://" + conn.address[len("wss://"):]
            return connections

        async def message_handler(self, msg: str, conn: Any, timestamp: float) -> None:
            try:
                await super().message_handler(msg, conn, timestamp)
            except Exception as exc:
                events.on_malformed(self.label, f"{type(exc).__name__}: {exc}", msg[:200])

        def start(self, loop: asyncio.AbstractEventLoop) -> None:
            for conn, subscribe, handler, authenticate in self.connect():
                connection_handler = _ReportingConnectionHandler(
                    conn, subscribe, handler, authenticate, -1, timeout=self.timeout,
                    timeout_interval=self.timeout_interval, exceptions=self.exceptions,
                    log_on_error=False, start_delay=self.start_delay, events=events, label=self.label)
                self.connection_handlers.append(connection_handler)
                connection_handler.start(loop)

    return FreqfeedBinance


class LiveStreams:
    """One cryptofeed feed per candle timeframe, plus mark price (futures), in one FeedHandler."""

    def __init__(self, config: Config, exchange_info: dict[str, Any], events: StreamEvents,
                 timeframes: Sequence[str] | None = None) -> None:
        self.config = config
        self.events = events
        futures = config.futures
        self.feed_class = _feed_class(futures, config.exchange.ws_url, events)
        Symbols.set(self.feed_class.id, *self.feed_class._parse_symbol_data(exchange_info))
        self.to_pair = {cryptofeed_symbol(pair, futures): pair for pair in config.pairs}
        self.handler = FeedHandler(config={"log": {"disabled": True}, "uvloop": False})
        feed_config = {"log": {"disabled": True}, "uvloop": False}
        symbols = list(self.to_pair)
        for timeframe in timeframes or config.timeframes:
            feed = self.feed_class(symbols=symbols, channels=[CANDLES], candle_interval=timeframe,
                                   candle_closed_only=False, callbacks={CANDLES: self._candle}, config=feed_config,
                                   timeout=SILENCE_TIMEOUT, retries=-1)
            feed.label = f"klines {timeframe}"
            self.handler.add_feed(feed)
        if futures:
            feed = self.feed_class(symbols=symbols, channels=[FUNDING], callbacks={FUNDING: self._funding},
                                   config=feed_config, timeout=SILENCE_TIMEOUT, retries=-1)
            feed.label = "markPrice"
            self.handler.add_feed(feed)

    def start(self) -> None:
        """Start every feed's connections in the running event loop."""
        self.handler.run(start_loop=False, install_signal_handlers=False)

    async def stop(self) -> None:
        await self.handler.stop_async()

    async def _candle(self, candle: Any, receipt_timestamp: float) -> None:
        pair = self.to_pair.get(candle.symbol)
        if pair is None:
            return
        event = candle.raw.get("data", candle.raw)  # the kline event, unwrapped from a combined stream
        k = event["k"]
        parsed = Candle(int(k["t"]), float(k["o"]), float(k["h"]), float(k["l"]), float(k["c"]), float(k["v"]),
                        float(k["q"]), int(k["n"]), float(k["V"]), float(k["Q"]))
        if candle.closed:
            await self.events.on_candle(pair, candle.interval, parsed)
        else:
            self.events.on_live_candle(pair, candle.interval, parsed, int(event["E"]))

    async def _funding(self, funding: Any, receipt_timestamp: float) -> None:
        pair = self.to_pair.get(funding.symbol)
        if pair is None:
            return
        await self.events.on_mark_price(MarkPrice(
            pair, float(funding.mark_price), float(funding.rate) if funding.rate is not None else None,
            round(funding.next_funding_time * 1000) if funding.next_funding_time else None,
            round(funding.timestamp * 1000)))
