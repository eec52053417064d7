"""Moving collateral: transfers between accounts, withdrawals, the faucet.

- **Transfer** (:class:`~appchaind.exchange.txs.Transfer`): ``amount`` micro-units of the
  sender's free collateral (net collateral minus initial margin, funding settled first) to
  ``recipient``, whose account is opened if it has none.
- **Withdraw** (:class:`~appchaind.exchange.txs.Withdraw`): ``amount`` micro-units of free
  collateral leave the chain (counted in the clearing house's ``withdrawn``).
- **Faucet** (:class:`~appchaind.exchange.txs.Faucet`), on chains whose genesis enables it:
  mints 1 to ``faucet_max_amount`` micro-units to the sender (whose account it opens).

The clearing house keeps the conservation of quote (:mod:`margin.clearing`); these rules
only check the tx and report ``transfer``, ``withdraw`` and ``faucet`` events.
"""

from __future__ import annotations

from appchaind.abci import APPLIED
from appchaind.chain.codes import Code
from appchaind.chain.events import Event, PendingEvent
from appchaind.exchange.state import ExchangeState
from appchaind.exchange.txs import Faucet, Transfer, Withdraw
from margin import Account, ClearingError

__all__ = ["transfer", "withdraw", "faucet"]


def transfer(
    state: ExchangeState, account: Account, body: Transfer, events: list[PendingEvent]
) -> tuple[int, str]:
    try:
        state.clearing.transfer(account, body.recipient, body.amount)
    except ClearingError as exc:
        return Code.INSUFFICIENT_FREE_COLLATERAL, str(exc)
    events.append(
        Event(
            "transfer",
            {"sender": account.address, "recipient": body.recipient, "amount": body.amount},
        )
    )
    return APPLIED


def withdraw(
    state: ExchangeState, account: Account, body: Withdraw, events: list[PendingEvent]
) -> tuple[int, str]:
    try:
        state.clearing.withdraw(account, body.amount)
    except ClearingError as exc:
        return Code.INSUFFICIENT_FREE_COLLATERAL, str(exc)
    events.append(Event("withdraw", {"sender": account.address, "amount": body.amount}))
    return APPLIED


def faucet(
    state: ExchangeState, account: Account, body: Faucet, events: list[PendingEvent]
) -> tuple[int, str]:
    params = state.params
    if not params.faucet_enabled:
        return Code.FAUCET_DISABLED, "this chain has no faucet"
    if not 0 < body.amount <= params.faucet_max_amount:
        return (
            Code.INVALID_ORDER,
            f"faucet amount must be 1 to {params.faucet_max_amount} micro-units",
        )
    state.clearing.faucet(account.address, body.amount)
    events.append(Event("faucet", {"recipient": account.address, "amount": body.amount}))
    return APPLIED
