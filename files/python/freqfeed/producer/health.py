"""The producer's health: the JSON file `freqfeed status` and the role's checks read (producer.health_file).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from freqfeed.producer.state import ProducerState

log = logging.getLogger("freqfeed.producer")  # one logger for the whole producer, as before the split

HEALTH_EVERY = 5.0  # real seconds between health-file updates


class Health(ProducerState):
    async def _health_loop(self) -> None:
        while True:
            self._write_health()
            await asyncio.sleep(HEALTH_EVERY)

    def health(self) -> dict[str, Any]:
        now = self.clock.now()
        series = {}
        for s in self.series.values():
            lag = None if s.last_open is None else max(0.0, (now - s.last_open - s.period) / 1000)
            series[s.label] = {"last_open": s.last_open, "lag_seconds": lag, "silent": s.silent}
        return {
            "updated": int(time.time() * 1000), "exchange_now": now, "started": int(self.started * 1000),
            "pid": os.getpid(), "backfill": self.backfill_summary, "counters": dict(self.counters),
            "backfill_progress": self.backfill_progress.as_json() if self.backfill_progress else None,
            "live_candles_written": self.live.written,
            "writer": {"written": self.writer.written, "pending": self.writer.pending,
                       "peak_pending": self.writer.peak_pending, "dropped": self.writer.dropped,
                       "failing_since_s": None if self.writer.failing_since is None
                       else round(time.monotonic() - self.writer.failing_since, 1),
                       "last_error": self.writer.last_error},
            "rest": {"requests": self.rest.stats.requests, "weight": self.rest.stats.weight,
                     "peak_used_weight": self.rest.stats.peak_used_weight,
                     "rate_limited": self.rest.stats.rate_limited, "banned": self.rest.stats.banned},
            "series": series,
        }

    def _write_health(self) -> None:
        path: Path | None = self.config.producer.health_file
        if path is None:
            return
        try:
            temp = path.with_name(f".{path.name}.tmp")
            temp.write_text(json.dumps(self.health(), indent=1))
            os.replace(temp, path)
        except OSError as exc:
            log.warning("cannot write the health file %s: %s", path, exc)
