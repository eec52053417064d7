"""Votes of one height, tallied by voting power.

Invariants: a :class:`VoteSet` holds at most one vote per validator slot (the
first valid one); a second vote from the same slot for a different block is not
counted (it becomes evidence, see the machine). Tallies are updated in O(1) per
vote: ``power_for[block_hash]`` and ``total_power`` never need a re-scan.
"""

from __future__ import annotations

from appchaind.types import PRECOMMIT, PREVOTE, Vote

__all__ = ["VoteSet", "RoundVotes"]


class VoteSet:
    """The prevotes or the precommits of one round. ``block_hash`` b"" is nil."""

    __slots__ = ("kind", "round", "votes", "power_for", "total_power")

    def __init__(self, kind: int, round: int, size: int) -> None:
        self.kind = kind
        self.round = round
        self.votes: list[Vote | None] = [None] * size
        #: power of the votes for each block hash (b"" = nil), in arrival order of the hashes
        self.power_for: dict[bytes, int] = {}
        #: power of every vote in the set, whatever its block
        self.total_power = 0

    def add(self, index: int, vote: Vote, power: int) -> int:
        """Counts ``vote`` in slot ``index``; returns the new power for its block hash.

        The slot must be empty (the caller checks for duplicates and conflicts).
        """
        self.votes[index] = vote
        self.total_power += power
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
