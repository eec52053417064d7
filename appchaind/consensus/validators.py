"""Validator sets and CometBFT's weighted round-robin proposer selection.

The algorithm is CometBFT's (spec/consensus/proposer-selection.md,
types/validator_set.go), integer for integer:

* every validator has a ``proposer priority`` (a signed integer);
* ``increment(times)`` first *scales* the priorities so that their spread
  (max - min) is at most ``2 * total power`` (dividing by
  ``ceil(spread / (2 * total))`` with Go's truncating division), then *centres*
  them by subtracting their average (floor division, as Go's ``big.Int.Div``),
  then ``times`` times: adds each validator's power to its priority, picks the
  validator with the largest priority (ties: the smaller address) and
  subtracts the total power from it. The last one picked is the proposer;
* a set built from genesis starts at priority 0 and is incremented once;
* a validator added by an update starts at ``-(total + total / 8)`` (CometBFT's
  C = 1.125), so leaving and re-joining cannot reset a negative priority.

Invariants: a :class:`ValidatorSet` is immutable; its validators are ordered by
power (descending) then address (ascending), which is also the order of the
slots of a :class:`~appchaind.chain.types.Commit`; powers are positive.
"""

from __future__ import annotations

from collections.abc import Iterable

from appchaind.chain.types import Validator, validators_hash

__all__ = ["ValidatorSet", "PRIORITY_WINDOW_FACTOR"]

#: The spread of priorities is kept within this many times the total power.
PRIORITY_WINDOW_FACTOR = 2
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


def _clip(value: int) -> int:
    """Go's safeAddClip/safeSubClip: saturate at the int64 bounds."""
    return _I64_MIN if value < _I64_MIN else _I64_MAX if value > _I64_MAX else value


def _go_div(a: int, b: int) -> int:
    """Go's integer division of int64s (truncates toward zero). ``b > 0``."""
    q = abs(a) // b
    return q if a >= 0 else -q


def _sort_key(entry: tuple[Validator, int]) -> tuple[int, bytes]:
    return (-entry[0].power, entry[0].address)


class ValidatorSet:
    """An immutable validator set with proposer priorities.

    ``validators[i]`` has priority ``priorities[i]``; ``proposer_index`` is the
    validator chosen by the last increment (the proposer of this set's round 0).
    """

    __slots__ = (
        "validators",
        "priorities",
        "proposer_index",
        "total_power",
        "addresses",
        "_index_of",
        "_hash",
    )

    def __init__(
        self, validators: tuple[Validator, ...], priorities: tuple[int, ...], proposer_index: int
    ) -> None:
        if not validators:
            raise ValueError("a validator set cannot be empty")
        if len(validators) != len(priorities):
            raise ValueError("one priority per validator")
        self.validators = validators
        self.priorities = priorities
        self.proposer_index = proposer_index
        self.total_power = sum(v.power for v in validators)
        #: ``addresses[i]`` is ``validators[i].address`` (computed once: it is a hash)
        self.addresses = tuple(v.address for v in validators)
        self._index_of = {a: i for i, a in enumerate(self.addresses)}
        if len(self._index_of) != len(validators):
            raise ValueError("duplicate validator address")
        if any(v.power <= 0 for v in validators):
            raise ValueError("validator powers must be positive")
        self._hash: bytes | None = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_genesis(cls, validators: Iterable[Validator]) -> ValidatorSet:
        """CometBFT's NewValidatorSet: priorities 0, sorted, then one increment."""
        entries = sorted(((v, 0) for v in validators), key=_sort_key)
        vals = tuple(e[0] for e in entries)
        return cls(vals, tuple(0 for _ in vals), 0).increment(1)

    def increment(self, times: int) -> ValidatorSet:
        """A copy with the priorities advanced ``times`` rounds (CometBFT IncrementProposerPriority)."""
        if times <= 0:
            raise ValueError("times must be positive")
        prios = _centred(_rescaled(list(self.priorities), self.total_power))
        powers = [v.power for v in self.validators]
        addresses = self.addresses
        total = self.total_power
        proposer = 0
        for _ in range(times):
            best = -1
            for i, power in enumerate(powers):
                p = prios[i] = _clip(prios[i] + power)
                if (
                    best < 0
                    or p > prios[best]
                    or (p == prios[best] and addresses[i] < addresses[best])
                ):
                    best = i
            prios[best] = _clip(prios[best] - total)
            proposer = best
        return ValidatorSet(self.validators, tuple(prios), proposer)

    def proposer_for_round(self, round: int) -> bytes:
        """The address of the proposer of round ``round`` of a height whose set (at round 0) is ``self``."""
        if round == 0:
            return self.addresses[self.proposer_index]
        return self.addresses[self.increment(round).proposer_index]

    def with_updates(self, updates: Iterable[Validator]) -> ValidatorSet:
        """CometBFT updateWithChangeSet: power 0 removes, a new key is added at -1.125 × total.

        Updates are applied in address order; one update per address. The
        result is rescaled, centred and re-sorted; its proposer is unchanged
        until the next :meth:`increment`.
        """
        changes = {u.address: u for u in updates}
        if len(changes) == 0:
            return self
        current = {v.address: (v, p) for v, p in zip(self.validators, self.priorities, strict=True)}
        removed_power = 0
        tvp = self.total_power
        for address in sorted(changes):
            u = changes[address]
            old = current.get(address)
            if u.power == 0:
                if old is None:
                    raise ValueError(f"cannot remove unknown validator {address.hex()}")
                removed_power += old[0].power
            else:
                tvp += u.power - (old[0].power if old else 0)
        tvp_before_removals = tvp
        for address in sorted(changes):
            u = changes[address]
            if u.power == 0:
                del current[address]
            elif address in current:
                current[address] = (u, current[address][1])
            else:
                current[address] = (u, -(tvp_before_removals + (tvp_before_removals >> 3)))
        if not current:
            raise ValueError("an update may not remove every validator")
        entries = sorted(current.values(), key=_sort_key)
        total = sum(e[0].power for e in entries)
        prios = _centred(_rescaled([e[1] for e in entries], total))
        proposer_address = self.proposer.address
        vals = tuple(e[0] for e in entries)
        index = next((i for i, v in enumerate(vals) if v.address == proposer_address), 0)
        return ValidatorSet(vals, tuple(prios), index)

    # ------------------------------------------------------------------ queries

    @property
    def proposer(self) -> Validator:
        return self.validators[self.proposer_index]

    def index_of(self, address: bytes) -> int:
        """The slot of ``address``, or -1 if it is not in the set."""
        return self._index_of.get(address, -1)

    def __len__(self) -> int:
        return len(self.validators)

    def hash(self) -> bytes:
        """Merkle root of the canonical validators (priorities are not part of it)."""
        if self._hash is None:
            self._hash = validators_hash(self.validators)
        return self._hash

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ValidatorSet)
            and self.validators == other.validators
            and self.priorities == other.priorities
            and self.proposer_index == other.proposer_index
        )

    def __hash__(self) -> int:
        return hash((self.validators, self.priorities, self.proposer_index))

    def __repr__(self) -> str:
        items = ", ".join(
            f"{v.address.hex()[:8]}:{v.power}@{p}"
            for v, p in zip(self.validators, self.priorities, strict=True)
        )
        return f"ValidatorSet([{items}], proposer={self.proposer.address.hex()[:8]})"


def _rescaled(prios: list[int], total: int) -> list[int]:
    """RescalePriorities(2 × total): divide so that max - min <= 2 × total."""
    diff_max = PRIORITY_WINDOW_FACTOR * total
    diff = max(prios) - min(prios)
    if diff > diff_max:
        ratio = (diff + diff_max - 1) // diff_max
        return [_go_div(p, ratio) for p in prios]
    return prios


def _centred(prios: list[int]) -> list[int]:
    """shiftByAvgProposerPriority: subtract the (floored) average priority."""
    avg = sum(prios) // len(prios)
    return [_clip(p - avg) for p in prios]
