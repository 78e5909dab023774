"""One package per exchange, each behind the same small interface (issue 18).

The layout, modelled on cryptofeed's split between a feed (what one exchange says and how to ask it) and
its backends (what the rest of the program does with it):

    freqfeed/exchanges/<name>/
        wire.py       the exchange's wire format in one place: request validation and the exchange's own
                      errors, answer shapes, weights and limits, names (coins, symbols, pairs), websocket
                      messages. Pure: no I/O, no clock. Shared by the simulator, the clients and the gateway,
                      so they cannot disagree about what the exchange says.
        rest.py       one REST client (aiohttp) behind the shared weight limiter (freqfeed.ratelimit): the
                      only code that sends REST requests to that exchange, for the producer and the gateway.
        streams.py    one websocket client: subscriptions within the exchange's limits, keep-alive,
                      reconnects with backoff, silence detection, closed candles.
        simulator.py  a deterministic market that speaks the wire format (candles a pure function of seed,
                      coin and time: freqfeed.simulator.market), for tests, benchmarks and the lab.

What the producer, sync, gateway, plan and status need from an exchange package (to be formalised as a
Protocol when Binance moves in, see docs/notes/hl.md):
  - pairs <-> exchange names (`pair_to_coin` / `coin_to_pair` for Hyperliquid, `exchange_symbol` for Binance)
  - the candle intervals it serves and its history horizon (Binance: none; Hyperliquid: 5000 candles)
  - a REST client: closed candles in [start, end], funding rates in [start, end], exchange time
  - a stream client: closed candles and candles in progress, mark price / funding estimates, (re)connects
  - freqtrade's layout for it (candle types, mark candles, funding timeframe)

`clients.py` picks the producer's REST and stream clients by the config's `exchange.name`.
Today only `hyperliquid` lives here; Binance's modules (binance_wire, exchange, streams, simulator/) move
in later without behaviour changes.
"""
