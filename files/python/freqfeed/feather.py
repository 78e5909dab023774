"""freqtrade's feather files: names, columns, dtypes, and atomic replacement.

This module is the only place that knows freqtrade's on-disk layout (freqtrade 2025.12+):
  spot      <datadir>/BTC_USDT-3m.feather
  futures   <datadir>/futures/BTC_USDT_USDT-3m-futures.feather
  mark      <datadir>/futures/BTC_USDT_USDT-1h-mark.feather
  funding   <datadir>/futures/BTC_USDT_USDT-1h-funding_rate.feather
freqtrade's datadir is `user_data/data/<exchange>` (data/binance, data/hyperliquid). Hyperliquid
(`BTC/USDC:USDC` -> BTC_USDC_USDC-1h-futures.feather, -1h-funding_rate.feather) has no mark files:
freqtrade reads its 1h futures candles as mark candles there (`mark_ohlcv_price: "futures"`).
Candle files hold `date, open, high, low, close, volume` (date = candle open, timestamp[ns, UTC],
values float64), sorted by date without duplicates. Funding files hold `date, funding_rate` (the
"current" layout) or, for freqtrade releases that predate it, the legacy OHLCV shape with the rate
in `open` and zeros elsewhere; both are read, the configured one is written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from pyarrow import ipc

from freqfeed import exchanges

CandleType = Literal["spot", "futures", "mark", "funding_rate"]

def has_mark_files(exchange: str) -> bool:
    """Whether freqtrade reads `-mark` files for the exchange (Hyperliquid: no, its futures candles serve)."""
    return exchanges.get(exchange).has_mark_series


OHLCV_COLUMNS = ("date", "open", "high", "low", "close", "volume")
FUNDING_COLUMNS = ("date", "funding_rate")
DATE_TYPE = pa.timestamp("ns", tz="UTC")

# Chosen by measurement (bench/sync_bench.py): lz4 at level 1 writes several times faster than
# freqtrade's level 9 for files a few percent larger; every freqtrade version reads either.
COMPRESSION = "lz4"
COMPRESSION_LEVEL = 1

QUARANTINE_DIR = ".freqfeed-quarantine"
TEMP_SUFFIX = ".freqfeed-tmp"  # never ends in .feather, so freqtrade's glob never lists it


class ForeignFileError(Exception):
    """An existing file is not a readable freqtrade feather file of the expected shape."""


def pair_to_filename(pair: str) -> str:
    for char in "/ .@$+:":
        pair = pair.replace(char, "_")
    return pair


def timeframe_to_file(timeframe: str) -> str:
    return "1Mo" if timeframe == "1M" else timeframe


def data_path(datadir: Path, pair: str, timeframe: str, candle_type: CandleType) -> Path:
    name = f"{pair_to_filename(pair)}-{timeframe_to_file(timeframe)}"
    if candle_type == "spot":
        return datadir / f"{name}.feather"
    return datadir / "futures" / f"{name}-{candle_type}.feather"


def schema_for(candle_type: CandleType, layout: str = "current") -> pa.Schema:
    if candle_type == "funding_rate" and layout == "current":
        return pa.schema([("date", DATE_TYPE), ("funding_rate", pa.float64())])
    return pa.schema([("date", DATE_TYPE)] + [(c, pa.float64()) for c in OHLCV_COLUMNS[1:]])


def value_columns(candle_type: CandleType) -> tuple[str, ...]:
    """The columns this module works with internally (funding is always `funding_rate`)."""
    return FUNDING_COLUMNS[1:] if candle_type == "funding_rate" else OHLCV_COLUMNS[1:]


# pyarrow's pa.array() and Array.to_numpy() import pandas on first use (a quarter second for every
# sync run): this module builds arrays from numpy buffers and reads them back the same way.
def _from_numpy(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(np.ascontiguousarray(values))])


def build_table(times_ms: np.ndarray, values: dict[str, np.ndarray], candle_type: CandleType) -> pa.Table:
    """A table in the internal layout from epoch-ms times and float columns."""
    arrays = [_from_numpy(np.asarray(times_ms, dtype="int64") * 1_000_000, DATE_TYPE)]
    names = ["date"]
    for column in value_columns(candle_type):
        arrays.append(_from_numpy(np.asarray(values[column], dtype="float64"), pa.float64()))
        names.append(column)
    return pa.Table.from_arrays(arrays, names=names)


def empty_table(candle_type: CandleType) -> pa.Table:
    return build_table(np.empty(0, dtype="int64"), {c: np.empty(0) for c in value_columns(candle_type)},
                       candle_type)


def read_table(path: Path, candle_type: CandleType) -> pa.Table | None:
    """The file's rows in the internal layout, or None when there is no file.

    Raises ForeignFileError when the file is unreadable or not shaped like freqtrade's files.
    """
    try:
        with pa.OSFile(str(path)) as source:
            table = ipc.open_file(source).read_all()
    except FileNotFoundError:
        return None
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (None, errno.EINVAL):
            raise
        raise ForeignFileError(f"{path}: not a readable feather file ({exc})") from None
    return _normalise(table, path, candle_type)


_INTERNAL_SCHEMAS = {
    "ohlcv": pa.schema([("date", DATE_TYPE)] + [(c, pa.float64()) for c in OHLCV_COLUMNS[1:]]),
    "funding_rate": pa.schema([("date", DATE_TYPE), ("funding_rate", pa.float64())]),
}


def _normalise(table: pa.Table, path: Path, candle_type: CandleType) -> pa.Table:
    expected = _INTERNAL_SCHEMAS["funding_rate" if candle_type == "funding_rate" else "ohlcv"]
    if table.schema.equals(expected, check_metadata=False) and table.column("date").null_count == 0:
        return _sorted_unique(table)  # the usual case: a file this module or freqtrade wrote
    names = table.column_names
    if candle_type == "funding_rate" and names[:2] == list(FUNDING_COLUMNS):
        wanted: tuple[str, ...] = FUNDING_COLUMNS
        source: tuple[str, ...] = FUNDING_COLUMNS
    elif candle_type == "funding_rate" and names[:6] == list(OHLCV_COLUMNS):
        wanted, source = FUNDING_COLUMNS, ("date", "open")  # legacy layout
    elif candle_type != "funding_rate" and names[:6] == list(OHLCV_COLUMNS):
        wanted = source = OHLCV_COLUMNS
    else:
        raise ForeignFileError(f"{path}: unexpected columns {names} for a {candle_type} file")
    date = table.column("date")
    if not pa.types.is_timestamp(date.type):
        raise ForeignFileError(f"{path}: column 'date' has type {date.type}, expected a timestamp")
    arrays = [date.cast(DATE_TYPE) if date.type != DATE_TYPE else date]
    for column in source[1:]:
        values = table.column(column)
        if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
            raise ForeignFileError(f"{path}: column {column!r} has type {values.type}, expected numbers")
        arrays.append(values.cast(pa.float64()))
    normalised = pa.Table.from_arrays(arrays, names=list(wanted))
    if normalised.column("date").null_count:
        raise ForeignFileError(f"{path}: column 'date' has empty values")
    return _sorted_unique(normalised)


def date_ns(table: pa.Table) -> np.ndarray:
    """The date column as int64 epoch nanoseconds (a view where the column is one chunk)."""
    column = table.column("date")
    array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return np.frombuffer(array.buffers()[1], dtype=np.int64, count=len(array), offset=array.offset * 8)


def _sorted_unique(table: pa.Table) -> pa.Table:
    """Rows sorted by date, one per date (the last one wins); cheap when already so."""
    dates = date_ns(table)
    if len(dates) < 2 or bool(np.all(dates[1:] > dates[:-1])):
        return table
    order = np.argsort(dates, kind="stable")
    dates = dates[order]
    keep = np.append(dates[1:] != dates[:-1], True)
    return table.take(_from_numpy(order[keep].astype(np.int64), pa.int64()))


def last_time_ms(table: pa.Table | None) -> int | None:
    if table is None or table.num_rows == 0:
        return None
    return int(date_ns(table)[-1]) // 1_000_000


def first_time_ms(table: pa.Table | None) -> int | None:
    if table is None or table.num_rows == 0:
        return None
    return int(date_ns(table)[0]) // 1_000_000


def first_gap_ms(table: pa.Table | None, period_ms: int) -> int | None:
    """Open time of the first missing candle between the file's first and last rows, if any."""
    if table is None or table.num_rows < 2:
        return None
    dates = date_ns(table) // 1_000_000
    if (dates[-1] - dates[0]) // period_ms + 1 == len(dates):
        return None
    steps = np.flatnonzero(np.diff(dates) != period_ms)
    return int(dates[steps[0]] + period_ms)


def merge(existing: pa.Table | None, new: pa.Table, replace_from_ms: int, keep: int) -> pa.Table:
    """The file's rows before `replace_from_ms`, then `new` (InfluxDB's rows from there), last `keep` rows.

    `keep` 0 keeps everything.
    """
    if existing is not None and existing.num_rows:
        head = existing.slice(0, int(np.searchsorted(date_ns(existing), replace_from_ms * 1_000_000)))
        merged = pa.concat_tables([head, new.select(head.column_names)])
        merged = _sorted_unique(merged)
    else:
        merged = new
    if keep and merged.num_rows > keep:
        merged = merged.slice(merged.num_rows - keep)
    return merged


def prepend(table: pa.Table, older: pa.Table, keep: int) -> pa.Table:
    """`older`'s rows from before `table`'s first, then `table`: at most `keep` rows (0: all), the newest."""
    first = date_ns(table)[0] if table.num_rows else np.iinfo(np.int64).max
    head = older.slice(0, int(np.searchsorted(date_ns(older), first)))
    if keep:
        head = head.slice(max(0, head.num_rows - max(0, keep - table.num_rows)))
    return pa.concat_tables([head.select(table.column_names), table]) if head.num_rows else table


def count_new_dates(merged: pa.Table, existing: pa.Table | None) -> int:
    """Rows of `merged` whose date is not in `existing` (both sorted and unique by date)."""
    new_dates = date_ns(merged)
    if existing is None or existing.num_rows == 0:
        return len(new_dates)
    old_dates = date_ns(existing)
    index = np.minimum(np.searchsorted(old_dates, new_dates), len(old_dates) - 1)
    return int(np.count_nonzero(old_dates[index] != new_dates))


def to_layout(table: pa.Table, candle_type: CandleType, layout: str) -> pa.Table:
    """The internal table in the on-disk column layout."""
    if candle_type != "funding_rate" or layout == "current":
        return table
    rate = table.column("funding_rate")
    zeros = _from_numpy(np.zeros(table.num_rows), pa.float64())
    return pa.Table.from_arrays([table.column("date"), rate, zeros, zeros, zeros, zeros],
                                names=list(OHLCV_COLUMNS))


def write_atomic(path: Path, table: pa.Table, *, uid: int | None = None, gid: int | None = None,
                 sync_directory: bool = True) -> None:
    """Replace `path` with `table` so that readers see the old file or the new one, never a torn one.

    Temp file in the same directory, fsync, chown, rename over the target, fsync the directory
    (callers replacing many files in one directory may fsync it once at the end instead).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    try:
        _write_ipc(temp, table)
        if uid is not None or gid is not None:
            os.chown(temp, -1 if uid is None else uid, -1 if gid is None else gid)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    if sync_directory:
        fsync_directory(path.parent)


def _write_ipc(path: Path, table: pa.Table) -> None:
    """Feather v2 is the Arrow IPC file format; written directly (pyarrow.feather imports pandas)."""
    options = ipc.IpcWriteOptions(compression=pa.Codec(COMPRESSION, compression_level=COMPRESSION_LEVEL))
    with open(path, "wb") as sink:
        with ipc.new_file(sink, table.schema, options=options) as writer:
            writer.write_table(table)
        sink.flush()
        os.fsync(sink.fileno())


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def quarantine(path: Path, datadir: Path) -> Path:
    """Move a foreign or corrupt file out of freqtrade's sight; returns where it went."""
    relative = path.relative_to(datadir)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = datadir / QUARANTINE_DIR / relative.parent / f"{relative.name}.{stamp}"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    return target


def remove_stale_temp_files(directory: Path) -> int:
    """Delete temp files a killed sync left behind; returns how many."""
    removed = 0
    if directory.is_dir():
        for temp in directory.glob(f".*{TEMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
                removed += 1
    return removed
