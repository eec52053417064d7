"""Valid messages made by the project's own constructors and signers: the seeds of the fuzz
targets. Deterministic (fixed keys, fixed times), so the committed corpus is reproducible.
"""

from __future__ import annotations

from hashlib import sha256

from appchaind.chain import codec, types
from appchaind.chain.crypto import PrivateKey, merkle_root
from appchaind.exchange import oracle
from appchaind.exchange.txs import (
    BondBuilder,
    BuilderBid,
    CancelAll,
    CancelOrder,
    CreateValidator,
    Delegate,
    EditValidator,
    Faucet,
    OrderType,
    PlaceOrder,
    RegisterBuilder,
    ReplaceOrder,
    Transfer,
    UnbondBuilder,
    Undelegate,
    Withdraw,
)
from config.genesis import Genesis, parse_genesis

__all__ = [
    "CHAIN_ID",
    "genesis",
    "GENESIS_MS",
    "key",
    "tx_bodies",
    "signed_txs",
    "vote",
    "proposal",
    "commit",
    "block",
    "evidence",
    "extension",
]

CHAIN_ID = "fuzz-chain"
#: 2026-01-01T00:00:00Z in milliseconds: the samples' genesis time.
GENESIS_MS = 1767225600000


def key(name: str) -> PrivateKey:
    return PrivateKey(sha256(name.encode()).digest())


def _market(symbol: str, price: str) -> dict[str, object]:
    return {
        "symbol": symbol, "tick_size": "1", "lot_size": "0.001",
        "initial_margin_ppm": 100_000, "maintenance_margin_ppm": 50_000,
        "maker_fee_ppm": -100, "taker_fee_ppm": 500, "liquidation_fee_ppm": 10_000,
        "funding_interval_blocks": 10, "max_funding_rate_ppm": 1_000,
        "impact_notional": "500", "price_band_ppm": 100_000, "max_oracle_move_ppm": 100_000,
        "initial_oracle_price": price,
    }  # fmt: skip


def genesis() -> Genesis:
    """Two markets, one validator, alice and bob funded, the faucet on."""
    return parse_genesis(
        {
            "chain_id": CHAIN_ID,
            "genesis_time": "2026-01-01T00:00:00Z",
            "validators": [
                {"name": "v0", "public_key": key("validator").public_key.hex(), "power": 10}
            ],
            "params": {"faucet_enabled": True},
            "markets": [_market("BTC-PERP", "50000"), _market("ETH-PERP", "3000")],
            "accounts": [
                {"address": key(name).address.hex(), "balance": "1000000"}
                for name in ("alice", "bob")
            ],
            "insurance_fund": "100000",
        }
    )


def tx_bodies() -> dict[str, object]:
    """One body of every tx kind, by name."""
    order = PlaceOrder(0, 1, int(OrderType.LIMIT), 0, 50_000, 10, 0, False, 7, 0)
    return {
        "place_order": order,
        "place_stop": PlaceOrder(1, 0, int(OrderType.STOP_MARKET), 2, 0, 5, 2_900, True, 8, 40),
        "cancel_order": CancelOrder(0, 1, 7, True),
        "cancel_all": CancelAll(0, True),
        "replace_order": ReplaceOrder(1, 7, True, order),
        "transfer": Transfer(key("bob").address, 1_000_000),
        "withdraw": Withdraw(5_000_000),
        "faucet": Faucet(1_000_000),
        "register_builder": RegisterBuilder("builder-1", 10_000_000),
        "bond_builder": BondBuilder(1_000_000),
        "unbond_builder": UnbondBuilder(1_000_000),
        "builder_bid": BuilderBid(2, 0, key("validator").address, 1_000, b"\x11" * 32),
        "create_validator": CreateValidator(
            key("node").public_key, b"\x22" * 64, "node-1", "https://example.org", 50_000, 10**7
        ),
        "delegate": Delegate(key("validator").address, 1_000_000),
        "undelegate": Undelegate(key("validator").address, 1_000_000),
        "edit_validator": EditValidator("node-1", "", 10_000),
    }


def signed_txs(sender: str = "alice", height: int = 1) -> dict[str, types.Tx]:
    """Every tx kind, signed by ``sender`` for :data:`CHAIN_ID`, valid at ``height`` (its
    nonce the block time of ``height``, a second apart)."""
    nonce = GENESIS_MS + height * 1000
    return {
        name: types.sign_tx(key(sender), CHAIN_ID, nonce + i, height + 10, body)
        for i, (name, body) in enumerate(tx_bodies().items())
    }


def extension() -> bytes:
    """A precommit's vote extension: two oracle prices and one listed tx."""
    listed = signed_txs()["place_order"]
    return oracle.encode_vote({0: 50_000, 1: 3_000}, (codec.encode(listed),))


def vote(kind: int = types.PRECOMMIT, block_hash: bytes = b"\xaa" * 32) -> types.Vote:
    return types.sign_vote(
        key("validator"), CHAIN_ID, kind=kind, height=2, round=0, block_hash=block_hash,
        timestamp_ms=GENESIS_MS + 2000, validator_index=0,
        extension=extension() if kind == types.PRECOMMIT else b"",
    )  # fmt: skip


def proposal(block_hash: bytes) -> types.Proposal:
    return types.sign_proposal(
        key("validator"), CHAIN_ID, height=2, round=0, pol_round=-1, block_hash=block_hash,
        timestamp_ms=GENESIS_MS + 2000,
    )  # fmt: skip


def commit() -> types.Commit:
    v = vote()
    sig = types.CommitSig(
        types.COMMIT_BLOCK, v.validator, v.timestamp_ms, v.signature, v.extension,
        v.extension_signature,
    )  # fmt: skip
    return types.Commit(
        1, 0, v.block_hash, (sig, types.CommitSig(0, b"\x01" * 20, 0, b"", b"", b""))
    )


def block() -> types.Block:
    """Block 2: two txs, the commit of block 1, no evidence."""
    txs = tuple(codec.encode(t) for t in list(signed_txs(height=2).values())[:2])
    last = commit()
    header = types.Header(
        CHAIN_ID, 2, GENESIS_MS + 2000, b"\xaa" * 32, types.commit_hash(last),
        merkle_root(list(txs)), b"\x00" * 32, b"\x00" * 32, b"\x33" * 32,
        key("validator").address, types.evidence_hash(()),
    )  # fmt: skip
    return types.Block(header, txs, (), last)


def evidence() -> types.DuplicateVoteEvidence:
    return types.DuplicateVoteEvidence(
        vote(types.PREVOTE, b"\xaa" * 32), vote(types.PREVOTE, b"\xbb" * 32)
    )
