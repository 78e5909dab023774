"""The market-data gateway (`freqfeed serve`): Binance's public REST API for the bots on a feeder.

    app.py       the HTTP server: what is answered here, what is forwarded, what is refused; status
    admission.py what is let in: the allowlist of public endpoints, checked on the raw request target
    history.py   klines, mark-price klines and funding rates from InfluxDB (caches, completeness, close wait)

Binance's own clients live in its package: freqfeed.exchanges.binance.upstream (forwarded requests: cache,
coalescing, weight limiter; exchangeInfo, clock) and freqfeed.exchanges.binance.books (order books and book
tickers from Binance's websocket streams, silence noticed).
"""
