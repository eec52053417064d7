"""Shared builders for exchange tests: a two-market genesis, trader keys, signed txs."""

from __future__ import annotations

from hashlib import sha256
from typing import Any

from appchaind.chain import types
from appchaind.chain.crypto import PrivateKey, merkle_root
from appchaind.chain.types import Block, Tx, Vote, sign_tx
from appchaind.exchange import ExchangeApp, PlaceOrder
from appchaind.exchange.txs import OrderType
from config.genesis import Genesis, parse_genesis

CHAIN_ID = "exchange-test"
GENESIS_TIME = "2026-01-01T00:00:00Z"
GENESIS_MS = 1767225600000
BLOCK_MS = 1000
BUY, SELL = 1, 0
GTC, POST_ONLY, IOC, FOK = 0, 1, 2, 3


def key(name: str) -> PrivateKey:
    return PrivateKey(sha256(name.encode()).digest())


def market(symbol: str, price: str, **overrides: Any) -> dict[str, Any]:
    """A market with tick 1 and lot 0.001 (quantum 1000 micro-units per tick-lot)."""
    doc = {
        "symbol": symbol,
        "tick_size": "1",
        "lot_size": "0.001",
        "initial_margin_ppm": 100_000,
        "maintenance_margin_ppm": 50_000,
        "maker_fee_ppm": -100,
        "taker_fee_ppm": 500,
        "liquidation_fee_ppm": 10_000,
        "funding_interval_blocks": 10,
        "max_funding_rate_ppm": 1_000,
        "impact_notional": "500",
        "price_band_ppm": 100_000,
        "max_oracle_move_ppm": 100_000,
        "initial_oracle_price": price,
    }
    doc.update(overrides)
    return doc


def genesis(
    balances: dict[str, str],
    *,
    markets: list[dict[str, Any]] | None = None,
    params: dict[str, Any] | None = None,
    insurance_fund: str = "100000",
) -> Genesis:
    doc = {
        "chain_id": CHAIN_ID,
        "genesis_time": GENESIS_TIME,
        "validators": [
            {"name": "v0", "public_key": key("validator").public_key.hex(), "power": 10}
        ],
        "params": {"faucet_enabled": True, **(params or {})},
        "markets": markets or [market("BTC-PERP", "50000"), market("ETH-PERP", "3000")],
        "accounts": [
            {"address": key(name).address.hex(), "balance": balance}
            for name, balance in balances.items()
        ],
        "insurance_fund": insurance_fund,
    }
    return parse_genesis(doc)


def block_of(txs: list[bytes], height: int = 1, time_ms: int = GENESIS_MS + BLOCK_MS) -> Block:
    """A block of ``txs`` (canonical bytes) as the node hands the application one: no last
    commit (so no oracle votes)."""
    header = types.Header(
        CHAIN_ID, height, time_ms, b"", b"", merkle_root(list(txs)), b"\x00" * 32, b"\x00" * 32,
        b"", key("validator").address, types.evidence_hash(()),
    )  # fmt: skip
    return Block(header, tuple(txs), (), None)


def precommit_with(extension: bytes, height: int = 1) -> Vote:
    """A precommit carrying ``extension`` (unsigned: the application judges only the
    extension)."""
    return Vote(
        types.PRECOMMIT, height, 0, b"\x01" * 32, GENESIS_MS, key("validator").address, 0,
        extension, b"", b"",
    )  # fmt: skip


class Driver:
    """Feeds blocks to an app: one block per :meth:`block` call, with unique nonces."""

    def __init__(self, app: ExchangeApp) -> None:
        self.app = app
        self.nonce = 0

    @property
    def height(self) -> int:
        return self.app.height + 1

    @property
    def time_ms(self) -> int:
        return GENESIS_MS + self.height * BLOCK_MS

    def tx(self, name: str, body: object, *, nonce: int | None = None) -> Tx:
        if nonce is None:
            self.nonce += 1
            nonce = self.time_ms - 10_000 + self.nonce
        return sign_tx(key(name), CHAIN_ID, nonce, self.height + 10, body)

    def block(self, txs: list[Tx], prices: list[int] | None = None, **kwargs: Any):
        height = self.height
        return self.app.execute_block(
            height,
            GENESIS_MS + height * BLOCK_MS,
            txs,
            prev_block_hash=sha256(height.to_bytes(8, "big")).digest(),
            oracle_prices=prices,
            signatures_verified=True,
            **kwargs,
        )


def limit(
    market_id: int, side: int, price: int, size: int, tif: int = GTC, **kw: Any
) -> PlaceOrder:
    return PlaceOrder(
        market_id, side, int(OrderType.LIMIT), tif, price, size, kw.get("trigger", 0),
        kw.get("reduce_only", False), kw.get("client_id", 0), kw.get("good_til_block", 0),
    )  # fmt: skip


def market_order(market_id: int, side: int, size: int, **kw: Any) -> PlaceOrder:
    return PlaceOrder(
        market_id, side, int(OrderType.MARKET), IOC, 0, size, 0, kw.get("reduce_only", False),
        kw.get("client_id", 0), 0,
    )  # fmt: skip


def conditional(
    market_id: int, side: int, order_type: int, trigger: int, size: int, price: int = 0, **kw: Any
) -> PlaceOrder:
    return PlaceOrder(
        market_id, side, int(order_type), kw.get("tif", GTC if price else IOC), price, size, trigger,
        kw.get("reduce_only", False), kw.get("client_id", 0), 0,
    )  # fmt: skip


def address(name: str) -> bytes:
    return key(name).address
