"""Inputs to the consensus machine. Every event is a frozen record; the machine never blocks.

Network events carry untrusted messages (the machine checks signatures and
membership). Application verdicts answer the machine's ``Request*`` effects;
an answer that is late, duplicated or for a height the machine has left is
ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from appchaind.chain.types import Block, DuplicateVoteEvidence, Proposal, Validator, Vote
from appchaind.consensus.config import Step

__all__ = [
    "Event",
    "ProposalReceived",
    "BlockReceived",
    "VoteReceived",
    "EvidenceReceived",
    "TimeoutFired",
    "ProposalPrepared",
    "ProposalProcessed",
    "VoteExtended",
    "VoteExtensionVerified",
    "BlockFinalized",
]


@dataclass(frozen=True, slots=True)
class ProposalReceived:
    """A signed proposal from the network (the block travels separately)."""

    proposal: Proposal


@dataclass(frozen=True, slots=True)
class BlockReceived:
    """A full block from the network (for a proposal, a polka or a commit)."""

    block: Block


@dataclass(frozen=True, slots=True)
class VoteReceived:
    """A signed prevote or precommit from the network."""

    vote: Vote


@dataclass(frozen=True, slots=True)
class EvidenceReceived:
    """Duplicate-vote evidence gossiped by a peer (or reloaded from the node's evidence store)."""

    evidence: DuplicateVoteEvidence


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    """A timeout the machine scheduled with :class:`~appchaind.consensus.effects.ScheduleTimeout`."""

    height: int
    round: int
    step: Step


@dataclass(frozen=True, slots=True)
class ProposalPrepared:
    """The application's transactions for the block the machine asked it to prepare (getValue)."""

    height: int
    round: int
    txs: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ProposalProcessed:
    """The application's verdict on a proposed block: the paper's valid(v)."""

    height: int
    block_hash: bytes
    accepted: bool


@dataclass(frozen=True, slots=True)
class VoteExtended:
    """The application's vote extension for this node's non-nil precommit."""

    height: int
    round: int
    block_hash: bytes
    extension: bytes


@dataclass(frozen=True, slots=True)
class VoteExtensionVerified:
    """The application's verdict on another validator's vote extension."""

    vote: Vote
    accepted: bool


@dataclass(frozen=True, slots=True)
class BlockFinalized:
    """The application executed the decided block: its new app hash and validator updates.

    ``validator_updates`` (power 0 removes) take effect at ``height + 2``.
    """

    height: int
    block_hash: bytes
    app_hash: bytes
    validator_updates: tuple[Validator, ...] = ()


Event = (
    ProposalReceived
    | BlockReceived
    | VoteReceived
    | EvidenceReceived
    | TimeoutFired
    | ProposalPrepared
    | ProposalProcessed
    | VoteExtended
    | VoteExtensionVerified
    | BlockFinalized
)
