"""candleSnapshot and fundingHistory answered from InfluxDB exactly as Hyperliquid answers them: which stored
points a request needs, and the answer built from them (wire.py's rows), or `Incomplete` when InfluxDB does
not hold all of it (the gateway then forwards: never a partial answer). Pure functions, no I/O, no clock.

- candleSnapshot: the candles from the one containing startTime to the one containing endTime, cut to the
  newest 5000 of the interval and to the candle in progress (wire.candle_window); closed ones from
  `ohlcv_<interval>`, every one of them present; the candle in progress from `live_candle` (what the
  producer's candle subscription last showed), only while fresh (`gateway.live_max_age`);
- fundingHistory: the settlements whose published `time` (the hour plus a few ms) lies in [startTime,
  endTime], oldest first, at most 500 (a client pages on with the last time + 1); every hour of that span
  must be stored with its premium and published time (points written before those fields existed are not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from freqfeed.exchanges.hyperliquid import wire
from freqfeed.exchanges.hyperliquid.wire import InfoRequest
from freqfeed.timeframes import candle_open

CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "trades")
LIVE_FIELDS = (*CANDLE_FIELDS, "event_time")
FUNDING_FIELDS = ("rate", "premium", "published_time")
HOUR_MS = wire.FUNDING_INTERVAL_MS
PUBLISH_JITTER_MS = 59_999  # a rate's published time is within a minute after its hour (the producer's rule)


class Incomplete(Exception):
    """InfluxDB does not hold all the request needs; str() is the reason (logged, counted)."""


@dataclass(frozen=True)
class CandlePlan:
    window: wire.CandleWindow
    closed_last: int | None  # open of the newest closed candle the answer holds (None: none)
    live_open: int | None  # open of the candle in progress, when the answer ends with it

    @property
    def closed_opens(self) -> range:
        period = wire.interval_ms(self.window.interval)
        if self.closed_last is None:
            return range(0)
        return range(self.window.first_open, self.closed_last + period, period)


def candle_plan(request: InfoRequest, now_ms: int) -> CandlePlan:
    """The candles a candleSnapshot answer holds at `now_ms` (the exchange's time)."""
    assert request.interval is not None and request.start_ms is not None
    interval = request.interval
    end = now_ms if request.end_ms is None else request.end_ms
    window = wire.candle_window(request.start_ms, end, now_ms, interval)
    if window.count == 0:
        return CandlePlan(window, None, None)
    current = candle_open(now_ms, interval)
    live = current if window.last_open == current else None
    closed_last = window.last_open if live is None else window.last_open - wire.interval_ms(interval)
    return CandlePlan(window, closed_last if closed_last >= window.first_open else None, live)


def candle_answer(coin: str, plan: CandlePlan, closed: Sequence[Mapping[str, Any]],
                  live: Sequence[Mapping[str, Any]], now_ms: int, live_max_age_ms: int) -> list[dict[str, Any]]:
    """The answer from the stored closed candles and live_candle rows (dicts with `time` and the fields);
    Incomplete naming what is missing."""
    interval = plan.window.interval
    by_open = {int(row["time"]): row for row in closed if _whole(row)}
    opens = plan.closed_opens
    missing = [t for t in opens if t not in by_open]
    if missing:
        raise Incomplete(f"InfluxDB does not hold {len(missing)} of {len(opens)} closed {interval} candles of "
                         f"{coin} (first missing {missing[0]})")
    rows = [_candle(coin, interval, t, by_open[t]) for t in opens]
    if plan.live_open is not None:
        current = [row for row in live if int(row["time"]) == plan.live_open and _whole(row)]
        if not current:
            raise Incomplete(f"no current {interval} candle of {coin} from the producer")
        age = now_ms - int(current[-1].get("event_time") or 0)
        if age > live_max_age_ms:
            raise Incomplete(f"the current {interval} candle of {coin} is stale ({age} ms old)")
        rows.append(_candle(coin, interval, plan.live_open, current[-1]))
    return rows


def _whole(row: Mapping[str, Any]) -> bool:
    """Every field of a candle present (a row read while only part of it is visible counts as missing)."""
    return all(row.get(name) is not None for name in CANDLE_FIELDS)


def _candle(coin: str, interval: str, open_ms: int, row: Mapping[str, Any]) -> dict[str, Any]:
    text = wire.float_string
    return wire.candle_row(coin, interval, open_ms, text(row["open"]), text(row["close"]), text(row["high"]),
                           text(row["low"]), text(row["volume"]), int(row["trades"]))


def funding_span(request: InfoRequest, now_ms: int) -> tuple[int, int] | None:
    """First and last hour whose settlement a fundingHistory answer may hold at `now_ms` (None: the answer is
    empty whatever is stored): enough hours for 500 rows, one more for a first hour published before
    startTime."""
    assert request.start_ms is not None
    end = now_ms if request.end_ms is None else min(request.end_ms, now_ms)
    first = -(-(request.start_ms - PUBLISH_JITTER_MS) // HOUR_MS) * HOUR_MS
    last = min(end // HOUR_MS * HOUR_MS, first + wire.FUNDING_PAGE * HOUR_MS)
    if request.start_ms > end or last < first:
        return None
    return max(first, 0), last


def funding_answer(coin: str, request: InfoRequest, span: tuple[int, int], stored: Sequence[Mapping[str, Any]],
                   now_ms: int) -> list[dict[str, Any]]:
    """The answer from the stored funding points of `span` (dicts with `time` = the hour, rate, premium,
    published_time); Incomplete when an hour of the span is missing or lacks its premium or published time."""
    assert request.start_ms is not None
    end = now_ms if request.end_ms is None else request.end_ms
    by_hour = {int(row["time"]): row for row in stored
               if row.get("premium") is not None and row.get("published_time") is not None}
    hours = range(span[0], span[1] + 1, HOUR_MS)
    missing = [h for h in hours if h not in by_hour]
    if missing:
        raise Incomplete(f"InfluxDB does not hold {len(missing)} of {len(hours)} funding rates of {coin} with "
                         f"their published time (first missing {missing[0]})")
    rows = [wire.funding_row(coin, wire.float_string(by_hour[h]["rate"]), wire.float_string(by_hour[h]["premium"]),
                             int(by_hour[h]["published_time"])) for h in hours]
    return [row for row in rows if request.start_ms <= row["time"] <= end][:wire.FUNDING_PAGE]
