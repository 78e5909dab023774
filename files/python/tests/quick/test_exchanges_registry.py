"""freqfeed.exchanges: every exchange.name has a package with its description, and nothing outside the
packages asks which exchange it is."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import freqfeed
from freqfeed import config, exchanges
from freqfeed.exchanges.base import Exchange

PACKAGE = Path(inspect.getfile(freqfeed)).parent


@pytest.mark.parametrize("name", config.EXCHANGES)
def test_every_configured_exchange_has_a_package_and_a_description(name: str) -> None:
    described = exchanges.get(name)
    assert isinstance(described, Exchange) and described.name == name
    assert described.trading_modes and set(described.trading_modes) <= {"futures", "spot"}
    assert described.timeframes and described.horizon in (None, 5000)
    assert described.endpoint_profile is None or described.endpoint_profile in config.DEFAULT_ENDPOINTS
    for factory in (described.pair_problem, described.producer_rest, described.producer_streams, described.serve,
                    described.simulate):
        assert callable(factory)


def test_the_descriptions_say_what_the_code_used_to_compare() -> None:
    binance, hyperliquid = exchanges.get("binance"), exchanges.get("hyperliquid")
    assert (binance.has_mark_series, binance.funding_has_mark_price, binance.horizon) == (True, True, None)
    hl = hyperliquid
    assert (hl.has_mark_series, hl.funding_has_mark_price, hl.horizon) == (False, False, 5000)
    assert hyperliquid.funding_timeframe == "1h" and "6h" not in hyperliquid.timeframes and "6h" in binance.timeframes
    assert binance.pair_problem("BTC/USDT:USDT", "futures") is None
    assert binance.pair_problem("BTC/USDC:USDT", "futures") is not None
    assert hyperliquid.pair_problem("KPEPE/USDC:USDC", "futures") is None
    assert hyperliquid.pair_problem("BTC/USDT:USDT", "futures") is not None


def test_an_unknown_exchange_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown exchange 'kraken' \(expected one of binance, hyperliquid\)"):
        exchanges.get("kraken")


def test_no_module_outside_the_packages_compares_exchange_names() -> None:
    """`x == "hyperliquid"` and the like belong in freqfeed/exchanges/<name>/ (its Exchange), not elsewhere."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if PACKAGE / "exchanges" in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
                names = [c.value for c in (node.left, *node.comparators) if isinstance(c, ast.Constant)]
                if any(name in config.EXCHANGES for name in names):
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert found == []
