"""What a node needs to start the exchange: the oracle price source its config names, and
the application factory.

Oracle prices: ``extend_vote`` reports this validator's prices from its configured source
(``[oracle] source``: the simulated shared walk for local networks, or the operator's
file); ``finalize_block`` takes the previous height's extended commit (each signer's power
and extension) from the block, so every validator computes the same stake-weighted median.
This module and the sources in :mod:`~appchaind.exchange.oracle` are the only exchange
code that reads the wall clock or a file outside the store.
"""

from __future__ import annotations

import time
from pathlib import Path

from appchaind.abci import Application
from appchaind.exchange import oracle
from appchaind.exchange.app import ExchangeApp
from appchaind.store import Store
from config.genesis import Genesis
from config.node_config import NodeConfig

__all__ = ["FreshFileSource", "exchange_app_factory", "price_source_from_config"]


class FreshFileSource:
    """The operator's price file, ignored when it was last written more than
    ``max_staleness_ms`` ago (a stalled feed reports nothing rather than old prices)."""

    def __init__(self, path: Path, genesis: Genesis, max_staleness_ms: int) -> None:
        self._path = path
        self._source = oracle.FilePriceSource(path, genesis.markets)
        self._max_staleness_s = max_staleness_ms / 1000

    def prices(self) -> dict[int, int]:
        try:
            age = time.time() - self._path.stat().st_mtime
        except OSError:
            return {}
        return {} if age > self._max_staleness_s else self._source.prices()


def price_source_from_config(
    config: NodeConfig, genesis: Genesis, validator_address: bytes
) -> oracle.PriceSource:
    """This validator's price source, as ``[oracle]`` in its config says."""
    o = config.oracle
    if o.source == "file":
        path = Path(o.file_path)
        return FreshFileSource(
            path if path.is_absolute() else config.home / path, genesis, o.max_staleness_ms
        )
    return oracle.SimulatedFeed(
        genesis.markets,
        seed=genesis.hash(),
        validator_seed=validator_address,
        start_ms=genesis.genesis_time_ms,
        step_ppm=o.simulated_step_ppm,
        noise_ppm=o.simulated_noise_ppm,
    )


def exchange_app_factory(
    store: Store, genesis: Genesis, config: NodeConfig, validator_address: bytes
) -> Application:
    """The node's application: the exchange, with this validator's oracle price source
    (an :data:`~appchaind.abci.AppFactory`)."""
    source = price_source_from_config(config, genesis, validator_address)
    return ExchangeApp(genesis, store, price_source=source)
