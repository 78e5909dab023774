"""The gateway's cache of forwarded answers stays within gateway.forward_cache_entries and forward_cache_mb."""

from __future__ import annotations

import time

from freqfeed import config as config_module
from freqfeed.exchanges.binance.upstream import Reply, Upstream, _Cached


def upstream(**gateway: object) -> Upstream:
    config = config_module.from_mapping({"influxdb": {"url": "http://i", "database": "x"}, "pairs": ["BTC/USDT:USDT"],
                                         "gateway": gateway}, "test", environ={})
    return Upstream(config)


def fill(up: Upstream, count: int, size: int) -> None:
    for n in range(count):
        up._store(("/fapi/v1/depth", (("symbol", f"S{n}"),)), _Cached(time.monotonic() + 60, Reply(200, b"x" * size)))


def test_entries_are_bounded_least_recently_used_first() -> None:
    up = upstream(forward_cache_entries=10)
    fill(up, 25, 100)
    assert len(up._cache) == 10 and up.cache_bytes == 1000 and up.cache_evictions == 15
    assert ("/fapi/v1/depth", (("symbol", "S24"),)) in up._cache
    assert ("/fapi/v1/depth", (("symbol", "S14"),)) not in up._cache


def test_bytes_are_bounded() -> None:
    up = upstream(forward_cache_mb=0.01)  # 10 kB
    fill(up, 50, 1000)
    assert up.cache_bytes <= 10_000 and len(up._cache) == 10
    fill(up, 1, 20_000)  # larger than the whole cache: not kept
    assert up.cache_bytes <= 10_000


def test_expired_answers_go_first() -> None:
    up = upstream(forward_cache_entries=3)
    up._store(("/a", ()), _Cached(time.monotonic() - 1, Reply(200, b"old")))
    fill(up, 3, 10)
    assert ("/a", ()) not in up._cache and up.cache_evictions == 0 and len(up._cache) == 3
