"""The gateway's compact per-series cache (freqfeed.exchanges.binance.gateway.series)."""

from __future__ import annotations

from freqfeed.exchanges.binance.gateway.series import BlockCache, SeriesCache

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


# -- the older rows in compressed blocks ---------------------------------------------------------


def real_rows(first: int, count: int) -> list[tuple[int, bytes]]:
    """Rows of candles `first` .. `first + count - 1` (numbered from open time 0)."""
    return [((first + i) * P, f'[{(first + i) * P},"{100 + i * 0.37:.2f}","{i * 13 % 97}.5",{i},"0"]'.encode())
            for i in range(count)]


def test_every_window_across_blocks_equals_the_plain_answer_byte_for_byte() -> None:
    plain = SeriesCache(P, capacity=100, hot=1000)  # never compresses: the reference
    packed = SeriesCache(P, capacity=100, hot=10, block=8)
    data = real_rows(0, 100)
    plain.load(data)
    packed.load(data)
    assert len(packed.blocks) == 11 and len(packed) == 100 and packed.rows() == plain.rows()
    assert packed.nbytes < plain.nbytes
    for start in range(0, 100):
        for count in (1, 2, 7, 8, 9, 15, 16, 17, 50, 100 - start):
            if start + count <= 100:
                assert packed.window(start * P, count) == plain.window(start * P, count), (start, count)
    assert packed.window(95 * P, 6) is None and packed.window(-P, 3) is None and not packed.covers(0, 101)
    assert isinstance(packed.view(90 * P, 5), memoryview)  # the newest rows: no copy, no decompression


def test_appends_compress_a_block_at_a_time_and_drop_whole_blocks() -> None:
    plain = SeriesCache(P, capacity=40, hot=1000)
    packed = SeriesCache(P, capacity=40, hot=10, block=8)
    data = real_rows(0, 300)
    plain.load(data[:5])
    packed.load(data[:5])
    for index in range(5, 300):
        plain.extend([data[index]])
        packed.extend([data[index]])
        plain_rows = len(packed.offsets) - 1
        assert 10 <= plain_rows < 18 or len(packed) < 18  # a block compressed every 8 appends
        assert packed.capacity <= len(packed) < packed.capacity + packed.block or len(packed) == index + 1
        assert packed.last == data[index][0]
        low = max(packed.first or 0, plain.first or 0)
        count = (packed.last - low) // P + 1
        assert packed.window(low, count) == plain.window(low, count)
    assert len(packed) - packed.capacity < packed.block  # old rows dropped a whole block at a time
    assert packed.first == packed.last - (len(packed) - 1) * P


def test_holes_and_deep_gaps_with_blocks() -> None:
    packed = SeriesCache(P, capacity=40, hot=10, block=8)
    packed.load(real_rows(0, 40))
    packed.extend([(40 * P, real_rows(40, 1)[0][1]), (41 * P, None), (42 * P, b"[42]")])  # stops at the hole
    assert packed.last == 40 * P
    packed.extend(real_rows(41, 3))  # filled
    assert packed.last == 43 * P and packed.window(41 * P, 3) == b",".join(row for _, row in real_rows(41, 3))
    packed.extend(real_rows(500, 30))  # deeper than the cache: starts over
    assert packed.first == 500 * P and packed.last == 529 * P and packed.blocks
    assert packed.window(500 * P, 30) == b",".join(row for _, row in real_rows(500, 30))
    packed.load([*real_rows(0, 30), (30 * P, None), *real_rows(31, 20)])  # a hole in a load: the run after it
    assert packed.first == 31 * P and len(packed) == 20


def test_adopt_takes_over_a_cache_loaded_elsewhere() -> None:
    built = SeriesCache(P, capacity=40, hot=10, block=8)  # as a worker thread loads it
    built.load(real_rows(0, 40))
    cache = SeriesCache(P, capacity=40, hot=10, block=8)
    cache.adopt(built)
    assert cache.loaded and cache.rows() == built.rows() and cache.last == 39 * P
    cache.extend(real_rows(40, 1))
    assert cache.last == 40 * P


def as_bytes(view: memoryview | bytes | None) -> bytes | None:
    return bytes(view) if view is not None else None


def test_windows_through_the_block_cache_are_the_same_bytes_and_decompress_once() -> None:
    plain = SeriesCache(P, capacity=100, hot=1000)
    packed = SeriesCache(P, capacity=100, hot=10, block=8)
    data = real_rows(0, 100)
    plain.load(data)
    packed.load(data)
    blocks = BlockCache(10_000_000)
    for start in range(0, 100, 3):
        for count in (1, 8, 9, 17, 100 - start):
            if start + count <= 100:
                assert as_bytes(packed.view(start * P, count, blocks)) == plain.window(start * P, count), (start, count)
    assert blocks.misses == len(packed.blocks) and len(blocks.entries) == len(packed.blocks)
    hits = blocks.hits
    assert as_bytes(packed.view(0, 90, blocks)) == plain.window(0, 90)
    assert blocks.hits == hits + len(packed.blocks) and blocks.misses == len(packed.blocks)  # no new zlib work


def test_the_block_cache_stays_within_its_bytes_dropping_the_least_recently_used() -> None:
    packed = SeriesCache(P, capacity=100, hot=10, block=8)
    packed.load(real_rows(0, 100))
    one = len(packed.blocks[0]) + len(BlockCache(10**9).get(packed.blocks[0]))  # a block's cost: kept + key
    blocks = BlockCache(3 * one + one // 2)  # room for three blocks (all about the same size)
    for index in range(len(packed.blocks)):
        packed.view(index * 8 * P, 8, blocks)
        assert blocks.nbytes <= blocks.max_bytes and len(blocks.entries) <= 3
    assert list(blocks.entries) == packed.blocks[-3:]  # the newest three asked for
    packed.view(len(packed.blocks) * 8 * P - 24 * P, 8, blocks)  # the oldest of the three, asked again
    assert list(blocks.entries)[-1] == packed.blocks[-3]
    none = BlockCache(0)  # block_cache_mb: 0 keeps nothing, answers the same
    assert as_bytes(packed.view(0, 40, none)) == packed.window(0, 40) and not none.entries and none.nbytes == 0
