"""Oracle prices from vote extensions: what a validator's extension may say (checked by
every validator before its precommit counts) and how the commit's extensions become the
block's prices (stake-weighted median, 2/3 of the stake, per-block clamp), at their exact
boundaries.

Found unguarded by ``make mutate`` (docs/mutation-report.md): the tests used equal powers
of 10 and prices well inside every bound.
"""

from __future__ import annotations

from appchaind.chain import codec
from appchaind.exchange.oracle import (
    MAX_REPORT_RATIO,
    MarketPrice,
    PrecommitExtension,
    aggregate,
    encode_vote,
    verify_extension,
)
from orderbook import MAX_PRICE

CURRENT = [50000, 3000]


def _raw(*entries: tuple[int, int]) -> bytes:
    """An extension listing ``entries`` (market, price) as given, in any order."""
    return codec.encode(PrecommitExtension(tuple(MarketPrice(m, p) for m, p in entries)))


def test_an_extension_lists_each_known_market_once_ascending() -> None:
    assert verify_extension(b"", CURRENT) is None
    assert verify_extension(_raw((0, 50000), (1, 3000)), CURRENT) is None
    assert verify_extension(_raw((1, 3000)), CURRENT) is None
    # the same market twice would count the validator's power twice in the median
    assert verify_extension(_raw((0, 50000), (0, 51000)), CURRENT) is not None
    assert verify_extension(_raw((1, 3000), (0, 50000)), CURRENT) is not None
    # a market the chain does not have (the first id past the last) is refused, not a crash
    assert verify_extension(_raw((2, 3000)), CURRENT) is not None
    assert verify_extension(_raw((0, 50000), (2, 3000)), CURRENT) is not None


def test_a_reported_price_is_within_a_factor_of_ten_of_the_current_price() -> None:
    low, high = 50000 // MAX_REPORT_RATIO, 50000 * MAX_REPORT_RATIO
    assert verify_extension(_raw((0, low)), CURRENT) is None
    assert verify_extension(_raw((0, low - 1)), CURRENT) is not None
    assert verify_extension(_raw((0, high)), CURRENT) is None
    assert verify_extension(_raw((0, high + 1)), CURRENT) is not None


def test_a_reported_price_is_from_one_tick_to_below_max_price() -> None:
    assert verify_extension(_raw((0, 1)), [5]) is None
    assert verify_extension(_raw((0, 0)), [5]) is not None
    big = MAX_PRICE // 2
    assert verify_extension(_raw((0, MAX_PRICE - 1)), [big]) is None
    assert verify_extension(_raw((0, MAX_PRICE)), [big]) is not None


def test_the_median_is_the_lowest_price_where_half_the_reported_power_is_reached() -> None:
    """Powers 1 and 2 (the total): 1 of 3 is not half, so the median is the price of the
    validator of power 2; powers 2 and 1: the first price already has half."""
    votes = [(1, encode_vote({0: 50100})), (2, encode_vote({0: 50200}))]
    assert aggregate(votes, 3, [50000], [100_000]) == [(50200, 50000, 3)]
    votes = [(2, encode_vote({0: 50100})), (1, encode_vote({0: 50200}))]
    assert aggregate(votes, 3, [50000], [100_000]) == [(50100, 50000, 3)]


def test_validators_of_power_one_report_and_two_of_three_is_enough() -> None:
    """Powers 1, 1, 1: two reports are exactly 2/3 of the stake, enough to move the price;
    one report is not."""
    two = [(1, encode_vote({0: 50300})), (1, encode_vote({0: 50400})), (1, b"")]
    assert aggregate(two, 3, [50000], [100_000]) == [(50300, 50000, 2)]
    one = [(1, encode_vote({0: 50300})), (1, b""), (1, b"")]
    assert aggregate(one, 3, [50000], [100_000]) == [(50000, 50000, 1)]


def test_the_per_block_move_is_clamped_in_whole_ticks() -> None:
    """From 50001 at most 1% a block: 500.01 ticks, so 500 (prices stay integers)."""
    up = [(10, encode_vote({0: 60000}))]
    (row,) = aggregate(up, 10, [50001], [10_000])
    assert row == (50501, 50001, 10) and type(row[0]) is int
    down = [(10, encode_vote({0: 40000}))]
    (row,) = aggregate(down, 10, [50001], [10_000])
    assert row == (49501, 50001, 10) and type(row[0]) is int


def test_a_price_of_one_tick_stays_one_tick() -> None:
    assert aggregate([(10, encode_vote({0: 1}))], 10, [1], [100_000]) == [(1, 1, 10)]
