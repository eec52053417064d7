"""The clearing house: every account, every market's margin state, and the chain's funds.

Quote conservation (exact, in micro-units) is the invariant every method keeps:

    Σ account balances + insurance_fund + fee_pool + withdrawn + builder_bonds + staked
        = genesis total + genesis_stake + faucet_total

Money only moves between those terms. ``builder_bonds`` is the collateral block builders
have bonded (including what is unbonding): it leaves a builder's balance when bonded and
comes back when released (:mod:`appchaind.exchange.builders` keeps each builder's part).
``staked`` is the validators' stake, bonded or unbonding, likewise
(:mod:`appchaind.exchange.staking` keeps each validator's and delegation's part);
``genesis_stake`` is the genesis validators' self-bonds, which the genesis created in
the staking pool as it created the genesis accounts' balances; stake slashed from a
validator goes to the insurance fund (:mod:`appchaind.exchange.accountability`).
``fee_pool`` holds the trading fees and the proposers' shares of builders' bids until
they are paid to the validators and their delegators as rewards
(:mod:`appchaind.exchange.rewards`); nothing else takes from it (a fill's net fee is
never negative: a liquidation's fill, whose taker pays no fee, pays the maker no
rebate). The
insurance fund is also the clearing account of
funding: a settling account pays its funding into it (rounded up) or is paid from it
(rounded down), so funding is zero-sum up to rounding and the rounding stays in the fund.

Every mutation marks the account in ``touched`` (its record must be rewritten and
rehashed) and ``unindexed`` (its liquidation bounds must be recomputed); a trade also in
``position_changed``. These per-block sets are dicts of addresses (insertion ordered, so
iterating them is deterministic); an account remembers the generation of each set it was
last added to, so marking an account that is already in a set costs no dict operation.
Each set is taken (and its generation advanced) once per block.

The clearing house also caches each account's health at the current prices on the
account itself (``cached_*`` fields, valid while ``cached_epoch`` is the current epoch):
a fill updates it in place, any other change to the account drops it, and a price or
funding index move drops them all by advancing the epoch.
"""

from __future__ import annotations

from typing import Final

from margin.accounts import Account, Position
from margin.health import Health, funding_owed, health
from margin.markets import PPM, MarketState
from margin.statistics import ClearingStatistics

__all__ = ["ClearingHouse", "ClearingError"]

#: ceil(x / PPM) == (x + _CEIL) // PPM for every integer x.
_CEIL: Final = PPM - 1


class ClearingError(Exception):
    """A transfer the clearing house refuses; the message tells the trader why."""


class ClearingHouse:
    """Accounts, markets and funds. Pure: integers and bytes only."""

    __slots__ = (
        "accounts",
        "markets",
        "holders",
        "insurance_fund",
        "fee_pool",
        "builder_bonds",
        "staked",
        "genesis_stake",
        "withdrawn",
        "faucet_total",
        "genesis_total",
        "touched",
        "unindexed",
        "position_changed",
        "_epoch",
        "_touched_gen",
        "_unindexed_gen",
        "_position_gen",
    )

    def __init__(self, markets: list[MarketState], insurance_fund: int) -> None:
        self.accounts: dict[bytes, Account] = {}
        self.markets = markets
        #: Per market: addresses with a position there (for deleveraging), order irrelevant.
        self.holders: list[dict[bytes, None]] = [{} for _ in markets]
        self.insurance_fund = insurance_fund
        self.fee_pool = 0
        #: Micro-units bonded by block builders (bonded or unbonding), out of their balances.
        self.builder_bonds = 0
        #: Micro-units of validators' stake (bonded or unbonding), out of their balances.
        self.staked = 0
        #: The part of ``staked`` the genesis created (its validators' self-bonds).
        self.genesis_stake = 0
        self.withdrawn = 0
        self.faucet_total = 0
        self.genesis_total = insurance_fund
        self.touched: dict[bytes, None] = {}
        self.unindexed: dict[bytes, None] = {}
        #: Accounts whose position changed since the app last looked (reduce-only upkeep).
        self.position_changed: dict[bytes, None] = {}
        #: An account's cached health is valid while its ``cached_epoch`` equals this.
        self._epoch = 1
        #: The generations of the three sets (an account's ``*_mark`` equal to one of them
        #: means it is in that set; 0 is no generation).
        self._touched_gen = 1
        self._unindexed_gen = 1
        self._position_gen = 1

    # ------------------------------------------------------------------ accounts

    def statistics(self) -> ClearingStatistics:
        """Accounts, funds and each market's open interest (the sum of long positions)."""
        accounts = self.accounts
        interest = []
        for market_id, holders in enumerate(self.holders):
            longs = 0
            for address in holders:
                size = accounts[address].position_size(market_id)
                if size > 0:
                    longs += size
            interest.append(longs)
        return ClearingStatistics(
            len(accounts), self.insurance_fund, self.fee_pool, tuple(interest)
        )

    def open_account(self, address: bytes, balance: int) -> Account:
        account = self.accounts.get(address)
        if account is None:
            account = self.accounts[address] = Account(address, 0)
        account.balance += balance
        self.touch(account)
        account.cached_epoch = 0
        return account

    def restore_account(self, account: Account) -> None:
        self.accounts[account.address] = account
        account.cached_epoch = 0
        for market_id in account.positions:
            self.holders[market_id][account.address] = None
        self.mark_unindexed(account)

    # ------------------------------------------------------------------ change sets

    def touch(self, account: Account) -> None:
        """Put the account in ``touched``: its record is rewritten at the end of the block."""
        if account.touched_mark != self._touched_gen:
            account.touched_mark = self._touched_gen
            self.touched[account.address] = None

    def mark_unindexed(self, account: Account) -> None:
        """Put the account in ``unindexed``: its liquidation bounds are recomputed."""
        if account.unindexed_mark != self._unindexed_gen:
            account.unindexed_mark = self._unindexed_gen
            self.unindexed[account.address] = None

    def _changed(self, account: Account) -> None:
        """The balance or a position moved other than by a fill: touched, unindexed, and
        its cached health dropped."""
        self.touch(account)
        self.mark_unindexed(account)
        account.cached_epoch = 0

    def take_touched(self) -> dict[bytes, None]:
        touched = self.touched
        self.touched = {}
        self._touched_gen += 1
        return touched

    def take_unindexed(self) -> dict[bytes, None]:
        unindexed = self.unindexed
        self.unindexed = {}
        self._unindexed_gen += 1
        return unindexed

    def take_position_changed(self) -> dict[bytes, None]:
        changed = self.position_changed
        self.position_changed = {}
        self._position_gen += 1
        return changed

    # ------------------------------------------------------------------ health

    def health(self, account: Account) -> Health:
        """The account's Health at the current prices (cached until it or a price changes)."""
        return Health(*self.health_state(account))

    def health_state(self, account: Account) -> tuple[int, int, int]:
        """:meth:`health` as a plain ``(net, initial, maintenance)`` tuple."""
        if account.cached_epoch != self._epoch:
            self._cache_health(account)
        return account.cached_net, account.cached_initial, account.cached_maintenance

    def _cache_health(self, account: Account) -> None:
        net, initial, maintenance = health(account, self.markets)
        account.cached_net = net
        account.cached_initial = initial
        account.cached_maintenance = maintenance
        account.cached_epoch = self._epoch

    def prices_changed(self) -> None:
        """Call after oracle prices or funding indexes move: forget every cached Health (and
        every account's "funding settled" mark, see :meth:`funding_settled`)."""
        self._epoch += 1

    def health_after(
        self, account: Account, market_id: int, new_size: int, cash_delta: int
    ) -> Health:
        """Health as if the position in ``market_id`` were ``new_size`` lots and the balance
        moved by ``cash_delta`` micro-units (a prospective fill), in O(1) from the cache."""
        net, initial, maintenance = self.health(account)
        market = self.markets[market_id]
        position = account.positions.get(market_id)
        held = 0 if position is None else position.size
        price_quantum = market.oracle_price * market.quantum
        old_notional = abs(held) * price_quantum
        new_notional = abs(new_size) * price_quantum
        return Health(
            net + cash_delta + (new_size - held) * price_quantum,
            initial
            - (-(-old_notional * market.initial_ppm // PPM))
            + (-(-new_notional * market.initial_ppm // PPM)),
            maintenance
            - (-(-old_notional * market.maintenance_ppm // PPM))
            + (-(-new_notional * market.maintenance_ppm // PPM)),
        )

    def free_collateral_after(
        self, account: Account, market: MarketState, held: int, new_size: int, cash_delta: int
    ) -> int:
        """``health_after(...).free_collateral`` (net collateral minus initial requirement,
        micro-units; negative = below initial margin) for the position in ``market`` moving
        from ``held`` (its current size) to ``new_size`` lots and the balance by
        ``cash_delta``: the order path's margin check, without building a Health."""
        if account.cached_epoch != self._epoch:
            self._cache_health(account)
        price_quantum = market.oracle_price * market.quantum
        initial_ppm = market.initial_ppm
        # Products of non-negative factors, ceilings as (x + PPM - 1) // PPM: the same
        # values as the signed forms, but compiled code multiplies them natively.
        move = new_size - held
        value = move * price_quantum if move >= 0 else -(-move * price_quantum)
        return (
            account.cached_net + cash_delta + value - account.cached_initial
            - (abs(new_size) * price_quantum * initial_ppm + _CEIL) // PPM
            + (abs(held) * price_quantum * initial_ppm + _CEIL) // PPM
        )  # fmt: skip

    def conservation_gap(self) -> int:
        """Left side minus right side of the conservation equation (0 when it holds)."""
        balances = sum(a.balance for a in self.accounts.values())
        return (
            balances + self.insurance_fund + self.fee_pool + self.withdrawn
            + self.builder_bonds + self.staked - self.genesis_total - self.genesis_stake
            - self.faucet_total
        )  # fmt: skip

    # ------------------------------------------------------------------ funding

    def funding_settled(self, account: Account) -> bool:
        """True if every position of the account is settled at the current funding
        indexes, known without looking at them: the account was settled since the last
        :meth:`prices_changed` (positions opened since then start at the current index).
        False means: maybe not."""
        return account.funding_mark == self._epoch

    def settle_funding(self, account: Account) -> int:
        """Settle every position's funding against the insurance fund. Returns the
        micro-units the account paid (negative: received)."""
        account.funding_mark = self._epoch
        paid = 0
        markets = self.markets
        for market_id, position in account.positions.items():
            market = markets[market_id]
            if position.funding_index != market.funding_index:
                paid += funding_owed(position, market)
                position.funding_index = market.funding_index
        if paid:
            account.balance -= paid
            self.insurance_fund += paid
            self._changed(account)
        return paid

    # ------------------------------------------------------------------ trades

    def change_position(self, account: Account, market_id: int, delta: int, price: int) -> None:
        """Move the position by ``delta`` lots traded at ``price`` ticks and pay for it from
        the balance. Funding must be settled first (the new position starts at the index)."""
        self._trade(account, self.markets[market_id], delta, price, 0)
        account.cached_epoch = 0

    def settle_fill(
        self,
        market_id: int,
        maker: Account,
        taker: Account,
        taker_buys: bool,
        price: int,
        size: int,
        taker_fee_ppm: int,
        maker_rebate: bool = True,
    ) -> tuple[int, int]:
        """Exchange ``size`` lots at ``price`` ticks between maker and taker and charge the
        fees (the maker's at the market's maker rate, the taker's at ``taker_fee_ppm``) into
        the fee pool. Returns (maker fee, taker fee) in micro-units.

        ``maker_rebate`` False (a liquidation's fill, whose taker pays no fee): a negative
        maker rate counts as 0. The net fee is then never negative (the genesis keeps every
        rebate rate within the taker rate, and a rebate rounds down where a charge rounds
        up), so the fee pool, the stakers' rewards, never shrinks but by what they collect."""
        market = self.markets[market_id]
        notional = price * size * market.quantum
        # fee(notional, ppm), inline: charges round up, rebates down
        maker_ppm = market.maker_fee_ppm
        if maker_ppm < 0 and not maker_rebate:
            maker_ppm = 0
        maker_fee = (
            (notional * maker_ppm + _CEIL) // PPM
            if maker_ppm >= 0
            else -(notional * -maker_ppm // PPM)
        )
        taker_fee = (
            (notional * taker_fee_ppm + _CEIL) // PPM
            if taker_fee_ppm >= 0
            else -(notional * -taker_fee_ppm // PPM)
        )
        funding_index = market.funding_index
        position = maker.positions.get(market_id)
        if position is not None and position.funding_index != funding_index:
            self.settle_funding(maker)
        position = taker.positions.get(market_id)
        if position is not None and position.funding_index != funding_index:
            self.settle_funding(taker)
        delta = size if taker_buys else -size
        self._trade(taker, market, delta, price, taker_fee)
        self._trade(maker, market, -delta, price, maker_fee)
        self.fee_pool += maker_fee + taker_fee
        return maker_fee, taker_fee

    def _trade(
        self, account: Account, market: MarketState, delta: int, price: int, fee_paid: int
    ) -> None:
        """One side of a trade: the position moves by ``delta`` lots bought at ``price``
        ticks, the balance pays for them and ``fee_paid``. A cached health is updated in
        place (funding is settled first, so the net moves by the trade's mark-to-oracle
        value minus the fee, and each requirement by its change in this market)."""
        market_id = market.market_id
        address = account.address
        quantum = market.quantum
        notional = delta * price * quantum if delta >= 0 else -(-delta * price * quantum)
        account.balance -= notional + fee_paid
        positions = account.positions
        position = positions.get(market_id)
        if position is None:
            held = 0
            new_size = delta
            positions[market_id] = Position(delta, market.funding_index, notional)
            self.holders[market_id][address] = None
        else:
            held = position.size
            new_size = held + delta
            if not new_size:
                del positions[market_id]
                del self.holders[market_id][address]
            elif (held > 0) == (delta > 0):
                position.cost += notional
            elif (held > 0) == (new_size > 0):
                # Reduced: the cost of what is left, pro rata (truncated toward zero).
                kept = abs(new_size)
                cost = position.cost
                position.cost = (
                    cost * kept // abs(held) if cost >= 0 else -(-cost * kept // abs(held))
                )
            else:
                position.cost = new_size * price * quantum
            position.size = new_size
        if account.position_mark != self._position_gen:
            account.position_mark = self._position_gen
            self.position_changed[address] = None
        self.touch(account)
        self.mark_unindexed(account)
        if account.cached_epoch == self._epoch:
            oracle_price = market.oracle_price
            price_quantum = oracle_price * quantum
            old_notional = (held if held > 0 else -held) * price_quantum
            new_notional = (new_size if new_size > 0 else -new_size) * price_quantum
            # delta × (oracle_price - price) × quantum, multiplied as non-negative factors
            edge = oracle_price - price
            gain = abs(delta) * abs(edge) * quantum
            account.cached_net += (gain if (delta >= 0) == (edge >= 0) else -gain) - fee_paid
            initial_ppm = market.initial_ppm
            maintenance_ppm = market.maintenance_ppm
            account.cached_initial += (new_notional * initial_ppm + _CEIL) // PPM - (
                old_notional * initial_ppm + _CEIL
            ) // PPM
            account.cached_maintenance += (new_notional * maintenance_ppm + _CEIL) // PPM - (
                old_notional * maintenance_ppm + _CEIL
            ) // PPM

    def transfer_at_price(
        self, market_id: int, seller: Account, buyer: Account, price: int, size: int
    ) -> None:
        """Move ``size`` lots from seller to buyer at ``price`` ticks without fees
        (deleveraging at the bankruptcy price)."""
        self.settle_funding(seller)
        self.settle_funding(buyer)
        self.change_position(buyer, market_id, size, price)
        self.change_position(seller, market_id, -size, price)

    # ------------------------------------------------------------------ funds

    def charge_to_insurance(self, account: Account, amount: int) -> None:
        """Move ``amount`` micro-units from the account to the insurance fund (liquidation
        fee; negative: the fund covers a shortfall)."""
        account.balance -= amount
        self.insurance_fund += amount
        self._changed(account)

    def withdraw(self, account: Account, amount: int) -> None:
        """Send ``amount`` off the chain, from free collateral only."""
        self.settle_funding(account)
        free = self.health(account).free_collateral
        if amount > free:
            raise ClearingError(
                f"withdrawal of {amount} micro-units exceeds the free collateral of {max(free, 0)}"
            )
        account.balance -= amount
        self.withdrawn += amount
        self._changed(account)

    def bond(self, account: Account, amount: int) -> None:
        """Move ``amount`` micro-units of free collateral into the builders' bonds."""
        self.settle_funding(account)
        free = self.health(account).free_collateral
        if amount > free:
            raise ClearingError(
                f"a bond of {amount} micro-units exceeds the free collateral of {max(free, 0)}"
            )
        account.balance -= amount
        self.builder_bonds += amount
        self._changed(account)

    def release_bond(self, address: bytes, amount: int) -> Account:
        """Give ``amount`` micro-units of the builders' bonds back to ``address``'s balance
        (its account is opened if it has none)."""
        if not 0 <= amount <= self.builder_bonds:
            raise ValueError(f"cannot release {amount} of {self.builder_bonds} bonded")
        self.builder_bonds -= amount
        account = self.open_account(address, amount)
        self.mark_unindexed(account)
        return account

    def stake(self, account: Account, amount: int) -> None:
        """Move ``amount`` micro-units of free collateral into the validators' stake."""
        self.settle_funding(account)
        free = self.health(account).free_collateral
        if amount > free:
            raise ClearingError(
                f"a stake of {amount} micro-units exceeds the free collateral of {max(free, 0)}"
            )
        account.balance -= amount
        self.staked += amount
        self._changed(account)

    def release_stake(self, address: bytes, amount: int) -> Account:
        """Give ``amount`` micro-units of the stake back to ``address``'s balance (its
        account is opened if it has none): an undelegation whose unbonding is over."""
        if not 0 <= amount <= self.staked:
            raise ValueError(f"cannot release {amount} of {self.staked} staked")
        self.staked -= amount
        account = self.open_account(address, amount)
        self.mark_unindexed(account)
        return account

    def slash_stake(self, amount: int) -> None:
        """Move ``amount`` micro-units of the stake, slashed from a validator that broke a
        rule of consensus, into the insurance fund."""
        if not 0 <= amount <= self.staked:
            raise ValueError(f"cannot slash {amount} of {self.staked} staked")
        self.staked -= amount
        self.insurance_fund += amount

    def pay_from_bonds(self, value: int, proposer_ppm: int) -> int:
        """Pay a winning bid of ``value`` micro-units out of the builders' bonds: the
        proposer's share (``proposer_ppm``, rounded down) to the fee pool, where it is
        the proposing validator's reward (the exchange credits it), the rest to the
        insurance fund. Returns the proposer's share."""
        if not 0 <= value <= self.builder_bonds:
            raise ValueError(f"cannot pay {value} out of {self.builder_bonds} bonded")
        share = value * proposer_ppm // 1_000_000
        self.builder_bonds -= value
        self.insurance_fund += value - share
        self.fee_pool += share
        return share

    def pay_rewards(self, address: bytes, amount: int) -> Account:
        """Pay ``amount`` micro-units of staking rewards out of the fee pool to
        ``address``'s balance (its account opened if it has none)."""
        if not 0 <= amount <= self.fee_pool:
            raise ValueError(f"cannot pay {amount} of rewards out of a fee pool of {self.fee_pool}")
        self.fee_pool -= amount
        account = self.open_account(address, amount)
        self.mark_unindexed(account)
        return account

    def transfer(self, sender: Account, recipient: bytes, amount: int) -> Account:
        """Move ``amount`` micro-units of free collateral to ``recipient`` (created if new)."""
        self.settle_funding(sender)
        free = self.health(sender).free_collateral
        if amount > free:
            raise ClearingError(
                f"transfer of {amount} micro-units exceeds the free collateral of {max(free, 0)}"
            )
        sender.balance -= amount
        self._changed(sender)
        target = self.open_account(recipient, amount)
        self.mark_unindexed(target)
        return target

    def faucet(self, address: bytes, amount: int) -> Account:
        """Mint ``amount`` micro-units to ``address`` (dev chains only; the app checks)."""
        self.faucet_total += amount
        account = self.open_account(address, amount)
        self.mark_unindexed(account)
        return account
