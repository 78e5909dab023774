"""The simulator's data source: deterministic prices, independent of any wire protocol.

Every 1m candle is a pure function of (seed, symbol, minute), computed in integer ticks and lots,
so any timeframe is an exact aggregate of its 1m candles (first open, max high, min low, last
close, summed volume) and any window can be produced without replaying history. Mark prices and
funding rates are derived the same way, and so is the order book: a pure function of (seed,
symbol, time) that changes every 100 ms, centred on the current 1m candle's close. A later data
source (candles read from InfluxDB) can stand in for this class behind the same interface.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from freqfeed.timeframes import candle_open, timeframe_ms

MINUTE_MS = 60_000
FUNDING_INTERVAL_MS = 8 * 3_600_000
BOOK_LEVELS = 1000  # per side
BOOK_UPDATE_MS = 100  # the book changes every 100 ms of exchange time

_MAJORS = {
    "BTC": 90_000.0, "ETH": 3_000.0, "BNB": 600.0, "SOL": 150.0, "XRP": 0.6, "DOGE": 0.15, "ADA": 0.45,
    "AVAX": 30.0, "LINK": 15.0, "DOT": 6.0, "LTC": 80.0, "TRX": 0.12, "ATOM": 8.0, "NEAR": 5.0,
    "APT": 9.0, "ARB": 0.9, "OP": 1.8, "FIL": 5.0, "INJ": 25.0, "SUI": 1.5,
}
UNIVERSE_SIZE = 400  # USD-M perpetuals listed (Binance lists about 500): room for a 300-pair scale test


@dataclass(frozen=True)
class Instrument:
    symbol: str  # BTCUSDT
    base: str
    quote: str
    price_decimals: int
    quantity_decimals: int
    base_price: float


@dataclass(frozen=True)
class Candles:
    """Candles as parallel arrays; prices in ticks (10^-price_decimals), volume in lots."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    trades: np.ndarray

    def __len__(self) -> int:
        return len(self.open_time)


@dataclass(frozen=True)
class Book:
    """An order book at one moment: prices in ticks, quantities in lots, as (levels, 2) int64 arrays of
    [price, quantity]; bids best (highest) first, asks best (lowest) first. `update_id` grows with time:
    one per BOOK_UPDATE_MS, the book being the same for every moment with the same update id."""

    update_id: int
    transaction_ms: int
    bids: np.ndarray
    asks: np.ndarray


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of each value."""
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _unit(values: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic floats in [0, 1)."""
    with np.errstate(over="ignore"):
        hashed = _mix(values.astype(np.uint64) * np.uint64(2654435761) + np.uint64(salt))
    return (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _salt(seed: int, *parts: str) -> int:
    digest = hashlib.blake2b(f"{seed}|{'|'.join(parts)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class Market:
    def __init__(self, seed: int = 1) -> None:
        self.seed = seed
        self.instruments: dict[str, Instrument] = {}
        names = list(_MAJORS) + [f"SIM{i:03d}" for i in range(1, UNIVERSE_SIZE - len(_MAJORS) + 1)]
        for name in names:
            price = _MAJORS.get(name) or 10 ** (_unit(np.array([_salt(seed, name)]), 7)[0] * 5 - 2)
            decimals = max(1, min(8, 5 - int(np.floor(np.log10(price)))))
            symbol = f"{name}USDT"
            self.instruments[symbol] = Instrument(symbol, name, "USDT", decimals, 3, float(price))
        self._closes: dict[tuple[str, int], int] = {}

    def instrument(self, symbol: str) -> Instrument:
        return self.instruments[symbol]

    # -- 1m candles -----------------------------------------------------------------------------

    def _close_ticks(self, inst: Instrument, minutes: np.ndarray) -> np.ndarray:
        salt = _salt(self.seed, inst.symbol)
        phase = _unit(np.array([salt, salt + 1, salt + 2]), 3) * 2 * np.pi
        m = minutes.astype(np.float64)
        log_move = (0.08 * np.sin(2 * np.pi * m / 10_080 + phase[0])
                    + 0.02 * np.sin(2 * np.pi * m / 1_440 + phase[1])
                    + 0.004 * np.sin(2 * np.pi * m / 97 + phase[2])
                    + 0.002 * (_unit(minutes, salt) - 0.5))
        price = inst.base_price * np.exp(log_move)
        return np.maximum(1, np.round(price * 10**inst.price_decimals)).astype(np.int64)

    def minute_candles(self, symbol: str, first_minute: int, count: int, *, mark: bool = False) -> Candles:
        inst = self.instruments[symbol]
        minutes = np.arange(first_minute - 1, first_minute + count, dtype=np.int64)
        closes = self._close_ticks(inst, minutes)
        if mark:
            salt = _salt(self.seed, inst.symbol, "mark")
            closes = closes + np.round((_unit(minutes, salt) - 0.5) * closes * 0.0004).astype(np.int64)
            closes = np.maximum(closes, 1)
        opens, closes = closes[:-1], closes[1:]
        minutes = minutes[1:]
        salt = _salt(self.seed, inst.symbol, "range" if not mark else "mark-range")
        spread = np.maximum(1, (np.abs(closes - opens) * 0.5 + closes * 0.0005)).astype(np.float64)
        highs = np.maximum(opens, closes) + np.floor(_unit(minutes, salt) * spread).astype(np.int64)
        lows = np.minimum(opens, closes) - np.floor(_unit(minutes, salt + 1) * spread).astype(np.int64)
        lows = np.maximum(lows, 1)
        if mark:
            volume = np.zeros(count, dtype=np.int64)
            trades = np.zeros(count, dtype=np.int64)
        else:
            vsalt = _salt(self.seed, inst.symbol, "volume")
            scale = 10**inst.quantity_decimals * max(1.0, 200_000 / inst.base_price)
            volume = np.floor((_unit(minutes, vsalt) + 0.05) * scale).astype(np.int64)
            trades = (10 + np.floor(_unit(minutes, vsalt + 1) * 500)).astype(np.int64)
        return Candles(minutes * MINUTE_MS, opens, highs, lows, closes, volume, trades)

    # -- any timeframe --------------------------------------------------------------------------

    def candles(self, symbol: str, timeframe: str, first_open: int, count: int, *, mark: bool = False) -> Candles:
        """`count` consecutive candles of `timeframe` starting at the candle that opens at `first_open`."""
        if count <= 0:
            return Candles(*(np.empty(0, dtype=np.int64) for _ in range(7)))
        period = timeframe_ms(timeframe)
        first_open = candle_open(first_open, timeframe)
        per = period // MINUTE_MS
        ones = self.minute_candles(symbol, first_open // MINUTE_MS, count * per, mark=mark)
        if per == 1:
            return ones

        def shaped(values: np.ndarray) -> np.ndarray:
            return values.reshape(count, per)

        return Candles(
            open_time=first_open + np.arange(count, dtype=np.int64) * period,
            open=shaped(ones.open)[:, 0],
            high=shaped(ones.high).max(axis=1),
            low=shaped(ones.low).min(axis=1),
            close=shaped(ones.close)[:, -1],
            volume=shaped(ones.volume).sum(axis=1),
            trades=shaped(ones.trades).sum(axis=1),
        )

    def partial_candle(self, symbol: str, timeframe: str, now_ms: int, *, mark: bool = False) -> Candles:
        """The in-progress candle at `now_ms`: an aggregate of its minutes that have started."""
        start = candle_open(now_ms, timeframe)
        started_minutes = (now_ms - start) // MINUTE_MS + 1
        ones = self.minute_candles(symbol, start // MINUTE_MS, int(started_minutes), mark=mark)
        return Candles(np.array([start]), ones.open[:1], np.array([ones.high.max()]),
                       np.array([ones.low.min()]), ones.close[-1:], np.array([ones.volume.sum()]),
                       np.array([ones.trades.sum()]))

    # -- order book -----------------------------------------------------------------------------

    def minute_close(self, symbol: str, minute: int) -> int:
        """Close (ticks) of the 1m candle of `minute` (ms // 60000): the instrument's current price
        while that minute runs, as the in-progress candle shows it."""
        key = (symbol, minute)
        close = self._closes.get(key)
        if close is None:
            if len(self._closes) > 100_000:
                self._closes.clear()
            close = int(self._close_ticks(self.instruments[symbol], np.array([minute], dtype=np.int64))[0])
            self._closes[key] = close
        return close

    def book(self, symbol: str, at_ms: int, levels: int = BOOK_LEVELS) -> Book:
        """The order book of `symbol` at `at_ms`, its best `levels` per side (at most BOOK_LEVELS; a
        shallower book is the top of the deeper one).

        The close of the current 1m candle lies between the best bid and the best ask (the bid 0-2
        ticks at or below it, the ask 1-3 ticks above); levels are 1-3 ticks apart, the same gaps at
        every moment; quantities change with every update. Everything is a pure function of (seed,
        symbol, update id).
        """
        inst = self.instruments[symbol]
        levels = max(0, min(levels, BOOK_LEVELS))
        update_id = at_ms // BOOK_UPDATE_MS
        close = self.minute_close(symbol, at_ms // MINUTE_MS)
        salt = _salt(self.seed, symbol, "book")
        offsets = np.floor(_unit(np.array([update_id * 2, update_id * 2 + 1], dtype=np.int64), salt) * 3)
        best_bid = max(1, close - int(offsets[0]))
        best_ask = close + 1 + int(offsets[1])
        index = np.arange(levels, dtype=np.int64)
        scale = 10**inst.quantity_decimals * max(1.0, 2_000 / inst.base_price)

        def side(best: int, direction: int, part: int) -> np.ndarray:
            gaps = 1 + np.floor(_unit(index, salt + 10 + part) * 3).astype(np.int64)
            gaps[:1] = 0
            prices = best + direction * np.cumsum(gaps)
            quantity_unit = _unit(update_id * (2 * BOOK_LEVELS) + part * BOOK_LEVELS + index, salt + 20)
            quantities = 1 + np.floor(quantity_unit**2 * scale).astype(np.int64)
            rows = np.stack([prices, quantities], axis=1) if levels else np.empty((0, 2), dtype=np.int64)
            return rows[rows[:, 0] >= 1]

        return Book(int(update_id), int(update_id * BOOK_UPDATE_MS), side(best_bid, -1, 0), side(best_ask, 1, 1))

    # -- funding --------------------------------------------------------------------------------

    def funding_times(self, start_ms: int, end_ms: int) -> np.ndarray:
        """Funding settlement times in [start_ms, end_ms] (every 8 h at 00, 08, 16 UTC)."""
        first = -(-start_ms // FUNDING_INTERVAL_MS) * FUNDING_INTERVAL_MS
        if first > end_ms:
            return np.empty(0, dtype=np.int64)
        return np.arange(first, end_ms + 1, FUNDING_INTERVAL_MS, dtype=np.int64)

    def funding_rates(self, symbol: str, times: np.ndarray) -> np.ndarray:
        """Rates in units of 1e-8 for the given funding times."""
        salt = _salt(self.seed, symbol, "funding")
        return np.round((_unit(times // FUNDING_INTERVAL_MS, salt) * 0.0006 - 0.0001) * 1e8).astype(np.int64)

    def next_funding_time(self, now_ms: int) -> int:
        return (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS

