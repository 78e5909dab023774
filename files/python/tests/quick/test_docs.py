"""The documentation's freqtrade snippet, which test_gateway.py and scripts/lab_bots.py use as written: it is
where they look for it, parses, and points only ccxt's public URL keys at the gateway's default address."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from freqfeed.config import GatewayConfig

REPO = Path(__file__).resolve().parents[4]
GATEWAY_DOC = REPO / "docs" / "gateway.md"
# the readers' own pattern (tests/test_gateway.py readme_ccxt_config, scripts/lab_bots.py readme_ccxt_config)
SNIPPET = re.compile(r"<!-- freqtrade-futures-config -->\s*```json\n(.*?)```", re.S)


def snippet() -> dict[str, Any]:
    found = SNIPPET.search(GATEWAY_DOC.read_text())
    assert found, f"{GATEWAY_DOC} has no freqtrade-futures-config block"
    parsed: dict[str, Any] = json.loads(found.group(1))
    return parsed


def test_the_snippet_points_only_public_keys_at_the_default_gateway() -> None:
    exchange = snippet()["exchange"]
    assert exchange["name"] == "binance" and exchange["only_from_ccxt"] is True
    ccxt = exchange["ccxt_config"]
    assert ccxt["options"] == {"fetchMarkets": {"types": ["linear"]}}
    default = GatewayConfig()
    base = f"http://{default.host}:{default.port}"
    assert ccxt["urls"]["api"] == {"fapiPublic": f"{base}/fapi/v1", "fapiPublicV2": f"{base}/fapi/v2",
                                   "fapiPublicV3": f"{base}/fapi/v3"}


def test_the_readers_look_in_the_page_that_holds_it() -> None:
    for reader in (REPO / "files/python/tests/test_gateway.py", REPO / "scripts/lab_bots.py"):
        text = reader.read_text()
        assert '"docs" / "gateway.md"' in text and "freqtrade-futures-config -->" in text, reader
