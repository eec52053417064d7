"""Vote tallies, the 2/3 thresholds, commits and the checks of a block's consensus data, at
the edges ``make mutate`` found unguarded: a validator's votes are counted for a bounded
number of blocks and each block once, an equivocator counts once in the power of "any
vote", a commit takes an equivocator's precommit for the decided block, and a block's
time is strictly after the previous block's.

Four validators of power 1 unless said otherwise: 2f+1 is 3 votes.
"""

from __future__ import annotations

from appchaind.chain.types import (
    COMMIT_ABSENT,
    COMMIT_BLOCK,
    PRECOMMIT,
    PREVOTE,
    Commit,
    CommitSig,
    Vote,
)
from appchaind.consensus.blocks import make_commit
from appchaind.consensus.config import ConsensusConfig, Mutation, Step
from appchaind.consensus.effects import ScheduleTimeout
from appchaind.consensus.machine import NIL
from appchaind.consensus.sim.keys import CHAIN_ID, RawSigner
from appchaind.consensus.state import ChainState
from appchaind.consensus.votes import MAX_BLOCKS_PER_SLOT, VoteSet

from .harness import Chain, CountingVerifier, Driver, of_type
from .test_mutants import _height_2, _well_formed

A, B = b"\x0a" * 32, b"\x0b" * 32


def _others(chain: Chain, me: int) -> list[int]:
    return [i for i in range(len(chain.keys)) if i != me]


# ---------------------------------------------------------------- vote sets


def test_a_validators_votes_are_counted_for_at_most_MAX_BLOCKS_PER_SLOT_blocks() -> None:
    """A byzantine validator prevoting ever new blocks makes the node count (and check the
    signature of) its first MAX_BLOCKS_PER_SLOT of them only."""
    chain = Chain()
    me = chain.not_proposer()
    verifier = CountingVerifier()
    d = Driver(chain.machine(me, verifier=verifier))
    d.start()
    byzantine = _others(chain, me)[0]
    blocks = [bytes([n]) * 32 for n in range(1, MAX_BLOCKS_PER_SLOT + 3)]
    d.feed(*(chain.prevote(byzantine, 0, block) for block in blocks))
    assert d.machine.statistics().votes_counted == MAX_BLOCKS_PER_SLOT
    assert verifier.calls == MAX_BLOCKS_PER_SLOT


def test_an_equivocators_vote_for_a_block_it_voted_for_before_is_not_counted_again() -> None:
    """Prevotes for A, then B, then A again: the slot remembers A after B came, so the third
    vote is a repeat, counted for nothing."""
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    byzantine = _others(chain, me)[0]
    d.feed(
        chain.prevote(byzantine, 0, A),
        chain.prevote(byzantine, 0, B),
        chain.prevote(byzantine, 0, A),
    )
    assert d.machine.statistics().votes_counted == 2


def test_an_equivocator_counts_once_in_the_power_of_any_precommit() -> None:
    """Line 47 needs 2f+1 validators' precommits, whatever for: one validator precommitting
    A and B plus another's nil precommit are two validators, not three; a third makes it."""
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    byzantine, second, third = _others(chain, me)
    effects = d.feed(
        chain.precommit(byzantine, 0, A),
        chain.precommit(byzantine, 0, B),
        chain.precommit(second, 0, NIL),
    )
    assert not [e for e in of_type(effects, ScheduleTimeout) if e.step == Step.PRECOMMIT]
    effects = d.feed(chain.precommit(third, 0, NIL))
    assert [e.step for e in of_type(effects, ScheduleTimeout)] == [Step.PRECOMMIT]


def test_a_block_no_validator_voted_for_has_no_power() -> None:
    prevotes = VoteSet(PREVOTE, 0, 1)
    assert prevotes.power(A) == 0
    prevotes.add(0, Chain((1,)).vote(0, PREVOTE, 0, B), 1)
    assert (prevotes.power(A), prevotes.power(B)) == (0, 1)


# ---------------------------------------------------------------- thresholds


def test_the_half_threshold_mutation_means_more_than_half_of_the_power() -> None:
    """The simulator's broken variant replaces 2f+1 by strictly more than 1/2, not by at
    least 1/2 nor by more than 1/3."""
    half = ConsensusConfig(chain_id=CHAIN_ID, mutation=Mutation.HALF_THRESHOLD)
    assert half.two_thirds(3, 5) and not half.two_thirds(2, 4) and not half.two_thirds(2, 5)


# ---------------------------------------------------------------- commits


def test_a_commit_takes_an_equivocators_precommit_for_the_decided_block() -> None:
    """Validator 0 precommitted A first, then B; 1 and 2 precommitted B, 3 nothing. The
    commit for B holds validator 0's precommit for B: three COMMIT_BLOCK slots, +2/3."""
    chain = Chain()
    precommits = VoteSet(PRECOMMIT, 0, 4)
    precommits.add(0, chain.vote(0, PRECOMMIT, 0, A), 1)
    for_b = {i: chain.vote(i, PRECOMMIT, 0, B) for i in range(3)}
    for i, vote in for_b.items():
        precommits.add(i, vote, 1)
    commit = make_commit(1, 0, B, precommits, chain.state.validators)
    assert [s.flag for s in commit.signatures] == [COMMIT_BLOCK] * 3 + [COMMIT_ABSENT]
    assert commit.signatures[0].signature == for_b[0].signature


# ---------------------------------------------------------------- a block's consensus data


def _commit_at(chain: Chain, state: ChainState, time_ms: int) -> Commit:
    """Every validator's precommit for the block decided at height 1, timestamped ``time_ms``
    (so the weighted median, the next block's time, is ``time_ms``)."""
    assert state.last_commit is not None
    sigs = []
    for i, key in enumerate(chain.keys):
        unsigned = Vote(
            PRECOMMIT, 1, state.last_commit.round, state.last_block_id, time_ms, key.address, i,
            b"ext", b"\0" * 64, b"",
        )  # fmt: skip
        vote = RawSigner(key).sign_vote(unsigned)
        sigs.append(
            CommitSig(
                COMMIT_BLOCK,
                vote.validator,
                time_ms,
                vote.signature,
                vote.extension,
                vote.extension_signature,
            )  # fmt: skip
        )
    return Commit(1, state.last_commit.round, state.last_block_id, tuple(sigs))


def test_a_blocks_time_is_strictly_after_the_previous_blocks() -> None:
    """A last commit whose weighted median is the previous block's time makes a block no
    later than that block: refused; one millisecond later is fine."""
    chain = Chain()
    state = _height_2(chain)
    previous = state.last_block_time_ms
    assert _well_formed(chain, state, _commit_at(chain, state, previous + 1))
    assert not _well_formed(chain, state, _commit_at(chain, state, previous))
