"""Hyperliquid perpetuals (USDC): wire format (`wire`), REST client (`rest`), websocket client (`streams`)
and a deterministic simulator (`simulator`, `python -m freqfeed.exchanges.hyperliquid.simulator`).

Facts and their sources: shared/reference/hyperliquid.md; decisions: docs/notes/hl.md.
"""
