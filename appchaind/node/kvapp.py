"""A small key-value application that the node's own tests run, as CometBFT's do (its
kvstore): it implements :class:`appchaind.abci.Application` with one tx kind, :class:`KVSet`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, ClassVar

from appchaind.abci import Application, FinalizeResult, TxResult
from appchaind.chain import codec, crypto
from appchaind.chain.codec import Bytes, message
from appchaind.chain.codes import Code
from appchaind.chain.events import Event
from appchaind.chain.types import Block, Tx, Vote, register_tx_body
from appchaind.consensus.validators import ValidatorSet
from appchaind.store import STATE, Store, WriteBatch
from config.genesis import Genesis
from config.node_config import NodeConfig

__all__ = ["KVApp", "KVSet", "kv_app_factory"]


@register_tx_body
@message
class KVSet:
    """Sets ``key`` to ``value`` in the key-value test application."""

    TAG: ClassVar[int] = 200
    key: Annotated[bytes, Bytes(1, 256)]
    value: Annotated[bytes, Bytes(0, 4096)]


class KVApp:
    """A deterministic key-value store: the node's test application.

    App hash = SHA-256 over the sorted (key, value) pairs and the height.
    """

    _HEIGHT_KEY = STATE + b"kv-height"
    _PREFIX = STATE + b"kv/"

    def __init__(self, store: Store | None = None) -> None:
        self.items: dict[bytes, bytes] = {}
        self.height = 0
        self._dirty: dict[bytes, bytes] = {}
        if store is not None:
            raw = store.get(self._HEIGHT_KEY)
            self.height = 0 if raw is None else int.from_bytes(raw, "big")
            for key, value in store.iterate(self._PREFIX):
                self.items[key] = value
        self.app_hash = self._compute_hash()

    def _compute_hash(self) -> bytes:
        parts = [self.height.to_bytes(8, "big")]
        for key in sorted(self.items):
            parts.append(len(key).to_bytes(4, "big") + key + self.items[key])
        return crypto.sha256(b"".join(parts))

    def check_tx(self, raw: bytes, tx: Tx | None = None) -> TxResult:
        if tx is None:
            try:
                tx = codec.decode(Tx, raw)
            except codec.CodecError as exc:
                return TxResult(Code.MALFORMED, f"malformed tx: {exc}")
            if not tx.verify_signature():
                return TxResult(Code.BAD_SIGNATURE, "invalid signature")
        if isinstance(tx.body, KVSet):
            return TxResult(Code.OK)
        return TxResult(Code.REFUSED, "the KV app only accepts KVSet txs")

    def prepare_proposal(
        self,
        height: int,
        time_ms: int,
        txs: Sequence[bytes],
        *,
        decoded: Sequence[Tx] | None = None,
    ) -> list[bytes]:
        return list(txs)

    def process_proposal(
        self, block: Block, proposer_of_round: Callable[[int], bytes | None] | None = None
    ) -> tuple[bool, str]:
        return True, ""

    def extend_vote(
        self, height: int, round: int, block_hash: bytes, include: Sequence[bytes] = ()
    ) -> bytes:
        return b"kv:" + height.to_bytes(8, "big")

    def verify_vote_extension(self, vote: Vote) -> bool:
        return vote.extension == b"kv:" + vote.height.to_bytes(8, "big")

    def finalize_block(
        self,
        block: Block,
        txs: Sequence[Tx | None],
        last_validators: ValidatorSet | None = None,
    ) -> FinalizeResult:
        results = []
        for raw, given in zip(block.txs, txs, strict=True):
            tx = given
            if tx is None:
                try:
                    tx = codec.decode(Tx, raw)
                except codec.CodecError as exc:
                    results.append(TxResult(Code.MALFORMED, f"malformed tx: {exc}"))
                    continue
                if not tx.verify_signature():
                    results.append(TxResult(Code.BAD_SIGNATURE, "invalid signature"))
                    continue
            if not isinstance(tx.body, KVSet):
                results.append(TxResult(Code.REFUSED, "not a KVSet"))
                continue
            self.items[tx.body.key] = tx.body.value
            self._dirty[tx.body.key] = tx.body.value
            results.append(TxResult(Code.OK, "", [Event("kv_set", {"key": tx.body.key})]))
        self.height = block.header.height
        self.app_hash = self._compute_hash()
        return FinalizeResult(self.height, results, [], self.app_hash)

    def commit(self, batch: WriteBatch) -> bytes:
        for key, value in self._dirty.items():
            batch.put(self._PREFIX + key, value)
        batch.put(self._HEIGHT_KEY, self.height.to_bytes(8, "big"))
        self._dirty = {}
        return self.app_hash


def kv_app_factory(
    store: Store, genesis: Genesis, config: NodeConfig, validator_address: bytes
) -> Application:
    """The key-value test application (node tests, as CometBFT's kvstore)."""
    return KVApp(store)
