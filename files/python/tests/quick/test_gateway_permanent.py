"""Immutable answers kept across restarts (freqfeed.exchanges.binance.gateway.permanent)."""

from __future__ import annotations

import json
from pathlib import Path

from freqfeed.exchanges.binance.gateway.permanent import PermanentAnswers, immutable, request_key

H = 3_600_000
NOW = 1_000 * H


def klines(first: int, count: int, period: int = H) -> bytes:
    return json.dumps([[first + i * period, "1", "1", "1", "1", "0", first + (i + 1) * period - 1, "0", 0, "0", "0",
                        "0"] for i in range(count)]).encode()


def test_only_full_closed_windows_with_a_start_are_immutable() -> None:
    probe = {"symbol": "BTCUSDT", "interval": "1h", "startTime": "0", "limit": "3"}
    assert request_key("klines", probe) is not None
    assert request_key("klines", {"symbol": "BTCUSDT", "interval": "1h"}) is None  # the newest: changes
    assert request_key("depth", {"symbol": "BTCUSDT", "startTime": "0"}) is None
    assert immutable("klines", probe, klines(10 * H, 3), NOW)
    assert not immutable("klines", probe, klines(10 * H, 2), NOW)  # short: reaches the present
    assert not immutable("klines", probe, klines(NOW - 2 * H, 3), NOW)  # the last row is not closed
    assert immutable("klines", {**probe, "endTime": str(12 * H)}, klines(10 * H, 2), NOW)
    assert not immutable("klines", probe, b"[]", NOW) and not immutable("klines", probe, b"{", NOW)
    funding = {"symbol": "BTCUSDT", "startTime": "0", "limit": "2"}
    assert immutable("fundingRate", funding, json.dumps([{"fundingTime": H}, {"fundingTime": 9 * H}]).encode(), NOW)
    assert not immutable("fundingRate", funding, json.dumps([{"fundingTime": NOW}] * 2).encode(), NOW)


def test_kept_across_restarts_atomically_and_bounded(tmp_path: Path) -> None:
    store = PermanentAnswers(tmp_path)
    params = {"symbol": "BTCUSDT", "interval": "1h", "startTime": "0", "limit": "3"}
    body = klines(10 * H, 3)
    assert store.get("klines", params) is None
    assert not store.offer("klines", params, 429, body, NOW)
    assert store.offer("klines", params, 200, body, NOW)
    assert store.get("klines", params) == body
    assert store.get("klines", {**params, "limit": "4"}) is None
    again = PermanentAnswers(tmp_path)  # a restart
    assert again.get("klines", params) == body and again.status()["answers"] == 1
    assert not list((tmp_path / "permanent").glob("*.tmp"))
    small = PermanentAnswers(tmp_path, max_entries=2)
    for start in range(1, 6):
        assert small.offer("klines", {**params, "startTime": str(start * H)}, 200, klines(start * H, 3), NOW)
    assert small.status()["answers"] == 2 and len(list((tmp_path / "permanent").iterdir())) == 2
    assert small.get("klines", {**params, "startTime": str(5 * H)}) is not None


def test_an_unwritable_directory_disables_the_store_loudly(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = PermanentAnswers(blocker)
    assert not store.enabled and store.status()["error"]
    assert not store.offer("klines", {"symbol": "B", "interval": "1h", "startTime": "0", "limit": "3"}, 200,
                           klines(10 * H, 3), NOW)


def test_disabled_without_a_directory() -> None:
    store = PermanentAnswers(None)
    assert not store.enabled and store.get("klines", {"startTime": "0"}) is None
