"""Rules of the node that a one-line change could break without the other tests noticing
(issue 19): a validator's own messages are durable before they leave the process, and a
proposal holding a badly signed tx is refused with everything in it.

The node runs in-process (as in test_node_driver.py): its consensus loop is driven by
hand, one validator of the genesis is played by the test, and no timeout can fire (every
consensus timeout is ten minutes), so nothing depends on how fast the machine is.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
import trio

from appchaind.abci import AppFactory
from appchaind.chain import codec, crypto, types
from appchaind.chain.crypto import PrivateKey
from appchaind.consensus import privval as privval_module
from appchaind.consensus import wal as wal_module
from appchaind.exchange import Faucet
from appchaind.exchange.startup import exchange_app_factory
from appchaind.home import demo_genesis, init_home
from appchaind.node.kvapp import kv_app_factory
from appchaind.node.messages import (
    CONSENSUS_MESSAGES,
    ProposalMessage,
    VoteMessage,
    decode_message,
)
from appchaind.node.node import Node
from tests.node.test_node_driver import drain

CHAIN = "rules-test"
GENESIS_TIME = "2024-01-01T00:00:00Z"
NO_TIMEOUTS = {
    key: 600_000
    for key in (
        "timeout_propose_ms",
        "timeout_prevote_ms",
        "timeout_precommit_ms",
        "timeout_commit_ms",
    )
}


def _node(
    tmp_path: Path, me_power: int, other_power: int, app_factory: AppFactory
) -> tuple[Node, PrivateKey]:
    """A validator (run in-process) and one other validator, whose key the test holds."""
    me, other = PrivateKey.generate(), PrivateKey.generate()
    genesis = demo_genesis(
        CHAIN, [("me", me, me_power), ("other", other, other_power)], [], GENESIS_TIME
    )
    init_home(
        tmp_path / "home",
        moniker="me",
        chain_id=CHAIN,
        genesis_time=GENESIS_TIME,
        genesis_doc=genesis,
        validator_key=me,
        config_overrides={
            "p2p": {"listen_address": "127.0.0.1:0"},
            "rpc": {"listen_address": "127.0.0.1:0"},
            "http": {"enabled": False},
            "consensus": NO_TIMEOUTS,
        },
    )
    return Node(tmp_path / "home", app_factory=app_factory), other


def _deliver(node: Node, message: object) -> None:
    """A consensus message as it arrives from a peer."""
    node.consensus_gossip.on_message(None, message)  # type: ignore[arg-type]


def _other_vote(
    node: Node, other: PrivateKey, kind: int, block_hash: bytes, extension: bytes = b""
) -> VoteMessage:
    """The other validator's vote at round 0 of the node's height."""
    state = node.chain_state
    return VoteMessage(
        types.sign_vote(
            other,
            CHAIN,
            kind=kind,
            height=state.height,
            round=0,
            block_hash=block_hash,
            timestamp_ms=state.last_block_time_ms + 1,
            validator_index=state.validators.index_of(other.address),
            extension=extension,
        )  # fmt: skip
    )


# ---------------------------------------------------------------------------- rule 5


class _RecordingOS:
    """The ``os`` module as one module of the node sees it, with its writes, fsyncs and
    renames recorded (in one log shared with the sends) and then performed."""

    def __init__(self, who: str, log: list[tuple[Any, ...]]) -> None:
        self._who = who
        self._log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def write(self, fd: int, data: bytes) -> int:
        self._log.append((self._who, "write", fd, bytes(data)))
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)
        self._log.append((self._who, "fsync", fd))

    def replace(self, src: Any, dst: Any) -> None:
        self._log.append((self._who, "replace", Path(src).read_text()))
        os.replace(src, dst)


def _durable_in_wal(log: list[tuple[Any, ...]], sent_at: int, payload: bytes) -> bool:
    """Before ``log[sent_at]``: a WAL record of exactly ``payload``, then an fsync of the WAL."""
    for i in range(sent_at):
        entry = log[i]
        if entry[:2] == ("wal", "write") and entry[3][8:] == payload:
            return ("wal", "fsync", entry[2]) in log[i + 1 : sent_at]
    return False


def _sign_state_saved(log: list[tuple[Any, ...]], sent_at: int, signed: object) -> bool:
    """Before ``log[sent_at]``: the sign state naming ``signed`` was fsynced, renamed into
    place and its directory fsynced (privval.FileSignStateStore.save)."""
    encoded = codec.encode(signed).hex()
    for i in range(1, sent_at - 1):
        entry = log[i]
        if entry[:2] == ("sign_state", "replace") and json.loads(entry[2])["signed"] == encoded:
            return log[i - 1][:2] == log[i + 1][:2] == ("sign_state", "fsync")
    return False


async def test_own_votes_are_in_the_wal_and_fsynced_and_the_sign_state_saved_before_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash safety (DESIGN.md rule 5): every proposal and vote of this validator that leaves
    the node was first appended to the WAL and fsynced, and the double-sign guard's state
    naming it was made durable. Recorded at the system calls the WAL and the sign-state store
    make, in one log with the node's network sends."""
    node, other = _node(tmp_path, 10, 6, kv_app_factory)  # it proposes; needs other's votes
    log: list[tuple[Any, ...]] = []
    monkeypatch.setattr(wal_module, "os", _RecordingOS("wal", log))
    monkeypatch.setattr(privval_module, "os", _RecordingOS("sign_state", log))
    broadcast = node.peers.broadcast

    def send(channel: int, payload: bytes, **how: Any) -> None:
        log.append(("send", channel, payload))
        broadcast(channel, payload, **how)

    node.peers.broadcast = send  # type: ignore[method-assign]
    me = node.validator_key.address
    try:
        async with trio.open_nursery() as nursery:
            node._nursery = nursery
            nursery.start_soon(node.verifier.run)
            machine = node._machine = node._new_machine(with_signer=True)
            await node._perform(machine.start(node.chain_state.last_block_time_ms + 1))
            await drain(node)
            proposal = machine._proposals[0]
            _deliver(node, _other_vote(node, other, types.PREVOTE, proposal.block_hash))
            await drain(node)
            extension = node.app.extend_vote(1, 0, proposal.block_hash)
            precommit = _other_vote(node, other, types.PRECOMMIT, proposal.block_hash, extension)
            _deliver(node, precommit)
            await drain(node)
            assert node.latest_height == 1
            nursery.cancel_scope.cancel()
    finally:
        node.wal.close()
        node.store.close()
    sent: list[tuple[int, bytes, object]] = []
    for at, entry in enumerate(log):
        if entry[0] == "send":
            message = decode_message(CONSENSUS_MESSAGES, entry[2], 1 << 24)
            if isinstance(message, VoteMessage) and message.vote.validator == me:
                sent.append((at, entry[2], message.vote))
            elif isinstance(message, ProposalMessage) and message.proposal.proposer == me:
                sent.append((at, entry[2], message.proposal))
    kinds = {(type(m).__name__, getattr(m, "kind", None)) for _, _, m in sent}
    assert kinds == {("Proposal", None), ("Vote", types.PREVOTE), ("Vote", types.PRECOMMIT)}
    for at, payload, signed in sent:
        assert _durable_in_wal(log, at, payload), f"{signed} sent before it was in the WAL"
        assert _sign_state_saved(log, at, signed), f"{signed} sent before its sign state"


# ---------------------------------------------------------------------------- rule 6


def _faucet(key: PrivateKey, state: Any, amount: int) -> types.Tx:
    return types.sign_tx(key, CHAIN, state.last_block_time_ms, state.height + 10, Faucet(amount))


@pytest.mark.parametrize("forged", [True, False], ids=["with-a-forged-tx", "all-signed"])
async def test_a_proposal_with_a_badly_signed_tx_is_refused_and_none_of_its_txs_run(
    tmp_path: Path, forged: bool
) -> None:
    """Another validator (10 of 11 power: its precommit alone is a commit) proposes a block
    of an honest faucet tx and, in the first case, a tx whose signature does not verify.
    The node refuses the block (process_proposal: valid(v) is false), prevotes nil, and
    does not decide it even on +2/3 precommits (line 49 needs valid(v)), so the honest tx
    does not run either. The control: the same block without the forged tx is prevoted,
    decided and executed."""
    node, other = _node(tmp_path, 1, 10, exchange_app_factory)
    sent: list[bytes] = []
    broadcast = node.peers.broadcast

    def send(channel: int, payload: bytes, **how: Any) -> None:
        sent.append(payload)
        broadcast(channel, payload, **how)

    node.peers.broadcast = send  # type: ignore[method-assign]
    state = node.chain_state
    honest, mallory = PrivateKey.generate(), PrivateKey.generate()
    txs = [codec.encode(_faucet(honest, state, 5_000))]
    if forged:
        tx = _faucet(mallory, state, 7_000)
        txs.append(codec.encode(dataclasses.replace(tx, signature=bytes(64))))
    header = types.Header(
        chain_id=CHAIN,
        height=1,
        time_ms=state.last_block_time_ms,
        last_block_id=b"",
        last_commit_hash=types.commit_hash(None),
        data_hash=crypto.merkle_root(txs),
        validators_hash=state.validators.hash(),
        next_validators_hash=state.next_validators.hash(),
        app_hash=state.app_hash,
        proposer=other.address,
        evidence_hash=types.evidence_hash(()),
    )
    block = types.Block(header, tuple(txs), (), None)
    block_hash = block.block_id()
    proposal = types.sign_proposal(
        other, CHAIN, height=1, round=0, pol_round=-1, block_hash=block_hash,
        timestamp_ms=state.last_block_time_ms + 1,
    )  # fmt: skip
    assert state.validators.proposer_for_round(0) == other.address
    try:
        async with trio.open_nursery() as nursery:
            node._nursery = nursery
            nursery.start_soon(node.verifier.run)
            machine = node._machine = node._new_machine(with_signer=True)
            await node._perform(machine.start(state.last_block_time_ms + 1))
            await drain(node)
            _deliver(node, ProposalMessage(proposal, block))
            await drain(node)
            _deliver(node, _other_vote(node, other, types.PRECOMMIT, block_hash))
            await drain(node)
            nursery.cancel_scope.cancel()
        exchange = node.exchange
        assert exchange is not None
        prevotes = [
            m.vote.block_hash
            for m in (decode_message(CONSENSUS_MESSAGES, p, 1 << 24) for p in sent)
            if isinstance(m, VoteMessage) and m.vote.kind == types.PREVOTE
        ]
        if forged:
            assert prevotes == [b""]  # nil
            assert node.latest_height == 0 and exchange.height == 0
            assert exchange.account(honest.address) is None
            assert exchange.account(mallory.address) is None
        else:
            assert prevotes == [block_hash]
            assert node.latest_height == 1
            assert exchange.account(honest.address).balance == 5_000
    finally:
        node.wal.close()
        node.store.close()
