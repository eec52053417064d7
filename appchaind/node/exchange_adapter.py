"""The exchange application behind the node's :class:`~appchaind.node.app.Application` interface.

Oracle prices: ``extend_vote`` reports this validator's prices from its configured
source (``[oracle] source``: the simulated shared walk for local networks, or the
operator's file); ``finalize_block`` passes the previous height's extended commit
(each signer's power and extension) so every validator computes the same
stake-weighted median.

Signatures the node already verified (on its worker threads, once) are not
verified again here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from appchaind.consensus.validators import ValidatorSet
from appchaind.exchange import oracle
from appchaind.exchange.app import ExchangeApp
from appchaind.node.app import Application, FinalizeResult, TxOutcome
from appchaind.store import Store, WriteBatch
from appchaind.types import COMMIT_BLOCK, Block, Tx, Vote
from config.genesis import Genesis
from config.node_config import NodeConfig

__all__ = ["ExchangeNodeApp", "default_app_factory", "price_source_from_config"]


class _FreshFileSource:
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
    o = config.oracle
    if o.source == "file":
        path = Path(o.file_path)
        return _FreshFileSource(
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


def _event(kind: str, attributes: dict[str, object]) -> tuple[str, dict[str, object]]:
    return (kind, {k: (v.hex() if isinstance(v, bytes) else v) for k, v in attributes.items()})


class ExchangeNodeApp:
    """Adapts :class:`ExchangeApp` to what the node calls."""

    def __init__(
        self, store: Store, genesis: Genesis, price_source: oracle.PriceSource | None
    ) -> None:
        self.exchange = ExchangeApp(genesis, store, price_source=price_source)
        self.genesis = genesis

    def last_height(self) -> int:
        return self.exchange.height

    def app_hash(self) -> bytes:
        return self.exchange.app_hash

    def _trust(self, verified: frozenset[bytes]) -> None:
        self.exchange.trust_signatures(verified)

    def check_tx(self, tx: Tx, raw: bytes) -> tuple[int, str]:
        result = self.exchange.check_tx(tx, verified=True)  # the mempool verified it
        return int(result.code), result.log

    def prepare_proposal(
        self, height: int, time_ms: int, txs: list[bytes], decoded: list[Tx] | None = None
    ) -> list[bytes]:
        return self.exchange.prepare_proposal(txs, decoded=decoded)

    def process_proposal(self, block: Block, verified: frozenset[bytes]) -> bool:
        self._trust(verified)
        accepted, _reason = self.exchange.process_proposal(block.txs)
        return accepted

    def extend_vote(self, height: int, round: int, block_hash: bytes) -> bytes:
        return self.exchange.extend_vote(height)

    def verify_vote_extension(self, vote: Vote) -> bool:
        return self.exchange.verify_vote_extension(vote.extension, vote.height)

    def finalize_block(
        self,
        block: Block,
        verified: frozenset[bytes],
        last_validators: ValidatorSet | None,
        decoded: Sequence[Tx | None] | None = None,
    ) -> FinalizeResult:
        self._trust(verified)
        votes: list[tuple[int, bytes]] = []
        total_power = None
        commit = block.last_commit
        if commit is not None and last_validators is not None:
            total_power = last_validators.total_power
            for index, sig in enumerate(commit.signatures):
                if sig.flag == COMMIT_BLOCK and index < len(last_validators):
                    votes.append((last_validators.validators[index].power, sig.extension))
        header = block.header
        # Txs the node already decoded and verified skip decoding here (the common case:
        # a block's txs were gossiped into this node's mempool before the block came); the
        # others go in as their bytes, decoded and checked by the exchange.
        txs: Sequence[bytes | Tx] = (
            block.txs
            if decoded is None
            else [raw if tx is None else tx for tx, raw in zip(decoded, block.txs, strict=True)]
        )
        result = self.exchange.finalize_block(
            header.height,
            header.time_ms,
            txs,
            prev_block_hash=header.last_block_id,
            oracle_votes=votes or None,
            total_power=total_power,
            signatures_verified=True,
        )
        outcomes = tuple(
            TxOutcome(int(r.code), r.log, tuple(_event(e.kind, e.attributes) for e in r.events))
            for r in result.tx_results
        )
        events = tuple(_event(e.kind, e.attributes) for e in result.events)
        return FinalizeResult(result.app_hash, outcomes, (), events)

    def commit(self, batch: WriteBatch) -> None:
        self.exchange.commit(batch)


def default_app_factory(
    store: Store, genesis: Genesis, config: NodeConfig, validator_address: bytes
) -> Application:
    """The exchange application, with this validator's oracle price source."""
    source = price_source_from_config(config, genesis, validator_address)
    return ExchangeNodeApp(store, genesis, source)
