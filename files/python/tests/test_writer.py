"""The producer's buffered writer against a real influxd: batching, draining, outages, overflow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from freqfeed.config import InfluxDBConfig
from freqfeed.influx import InfluxDB
from freqfeed.localinflux import LocalInfluxDB
from freqfeed.writer import BufferedWriter

pytestmark = pytest.mark.integration

T0 = 1_795_572_000_000


def lines(count: int, offset: int = 0) -> list[str]:
    return [f"m x={i} {T0 + (offset + i) * 60_000}" for i in range(count)]


def stored_count(client: InfluxDB) -> int:
    [answer] = client.query("SELECT count(x) FROM m")
    return int(answer[0].values[0][1]) if answer else 0


async def until(condition: Callable[[], Any], timeout: float, what: str) -> None:
    """Wait (on the event loop, the writer running) until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.01)


def run_with_writer(client: InfluxDB, body: Callable[[BufferedWriter], Awaitable[Any]], **options: Any) -> Any:
    async def main() -> Any:
        writer = BufferedWriter(client, **options)
        task = asyncio.create_task(writer.run())
        try:
            return await body(writer)
        finally:
            task.cancel()

    return asyncio.run(main())


def test_flushes_after_the_interval(client: InfluxDB) -> None:
    async def body(writer: BufferedWriter) -> tuple[float, int]:
        writer.add(lines(3))
        added = time.monotonic()
        await until(lambda: writer.written == 3, 10, "the part batch written")
        return time.monotonic() - added, stored_count(client)

    waited, stored = run_with_writer(client, body, batch_size=100, flush_interval=0.3)
    assert stored == 3
    assert waited >= 0.3, "a part batch waits for the flush interval"  # a lower bound: load only adds to it


def test_full_batches_go_out_at_once(client: InfluxDB) -> None:
    async def body(writer: BufferedWriter) -> tuple[int, int, int, int]:
        writer.add(lines(250))
        await until(lambda: writer.written == 200, 20, "the two full batches written")
        pending, by_size = writer.pending, stored_count(client)
        assert await writer.drain(10)
        return writer.written, pending, by_size, stored_count(client)

    # the interval (60 s) is longer than the wait: the full batches went out by size
    assert run_with_writer(client, body, batch_size=100, flush_interval=60) == (250, 50, 200, 250)


def test_drain_writes_everything_and_writer_keeps_working(client: InfluxDB) -> None:
    async def body(writer: BufferedWriter) -> tuple[bool, int, int]:
        writer.add(lines(5))
        drained = await writer.drain(5)
        count = stored_count(client)
        writer.add(lines(2, offset=10))  # the timer works again after a drain
        await until(lambda: writer.written == 7, 10, "the lines added after the drain written")
        return drained, count, stored_count(client)

    assert run_with_writer(client, body, flush_interval=0.2) == (True, 5, 7)


def test_written_through_waits_for_its_lines_only(client: InfluxDB) -> None:
    """What the backfill waits for after each page: the lines added so far are in InfluxDB, however much
    the live streams add meanwhile (drain() would wait for those too)."""
    async def body(writer: BufferedWriter) -> tuple[bool, int, int, bool]:
        writer.add(lines(120))
        mark = writer.added

        async def streams() -> None:  # lines keep coming while the page is written
            for i in range(40):
                writer.add(lines(5, offset=1000 + 5 * i))
                await asyncio.sleep(0.01)

        feeding = asyncio.create_task(streams())
        done = await writer.written_through(mark, timeout=5)
        count = stored_count(client)
        await feeding
        late = await writer.written_through(writer.added + 1, timeout=0.2)  # lines never added: times out
        return done, count, late

    # written_through() gives up after 5 s, half the 10 s interval: done means sent at once
    done, count, late = run_with_writer(client, body, batch_size=50, flush_interval=10)
    assert done and count >= 120, "the page's lines were sent at once, not after the 10 s interval"
    assert late is False


def test_outage_buffers_and_recovers(tmp_path: Path) -> None:
    with LocalInfluxDB(tmp_path / "influxd") as influxd:
        client = InfluxDB(InfluxDBConfig(url=influxd.url, database="m", timeout=2), retries=0)
        client.ensure_database()

        async def body(writer: BufferedWriter) -> tuple[int, bool, int]:
            influxd.stop()
            writer.add(lines(40))
            await until(lambda: writer.failing_since is not None, 30, "a failed write")
            pending_while_down = writer.pending
            failing = writer.failing_since is not None
            await asyncio.to_thread(influxd.start)
            assert await writer.drain(30)
            return pending_while_down, failing, stored_count(client)

        assert run_with_writer(client, body, flush_interval=0.05) == (40, True, 40)


def test_overflow_drops_oldest_and_flags_repair(tmp_path: Path) -> None:
    with LocalInfluxDB(tmp_path / "influxd") as influxd:
        client = InfluxDB(InfluxDBConfig(url=influxd.url, database="m", timeout=2), retries=0)
        client.ensure_database()

        async def body(writer: BufferedWriter) -> tuple[int, int, bool, int]:
            influxd.stop()
            writer.add(lines(1500))
            await until(lambda: writer.failing_since is not None, 30, "a failed write")
            await asyncio.to_thread(influxd.start)
            assert await writer.drain(30)
            [answer] = client.query("SELECT first(x) FROM m")
            return writer.dropped, stored_count(client), writer.overflowed, int(answer[0].values[0][1])

        dropped, count, overflowed, first = run_with_writer(client, body, buffer_limit=1000, flush_interval=0.05)
        assert (dropped, count, overflowed) == (500, 1000, True)
        assert first == 500, "the oldest points go first"


def test_rejected_batch_is_dropped_not_retried(client: InfluxDB, caplog: pytest.LogCaptureFixture) -> None:
    async def body(writer: BufferedWriter) -> tuple[int, int]:
        writer.add(["not line protocol"])
        await writer.drain(5)
        writer.add(lines(2))
        await writer.drain(5)
        return writer.dropped, stored_count(client)

    assert run_with_writer(client, body, flush_interval=0.05) == (1, 2)
    assert "InfluxDB rejected a batch of 1 points, dropped" in caplog.text


def test_points_beyond_retention_count_as_handled(client: InfluxDB) -> None:
    old = int((time.time() - 400 * 86_400) * 1000)

    async def body(writer: BufferedWriter) -> tuple[int, int, int]:
        writer.add([f"m x=1 {old}", *lines(2)])
        assert await writer.drain(5)
        return writer.written, writer.dropped, stored_count(client)

    assert run_with_writer(client, body, flush_interval=0.05) == (3, 0, 2)
