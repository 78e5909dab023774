"""Live Binance streams for the producer: closed candles, candles in progress and mark price, through freqfeed's
own websocket client (websocket.StreamSocket, shared with the gateway's books; why not cryptofeed: its docstring).

- the websocket base comes from `exchange.ws_url` (default the routed futures base
  wss://fstream.binance.com/market, where klines and markPrice are delivered since 2026-04-23); plain ws://
  works for a local simulator;
- one label per timeframe (`klines 3m`) and `markPrice` (futures, `@markPrice@1s`, every second), each on as
  many connections as Binance's per-connection stream limit needs; the producer repairs a timeframe over REST
  when one of its connections comes back;
- candles in progress are passed on too (for the gateway's last row, through InfluxDB), with every field of
  Binance's kline (quote volume, trades, taker-buy volumes), parsed in wire.py;
- a malformed frame (not JSON, a field missing, an unknown symbol, not a number) is reported and skipped: it
  never costs the connection;
- reconnects never give up and back off at most 30 s, and every (re)connect and disconnect is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from freqfeed.config import Config, exchange_symbol
from freqfeed.exchanges.base import MarkPrice, StreamEvents
from freqfeed.exchanges.binance import wire
from freqfeed.exchanges.binance.websocket import Connection, StreamSocket

log = logging.getLogger(__name__)

SILENCE_TIMEOUT = 90.0  # seconds without a stream event before a connection is replaced
MARK_LABEL = "markPrice"


def stream_plan(config: Config, timeframes: Sequence[str] | None = None) -> list[tuple[str, list[str]]]:
    """(label, stream names) the producer subscribes: klines per timeframe, then mark price (futures)."""
    symbols = [exchange_symbol(pair) for pair in config.pairs]
    plan = [(f"klines {tf}", [wire.kline_stream(s, tf) for s in symbols]) for tf in timeframes or config.timeframes]
    if config.futures:
        plan.append((MARK_LABEL, [wire.mark_price_stream(s) for s in symbols]))
    return plan


class LiveStreams:
    """The producer's Binance streams: parse each event (wire.py) and report it to StreamEvents."""

    def __init__(self, config: Config, exchange_info: dict[str, Any], events: StreamEvents,
                 timeframes: Sequence[str] | None = None) -> None:
        self.config = config
        self.events = events
        self.to_pair = {exchange_symbol(pair): pair for pair in config.pairs}
        market = wire.market_info("futures" if config.futures else "spot")
        self.plan = stream_plan(config, timeframes)
        self.socket = StreamSocket(config.exchange.ws_url, self, max_streams=market.max_streams_per_connection,
                                   silence=SILENCE_TIMEOUT)

    def start(self) -> None:
        """Open every connection in the running event loop."""
        for label, streams in self.plan:
            self.socket.open(streams, label)

    async def stop(self) -> None:
        await self.socket.close()

    # -- websocket.Listener ------------------------------------------------------------------------

    def on_up(self, conn: Connection, reconnect: bool) -> None:
        self.events.on_connect(conn.label, reconnect)

    def on_down(self, conn: Connection, reason: str, retry_in: float) -> None:
        self.events.on_disconnect(conn.label, reason, retry_in)

    async def on_message(self, conn: Connection, text: str) -> bool:
        try:
            event = wire.combined_event(text)
            if event is None:
                error = wire.frame_error(text)
                if error is not None:
                    log.error("%s stream: Binance answered %s", conn.label, error)
                return False
            data = event[1]
            kind = data.get("e")
            if kind == "kline":
                kline = wire.kline_update(data)
                pair = self.to_pair[kline.symbol]
                if kline.closed:
                    await self.events.on_candle(pair, kline.interval, kline.candle)
                else:
                    self.events.on_live_candle(pair, kline.interval, kline.candle, kline.event_ms)
            elif kind == "markPriceUpdate":
                mark = wire.mark_price_update(data)
                await self.events.on_mark_price(MarkPrice(self.to_pair[mark.symbol], mark.mark_price,
                                                          mark.funding_rate, mark.next_funding_ms, mark.event_ms))
            else:
                raise ValueError(f"unexpected event type {kind!r}")
        except KeyError as exc:
            self.events.on_malformed(conn.label, f"KeyError: {exc} (missing or unknown)", text[:200])
        except (ValueError, TypeError, AttributeError) as exc:
            self.events.on_malformed(conn.label, f"{type(exc).__name__}: {exc}", text[:200])
        return True
