"""The exchange clock (freqfeed.exchanges.base.ExchangeClock): offset and rate from /time samples."""

from __future__ import annotations

import pytest

from freqfeed.exchanges import base as exchange
from freqfeed.exchanges.base import ExchangeClock

SERVER = 1_795_572_000_000


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [500.0]
    monkeypatch.setattr(exchange.time, "monotonic", lambda: now[0])
    return now


def test_unsynced_clock_is_the_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exchange.time, "time", lambda: 1234.5678)
    clock = ExchangeClock()
    assert not clock.synced and clock.now() == 1_234_567 and clock.rate == 1.0


def test_offset_from_the_middle_of_the_round_trip(local: list[float]) -> None:
    clock = ExchangeClock()
    clock.observe(499.8, 500.2, SERVER)  # the answer was made half-way: at 500.0
    assert clock.synced and clock.now() == SERVER
    local[0] += 2.5
    assert clock.now() == SERVER + 2500
    assert clock.real_seconds(60_000) == 60.0


def test_rate_of_a_fast_simulator(local: list[float]) -> None:
    clock = ExchangeClock()
    clock.observe(500.0, 500.0, SERVER)
    clock.observe(500.5, 500.5, SERVER + 30_000)  # under a second apart: too short to tell the rate
    assert clock.rate == 1.0
    clock.observe(502.0, 502.0, SERVER + 120_000)  # 120 s of exchange time in 2 s
    assert clock.rate == pytest.approx(60.0)
    local[0] = 503.0
    assert clock.now() == SERVER + 120_000 + 60_000
    assert clock.real_seconds(60_000) == pytest.approx(1.0)


def test_a_rate_within_two_percent_is_real_time(local: list[float]) -> None:
    clock = ExchangeClock()
    clock.observe(500.0, 500.0, SERVER)
    clock.observe(600.0, 600.0, SERVER + 101_500)  # 1.5% fast: network jitter, not a simulator
    assert clock.rate == 1.0
    clock.observe(700.0, 700.0, SERVER + 210_000)  # 5% fast over 200 s
    assert clock.rate == pytest.approx(1.05)


def test_a_clock_that_stands_still_or_goes_back_keeps_a_positive_rate(local: list[float]) -> None:
    clock = ExchangeClock()
    clock.observe(500.0, 500.0, SERVER)
    clock.observe(510.0, 510.0, SERVER - 5_000)
    assert clock.rate == pytest.approx(1e-3)
    assert clock.real_seconds(1000) > 0
