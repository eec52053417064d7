"""The application interface: what the node asks the replicated application, and what it
answers (ABCI++-shaped, in-process).

The node calls, per height: :meth:`Application.prepare_proposal` (when it proposes),
:meth:`~Application.process_proposal` (for others' blocks), :meth:`~Application.extend_vote`
/ :meth:`~Application.verify_vote_extension` (precommits), then
:meth:`~Application.finalize_block` for the decided block followed by
:meth:`~Application.commit`, which stages the application's state changes into the same
LevelDB write batch as the block, so that a block and the state it produces are written
atomically. Its mempool asks :meth:`~Application.check_tx` before admitting a tx.

Signatures are the node's business: it checks each tx's signature once, on its worker
threads (:class:`appchaind.chain.signatures.SignatureVerifier`), and hands the application txs
already decoded and verified; the application decodes and checks only what the node could
not (a block tx the node has no verdict for).

One result type for a tx, :class:`TxResult` (a code from :mod:`appchaind.chain.codes`, a log for
the trader, events), from the state machine through the tx index to the wire; one for a
block, :class:`FinalizeResult`. The exchange (:class:`appchaind.exchange.ExchangeApp`)
and the node's test application (:class:`appchaind.node.kvapp.KVApp`) implement
:class:`Application`.

Compiled with mypyc (the exchange builds a :class:`TxResult` per tx on its hot path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, Protocol

from appchaind.chain.events import Event, PendingEvent, expand_events

if TYPE_CHECKING:
    from appchaind.chain.types import Block, Tx, Validator, Vote
    from appchaind.consensus.validators import ValidatorSet
    from appchaind.store import Store, WriteBatch
    from config.genesis import Genesis
    from config.node_config import NodeConfig

__all__ = ["Application", "AppFactory", "TxResult", "FinalizeResult", "APPLIED"]


class TxResult:
    """The outcome of one tx: ``code`` (:class:`~appchaind.chain.codes.Code`; 0 = accepted or
    applied), ``log`` (what was wrong, for the trader), ``events`` in the order things
    happened (:class:`~appchaind.chain.events.Event`, attributes as the state machine has them:
    addresses are raw bytes, hexed at the JSON edge).

    The exchange records some events as compact tuples on its hot path; they are expanded
    into :class:`Event` the first time ``events`` is read."""

    __slots__ = ("code", "log", "_events", "_expanded")

    def __init__(self, code: int, log: str = "", events: list[PendingEvent] | None = None) -> None:
        self.code = int(code)  # a plain int (not the Code enum): it goes to the wire as is
        self.log = log
        self._events: list[PendingEvent] = [] if events is None else events
        self._expanded = False

    @property
    def events(self) -> list[Event]:
        if not self._expanded:
            expand_events(self._events)
            self._expanded = True
        return self._events  # type: ignore[return-value]

    @events.setter
    def events(self, events: list[PendingEvent]) -> None:
        self._events = events
        self._expanded = False

    @property
    def ok(self) -> bool:
        return self.code == 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TxResult):
            return NotImplemented
        return (self.code, self.log, self.events) == (other.code, other.log, other.events)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TxResult(code={self.code!r}, log={self.log!r}, events={self.events!r})"


#: What the rule of a tx body returns when the tx applied: (code 0, no log).
APPLIED: Final = (0, "")


class FinalizeResult:
    """What :meth:`Application.finalize_block` returns: one :class:`TxResult` per tx of the
    block, in the block's order, then one per tx of ``forced_txs``; the block-level events
    (for the exchange: oracle, triggers, expiry, funding, liquidations); validator updates
    (the exchange makes none); the app hash after the block; and ``forced_txs``, the txs
    the block did not carry that the application executed after the block's own (the
    exchange's inclusion lists, :mod:`appchaind.exchange.inclusion`): committed with the
    block like its own txs."""

    __slots__ = ("height", "tx_results", "events", "app_hash", "validator_updates", "forced_txs")

    def __init__(
        self,
        height: int,
        tx_results: list[TxResult],
        events: list[Event],
        app_hash: bytes,
        validator_updates: Sequence[Validator] = (),
        forced_txs: Sequence[bytes] = (),
    ) -> None:
        self.height = height
        self.tx_results = tx_results
        self.events = events
        self.app_hash = app_hash
        self.validator_updates: tuple[Validator, ...] = tuple(validator_updates)
        self.forced_txs: tuple[bytes, ...] = tuple(forced_txs)

    def __repr__(self) -> str:
        return (
            f"FinalizeResult(height={self.height!r}, app_hash={self.app_hash.hex()}, "
            f"{len(self.tx_results)} tx results ({len(self.forced_txs)} forced), "
            f"{len(self.events)} events)"
        )


class Application(Protocol):
    """The replicated application, as the node drives it. Deterministic: every method but
    :meth:`extend_vote` is a function of the committed state and its arguments."""

    @property
    def height(self) -> int:
        """The height of the last block executed (at start: the last committed; 0 at genesis)."""
        ...

    @property
    def app_hash(self) -> bytes:
        """The app hash after block :attr:`height`."""
        ...

    def check_tx(self, raw: bytes, tx: Tx | None = None) -> TxResult:
        """Mempool admission of the tx with canonical bytes ``raw`` against the committed
        state; changes nothing. ``tx``: ``raw`` decoded, its signature verified by the node;
        None: the application decodes and checks it."""
        ...

    def prepare_proposal(
        self,
        height: int,
        time_ms: int,
        txs: Sequence[bytes],
        *,
        decoded: Sequence[Tx] | None = None,
    ) -> list[bytes]:
        """This node's block at ``height``: the mempool's candidates ``txs`` (signatures
        verified by the node), filtered and ordered. ``decoded``: the same txs decoded
        (the mempool's), when the node has them."""
        ...

    def process_proposal(
        self, block: Block, proposer_of_round: Callable[[int], bytes | None] | None = None
    ) -> tuple[bool, str]:
        """Accept or reject another proposer's block (and why not). The node verified every
        tx's signature first (a block with a badly signed tx never gets here).
        ``proposer_of_round(r)``: the address of the proposer of round ``r`` at the
        block's height, or None for a round the node has not reached (what a builder's
        bid is checked against)."""
        ...

    def extend_vote(
        self, height: int, round: int, block_hash: bytes, include: Sequence[bytes] = ()
    ) -> bytes:
        """This validator's vote extension for its precommit (the only non-deterministic
        call). ``include``: the inclusion list the node made from its mempool (txs that
        waited and that the block does not carry); an application without inclusion lists
        ignores it."""
        ...

    def verify_vote_extension(self, vote: Vote) -> bool:
        """Whether another validator's precommit carries an acceptable extension."""
        ...

    def finalize_block(
        self, block: Block, txs: Sequence[Tx | None], last_validators: ValidatorSet | None
    ) -> FinalizeResult:
        """Executes the decided ``block``. ``txs`` has one entry per tx of the block, in
        order: the tx decoded from exactly those bytes with its signature verified by the
        node, or None (the application decodes that one and checks its signature).
        ``last_validators`` signed ``block.last_commit`` (their powers weigh its vote
        extensions)."""
        ...

    def commit(self, batch: WriteBatch) -> bytes:
        """Stages the executed block's state changes into ``batch`` (written with the block);
        returns the app hash."""
        ...


#: Builds the application: (store, genesis, node config, validator address) -> app.
AppFactory = Callable[["Store", "Genesis", "NodeConfig", bytes], Application]
