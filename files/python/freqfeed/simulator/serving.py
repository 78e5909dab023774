"""What every exchange's simulator shares around its own routes: the aiohttp app on one port, the
background publisher, the websocket connections, the stop, and running until SIGTERM/SIGINT.

Binance's (freqfeed.exchanges.binance.simulator) and Hyperliquid's (freqfeed.exchanges.hyperliquid.simulator)
subclass SimServer; the clock (clock.py) and the market (market.py) are shared too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any, Self

from aiohttp import web

from freqfeed.simulator.clock import SimClock


class SimServer:
    """Set by the subclass: `clock`, `connections` (each with its `ws`), `_tasks`, `_runner = None`;
    provided by it: `app()` and `_publisher()`."""

    name = "simulator"  # in the listening line
    clock: SimClock
    connections: set[Any]
    _tasks: list[asyncio.Task[None]]
    _runner: web.AppRunner | None
    _site: web.TCPSite | None = None
    host: str
    port: int

    def app(self) -> web.Application:
        raise NotImplementedError

    async def _publisher(self) -> None:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        """`listen`, then the simulator itself (`await Simulator(...).start()`)."""
        await self.listen(host, port)
        return self

    async def listen(self, host: str, port: int) -> None:
        """Serve `app()` on host:port (0: any free port, then `self.port`) and start the publisher."""
        self._runner = web.AppRunner(self.app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        self.host = host
        self._site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await self._site.start()
        self.port = int(self._runner.addresses[0][1])
        self._tasks.append(asyncio.create_task(self._publisher()))
        logging.getLogger(type(self).__module__).info(
            "%s listening on http://%s:%d (speed %gx, exchange time %s)", self.name, host, self.port,
            self.clock.speed, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.clock.now() / 1000)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.ws.close()
        if self._runner:
            await self._runner.cleanup()


async def run_until_signalled(simulator: SimServer) -> None:
    """Serve until SIGTERM or SIGINT, then stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await simulator.stop()
