"""Inclusion lists: a block cannot drop an order or cancel that the honest validators saw.

Each validator's precommit for block ``B`` at height ``H`` carries, in its vote extension
(:class:`~appchaind.exchange.oracle.PrecommitExtension`), an inclusion list: the bytes of
the orders and cancels (:data:`LISTABLE`: place, cancel, cancel-all, replace) that have
waited in its mempool and that ``B`` does not carry, at most ``max_inclusion_txs`` of
them and ``max_inclusion_bytes`` in total (chain params). Which txs a validator lists is
its node's business (the mempool's admission heights and ``[pbs]
inclusion_after_blocks``); what the chain checks and does is here:

- **Verification** (:func:`include_problem`): every precommit's list is within the caps,
  each entry a canonical tx of a listable kind, listed once (decoding only: signatures
  and envelopes are checked when the tx runs). A validator refuses a precommit whose
  list breaks this, as it refuses implausible prices.
- **Execution** (:func:`forced_txs`): the forced txs of block ``H+1`` are the union of
  the lists of the precommits for ``B`` in its last commit (the extended commit the
  oracle reads; a list that breaks the rule above is ignored), without the txs the block
  carries itself, in tx-hash order. They run after the block's own txs and before the
  end-of-block upkeep. One that is no longer valid (:func:`still_valid`: it does not
  decode, a bad signature, its envelope fails at this block, an unknown sender, a nonce
  already used, by an earlier block or earlier in this one) is skipped and gets no
  result; every other one is delivered like a block tx and gets a result.

Any commit holds the precommits of more than 2/3 of the power, so of at least one honest
validator: a tx that every honest validator listed is executed by the next block, whoever
built it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from appchaind.chain import codec
from appchaind.chain.types import Tx, tx_hash
from appchaind.exchange import envelope, oracle
from appchaind.exchange.state import ExchangeState
from appchaind.exchange.txs import CancelAll, CancelOrder, PlaceOrder, ReplaceOrder
from config.genesis import ChainParams

__all__ = [
    "LISTABLE",
    "listable",
    "include_problem",
    "extension_problem",
    "forced_txs",
    "still_valid",
]

#: The tx kinds an inclusion list may hold: a trader's orders and cancels.
LISTABLE: Final = (PlaceOrder, CancelOrder, CancelAll, ReplaceOrder)


def listable(tx: Tx) -> bool:
    """Whether ``tx`` is of a kind an inclusion list may hold."""
    return type(tx.body) in LISTABLE


def include_problem(params: ChainParams, include: Sequence[bytes]) -> str | None:
    """Why the inclusion list ``include`` breaks the chain's rule, or None."""
    if len(include) > params.max_inclusion_txs:
        return f"{len(include)} txs listed, more than max_inclusion_txs {params.max_inclusion_txs}"
    if sum(len(raw) for raw in include) > params.max_inclusion_bytes:
        return f"the txs listed exceed max_inclusion_bytes {params.max_inclusion_bytes}"
    seen: set[bytes] = set()
    for i, raw in enumerate(include):
        if raw in seen:
            return f"listed tx {i} is listed twice"
        seen.add(raw)
        try:
            tx = codec.decode(Tx, raw, max_bytes=params.max_tx_bytes)
        except codec.CodecError as exc:
            return f"listed tx {i} is not a tx: {exc}"
        if not listable(tx):
            return f"listed tx {i} is a {type(tx.body).__name__}, not an order or a cancel"
    return None


def extension_problem(params: ChainParams, extension: bytes) -> str | None:
    """Why the inclusion list of the vote extension ``extension`` breaks the chain's rule
    (:func:`include_problem`), or None (b"" lists nothing)."""
    if not extension:
        return None
    try:
        include = oracle.decode_vote(extension).include
    except codec.CodecError as exc:
        return f"not a vote extension: {exc}"
    return include_problem(params, include)


def forced_txs(
    params: ChainParams, extensions: Sequence[bytes], block_txs: Sequence[bytes]
) -> list[bytes]:
    """The txs a block must execute after its own: the union of the inclusion lists of
    ``extensions`` (the precommits for the previous block in its last commit; an
    extension that does not decode, or whose list breaks :func:`include_problem`, lists
    nothing), without ``block_txs``, in tx-hash order."""
    listed: dict[bytes, None] = {}
    for extension in extensions:
        if extension and extension_problem(params, extension) is None:
            listed.update(dict.fromkeys(oracle.decode_vote(extension).include))
    if not listed:
        return []
    for raw in block_txs:
        listed.pop(raw, None)
    return sorted(listed, key=tx_hash)


def still_valid(state: ExchangeState, raw: bytes) -> Tx | None:
    """The forced tx ``raw`` decoded, if it can still run in the block being executed
    (signature, envelope at this height and time, an existing sender, a nonce the
    sender has not used), else None: it is skipped, without a result."""
    tx, error = envelope.decode(state, raw, False)
    if error is not None or tx is None or not listable(tx):
        return None
    if envelope.check_envelope(state, tx, state.height, state.time_ms, read_only=True):
        return None
    return tx
