"""Binance's market-data gateway (`freqfeed serve` with exchange.name binance): Binance's public REST API for
the bots on a feeder. EXCHANGE.serve (freqfeed.exchanges.binance) runs `app.main`.

    app.py        the HTTP server: what is answered here, what is forwarded, what is refused; status
    admission.py  what is let in: the allowlist of public endpoints, checked on the raw request target
    history.py    klines, mark-price klines and funding rates from InfluxDB (caches, completeness, close wait)
    series.py     one series' closed candles, compact: plain newest rows, older ones in zlib blocks
    rows.py       Binance's JSON kline rows from InfluxDB's numbers, fast
    snapshot.py   the caches on disk across restarts
    permanent.py  forwarded answers that can never change, kept on disk

Binance's own clients live beside it in the package: freqfeed.exchanges.binance.upstream (forwarded
requests: cache, coalescing, weight limiter; exchangeInfo, clock) and freqfeed.exchanges.binance.books
(order books and book tickers from Binance's websocket streams, silence noticed). What every exchange's
gateway shares (process life, systemd readiness, worker threads) is freqfeed.gateway.
"""
