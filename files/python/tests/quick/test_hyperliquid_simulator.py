"""The Hyperliquid simulator's market and publisher logic, without a server (HyperliquidMarket is the truth
the integration tests compare against, so its own rules are pinned here)."""

from __future__ import annotations

from freqfeed.exchanges.hyperliquid import wire
from freqfeed.exchanges.hyperliquid.simulator import MAJORS, HyperliquidMarket, HyperliquidSimulator
from freqfeed.simulator.clock import SimClock
from freqfeed.timeframes import candle_open

START = 1_767_225_600_000 + 37 * 60_000 + 12_345  # 2026-01-01 00:37:12.345
MINUTE, HOUR = 60_000, 3_600_000


def test_coins_as_meta_spells_them() -> None:
    market = HyperliquidMarket(3, extra_coins=2, start_ms=START)
    names = [a.name for a in market.assets]
    assert names[:len(MAJORS)] == list(MAJORS) and names[-2:] == ["SIM001", "SIM002"]
    assert names.index("MATIC") == 3 and market.assets[3].delisted and "kPEPE" in names
    assert market.candle_rows("KPEPE", "1m", 0, START, START) == []  # coins are case-sensitive
    assert market.candle_rows("kPEPE", "1m", START - MINUTE, START, START)


def test_candle_snapshot_horizon_and_candle_in_progress() -> None:
    market = HyperliquidMarket(3, start_ms=START)
    rows = market.candle_rows("BTC", "3m", 0, START + HOUR, START)
    assert len(rows) == 5000 and rows[0]["t"] == wire.horizon_first_open(START, "3m")
    assert rows[-1]["t"] == candle_open(START, "3m")
    assert rows[-1] == market.current_candle("BTC", "3m", START)
    assert rows[-2] == market.final_candle("BTC", "3m", rows[-2]["t"])
    assert rows[-1] != market.final_candle("BTC", "3m", rows[-1]["t"])  # 1 of its 3 minutes has started
    assert all(float(r["l"]) <= min(float(r["o"]), float(r["c"])) <= max(float(r["o"]), float(r["c"])) <= float(r["h"])
               for r in rows[-50:])
    later = market.candle_rows("BTC", "3m", 0, START + HOUR, START + 3 * MINUTE)
    assert later[0]["t"] == rows[1]["t"]  # the horizon moved by one candle
    assert later[:-2] == rows[1:-1]  # and the past is the same past


def test_funding_hourly_pages_with_jitter() -> None:
    market = HyperliquidMarket(3, start_ms=START)
    rows = market.funding_rows("BTC", START - 800 * HOUR, None, START)
    assert len(rows) == 500
    hours = [wire.funding_hour(r["time"]) for r in rows]
    assert hours == list(range(hours[0], hours[0] + 500 * HOUR, HOUR))
    assert any(r["time"] != wire.funding_hour(r["time"]) for r in rows)  # ms jitter, as Hyperliquid's
    rest = market.funding_rows("BTC", rows[-1]["time"] + 1, None, START)
    assert wire.funding_hour(rest[0]["time"]) == hours[-1] + HOUR
    assert wire.funding_hour(rest[-1]["time"]) == candle_open(START, "1h")  # settled hours only


def test_delisted_coins_stop_but_keep_their_index() -> None:
    market = HyperliquidMarket(3, start_ms=START)
    market.delist("SOL", START)
    assert market.assets[5].name == "SOL" and market.assets[5].delisted
    rows = market.candle_rows("SOL", "1m", START - 10 * MINUTE, START + HOUR, START + HOUR)
    assert rows[-1]["t"] == candle_open(START - 1, "1m")  # nothing after the delisting
    assert market.current_candle("SOL", "1m", START + HOUR) is None
    book = market.book("SOL", START + HOUR)
    assert book is not None and book["levels"] == [[], []]
    assert "SOL" not in market.mids(START + HOUR)


def test_the_last_update_of_a_candle_is_its_final_state() -> None:
    clock = SimClock(START, 1.0)
    simulator = HyperliquidSimulator(HyperliquidMarket(3, start_ms=START), clock)
    sub = wire.candle_subscription("BTC", "3m")
    key = ("candle", "BTC", "3m", None, None)
    first = candle_open(START, "3m")
    [update] = simulator._candle_messages("BTC", "3m", key, first + 10_000, real=0.0)
    assert update["data"]["t"] == first and sub.interval == "3m"
    # the next candle has started; the subscriber last saw the old one after its first minute
    messages = simulator._candle_messages("BTC", "3m", key, first + 3 * MINUTE + 5_000, real=0.01)
    assert [m["data"]["t"] for m in messages] == [first, first + 3 * MINUTE]
    assert messages[0]["data"] == simulator.market.final_candle("BTC", "3m", first)
