"""What finalize_block takes from a decided block (appchaind/exchange/app.py):

- the oracle input is the last commit's precommits for the previous block, each with the
  power of its signer in the previous validator set; a commit slot beyond that set has
  no signer there and counts for nothing;
- the block's evidence (each duplicate vote's validator and height) and its last commit
  (who signed it) go to the accountability step: evidence slashes and tombstones, a slot
  without a precommit is a missed block;
- the previous block's hash (``header.last_block_id``) seeds where the liquidations of
  the block start: with more candidates than ``max_liquidations_per_block``, the first
  liquidated (in address order) is the one at sha256("liquidation" || last_block_id ||
  height as u64)[:8] (big-endian) modulo the number of candidates.

Markets of tests/exchange/support.py: BTC-PERP at 50000 ticks.
"""

from __future__ import annotations

import dataclasses
from hashlib import sha256
from typing import Any

from appchaind.chain import types
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.types import COMMIT_ABSENT, COMMIT_BLOCK, Commit, CommitSig
from appchaind.consensus.validators import ValidatorSet
from appchaind.exchange import ExchangeApp
from appchaind.exchange.oracle import encode_vote
from tests.exchange.support import (
    BUY,
    IOC,
    SELL,
    Driver,
    address,
    block_of,
    genesis,
    key,
    limit,
    precommit_with,
)
from tests.exchange.test_accountability import ALICE, ALICE_KEY, _alice_validator
from tests.exchange.test_staking import UNIT

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


def _finalize(app: ExchangeApp, block: types.Block, validators: ValidatorSet | None) -> Any:
    """``block`` at the app's next height and time (tests/exchange/support.py's Driver's)."""
    d = Driver(app)
    header = dataclasses.replace(block.header, height=d.height, time_ms=d.time_ms)
    return app.finalize_block(dataclasses.replace(block, header=header), [], validators)


def test_the_evidence_a_block_carries_slashes_and_tombstones_its_validator() -> None:
    """A block carrying a duplicate vote of alice's validator (30 quote of stake, 5% for a
    double sign): finalize_block passes it to the accountability step, which takes 1.5
    quote of the stake and tombstones the validator."""
    app, _ = _alice_validator({"slash_double_sign_ppm": 50_000})
    infraction = app.height
    vote_a = dataclasses.replace(precommit_with(b"", infraction), validator=ALICE)
    vote_b = dataclasses.replace(vote_a, block_hash=b"\x02" * 32)
    evidence = (types.DuplicateVoteEvidence(vote_a, vote_b),)
    result = _finalize(app, dataclasses.replace(block_of([]), evidence=evidence), None)
    slashed = 30 * UNIT * 50_000 // 1_000_000
    assert app.staking.validators[address("alice")].tokens == 30 * UNIT - slashed
    assert app.staking.signing[address("alice")].tombstoned
    assert [
        (e.kind, e.attributes["infraction_height"])
        for e in result.events
        if e.kind in ("validator_slashed", "validator_tombstoned")
    ] == [("validator_slashed", infraction), ("validator_tombstoned", infraction)]


def test_the_last_commit_of_a_block_records_who_missed_it() -> None:
    """The previous set is alice's validator and the genesis validator; the block's last
    commit has the genesis validator's precommit and no slot filled for alice: alice's
    validator has one missed block, the genesis validator none."""
    app, _ = _alice_validator()
    genesis_key = key("validator")
    validators = ValidatorSet.from_genesis(
        [types.Validator(ALICE_KEY.public_key, 30), types.Validator(genesis_key.public_key, 10)]
    )
    sigs = tuple(
        CommitSig(COMMIT_BLOCK, a, 0, b"", b"", b"")
        if a == genesis_key.address
        else CommitSig(COMMIT_ABSENT, a, 0, b"", b"", b"")
        for a in validators.addresses
    )
    block = dataclasses.replace(block_of([]), last_commit=Commit(1, 0, b"\x01" * 32, sigs))
    _finalize(app, block, validators)
    assert app.staking.signing[address("alice")].missed_count == 1
    assert address("validator") not in app.staking.signing
