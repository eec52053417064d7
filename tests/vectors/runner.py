"""Replays exchange scenario vectors (consensus-specs style).

A vector is a JSON file::

    {"name", "description",
     "genesis": {"balances": {name: quote}, "insurance_fund": quote,
                 "markets": {market index: {param: value}}, "params": {...}},
     "setup":   [block, ...],        # builds the pre state
     "pre":     state,               # the state after setup (ExchangeApp.state_summary)
     "blocks":  [block, ...],        # the operation under test
     "post":    {"results": [[code, ...] per block], "state": state, "events": [kind, ...]}}

A block is ``{"prices": [ticks per market] | null, "txs": [tx, ...]}``; a tx is
``{"signer": name, "type": body class, "fields": {...}, "nonce": optional int}``. When
an operation must be rejected, its code in ``post.results`` is non-zero and the state is
unchanged apart from the sender's nonce. Accounts are named; their addresses are the
first 20 bytes of SHA-256(SHA-256(name)) public keys (see tests/exchange/support.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from appchaind.abci import FinalizeResult
from appchaind.exchange import ExchangeApp, txs
from tests.exchange.support import BLOCK_MS, GENESIS_MS, Driver, genesis, market

VECTOR_DIR = Path(__file__).parent

MARKETS = [("BTC-PERP", "50000"), ("ETH-PERP", "3000")]


def build_genesis(spec: dict[str, Any]):
    markets = []
    for index, (symbol, price) in enumerate(MARKETS):
        markets.append(market(symbol, price, **spec.get("markets", {}).get(str(index), {})))
    return genesis(
        spec["balances"],
        markets=markets,
        params=spec.get("params"),
        insurance_fund=spec.get("insurance_fund", "100000"),
    )


def body_of(tx: dict[str, Any]) -> object:
    cls = getattr(txs, tx["type"])
    fields = dict(tx["fields"])
    if cls is txs.ReplaceOrder:
        fields["order"] = txs.PlaceOrder(**fields["order"])
    if cls is txs.Transfer:
        fields["recipient"] = bytes.fromhex(fields["recipient"])
    return cls(**fields)


def run_block(driver: Driver, block: dict[str, Any]) -> FinalizeResult:
    signed = []
    for i, tx in enumerate(block["txs"]):
        nonce = tx.get("nonce", GENESIS_MS + driver.height * BLOCK_MS - 1000 + i)
        signed.append(driver.tx(tx["signer"], body_of(tx), nonce=nonce))
    return driver.block(signed, block.get("prices"))


def replay(
    vector: dict[str, Any],
) -> tuple[dict[str, Any], list[list[int]], list[str], ExchangeApp]:
    """Run a vector; returns (pre state, result codes per block, event kinds, app)."""
    app = ExchangeApp(build_genesis(vector["genesis"]))
    driver = Driver(app)
    for block in vector["setup"]:
        run_block(driver, block)
    pre = app.state_summary()
    codes = []
    kinds: list[str] = []
    for block in vector["blocks"]:
        result = run_block(driver, block)
        codes.append([int(r.code) for r in result.tx_results])
        for r in result.tx_results:
            kinds.extend(e.kind for e in r.events)
        kinds.extend(e.kind for e in result.events)
        assert app.clearing.conservation_gap() == 0
    return pre, codes, kinds, app


def load_vectors() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(VECTOR_DIR.glob("*.json"))]
