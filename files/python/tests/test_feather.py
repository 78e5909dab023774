from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from pyarrow import feather as pa_feather

from freqfeed import feather

HOUR = 3_600_000


def table(times_h: list[int], candle_type: feather.CandleType = "futures") -> pa.Table:
    times = np.array(times_h, dtype="int64") * HOUR
    values = {c: np.array(times_h, dtype="float64") + i for i, c in enumerate(feather.value_columns(candle_type))}
    return feather.build_table(times, values, candle_type)


def dates_h(t: pa.Table) -> list[int]:
    return [int(v) // 1_000_000 // HOUR for v in t.column("date").cast(pa.int64()).to_pylist()]


@pytest.mark.parametrize(
    ("pair", "timeframe", "candle_type", "expected"),
    [
        ("BTC/USDT", "3m", "spot", "BTC_USDT-3m.feather"),
        ("BTC/USDT:USDT", "15m", "futures", "futures/BTC_USDT_USDT-15m-futures.feather"),
        ("BTC/USDT:USDT", "1h", "mark", "futures/BTC_USDT_USDT-1h-mark.feather"),
        ("BTC/USDT:USDT", "1h", "funding_rate", "futures/BTC_USDT_USDT-1h-funding_rate.feather"),
        ("1000PEPE/USDT:USDT", "1h", "futures", "futures/1000PEPE_USDT_USDT-1h-futures.feather"),
    ],
)
def test_paths_follow_freqtrade_naming(pair: str, timeframe: str, candle_type: feather.CandleType,
                                       expected: str) -> None:
    assert feather.data_path(Path("/d"), pair, timeframe, candle_type) == Path("/d") / expected


def test_written_file_has_freqtrade_columns_and_dtypes(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-1h.feather"
    feather.write_atomic(path, table([1, 2, 3]))
    written = pa_feather.read_table(path)
    assert written.column_names == ["date", "open", "high", "low", "close", "volume"]
    assert written.schema.field("date").type == pa.timestamp("ns", tz="UTC")
    assert all(written.schema.field(c).type == pa.float64() for c in written.column_names[1:])
    frame = pa_feather.read_feather(path)
    assert str(frame["date"].dtype) == "datetime64[ns, UTC]"
    assert not list(tmp_path.glob("*tmp*")), "no temp file may stay behind"


def test_funding_layouts_round_trip(tmp_path: Path) -> None:
    rates = table([8, 16, 24], "funding_rate")
    current = tmp_path / "current.feather"
    legacy = tmp_path / "legacy.feather"
    feather.write_atomic(current, feather.to_layout(rates, "funding_rate", "current"))
    feather.write_atomic(legacy, feather.to_layout(rates, "funding_rate", "legacy"))
    assert pa_feather.read_table(current).column_names == ["date", "funding_rate"]
    legacy_table = pa_feather.read_table(legacy)
    assert legacy_table.column_names == ["date", "open", "high", "low", "close", "volume"]
    assert legacy_table.column("high").to_pylist() == [0.0, 0.0, 0.0]
    for path in (current, legacy):
        assert feather.read_table(path, "funding_rate").equals(rates)


def test_read_sorts_and_deduplicates_a_foreign_writers_file(tmp_path: Path) -> None:
    path = tmp_path / "x.feather"
    messy = pa.concat_tables([table([3, 1]), table([2, 3])])
    pa_feather.write_feather(messy, path)
    clean = feather.read_table(path, "futures")
    assert clean is not None
    assert dates_h(clean) == [1, 2, 3]


@pytest.mark.parametrize("content", [b"", b"garbage" * 20, b"PAR1\x00\x00"])
def test_unreadable_file_is_foreign(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.feather"
    path.write_bytes(content)
    with pytest.raises(feather.ForeignFileError, match="not a readable feather file"):
        feather.read_table(path, "futures")


def test_wrong_columns_are_foreign(tmp_path: Path) -> None:
    path = tmp_path / "x.feather"
    pa_feather.write_feather(pa.table({"time": [1], "price": [1.0]}), path)
    with pytest.raises(feather.ForeignFileError, match="unexpected columns"):
        feather.read_table(path, "futures")
    pa_feather.write_feather(pa.table({"date": ["2024"], "open": [1.0], "high": [1.0], "low": [1.0],
                                       "close": [1.0], "volume": [1.0]}), path)
    with pytest.raises(feather.ForeignFileError, match="expected a timestamp"):
        feather.read_table(path, "futures")


def test_merge_appends_replaces_tail_and_trims() -> None:
    existing = table([1, 2, 3, 4])
    assert dates_h(feather.merge(existing, table([5, 6]), 4 * HOUR + 1, keep=0)) == [1, 2, 3, 4, 5, 6]
    assert dates_h(feather.merge(existing, table([5, 6]), 4 * HOUR + 1, keep=3)) == [4, 5, 6]
    # InfluxDB's rows from a hole on replace the file's
    replaced = feather.merge(table([1, 2, 4]), table([3, 4, 5]), 3 * HOUR, keep=0)
    assert dates_h(replaced) == [1, 2, 3, 4, 5]
    assert feather.merge(None, table([7]), 0, keep=10).num_rows == 1


def test_first_gap() -> None:
    assert feather.first_gap_ms(table([1, 2, 3]), HOUR) is None
    assert feather.first_gap_ms(table([1, 2, 5, 6, 9]), HOUR) == 3 * HOUR
    assert feather.first_gap_ms(None, HOUR) is None


def test_quarantine_moves_file_out_of_freqtrades_sight(tmp_path: Path) -> None:
    datadir = tmp_path / "binance"
    path = datadir / "futures" / "BTC_USDT_USDT-1h-futures.feather"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"junk")
    target = feather.quarantine(path, datadir)
    assert not path.exists()
    assert target.read_bytes() == b"junk"
    assert target.parent == datadir / ".freqfeed-quarantine" / "futures"
    assert not list(datadir.glob("*.feather")) and not list((datadir / "futures").glob("*.feather"))
