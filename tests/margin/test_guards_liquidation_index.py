"""The liquidation index's rules that ``make mutate`` (campaign 4) found unguarded:

- each band is the documented one where the floors matter: a share of the excess floored
  to whole micro-units (a float share can last one more tick when a tick's loss is not a
  whole number of micro-units), shares of a sum of weights that divide evenly, and
  distances far beyond a float's 53 bits (prices go up to 2**62 ticks);
- an account re-evaluated without positions leaves the index;
- the heaps keep stale entries up to ``stale_slack`` beyond the live ones, then are cut
  down to the live ones (the heaps stay bounded: the live count is kept exactly through
  updates and removals).

Markets of tests/exchange/support.py: BTC-PERP at 50000 ticks, ETH-PERP at 3000, one
tick-lot is 1000 micro-units, maintenance margin 5%."""

from __future__ import annotations

import pytest

from margin import Account, LiquidationIndex, MarketState, Position, health
from tests.exchange.support import genesis
from tests.margin.test_margin import _reference_bands
from tests.margin.test_mutants import _crossed_just_beyond_each_band


def _markets() -> list[MarketState]:
    return [MarketState(m) for m in genesis({}).markets]


def _account(markets: list[MarketState], sizes: tuple[int, ...], excess: int) -> Account:
    """An account holding ``sizes`` lots (market 0, 1, ...) whose excess over maintenance,
    less the micro-unit per position the index keeps for rounding, is ``excess``."""
    account = Account(b"x" * 20, 0)
    for market_id, size in enumerate(sizes):
        if size:
            account.positions[market_id] = Position(size, markets[market_id].funding_index, 0)
    base = health(account, markets)
    account.balance = base.maintenance - base.net + len(account.positions) + excess
    return account


def _exact_and_safe(account: Account, markets: list[MarketState]) -> None:
    """Each band is the plain model's (the bound inside, a tick beyond crossed), and at
    its bound the account is not below maintenance."""
    _crossed_just_beyond_each_band(account, markets)
    bands = _reference_bands(account, markets)
    assert bands is not None
    for (market_id, _), bound in bands.items():
        oracle = markets[market_id].oracle_price
        markets[market_id].oracle_price = bound
        assert not health(account, markets).liquidatable, (market_id, bound)
        markets[market_id].oracle_price = oracle


@pytest.mark.parametrize(
    ("sizes", "maintenance_ppm", "excess", "bounds"),
    [
        # weights 5:12 split 3570 = 17 × 210 exactly: shares of 1050 and 2520; a tick of
        # one BTC lot costs 1050, so the long's bound is one tick down
        ((1, -40), 50_000, 3570, {(0, True): 49999, (1, False): 3000}),
        # a tick of BTC costs 1050.001 micro-units: the long's share, 1050.29 floored to
        # 1050, lasts no tick (1050.29 would last one)
        ((1, -40), 50_001, 3571, {(0, True): 50000, (1, False): 3000}),
    ],
)
def test_a_share_is_the_floor_of_the_excess_split_by_weight(
    sizes: tuple[int, int], maintenance_ppm: int, excess: int, bounds: dict
) -> None:
    markets = _markets()
    for market in markets:
        market.maintenance_ppm = maintenance_ppm
    account = _account(markets, sizes, excess)
    assert _reference_bands(account, markets) == bounds
    _exact_and_safe(account, markets)


@pytest.mark.parametrize(("size", "oracle"), [(1, 2**45), (-1, 50000)])
def test_a_band_far_beyond_a_floats_precision_is_exact(size: int, oracle: int) -> None:
    """One lot whose excess lasts 2**44 ticks less 1/1000 of a tick (a tick costs 1050
    micro-units): the distance is 2**44 - 1 ticks, as a float the quotient rounds up to
    2**44. (A long's bound needs an oracle price above the distance.)"""
    markets = _markets()
    markets[0].oracle_price = oracle
    lasting = 2**44 * 1000 - 1  # micro-units of the share, at PPM / (PPM + 5%)
    excess = -(-lasting * 21 // 20)
    assert excess * 20 // 21 == lasting
    account = _account(markets, (size,), excess)
    distance = 2**44 - 1
    assert _reference_bands(account, markets) == {(0, size > 0): oracle - size * distance}
    _exact_and_safe(account, markets)


def test_an_account_re_evaluated_without_positions_leaves_the_index() -> None:
    markets = _markets()
    index = LiquidationIndex(len(markets))
    account = _account(markets, (1, -40), 10**6)
    assert index.update(account, markets) is False and len(index) == 1
    account.positions = {}
    assert index.update(account, markets) is False
    assert len(index) == 0
    assert index.crossed(0, 1) == [] and index.crossed(1, 10**9) == []


def test_stale_entries_are_kept_up_to_the_slack_beyond_the_live_ones() -> None:
    """Updates and removals of three accounts (one or two positions each) in an index
    with a slack of 3: after each, the heaps hold what the rule says: every entry pushed
    since the last cut, until they exceed twice the live entries plus the slack; then
    only the live ones."""
    slack = 3
    markets = _markets()
    index = LiquidationIndex(len(markets), stale_slack=slack)
    accounts = {
        name: _account(markets, sizes, 10**7)
        for name, sizes in ((b"a", (1, 0)), (b"b", (-2, 40)), (b"c", (0, 3)))
    }
    for name, account in accounts.items():
        account.address = name * 20
    live: dict[bytes, int] = {}
    heaped = cuts = 0
    steps = "a a a a b a a c b b -b a a -a c c c c c c -c a b b b b b b -b -a"
    for step in steps.split():
        account = accounts[step[-1:].encode()]
        if step.startswith("-"):
            index.remove(account.address)
            live.pop(account.address, None)
        else:
            assert index.update(account, markets) is False
            live[account.address] = len(account.positions)
            heaped += len(account.positions)
        if heaped > 2 * sum(live.values()) + slack:
            heaped = sum(live.values())
            cuts += 1
        held = sum(map(len, index._longs)) + sum(map(len, index._shorts))
        assert (step, held) == (step, heaped)
    assert cuts >= 3, cuts
