"""The gateway's order books on Hyperliquid: one `l2Book` websocket subscription per configured coin (the
default aggregation: no nSigFigs / mantissa), over the package's stream client (streams.py), one connection.

A book is served only while it is younger than `gateway.book_max_age` (Hyperliquid pushes a changed book on a
block at least 0.5 s after the previous one) and only from the connection that is up: every book is dropped
when the connection goes, so nothing from before a reconnect is ever served. Anything else (another coin, an
aggregation, a stale or missing book) is forwarded by the caller. The book is sent as the subscription
delivered it: the websocket's `l2Book` data has the REST answer's shape ({coin, time, levels}).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from freqfeed.exchanges.hyperliquid import wire
from freqfeed.exchanges.hyperliquid.streams import HyperliquidStreams, StreamEvents

LABEL = "gateway books"


class BookStreams(StreamEvents):
    def __init__(self, ws_url: str, coins: Iterable[str], *, max_age_s: float, silence_s: float) -> None:
        self.coins = frozenset(coins)
        self.max_age_s = max_age_s
        self.books: dict[str, tuple[float, bytes]] = {}  # coin -> (monotonic time received, answer body)
        self.served = self.stale = self.disconnects = 0
        self.streams = HyperliquidStreams(ws_url, [wire.Subscription("l2Book", coin) for coin in sorted(self.coins)],
                                          self, silence_timeout=silence_s, label=LABEL)

    def start(self) -> None:
        if self.coins:
            self.streams.start()

    async def stop(self) -> None:
        await self.streams.stop()

    def on_message(self, channel: str, data: Any) -> None:
        if channel != "l2Book" or not isinstance(data, dict) or data.get("coin") not in self.coins:
            return
        levels = data.get("levels")
        if not isinstance(levels, list) or len(levels) != 2 or not isinstance(data.get("time"), int):
            return
        self.books[str(data["coin"])] = (time.monotonic(), json.dumps(data, separators=(",", ":")).encode())

    def on_disconnect(self, label: str, reason: str, retry_in: float) -> None:
        self.books.clear()  # never a book from before the reconnect
        self.disconnects += 1

    def answer(self, request: wire.InfoRequest) -> bytes | None:
        """The body for an l2Book request when a fresh streamed book answers it, else None (forward)."""
        if request.n_sig_figs is not None or request.mantissa is not None or request.coin not in self.coins:
            return None
        held = self.books.get(str(request.coin))
        if held is None or time.monotonic() - held[0] > self.max_age_s:
            self.stale += 1
            return None
        self.served += 1
        return held[1]

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {"streamed": len(self.coins), "held": len(self.books), "served": self.served,
                "not_fresh": self.stale, "disconnects": self.disconnects,
                "oldest_ms": round(max((now - t for t, _ in self.books.values()), default=0.0) * 1000)}
