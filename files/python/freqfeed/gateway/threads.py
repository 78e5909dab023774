"""Blocking InfluxDB reads off the event loop, on daemon threads, so a stop never waits for them.

asyncio.to_thread runs on the loop's default executor, which `asyncio.run` joins at exit: a SIGTERM during a
30-second read kept the process alive until the read returned. These workers are daemon threads: when the
gateway stops, a read under way is abandoned (its answer is dropped) and the process exits at once. A
fixed set of workers, so each keeps its HTTP session (connections are reused).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class DaemonWorkers:
    def __init__(self, workers: int, name: str = "influxdb-read") -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(max(workers, 1))]
        self._started = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if not self._started:
            self._started = True
            for thread in self._threads:
                thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, args, loop, future))
        return await future

    def _work(self) -> None:
        while True:
            fn, args, loop, future = self._jobs.get()
            if future.cancelled():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the awaiting coroutine
                _deliver(loop, future, None, exc)
            else:
                _deliver(loop, future, result, None)


def _deliver(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any,
             exc: BaseException | None) -> None:
    def settle() -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop is closed: the gateway stopped, nobody waits
        loop.call_soon_threadsafe(settle)
