"""The weight limiter (freqfeed.ratelimit) on a fake exchange clock and a fake monotonic clock."""

from __future__ import annotations

import asyncio

import pytest

from freqfeed import ratelimit
from freqfeed.ratelimit import RateLimited, WeightLimiter

MINUTE = 60_000


class FakeClock:
    """The exchange's clock: `rate` exchange seconds per real second."""

    def __init__(self, now_ms: int, rate: float = 1.0) -> None:
        self.ms, self.rate = now_ms, rate

    def now(self) -> int:
        return self.ms

    def real_seconds(self, exchange_ms: float) -> float:
        return exchange_ms / 1000 / self.rate


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    return now


def limiter(clock: FakeClock, limit: int = 2400, share: float = 0.5) -> WeightLimiter:
    return WeightLimiter(clock, weight_limit=limit, share=share, exchange="Binance")


def test_budget_is_the_share_of_the_limit() -> None:
    assert limiter(FakeClock(0)).budget == 1200
    assert limiter(FakeClock(0), limit=6000, share=0.33).budget == 1980


def test_room_until_the_budget_then_the_minutes_rest() -> None:
    clock = FakeClock(10 * MINUTE + 45_000)
    lim = limiter(clock, limit=100, share=0.5)
    asyncio.run(lim.acquire(40, endpoint="klines"))
    assert lim.check(10) == 0.0, "50 of 50 fits"
    assert lim.check(11) == pytest.approx(15.05), "past the budget: wait for the next minute (15 s + margin)"
    clock.rate = 60.0
    assert lim.check(11) == pytest.approx(15 / 60 + 0.05), "the wait is in real seconds on a fast simulator"
    assert lim.stats.requests == 1 and lim.stats.weight == 40 and lim.stats.by_endpoint == {"klines": 1}


def test_a_new_minute_resets_the_count() -> None:
    clock = FakeClock(10 * MINUTE)
    lim = limiter(clock, limit=100, share=0.5)
    asyncio.run(lim.acquire(50))
    assert lim.used_weight == 50 and lim.check(1) > 0
    clock.ms += MINUTE
    assert lim.used_weight == 0 and lim.check(50) == 0.0
    assert lim.stats.weight_last_minutes(10) == 50 and lim.stats.weight_last_minutes(11) == 0
    assert lim.stats.weight_last_minutes(11, minutes=2) == 50


def test_binances_count_wins_over_ours() -> None:
    clock = FakeClock(10 * MINUTE)
    lim = limiter(clock, limit=100, share=0.5)
    asyncio.run(lim.acquire(5))
    lim.observe({"x-mbx-used-weight-1m": "48"})  # any case: headers from aiohttp or requests
    assert lim.used_weight == 48 and lim.stats.peak_used_weight == 48
    assert lim.check(3) > 0 and lim.check(2) == 0.0
    lim.observe({"X-MBX-USED-WEIGHT-1M": "abc"})  # not a number: ignored
    lim.observe({})
    assert lim.used_weight == 48
    lim.observe({"X-Mbx-Used-Weight-1m": "7"})
    assert lim.used_weight == 7 and lim.stats.peak_used_weight == 48


def test_max_wait_refuses_instead_of_waiting() -> None:
    clock = FakeClock(10 * MINUTE + 30_000)
    lim = limiter(clock, limit=100, share=0.5)
    asyncio.run(lim.acquire(50))
    with pytest.raises(RateLimited) as raised:
        asyncio.run(lim.acquire(1, max_wait=5))
    assert raised.value.status == 429 and raised.value.retry_after == pytest.approx(30.05)
    assert "weight budget spent: 50 of 50 this minute (50% of 100)" in raised.value.reason
    assert lim.stats.requests == 1, "a refused request is not counted"


def test_429_pauses_for_retry_after(monotonic: list[float]) -> None:
    lim = limiter(FakeClock(0))
    assert lim.rejected(429, {"Retry-After": "7"}) == 7.0
    assert lim.paused_for() == 7.0 and lim.stats.rate_limited == 1
    with pytest.raises(RateLimited, match="rate limited by Binance") as raised:
        lim.check(1)
    assert (raised.value.status, raised.value.retry_after) == (429, 7.0)
    with pytest.raises(RateLimited):
        asyncio.run(lim.acquire(1, max_wait=60))  # paused: refused at once, whatever max_wait
    monotonic[0] += 7
    assert lim.paused_for() == 0.0 and lim.check(1) == 0.0


def test_418_bans_and_a_shorter_429_does_not_shorten_it(monotonic: list[float]) -> None:
    lim = limiter(FakeClock(0))
    lim.rejected(418, {"retry-after": "120"}, "banned")
    lim.rejected(429, {"Retry-After": "5"})
    assert lim.paused_for() == 120.0
    assert lim.stats.banned == 1 and lim.stats.rate_limited == 1
    monotonic[0] += 119
    with pytest.raises(RateLimited):
        lim.check(1)
    monotonic[0] += 1
    assert lim.check(1) == 0.0


@pytest.mark.parametrize(("headers", "seconds"), [({}, 60.0), ({"Retry-After": "soon"}, 60.0),
                                                  ({"Retry-After": "nan"}, 60.0), ({"Retry-After": "inf"}, 60.0),
                                                  ({"Retry-After": "-3"}, 0.0), ({"Retry-After": "2.5"}, 2.5)])
def test_retry_after_that_is_missing_or_odd(monotonic: list[float], headers: dict[str, str], seconds: float) -> None:
    assert limiter(FakeClock(0)).rejected(429, headers) == seconds


def test_old_minutes_are_forgotten() -> None:
    clock = FakeClock(0)
    lim = limiter(clock, limit=10**6, share=1.0)
    for minute in range(100):
        clock.ms = minute * MINUTE
        asyncio.run(lim.acquire(1))
    assert min(lim.stats.by_minute) >= 99 - 60 and len(lim.stats.by_minute) <= 61, "bounded to the last hour"
