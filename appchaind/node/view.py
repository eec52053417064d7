"""What the servers facing outside may see and do of a node: one narrow view.

The RPC and HTTP servers (:mod:`appchaind.rpc.server`, :mod:`appchaind.http.routes`)
depend on :class:`NodeView`, never on :class:`~appchaind.node.node.Node` itself, and the
node imports neither server: :mod:`appchaind.node.service` wires them together. Besides
reads (status, blocks, committed txs, the exchange's state), the one action a server may
take is to submit a tx to the mempool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import msgpack

from appchaind.chain import codec
from appchaind.chain.types import MAX_BLOCK_TXS, TxBytes

if TYPE_CHECKING:
    from appchaind.chain.types import Block
    from appchaind.consensus.validators import ValidatorSet
    from appchaind.exchange.app import ExchangeApp
    from appchaind.node.mempool import AddResult
    from appchaind.telemetry.metrics import NodeMetrics
    from config.genesis import Genesis
    from config.node_config import NodeConfig

__all__ = [
    "NodeStatus",
    "NodeView",
    "TxIndexEntry",
    "TxIndexEntryV1",
    "ForcedTxs",
    "encode_tx_index_entry",
    "encode_forced_txs",
    "decode_forced_txs",
]


@codec.message
class TxIndexEntry:
    """Where a committed tx is, and its result (code 0 = success). ``events``: the tx's
    application events (fills, order status), msgpack, see appchaind.rpc.views."""

    height: codec.U64
    index: codec.U32
    code: codec.U32
    log: Annotated[str, codec.Str(1000)]
    events: Annotated[bytes, codec.Bytes(0, 64 * 1024)] = b""  # issue 6: fills for `query tx`


#: The largest events field of an index entry (TxIndexEntry.events).
_MAX_INDEX_EVENTS = 64 * 1024


def encode_tx_index_entry(height: int, index: int, code: int, log: str, events: bytes) -> bytes:
    """``codec.encode(TxIndexEntry(...))``, the same bytes, without the schema walk for the
    common entry (written for every tx of every block: the walk cost as much as executing
    the tx); anything unusual (a long or non-ASCII log, say) takes the checked path."""
    if (
        len(log) <= 1000
        and log.isascii()
        and len(events) <= _MAX_INDEX_EVENTS
        and 0 <= height < 1 << 64
        and 0 <= index < 1 << 32
        and 0 <= code < 1 << 32
    ):
        data: bytes = msgpack.packb([height, index, code, log, events], use_bin_type=True)
        return data
    return codec.encode(TxIndexEntry(height, index, code, log, events))


@codec.message
class TxIndexEntryV1:
    """Index entries written before ``events`` existed (read-only)."""

    height: codec.U64
    index: codec.U32
    code: codec.U32
    log: Annotated[str, codec.Str(1000)]


@codec.message
class ForcedTxs:
    """The txs of inclusion lists that the application executed after a block's own (none
    carried them), in execution order: stored per height for queries."""

    txs: Annotated[tuple[TxBytes, ...], codec.MaxItems(MAX_BLOCK_TXS)]


def encode_forced_txs(txs: Sequence[bytes]) -> bytes:
    return codec.encode(ForcedTxs(tuple(txs)))


def decode_forced_txs(raw: bytes) -> list[bytes]:
    return list(codec.decode(ForcedTxs, raw).txs)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What /status reports. ``height`` is the latest committed block."""

    chain_id: str
    node_id: str
    moniker: str
    height: int
    block_hash: bytes
    app_hash: bytes
    block_time_ms: int
    catching_up: bool
    peers: int
    consensus_height: int
    consensus_round: int
    consensus_step: int
    validator_address: bytes | None
    voting_power: int
    #: Txs this node puts in a round-0 proposal at most now (its block budget, which
    #: shrinks under load); a builder's block of more is refused (over_budget).
    proposal_txs: int = 0

    def as_json(self) -> dict[str, Any]:
        """The JSON of ``GET /status`` and of the RPC ``status`` method."""
        return {
            "chain_id": self.chain_id,
            "node_id": self.node_id,
            "moniker": self.moniker,
            "height": self.height,
            "block_hash": self.block_hash.hex(),
            "app_hash": self.app_hash.hex(),
            "block_time_ms": self.block_time_ms,
            "catching_up": self.catching_up,
            "peers": self.peers,
            "consensus": {
                "height": self.consensus_height,
                "round": self.consensus_round,
                "step": self.consensus_step,
            },
            "validator": None
            if self.validator_address is None
            else {"address": self.validator_address.hex(), "voting_power": self.voting_power},
            "proposal_txs": self.proposal_txs,
        }


class NodeView(Protocol):
    """The read-only view of a running node that its outward servers use."""

    @property
    def chain_id(self) -> str: ...

    @property
    def config(self) -> NodeConfig: ...

    @property
    def genesis(self) -> Genesis: ...

    @property
    def metrics(self) -> NodeMetrics: ...

    @property
    def exchange(self) -> ExchangeApp | None:
        """The exchange application's state, or None when the node runs another app."""
        ...

    @property
    def latest_height(self) -> int:
        """The height of the latest committed block."""
        ...

    def status(self) -> NodeStatus: ...

    def block(self, height: int) -> Block | None:
        """The committed block at ``height`` (None above the latest or below the base)."""
        ...

    def forced_txs(self, height: int) -> list[bytes]:
        """The forced txs (inclusion lists) executed after the block at ``height``."""
        ...

    def tx_location(self, h: bytes) -> TxIndexEntry | None:
        """The committed tx with hash ``h``: its height, index and result."""
        ...

    def is_pending(self, h: bytes) -> bool:
        """True while the tx with hash ``h`` waits in the mempool."""
        ...

    def validator_set(self) -> ValidatorSet:
        """The validators of the next height."""
        ...

    def peer_list(self) -> list[tuple[str, bool]]:
        """Connected peers as (node id, dialled by us), by node id."""
        ...

    def last_signed_heights(self) -> dict[bytes, int]:
        """Per validator address, the latest height whose commit carries its precommit for
        the block (validators not seen in a commit since the node started are absent)."""
        ...

    async def submit_tx(self, raw: bytes) -> AddResult:
        """Admits a signed tx into the mempool (and gossips it): the mempool's verdict."""
        ...

    async def submit_txs(self, raws: Sequence[bytes]) -> list[AddResult]:
        """Admits signed txs together (as :meth:`submit_tx` each): the verdicts in order."""
        ...
