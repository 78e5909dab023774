"""A gateway process's life, the same for every exchange: start (bind), announce readiness to systemd while
serving, stop on SIGTERM/SIGINT (STOPPING=1), and one closing log line with what it answered."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

from freqfeed.config import Config
from freqfeed.gateway.notify import notify

log = logging.getLogger("freqfeed.gateway")


class Service(Protocol):
    @property
    def counters(self) -> Mapping[str, int]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def serve_until_stopped(config: Config, gateway: Service,
                              announce: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> int:
    """Run `gateway` until a stop signal: 1 when it cannot listen, else 0. `announce(stop)` runs beside it
    (READY=1 and STATUS= for systemd) and is cancelled at the stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await gateway.start()
    except OSError as exc:
        log.error("gateway cannot listen on %s: %s", config.gateway.listen, exc.strerror or exc)
        await gateway.stop()
        return 1
    announcer = asyncio.create_task(announce(stop), name="sd_notify")
    with contextlib.suppress(asyncio.CancelledError):
        await stop.wait()
    announcer.cancel()
    notify("STOPPING=1")
    await gateway.stop()
    log.info("gateway stopped: %d requests, %d answered here, %d forwarded", gateway.counters["requests"],
             gateway.counters["local"], gateway.counters["forwarded"])
    return 0
