#!/usr/bin/env python3
"""The gateway's closed-candle caches at fleet scale, in one process each, without a gateway
(freqfeed/exchanges/binance/gateway/series.py): 300 pairs x 1m/3m/5m/15m/1h + 1h mark = 1,800 SeriesCache of
1,516 realistic rows each (the simulator's market through freqfeed.exchanges.binance.gateway.rows, as the
gateway builds them from InfluxDB), laid out
`plain` (every row plain JSON: the layout before compressed blocks) and `blocks` (the default: the newest
rows plain, older ones in zlib blocks). For each: bytes a row, the process's RSS before and after building
the caches, CPU to build them, the same after 100 closes appended to every series, an append, and the
cost of an answer (the window joined into `[...]`, as history.py does) for limits 5 .. 1500 ending at the newest row.

Usage: .venv/bin/python bench/series_memory_bench.py [--pairs 300] [--symbols 50] [--json out.json]
Rows of `--symbols` distinct pairs are built once (about 20 s) and reused for the other pairs.
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "files" / "python"))

from freqfeed.exchanges.binance import wire
from freqfeed.exchanges.binance.gateway.rows import kline_row_bytes
from freqfeed.exchanges.binance.gateway.series import SeriesCache
from freqfeed.simulator.market import Market
from freqfeed.timeframes import timeframe_ms

TIMEFRAMES = ("1m", "3m", "5m", "15m", "1h")
ROWS = 1516
LIMITS = (5, 100, 499, 500, 1000, 1499, 1500)


def templates(symbols: int) -> list[tuple[str, int, list[bytes]]]:
    """(timeframe, first open, rows) of `symbols` pairs x the timeframes + 1h mark."""
    market = Market()
    out: list[tuple[str, int, list[bytes]]] = []
    for tf, mark in [*((tf, False) for tf in TIMEFRAMES), ("1h", True)]:
        period = timeframe_ms(tf)
        first = (1_790_000_000_000 // period) * period
        for symbol in list(market.instruments)[:symbols]:
            inst = market.instruments[symbol]
            fmt = wire.SymbolFormat(inst.price_decimals, inst.quantity_decimals)
            candles = market.candles(symbol, tf, first, ROWS, mark=mark)
            ps, qs = 10.0**-inst.price_decimals, 10.0**-inst.quantity_decimals
            rows = []
            for i in range(len(candles)):
                o, h, lo, c = (float(x) * ps for x in (candles.open[i], candles.high[i], candles.low[i],
                                                        candles.close[i]))
                v = float(candles.volume[i]) * qs
                qv = v * (o + c) / 2
                values = [o, h, lo, c] if mark else [o, h, lo, c, v, qv, int(candles.trades[i]), v * 0.47, qv * 0.47]
                rows.append(kline_row_bytes(int(candles.open_time[i]), period, fmt, values, mark=mark))
            out.append((tf, first, rows))
    return out


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def answer(cache: SeriesCache, first_open: int, count: int) -> bytes:
    """As history.py joins an answer (the view released when it returns)."""
    view = cache.view(first_open, count)
    assert view is not None
    return b"".join([b"[", view, b"]"])


def measure(layout: str, pairs: int, path: Path) -> dict[str, Any]:
    """(In its own process) build the caches and measure."""
    kwargs = {"hot": 10**9} if layout == "plain" else {}
    with open(path, "rb") as handle:
        series = pickle.load(handle)
    copies = max(1, pairs // (len(series) // (len(TIMEFRAMES) + 1)))
    gc.collect()
    before = rss_mib()
    caches = []
    started = time.process_time()
    for _ in range(copies):
        for tf, first, rows in series:
            period = timeframe_ms(tf)
            cache = SeriesCache(period, ROWS, **kwargs)
            cache.load([(first + i * period, row) for i, row in enumerate(rows)])
            caches.append(cache)
    build = time.process_time() - started
    gc.collect()
    after = rss_mib()
    count = sum(len(cache) for cache in caches)
    nbytes = sum(cache.nbytes for cache in caches)
    cache = caches[0]
    answers = {}
    for limit in LIMITS:
        assert cache.last is not None
        first_open = cache.last - (limit - 1) * cache.period
        repeat = 2000 if limit <= 500 else 300
        started = time.perf_counter()
        for _ in range(repeat):
            answer(cache, first_open, limit)
        answers[limit] = round((time.perf_counter() - started) / repeat * 1e6, 1)
    started = time.process_time()
    for index, each in enumerate(caches):  # 100 closes a series (every series compresses and drops a block)
        rows = series[index % len(series)][2]
        for step in range(100):
            assert each.last is not None
            each.extend([(each.last + each.period, rows[step])])
    appended = time.process_time() - started
    gc.collect()
    steady = rss_mib()
    steady_bytes = sum(cache.nbytes for cache in caches)
    tf, first, rows = series[0]
    append = SeriesCache(cache.period, ROWS, **kwargs)
    append.load([(first + i * cache.period, row) for i, row in enumerate(rows)])
    started = time.perf_counter()
    for index in range(3000):
        assert append.last is not None
        append.extend([(append.last + cache.period, rows[index % len(rows)])])
    return {"layout": layout, "series": len(caches), "rows": count, "cache_mib": round(nbytes / 2**20, 1),
            "bytes_per_row": round(nbytes / count, 1), "rss_before_mib": round(before), "rss_after_mib": round(after),
            "rss_caches_mib": round(after - before), "build_cpu_s": round(build, 1),
            "after_100_appends": {"cache_mib": round(steady_bytes / 2**20, 1), "rss_mib": round(steady),
                                  "rss_caches_mib": round(steady - before), "cpu_s": round(appended, 1)},
            "append_us": round((time.perf_counter() - started) / 3000 * 1e6, 1), "answer_us": answers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--symbols", type=int, default=50, help="distinct pairs whose rows are built")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # layout, templates file (child)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], args.pairs, Path(args.measure[1]))))
        return
    results = []
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "rows.pkl"
        with open(path, "wb") as handle:
            pickle.dump(templates(min(args.symbols, args.pairs)), handle)
        for layout in ("plain", "blocks"):
            out = subprocess.run([sys.executable, __file__, "--pairs", str(args.pairs), "--measure", layout, str(path)],
                                 check=True, stdout=subprocess.PIPE, text=True).stdout
            results.append(json.loads(out))
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"cases": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
