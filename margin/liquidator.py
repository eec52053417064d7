"""The liquidation process: what happens at the end of every block to the accounts below
maintenance margin.

1. **Choosing.** Every account whose state changed in the block is re-evaluated exactly,
   and so is every account whose price band the oracle left (:class:`LiquidationIndex`);
   those below maintenance margin are the candidates. They are taken in address order
   starting at a point seeded by the previous block's hash and the height, at most
   ``max_liquidations_per_block`` of them; the others stay marked for the next block, so a
   cascade is spread over blocks instead of emptying the book in one.
2. **Closing.** A chosen account's funding is settled and its open orders are cancelled.
   Then, position by position (ascending market) while it is still below maintenance and
   within ``max_liquidation_notional_per_account`` (micro-units at the oracle price):

   a. an IOC order against the book no worse than the position's bankruptcy price; each
      fill at or better than it pays the liquidation fee to the insurance fund, out of its
      surplus over that price (never more than the surplus);
   b. if the book could not absorb it and the fund has money, an IOC order at prices worse
      than the bankruptcy price, down to what the fund can pay for (and no further than
      the price band), the fund paying each fill's shortfall;
   c. what is left is **deleveraged**: taken over at the bankruptcy price by the opposite
      side's most profitable, most leveraged positions (:func:`deleveraging_ranking`).
3. **Insurance cover.** A closed-out account left with a negative balance is topped up
   from the insurance fund, as far as the fund goes.

The order books belong to the exchange: it cancels the orders and runs the IOC orders for
the liquidator (:class:`Exchange`), and reports their order and fill events; the
liquidator reports ``liquidation``, ``liquidation_fee``, ``insurance_cover`` and ``adl``.

Units: prices in ticks, sizes in lots, collateral, fees and budgets in micro-units of
quote. Deterministic: the choice depends only on the state, the height and the previous
block hash.
"""

from __future__ import annotations

from hashlib import sha256
from typing import Protocol

from appchaind.chain.events import Event, PendingEvent
from margin.accounts import Account
from margin.clearing import ClearingHouse
from margin.health import bankruptcy_price, fee
from margin.liquidation import LiquidationIndex, deleveraging_ranking
from margin.markets import protection_price
from orderbook.types import MAX_PRICE, Fill, Side

__all__ = ["Exchange", "Liquidator"]


class Exchange(Protocol):
    """The exchange around the margin engine, as the liquidation process uses it
    (:class:`appchaind.exchange.ExchangeApp`): it owns the order books and records what
    happens to orders."""

    def settle_funding(self, account: Account, events: list[PendingEvent]) -> None:
        """Settle the account's funding, reporting the payment."""

    def cancel_orders(self, account: Account, events: list[PendingEvent]) -> None:
        """Cancel every open order of the account, in every market."""

    def liquidation_order(
        self,
        account: Account,
        market_id: int,
        side: int,
        limit: int,
        size: int,
        events: list[PendingEvent],
    ) -> list[Fill]:
        """Put an IOC order of the account for ``size`` lots, no worse than ``limit``
        ticks, through the book of ``market_id``, and settle its fills without a taker
        fee (reported as liquidation fills). Returns the fills."""


class Liquidator:
    """The liquidation process over one clearing house (the index of its accounts' price
    bands is :attr:`index`)."""

    __slots__ = ("clearing", "markets", "index", "max_accounts", "max_notional")

    def __init__(
        self,
        clearing: ClearingHouse,
        max_accounts_per_block: int,
        max_notional_per_account: int,
    ) -> None:
        self.clearing = clearing
        self.markets = clearing.markets
        self.index = LiquidationIndex(len(clearing.markets))
        self.max_accounts = max_accounts_per_block
        self.max_notional = max_notional_per_account

    def run(
        self,
        exchange: Exchange,
        height: int,
        prev_block_hash: bytes,
        events: list[PendingEvent],
    ) -> None:
        """The end-of-block step at ``height``: choose the accounts to liquidate (rule 1)
        and liquidate them."""
        candidates = self.candidates()
        if not candidates:
            return
        clearing = self.clearing
        accounts = clearing.accounts
        ordered = sorted(candidates)
        seed = sha256(b"liquidation" + prev_block_hash + height.to_bytes(8, "big")).digest()
        start = int.from_bytes(seed[:8], "big") % len(ordered)
        ordered = ordered[start:] + ordered[:start]
        cap = self.max_accounts
        for address in ordered[:cap]:
            self.liquidate(exchange, accounts[address], events)
        for address in ordered[cap:]:
            clearing.mark_unindexed(accounts[address])

    def candidates(self) -> dict[bytes, None]:
        """The accounts below maintenance margin: those changed since the last call
        (``ClearingHouse.unindexed``) or whose band the oracle left, evaluated exactly;
        the others are (re)indexed."""
        clearing = self.clearing
        accounts = clearing.accounts
        index = self.index
        markets = self.markets
        candidates: dict[bytes, None] = {}
        for address in clearing.take_unindexed():
            account = accounts.get(address)
            if account is None or not account.positions:
                index.remove(address)
            elif index.update(account, markets, clearing.health_state(account)):
                candidates[address] = None
        for market in markets:
            for address in index.crossed(market.market_id, market.oracle_price):
                account = accounts[address]
                if index.update(account, markets, clearing.health_state(account)):
                    candidates[address] = None
        return candidates

    def liquidate(self, exchange: Exchange, account: Account, events: list[PendingEvent]) -> None:
        """Close an account below maintenance margin (rules 2 and 3)."""
        clearing = self.clearing
        markets = self.markets
        address = account.address
        exchange.settle_funding(account, events)
        exchange.cancel_orders(account, events)
        budget = self.max_notional
        for market_id in account.markets():
            if budget <= 0 or not clearing.health(account).liquidatable:
                break
            market = markets[market_id]
            held = account.positions[market_id].size
            lots_cap = max(1, budget // (market.oracle_price * market.quantum))
            close = min(abs(held), lots_cap)
            budget -= close * market.oracle_price * market.quantum
            signed = close if held > 0 else -close
            side = Side.SELL if held > 0 else Side.BUY
            bankrupt_at = bankruptcy_price(account, markets, market_id, signed)
            limit = min(bankrupt_at, MAX_PRICE - 1)
            filled = self._close(
                exchange, account, market_id, side, limit, close, bankrupt_at, "book", events
            )
            remaining = close - filled
            fund = clearing.insurance_fund
            if remaining and fund > 0:
                room = fund // (remaining * market.quantum)
                if side == Side.SELL:
                    limit = max(bankrupt_at - room, protection_price(market, Side.SELL))
                    usable = limit < bankrupt_at
                else:
                    limit = min(bankrupt_at + room, protection_price(market, Side.BUY))
                    usable = limit > bankrupt_at
                if usable:
                    remaining -= self._close(
                        exchange, account, market_id, side, limit, remaining, bankrupt_at,
                        "insurance", events,
                    )  # fmt: skip
            if remaining:
                signed = remaining if held > 0 else -remaining
                self._deleverage(account, market_id, signed, events)
        if not account.positions and account.balance < 0 and clearing.insurance_fund > 0:
            cover = min(-account.balance, clearing.insurance_fund)
            clearing.charge_to_insurance(account, -cover)
            events.append(Event("insurance_cover", {"account": address, "amount": cover}))

    def _close(
        self,
        exchange: Exchange,
        account: Account,
        market_id: int,
        side: int,
        limit: int,
        size: int,
        bankrupt_at: int,
        step: str,
        events: list[PendingEvent],
    ) -> int:
        """A liquidation order through the book (step ``book`` or ``insurance``); returns
        lots filled. Fills at or better than the bankruptcy price pay the liquidation fee
        out of their surplus; fills worse than it are topped up by the insurance fund."""
        clearing = self.clearing
        market = self.markets[market_id]
        fills = exchange.liquidation_order(account, market_id, side, max(1, limit), size, events)
        filled = 0
        fee_total = 0
        cover_total = 0
        for fill in fills:
            price, lots = fill[5], fill[6]
            filled += lots
            edge = (price - bankrupt_at) if side == Side.SELL else (bankrupt_at - price)
            if edge >= 0:
                surplus = edge * lots * market.quantum
                fee_total += min(
                    fee(price * lots * market.quantum, market.liquidation_fee_ppm), surplus
                )
            else:
                cover_total += -edge * lots * market.quantum
        if fee_total:
            clearing.charge_to_insurance(account, fee_total)
            events.append(
                Event("liquidation_fee", {"account": account.address, "amount": fee_total})
            )
        if cover_total:
            clearing.charge_to_insurance(account, -cover_total)
            events.append(
                Event("insurance_cover", {"account": account.address, "amount": cover_total})
            )
        events.append(
            Event(
                "liquidation",
                {
                    "account": account.address, "market": market_id, "size": size,
                    "bankruptcy_price": bankrupt_at, "step": step, "filled": filled,
                    "remaining": size - filled,
                },
            )
        )  # fmt: skip
        return filled

    def _deleverage(
        self, account: Account, market_id: int, signed: int, events: list[PendingEvent]
    ) -> None:
        """Close ``signed`` lots of the account's position in ``market_id`` against the
        opposite side's positions, best ranked first, at the bankruptcy price."""
        clearing = self.clearing
        bankrupt_at = bankruptcy_price(account, self.markets, market_id, signed)
        liquidated_long = signed > 0
        ranking = deleveraging_ranking(
            clearing.accounts, clearing.holders[market_id], self.markets, market_id,
            long_side=not liquidated_long, exclude=account.address,
        )  # fmt: skip
        remaining = abs(signed)
        events.append(
            Event(
                "liquidation",
                {
                    "account": account.address, "market": market_id, "size": remaining,
                    "bankruptcy_price": bankrupt_at, "step": "adl", "filled": remaining,
                    "remaining": 0,
                },
            )
        )  # fmt: skip
        for address in ranking:
            counterparty = clearing.accounts[address]
            take = min(remaining, abs(counterparty.positions[market_id].size))
            if liquidated_long:
                clearing.transfer_at_price(market_id, account, counterparty, bankrupt_at, take)
            else:
                clearing.transfer_at_price(market_id, counterparty, account, bankrupt_at, take)
            events.append(
                Event(
                    "adl",
                    {
                        "market": market_id, "account": account.address, "counterparty": address,
                        "price": bankrupt_at, "size": take,
                    },
                )
            )  # fmt: skip
            remaining -= take
            if not remaining:
                break
