"""The gateway's order books and mids on Hyperliquid: one `l2Book` websocket subscription per configured coin
(the default aggregation: no nSigFigs / mantissa) and one `allMids` (the main dex), over the package's stream
client (streams.py), one connection.

A book is served only while it is younger than `gateway.book_max_age` (Hyperliquid pushes a changed book on a
block at least 0.5 s after the previous one) and only from the connection that is up: every book is dropped
when the connection goes, so nothing from before a reconnect is ever served. Anything else (another coin, an
aggregation, a stale or missing book) is forwarded by the caller. The book is sent as the subscription
delivered it: the websocket's `l2Book` data has the REST answer's shape ({coin, time, levels}); `allMids`
is unwrapped (the websocket sends {"mids": {...}}, REST the mapping itself).
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
        self.mids: tuple[float, bytes] | None = None
        self.served = self.stale = self.disconnects = 0
        self.connected = False
        self.reconnects = self.silences = 0
        self.oldest_served_ms = 0.0  # the oldest book age served in the current (real) minute
        self._oldest_minute = 0
        subscriptions = [wire.Subscription("l2Book", coin) for coin in sorted(self.coins)]
        self.streams = HyperliquidStreams(ws_url, [*subscriptions, wire.Subscription("allMids")], self,
                                          silence_timeout=silence_s, label=LABEL)

    def start(self) -> None:
        self.streams.start()

    async def stop(self) -> None:
        await self.streams.stop()

    def on_message(self, channel: str, data: Any) -> None:
        if channel == "allMids":
            mids = data.get("mids") if isinstance(data, dict) else None
            if isinstance(mids, dict):
                self.mids = (time.monotonic(), json.dumps(mids, separators=(",", ":")).encode())
            return
        if channel != "l2Book" or not isinstance(data, dict) or data.get("coin") not in self.coins:
            return
        levels = data.get("levels")
        if not isinstance(levels, list) or len(levels) != 2 or not isinstance(data.get("time"), int):
            return
        self.books[str(data["coin"])] = (time.monotonic(), json.dumps(data, separators=(",", ":")).encode())

    def on_connect(self, label: str, reconnect: bool) -> None:
        self.connected = True
        self.reconnects += reconnect

    def on_disconnect(self, label: str, reason: str, retry_in: float) -> None:
        self.books.clear()  # never a book from before the reconnect
        self.mids = None
        self.connected = False
        self.disconnects += 1
        self.silences += reason.startswith("no data for")  # streams.py's silence

    def _served(self, received: float) -> None:
        self.served += 1
        now = time.monotonic()
        minute = int(time.time() // 60)
        if minute != self._oldest_minute:
            self._oldest_minute, self.oldest_served_ms = minute, 0.0
        self.oldest_served_ms = max(self.oldest_served_ms, (now - received) * 1000)

    def answer(self, request: wire.InfoRequest) -> bytes | None:
        """The body for an l2Book (allMids) request when a fresh streamed book (mids) answers it, else None."""
        if request.type == "allMids":
            if request.dex or self.mids is None or time.monotonic() - self.mids[0] > self.max_age_s:
                return None
            self._served(self.mids[0])
            return self.mids[1]
        if request.n_sig_figs is not None or request.mantissa is not None or request.coin not in self.coins:
            return None
        held = self.books.get(str(request.coin))
        if held is None or time.monotonic() - held[0] > self.max_age_s:
            self.stale += 1
            return None
        self._served(held[0])
        return held[1]

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {"streamed": len(self.coins), "held": len(self.books), "mids": self.mids is not None,
                "served": self.served, "connected": self.connected, "reconnects": self.reconnects,
                "silences": self.silences, "oldest_served_ms": round(self.oldest_served_ms, 1),
                "not_fresh": self.stale, "disconnects": self.disconnects,
                "oldest_ms": round(max((now - t for t, _ in self.books.values()), default=0.0) * 1000)}
