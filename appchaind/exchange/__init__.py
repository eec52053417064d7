"""The exchange application: tx bodies, the state machine behind the ABCI++-shaped
interface (:class:`ExchangeApp`), the oracle and the state commitment."""

from appchaind import native  # noqa: F401  (first: selects the compiled build or the source)
from appchaind.exchange.app import ExchangeApp, StateError
from appchaind.exchange.results import BlockResult, Code, Event, TxResult
from appchaind.exchange.txs import (
    CancelAll,
    CancelOrder,
    Faucet,
    OrderType,
    PlaceOrder,
    ReplaceOrder,
    Transfer,
    Withdraw,
)

__all__ = [
    "ExchangeApp",
    "StateError",
    "BlockResult",
    "Code",
    "Event",
    "TxResult",
    "CancelAll",
    "CancelOrder",
    "Faucet",
    "OrderType",
    "PlaceOrder",
    "ReplaceOrder",
    "Transfer",
    "Withdraw",
]
