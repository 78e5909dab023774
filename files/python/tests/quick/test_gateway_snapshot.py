"""The cache snapshot written and read back (freqfeed.gateway.snapshot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from freqfeed.gateway import snapshot
from freqfeed.gateway.series import SeriesCache

P = 60_000


def test_round_trip_restores_the_same_rows(tmp_path: Path) -> None:
    cache = SeriesCache(P, capacity=50)
    cache.load([(t * P, f"[{t}]".encode()) for t in range(40)])
    path = tmp_path / snapshot.NAME
    snapshot.write(path, {"fingerprint": {"x": 1}}, [(("trade", "1m", "BTC/USDT:USDT"), cache.first,
                                                      cache.buffer, cache.offsets)])
    header, kept = snapshot.read(path)
    assert header["fingerprint"] == {"x": 1}
    first, buffer, offsets = kept[("trade", "1m", "BTC/USDT:USDT")]
    again = SeriesCache(P, capacity=50)
    again.restore(first, buffer, offsets)
    assert again.loaded and again.rows() == cache.rows() and again.window(10 * P, 5) == cache.window(10 * P, 5)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_damaged_snapshot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / snapshot.NAME
    path.write_bytes(b"something else")
    with pytest.raises(ValueError, match="not a gateway cache snapshot"):
        snapshot.read(path)
    cache = SeriesCache(P, capacity=5)
    cache.load([(t * P, b"[1]") for t in range(5)])
    snapshot.write(path, {}, [(("trade", "1m", "X"), cache.first, cache.buffer, cache.offsets)])
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(ValueError, match="cut short"):
        snapshot.read(path)
