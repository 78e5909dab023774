"""Binance's own websocket client, its pure parts: addresses, connection splitting within Binance's limits,
control messages, backoff, the wire format of stream events, and what the producer's streams report for every
kind of frame (events, answers, error frames, the simulator's malformed frames)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from freqfeed import config
from freqfeed.exchanges.base import MarkPrice, StreamEvents
from freqfeed.exchanges.binance import wire
from freqfeed.exchanges.binance.streams import LiveStreams, stream_plan
from freqfeed.exchanges.binance.websocket import (
    Connection,
    StreamSocket,
    control_messages,
    next_delay,
    split_streams,
    stream_url,
)
from freqfeed.schema import Candle

PAIRS = [f"C{i}/USDT:USDT" for i in range(300)]


def make_config(pairs: list[str], trading_mode: str = "futures", timeframes: list[str] | None = None) -> config.Config:
    return config.from_mapping({"influxdb": {"url": "http://127.0.0.1:8086", "database": "market"},
                                "pairs": pairs, "trading_mode": trading_mode,
                                "timeframes": timeframes or ["3m", "15m", "1h"]}, "host.yml", {})


def test_stream_url_puts_the_streams_in_the_address() -> None:
    assert stream_url("ws://h:1/market/", ["b@kline_3m", "a@kline_3m"]) == \
        "ws://h:1/market/stream?streams=a@kline_3m/b@kline_3m"
    assert stream_url("wss://fstream.binance.com/public", []) == "wss://fstream.binance.com/public/stream"


def test_streams_are_split_within_the_per_connection_limit() -> None:
    names = [f"s{i}" for i in range(450)]
    chunks = split_streams(names, wire.FUTURES.max_streams_per_connection)
    assert [len(c) for c in chunks] == [200, 200, 50]
    assert [n for c in chunks for n in c] == names
    assert split_streams([], 200) == []
    with pytest.raises(ValueError, match="at least 1"):
        split_streams(names, 0)


def test_control_messages_batch_100_names_with_increasing_ids() -> None:
    messages = control_messages("SUBSCRIBE", [f"s{i}" for i in range(250)], 7)
    assert [(m["method"], len(m["params"]), m["id"]) for m in messages] == \
        [("SUBSCRIBE", 100, 7), ("SUBSCRIBE", 100, 8), ("SUBSCRIBE", 50, 9)]
    assert control_messages("UNSUBSCRIBE", [], 1) == []


def test_backoff_doubles_and_is_capped() -> None:
    delays = [1.0]
    for _ in range(7):
        delays.append(next_delay(delays[-1], 30.0))
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_connection_never_carries_more_streams_than_binance_allows() -> None:
    async def scenario() -> None:
        socket = StreamSocket("ws://127.0.0.1:9", _Listener(), max_streams=3, silence=10)
        with pytest.raises(ValueError, match="Binance allows 3"):
            socket.add(["a", "b", "c", "d"])
        conn = Connection(0, {"a", "b"})
        socket.subscribe(conn, ["a", "c"])
        assert conn.streams == {"a", "b", "c"} and conn.pending_subscribe == ["c"]
        with pytest.raises(ValueError, match="more than 3"):
            socket.subscribe(conn, ["d"])
        socket.unsubscribe(conn, ["a", "zzz"])
        assert conn.streams == {"b", "c"} and conn.pending_unsubscribe == ["a"]
        assert socket.connections == []

    asyncio.run(scenario())


def test_the_producer_plan_keeps_one_label_per_timeframe_and_the_limits() -> None:
    plan = stream_plan(make_config(PAIRS, timeframes=["1m", "3m", "5m", "15m", "1h"]))
    assert [label for label, _ in plan] == ["klines 1m", "klines 3m", "klines 5m", "klines 15m", "klines 1h",
                                            "markPrice"]
    assert all(len(streams) == 300 for _, streams in plan)
    assert plan[1][1][0] == "c0usdt@kline_3m" and plan[-1][1][0] == "c0usdt@markPrice@1s"
    connections = sum(len(split_streams(s, wire.FUTURES.max_streams_per_connection)) for _, s in plan)
    assert connections == 12  # 1,800 streams, as with cryptofeed (docs/performance.md)
    spot = stream_plan(make_config(["BTC/USDT"], "spot"))
    assert [label for label, _ in spot] == ["klines 3m", "klines 15m", "klines 1h"]  # no mark price on spot


ROW = [1_700_000_000_000, "100.5", "101", "99.5", "100.75", "12.5", 1_700_000_179_999, "1259.4", 42, "6.25", "629.7",
       "0"]


def test_kline_events_keep_every_binance_field() -> None:
    event = wire.kline_event("BTCUSDT", ROW, "3m", closed=True, event_ms=1_700_000_180_001)
    update = wire.kline_update(json.loads(json.dumps(event)))
    assert update == wire.KlineUpdate("BTCUSDT", "3m", True, 1_700_000_180_001,
                                      Candle(ROW[0], 100.5, 101.0, 99.5, 100.75, 12.5, 1259.4, 42, 6.25, 629.7))


def test_mark_price_events() -> None:
    premium = wire.premium_index("BTCUSDT", mark_price="100.1", index_price="100", estimated_settle_price="99",
                                 last_funding_rate="0.0001", interest_rate="0.0001",
                                 next_funding_time=1_700_006_400_000, time_ms=1)
    update = wire.mark_price_update(wire.mark_price_event(premium, event_ms=5))
    assert update == wire.MarkPriceUpdate("BTCUSDT", 100.1, 0.0001, 1_700_006_400_000, 5)
    delivery = wire.mark_price_update({"e": "markPriceUpdate", "E": 5, "s": "X", "p": "1", "r": "", "T": 0})
    assert (delivery.funding_rate, delivery.next_funding_ms) == (None, None)


def test_combined_frames_answers_and_errors() -> None:
    assert wire.combined_event('{"stream":"a@kline_3m","data":{"e":"kline"}}') == ("a@kline_3m", {"e": "kline"})
    assert wire.combined_event('{"result":null,"id":1}') is None
    error = '{"error":{"code":2,"msg":"Invalid request: too many streams"}}'
    assert wire.combined_event(error) is None
    assert wire.frame_error(error) == "2: Invalid request: too many streams"
    assert wire.frame_error('{"result":null,"id":1}') is None
    for bad, why in (("this is not json {", "Expecting value"), ("[1, 2]", "not a JSON object"),
                     ('{"stream": "a"}', "neither a stream event nor an answer")):
        with pytest.raises(ValueError, match=why):
            wire.combined_event(bad)


class _Listener:
    async def on_message(self, conn: Connection, text: str) -> bool:
        return True

    def on_up(self, conn: Connection, reconnect: bool) -> None: ...

    def on_down(self, conn: Connection, reason: str, retry_in: float) -> None: ...


class Recorder(StreamEvents):
    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    async def on_candle(self, pair: str, timeframe: str, candle: Candle) -> None:
        self.seen.append(("closed", pair, timeframe, candle.open_time))

    def on_live_candle(self, pair: str, timeframe: str, candle: Candle, event_ms: int) -> None:
        self.seen.append(("live", pair, timeframe, event_ms))

    async def on_mark_price(self, update: MarkPrice) -> None:
        self.seen.append(("mark", update))

    def on_connect(self, label: str, reconnect: bool) -> None:
        self.seen.append(("connect", label, reconnect))

    def on_disconnect(self, label: str, reason: str, retry_in: float) -> None:
        self.seen.append(("disconnect", label, reason, retry_in))

    def on_malformed(self, label: str, error: str, message: str) -> None:
        self.seen.append(("malformed", label, error.split(":", maxsplit=1)[0]))


def combined(stream: str, event: dict[str, Any]) -> str:
    return json.dumps({"stream": stream, "data": event})


def test_the_producer_streams_report_every_kind_of_frame() -> None:
    events = Recorder()
    streams = LiveStreams(make_config(["BTC/USDT:USDT"]), {}, events)
    conn = Connection(0, {"btcusdt@kline_3m"}, label="klines 3m")
    premium = wire.premium_index("BTCUSDT", mark_price="100.1", index_price="100", estimated_settle_price="99",
                                 last_funding_rate="0.0001", interest_rate="0", next_funding_time=9, time_ms=1)
    frames = [
        combined("btcusdt@kline_3m", wire.kline_event("BTCUSDT", ROW, "3m", closed=False, event_ms=11)),
        combined("btcusdt@kline_3m", wire.kline_event("BTCUSDT", ROW, "3m", closed=True, event_ms=12)),
        combined("btcusdt@markPrice@1s", wire.mark_price_event(premium, event_ms=13)),
        '{"result":null,"id":1}',
        # the simulator's malformed frames: not JSON, no "k", an unknown symbol, not a number
        "this is not json {",
        combined("btcusdt@kline_3m", {"e": "kline", "E": 1, "s": "BTCUSDT"}),
        combined("nosuchusdt@kline_3m", wire.kline_event("NOSUCHUSDT", ROW, "3m", closed=True, event_ms=1)),
        combined("btcusdt@kline_3m", {"e": "kline", "E": 1, "s": "BTCUSDT",
                                      "k": {"t": 0, "T": 1, "s": "BTCUSDT", "i": "3m", "o": "NaN?", "x": True}}),
    ]

    async def feed() -> list[bool]:
        return [await streams.on_message(conn, frame) for frame in frames]

    counted = asyncio.run(feed())
    assert counted == [True, True, True, False, True, True, True, True]  # an answer is no stream event
    assert events.seen[:3] == [("live", "BTC/USDT:USDT", "3m", 11), ("closed", "BTC/USDT:USDT", "3m", ROW[0]),
                               ("mark", MarkPrice("BTC/USDT:USDT", 100.1, 0.0001, 9, 13))]
    assert events.seen[3:] == [("malformed", "klines 3m", "JSONDecodeError"), ("malformed", "klines 3m", "KeyError"),
                               ("malformed", "klines 3m", "KeyError"), ("malformed", "klines 3m", "ValueError")]
    streams.on_up(conn, True)
    streams.on_down(conn, "closed by the server (1000)", 2.0)
    assert events.seen[-2:] == [("connect", "klines 3m", True), ("disconnect", "klines 3m",
                                                                 "closed by the server (1000)", 2.0)]
