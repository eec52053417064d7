"""What finalize_block takes from a decided block (appchaind/exchange/app.py):

- the oracle input is the last commit's precommits for the previous block, each with the
  power of its signer in the previous validator set; a commit slot beyond that set has
  no signer there and counts for nothing;
- the previous block's hash (``header.last_block_id``) seeds where the liquidations of
  the block start: with more candidates than ``max_liquidations_per_block``, the first
  liquidated (in address order) is the one at sha256("liquidation" || last_block_id ||
  height as u64)[:8] (big-endian) modulo the number of candidates.

Markets of tests/exchange/support.py: BTC-PERP at 50000 ticks.
"""

from __future__ import annotations

import dataclasses
from hashlib import sha256

from appchaind.chain import types
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.types import COMMIT_BLOCK, Commit, CommitSig
from appchaind.consensus.validators import ValidatorSet
from appchaind.exchange import ExchangeApp
from appchaind.exchange.oracle import encode_vote
from tests.exchange.support import BUY, IOC, SELL, Driver, address, block_of, genesis, limit

BTC = 0
RICH = "1000000"
VALIDATORS = [PrivateKey(bytes([i + 1]) * 32) for i in range(3)]


def test_a_commit_slot_beyond_the_previous_validator_set_counts_for_nothing() -> None:
    """The set has two validators (power 1 each), both report 50300 for BTC: the price
    moves. A third slot in the commit, past the set, is ignored."""
    app = ExchangeApp(genesis({"alice": RICH}))
    Driver(app).block([])
    validators = ValidatorSet.from_genesis(types.Validator(k.public_key, 1) for k in VALIDATORS[:2])
    extension = encode_vote({BTC: 50300})
    sigs = tuple(CommitSig(COMMIT_BLOCK, k.address, 0, b"", extension, b"") for k in VALIDATORS)
    block = dataclasses.replace(
        block_of([], height=2), last_commit=Commit(1, 0, b"\x01" * 32, sigs)
    )
    app.finalize_block(block, [], validators)
    assert app.oracle_prices() == [50300, 3000]


def test_the_previous_block_hash_seeds_which_liquidation_goes_first() -> None:
    """Six accounts are liquidatable and the cap is one a block; blocks finalized with
    three different previous-block hashes each liquidate the candidate that hash picks."""
    names = ("carol", "dave", "erin", "finn", "gus", "hal")
    app = ExchangeApp(
        genesis(
            {**dict.fromkeys(names, "502.54"), "bob": RICH, "zed": RICH},
            params={"max_liquidations_per_block": 1},
        )
    )
    d = Driver(app)
    d.block([
        d.tx("bob", limit(BTC, SELL, 50000, 600)),
        *(d.tx(name, limit(BTC, BUY, 50000, 100, IOC)) for name in names),
    ])  # fmt: skip
    d.block([d.tx("zed", limit(BTC, BUY, 46000, 600))], prices=[47000, 3000])
    waiting = sorted(address(n) for n in names)
    waiting.remove(next(a for a in waiting if app.account(a).position_size(BTC) == 0))  # type: ignore[union-attr]
    for last_block_id in (b"\x07" * 32, b"\x99" * 32, b"\xe4" * 32):
        height = d.height
        seed = sha256(b"liquidation" + last_block_id + height.to_bytes(8, "big")).digest()
        first = waiting[int.from_bytes(seed[:8], "big") % len(waiting)]
        block = block_of([], height, d.time_ms)
        block = dataclasses.replace(
            block, header=dataclasses.replace(block.header, last_block_id=last_block_id)
        )
        result = app.finalize_block(block, [], None)
        assert [e.attributes["account"] for e in result.events if e.kind == "liquidation"] == [
            first
        ]
        waiting.remove(first)
