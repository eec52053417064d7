"""Margin arithmetic, the health cache, funding and the liquidation index."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from margin import (
    Account,
    ClearingHouse,
    LiquidationIndex,
    MarketState,
    NonceError,
    Position,
    fee,
    funding_tick,
    health,
    health_after,
    premium_ppm,
    requirement,
)
from margin.accounts import decode_nonces, encode_nonces
from margin.liquidation import _scaled
from margin.markets import PPM
from tests.exchange.support import genesis


def _markets():
    return [MarketState(m) for m in genesis({}).markets]


def test_rounding_goes_against_the_trader():
    assert requirement(3, 7, 1, 333_333) == 7  # 6.999999 rounds up
    assert fee(1_000_001, 500) == 501  # 500.0005 up
    assert fee(1_000_001, -100) == -100  # rebate 100.0001 down


def test_nonces_keep_the_highest_and_refuse_replays():
    account = Account(b"a" * 20, 0)
    for n in (5, 3, 9):
        account.accept_nonce(n, 3)
    with pytest.raises(NonceError):
        account.accept_nonce(9, 3)
    with pytest.raises(NonceError):
        account.accept_nonce(2, 3)
    account.accept_nonce(4, 3)
    assert account.nonces == [4, 5, 9]


def test_cached_health_after_matches_a_full_recomputation():
    markets = _markets()
    clearing = ClearingHouse(markets, 0)
    account = clearing.open_account(b"a" * 20, 10**9)
    clearing.change_position(account, 0, 7, 50_000)
    clearing.change_position(account, 1, -40, 3_000)
    predicted = clearing.health_after(account, 0, -3, 123)
    clearing.change_position(account, 0, -10, 0)
    account.balance += 123 + 0
    clearing.prices_changed()
    actual = health(account, markets)
    assert predicted.initial == actual.initial and predicted.maintenance == actual.maintenance
    assert predicted.net == actual.net


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2), st.integers(0, 2), st.integers(0, 1), st.booleans(),
            st.integers(1, 200_000), st.integers(1, 50),
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 5),
)  # fmt: skip
def test_fills_keep_the_cached_health_exact(trades, funding_moves_at):
    """settle_fill updates cached health in place; it must equal a full recomputation and
    the O(1) free-collateral check must equal health_after's, after every fill."""
    markets = _markets()
    clearing = ClearingHouse(markets, 0)
    accounts = [clearing.open_account(bytes([i]) * 20, 10**9) for i in range(3)]
    for step, (maker, taker, market_id, taker_buys, price, size) in enumerate(trades):
        if maker == taker:
            continue
        if step == funding_moves_at:
            markets[market_id].funding_index += 12_345_678
            clearing.prices_changed()
        for account in accounts:
            clearing.health(account)  # warm the cache, so the fill updates it in place
        clearing.settle_fill(
            market_id, accounts[maker], accounts[taker], taker_buys, price, size, 500
        )
        for account in accounts:
            assert clearing.health(account) == health(account, markets)
            market = markets[market_id]
            held = account.position_size(market_id)
            after = clearing.health_after(account, market_id, held + 3, -77)
            assert (
                clearing.free_collateral_after(account, market, held, held + 3, -77)
                == after.free_collateral
            )
            # ... and the cached prediction equals the slow reference, which walks every
            # position (the other market's too, held or not).
            assert after == health_after(account, markets, market_id, held + 3, -77)
            other = 1 - market_id
            reference = health_after(account, markets, other, -5, 11)
            assert clearing.health_after(account, other, -5, 11) == reference


def test_funding_settled_is_never_wrongly_true():
    """``funding_settled`` lets the app skip looking at an account's positions: it may only
    say True when every position is at its market's funding index."""
    markets = _markets()
    clearing = ClearingHouse(markets, 0)
    account = clearing.open_account(b"f" * 20, 10**9)
    clearing.change_position(account, 0, 3, 50_000)

    def at_indexes() -> bool:
        return all(
            account.positions[m].funding_index == markets[m].funding_index
            for m in account.positions
        )

    assert not clearing.funding_settled(account)  # never settled yet
    clearing.settle_funding(account)
    assert clearing.funding_settled(account) and at_indexes()
    markets[0].funding_index += 1_000_000
    clearing.prices_changed()
    assert not clearing.funding_settled(account) and not at_indexes()
    clearing.settle_funding(account)
    clearing.change_position(account, 1, -2, 3_000)  # a new position starts at the index
    assert clearing.funding_settled(account) and at_indexes()
    markets[1].funding_index += 7
    clearing.prices_changed()
    assert not clearing.funding_settled(account)


def test_change_sets_hold_each_account_once_per_generation():
    markets = _markets()
    clearing = ClearingHouse(markets, 0)
    a, b = clearing.open_account(b"a" * 20, 10**9), clearing.open_account(b"b" * 20, 10**9)
    assert list(clearing.take_touched()) == [b"a" * 20, b"b" * 20]
    clearing.settle_fill(0, a, b, True, 50_000, 2, 500)
    clearing.settle_fill(0, a, b, False, 50_000, 1, 500)
    clearing.charge_to_insurance(b, 5)
    assert list(clearing.take_touched()) == [b"b" * 20, b"a" * 20]  # taker first
    assert list(clearing.take_position_changed()) == [b"b" * 20, b"a" * 20]
    assert list(clearing.take_unindexed()) == [b"b" * 20, b"a" * 20]
    assert not clearing.touched and not clearing.unindexed and not clearing.position_changed
    clearing.charge_to_insurance(a, 5)  # a new generation: marked again
    assert list(clearing.touched) == [b"a" * 20] and list(clearing.unindexed) == [b"a" * 20]
    assert not clearing.position_changed


def test_funding_is_zero_sum_up_to_rounding_into_the_fund():
    markets = _markets()
    clearing = ClearingHouse(markets, 0)
    long, short = clearing.open_account(b"l" * 20, 10**9), clearing.open_account(b"s" * 20, 10**9)
    clearing.genesis_total += 2 * 10**9
    clearing.change_position(long, 0, 3, 50_000)
    clearing.change_position(short, 0, -3, 50_000)
    markets[0].premium_sum, markets[0].premium_samples = 700, 3
    rate, step = funding_tick(markets[0], 1_000)
    assert rate == 233 and step == 233 * 50_000 * 1000
    assert clearing.settle_funding(long) == 3 * 233 * 50  # longs pay 233 ppm of 150 quote
    assert clearing.settle_funding(short) == -3 * 233 * 50
    markets[0].premium_sum, markets[0].premium_samples = 1, 3  # a rate of 0.33 ppm -> 0
    markets[0].funding_index += 1  # an index step that does not divide evenly
    paid = clearing.settle_funding(long) + clearing.settle_funding(short)
    assert paid == 1  # long pays ceil(3e-6) = 1, short receives floor = 0: rounding to the fund
    assert clearing.conservation_gap() == 0
    assert (
        premium_ppm(50_000, 50_100, None) == 2_000 and premium_ppm(50_000, None, 49_900) == -2_000
    )


@given(
    st.lists(st.tuples(st.integers(-500, 500), st.integers(-5000, 5000)), min_size=1, max_size=30),
    st.integers(-5000, 5000),
    st.integers(-300, 300),
)
def test_the_index_finds_every_account_a_move_makes_liquidatable(books, move_btc, move_eth):
    """Completeness of the bands: after any price move, every account below maintenance is
    either among the crossed ones or was flagged at indexing time."""
    markets = _markets()
    index = LiquidationIndex(2)
    accounts = []
    flagged = set()
    for i, (btc, eth) in enumerate(books):
        account = Account(i.to_bytes(20, "big"), 0)
        if btc:
            account.positions[0] = Position(btc, 0, 0)
        if eth:
            account.positions[1] = Position(eth, 0, 0)
        account.balance = (
            -btc * 50_000 * 1000 - eth * 3000 * 1000 + (abs(btc) + abs(eth)) * 4_000_000
        )
        accounts.append(account)
        if index.update(account, markets):
            flagged.add(account.address)
    markets[0].oracle_price += move_btc
    markets[1].oracle_price += move_eth
    crossed = set(index.crossed(0, markets[0].oracle_price)) | set(
        index.crossed(1, markets[1].oracle_price)
    )
    for account in accounts:
        if health(account, markets).liquidatable:
            assert account.address in crossed or account.address in flagged


@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.integers(-500, 500), st.integers(-5000, 5000)),
        min_size=1,
        max_size=400,
    ),
    st.integers(-5000, 5000),
)
def test_the_index_stays_complete_through_repeated_updates(changes, move_btc):
    """Accounts re-evaluated many times leave stale heap entries behind (and trigger
    rebuilds): a move must still find exactly the live accounts it made liquidatable, and
    never return an account twice or one that left the index."""
    markets = _markets()
    index = LiquidationIndex(2, stale_slack=4)
    accounts = [Account(i.to_bytes(20, "big"), 0) for i in range(10)]
    flagged: set[bytes] = set()
    for which, btc, eth in changes:
        account = accounts[which]
        account.positions = {}
        if btc:
            account.positions[0] = Position(btc, 0, 0)
        if eth:
            account.positions[1] = Position(eth, 0, 0)
        account.balance = (
            -btc * 50_000 * 1000 - eth * 3000 * 1000 + (abs(btc) + abs(eth)) * 4_000_000
        )
        flagged.discard(account.address)
        if index.update(account, markets):
            flagged.add(account.address)
    indexed = {a.address for a in accounts if a.positions and a.address not in flagged}
    assert len(index) == len(indexed)
    markets[0].oracle_price += move_btc
    crossed = index.crossed(0, markets[0].oracle_price)
    assert len(crossed) == len(set(crossed)) and set(crossed) <= indexed
    for account in accounts:
        if health(account, markets).liquidatable:
            assert account.address in crossed or account.address in flagged
    assert index.crossed(0, markets[0].oracle_price) == []


@given(st.lists(st.integers(0, 60), max_size=80), st.integers(1, 8))
def test_nonce_fast_path_agrees_with_the_rule(nonces, max_recent):
    """A nonce above every kept one takes a shortcut; the outcome must be the rule's:
    refused iff already kept, or older than all kept ones once max_recent are kept."""
    account = Account(b"n" * 20, 0)
    kept: list[int] = []
    for nonce in nonces:
        refused = nonce in kept or (len(kept) >= max_recent and nonce < kept[0])
        assert (account.check_nonce(nonce, max_recent) is not None) == refused
        if refused:
            with pytest.raises(NonceError):
                account.accept_nonce(nonce, max_recent)
        else:
            account.accept_nonce(nonce, max_recent)
            kept = sorted([*kept, nonce])[-max_recent:]
        assert account.nonces == kept
        assert account.encoded_nonces == encode_nonces(kept)


@given(
    st.lists(
        st.one_of(
            st.integers(0, 300), st.integers(0, 2**64 - 1), st.integers(10**12, 10**12 + 10**6)
        ),
        max_size=60,
    ),
    st.integers(1, 12),
)
def test_encoded_nonces_follow_every_accept(nonces, max_recent):
    """The bytes an account splices as it accepts nonces (appended, inserted anywhere,
    dropped from the front; gaps of any varint size) are the reference encoding's, and
    decode back to the nonces; a record round-trips."""
    account = Account(b"n" * 20, 0)
    for nonce in nonces:
        try:
            account.accept_nonce(nonce, max_recent)
        except NonceError:
            continue
        assert account.encoded_nonces == encode_nonces(account.nonces)
        assert decode_nonces(account.encoded_nonces) == account.nonces
    restored = Account.from_record(account.address, account.record())
    assert restored.nonces == account.nonces
    assert restored.encoded_nonces == account.encoded_nonces


def test_encoded_nonces_layout_and_strict_decoding():
    first = 1_767_225_600_000
    nonces = [first, first + 1, first + 128, first + 256, first + 256 + 16_384]
    encoded = encode_nonces(nonces)
    # u64 first, then the gaps 1, 127, 128 and 2**14 as LEB128 varints
    assert encoded == first.to_bytes(8, "big") + bytes([1, 127, 0x80, 1, 0x80, 0x80, 1])
    assert encode_nonces([]) == b""
    assert decode_nonces(encoded) == nonces
    for bad in (
        b"\x00" * 7,  # truncated first nonce
        first.to_bytes(8, "big") + b"\x00",  # zero gap
        first.to_bytes(8, "big") + b"\x81\x00",  # 1 in two bytes
        first.to_bytes(8, "big") + b"\x81",  # truncated varint
        (2**64 - 1).to_bytes(8, "big") + b"\x01",  # past u64
    ):
        with pytest.raises(ValueError):
            decode_nonces(bad)
    with pytest.raises(ValueError):
        Account.from_record(b"a" * 20, [0, [], [first]])  # the old list form


def _reference_bands(account, markets):
    """The bands of margin.liquidation's docstring computed plainly: {(market, is_long):
    bound in ticks}, or None if the account is below maintenance."""
    state = health(account, markets)
    if state.net < state.maintenance:
        return None
    positions = account.positions
    excess = max(state.net - state.maintenance - len(positions), 0)
    rates = {
        m: abs(p.size) * markets[m].quantum * (PPM + markets[m].maintenance_ppm)
        for m, p in positions.items()
    }
    total_weight = sum(rate * markets[m].oracle_price for m, rate in rates.items())
    bands = {}
    for m, p in positions.items():
        price = markets[m].oracle_price
        share = excess * rates[m] * price // total_weight
        distance = share * PPM // rates[m]
        bands[(m, p.size > 0)] = price - distance if p.size > 0 else price + distance
    return bands


_INDEX_CHANGES = st.one_of(
    # re-evaluate account ``who`` with these positions (lots) and net collateral (ppm of
    # their notional; maintenance is 50,000 ppm)
    st.tuples(
        st.integers(0, 7), st.integers(-300, 300), st.integers(-3000, 3000),
        st.integers(40_000, 120_000),
    ),
    st.integers(0, 7),  # remove account ``who``
)  # fmt: skip


@given(
    st.lists(
        st.tuples(
            st.lists(_INDEX_CHANGES, max_size=12),
            st.integers(-150_000, 150_000),  # then the oracle prices move (ppm)
            st.integers(-150_000, 150_000),
        ),
        max_size=12,
    ),
    st.integers(0, 6),
)
def test_the_index_matches_a_plain_model_of_its_bands(rounds, stale_slack):
    """Blocks of updates and removals, each followed by a price move in both markets and
    the crossings: update reports exactly the accounts below maintenance, crossed returns
    exactly the indexed accounts whose band (computed plainly, at the prices of their last
    update) the price has left, and the index's count of heap entries is the heaps' real
    size throughout."""
    markets = _markets()
    index = LiquidationIndex(2, stale_slack=stale_slack)
    accounts = [Account(bytes([i]) * 20, 0) for i in range(8)]
    model: dict[bytes, dict[tuple[int, bool], int]] = {}

    def check_counts():
        assert len(index) == len(model)
        heaped = sum(map(len, index._longs)) + sum(map(len, index._shorts))
        assert index._heaped == heaped <= 2 * index._live + stale_slack

    for changes, *moves in rounds:
        for change in changes:
            if isinstance(change, int):
                index.remove(accounts[change].address)
                model.pop(accounts[change].address, None)
                check_counts()
                continue
            who, btc, eth, net_ppm = change
            account = accounts[who]
            account.positions = {}
            account.balance = 0
            for market_id, size in ((1, eth), (0, btc)):
                if size:
                    account.positions[market_id] = Position(size, 0, 0)
                    value = size * markets[market_id].oracle_price * markets[market_id].quantum
                    account.balance += abs(value) * net_ppm // PPM - value
            bands = _reference_bands(account, markets) if account.positions else {}
            assert index.update(account, markets) == (bands is None)
            model.pop(account.address, None)
            if bands:
                model[account.address] = bands
            check_counts()
        for market_id, move in enumerate(moves):
            markets[market_id].oracle_price += markets[market_id].oracle_price * move // PPM
        for market_id, market in enumerate(markets):
            price = market.oracle_price
            expected = sorted(
                address
                for address, bands in model.items()
                if bands.get((market_id, True), price) > price
                or bands.get((market_id, False), price) < price
            )
            assert index.crossed(market_id, price) == expected
            for address in expected:
                del model[address]
            check_counts()


@given(
    st.integers(-(2**100), 2**100), st.integers(-(2**70), 2**70), st.integers(1, 2**70)
)  # fmt: skip
def test_scaled_is_the_plain_product_and_floor_division(value, numerator, denominator):
    assert _scaled(value, numerator, denominator) == value * numerator // denominator


def _reference_refusal(kept, nonce, max_recent):
    if nonce in kept:
        return f"nonce {nonce} was already used by this account (replayed tx)"
    if len(kept) >= max_recent and nonce < kept[0]:
        return (
            f"nonce {nonce} is older than the account's {max_recent} most recent "
            f"nonces (smallest kept: {kept[0]}); use a fresh timestamp"
        )
    return None


@given(
    st.lists(
        st.tuples(st.integers(-6, 3), st.sampled_from([1, 1, 1, 2, 5, 127, 128, 20_000])),
        max_size=150,
    ),
    st.integers(1, 12),
)
def test_accept_nonce_follows_the_rule_for_timestamps_arriving_out_of_order(moves, max_recent):
    """Millisecond timestamps as a block delivers them (mostly fresh, some a few places
    below the newest, some replayed or too old): every accept or refusal, and its message,
    is the rule's; the kept bytes are always the reference encoding."""
    account = Account(b"n" * 20, 0)
    kept: list[int] = []
    clock = 1_767_225_600_000
    for back, step in moves:
        clock += step
        nonce = clock if back >= 0 or not kept else kept[max(len(kept) + back, 0)] - back % 3
        refusal = _reference_refusal(kept, nonce, max_recent)
        assert account.check_nonce(nonce, max_recent) == refusal
        if refusal is None:
            account.accept_nonce(nonce, max_recent)
            kept = sorted([*kept, nonce])[-max_recent:]
        else:
            with pytest.raises(NonceError) as refused:
                account.accept_nonce(nonce, max_recent)
            assert str(refused.value) == refusal
        assert account.nonces == kept
        assert account.encoded_nonces == encode_nonces(kept)
