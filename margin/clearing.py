"""The clearing house: every account, every market's margin state, and the chain's funds.

Quote conservation (exact, in micro-units) is the invariant every method keeps:

    Σ account balances + insurance_fund + fee_pool + withdrawn = genesis total + faucet_total

Money only moves between those terms. The insurance fund is also the clearing account of
funding: a settling account pays its funding into it (rounded up) or is paid from it
(rounded down), so funding is zero-sum up to rounding and the rounding stays in the fund.

Every mutation marks the account in ``touched`` (its record must be rewritten and
rehashed) and ``unindexed`` (its liquidation bounds must be recomputed).
"""

from __future__ import annotations

from typing import Final

from margin.accounts import Account, Position
from margin.health import Health, funding_owed, health
from margin.markets import PPM, MarketState

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
        "withdrawn",
        "faucet_total",
        "genesis_total",
        "touched",
        "unindexed",
        "position_changed",
        "_health",
    )

    def __init__(self, markets: list[MarketState], insurance_fund: int) -> None:
        self.accounts: dict[bytes, Account] = {}
        self.markets = markets
        #: Per market: addresses with a position there (for deleveraging), order irrelevant.
        self.holders: list[dict[bytes, None]] = [{} for _ in markets]
        self.insurance_fund = insurance_fund
        self.fee_pool = 0
        self.withdrawn = 0
        self.faucet_total = 0
        self.genesis_total = insurance_fund
        self.touched: dict[bytes, None] = {}
        self.unindexed: dict[bytes, None] = {}
        #: Accounts whose position changed since the app last looked (reduce-only upkeep).
        self.position_changed: dict[bytes, None] = {}
        #: address -> [net, initial, maintenance] (a Health's fields) at the current prices
        #: and funding indexes. A fill updates its accounts' entries in place (exactly, O(1));
        #: any other change drops the account's entry, and a price or index move drops all.
        self._health: dict[bytes, list[int]] = {}

    # ------------------------------------------------------------------ accounts

    def open_account(self, address: bytes, balance: int) -> Account:
        account = self.accounts.get(address)
        if account is None:
            account = self.accounts[address] = Account(address, 0)
        account.balance += balance
        self.touched[address] = None
        self._health.pop(address, None)
        return account

    def restore_account(self, account: Account) -> None:
        self.accounts[account.address] = account
        self._health.pop(account.address, None)
        for market_id in account.positions:
            self.holders[market_id][account.address] = None
        self.unindexed[account.address] = None

    def health(self, account: Account) -> Health:
        """The account's Health at the current prices (cached until it or a price changes)."""
        net, initial, maintenance = self.health_state(account)
        return Health(net, initial, maintenance)

    def health_state(self, account: Account) -> list[int]:
        """The cached ``[net, initial, maintenance]`` behind :meth:`health` (read only: the
        clearing house updates it in place)."""
        state = self._health.get(account.address)
        if state is None:
            net, initial, maintenance = health(account, self.markets)
            state = self._health[account.address] = [net, initial, maintenance]
        return state

    def prices_changed(self) -> None:
        """Call after oracle prices or funding indexes move: forget every cached Health."""
        self._health.clear()

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
        state = self._health.get(account.address)
        if state is None:
            state = self.health_state(account)
        price_quantum = market.oracle_price * market.quantum
        initial_ppm = market.initial_ppm
        # Products of non-negative factors, ceilings as (x + PPM - 1) // PPM: the same
        # values as the signed forms, but compiled code multiplies them natively.
        move = new_size - held
        value = move * price_quantum if move >= 0 else -(-move * price_quantum)
        return (
            state[0] + cash_delta + value - state[1]
            - (abs(new_size) * price_quantum * initial_ppm + _CEIL) // PPM
            + (abs(held) * price_quantum * initial_ppm + _CEIL) // PPM
        )  # fmt: skip

    def conservation_gap(self) -> int:
        """Left side minus right side of the conservation equation (0 when it holds)."""
        balances = sum(a.balance for a in self.accounts.values())
        return (
            balances + self.insurance_fund + self.fee_pool + self.withdrawn
            - self.genesis_total - self.faucet_total
        )  # fmt: skip

    # ------------------------------------------------------------------ funding

    def settle_funding(self, account: Account) -> int:
        """Settle every position's funding against the insurance fund. Returns the
        micro-units the account paid (negative: received)."""
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
            self.touched[account.address] = None
            self._health.pop(account.address, None)
            self.unindexed[account.address] = None
        return paid

    # ------------------------------------------------------------------ trades

    def change_position(self, account: Account, market_id: int, delta: int, price: int) -> None:
        """Move the position by ``delta`` lots traded at ``price`` ticks and pay for it from
        the balance. Funding must be settled first (the new position starts at the index)."""
        self._trade(account, self.markets[market_id], delta, price, 0)
        self._health.pop(account.address, None)

    def settle_fill(
        self,
        market_id: int,
        maker: Account,
        taker: Account,
        taker_buys: bool,
        price: int,
        size: int,
        taker_fee_ppm: int,
    ) -> tuple[int, int]:
        """Exchange ``size`` lots at ``price`` ticks between maker and taker and charge the
        fees (the maker's at the market's maker rate, the taker's at ``taker_fee_ppm``) into
        the fee pool. Returns (maker fee, taker fee) in micro-units."""
        market = self.markets[market_id]
        notional = price * size * market.quantum
        # fee(notional, ppm), inline: charges round up, rebates down
        maker_ppm = market.maker_fee_ppm
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
        self.position_changed[address] = None
        self.touched[address] = None
        self.unindexed[address] = None
        state = self._health.get(address)
        if state is not None:
            oracle_price = market.oracle_price
            price_quantum = oracle_price * quantum
            old_notional = (held if held > 0 else -held) * price_quantum
            new_notional = (new_size if new_size > 0 else -new_size) * price_quantum
            # delta × (oracle_price - price) × quantum, multiplied as non-negative factors
            edge = oracle_price - price
            gain = abs(delta) * abs(edge) * quantum
            state[0] += (gain if (delta >= 0) == (edge >= 0) else -gain) - fee_paid
            initial_ppm = market.initial_ppm
            maintenance_ppm = market.maintenance_ppm
            state[1] += (new_notional * initial_ppm + _CEIL) // PPM - (
                old_notional * initial_ppm + _CEIL
            ) // PPM
            state[2] += (new_notional * maintenance_ppm + _CEIL) // PPM - (
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
        self.touched[account.address] = None
        self._health.pop(account.address, None)
        self.unindexed[account.address] = None

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
        self.touched[account.address] = None
        self._health.pop(account.address, None)
        self.unindexed[account.address] = None

    def transfer(self, sender: Account, recipient: bytes, amount: int) -> Account:
        """Move ``amount`` micro-units of free collateral to ``recipient`` (created if new)."""
        self.settle_funding(sender)
        free = self.health(sender).free_collateral
        if amount > free:
            raise ClearingError(
                f"transfer of {amount} micro-units exceeds the free collateral of {max(free, 0)}"
            )
        sender.balance -= amount
        self.touched[sender.address] = None
        self._health.pop(sender.address, None)
        self.unindexed[sender.address] = None
        target = self.open_account(recipient, amount)
        self.unindexed[recipient] = None
        return target

    def faucet(self, address: bytes, amount: int) -> Account:
        """Mint ``amount`` micro-units to ``address`` (dev chains only; the app checks)."""
        self.faucet_total += amount
        account = self.open_account(address, amount)
        self.unindexed[address] = None
        return account

    def take_touched(self) -> dict[bytes, None]:
        touched = self.touched
        self.touched = {}
        return touched
