"""The InfluxDB schema shared by the producer (writes) and the sync, reader, data provider and gateway (reads).

    ohlcv_<timeframe>  tags exchange, pair   fields open, high, low, close, volume (float),
                                                    quote_volume, taker_buy_volume, taker_buy_quote_volume
                                                    (float), trades (integer)
    mark_price         tags exchange, pair   fields open, high, low, close (float), 1h candles
    funding_rate       tags exchange, pair   fields rate, mark_price (float), one point per settled funding time
    live_candle        tags exchange, pair, timeframe, price (trade|mark)
                                             fields as ohlcv_<timeframe> (mark: open, high, low, close), and
                                                    event_time (integer, exchange ms of the update);
                                                    mark: next_funding_time (integer ms)

On Hyperliquid (tag exchange=hyperliquid): no `mark_price` series (has_mark_series); candles have no
quote_volume or taker-buy volumes, `trades` is the candle's `n`; funding rates hourly, with fields `premium`
(float) and `published_time` (integer ms: fundingHistory's `time`, with its jitter) besides `rate`, so the
gateway answers fundingHistory exactly as Hyperliquid did.

Time is the candle open time (funding: the funding time). The first three hold closed candles and
settled rates only, so a point is written once per candle and rewriting it (backfill after a
reconnect) is idempotent. `live_candle` holds the candle in progress of each series as the producer's
live streams last saw it, rewritten in place (same time) about once a second: what the gateway answers
as the last row of a klines request, as Binance does.

quote_volume, trades and the taker-buy volumes were added with the gateway; points written before have
only the OHLCV fields, and the producer fetches those candles again (counting `trades`, not `close`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from freqfeed import exchanges
from freqfeed.config import EXCHANGES
from freqfeed.influxql import Select, quote_identifier, quote_literal
from freqfeed.timeframes import timeframe_ms

__all__ = ["Select", "quote_identifier", "quote_literal"]  # re-exported: the schema's queries are Selects

EXCHANGE = "binance"  # the `exchange` tag of every point: exchange.name (use_exchange); one exchange per process
OHLCV_FIELDS = ("open", "high", "low", "close", "volume")
KLINE_EXTRA_FIELDS = ("quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume")
KLINE_FIELDS = OHLCV_FIELDS + KLINE_EXTRA_FIELDS  # everything of a Binance kline row
COMPLETE_FIELD = "trades"  # a candle with it was written with every kline field
MARK_MEASUREMENT = "mark_price"
MARK_FIELDS = ("open", "high", "low", "close")
MARK_TIMEFRAME = "1h"  # freqtrade's mark_ohlcv_timeframe for Binance
FUNDING_MEASUREMENT = "funding_rate"
FUNDING_FIELDS = ("rate",)
FUNDING_ALL_FIELDS = ("rate", "mark_price")
LIVE_MEASUREMENT = "live_candle"
LIVE_TRADE, LIVE_MARK = "trade", "mark"


def ohlcv_measurement(timeframe: str) -> str:
    return f"ohlcv_{timeframe}"


@dataclass(frozen=True, slots=True)
class Candle:
    open_time: int  # epoch ms
    open: float
    high: float
    low: float
    close: float
    volume: float
    # the rest of Binance's kline (None for mark candles, which have none)
    quote_volume: float | None = None
    trades: int | None = None
    taker_buy_volume: float | None = None
    taker_buy_quote_volume: float | None = None

    @property
    def extras(self) -> tuple[float | None, int | None, float | None, float | None]:
        return self.quote_volume, self.trades, self.taker_buy_volume, self.taker_buy_quote_volume


@dataclass(frozen=True, slots=True)
class FundingRate:
    time: int  # epoch ms of the funding settlement
    rate: float
    mark_price: float | None = None
    # Hyperliquid's fundingHistory row as published, for the gateway to answer it again exactly
    premium: float | None = None
    published: int | None = None  # its `time`, a few ms after the hour


def has_mark_series(exchange: str) -> bool:
    """Whether `mark_price` holds the exchange's 1h mark candles. Hyperliquid has none: freqtrade uses its 1h
    futures candles as mark candles there (`mark_ohlcv_price: "futures"` in freqtrade's hyperliquid.py)."""
    return exchanges.get(exchange).has_mark_series


def funding_has_mark_price(exchange: str) -> bool:
    """Whether the exchange's settled funding rates carry the mark price (Binance's do; Hyperliquid's
    fundingHistory has none, so `mark_price` stays empty there and is no sign of rates to fetch again)."""
    return exchanges.get(exchange).funding_has_mark_price


def use_exchange(name: str) -> None:
    """Tag what this process writes and reads with `name` (config's exchange.name): Binance's and Hyperliquid's
    series of one pair (BTC/USDC:USDC is listed on both) stay apart in one database. Called once at start-up by
    the producer and the sync (modules that copied EXCHANGE at import keep Binance's)."""
    global EXCHANGE
    if name not in EXCHANGES:
        raise ValueError(f"unknown exchange {name!r} (expected one of {', '.join(EXCHANGES)})")
    if name != EXCHANGE:
        EXCHANGE = name
        _series_key.cache_clear()
        _live_key.cache_clear()


@lru_cache(maxsize=16_384)
def _series_key(measurement: str, pair: str) -> str:
    """Measurement and tag set of a series, escaped by influxdb_client (which owns the escaping)."""
    from influxdb_client import Point  # only writers need it (slow to import)

    line = str(Point(measurement).tag("exchange", EXCHANGE).tag("pair", pair).field("x", 0.0).to_line_protocol())
    return line[: -len(" x=0")]


def _number(value: float) -> str:
    text = str(value)  # exactly as influxdb_client's Point formats a float field
    return text[:-2] if text.endswith(".0") else text


def candle_line(measurement: str, pair: str, candle: Candle) -> str:
    """One candle as line protocol, identical to influxdb_client's Point output (tested), but with the
    series' escaped measurement and tags computed once: this is the producer's hot path."""
    return f"{_series_key(measurement, pair)} {_candle_fields(candle, measurement != MARK_MEASUREMENT)} " \
           f"{candle.open_time}"


def _candle_fields(candle: Candle, with_volume: bool) -> str:
    """The fields in Point's order (sorted by name); non-finite floats left out, as Point does."""
    fields: list[tuple[str, float | int | None]] = [(name, value) for name, value in (
        ("close", candle.close), ("high", candle.high), ("low", candle.low), ("open", candle.open))]
    if with_volume:
        quote, trades, taker, taker_quote = candle.extras
        fields += [("volume", candle.volume), ("quote_volume", quote), ("taker_buy_quote_volume", taker_quote),
                   ("taker_buy_volume", taker)]
        if trades is not None:
            fields.append(("trades", trades))
    return ",".join(f"{name}={_number(value) if isinstance(value, float) else f'{value}i'}"
                    for name, value in sorted(fields)
                    if value is not None and (not isinstance(value, float) or math.isfinite(value)))


def funding_line(pair: str, funding: FundingRate) -> str:
    from influxdb_client import Point, WritePrecision

    point = (
        Point(FUNDING_MEASUREMENT)
        .tag("exchange", EXCHANGE)
        .tag("pair", pair)
        .field("rate", funding.rate)
        .time(funding.time, WritePrecision.MS)
    )
    if funding.mark_price is not None:
        point.field("mark_price", funding.mark_price)
    if funding.premium is not None:
        point.field("premium", funding.premium)
    if funding.published is not None:
        point.field("published_time", int(funding.published))
    return str(point.to_line_protocol())


@lru_cache(maxsize=16_384)
def _live_key(pair: str, timeframe: str, price: str) -> str:
    from influxdb_client import Point

    line = str(Point(LIVE_MEASUREMENT).tag("exchange", EXCHANGE).tag("pair", pair).tag("price", price)
               .tag("timeframe", timeframe).field("x", 0.0).to_line_protocol())
    return line[: -len(" x=0")]


def live_line(pair: str, timeframe: str, price: str, candle: Candle, event_ms: int,
              next_funding_ms: int | None = None) -> str:
    """The candle in progress of one series (price "trade" or "mark") as Binance's stream last showed it;
    mark candles also carry the next funding time the markPrice stream announced."""
    fields = _candle_fields(candle, price == LIVE_TRADE) + f",event_time={int(event_ms)}i"
    if next_funding_ms is not None:
        fields += f",next_funding_time={int(next_funding_ms)}i"
    return f"{_live_key(pair, timeframe, price)} {fields} {candle.open_time}"


FUTURE_MARGIN_MS = 86_400_000  # reads reach this far past "now" (a clock ahead of this host's, a fast simulator)


def density_ms(measurement: str) -> int:
    """The usual spacing of a measurement's points, a hint for servers that limit one query's scan."""
    if measurement.startswith("ohlcv_"):
        return timeframe_ms(measurement[len("ohlcv_"):])
    if measurement == MARK_MEASUREMENT:
        return timeframe_ms(MARK_TIMEFRAME)
    if measurement == FUNDING_MEASUREMENT:
        return timeframe_ms("1h")  # the shortest funding interval Binance uses
    return 0


def retention_floor(now_ms: int, days: int) -> int:
    """The oldest time a database with a `days` retention can hold."""
    return now_ms - days * 86_400_000


def _pair_tags(pair: str | None) -> tuple[tuple[str, str], ...]:
    return (("exchange", EXCHANGE),) if pair is None else (("exchange", EXCHANGE), ("pair", pair))


def series_select(measurement: str, fields: Sequence[str], pair: str, since_ms: int, until_ms: int, *,
                  newest: int | None = None) -> Select:
    """One series between two times (inclusive); with `newest`, only its newest rows (newest first)."""
    return Select(measurement, tuple(fields), since_ms, until_ms, tags=_pair_tags(pair), newest=newest,
                  density_ms=density_ms(measurement))


def pairs_select(measurement: str, fields: Sequence[str], pairs: Sequence[str], since_ms: int, until_ms: int, *,
                 newest: int | None = None) -> Select:
    """Several series of one measurement between two times, in one statement grouped by pair; with `newest`,
    the newest rows of each."""
    return Select(measurement, tuple(fields), since_ms, until_ms, tags=_pair_tags(None), any_of=("pair", tuple(pairs)),
                  group_by=("pair",), newest=newest, density_ms=density_ms(measurement))


def _value_field(measurement: str) -> str:
    return "rate" if measurement == FUNDING_MEASUREMENT else "close"


def last_times_select(measurement: str, since_ms: int, until_ms: int) -> Select:
    """Newest point per pair, for every pair of one measurement (one grouped query)."""
    return Select(measurement, (_value_field(measurement),), since_ms, until_ms, tags=_pair_tags(None),
                  group_by=("pair",), aggregate="last", density_ms=density_ms(measurement))


def first_times_select(measurement: str, since_ms: int, until_ms: int, pairs: Sequence[str] | None = None) -> Select:
    """Oldest point per pair between two times (one grouped query)."""
    return Select(measurement, (_value_field(measurement),), since_ms, until_ms, tags=_pair_tags(None),
                  any_of=("pair", tuple(pairs)) if pairs is not None else None, group_by=("pair",),
                  aggregate="first", density_ms=density_ms(measurement))


def counts_select(measurement: str, since_ms: int, until_ms: int, field: str | None = None, *,
                  pairs: Sequence[str] | None = None, every_ms: int | None = None) -> Select:
    """Number of points per pair between two times (one grouped query); `field` counts points that have it;
    `pairs` only those; `every_ms` per time bucket (e.g. a day) rather than in all."""
    return Select(measurement, (field or _value_field(measurement),), since_ms, until_ms, tags=_pair_tags(None),
                  any_of=("pair", tuple(pairs)) if pairs is not None else None, group_by=("pair",),
                  aggregate="count", density_ms=density_ms(measurement), every_ms=every_ms)
