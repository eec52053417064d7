"""Outputs of the consensus machine: what the driver must do. Every effect is a frozen record.

The driver performs effects in the order given. ``Request*`` effects ask the
application something; the answer comes back as the matching event
(:mod:`appchaind.consensus.events`). Signatures are already made (through the
injected :class:`~appchaind.consensus.signer.Signer`, which persisted its
last-signed state first), so a broadcast may leave the process at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from appchaind.chain.types import Block, Commit, DuplicateVoteEvidence, Proposal, Vote
from appchaind.consensus.config import Step
from appchaind.consensus.state import ChainState

__all__ = [
    "Effect",
    "BroadcastProposal",
    "BroadcastVote",
    "BroadcastEvidence",
    "ScheduleTimeout",
    "RequestPrepareProposal",
    "RequestProcessProposal",
    "RequestExtendVote",
    "RequestVerifyVoteExtension",
    "Decide",
    "RequestFinalizeBlock",
    "EnterHeight",
    "SigningRefused",
]


@dataclass(frozen=True, slots=True)
class BroadcastProposal:
    """Send this node's signed proposal and its block to every peer."""

    proposal: Proposal
    block: Block


@dataclass(frozen=True, slots=True)
class BroadcastVote:
    """Send this node's signed vote to every peer."""

    vote: Vote


@dataclass(frozen=True, slots=True)
class BroadcastEvidence:
    """New verified evidence: store it (so it survives a restart) and gossip it."""

    evidence: DuplicateVoteEvidence


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    """Deliver ``TimeoutFired(height, round, step)`` after ``duration_ms`` of local time."""

    height: int
    round: int
    step: Step
    duration_ms: int


@dataclass(frozen=True, slots=True)
class RequestPrepareProposal:
    """getValue(): ask the application for the transactions of a new block (ABCI PrepareProposal).

    ``last_commit`` is the extended commit (vote extensions included) the block will carry.
    """

    height: int
    round: int
    time_ms: int
    max_txs: int
    last_commit: Commit | None


@dataclass(frozen=True, slots=True)
class RequestProcessProposal:
    """valid(v): ask the application whether ``block`` is acceptable (ABCI ProcessProposal)."""

    block: Block


@dataclass(frozen=True, slots=True)
class RequestExtendVote:
    """Ask the application for the extension of this node's precommit for ``block_hash``."""

    height: int
    round: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class RequestVerifyVoteExtension:
    """Ask the application whether another validator's vote extension is acceptable."""

    vote: Vote


@dataclass(frozen=True, slots=True)
class Decide:
    """decision_p[h] = block: persist the block and its (extended) commit."""

    block: Block
    commit: Commit


@dataclass(frozen=True, slots=True)
class RequestFinalizeBlock:
    """Ask the application to execute the decided block; answer with BlockFinalized."""

    block: Block
    commit: Commit


@dataclass(frozen=True, slots=True)
class EnterHeight:
    """The machine moved to ``state.height``: persist ``state`` with the decided block."""

    state: ChainState


@dataclass(frozen=True, slots=True)
class SigningRefused:
    """The signer refused to sign (it already signed something else at this height/round/step).

    The machine stays silent for that step; this effect exists so the driver can log it.
    """

    height: int
    round: int
    step: Step
    reason: str


Effect = (
    BroadcastProposal
    | BroadcastVote
    | BroadcastEvidence
    | ScheduleTimeout
    | RequestPrepareProposal
    | RequestProcessProposal
    | RequestExtendVote
    | RequestVerifyVoteExtension
    | Decide
    | RequestFinalizeBlock
    | EnterHeight
    | SigningRefused
)
