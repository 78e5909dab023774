"""Run on the feeder by verify.yml with freqfeed's venv: the gateway serves from InfluxDB and the streams.

For every configured pair and timeframe, the newest 100 closed candles through the gateway
(`/fapi/v1/klines?endTime=<newest close>`) must be, value for value, the candles freqfeed's reader gets
from InfluxDB, and the simulator must have seen no kline request from the gateway for them. Every pair's
order book (`/fapi/v1/depth?limit=5`, what a bot's pricing asks for) must come from the websocket streams
of the configured `gateway.ws_url`, none forwarded over REST.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request

from freqfeed import config as config_module
from freqfeed.config import exchange_symbol
from freqfeed.reader import Reader
from freqfeed.timeframes import last_closed_open, timeframe_ms


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def main() -> int:
    environ = {**os.environ, **config_module.read_env_file("/etc/freqfeed/sync.env")}
    cfg = config_module.load("/etc/freqfeed/sync.yml", environ)
    gateway = f"http://{cfg.gateway.listen}"
    compared = 0
    with Reader(cfg.influxdb) as reader:
        for pair in cfg.pairs:
            for tf in cfg.timeframes:
                end = last_closed_open(int(time.time() * 1000) - 5_000, tf)
                rows = get(f"{gateway}/fapi/v1/klines?symbol={exchange_symbol(pair)}&interval={tf}&limit=100"
                           f"&endTime={end + timeframe_ms(tf) - 1}")
                stored = reader.ohlcv(pair, tf, since=end - 99 * timeframe_ms(tf))
                mine = [(int(r[0]), *(float(x) for x in r[1:6])) for r in rows]  # type: ignore[union-attr]
                theirs = [(t, o, h, lo, c, v) for t, o, h, lo, c, v in
                          ((int(d.value // 1_000_000), o, h, lo, c, v) for d, o, h, lo, c, v in
                           stored[["date", "open", "high", "low", "close", "volume"]].itertuples(index=False))
                          if t <= end]
                if mine != theirs[-len(mine):] or len(mine) != 100:
                    print(f"{pair} {tf}: gateway {len(mine)} rows differ from InfluxDB's {len(theirs)}", file=sys.stderr)
                    return 1
                compared += len(mine)
    status = get(f"{gateway}/_freqfeed/status")
    forwarded = status.get("by_endpoint", {}).get("klines", {}).get("forwarded", 0)  # type: ignore[union-attr]
    print(f"gateway klines equal InfluxDB: {compared} candles, {forwarded} klines requests forwarded")
    if forwarded:  # why, so a failure says it: the gateway's own reasons and its fallbacks
        print(f"forward reasons: {status.get('forward_reasons')}, close-wait fallbacks: "  # type: ignore[union-attr]
              f"{status.get('close_wait_fallbacks')}, load: {status.get('load')}", file=sys.stderr)  # type: ignore[union-attr]
    # the configured pairs' books stream from the start; give the connection a few seconds to be up
    deadline = time.monotonic() + 30
    while get(f"{gateway}/_freqfeed/status")["books"]["streamed"] < len(cfg.pairs):  # type: ignore[index]
        if time.monotonic() > deadline:
            print(f"the gateway's book streams are not up: {get(f'{gateway}/_freqfeed/status')}", file=sys.stderr)
            return 1
        time.sleep(1)
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
