"""The interface between the node and the replicated application (ABCI++-shaped, in-process),
and a small key-value application that the node's own tests run, as CometBFT's do.

The node calls, per height: ``prepare_proposal`` (when it proposes),
``process_proposal`` (for others' blocks), ``extend_vote`` /
``verify_vote_extension`` (precommits), then ``finalize_block`` for the decided
block followed by ``commit(batch)``, which stages the application's state
changes into the same LevelDB write batch as the block, so a block and the
state it produces are written atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Protocol

from appchaind import codec, crypto
from appchaind.codec import Bytes, message
from appchaind.codes import Code
from appchaind.consensus.validators import ValidatorSet
from appchaind.store import STATE, Store, WriteBatch
from appchaind.types import Block, Tx, Validator, Vote, register_tx_body
from config.genesis import Genesis
from config.node_config import NodeConfig

__all__ = [
    "AppFactory",
    "Application",
    "FinalizeResult",
    "TxOutcome",
    "KVApp",
    "KVSet",
    "kv_app_factory",
]


@dataclass(frozen=True, slots=True)
class TxOutcome:
    """One tx's result in a block: ``code`` 0 is success; ``log`` tells the trader why not."""

    code: int
    log: str = ""
    events: tuple[tuple[str, dict[str, object]], ...] = ()


@dataclass(frozen=True, slots=True)
class FinalizeResult:
    app_hash: bytes
    tx_results: tuple[TxOutcome, ...]
    validator_updates: tuple[Validator, ...] = ()
    events: tuple[tuple[str, dict[str, object]], ...] = field(default_factory=tuple)


class Application(Protocol):
    def last_height(self) -> int:
        """The height of the last block whose state was committed (0 at genesis)."""
        ...

    def app_hash(self) -> bytes: ...

    def check_tx(self, tx: Tx, raw: bytes) -> tuple[int, str]:
        """Mempool admission of ``tx`` (canonical bytes ``raw``): ``(code, log)``, code 0
        (:attr:`~appchaind.codes.Code.OK`) to accept. The signature was already verified."""
        ...

    def prepare_proposal(
        self, height: int, time_ms: int, txs: list[bytes], decoded: list[Tx] | None = None
    ) -> list[bytes]:
        """Orders/filters the mempool's candidates into this node's block. ``decoded``:
        the same txs decoded, their signatures verified (the mempool's), when the node has
        them."""
        ...

    def process_proposal(self, block: Block, verified: frozenset[bytes]) -> bool:
        """Accept or reject another proposer's block. ``verified``: tx hashes whose
        signatures the node already checked."""
        ...

    def extend_vote(self, height: int, round: int, block_hash: bytes) -> bytes: ...

    def verify_vote_extension(self, vote: Vote) -> bool: ...

    def finalize_block(
        self,
        block: Block,
        verified: frozenset[bytes],
        last_validators: ValidatorSet | None,
        decoded: Sequence[Tx | None] | None = None,
    ) -> FinalizeResult:
        """Executes the decided block. ``verified`` holds the hashes of txs whose signatures
        the node already checked; the application checks the others. ``last_validators``
        signed ``block.last_commit`` (their powers weigh the vote extensions). ``decoded``,
        when given, has one entry per tx of the block, in order: the tx already decoded
        from exactly those bytes and signature-verified (the node had it in its mempool),
        or None (the application decodes that one from the block)."""
        ...

    def commit(self, batch: WriteBatch) -> None:
        """Stages this block's state changes into ``batch`` (written with the block)."""
        ...


# ---------------------------------------------------------------------------- the KV test app


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
        self._hash = self._compute_hash()

    def _compute_hash(self) -> bytes:
        parts = [self.height.to_bytes(8, "big")]
        for key in sorted(self.items):
            parts.append(len(key).to_bytes(4, "big") + key + self.items[key])
        return crypto.sha256(b"".join(parts))

    def last_height(self) -> int:
        return self.height

    def app_hash(self) -> bytes:
        return self._hash

    def check_tx(self, tx: Tx, raw: bytes) -> tuple[int, str]:
        if isinstance(tx.body, KVSet):
            return Code.OK, ""
        return Code.REFUSED, "the KV app only accepts KVSet txs"

    def prepare_proposal(
        self, height: int, time_ms: int, txs: list[bytes], decoded: list[Tx] | None = None
    ) -> list[bytes]:
        return txs

    def process_proposal(self, block: Block, verified: frozenset[bytes]) -> bool:
        return True

    def extend_vote(self, height: int, round: int, block_hash: bytes) -> bytes:
        return b"kv:" + height.to_bytes(8, "big")

    def verify_vote_extension(self, vote: Vote) -> bool:
        return vote.extension == b"kv:" + vote.height.to_bytes(8, "big")

    def finalize_block(
        self,
        block: Block,
        verified: frozenset[bytes],
        last_validators: ValidatorSet | None = None,
        decoded: Sequence[Tx | None] | None = None,
    ) -> FinalizeResult:
        results = []
        for raw in block.txs:
            try:
                tx = codec.decode(Tx, raw)
            except codec.CodecError as exc:
                results.append(TxOutcome(1, f"malformed tx: {exc}"))
                continue
            if crypto.sha256(raw) not in verified and not tx.verify_signature():
                results.append(TxOutcome(2, "invalid signature"))
                continue
            if not isinstance(tx.body, KVSet):
                results.append(TxOutcome(3, "not a KVSet"))
                continue
            self.items[tx.body.key] = tx.body.value
            self._dirty[tx.body.key] = tx.body.value
            results.append(TxOutcome(0, "", (("kv_set", {"key": tx.body.key.hex()}),)))
        self.height = block.header.height
        self._hash = self._compute_hash()
        return FinalizeResult(self._hash, tuple(results))

    def commit(self, batch: WriteBatch) -> None:
        for key, value in self._dirty.items():
            batch.put(self._PREFIX + key, value)
        batch.put(self._HEIGHT_KEY, self.height.to_bytes(8, "big"))
        self._dirty = {}


#: Builds the application: (store, genesis, node config, validator address) -> app.
AppFactory = Callable[[Store, Genesis, NodeConfig, bytes], Application]


def kv_app_factory(
    store: Store, genesis: Genesis, config: NodeConfig, validator_address: bytes
) -> Application:
    """The key-value test application (node tests, as CometBFT's kvstore)."""
    return KVApp(store)
