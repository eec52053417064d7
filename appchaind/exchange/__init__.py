"""The exchange application: the state machine behind the ABCI++-shaped interface
(:class:`appchaind.abci.Application`).

``app``           :class:`ExchangeApp`: the interface, the block's steps, the in-block
                  ordering rule
``state``         what the exchange replicates, and what it derives from it
``envelope``      signatures, chain id, expiry, nonces, the sender's account
``orders``        placing an order: checks, margin check, matching, settling fills
``cancels``       cancel, cancel all, replace
``order_upkeep``  the end of a block: expiry, conditional triggers, reduce-only upkeep
``transfers``     transfer, withdraw, faucet
``prices``        the oracle step and the price bands
``funding``       the funding step and funding settlement
``storage``       genesis, loading and saving, the commitment update
``commitment``    the keys and the app hash scheme
``oracle``        vote extensions: encoding, checking, aggregation, price sources
``startup``       what a node starts the exchange with: its price source, the app factory
``txs``           the tx bodies
``statistics``    the figures metrics read

Tx and block results are the application interface's (:mod:`appchaind.abci`), result
codes :mod:`appchaind.chain.codes`, events :mod:`appchaind.chain.events`.

The liquidation process is the margin engine's (:mod:`margin.liquidator`).
"""

from appchaind import native  # noqa: F401  (first: selects the compiled build or the source)
from appchaind.exchange.app import ExchangeApp, StateError
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
    "CancelAll",
    "CancelOrder",
    "Faucet",
    "OrderType",
    "PlaceOrder",
    "ReplaceOrder",
    "Transfer",
    "Withdraw",
]
