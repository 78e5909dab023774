"""Run on the feeder by verify.yml with freqfeed's venv: the gateway serves from InfluxDB and the streams.

For every configured pair and timeframe, the newest 100 closed candles through the gateway must be, value for
value, the candles freqfeed's reader gets from InfluxDB, none of them forwarded to the exchange: Binance's
`/fapi/v1/klines?endTime=<newest close>`, Hyperliquid's `POST /info` candleSnapshot. Every pair's order book
(Binance `/fapi/v1/depth?limit=5`, Hyperliquid l2Book: what a bot's pricing asks for) must come from the
websocket streams of the configured `gateway.ws_url`, none forwarded over REST.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable

from freqfeed import config as config_module
from freqfeed.config import exchange_symbol
from freqfeed.reader import Reader
from freqfeed.timeframes import last_closed_open, timeframe_ms


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def post(url: str, body: object) -> object:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def stored_candles(reader: Reader, pair: str, tf: str, end: int) -> list[tuple[int, float, float, float, float, float]]:
    """InfluxDB's closed candles of a series up to the one opened at `end`, as (open ms, o, h, l, c, v)."""
    stored = reader.ohlcv(pair, tf, since=end - 99 * timeframe_ms(tf))
    return [(t, o, h, lo, c, v) for t, o, h, lo, c, v in
            ((int(d.value // 1_000_000), o, h, lo, c, v) for d, o, h, lo, c, v in
             stored[["date", "open", "high", "low", "close", "volume"]].itertuples(index=False)) if t <= end]


def compare_all(cfg: config_module.Config, fetch: Callable[[str, str, int], list[tuple[int, ...]]]) -> int | None:
    """Every configured series' newest 100 closed candles through the gateway (`fetch(pair, tf, newest open)`)
    against InfluxDB's; the number compared, or None (said why) when one differs."""
    compared = 0
    with Reader.from_config(cfg) as reader:  # this exchange's series
        for pair in cfg.pairs:
            for tf in cfg.timeframes:
                end = last_closed_open(int(time.time() * 1000) - 5_000, tf)
                mine = fetch(pair, tf, end)
                theirs = stored_candles(reader, pair, tf, end)
                if mine != theirs[-len(mine):] or len(mine) != 100:
                    print(f"{pair} {tf}: gateway {len(mine)} rows differ from InfluxDB's {len(theirs)}",
                          file=sys.stderr)
                    return None
                compared += len(mine)
    return compared


def wait_books(gateway: str, pairs: int) -> bool:
    """The configured pairs' books stream from the start; give the connection a few seconds to be up."""
    deadline = time.monotonic() + 30
    while get(f"{gateway}/_freqfeed/status")["books"]["streamed"] < pairs:  # type: ignore[index]
        if time.monotonic() > deadline:
            print(f"the gateway's book streams are not up: {get(f'{gateway}/_freqfeed/status')}", file=sys.stderr)
            return False
        time.sleep(1)
    return True


def hyperliquid(cfg: config_module.Config, gateway: str) -> int:
    from freqfeed.exchanges.hyperliquid import wire

    universe = wire.Universe.from_answer(post(f"{gateway}/info", {"type": "meta"}))
    before = get(f"{gateway}/_freqfeed/status")["by_type"]  # type: ignore[index]

    def snapshot(pair: str, tf: str, end: int) -> list[tuple[int, ...]]:
        body = wire.candle_snapshot_body(universe.pair_to_coin(pair), tf, end - 99 * timeframe_ms(tf), end)
        rows = post(f"{gateway}/info", body)
        return [(int(r["t"]), *(float(r[k]) for k in "ohlcv")) for r in rows]  # type: ignore[union-attr]

    compared = compare_all(cfg, snapshot)
    if compared is None:
        return 1
    status = get(f"{gateway}/_freqfeed/status")
    forwarded = status["by_type"].get("candleSnapshot", {}).get("forwarded", 0) - \
        before.get("candleSnapshot", {}).get("forwarded", 0)  # type: ignore[index, union-attr]
    print(f"gateway candleSnapshot equals InfluxDB: {compared} candles, {forwarded} requests forwarded")
    if forwarded:
        print(f"forward reasons: {status.get('forward_reasons')}", file=sys.stderr)  # type: ignore[union-attr]
    if not wait_books(gateway, len(cfg.pairs)):
        return 1
    before_books = get(f"{gateway}/_freqfeed/status")["books"]  # type: ignore[index]
    for pair in cfg.pairs:
        book = post(f"{gateway}/info", {"type": "l2Book", "coin": universe.pair_to_coin(pair)})
        bids, asks = book["levels"]  # type: ignore[index]
        if not bids or not asks or float(bids[0]["px"]) >= float(asks[0]["px"]):
            print(f"{pair}: not a book: {book}", file=sys.stderr)
            return 1
    after = get(f"{gateway}/_freqfeed/status")["books"]  # type: ignore[index]
    served = after["served"] - before_books["served"]
    print(f"gateway order books: {served} of {len(cfg.pairs)} served from the streams")
    return 0 if forwarded == 0 and served == len(cfg.pairs) else 1


def main() -> int:
    environ = {**os.environ, **config_module.read_env_file("/etc/freqfeed/sync.env")}
    cfg = config_module.load("/etc/freqfeed/sync.yml", environ)
    gateway = f"http://{cfg.gateway.listen}"
    if cfg.exchange.name == "hyperliquid":
        return hyperliquid(cfg, gateway)

    def klines(pair: str, tf: str, end: int) -> list[tuple[int, ...]]:
        rows = get(f"{gateway}/fapi/v1/klines?symbol={exchange_symbol(pair)}&interval={tf}&limit=100"
                   f"&endTime={end + timeframe_ms(tf) - 1}")
        return [(int(r[0]), *(float(x) for x in r[1:6])) for r in rows]  # type: ignore[union-attr]

    compared = compare_all(cfg, klines)
    if compared is None:
        return 1
    status = get(f"{gateway}/_freqfeed/status")
    forwarded = status.get("by_endpoint", {}).get("klines", {}).get("forwarded", 0)  # type: ignore[union-attr]
    print(f"gateway klines equal InfluxDB: {compared} candles, {forwarded} klines requests forwarded")
    if forwarded:  # why, so a failure says it: the gateway's own reasons and its fallbacks
        print(f"forward reasons: {status.get('forward_reasons')}, close-wait fallbacks: "  # type: ignore[union-attr]
              f"{status.get('close_wait_fallbacks')}, load: {status.get('load')}", file=sys.stderr)  # type: ignore[union-attr]
    if not wait_books(gateway, len(cfg.pairs)):
        return 1
    time.sleep(1)
    before = get(f"{gateway}/_freqfeed/status")["books"]  # type: ignore[index]
    for pair in cfg.pairs:
        book = get(f"{gateway}/fapi/v1/depth?symbol={exchange_symbol(pair)}&limit=5")
        bids, asks = book["bids"], book["asks"]  # type: ignore[index]
        if len(bids) != 5 or len(asks) != 5 or float(bids[0][0]) >= float(asks[0][0]):
            print(f"{pair}: not a 5-level book: {book}", file=sys.stderr)
            return 1
    after = get(f"{gateway}/_freqfeed/status")["books"]  # type: ignore[index]
    served, books_forwarded = after["served"] - before["served"], after["forwarded"] - before["forwarded"]
    print(f"gateway order books: {served} of {len(cfg.pairs)} served from the streams, {books_forwarded} forwarded")
    return 0 if forwarded == 0 and books_forwarded == 0 and served == len(cfg.pairs) else 1


if __name__ == "__main__":
    sys.exit(main())
