"""Validator sets and proposer priorities, at the edges ``make mutate`` found unguarded:
priorities stay int64 (CometBFT's clipping arithmetic), are rescaled by the ceiling ratio
with Go's truncating division and centred on their floored average, an increment is of
at least one round, every validator has power, a validator added by an update starts at
-(T + T/8) where T is the power after the update's additions and changes but before its
removals (CometBFT's tvpAfterUpdatesBeforeRemovals), an update leaves the proposer alone,
and two sets are equal only when they choose the same proposers.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from appchaind.consensus.validators import ValidatorSet

I64_MIN, I64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Named:
    """A validator whose address is chosen, so the set's order is known."""

    address: bytes
    power: int
    public_key: bytes = b"\0" * 32


def _genesis(**powers: int) -> ValidatorSet:
    return ValidatorSet.from_genesis(Named(n.encode(), p) for n, p in powers.items())  # type: ignore[misc]


def _priority(vals: ValidatorSet, name: str) -> int:
    return vals.priorities[vals.index_of(name.encode())]


# ---------------------------------------------------------------- priorities


def test_proposer_priorities_saturate_at_the_int64_bounds() -> None:
    """Go's safeAddClip/safeSubClip: adding a power or subtracting the total saturates, so
    priorities always fit the I64 the stored chain state keeps them in. Three validators
    of power 2**63 - 1 push them past both bounds at once."""
    vals = _genesis(a=I64_MAX, b=I64_MAX, c=I64_MAX)
    for _ in range(4):
        assert all(I64_MIN <= p <= I64_MAX for p in vals.priorities)
        assert I64_MIN in vals.priorities and I64_MAX in vals.priorities
        vals = vals.increment(1)


#: Two validators of power 1 (total 2: the spread is kept within 4), from the priorities
#: given, after one increment: rescaled, centred, both +1, the larger (ties: a) - 2.
_PAIR = (Named(b"a", 1), Named(b"b", 1))


@pytest.mark.parametrize(
    ("priorities", "after"),
    [
        # spread 14: divided by ceil(14 / 4) = 4, as Go divides: 7 -> 1, -7 -> -1 (floor
        # division would give -2); centred (1, -1); (2, 0), a proposes: (0, 0)
        ((7, -7), (0, 0)),
        # spread 16, a multiple of 4: ratio exactly 4, (2, -2); (3, -1), a: (1, -1)
        ((8, -8), (1, -1)),
        # spread 13: ratio ceil(13 / 4) = 4, not 3: (1, -1); (2, 0), a: (0, 0)
        ((7, -6), (0, 0)),
        # spread 32: ratio 8, an integer: (2, -2); (3, -1), a: (1, -1)
        ((16, -16), (1, -1)),
    ],
)
def test_priorities_are_rescaled_by_the_ceiling_ratio_truncating_toward_zero(
    priorities: tuple[int, int], after: tuple[int, int]
) -> None:
    """RescalePriorities: a spread above 2 × total is divided by ceil(spread / (2 × total)),
    each priority divided as Go divides integers (toward zero)."""
    vals = ValidatorSet(_PAIR, priorities, 0).increment(1)  # type: ignore[arg-type]
    assert vals.priorities == after
    assert all(type(p) is int for p in vals.priorities)


@pytest.mark.parametrize(
    ("priorities", "after"),
    [
        # average 2: (1, -1); (2, 0), a: (0, 0)
        ((3, 1), (0, 0)),
        # average 1/2, floored to 0: (1, 0); (2, 1), a: (0, 1)
        ((1, 0), (0, 1)),
        # average -1/2, floored to -1: (0, 1); (1, 2), b: (1, 0)
        ((-1, 0), (1, 0)),
    ],
)
def test_priorities_are_centred_on_their_floored_average(
    priorities: tuple[int, int], after: tuple[int, int]
) -> None:
    """shiftByAvgProposerPriority: the average (floored, as big.Int.Div) is subtracted;
    priorities stay integers."""
    vals = ValidatorSet(_PAIR, priorities, 0).increment(1)  # type: ignore[arg-type]
    assert vals.priorities == after
    assert all(type(p) is int for p in vals.priorities)


def test_priorities_advance_by_at_least_one_round() -> None:
    """increment(0) would rescale and centre without choosing a proposer: refused."""
    with pytest.raises(ValueError):
        _genesis(a=1, b=2).increment(0)


def test_a_validator_set_refuses_a_validator_without_power() -> None:
    with pytest.raises(ValueError):
        ValidatorSet((Named(b"a", 1), Named(b"b", 0)), (0, 0), 0)  # type: ignore[arg-type]


# ---------------------------------------------------------------- updates


def test_a_new_validator_starts_at_minus_one_and_an_eighth_of_the_power_before_removals() -> None:
    """a=10, b=10 at genesis (priorities -10, 10). Adding c=10 and removing b in one update:
    T = 20 + 10 = 30 (b's removal not subtracted), c starts at -(30 + 30 // 8) = -33, 23
    below a; centring moves both alike."""
    vals = _genesis(a=10, b=10)
    grown = vals.with_updates([Named(b"c", 10), Named(b"b", 0)])  # type: ignore[list-item]
    assert [v.address for v in grown.validators] == [b"a", b"c"]
    assert _priority(grown, "c") - _priority(grown, "a") == -33 - _priority(vals, "a")


def test_a_new_validators_start_counts_the_power_changes_of_the_same_update() -> None:
    """a=10, b=10 at genesis. Adding c=10 while a goes from 10 to 30: T = 20 + (30 - 10) +
    10 = 50, c starts at -(50 + 50 // 8) = -56, 46 below a's unchanged priority."""
    vals = _genesis(a=10, b=10)
    grown = vals.with_updates([Named(b"c", 10), Named(b"a", 30)])  # type: ignore[list-item]
    assert grown.total_power == 50
    assert _priority(grown, "c") - _priority(grown, "a") == -56 - _priority(vals, "a")


def test_an_update_that_adds_a_power_1_validator_adds_it() -> None:
    """Only power 0 removes: a new validator of power 1 is added, not refused as the removal
    of an unknown validator."""
    grown = _genesis(a=10, b=10).with_updates([Named(b"c", 1)])  # type: ignore[list-item]
    assert grown.index_of(b"c") == 2 and grown.total_power == 21


def test_an_update_leaves_the_proposer_alone_until_the_next_increment() -> None:
    """a=10, b=10: a proposes round 0 of the genesis set, b the next step. Adding c there
    keeps b the proposer (at slot 1 of the new order)."""
    vals = _genesis(a=10, b=10).increment(1)
    assert vals.proposer.address == b"b"
    grown = vals.with_updates([Named(b"c", 5)])  # type: ignore[list-item]
    assert grown.proposer.address == b"b"


def test_a_set_whose_proposer_was_removed_still_has_a_proposer_in_it() -> None:
    vals = _genesis(a=10, b=10)
    assert vals.proposer.address == b"a"
    shrunk = vals.with_updates([Named(b"a", 0)])  # type: ignore[list-item]
    assert shrunk.proposer.address == b"b"


# ---------------------------------------------------------------- identity


def test_validator_sets_are_equal_only_with_the_same_validators_priorities_and_proposer() -> None:
    """The three together decide every later proposer: a set differing in any one is
    another set."""
    trio = (Named(b"a", 1), Named(b"b", 1), Named(b"c", 1))
    base = ValidatorSet(trio, (0, 0, 0), 0)  # type: ignore[arg-type]
    assert base == ValidatorSet(trio, (0, 0, 0), 0)  # type: ignore[arg-type]
    assert base != ValidatorSet(trio, (1, -1, 0), 0)  # type: ignore[arg-type]
    assert base != ValidatorSet(trio, (0, 0, 0), 1)  # type: ignore[arg-type]
    assert base != ValidatorSet(trio[:2] + (Named(b"d", 1),), (0, 0, 0), 0)  # type: ignore[arg-type]
    assert base != "not a set"


def test_a_validator_sets_hash_is_that_of_its_validators_priorities_and_proposer() -> None:
    """A set is hashable, as the frozen ChainState holding it is: its hash is the hash of
    what its equality compares, so equal sets hash alike and sets differing in any one of
    the three hash apart."""
    trio = (Named(b"a", 1), Named(b"b", 1), Named(b"c", 1))
    base = ValidatorSet(trio, (0, 0, 0), 0)  # type: ignore[arg-type]
    assert hash(base) == hash((trio, (0, 0, 0), 0))
    assert hash(base) == hash(ValidatorSet(trio, (0, 0, 0), 0))  # type: ignore[arg-type]
    others = (
        ValidatorSet(trio, (1, -1, 0), 0),  # type: ignore[arg-type]
        ValidatorSet(trio, (0, 0, 0), 1),  # type: ignore[arg-type]
        ValidatorSet(trio[:2] + (Named(b"d", 1),), (0, 0, 0), 0),  # type: ignore[arg-type]
    )
    assert len({hash(base), *(hash(s) for s in others)}) == 4


def test_a_validator_sets_repr_lists_each_validator_and_the_proposer() -> None:
    """What a failed assertion or a debugger shows: each validator's address (first 4
    bytes in hex), power and priority, and the proposer; it must not raise."""
    vals = ValidatorSet((Named(b"\x0a" * 4, 3), Named(b"\x0b" * 4, 2)), (5, -5), 1)  # type: ignore[arg-type]
    text = repr(vals)
    assert "0a0a0a0a:3@5" in text and "0b0b0b0b:2@-5" in text
    assert text.endswith("proposer=0b0b0b0b)")
