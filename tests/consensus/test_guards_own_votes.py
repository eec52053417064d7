"""The node's own votes when they come back to it (from its WAL at restart, or echoed by a
peer): they are its votes for their steps, they tell which round it had reached, and its
own votes count in the tallies like any validator's.

Four validators of power 1: 2f+1 is 3 votes, f+1 is 2 votes.
"""

from __future__ import annotations

from appchaind.chain.types import PRECOMMIT, PREVOTE
from appchaind.consensus.config import Step
from appchaind.consensus.effects import BroadcastVote
from appchaind.consensus.events import BlockReceived, ProposalReceived, TimeoutFired, VoteReceived
from appchaind.consensus.machine import NIL, ConsensusMachine
from appchaind.consensus.sim.keys import FakeVerifier, RawSigner

from .harness import NOW, Chain, Driver, config, of_type, votes_out


def test_a_restarted_node_goes_back_to_the_round_of_its_last_vote() -> None:
    """A node had prevoted nil at round 2 before it crashed. Restarted at round 0, it
    replays that vote from its WAL: its own vote, so it had reached round 2, and it
    returns there (StartRound only moves forward), without signing its round-2 prevote
    again when timeout_propose fires there."""
    chain = Chain()
    me = chain.not_proposer((0, 1, 2))
    machine = chain.machine(me)
    machine.start(NOW)
    machine.handle(VoteReceived(chain.vote(me, PREVOTE, 2, NIL)), NOW)
    assert (machine.round, machine.step) == (2, Step.PROPOSE)
    effects = machine.handle(TimeoutFired(1, 2, Step.PROPOSE), NOW)  # line 59: its prevote
    assert (machine.round, machine.step) == (2, Step.PREVOTE)
    assert not of_type(effects, BroadcastVote)


def test_the_nodes_prevote_counts_toward_the_polka_beside_its_replayed_precommit() -> None:
    """A node's WAL held its precommit for B at (1, 0) but not its prevote (the signer
    here keeps no last-sign state, as a byzantine node's may not). B is proposed; the
    node prevotes B and counts that prevote: with two other prevotes for B it has a
    polka for B and locks B (lines 36-39)."""
    chain = Chain()
    me = chain.not_proposer()
    signer = RawSigner(chain.keys[me])
    d = Driver(ConsensusMachine(config(), chain.state, signer, FakeVerifier()))
    d.start()
    block = chain.block(proposer=chain.proposer(0))
    b = block.block_id()
    d.feed(VoteReceived(chain.vote(me, PRECOMMIT, 0, b)))  # replayed from the WAL
    effects = d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    assert [(v.kind, v.block_hash) for v in votes_out(effects)] == [(PREVOTE, b)]
    others = [i for i in range(len(chain.keys)) if i != me]
    d.feed(*(chain.prevote(i, 0, b) for i in others[:2]))
    assert (d.machine.locked_round, d.machine.locked_block_hash) == (0, b)
