"""The rule loop (``ConsensusMachine._advance``): every "upon" rule whose condition holds
fires in the step that made it hold, not at some later event (which may never come: a
lost application answer would then stall the round); a decision ends the height's rules;
and a restarted node goes back to the round it had reached.

Four validators of power 1: 2f+1 is 3 votes, f+1 is 2 votes.
"""

from __future__ import annotations

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
    BlockReceived,
    ProposalProcessed,
    ProposalReceived,
    TimeoutFired,
    VoteExtensionVerified,
)
from appchaind.consensus.machine import NIL, ConsensusMachine

from .harness import NOW, Chain


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
