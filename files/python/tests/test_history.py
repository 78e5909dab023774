"""History far beyond one request (config `history`): the producer's deep backfill and the sync's window.

The backfill fills the newest page of every series first, reports its progress (log, health file,
`freqfeed status`), and after a SIGKILL the restart fetches only what InfluxDB does not hold: at most the
page that was in flight is fetched again. The sync keeps the window in the files, never fewer rows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from freqfeed import feather, status, sync
from freqfeed.config import InfluxDBConfig, from_mapping
from freqfeed.influx import InfluxDB
from freqfeed.schema import MARK_MEASUREMENT, ohlcv_measurement
from freqfeed.timeframes import candle_open, last_closed_open, timeframe_ms

from .conftest import make_config
from .helpers import influx_section, truth, write_candles
from .processes import (
    ProducerProcess,
    SimulatorProcess,
    assert_complete,
    kline_pages,
    producer_config,
    stored,
    wait_for,
)

PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
TIMEFRAMES = ["3m", "1h"]
START = 1_795_564_800_000 + 5_000  # an hour's first second + 5 s: nothing closes while the test runs
HISTORY_DAYS = 20  # 3m: 9,600 candles per series, 20 pages of 499
SINCE = START - 90 * 86_400_000  # what the checks read (InfluxDB 3 wants a bounded query)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.dialects("1.x", "3.6-core")  # 3 Core: every query of 20 days narrowed to its file limit
def test_deep_backfill_newest_first_reports_progress_and_resumes_after_sigkill(
        client: InfluxDB, influx_config: InfluxDBConfig, tmp_path: Path) -> None:
    sim = SimulatorProcess(tmp_path, speed=1, start=START)
    health = tmp_path / "health.json"
    try:
        config = producer_config(influx_config, sim, PAIRS, candles=300, timeframes=TIMEFRAMES,
                                 history={"3m": HISTORY_DAYS}, exchange={"request_delay": 0.1},
                                 producer={"health_file": str(health)})
        producer = ProducerProcess(tmp_path, config).start()
        window_3m = HISTORY_DAYS * 480
        # SIGKILL once a third of the pages are in
        wait_for(lambda: len(kline_pages(sim.requests())) >= 20, 120, "a third of the backfill's pages")
        producer.kill()
        first_run = kline_pages(sim.requests())

        # Newest first: every series has its newest page in InfluxDB, and what it holds is one block that
        # ends at the newest closed candle (nothing older was fetched before something newer).
        for pair in PAIRS:
            for measurement, tf in [(ohlcv_measurement("3m"), "3m"), (ohlcv_measurement("1h"), "1h"),
                                    (MARK_MEASUREMENT, "1h")]:
                times = [row[0] for row in stored(client, measurement, pair, "close", SINCE)]
                assert times, f"{pair} {measurement}: the newest page is not in"
                period = timeframe_ms(tf)
                assert times[-1] == last_closed_open(sim.now(), tf), f"{pair} {measurement} lacks its newest candle"
                assert times == list(range(times[0], times[-1] + 1, period)), f"{pair} {measurement}: not one block"
        assert len(stored(client, ohlcv_measurement("3m"), PAIRS[0], "close", SINCE)) < window_3m, "killed too late"

        # progress: log lines with done/total and an ETA, and the health file the status reads
        text = producer.text()
        lines = re.findall(r"backfill: (\d+)/(\d+) pages \(\d+%\), [\d,]+/[\d,]+ candles, .* ETA (\S+)", text)
        assert lines, text[-3000:]
        assert int(lines[-1][0]) < int(lines[-1][1])
        progress = json.loads(health.read_text())["backfill_progress"]
        assert 0 < progress["pages_done"] < progress["pages_total"] and progress["eta_seconds"] is not None
        shown = status.collect(from_mapping(config, "test"), now_ms=sim.now())
        assert shown.coverage is not None and re.match(r"backfill \d+/\d+ pages", shown.coverage), shown.coverage

        # the restart fetches only what is missing: at most the page in flight again (the requests for the
        # mark candle in progress, which every start makes to seed the live mark candle, aside)
        producer.start()
        producer.wait_for_log("backfill done", timeout=180)
        second_run = [page for page in kline_pages(sim.requests())[len(first_run):]
                      if page[4] < candle_open(sim.now(), page[2])]
        repeated = [page for page in second_run
                    if any(page[:3] == old[:3] and page[3] <= old[4] and old[3] <= page[4] for old in first_run)]
        assert len(repeated) <= 1, f"pages fetched again: {repeated}"
        assert "backfill BTC/USDT:USDT 3m: " in producer.text()
        wait_for(lambda: len(stored(client, ohlcv_measurement("3m"), PAIRS[0], "close", SINCE)) >= window_3m, 15,
                 "the whole window in InfluxDB")
        checked = assert_complete(client, sim, PAIRS, TIMEFRAMES, sim.now(), since_ms=SINCE)
        assert checked["BTC/USDT:USDT ohlcv_3m"] == window_3m  # from the window's first candle (no hole)
        assert checked["BTC/USDT:USDT ohlcv_1h"] == 300  # no history for 1h: backfill.candles
        # mark candles (and funding) keep the longest history of any timeframe
        assert checked["BTC/USDT:USDT mark_price"] == HISTORY_DAYS * 24
        # the pages are the cheapest in weight: 499 candles (weight 2) instead of 1500 (weight 10)
        sizes = {(page[4] - page[3]) // timeframe_ms(page[2]) + 1 for page in first_run + second_run}
        assert max(sizes) == 499, sizes
        producer.terminate()
    finally:
        sim.stop()


@pytest.mark.integration
def test_sync_keeps_the_history_window_and_what_freqtrade_downloaded(client: InfluxDB, influx_config: InfluxDBConfig,
                                                                    tmp_path: Path) -> None:
    now = START + 3600_000
    pair = "BTC/USDT:USDT"
    end = last_closed_open(now, "3m")
    write_candles(client, pair, "3m", truth(pair, "3m", end, 3000))
    config = make_config(influx_config, tmp_path, pairs=[pair], timeframes=["3m"],
                         sync={"candles": 500}, history={"3m": 5})  # 5 days of 3m: 2,400 candles
    report = sync.run(config, now_ms=now)
    assert report.ok, report.errors
    job = sync.plan(config)[0]
    table = feather.read_table(job.path, job.candle_type)
    assert table.num_rows == 2400, "sync.candles (500) never trims the file below the bots' history"
    assert feather.first_time_ms(table) == end - 2399 * 180_000

    # the window raised to 8 days (3,840 candles): the file gains the older rows InfluxDB holds
    wider = make_config(influx_config, tmp_path, pairs=[pair], timeframes=["3m"],
                        sync={"candles": 500}, history={"3m": 8})
    report = sync.run(wider, now_ms=now)
    assert report.ok and report.candles_added == 600, report
    table = feather.read_table(job.path, job.candle_type)
    assert table is not None and table.num_rows == 3000
    assert feather.first_time_ms(table) == end - 2999 * 180_000
    assert sync.run(wider, now_ms=now).files_updated == 0, "then nothing more to add"

    # freqtrade downloaded older candles itself (InfluxDB has none of them): the sync keeps them, within
    # the window's worth of rows
    older = truth(pair, "3m", end - 3000 * 180_000, 200)
    columns = ("open", "high", "low", "close", "volume")
    combined = feather.build_table(
        np.concatenate([[c.open_time for c in older], feather.date_ns(table) // 1_000_000]),
        {name: np.concatenate([[getattr(c, name) for c in older], table.column(name).to_numpy()]) for name in columns},
        job.candle_type)
    feather.write_atomic(job.path, combined)
    write_candles(client, pair, "3m", truth(pair, "3m", end + 180_000, 1))
    assert sync.run(wider, now_ms=now + 180_000).ok
    table = feather.read_table(job.path, job.candle_type)
    assert table is not None and table.num_rows == 3201
    assert feather.first_time_ms(table) == older[0].open_time, "freqtrade's own rows are kept"

    # the status flags files short of the history
    shown = status.collect(from_mapping({"influxdb": influx_section(influx_config), "pairs": [pair],
                                         "timeframes": ["3m"],
                                         "sync": {"datadir": str(config.sync.datadir)},
                                         "history": {"3m": 20}}, "test"), now_ms=now + 180_000)
    assert shown.coverage is not None and "1 files short of the bots' history" in shown.coverage, shown.coverage
    assert any("do not cover what the bots need" in p for p in shown.problems)
