"""What a node re-sends to its peers (``ConsensusMachine.gossip()``): the paper assumes
correct processes relay what they got, so a peer that missed messages before the network
healed can still complete the round it is in, or catch up with ours.

Four validators of power 1: 2f+1 is 3 votes, f+1 is 2 votes.
"""

from __future__ import annotations

from collections import Counter

from appchaind.chain.types import PRECOMMIT, PREVOTE
from appchaind.consensus.config import Step
from appchaind.consensus.events import BlockReceived, ProposalReceived, TimeoutFired
from appchaind.consensus.machine import NIL

from .harness import Chain, Driver, votes_out


def test_gossip_resends_the_previous_rounds_votes_and_the_current_rounds_proposal() -> None:
    """A node that precommitted nil in round 0 (no lock, no valid value) and moved to
    round 1 on 2f+1 precommits re-sends: its own votes of rounds 0 and 1, every other
    validator's precommit of round 0 (they move a peer still in round 0 to round 1, lines
    47 and 65), and round 1's proposal with its block. Its own round-0 precommit is sent
    once."""
    chain = Chain()
    me = chain.not_proposer((0, 1))
    d = Driver(chain.machine(me))
    d.start()
    own = votes_out(d.feed(TimeoutFired(1, 0, Step.PROPOSE)))  # prevote nil (line 59)
    own += votes_out(d.feed(TimeoutFired(1, 0, Step.PREVOTE)))  # precommit nil (line 63)
    assert [(v.kind, v.round, v.block_hash) for v in own] == [
        (PREVOTE, 0, NIL),
        (PRECOMMIT, 0, NIL),
    ]
    helpers = [i for i in range(len(chain.keys)) if i != me][:2]
    precommits = [chain.precommit(i, 0, NIL) for i in helpers]
    d.feed(*precommits)
    d.feed(TimeoutFired(1, 0, Step.PRECOMMIT))  # line 65: to round 1
    assert (d.machine.round, d.machine.locked_round, d.machine.valid_round) == (1, -1, -1)
    block = chain.block((b"r1=1",), proposer=chain.proposer(1))
    proposal = chain.proposal(block, 1)
    own += votes_out(d.feed(BlockReceived(block), ProposalReceived(proposal)))  # prevote (line 24)
    assert [(v.kind, v.round) for v in own[2:]] == [(PREVOTE, 1)]
    assert Counter(d.machine.gossip()) == Counter(
        [*own, *(p.vote for p in precommits), proposal, block]
    )
