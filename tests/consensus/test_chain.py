"""Several heights on a perfect in-memory network: commits, evidence, extensions, BFT time,
validator updates at H+2, restarts."""

from __future__ import annotations

from appchaind.chain.types import (
    COMMIT_ABSENT,
    COMMIT_BLOCK,
    COMMIT_NIL,
    PREVOTE,
    Commit,
    CommitSig,
    Validator,
)
from appchaind.consensus.effects import BroadcastVote, SigningRefused
from appchaind.consensus.events import VoteReceived
from appchaind.consensus.evidence import weighted_median_time
from appchaind.consensus.machine import ConsensusMachine
from appchaind.consensus.signer import GuardedSigner, MemorySignStateStore
from appchaind.consensus.sim.keys import CHAIN_ID, FakeVerifier
from appchaind.consensus.validators import ValidatorSet

from .harness import EXT, NOW, Chain, Cluster, Driver, config, of_type, votes_out


def test_a_perfect_network_decides_height_after_height_with_extended_commits() -> None:
    cluster = Cluster(Chain((3, 1, 2, 5)), commit_ms=1)
    for i, d in enumerate(cluster.drivers):
        d.now = NOW + 7 * i  # clocks that disagree a little
    cluster.start()
    cluster.run_until_height(4)
    for height in (1, 2, 3, 4):
        assert len(set(cluster.decided[height])) == 1
    for height in (2, 3, 4):
        block = cluster.blocks[height]
        commit = block.last_commit
        assert commit is not None and commit.block_hash == cluster.blocks[height - 1].block_id()
        # the extended commit: every precommit for the block carries its vote extension
        assert all(s.extension == EXT for s in commit.signatures if s.flag == COMMIT_BLOCK)
        # BFT time: the weighted median of the previous commit's timestamps
        vals = cluster.drivers[0].machine.state.validators  # the set never changes here
        assert block.header.time_ms == weighted_median_time(commit, vals)
        assert block.header.time_ms > cluster.blocks[height - 1].header.time_ms


def test_weighted_median_worked_example() -> None:
    vals = ValidatorSet.from_genesis(
        [Validator(bytes([i]) * 32, p) for i, p in enumerate((4, 3, 2, 1), 1)]
    )
    # The set is ordered by power: 4, 3, 2, 1. Timestamps 40, 30, 20, 10 (ms).
    sigs = tuple(
        CommitSig(COMMIT_BLOCK, a, t, b"\1" * 64, b"", b"")
        for a, t in zip(vals.addresses, (40, 30, 20, 10), strict=True)
    )
    commit = Commit(1, 0, b"\2" * 32, sigs)
    # Sorted by time: (10, 1) (20, 2) (30, 3) (40, 4); half of 10 is 5: 5 > 1, 4 > 2, 2 <= 3 -> 30.
    assert weighted_median_time(commit, vals) == 30
    # An absent slot does not count; a nil precommit does.
    sigs2 = (
        CommitSig(COMMIT_ABSENT, vals.addresses[0], 0, b"", b"", b""),
        CommitSig(COMMIT_NIL, vals.addresses[1], 1000, b"\1" * 64, b"", b""),
    ) + sigs[2:]
    # (10, 1) (20, 2) (1000, 3); half of 6 is 3: 3 > 1, 2 <= 2 -> 20.
    assert weighted_median_time(Commit(1, 0, b"\2" * 32, sigs2), vals) == 20


def test_equivocation_is_committed_as_evidence_by_the_next_proposer() -> None:
    chain = Chain()
    cluster = Cluster(chain, commit_ms=1)
    cheater = 2
    fake = chain.vote(cheater, PREVOTE, 0, b"\x0f" * 32)
    cluster.deliver(cheater, [VoteReceived(fake)])  # reaches the others before its honest prevote
    cluster.start()
    cluster.run_until_height(3)
    evidence = cluster.blocks[2].evidence + cluster.blocks[3].evidence
    assert len(evidence) == 1
    assert evidence[0].vote_a.validator == chain.keys[cheater].address
    for d in cluster.drivers:
        assert d.machine.pending_evidence() == ()  # committed, so no longer pending
        assert any(h == 1 for h, _ in d.machine.state.committed_evidence)


def test_validator_update_decided_at_h_takes_effect_at_h_plus_2() -> None:
    chain = Chain()
    cluster = Cluster(chain, commit_ms=1)
    new_power = Validator(chain.public_keys[3], 10)
    for d in cluster.drivers:
        d.updates[1] = (new_power,)
    cluster.start()
    cluster.run_until_height(3)
    history = dict(cluster.drivers[0].machine.state.validator_history)
    assert history[2].total_power == 4  # height 2: unchanged
    assert history[3].total_power == 13  # height 3: the update decided at height 1
    assert history[3].validators[0].power == 10
    assert cluster.blocks[2].header.next_validators_hash == history[3].hash()
    assert cluster.blocks[3].header.validators_hash == history[3].hash()


def test_restart_replays_the_wal_and_never_signs_anything_else() -> None:
    chain = Chain()
    me = chain.not_proposer()
    store = MemorySignStateStore()

    def machine() -> ConsensusMachine:
        signer = GuardedSigner(chain.keys[me], CHAIN_ID, store)
        return ConsensusMachine(config(), chain.state, signer, FakeVerifier())

    first = Driver(machine())
    first.start()
    block = chain.block(proposer=chain.proposer(0))
    from appchaind.consensus.events import BlockReceived, ProposalReceived

    wal = [BlockReceived(block), ProposalReceived(chain.proposal(block, 0))]
    wal += [chain.prevote(i, 0, block.block_id()) for i in range(4) if i != me][:2]
    sent = votes_out(first.feed(*wal))
    assert [v.kind for v in sent] == [1, 2]
    # Crash. Restart from the same chain state and sign store; replay own votes first.
    second = Driver(machine())
    effects = second.feed(*(VoteReceived(v) for v in sent))
    effects += second.start()
    effects += second.feed(*wal)
    assert not of_type(effects, SigningRefused)
    assert second.machine.locked_round == 0
    assert votes_out(effects) == []  # nothing new to sign: its votes were already out
    assert set(second.machine.gossip()) >= set(sent)


def test_a_machine_that_forgot_its_vote_adopts_the_one_it_signed() -> None:
    chain = Chain()
    me = chain.not_proposer()
    store = MemorySignStateStore()
    signer = GuardedSigner(chain.keys[me], CHAIN_ID, store)
    first = Driver(ConsensusMachine(config(), chain.state, signer, FakeVerifier()))
    first.start()
    from appchaind.consensus.events import BlockReceived, ProposalReceived, TimeoutFired

    block = chain.block(proposer=chain.proposer(0))
    (prevote,) = votes_out(
        first.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    )
    # The WAL lost the proposal: after the restart the node times out and would prevote nil.
    signer2 = GuardedSigner(chain.keys[me], CHAIN_ID, store)
    second = Driver(ConsensusMachine(config(), chain.state, signer2, FakeVerifier()))
    second.start()
    effects = second.feed(TimeoutFired(1, 0, second.machine.step.PROPOSE))
    assert of_type(effects, SigningRefused)
    assert [e.vote for e in of_type(effects, BroadcastVote)] == [prevote]
