"""InfluxQL for freqfeed's reads: quoting, a time-bounded SELECT, and splitting one into windows.

Every read freqfeed sends is a `Select`: one measurement, tag filters, an inclusive time range that is
always bounded on both sides, and optionally `newest` (ORDER BY time DESC LIMIT n) or an aggregate
(count/last per tag group). Because the range is explicit, a Select can be cut into consecutive time
windows where a server limits what one query may scan (InfluxDB 3 Core's Parquet file limit) and the
windows' answers merged back into exactly the answer the whole range would have given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

Aggregate = Literal["count", "first", "last"]


def quote_literal(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(value: str) -> str:
    """An InfluxQL identifier (database, measurement, field or tag name)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Series:
    """One series of a query answer: its tags and its rows ([time_ms, value, ...])."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=False)) for row in self.values]


@dataclass(frozen=True)
class Select:
    """SELECT fields FROM measurement WHERE tags AND since <= time <= until [GROUP BY ...] [newest n].

    With `group_by`, `newest` and aggregates apply per series (as InfluxQL's LIMIT does). `density_ms` is the
    usual spacing of the measurement's points (a candle period); it lets a client size windows for a server
    that limits the data files one query may scan. 0 when unknown.
    """

    measurement: str
    fields: tuple[str, ...]
    since_ms: int
    until_ms: int
    tags: tuple[tuple[str, str], ...] = ()
    any_of: tuple[str, tuple[str, ...]] | None = None  # (tag, values): rows whose tag has one of the values
    group_by: tuple[str, ...] = ()
    newest: int | None = None
    aggregate: Aggregate | None = None
    density_ms: int = 0
    every_ms: int | None = None  # aggregates per time bucket of this length (GROUP BY time(...)), UTC-aligned

    def __post_init__(self) -> None:
        if self.until_ms < self.since_ms:
            raise ValueError(f"empty time range {self.since_ms}..{self.until_ms}")
        if self.aggregate and len(self.fields) != 1:
            raise ValueError("an aggregate takes exactly one field")
        if self.every_ms is not None and not self.aggregate:
            raise ValueError("time buckets need an aggregate")

    def render(self, since_ms: int | None = None, until_ms: int | None = None, limit: int | None = None) -> str:
        """The statement, optionally for a sub-range of this Select's range (and a smaller `newest`)."""
        since = self.since_ms if since_ms is None else since_ms
        until = self.until_ms if until_ms is None else until_ms
        if self.aggregate:
            columns = f"{self.aggregate}({quote_identifier(self.fields[0])})"
        else:
            columns = ", ".join(quote_identifier(f) for f in self.fields)
        where = [f"{quote_identifier(k)} = {quote_literal(v)}" for k, v in self.tags]
        if self.any_of is not None:
            tag, values = self.any_of
            where.append("(" + " OR ".join(f"{quote_identifier(tag)} = {quote_literal(v)}" for v in values) + ")")
        where += [f"time >= {int(since)}ms", f"time <= {int(until)}ms"]
        statement = f"SELECT {columns} FROM {quote_identifier(self.measurement)} WHERE {' AND '.join(where)}"
        groups = [f"time({int(self.every_ms)}ms)"] if self.every_ms else []
        groups += [quote_identifier(t) for t in self.group_by]
        if groups:
            statement += " GROUP BY " + ", ".join(groups)
        if self.newest:
            statement += f" ORDER BY time DESC LIMIT {int(limit or self.newest)}"
        return statement

    def windows(self, span_ms: int | None) -> list[tuple[int, int]]:
        """Consecutive inclusive [since, until] ranges of at most `span_ms` covering the range, oldest first."""
        if not span_ms or self.until_ms - self.since_ms < span_ms:
            return [(self.since_ms, self.until_ms)]
        bounds = []
        start = self.since_ms
        while start <= self.until_ms:
            end = min(start + span_ms - 1, self.until_ms)
            bounds.append((start, end))
            start = end + 1
        return bounds

    @property
    def series_expected(self) -> int:
        """How many series the answer can hold, at most (1 unless grouped over a list of tag values)."""
        if self.group_by and self.any_of is not None:
            return len(self.any_of[1])
        return 1

    def narrowed(self, since_ms: int, until_ms: int) -> Select:
        return replace(self, since_ms=since_ms, until_ms=until_ms)

    def merge(self, parts: Sequence[list[Series]]) -> list[Series]:
        """The answer of the whole range from the answers of its windows (oldest window first)."""
        if len(parts) == 1:
            return parts[0]
        grouped: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[Series, list[list[Any]]]] = {}
        for part in parts:
            for series in part:
                key = (series.name, tuple(sorted(series.tags.items())))
                if key not in grouped:
                    grouped[key] = (series, [])
                grouped[key][1].extend(series.values)
        merged = []
        for first, rows in grouped.values():
            if self.every_ms and self.aggregate == "count":
                # a bucket cut by a window boundary comes back from both windows: add them up
                buckets: dict[int, int] = {}
                for row in rows:
                    buckets[int(row[0])] = buckets.get(int(row[0]), 0) + int(row[1] or 0)
                rows = [[t, n] for t, n in sorted(buckets.items())]  # noqa: PLW2901
            elif self.aggregate == "count":
                rows = [[self.since_ms, sum(int(row[1]) for row in rows if row[1] is not None)]]  # noqa: PLW2901
            elif self.aggregate == "last":
                rows = [max(rows, key=lambda row: row[0])]  # noqa: PLW2901
            elif self.aggregate == "first":
                rows = [min(rows, key=lambda row: row[0])]  # noqa: PLW2901
            elif self.newest:
                rows = sorted(rows, key=lambda row: row[0], reverse=True)[: self.newest]  # noqa: PLW2901
            merged.append(Series(first.name, first.tags, first.columns, rows))
        return merged
