"""Run on the feeder by verify.yml with freqfeed's venv: the gateway's klines equal InfluxDB's candles.

For every configured pair and timeframe, the newest 100 closed candles through the gateway
(`/fapi/v1/klines?endTime=<newest close>`) must be, value for value, the candles freqfeed's reader gets
from InfluxDB, and the simulator must have seen no kline request from the gateway for them.
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
    return 0 if forwarded == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
