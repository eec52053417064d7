"""``margin.health.health_after``, the slow reference the clearing house's O(1) prediction
of a prospective fill is checked against (tests/margin/test_margin.py): its requirements
are whole micro-units rounded up, per position, like :func:`margin.health.health`'s, for
the positions it keeps, the one it resizes and one it opens.

Found unguarded by ``make mutate`` (docs/mutation/margin__health.md): the markets of the
property test require 10% and 5% of notionals that are multiples of 1000 micro-units, so
a true division gave the same numbers (as floats, equal to the integers)."""

from __future__ import annotations

from margin import ClearingHouse, MarketState, health, health_after
from tests.exchange.support import genesis

BTC, ETH = 0, 1


def _uneven_markets() -> list[MarketState]:
    """BTC and ETH with rates that divide no notional here: 33.3333% and 16.6667% (BTC),
    12.3457% and 9.8765% (ETH)."""
    markets = [MarketState(m) for m in genesis({}).markets]
    markets[BTC].initial_ppm, markets[BTC].maintenance_ppm = 333_333, 166_667
    markets[ETH].initial_ppm, markets[ETH].maintenance_ppm = 123_457, 98_765
    return markets


def _exact(value: object) -> int:
    assert type(value) is int, value
    return value


def test_the_reference_rounds_each_requirement_up_to_a_whole_micro_unit() -> None:
    """An account long 7 BTC lots (notional 7 x 50000 x 1000 = 350,000,000) and short 40
    ETH lots (120,000,000). Resizing BTC to -3 lots: BTC requires ceil(150,000,000 x
    0.333333) = 49,999,950 initial and ceil(150,000,000 x 0.166667) = 25,000,050
    maintenance, ETH ceil(120,000,000 x 0.123457) = 14,814,840 and 11,851,800: what the
    cached prediction says, and what a full recomputation finds once the 10 lots are sold
    at the oracle price (500,000,000 in) and 123 more micro-units come in."""
    markets = _uneven_markets()
    clearing = ClearingHouse(markets, 0)
    account = clearing.open_account(b"a" * 20, 10**9)
    clearing.change_position(account, BTC, 7, 50_000)
    clearing.change_position(account, ETH, -40, 3_000)
    cash = 10 * 50_000 * 1000 + 123
    reference = health_after(account, markets, BTC, -3, cash)
    assert [_exact(v) for v in reference] == list(clearing.health_after(account, BTC, -3, cash))
    assert reference.initial == 49_999_950 + 14_814_840
    assert reference.maintenance == 25_000_050 + 11_851_800
    clearing.change_position(account, BTC, -10, 50_000)
    account.balance += 123
    assert reference == health(account, markets)


def test_the_reference_rounds_up_the_requirements_of_a_position_it_opens() -> None:
    """The same account with no BTC position: opening 1 BTC lot adds ceil(50,000,000 x
    0.333333) = 16,666,650 initial and ceil(50,000,000 x 0.166667) = 8,333,350
    maintenance; 9 lots ceil(450,000,000 x 0.333333) = 149,999,850 and
    ceil(450,000,000 x 0.166667) = 75,000,150."""
    markets = _uneven_markets()
    clearing = ClearingHouse(markets, 0)
    account = clearing.open_account(b"b" * 20, 10**9)
    clearing.change_position(account, ETH, -40, 3_000)
    eth_initial, eth_maintenance = 14_814_840, 11_851_800
    one = health_after(account, markets, BTC, 1, 0)
    assert (_exact(one.initial), _exact(one.maintenance)) == (
        eth_initial + 16_666_650,
        eth_maintenance + 8_333_350,
    )
    nine = health_after(account, markets, BTC, 9, -5)
    assert [_exact(v) for v in nine] == list(clearing.health_after(account, BTC, 9, -5))
    assert (nine.initial, nine.maintenance) == (
        eth_initial + 149_999_850,
        eth_maintenance + 75_000_150,
    )
