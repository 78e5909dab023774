"""The cache snapshot written and read back (freqfeed.exchanges.binance.gateway.snapshot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from freqfeed.exchanges.binance.gateway import snapshot
from freqfeed.exchanges.binance.gateway.series import SeriesCache

P = 60_000


def test_round_trip_restores_the_same_rows(tmp_path: Path) -> None:
    cache = SeriesCache(P, capacity=50)
    cache.load([(t * P, f"[{t}]".encode()) for t in range(40)])
    path = tmp_path / snapshot.NAME
    snapshot.write(path, {"fingerprint": {"x": 1}}, [(("trade", "1m", "BTC/USDT:USDT"), cache)])
    header, kept = snapshot.read(path)
    assert header["fingerprint"] == {"x": 1}
    first, block_rows, blocks, buffer, offsets = kept[("trade", "1m", "BTC/USDT:USDT")]
    assert block_rows == cache.block
    again = SeriesCache(P, capacity=50)
    again.restore(first, blocks, buffer, offsets)
    assert again.loaded and again.rows() == cache.rows() and again.window(10 * P, 5) == cache.window(10 * P, 5)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_damaged_snapshot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / snapshot.NAME
    path.write_bytes(b"something else")
    with pytest.raises(ValueError, match="not a gateway cache snapshot"):
        snapshot.read(path)
    cache = SeriesCache(P, capacity=5)
    cache.load([(t * P, b"[1]") for t in range(5)])
    snapshot.write(path, {}, [(("trade", "1m", "X"), cache)])
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(ValueError, match="cut short"):
        snapshot.read(path)


def test_round_trip_keeps_the_compressed_blocks(tmp_path: Path) -> None:
    cache = SeriesCache(P, capacity=100, hot=10, block=8)
    cache.load([(t * P, f'[{t},"{t * 1.5}"]'.encode()) for t in range(90)])
    assert cache.blocks
    path = tmp_path / snapshot.NAME
    snapshot.write(path, {}, [(("trade", "1m", "X"), cache), (("mark", "1h", "Y"), SeriesCache(P, capacity=5))])
    _, kept = snapshot.read(path)
    first, block_rows, blocks, buffer, offsets = kept[("trade", "1m", "X")]
    assert block_rows == 8 and blocks == cache.blocks
    again = SeriesCache(P, capacity=100, hot=10, block=8)
    again.restore(first, blocks, buffer, offsets)
    assert again.rows() == cache.rows() and again.window(3 * P, 80) == cache.window(3 * P, 80)
    again.extend([(90 * P, b"[90]")])
    assert again.last == 90 * P and again.rows()[-1] == b"[90]"
    empty = kept[("mark", "1h", "Y")]
    assert empty[0] is None  # an empty series is written too, and restores nothing
    nothing = SeriesCache(P, capacity=5)
    nothing.restore(*empty[:1], *empty[2:])
    assert not nothing.loaded


def test_a_snapshot_of_the_earlier_version_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / snapshot.NAME
    path.write_bytes(b"freqfeed-gateway-cache 1\n" + b"\0" * 64)
    with pytest.raises(ValueError, match="another version of the gateway"):
        snapshot.read(path)
