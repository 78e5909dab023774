"""What every exchange's market-data gateway (`freqfeed serve`) shares; exchange-neutral.

    lifecycle.py  a gateway process's life: start, readiness to systemd, stop on SIGTERM/SIGINT, closing line
    notify.py     systemd's readiness protocol (sd_notify over $NOTIFY_SOCKET), without a dependency
    threads.py    blocking InfluxDB reads on daemon worker threads, so a stop never waits for them

Each exchange's gateway lives in its package and is found through its EXCHANGE.serve
(freqfeed.exchanges.get): Binance's in freqfeed.exchanges.binance.gateway, Hyperliquid's in
freqfeed.exchanges.hyperliquid.gateway.
"""
