"""Messages on the p2p channels, each a canonical codec message with a channel-local tag.

A frame's payload is ``[tag, fields]`` (a tagged union); each channel has its
own registry, so a message sent on the wrong channel is an unknown kind and
the peer is dropped as misbehaving.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from appchaind.chain import codec
from appchaind.chain.codec import U8, U32, U64, MaxItems, message
from appchaind.chain.types import (
    MAX_BLOCK_TXS,
    Block,
    Commit,
    DuplicateVoteEvidence,
    Proposal,
    TxBytes,
    Vote,
)

#: Bids in one :class:`BidMessage` at most (proposers x rounds a builder bids for).
MAX_BIDS_PER_MESSAGE = 1024

__all__ = [
    "MAX_BIDS_PER_MESSAGE",
    "CONSENSUS_MESSAGES",
    "MEMPOOL_MESSAGES",
    "EVIDENCE_MESSAGES",
    "BLOCKSYNC_MESSAGES",
    "BUILDER_MESSAGES",
    "ProposalMessage",
    "VoteMessage",
    "RoundStatus",
    "TxsMessage",
    "EvidenceMessage",
    "BlockRequest",
    "BlockResponse",
    "NoBlockResponse",
    "BidMessage",
    "encode_message",
    "decode_message",
]

CONSENSUS_MESSAGES: dict[int, type] = {}
MEMPOOL_MESSAGES: dict[int, type] = {}
EVIDENCE_MESSAGES: dict[int, type] = {}
BLOCKSYNC_MESSAGES: dict[int, type] = {}
BUILDER_MESSAGES: dict[int, type] = {}


def _register(registry: dict[int, type]):  # type: ignore[no-untyped-def]
    def wrap(cls: type) -> type:
        registry[cls.TAG] = cls  # type: ignore[attr-defined]
        return cls

    return wrap


@_register(CONSENSUS_MESSAGES)
@message
class ProposalMessage:
    """A signed proposal with its block."""

    TAG: ClassVar[int] = 1
    proposal: Proposal
    block: Block


@_register(CONSENSUS_MESSAGES)
@message
class VoteMessage:
    TAG: ClassVar[int] = 2
    vote: Vote


@_register(CONSENSUS_MESSAGES)
@message
class RoundStatus:
    """Where the sender is: its consensus height/round/step and its latest committed height
    (``base`` is the lowest height it can serve to block sync)."""

    TAG: ClassVar[int] = 3
    height: U64
    round: U32
    step: U8
    latest_height: U64
    base: U64


@_register(MEMPOOL_MESSAGES)
@message
class TxsMessage:
    TAG: ClassVar[int] = 1
    txs: Annotated[tuple[TxBytes, ...], MaxItems(MAX_BLOCK_TXS)]


@_register(EVIDENCE_MESSAGES)
@message
class EvidenceMessage:
    TAG: ClassVar[int] = 1
    evidence: DuplicateVoteEvidence


@_register(BLOCKSYNC_MESSAGES)
@message
class BlockRequest:
    TAG: ClassVar[int] = 1
    height: U64


@_register(BLOCKSYNC_MESSAGES)
@message
class BlockResponse:
    """A committed block and the commit that decided it."""

    TAG: ClassVar[int] = 2
    block: Block
    commit: Commit


@_register(BLOCKSYNC_MESSAGES)
@message
class NoBlockResponse:
    TAG: ClassVar[int] = 3
    height: U64


@_register(BUILDER_MESSAGES)
@message
class BidMessage:
    """A builder's bids for one block: ``bids`` the canonical bytes of txs whose bodies
    are :class:`appchaind.exchange.txs.BuilderBid` (one per proposer and round the
    builder bids for: a builder need not know the proposer schedule, and a receiver
    keeps the ones for its own blocks), ``txs`` the block's other txs in their order
    (their merkle root is each bid's ``txs_hash``). Sent once per peer: the block's txs
    travel once, not once per proposer."""

    TAG: ClassVar[int] = 1
    bids: Annotated[tuple[TxBytes, ...], MaxItems(MAX_BIDS_PER_MESSAGE)]
    txs: Annotated[tuple[TxBytes, ...], MaxItems(MAX_BLOCK_TXS)]


def encode_message(value: object) -> bytes:
    return codec.encode_union(value)


def decode_message(registry: dict[int, type], payload: bytes, max_bytes: int) -> object:
    """Decodes a channel payload; raises only CodecError."""
    return codec.decode_union(registry, payload, max_bytes)
