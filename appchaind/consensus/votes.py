"""Votes of one height, tallied by voting power.

Counting follows the paper: "2f+1 ⟨PREVOTE, h, r, id(v)⟩" is the power of the
distinct validators that sent a prevote for id(v). A validator that
equivocates is therefore counted once for each block it voted for (that is
what lets every correct node see a polka that one correct node saw, as
CometBFT's peer-maj23 votes do), and once in ``total_power`` (the "∗" rules).
A slot keeps at most :data:`MAX_BLOCKS_PER_SLOT` different blocks, so a
byzantine validator cannot make the set grow without bound.

Invariants: tallies are updated in O(1) per vote and never re-scanned;
``power_for[h]`` is the power of the distinct validators with a vote for ``h``;
``total_power`` the power of the distinct validators with any vote.
"""

from __future__ import annotations

from appchaind.chain.types import PRECOMMIT, PREVOTE, Vote

__all__ = ["VoteSet", "RoundVotes", "MAX_BLOCKS_PER_SLOT"]

#: The most different blocks one validator's votes are counted for, in one vote set.
MAX_BLOCKS_PER_SLOT = 4


class VoteSet:
    """The prevotes or the precommits of one round. ``block_hash`` b"" is nil."""

    __slots__ = ("kind", "round", "slots", "power_for", "total_power")

    def __init__(self, kind: int, round: int, size: int) -> None:
        self.kind = kind
        self.round = round
        #: per validator slot: its votes by block hash, in arrival order (None: no vote yet)
        self.slots: list[dict[bytes, Vote] | None] = [None] * size
        self.power_for: dict[bytes, int] = {}
        self.total_power = 0

    def has(self, index: int, block_hash: bytes) -> bool:
        votes = self.slots[index]
        return votes is not None and block_hash in votes

    def full(self, index: int) -> bool:
        votes = self.slots[index]
        return votes is not None and len(votes) >= MAX_BLOCKS_PER_SLOT

    def first(self, index: int) -> Vote | None:
        """The first vote counted for this validator (None if none)."""
        votes = self.slots[index]
        return None if votes is None else next(iter(votes.values()))

    def vote_for(self, index: int, block_hash: bytes) -> Vote | None:
        votes = self.slots[index]
        return None if votes is None else votes.get(block_hash)

    def add(self, index: int, vote: Vote, power: int) -> int:
        """Counts ``vote`` for its block; returns the new power for that block.

        The caller has checked ``not has(index, vote.block_hash)`` and ``not full(index)``.
        """
        votes = self.slots[index]
        if votes is None:
            votes = self.slots[index] = {}
            self.total_power += power
        votes[vote.block_hash] = vote
        tally = self.power_for.get(vote.block_hash, 0) + power
        self.power_for[vote.block_hash] = tally
        return tally

    def power(self, block_hash: bytes) -> int:
        return self.power_for.get(block_hash, 0)


class RoundVotes:
    """Both vote sets of one round, and the power of the distinct validators heard from in it
    (the paper's f+1 ⟨∗, h, round, ∗, ∗⟩ of line 55)."""

    __slots__ = ("prevotes", "precommits", "_heard", "heard_power")

    def __init__(self, round: int, size: int) -> None:
        self.prevotes = VoteSet(PREVOTE, round, size)
        self.precommits = VoteSet(PRECOMMIT, round, size)
        self._heard = [False] * size
        self.heard_power = 0

    def of(self, kind: int) -> VoteSet:
        return self.prevotes if kind == PREVOTE else self.precommits

    def hear(self, index: int, power: int) -> None:
        """Records that validator ``index`` sent something in this round."""
        if not self._heard[index]:
            self._heard[index] = True
            self.heard_power += power
