"""The funding step, and funding settlement as the exchange reports it.

Funding is a per-market cumulative index (:mod:`margin.funding` has the arithmetic):

- **Every block**, each market samples its premium: how far the book's impact prices
  (the average prices of taking ``impact_notional`` micro-units from each side, a bid
  rounded down and an ask up) stand from the oracle price, in ppm.
- **Every** ``funding_interval_blocks`` (at heights that are multiples of it), the funding
  tick: the mean premium (truncated toward zero, clamped to ``max_funding_rate_ppm``) is the
  rate and moves the index (reported as a ``funding`` event); a move invalidates every
  cached health and makes every holder of the market's positions due for re-evaluation by
  the liquidator.
- **Lazily**, an account's positions are settled against the index when the account is
  touched (a tx of its own, a trigger, a liquidation); what it pays goes to the insurance
  fund, what it receives comes from it (``funding_payment`` event, micro-units).
"""

from __future__ import annotations

from appchaind.chain.events import Event, PendingEvent
from appchaind.exchange.state import ExchangeState
from margin import Account, funding_tick, premium_ppm, sample_premium
from orderbook import Side

__all__ = ["settle_funding", "funding_step"]


def settle_funding(state: ExchangeState, account: Account, events: list[PendingEvent]) -> None:
    """Settle every position of ``account`` at the current funding indexes."""
    paid = state.clearing.settle_funding(account)
    if paid:
        events.append(Event("funding_payment", {"account": account.address, "amount": paid}))


def funding_step(state: ExchangeState, events: list[PendingEvent]) -> None:
    """Each market's premium sample and, at a funding interval, its funding tick."""
    clearing = state.clearing
    for market in state.markets:
        book = state.books[market.market_id]
        params = market.params
        target = -(-params.impact_notional // market.quantum)  # tick-lots
        bid = book.impact_for_notional(Side.SELL, target)
        ask = book.impact_for_notional(Side.BUY, target)
        impact_bid = None if bid is None else bid.notional // bid.size
        impact_ask = None if ask is None else -(-ask.notional // ask.size)
        sample_premium(market, premium_ppm(market.oracle_price, impact_bid, impact_ask))
        if state.height % params.funding_interval_blocks:
            continue
        rate, step = funding_tick(market, params.max_funding_rate_ppm)
        events.append(
            Event(
                "funding",
                {
                    "market": market.market_id,
                    "rate_ppm": rate,
                    "index": market.funding_index,
                    "index_step": step,
                },
            )
        )
        if step:
            clearing.prices_changed()
            accounts = clearing.accounts
            for address in clearing.holders[market.market_id]:
                clearing.mark_unindexed(accounts[address])
