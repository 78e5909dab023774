"""The gateway's compact per-series cache (freqfeed.gateway.series)."""

from __future__ import annotations

from freqfeed.gateway.series import SeriesCache

P = 60_000


def row(t: int) -> bytes:
    return f'[{t},"1.0","2.0"]'.encode()


def candles(first: int, count: int, holes: tuple[int, ...] = ()) -> list[tuple[int, bytes | None]]:
    return [(first + i * P, None if i in holes else row(first + i * P)) for i in range(count)]


def test_load_keeps_the_newest_contiguous_run_within_capacity() -> None:
    cache = SeriesCache(P, capacity=5)
    assert not cache.loaded and cache.last is None and cache.window(0, 1) is None
    cache.load(candles(0, 10, holes=(7,)))
    assert cache.loaded and cache.first == 8 * P and cache.last == 9 * P and len(cache) == 2
    cache.load(candles(0, 10))
    assert cache.first == 5 * P and cache.rows() == [row(t * P) for t in range(5, 10)]


def test_window_is_the_exact_rows_or_none() -> None:
    cache = SeriesCache(P, capacity=100)
    cache.load(candles(0, 10))
    assert cache.window(2 * P, 3) == b",".join(row(t * P) for t in (2, 3, 4))
    assert cache.window(0, 10) == b",".join(row(t * P) for t in range(10))
    assert cache.window(8 * P, 3) is None  # beyond the newest
    assert cache.window(2 * P + 1, 1) is None  # not an open time
    assert cache.window(-P, 2) is None  # before the first
    assert cache.window(0, 0) is None


def test_extend_appends_until_a_hole_and_trims_in_batches() -> None:
    cache = SeriesCache(P, capacity=20)
    cache.load(candles(0, 20))
    cache.extend(candles(20 * P, 5, holes=(3,)))  # 20, 21, 22 then a hole at 23
    assert cache.last == 22 * P
    cache.extend(candles(20 * P, 8))  # the hole filled: continues
    assert cache.last == 27 * P
    for step in range(30):  # many single appends: the buffer stays bounded
        cache.extend([((28 + step) * P, row((28 + step) * P))])
    assert cache.last == 57 * P and len(cache) <= cache.capacity + cache.slack
    assert cache.window(cache.last - 19 * P, 20) == b",".join(row(t * P) for t in range(38, 58))
    assert cache.rows()[-1] == row(57 * P) and cache.first == cache.last - (len(cache) - 1) * P


def test_a_gap_deeper_than_the_cache_starts_over_instead_of_stalling() -> None:
    cache = SeriesCache(P, capacity=10)
    cache.load(candles(0, 10))
    cache.extend(candles(100 * P, 10))  # e.g. InfluxDB was away for longer than the cache is deep
    assert cache.first == 100 * P and cache.last == 109 * P
    cache.extend([(110 * P, None)])
    assert cache.last == 109 * P


def test_memory_is_about_the_rows_bytes() -> None:
    cache = SeriesCache(P, capacity=1500)
    cache.load(candles(0, 1500))
    row_bytes = sum(len(row(t * P)) + 1 for t in range(1500))
    assert cache.nbytes <= row_bytes * 1.2 + 4 * 1501
