"""The rule loop (``ConsensusMachine._advance``): every "upon" rule whose condition holds
fires in the step that made it hold, not at some later event (which may never come: a
lost application answer would then stall the round); a decision ends the height's rules;
line 49 is looked at for every round's commit; and line 55 counts votes heard during the
pause between heights.

Four validators of power 1: 2f+1 is 3 votes, f+1 is 2 votes.
"""

from __future__ import annotations

import pytest

from appchaind.chain.types import PREVOTE
from appchaind.consensus.config import Step
from appchaind.consensus.effects import (
    BroadcastVote,
    Decide,
    Effect,
    RequestExtendVote,
    RequestFinalizeBlock,
    RequestProcessProposal,
    RequestVerifyVoteExtension,
    ScheduleTimeout,
)
from appchaind.consensus.events import (
    BlockFinalized,
    BlockReceived,
    ProposalProcessed,
    ProposalReceived,
    TimeoutFired,
    VoteExtensionVerified,
    VoteReceived,
)
from appchaind.consensus.machine import NIL, ConsensusMachine

from .harness import NOW, Chain, of_type


def _others(chain: Chain, me: int) -> list[int]:
    return [i for i in range(len(chain.keys)) if i != me]


def _feed(machine: ConsensusMachine, *events: object) -> list[Effect]:
    """Feeds ``events``; answers extension checks (accepted) and block checks (accepted)."""
    out: list[Effect] = []
    for event in events:
        for effect in machine.handle(event, NOW):  # type: ignore[arg-type]
            out.append(effect)
            if isinstance(effect, RequestVerifyVoteExtension):
                out += machine.handle(VoteExtensionVerified(effect.vote, True), NOW)
            elif isinstance(effect, RequestProcessProposal):
                block = effect.block
                out += machine.handle(ProposalProcessed(1, block.block_id(), True), NOW)
    return out


def _steps(effects: list[Effect]) -> list[tuple[str, int]]:
    """What the machine did, in order: votes signed, extensions asked, timeouts scheduled."""
    done = []
    for e in effects:
        if isinstance(e, BroadcastVote):
            done.append(("prevote" if e.vote.kind == PREVOTE else "precommit", e.vote.round))
        elif isinstance(e, RequestExtendVote):
            done.append(("extend", e.round))
        elif isinstance(e, ScheduleTimeout):
            done.append((f"timeout {e.step.name.lower()}", e.round))
    return done


def test_a_restarted_node_fires_every_rule_its_replayed_messages_enable_at_start() -> None:
    """A restarting node replays what it received before StartRound(0) (as the simulator
    does): round 0's proposal and block, three prevotes for it and three precommits (two
    nil). Starting, it schedules timeout_propose (line 21), prevotes the block (line 24), schedules timeout_prevote (line 35),
    locks and asks for its precommit's extension (lines 36-41) and, 2f+1 precommits being
    there, schedules timeout_precommit (line 48): all in the one step of start()."""
    chain = Chain()
    me = chain.not_proposer()
    machine = chain.machine(me)
    block = chain.block(proposer=chain.proposer(0))
    b = block.block_id()
    others = _others(chain, me)
    _feed(machine, BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    _feed(machine, *(chain.prevote(i, 0, b) for i in others))
    _feed(machine, chain.precommit(others[0], 0, b))
    _feed(machine, *(chain.precommit(i, 0, NIL) for i in others[1:]))
    assert _steps(machine.start(NOW)) == [
        ("timeout propose", 0), ("prevote", 0), ("timeout prevote", 0), ("extend", 0),
        ("timeout precommit", 0),
    ]  # fmt: skip


def test_a_decision_ends_the_heights_rules_in_its_step() -> None:
    """Round 0 ended without the node holding block B, for which it has 2f+1 precommits
    of round 0; in round 1, B is proposed (vr = -1). When the application accepts B, the
    node decides B (line 49): it does not also prevote B in round 1 (line 24), the height
    being over once decided."""
    chain = Chain()
    me = chain.not_proposer((0, 1))
    machine = chain.machine(me)
    machine.start(NOW)
    block = chain.block(proposer=chain.proposer(1))
    b = block.block_id()
    others = _others(chain, me)
    _feed(machine, *(chain.precommit(i, 0, b) for i in others))
    _feed(machine, TimeoutFired(1, 0, Step.PRECOMMIT))  # line 65: round 1
    assert (machine.round, machine.step, machine.decision) == (1, Step.PROPOSE, None)
    machine.handle(BlockReceived(block), NOW)
    machine.handle(ProposalReceived(chain.proposal(block, 1)), NOW)
    effects = machine.handle(ProposalProcessed(1, b, True), NOW)
    assert [type(e) for e in effects] == [Decide, RequestFinalizeBlock]


def test_a_commit_whose_block_never_arrives_does_not_hide_a_later_one() -> None:
    """Line 49 holds for every round r. The node holds 2f+1 precommits for X in round 0
    but never gets X; in round 1 it gets B, accepted, and 2f+1 precommits for B: it
    decides B. (Two such commits need more than f faulty validators; the node must still
    not stall on the first one.)"""
    chain = Chain()
    me = chain.not_proposer((0, 1))
    machine = chain.machine(me)
    machine.start(NOW)
    others = _others(chain, me)
    _feed(machine, *(chain.precommit(i, 0, b"\x0a" * 32) for i in others))
    _feed(machine, TimeoutFired(1, 0, Step.PRECOMMIT))  # line 65: round 1
    block = chain.block(proposer=chain.proposer(1))
    b = block.block_id()
    _feed(machine, BlockReceived(block), ProposalReceived(chain.proposal(block, 1)))
    effects = _feed(machine, *(chain.precommit(i, 1, b) for i in others))
    assert [e.block for e in of_type(effects, Decide)] == [block]


def _in_the_commit_pause(chain: Chain, me: int) -> ConsensusMachine:
    """``me``'s machine right after height 1 was decided and finalized: at height 2, round
    0, in the commit pause (step NEW_HEIGHT) until its timeout fires."""
    machine = chain.machine(me, commit_ms=1000)
    machine.start(NOW)
    block = chain.block(proposer=chain.proposer(0))
    b = block.block_id()
    others = _others(chain, me)
    _feed(machine, BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    _feed(machine, *(chain.prevote(i, 0, b) for i in others))
    for effect in _feed(machine, *(chain.precommit(i, 0, b) for i in others)):
        if isinstance(effect, RequestFinalizeBlock):
            machine.handle(BlockFinalized(1, b, b"\x01" * 32), NOW)
    assert (machine.height, machine.round, machine.step) == (2, 0, Step.NEW_HEIGHT)
    return machine


@pytest.mark.parametrize(
    ("rounds", "starts_at"), [((1,), 1), ((5, 3), 5)], ids=["round-1", "round-5-then-3"]
)
def test_f_plus_1_votes_of_a_round_heard_between_heights_move_the_next_height_there(
    rounds: tuple[int, ...], starts_at: int
) -> None:
    """Line 55 during the commit pause (the node is at round 0 of the new height): f+1
    prevotes of that height's round 1 heard then make it go to round 1 as soon as the
    height starts. f+1 of round 5, then f+1 of round 3: round 3 is not past round 5, so the
    node still goes to round 5 (a later, lower round must not take the place of a higher
    one: at round 3 the round-5 votes already counted would not move it on again)."""
    chain = Chain()
    me = chain.not_proposer()
    machine = _in_the_commit_pause(chain, me)
    for round in rounds:
        for i in _others(chain, me)[:2]:
            machine.handle(VoteReceived(chain.vote(i, PREVOTE, round, NIL, height=2)), NOW)
    machine.handle(TimeoutFired(2, 0, Step.NEW_HEIGHT), NOW)
    assert (machine.height, machine.round) == (2, starts_at)
