"""Inclusion lists (issue 15, appchaind.exchange.inclusion): the orders and cancels the
precommits of the last commit list are executed by the next block when it does not carry
them, after its own txs and before the end-of-block upkeep, each once, with a result; a
listed tx that can no longer run is skipped without a result; a list that breaks the
chain's rule is refused by every validator and ignored by execution."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from appchaind.abci import FinalizeResult
from appchaind.chain import codec, types
from appchaind.chain.codes import Code
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.types import COMMIT_BLOCK, COMMIT_NIL, Commit, CommitSig, Tx
from appchaind.consensus.validators import ValidatorSet
from appchaind.exchange import ExchangeApp
from appchaind.exchange.inclusion import forced_txs
from appchaind.exchange.oracle import encode_vote
from appchaind.exchange.txs import CancelOrder, OrderType, Transfer, Withdraw
from appchaind.store import Store
from tests.exchange.support import (
    BLOCK_MS,
    BUY,
    GENESIS_MS,
    SELL,
    Driver,
    address,
    block_of,
    conditional,
    genesis,
    limit,
    precommit_with,
)
from tests.exchange.test_properties import _check_invariants

BALANCES = {"alice": "1000000", "bob": "1000000", "carol": "1000000"}
VALIDATORS = [PrivateKey(bytes([i + 1]) * 32) for i in range(3)]
SET = ValidatorSet.from_genesis(types.Validator(k.public_key, 1) for k in VALIDATORS)


def _commit(height: int, slots: list[tuple[int, bytes]]) -> Commit:
    """The commit of ``height`` with (flag, extension) per validator (signatures are
    consensus's to check, not the application's)."""
    sigs = tuple(
        CommitSig(flag, VALIDATORS[i].address, 0, b"", extension, b"")
        for i, (flag, extension) in enumerate(slots)
    )
    return Commit(height, 0, b"\x01" * 32, sigs)


def _listing(*lists: tuple[bytes, ...]) -> list[tuple[int, bytes]]:
    """Precommits for the block from the first validators, listing ``lists``; the others
    precommit it with no extension."""
    slots = [(COMMIT_BLOCK, encode_vote({}, include)) for include in lists]
    return slots + [(COMMIT_BLOCK, b"")] * (len(VALIDATORS) - len(slots))


class _Chain:
    """An exchange fed through finalize_block, as a node feeds it: one block per call."""

    def __init__(self, **params: int) -> None:
        self.app = ExchangeApp(genesis(BALANCES, params=params))
        self.driver = Driver(self.app)
        self.blocks: list[types.Block] = []

    def tx(self, name: str, body: object) -> Tx:
        return self.driver.tx(name, body)

    def block(self, txs: list[Tx], slots: list[tuple[int, bytes]] | None = None) -> FinalizeResult:
        height = self.app.height + 1
        block = block_of([codec.encode(tx) for tx in txs], height, GENESIS_MS + height * BLOCK_MS)
        if slots is not None:
            block = dataclasses.replace(block, last_commit=_commit(height - 1, slots))
        self.blocks.append(block)
        result = self.app.finalize_block(block, [None] * len(txs), SET)
        _check_invariants(self.app)
        return result


def _order_ids(result: FinalizeResult, index: int) -> list[int]:
    return [e.attributes["order_id"] for e in result.tx_results[index].events if e.kind == "order"]


def test_a_listed_order_no_block_carried_runs_after_the_blocks_txs_with_a_result() -> None:
    """Alice's bid was left out of block 1; the precommits of block 1 list it. Block 2
    carries bob's bid only: alice's runs after it (a later order id), with a result of
    its own after the block's, and it is reported in forced_txs."""
    chain = _Chain()
    chain.block([])
    censored = chain.tx("alice", limit(0, BUY, 49000, 5))
    raw = codec.encode(censored)
    result = chain.block([chain.tx("bob", limit(0, BUY, 49500, 5))], _listing((raw,)))
    assert result.forced_txs == (raw,)
    assert [r.code for r in result.tx_results] == [Code.OK, Code.OK]
    assert _order_ids(result, 1) > _order_ids(result, 0)
    orders = chain.app.state_summary()["markets"][0]["orders"]
    assert [(o[1], o[3]) for o in orders] == [
        (address("bob").hex(), 49500), (address("alice").hex(), 49000),
    ]  # fmt: skip


def test_a_forced_order_runs_before_the_end_of_block_upkeep() -> None:
    """A forced stop order whose trigger the oracle price already reached is stored when
    it runs, then fires in the same block's trigger step (the upkeep comes after it)."""
    chain = _Chain()
    chain.block([])
    stop = conditional(0, SELL, OrderType.STOP_MARKET, 50500, 1)
    raw = codec.encode(chain.tx("alice", stop))
    result = chain.block([], _listing((raw,)))
    assert result.forced_txs == (raw,) and result.tx_results[0].code == Code.OK
    assert [e.attributes["status"] for e in result.events if e.kind == "order"][:1] == ["triggered"]


def test_a_tx_listed_by_several_validators_runs_once() -> None:
    chain = _Chain()
    chain.block([])
    a = codec.encode(chain.tx("alice", limit(0, BUY, 49000, 5)))
    b = codec.encode(chain.tx("bob", limit(0, BUY, 49100, 5)))
    result = chain.block([], _listing((a, b), (b, a), (a,)))
    assert sorted(result.forced_txs) == sorted((a, b)) and len(result.tx_results) == 2
    assert result.forced_txs == tuple(sorted((a, b), key=types.tx_hash))
    assert len(chain.app.state_summary()["markets"][0]["orders"]) == 2


def test_a_listed_tx_the_block_carries_runs_once_as_the_blocks() -> None:
    chain = _Chain()
    chain.block([])
    tx = chain.tx("alice", limit(0, BUY, 49000, 5))
    result = chain.block([tx], _listing((codec.encode(tx),)))
    assert result.forced_txs == () and [r.code for r in result.tx_results] == [Code.OK]
    assert len(chain.app.state_summary()["markets"][0]["orders"]) == 1


def test_a_listed_tx_already_committed_or_stale_is_skipped_without_a_result() -> None:
    """Listed again after it committed (its nonce is used), or expired, or by a sender
    with no account, or badly signed: no result, nothing changes, the result of its
    first commit stands (a node never overwrites it)."""
    chain = _Chain()
    chain.block([])
    tx = chain.tx("alice", limit(0, BUY, 49000, 5))
    first = chain.block([tx])
    assert first.tx_results[0].code == Code.OK
    expired = dataclasses.replace(chain.tx("bob", limit(0, BUY, 49000, 1)), expiry_height=2)
    stranger = chain.tx("nobody", limit(0, BUY, 49000, 1))
    forged = dataclasses.replace(chain.tx("carol", limit(0, BUY, 49000, 1)), signature=b"\x07" * 64)
    stale = [codec.encode(t) for t in (tx, expired, stranger, forged)]
    before = chain.app.state_summary()
    result = chain.block([], _listing(tuple(stale)))
    assert result.forced_txs == () and result.tx_results == []
    assert chain.app.state_summary() == {**before, "height": before["height"] + 1}


def test_a_listed_tx_whose_nonce_the_block_used_is_skipped() -> None:
    """The block carries a tx of alice's with the nonce of a listed one: the listed one
    no longer runs."""
    chain = _Chain()
    chain.block([])
    listed = chain.tx("alice", limit(0, BUY, 49000, 5))
    same_nonce = chain.driver.tx("alice", limit(0, BUY, 48000, 5), nonce=listed.nonce)
    result = chain.block([same_nonce], _listing((codec.encode(listed),)))
    assert result.forced_txs == () and [r.code for r in result.tx_results] == [Code.OK]


def test_a_listed_order_that_fails_its_rule_gets_its_failure_as_result() -> None:
    """Valid envelope, refused body (a cancel of an unknown order): it ran, it has its
    result, and its nonce is used."""
    chain = _Chain()
    chain.block([])
    cancel = chain.tx("alice", CancelOrder(0, 999, 0, False))
    result = chain.block([], _listing((codec.encode(cancel),)))
    assert result.forced_txs == (codec.encode(cancel),)
    assert result.tx_results[0].code != Code.OK
    alice = chain.app.account(address("alice"))
    assert alice is not None and alice.check_nonce(cancel.nonce, 100) is not None


def _orders(chain: _Chain, count: int) -> tuple[bytes, ...]:
    return tuple(codec.encode(chain.tx("bob", limit(0, BUY, 40000 + i, 1))) for i in range(count))


def _bad_list(chain: _Chain, name: str) -> tuple[bytes, ...]:
    order = codec.encode(chain.tx("alice", limit(0, BUY, 49000, 5)))
    transfer = codec.encode(chain.tx("bob", Transfer(address("carol"), 1)))
    if name == "over max_inclusion_txs":  # 33 orders of ~150 bytes: within the bytes
        return _orders(chain, chain.app.params.max_inclusion_txs + 1)
    if name == "over max_inclusion_bytes":  # 8 orders, more than the 1000 bytes allowed
        return _orders(chain, 8)
    return {
        "not a tx": (order, b"\x93\x01\x02\x03"),
        "a transfer": (order, transfer),
        "a withdraw": (order, codec.encode(chain.tx("bob", Withdraw(1)))),
        "listed twice": (order, order),
    }[name]


def test_a_list_that_breaks_the_rule_is_refused_and_ignored() -> None:
    """Over the caps, something that is not a tx, a transfer or a withdraw, a tx twice:
    verify_vote_extension refuses the precommit, and finalize_block ignores its list
    (the order it also lists does not run), as the oracle ignores a bad extension."""
    for name in ("over max_inclusion_txs", "over max_inclusion_bytes", "not a tx",
                 "a transfer", "a withdraw", "listed twice"):  # fmt: skip
        chain = _Chain(max_inclusion_bytes=1000)
        chain.block([])
        include = _bad_list(chain, name)
        if name == "over max_inclusion_bytes":
            assert len(include) <= chain.app.params.max_inclusion_txs
            assert sum(map(len, include)) > 1000 >= sum(map(len, include[:6]))
        extension = encode_vote({}, include)
        assert not chain.app.verify_vote_extension(precommit_with(extension, 2)), name
        result = chain.block([], [(COMMIT_BLOCK, extension)] * len(VALIDATORS))
        assert result.forced_txs == () and result.tx_results == [], name


def test_a_list_within_the_rule_is_accepted_and_an_extension_that_is_not_one_ignored() -> None:
    chain = _Chain()
    chain.block([])
    order = codec.encode(chain.tx("alice", limit(0, BUY, 49000, 5)))
    assert chain.app.verify_vote_extension(precommit_with(encode_vote({0: 50100}, (order,)), 2))
    assert chain.app.verify_vote_extension(precommit_with(b"", 2))
    assert not chain.app.verify_vote_extension(precommit_with(b"\x93\x01", 2))
    assert forced_txs(chain.app.params, [b"\x93\x01", b""], []) == []


def test_only_precommits_for_the_block_count() -> None:
    """A nil precommit's slot in the last commit lists nothing (as it reports no price)."""
    chain = _Chain()
    chain.block([])
    order = codec.encode(chain.tx("alice", limit(0, BUY, 49000, 5)))
    slots = [(COMMIT_NIL, encode_vote({}, (order,)))] + _listing()[1:]
    result = chain.block([], slots)
    assert result.forced_txs == ()


def test_replaying_the_blocks_gives_the_same_app_hash() -> None:
    """The forced set is a function of the block and the state: a fresh app fed the same
    blocks reaches the same app hash at every height, and forcing changed the hash."""
    chain = _Chain()
    chain.block([])
    listed = chain.tx("alice", limit(0, BUY, 49000, 5))
    hashes = [chain.app.app_hash]
    chain.block([chain.tx("bob", limit(0, SELL, 49000, 2))], _listing((codec.encode(listed),)))
    hashes.append(chain.app.app_hash)
    chain.block([], _listing((codec.encode(listed),)))  # listed again: skipped
    hashes.append(chain.app.app_hash)
    replay = ExchangeApp(genesis(BALANCES))
    for block, expected in zip(chain.blocks, hashes, strict=True):
        replay.finalize_block(block, [None] * len(block.txs), SET)
        assert replay.app_hash == expected
    unforced = ExchangeApp(genesis(BALANCES))
    for block in chain.blocks[:2]:
        unforced.finalize_block(
            dataclasses.replace(block, last_commit=None), [None] * len(block.txs), SET
        )
    assert unforced.app_hash != hashes[1]
    alice = chain.app.account(address("alice"))
    assert alice is not None and alice.positions[0].size == 2


def test_a_validator_restarted_from_its_store_executes_the_same_forced_txs(
    tmp_path: Path,
) -> None:
    """Nothing about inclusion lists is stored: a validator restarted between the block
    that dropped an order and the block that forces it derives the same forced set from
    that block and its state, and reaches the same app hash."""
    chain = _Chain()
    chain.block([])
    listed = codec.encode(chain.tx("alice", limit(0, BUY, 49000, 5)))
    chain.block([], _listing((listed,)))
    with Store(tmp_path / "data") as store:
        first = ExchangeApp(genesis(BALANCES), store)
        first.finalize_block(chain.blocks[0], [], SET)
        first.commit()
    with Store(tmp_path / "data") as store:
        restarted = ExchangeApp(genesis(BALANCES), store)
        result = restarted.finalize_block(chain.blocks[1], [], SET)
    assert result.forced_txs == (listed,) and restarted.app_hash == chain.app.app_hash
