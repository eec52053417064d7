"""Consensus parameters: timeouts that grow linearly with the round, and test-only mutations."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ConsensusConfig", "Mutation", "Step"]


class Step(enum.IntEnum):
    """The paper's step_p, plus the pause between heights (CometBFT's timeout_commit).

    The integer values are the double-sign guard's step order (CometBFT's
    stepPropose = 1, stepPrevote = 2, stepPrecommit = 3).
    """

    NEW_HEIGHT = 0
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


class Mutation(enum.Enum):
    """Deliberately broken variants of the algorithm, used only by tests of the simulator.

    Production code never sets anything but ``NONE``; each mutant must make the
    simulator report a safety or liveness violation.
    """

    NONE = "none"
    #: Lines 23/29 ignore lockedRound/lockedValue: a node prevotes any valid proposal.
    NO_LOCKING = "no-locking"
    #: Every "2f+1" becomes "more than 1/2 of the power".
    HALF_THRESHOLD = "half-threshold"
    #: Line 55 fires on a single vote from a higher round instead of f+1 power.
    SKIP_ON_SINGLE_VOTE = "skip-on-single-vote"
    #: Line 28 without "2f+1 ⟨PREVOTE, h_p, vr, id(v)⟩": any vr < round_p is taken on trust.
    POL_WITHOUT_POLKA = "pol-without-polka"
    #: Line 28 counts 2f+1 ⟨PREVOTE, h_p, vr, ∗⟩ (prevotes for anything) instead of id(v).
    POL_ANY_VALUE = "pol-any-value"
    #: Line 29 without "(lockedRound_p ≤ vr ∨ lockedValue_p = v)": a polka of any earlier
    #: round, even one older than the lock, is enough to prevote v.
    POL_IGNORES_LOCK = "pol-ignores-lock"
    #: Line 16 re-proposes validValue with pol_round -1 instead of validRound_p.
    REPROPOSE_WITHOUT_POL = "repropose-without-pol"
    #: Line 45 also unlocks (lockedValue, lockedRound = nil, -1) on 2f+1 nil prevotes.
    UNLOCK_ON_NIL_POLKA = "unlock-on-nil-polka"


@dataclass(frozen=True, slots=True)
class ConsensusConfig:
    """Timeouts in milliseconds: ``timeout(step, round) = base + delta × round``.

    ``commit_ms`` is the pause after a decision before round 0 of the next
    height (collects more precommits for the next proposer's extended commit).
    ``evidence_max_age`` is in heights: older evidence is refused.
    """

    chain_id: str
    propose_ms: int = 1000
    propose_delta_ms: int = 500
    prevote_ms: int = 1000
    prevote_delta_ms: int = 500
    precommit_ms: int = 1000
    precommit_delta_ms: int = 500
    commit_ms: int = 0
    evidence_max_age: int = 100
    max_block_txs: int = 10_000
    #: Messages for rounds further than this beyond the current round are dropped (memory bound).
    max_round_skip: int = 1000
    mutation: Mutation = Mutation.NONE

    def timeout_ms(self, step: Step, round: int) -> int:
        """The paper's timeoutPropose/Prevote/Precommit(round), linear in the round."""
        if step == Step.PROPOSE:
            return self.propose_ms + self.propose_delta_ms * round
        if step == Step.PREVOTE:
            return self.prevote_ms + self.prevote_delta_ms * round
        if step == Step.PRECOMMIT:
            return self.precommit_ms + self.precommit_delta_ms * round
        return self.commit_ms

    def two_thirds(self, power: int, total: int) -> bool:
        """2f+1: strictly more than 2/3 of the total power."""
        if self.mutation is Mutation.HALF_THRESHOLD:
            return 2 * power > total
        return 3 * power > 2 * total

    def one_third(self, power: int, total: int) -> bool:
        """f+1: strictly more than 1/3 of the total power."""
        return 3 * power > total
