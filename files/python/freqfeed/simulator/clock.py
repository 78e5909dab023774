"""The simulator's exchange clock: starts at a chosen time and may run faster than real time."""

from __future__ import annotations

import time


class SimClock:
    def __init__(self, start_ms: int | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed: expected a positive number, got {speed}")
        self.start_ms = int(time.time() * 1000) if start_ms is None else int(start_ms)
        self.speed = speed
        self._origin = time.monotonic()

    def now(self) -> int:
        """Exchange time in epoch ms."""
        return self.start_ms + int((time.monotonic() - self._origin) * 1000 * self.speed)

    def real_seconds(self, exchange_ms: float) -> float:
        """How long `exchange_ms` of exchange time lasts in real seconds."""
        return exchange_ms / 1000 / self.speed

    def real_delay_until(self, exchange_ms: int) -> float:
        return max(0.0, self.real_seconds(exchange_ms - self.now()))
