"""CometBFT's weighted round-robin proposer selection, against worked examples."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from appchaind.chain.types import Validator
from appchaind.consensus.validators import ValidatorSet


@dataclass(frozen=True)
class Named:
    """A validator whose address is chosen (CometBFT's tests use b"foo", b"bar", ...)."""

    address: bytes
    power: int
    public_key: bytes = b"\0" * 32


def _named_set(**powers: int) -> ValidatorSet:
    return ValidatorSet.from_genesis(Named(n.encode(), p) for n, p in powers.items())  # type: ignore[misc]


def _sequence(vals: ValidatorSet, n: int) -> list[str]:
    names = []
    for _ in range(n):
        names.append(vals.proposer.address.decode())
        vals = vals.increment(1)
    return names


def test_cometbft_proposer_selection_1() -> None:
    """CometBFT types/validator_set_test.go TestProposerSelection1, all 99 steps."""
    vals = _named_set(foo=1000, bar=300, baz=330)
    expected = (
        "foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar "
        "foo foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar "
        "foo baz foo foo bar foo baz foo foo bar foo baz foo foo foo baz bar foo foo foo baz "
        "foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo "
        "foo bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo"
    )
    assert " ".join(_sequence(vals, 99)) == expected


def test_powers_1_2_3_worked_example() -> None:
    """Worked by hand: priorities (a, b, c) start at 0; each step adds the powers, the largest
    (ties: the smaller address) is chosen and loses the total, 6.

    step 1: (1, 2, 3) -> c: (1, 2, -3);  step 2: (2, 4, 0) -> b: (2, -2, 0)
    step 3: (3, 0, 3) -> a (tie, smaller address): (-3, 0, 3)
    step 4: (-2, 2, 6) -> c: (-2, 2, 0); step 5: (-1, 4, 3) -> b: (-1, -2, 3)
    step 6: (0, 0, 6) -> c: (0, 0, 0), and the cycle repeats.
    """
    vals = _named_set(a=1, b=2, c=3)
    assert _sequence(vals, 12) == "c b a c b c c b a c b c".split()


def test_equal_powers_rotate_in_address_order() -> None:
    vals = _named_set(v3=5, v1=5, v2=5)
    assert _sequence(vals, 6) == ["v1", "v2", "v3", "v1", "v2", "v3"]


def test_round_r_proposer_is_the_set_incremented_r_times() -> None:
    vals = _named_set(foo=1000, bar=300, baz=330)
    names = _sequence(vals, 7)
    for r in range(7):
        assert vals.proposer_for_round(r) == names[r].encode()


def test_priorities_stay_centred_and_within_the_window() -> None:
    vals = _named_set(a=1, b=10, c=100, d=1000)
    for _ in range(500):
        vals = vals.increment(1)
        assert max(vals.priorities) - min(vals.priorities) <= 2 * vals.total_power + 1000
        assert abs(sum(vals.priorities)) < len(vals) * vals.total_power


def test_new_validator_starts_behind_and_removal_works() -> None:
    vals = _named_set(a=10, b=10)
    grown = vals.with_updates([Named(b"c", 10)])  # type: ignore[list-item]
    c = grown.index_of(b"c")
    # A new validator starts at -1.125 × total (then centred): it is not the next proposer.
    assert grown.priorities[c] == min(grown.priorities)
    assert grown.increment(1).proposer.address != b"c"
    shrunk = grown.with_updates([Named(b"a", 0)])  # type: ignore[list-item]
    assert shrunk.index_of(b"a") == -1 and shrunk.total_power == 20


def test_ordering_by_power_then_address() -> None:
    vals = _named_set(z=1, a=5, m=5)
    assert [v.address for v in vals.validators] == [b"a", b"m", b"z"]


@given(st.lists(st.integers(1, 50), min_size=1, max_size=8))
def test_selection_is_deterministic_and_proportional(powers: list[int]) -> None:
    validators = [Validator(bytes([i + 1]) * 32, p) for i, p in enumerate(powers)]
    a = ValidatorSet.from_genesis(validators)
    b = ValidatorSet.from_genesis(list(reversed(validators)))
    assert a == b
    total = a.total_power
    counts: dict[bytes, int] = {}
    for _ in range(total * 4):
        counts[a.proposer.address] = counts.get(a.proposer.address, 0) + 1
        a = a.increment(1)
    for v in validators:
        # Over 4 × total rounds each validator proposes close to 4 × its power.
        assert abs(counts.get(v.address, 0) - 4 * v.power) <= len(powers) + 1
