"""freqfeed: one Binance market-data producer for a fleet of freqtrade/FreqAI bots."""

__version__ = "0.1.0"
