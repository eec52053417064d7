"""Rules of the clearing house that mutation testing (``make mutate``) found unguarded: a
balance change or a restored account is seen by the health cache even before the first price
move; the requirements of a prospective fill round up to whole micro-units like a full
recomputation; funding of every position is settled into the insurance fund; a positive maker
fee is charged rounded up; a position costs what was paid for what is held; deleveraging
ranks by profit × leverage; liquidation bands follow each market's maintenance rate and an
account with no excess is crossed by one tick."""

from __future__ import annotations

from margin import (
    Account,
    ClearingHouse,
    LiquidationIndex,
    MarketState,
    Position,
    deleveraging_ranking,
    health,
)
from margin.health import funding_owed
from margin.markets import PPM
from tests.exchange.support import genesis
from tests.margin.test_margin import _reference_bands


def _markets() -> list[MarketState]:
    return [MarketState(m) for m in genesis({}).markets]


def test_health_follows_balance_changes_before_any_price_move() -> None:
    markets = _markets()
    clearing = ClearingHouse(markets, 0)
    account = clearing.open_account(b"a" * 20, 10**9)
    assert clearing.health(account).net == 10**9  # cached in the first price epoch
    clearing.withdraw(account, 10)
    assert clearing.health(account).net == 10**9 - 10
    clearing.charge_to_insurance(account, 5)
    assert clearing.health(account).net == 10**9 - 15


def test_a_restored_account_gets_its_health_computed_not_read_from_the_cache() -> None:
    markets = _markets()
    clearing = ClearingHouse(markets, 0)
    restored = Account(b"r" * 20, 10**9)
    restored.positions[0] = Position(3, markets[0].funding_index, 3 * 50_000)
    restored.cached_epoch = 1  # what a record's account would carry if it were never reset
    clearing.restore_account(restored)
    assert clearing.health(restored) == health(restored, markets)
    assert list(clearing.holders[0]) == [b"r" * 20]


def test_requirements_after_a_fill_round_up_like_a_full_recomputation() -> None:
    markets = _markets()
    market = markets[0]
    market.initial_ppm, market.maintenance_ppm = 333_333, 166_667  # no size divides evenly
    clearing = ClearingHouse(markets, 0)
    account = clearing.open_account(b"a" * 20, 10**12)
    for size in (1, 2, 7, -5):
        predicted = clearing.health_after(account, 0, size, 0)
        assert type(predicted.initial) is int and type(predicted.maintenance) is int
        notional = abs(size) * market.oracle_price * market.quantum
        assert predicted.initial == -(-notional * 333_333 // PPM)
        clearing.change_position(account, 0, size - account.position_size(0), 0)
        actual = clearing.health(account)
        assert (predicted.initial, predicted.maintenance) == (actual.initial, actual.maintenance)


def test_funding_of_every_position_is_settled_into_the_insurance_fund() -> None:
    markets = _markets()
    clearing = ClearingHouse(markets, 0)
    account = clearing.open_account(b"f" * 20, 10**9)
    clearing.change_position(account, 0, 3, 50_000)
    clearing.change_position(account, 1, 4, 3_000)
    clearing.charge_to_insurance(account, 1_000)  # the fund holds something already
    markets[0].funding_index += 2_000_000
    markets[1].funding_index += 1_000_000
    clearing.prices_changed()
    owed = [funding_owed(account.positions[m], markets[m]) for m in (0, 1)]
    assert all(o > 0 for o in owed)
    fund, balance = clearing.insurance_fund, account.balance
    paid = clearing.settle_funding(account)
    assert paid == sum(owed)
    assert clearing.insurance_fund == fund + paid and account.balance == balance - paid


def test_a_positive_maker_fee_is_charged_rounded_up() -> None:
    markets = _markets()
    markets[0].maker_fee_ppm = 100
    clearing = ClearingHouse(markets, 0)
    maker = clearing.open_account(b"m" * 20, 10**12)
    taker = clearing.open_account(b"t" * 20, 10**12)
    notional = 50_001 * 7 * markets[0].quantum
    maker_fee, _ = clearing.settle_fill(0, maker, taker, True, 50_001, 7, 500)
    assert maker_fee == -(-notional * 100 // PPM) and notional * 100 % PPM
    assert type(maker_fee) is int


def test_a_position_costs_what_was_paid_for_what_is_still_held() -> None:
    """Adding to a position adds the notional; reducing it keeps the cost of what is left,
    pro rata, truncated toward zero; flipping it starts over at the flip's price."""
    markets = _markets()
    clearing = ClearingHouse(markets, 0)
    account = clearing.open_account(b"c" * 20, 10**12)
    q = markets[0].quantum

    def cost() -> int:
        return account.positions[0].cost

    clearing.change_position(account, 0, 1, 100)
    clearing.change_position(account, 0, 1, 101)  # one lot at a time: added, not scaled
    clearing.change_position(account, 0, 1, 101)
    assert cost() == (100 + 2 * 101) * q
    clearing.change_position(account, 0, -1, 120)  # 3 -> 2: two thirds of 302,000
    assert cost() == 302 * q * 2 // 3 == 201_333 and type(cost()) is int
    clearing.change_position(account, 0, -4, 130)  # 2 -> -2: flipped
    assert cost() == -2 * 130 * q
    clearing.change_position(account, 0, -1, 131)
    assert cost() == -(2 * 130 + 131) * q
    clearing.change_position(account, 0, 1, 90)  # -3 -> -2: two thirds of -391,000
    assert cost() == -(391 * q * 2 // 3) == -260_666 and type(cost()) is int


def test_a_negative_taker_fee_is_a_rebate_rounded_down() -> None:
    markets = _markets()
    clearing = ClearingHouse(markets, 0)
    maker = clearing.open_account(b"m" * 20, 10**12)
    taker = clearing.open_account(b"t" * 20, 10**12)
    notional = 50_001 * 7 * markets[0].quantum
    _, taker_fee = clearing.settle_fill(0, maker, taker, False, 50_001, 7, -300)
    assert taker_fee == -(notional * 300 // PPM) == -105_002  # 105,002.1 down
    assert type(taker_fee) is int


def test_deleveraging_ranks_by_profit_times_leverage_then_the_bankrupt_by_profit() -> None:
    """Longs of market 0 at 50,000 (a lot is worth 50,000,000 micro-units): by profit ×
    notional ÷ net collateral, highest first (floored; ties by address), then those at or
    below zero collateral by profit. Shorts and the excluded account are not ranked."""
    markets = _markets()
    lot = markets[0].oracle_price * markets[0].quantum
    holdings = {  # address: (size, cost, balance) -> net, profit, score
        b"k" * 20: (2, 80_000_000, 10**8),  # 2e8, 2e7, 1e7
        b"b" * 20: (1, 45_000_000, 10**7),  # 6e7, 5e6, 4,166,666.67
        b"g" * 20: (1, 45_000_000, 10**7 - 1),  # 6e7 - 1, 5e6, 4,166,666.74: the same floor
        b"i" * 20: (1, 50_000_000, -lot + 1),  # 1, 0, 0
        b"d" * 20: (1, 55_000_000, 10**8),  # 1.5e8, -5e6, -1,666,667
        b"c" * 20: (3, 120_000_000, -(10**9)),  # -8.5e8, 3e7
        b"f" * 20: (1, 30_000_000, -(10**9)),  # -9.5e8, 2e7
        b"h" * 20: (1, 50_000_000, -lot),  # exactly 0, 0
        b"e" * 20: (-1, -50_000_000, 10**8),  # short
        b"x" * 20: (5, 0, 10**9),  # excluded
    }
    accounts = {}
    for address, (size, cost, balance) in holdings.items():
        account = accounts[address] = Account(address, balance)
        account.positions[0] = Position(size, markets[0].funding_index, cost)
    assert health(accounts[b"h" * 20], markets).net == 0
    ranking = deleveraging_ranking(accounts, dict.fromkeys(holdings), markets, 0, True, b"x" * 20)
    assert [address[:1] for address in ranking] == [b"k", b"b", b"g", b"i", b"d", b"c", b"f", b"h"]


def _crossed_just_beyond_each_band(account: Account, markets: list[MarketState]) -> None:
    """Each band of ``account`` (as tests.margin.test_margin's plain model computes it):
    the price at the bound is inside, one tick beyond it is crossed."""
    bands = _reference_bands(account, markets)
    assert bands
    for (market_id, is_long), bound in bands.items():
        index = LiquidationIndex(len(markets))
        assert index.update(account, markets) is False
        assert index.crossed(market_id, bound) == []
        beyond = bound - 1 if is_long else bound + 1
        assert index.crossed(market_id, beyond) == [account.address], (market_id, is_long)


def test_liquidation_bands_follow_each_markets_own_maintenance_rate() -> None:
    """A long of one lot and a short in markets of different maintenance rates share the
    account's excess collateral in proportion to loss per tick × price."""
    markets = _markets()
    markets[1].maintenance_ppm = 100_000
    account = Account(b"z" * 20, 0)
    account.positions[0] = Position(1, markets[0].funding_index, 0)
    account.positions[1] = Position(-40, markets[1].funding_index, 0)
    account.balance = 60_000_000 - health(account, markets).net  # net collateral 60 quote
    state = health(account, markets)
    assert state.net - state.maintenance > 10**7
    _crossed_just_beyond_each_band(account, markets)


def test_an_account_exactly_at_maintenance_is_crossed_by_one_tick() -> None:
    markets = _markets()
    account = Account(b"y" * 20, 0)
    account.positions[0] = Position(1, markets[0].funding_index, 0)
    account.positions[1] = Position(-40, markets[1].funding_index, 0)
    state = health(account, markets)
    account.balance = state.maintenance - state.net  # net == maintenance: no excess
    _crossed_just_beyond_each_band(account, markets)


def test_free_collateral_after_a_sell_matches_health_after() -> None:
    markets = _markets()
    clearing = ClearingHouse(markets, 0)
    account = clearing.open_account(b"s" * 20, 10**9)
    clearing.change_position(account, 0, 3, 50_000)
    clearing.prices_changed()
    for new_size in (2, 0, -4):  # reduce, close, flip: the move is a sale
        for cash_delta in (0, 1_234_567):
            expected = clearing.health_after(account, 0, new_size, cash_delta).free_collateral
            after = clearing.free_collateral_after(account, markets[0], 3, new_size, cash_delta)
            assert after == expected and type(after) is int
