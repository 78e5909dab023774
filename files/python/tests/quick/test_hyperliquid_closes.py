"""Close inference for Hyperliquid's `candle` channel, which has no closed flag (streams.CandleCloser)."""

from __future__ import annotations

from typing import Any

from freqfeed.exchanges.hyperliquid import wire
from freqfeed.exchanges.hyperliquid.streams import CandleCloser, Close, Gap

M = 60_000
T0 = 1_767_225_600_000


def row(t: int, close: str = "1.0", coin: str = "BTC", interval: str = "1m") -> dict[str, Any]:
    return wire.candle_row(coin, interval, t, "1.0", close, "1.0", "1.0", "1.0", 1)


def test_a_later_candle_closes_the_previous_one_as_last_seen() -> None:
    closer = CandleCloser()
    assert closer.update(row(T0, "1.0")) == ([], [])
    assert closer.update(row(T0, "2.0")) == ([], [])  # an update of the candle in progress
    closes, gaps = closer.update(row(T0 + M, "3.0"))
    assert closes == [Close(row(T0, "2.0"), "next")] and gaps == []
    assert closer.update(row(T0, "9.0")) == ([], [])  # a late update of a closed candle changes nothing
    assert closer.update(row(T0 + M, "4.0")) == ([], [])


def test_series_are_independent() -> None:
    closer = CandleCloser()
    closer.update(row(T0, coin="BTC"))
    closer.update(row(T0, coin="kPEPE"))
    closer.update(row(T0, coin="BTC", interval="3m"))
    closes, _ = closer.update(row(T0 + M, coin="kPEPE"))
    assert [c.row["s"] for c in closes] == ["kPEPE"]


def test_the_end_passing_closes_a_quiet_candle_once() -> None:
    closer = CandleCloser(grace_s=2.0)
    closer.update(row(T0))
    assert closer.expire(T0 + M - 1, real_s=100.0) == []  # T = T0 + M - 1 has not passed
    assert closer.expire(T0 + M + 30_000, real_s=100.0) == []  # passed: the grace starts, in real seconds
    assert closer.expire(T0 + 5 * M, real_s=101.9) == []  # a fast exchange clock does not shorten it
    assert closer.expire(T0 + 5 * M, real_s=102.0) == [Close(row(T0), "end")]
    assert closer.expire(T0 + 6 * M, real_s=200.0) == []
    closes, _ = closer.update(row(T0 + M))  # its successor does not close it twice
    assert closes == []


def test_a_jump_reports_the_missed_candles() -> None:
    closer = CandleCloser()
    closer.update(row(T0))
    closes, gaps = closer.update(row(T0 + 4 * M))
    assert [c.row["t"] for c in closes] == [T0]
    assert gaps == [Gap("BTC", "1m", T0 + M, T0 + 3 * M)]


def test_forget_after_a_disconnect() -> None:
    closer = CandleCloser()
    closer.update(row(T0))
    closer.forget()
    assert closer.update(row(T0 + M)) == ([], [])  # the last update seen before the drop is not trusted
    assert closer.expire(T0 + 10 * M, real_s=0.0) == []
    assert closer.expire(T0 + 10 * M, real_s=5.0) == [Close(row(T0 + M), "end")]


def test_an_update_held_back_across_the_end_replaces_what_the_end_inferred() -> None:
    """A stream that stalls across a close (no message for a while, connection up) and then delivers what it
    held back: the end closed the candle as last seen; its final state, arriving later, is reported again."""
    closer = CandleCloser(grace_s=2.0)
    closer.update(row(T0, "1.0"))
    closer.expire(T0 + M + 1, real_s=10.0)
    assert closer.expire(T0 + 2 * M, real_s=12.0) == [Close(row(T0, "1.0"), "end")]
    assert closer.update(row(T0, "2.0")) == ([Close(row(T0, "2.0"), "late")], [])  # the final state, late
    assert closer.update(row(T0, "2.0")) == ([], [])  # the same again: nothing new
    assert closer.update(row(T0 + M, "3.0")) == ([], [])  # the successor closes nothing twice
    assert closer.update(row(T0, "4.0")) == ([], [])  # closed by its successor since: no longer replaced
