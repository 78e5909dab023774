"""Binance USD-M perpetuals and spot: wire format (`wire`), REST client (`rest`), the gateway's forwarding
client built on it (`upstream`), cryptofeed streams (`streams`), the gateway's book streams (`books`) and a
deterministic simulator (`simulator`, `freqfeed simulate`).

Facts and their sources: shared/reference/binance-futures-api.md; layout: docs/exchanges.md.
"""
