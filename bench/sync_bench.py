#!/usr/bin/env python3
"""Sync benchmark: 100 pairs x 3 timeframes x 1500 candles in a real influxd.

Measured in one run, side by side (median of --repeat runs each):
  (a)  first full sync into an empty data directory
  (b)  worst-case incremental cycle: every series gained one candle
  (b') typical cycle at a 3m close: only the 3m series gained a candle
  (c)  the naive approach of the original scripts: re-query all 1500 candles of every series
       (one request per series) and rewrite every file with pandas and lz4 level 9
and the write cost of the compression settings freqtrade can read. Then (b) and (b') again for each
InfluxDB dialect of --dialects, every cycle synced through each of them in turn (the 3.6 dialect takes one
statement per request, tests/influx_dialects.py): the same candles, the same influxd, side by side.

Usage: .venv/bin/python bench/sync_bench.py [--pairs 100] [--repeat 5] [--dialects 1.x,3.6-core]
                                            [--json bench/results/sync.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from pyarrow import feather as pa_feather

from freqfeed import config as config_module
from freqfeed import feather, sync
from freqfeed.exchanges.binance.wire import format_ticks
from freqfeed.influx import InfluxDB
from freqfeed.localinflux import LocalInfluxDB
from freqfeed.schema import (
    OHLCV_FIELDS,
    Candle,
    candle_line,
    ohlcv_measurement,
    quote_literal,
)
from freqfeed.simulator.market import Market
from freqfeed.timeframes import last_closed_open, timeframe_ms

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "files" / "python"))
from tests.influx_dialects import DIALECTS, DialectServer

TIMEFRAMES = ("3m", "15m", "1h")
CANDLES = 1500


def candles_for(market: Market, symbol: str, timeframe: str, last_open: int, count: int) -> list[Candle]:
    inst = market.instrument(symbol)
    c = market.candles(symbol, timeframe, last_open - (count - 1) * timeframe_ms(timeframe), count)
    prices = [[float(s) for s in format_ticks(getattr(c, n), inst.price_decimals)] for n in ("open", "high", "low",
                                                                                              "close")]
    volume = [float(s) for s in format_ticks(c.volume, inst.quantity_decimals)]
    return [Candle(int(t), *row) for t, *row in zip(c.open_time, *prices, volume, strict=True)]


def load(client: InfluxDB, market: Market, pairs: list[str], timeframes: tuple[str, ...], now: int,
         count: int) -> None:
    for timeframe in timeframes:
        lines: list[str] = []
        for pair in pairs:
            symbol = pair.replace("/", "")
            for candle in candles_for(market, symbol, timeframe, last_closed_open(now, timeframe), count):
                lines.append(candle_line(ohlcv_measurement(timeframe), pair, candle))
        for start in range(0, len(lines), 50_000):
            client.write(lines[start:start + 50_000])


def naive_sync(client: InfluxDB, cfg: config_module.Config) -> None:
    """What the original scripts did: every series re-read in full, every file rewritten."""
    datadir = cfg.sync.datadir
    assert datadir is not None
    for timeframe in cfg.timeframes:
        for pair in cfg.pairs:
            [series] = client.query(f'SELECT open, high, low, close, volume FROM "{ohlcv_measurement(timeframe)}" '
                                    f"WHERE pair = {quote_literal(pair)} ORDER BY time DESC LIMIT {CANDLES}")
            frame = pd.DataFrame(series[0].values, columns=["date", *OHLCV_FIELDS]).iloc[::-1]
            frame["date"] = pd.to_datetime(frame["date"], unit="ms", utc=True).dt.as_unit("ns")
            path = feather.data_path(datadir, pair, timeframe, "spot")
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.reset_index(drop=True).to_feather(path, compression="lz4", compression_level=9)


def timed(function, repeat: int, before=None) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        if before:
            before()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def compression_costs(datadir: Path) -> dict[str, dict[str, float]]:
    """Write all files of `datadir` again with each setting; seconds and total bytes."""
    tables = [pa_feather.read_table(p) for p in sorted(datadir.glob("*.feather"))]
    out = Path(tempfile.mkdtemp(prefix="freqfeed-compression-"))
    results: dict[str, dict[str, float]] = {}
    settings = [("uncompressed", None, None), ("lz4 level 1", "lz4", 1), ("lz4 level 9 (freqtrade)", "lz4", 9),
                ("zstd level 1", "zstd", 1), ("zstd level 3", "zstd", 3)]
    for label, codec, level in settings:
        start = time.perf_counter()
        size = 0
        for index, table in enumerate(tables):
            path = out / f"{index}.feather"
            if codec is None:
                pa_feather.write_feather(table, str(path), compression="uncompressed")
            else:
                pa_feather.write_feather(table, str(path), compression=codec, compression_level=level)
            size += path.stat().st_size
        results[label] = {"seconds": time.perf_counter() - start, "megabytes": size / 1e6}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dialects", default="1.x,3.6-core",
                        help="InfluxDB dialects for the side-by-side cycles (1.x, " + ", ".join(DIALECTS) + ")")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    dialects = [d for d in args.dialects.split(",") if d]
    unknown = set(dialects) - {"1.x", *DIALECTS}
    if unknown:
        parser.error(f"unknown dialects: {', '.join(sorted(unknown))}")

    market = Market(seed=3)
    symbols = list(market.instruments)[: args.pairs]
    pairs = [f"{s[:-4]}/USDT" for s in symbols]
    now = (int(time.time() * 1000) // 3_600_000) * 3_600_000 + 60_000  # just after an hour close

    with LocalInfluxDB() as influxd, tempfile.TemporaryDirectory(prefix="freqfeed-bench-") as work:
        raw = {"influxdb": {"url": influxd.url, "database": "bench"}, "pairs": pairs,
               "timeframes": list(TIMEFRAMES), "trading_mode": "spot",
               "sync": {"datadir": f"{work}/fresh", "candles": CANDLES}}
        cfg = config_module.from_mapping(raw, "bench")
        naive_cfg = config_module.from_mapping({**raw, "sync": {"datadir": f"{work}/naive"}}, "bench")
        client = InfluxDB(cfg.influxdb)
        client.ensure_database()
        t0 = time.perf_counter()
        load(client, market, pairs, TIMEFRAMES, now, CANDLES)
        print(f"loaded {len(pairs) * len(TIMEFRAMES) * CANDLES:,} candles into influxd in "
              f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)

        datadir = cfg.sync.datadir
        assert datadir is not None

        def wipe() -> None:
            for path in datadir.rglob("*.feather"):
                path.unlink()

        first = timed(lambda: sync.run(cfg, client, now_ms=now), args.repeat, before=wipe)
        assert sum(1 for _ in datadir.glob("*.feather")) == len(pairs) * len(TIMEFRAMES)

        newest = {tf: last_closed_open(now, tf) for tf in TIMEFRAMES}
        clock = {"now": now}

        def add_candle(timeframes: tuple[str, ...]) -> None:
            """Every series of `timeframes` gains its next candle; the clock moves to its close."""
            lines = []
            for timeframe in timeframes:
                newest[timeframe] += timeframe_ms(timeframe)
                clock["now"] = max(clock["now"], newest[timeframe] + timeframe_ms(timeframe))
                for pair, symbol in zip(pairs, symbols, strict=True):
                    for c in candles_for(market, symbol, timeframe, newest[timeframe], 1):
                        lines.append(candle_line(ohlcv_measurement(timeframe), pair, c))
            client.write(lines)

        every = timed(lambda: check(sync.run(cfg, client, now_ms=clock["now"]), len(pairs) * 3), args.repeat,
                      before=lambda: add_candle(TIMEFRAMES))
        only_3m = timed(lambda: check(sync.run(cfg, client, now_ms=clock["now"]), len(pairs)), args.repeat,
                        before=lambda: add_candle(("3m",)))
        idle = timed(lambda: check(sync.run(cfg, client, now_ms=clock["now"]), 0), args.repeat)
        naive = timed(lambda: naive_sync(client, naive_cfg), args.repeat)
        compression = compression_costs(datadir)
        by_dialect = dialect_cycles(influxd, raw, work, dialects, args.repeat, clock, add_candle, len(pairs))

    figures = {
        "pairs": len(pairs), "timeframes": list(TIMEFRAMES), "candles": CANDLES, "repeat": args.repeat,
        "a_first_full_sync_s": statistics.median(first),
        "b_every_series_one_candle_s": statistics.median(every),
        "b_prime_only_3m_one_candle_s": statistics.median(only_3m),
        "idle_cycle_nothing_new_s": statistics.median(idle),
        "c_naive_full_rewrite_s": statistics.median(naive),
        "compression": compression,
        "dialects": by_dialect,
    }
    c = figures["c_naive_full_rewrite_s"]
    rows = [
        ("(a) first full sync", figures["a_first_full_sync_s"], "< 15 s"),
        ("(b) every series +1 candle", figures["b_every_series_one_candle_s"], "< 1 s and >= 5x faster than (c)"),
        ("(b') only 3m +1 candle", figures["b_prime_only_3m_one_candle_s"], "< 0.5 s and >= 10x faster than (c)"),
        ("idle cycle (nothing new)", figures["idle_cycle_nothing_new_s"], ""),
        ("(c) naive: re-query + rewrite all", c, "baseline"),
    ]
    print(f"\nsync benchmark: {len(pairs)} pairs x {len(TIMEFRAMES)} timeframes x {CANDLES} candles, "
          f"median of {args.repeat}")
    print(f"{'case':36} {'seconds':>8} {'vs naive':>9}  target")
    for label, seconds, target in rows:
        print(f"{label:36} {seconds:8.3f} {c / seconds:8.1f}x  {target}")
    print("\nwriting all files once, by compression setting:")
    for label, result in compression.items():
        print(f"  {label:26} {result['seconds']:6.3f} s  {result['megabytes']:6.2f} MB")
    print(f"\nthe same cycles through each InfluxDB dialect, side by side (median of {args.repeat}):")
    print(f"{'dialect':12} {'first sync':>10} {'(b) every series':>17} {'(b2) only 3m':>13} {'requests/(b)':>13}")
    for name, result in by_dialect.items():
        requests = result["queries_per_b_cycle"]
        print(f"{name:12} {result['first_sync_s']:10.3f} {result['b_every_series_one_candle_s']:17.3f} "
              f"{result['b_prime_only_3m_one_candle_s']:13.3f} {'-' if requests is None else f'{requests:.0f}':>13}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


def dialect_cycles(influxd: LocalInfluxDB, raw: dict, work: str, dialects: list[str], repeat: int,  # type: ignore
                   clock: dict[str, int], add_candle, series: int) -> dict[str, dict[str, float | None]]:  # type: ignore
    """(b) and (b') for each dialect: every new candle is synced through each dialect in turn."""
    servers: dict[str, DialectServer] = {}
    configs: dict[str, config_module.Config] = {}
    clients: dict[str, InfluxDB] = {}
    for name in dialects:
        section = {"url": influxd.url, "database": "bench"}
        if name != "1.x":
            server = servers[name] = DialectServer(DIALECTS[name](influxd.url))
            server.dialect.catalog.add("bench")
            section = {"url": server.url, "database": "bench", "token": server.dialect.token}
        configs[name] = config_module.from_mapping({**raw, "influxdb": section,
                                                    "sync": {**raw["sync"], "datadir": f"{work}/{name}"}}, name)
        clients[name] = InfluxDB(configs[name].influxdb)
    results: dict[str, dict[str, float | None]] = {}
    try:
        first = {name: timed(lambda n=name: sync.run(configs[n], clients[n], now_ms=clock["now"]), 1)[0]
                 for name in dialects}
        every: dict[str, list[float]] = {name: [] for name in dialects}
        only_3m: dict[str, list[float]] = {name: [] for name in dialects}
        queries: dict[str, list[int]] = {name: [] for name in dialects}
        for timeframes, times, expected in ((TIMEFRAMES, every, series * 3), (("3m",), only_3m, series)):
            for _ in range(repeat):
                add_candle(timeframes)
                for name in dialects:
                    before = len(servers[name].dialect.queries) if name in servers else 0
                    times[name] += timed(lambda n=name, e=expected: check(
                        sync.run(configs[n], clients[n], now_ms=clock["now"]), e), 1)
                    if name in servers and times is every:
                        queries[name].append(len(servers[name].dialect.queries) - before)
        for name in dialects:
            results[name] = {"first_sync_s": first[name],
                             "b_every_series_one_candle_s": statistics.median(every[name]),
                             "b_prime_only_3m_one_candle_s": statistics.median(only_3m[name]),
                             "queries_per_b_cycle": statistics.median(queries[name]) if queries[name] else None}
    finally:
        for client in clients.values():
            client.close()
        for server in servers.values():
            server.close()
    return results


def check(report: sync.SyncReport, expected_files: int) -> None:
    if not report.ok or report.files_updated != expected_files:
        raise SystemExit(f"benchmark run went wrong: {report.errors[:3]}, {report.files_updated} files updated, "
                         f"expected {expected_files}")


if __name__ == "__main__":
    sys.exit(main())
