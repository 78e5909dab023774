"""A gateway process's life, the same for every exchange: start (bind), announce readiness to systemd while
serving, stop on SIGTERM/SIGINT (STOPPING=1), and one closing log line with what it answered; and the two
ends every exchange's gateway shares, binding its HTTP server (`listen`) and letting go of it and its clients
at the stop (`release`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from freqfeed.config import Config
from freqfeed.gateway.notify import notify

if TYPE_CHECKING:
    from freqfeed.exchanges.http import RestSession
    from freqfeed.influx import InfluxDB

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


async def listen(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve `app` on host:port (0: any free port): its runner and the port bound. OSError when it cannot listen
    (the runner is cleaned up first)."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_address=True).start()
    except BaseException:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runner.cleanup(), timeout=0.5)
        raise
    return runner, int(runner.addresses[0][1])


async def release(runner: web.AppRunner | None, metrics: Any, rest: RestSession, influx: InfluxDB) -> None:
    """The end of a gateway's stop, once its own tasks are cancelled: the HTTP server (at most 0.5 s for the
    requests under way), the metrics server (freqfeed.metrics.MetricsServer or None), the exchange's REST
    session; InfluxDB's sessions are closed on a daemon thread: a read under way is abandoned, not waited for,
    so the stop takes well under a second."""
    if runner is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runner.cleanup(), timeout=0.5)
    if metrics is not None:
        await metrics.stop()
    await rest.close()
    threading.Thread(target=influx.close, daemon=True).start()
