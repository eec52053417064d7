"""Persisting the consensus :class:`ChainState` (validator sets with their proposer
priorities, the last commit, the evidence window) as one canonical record."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import msgpack

from appchaind.chain import codec
from appchaind.chain.codec import I64, U32, U64, Bytes, HashOrEmpty, MaxItems, message
from appchaind.chain.types import MAX_VALIDATORS, ChainId, Commit, Validator
from appchaind.consensus.state import ChainState
from appchaind.consensus.validators import ValidatorSet

__all__ = ["encode_chain_state", "decode_chain_state"]

_WINDOW = 100_000


@message
class _StoredValidatorSet:
    validators: Annotated[tuple[Validator, ...], MaxItems(MAX_VALIDATORS)]
    priorities: Annotated[tuple[I64, ...], MaxItems(MAX_VALIDATORS)]
    proposer_index: U32


@message
class _StoredHistory:
    height: U64
    validators: _StoredValidatorSet


@message
class _StoredEvidence:
    height: U64
    evidence_hash: Annotated[bytes, Bytes(0, 64)]


@message
class _StoredChainState:
    chain_id: ChainId
    height: U64
    validators: _StoredValidatorSet
    next_validators: _StoredValidatorSet
    last_validators: _StoredValidatorSet | None
    last_block_id: HashOrEmpty
    last_block_time_ms: U64
    last_commit: Commit | None
    app_hash: HashOrEmpty
    validator_history: Annotated[tuple[_StoredHistory, ...], MaxItems(_WINDOW)]
    committed_evidence: Annotated[tuple[_StoredEvidence, ...], MaxItems(_WINDOW)]


#: The position of ``validator_history`` in the record's wire form (a list of fields).
_HISTORY_FIELD = [f.name for f in dataclasses.fields(_StoredChainState)].index("validator_history")


def _store_set(vs: ValidatorSet) -> _StoredValidatorSet:
    return _StoredValidatorSet(vs.validators, vs.priorities, vs.proposer_index)


def _load_set(stored: _StoredValidatorSet) -> ValidatorSet:
    return ValidatorSet(stored.validators, stored.priorities, stored.proposer_index)


#: The packed bytes of each validator-history entry, by height (with the set it was made
#: from): the history holds a set per height of the evidence window (100 by default) and
#: the record is written every block, so encoding (then packing) every entry each time
#: cost more than the rest of an empty block's commit. A msgpack array is its header and
#: then its items' bytes, so the record is packed field by field with these spliced in:
#: the same bytes as packing it whole.
_history_packed: dict[int, tuple[ValidatorSet, bytes]] = {}
_packer = msgpack.Packer(use_bin_type=True)


def _history_entry_bytes(height: int, validators: ValidatorSet) -> bytes:
    cached = _history_packed.get(height)
    if cached is not None and cached[0] is validators:
        return cached[1]
    packed: bytes = _packer.pack(codec.to_wire(_StoredHistory(height, _store_set(validators))))
    _history_packed[height] = (validators, packed)
    return packed


def encode_chain_state(state: ChainState) -> bytes:
    """The canonical bytes of ``_StoredChainState`` for ``state`` (the history entries'
    wire forms reused from earlier blocks)."""
    if len(state.validator_history) > _WINDOW:
        raise codec.CodecError("validator_history", f"more than {_WINDOW} items")
    record = _StoredChainState(
        chain_id=state.chain_id,
        height=state.height,
        validators=_store_set(state.validators),
        next_validators=_store_set(state.next_validators),
        last_validators=None
        if state.last_validators is None
        else _store_set(state.last_validators),
        last_block_id=state.last_block_id,
        last_block_time_ms=state.last_block_time_ms,
        last_commit=state.last_commit,
        app_hash=state.app_hash,
        validator_history=(),
        committed_evidence=tuple(_StoredEvidence(h, e) for h, e in state.committed_evidence),
    )
    wire = codec.to_wire(record)
    history = state.validator_history
    parts = [_packer.pack_array_header(len(wire))]
    for i, value in enumerate(wire):
        if i == _HISTORY_FIELD:
            parts.append(_packer.pack_array_header(len(history)))
            parts.extend(_history_entry_bytes(h, v) for h, v in history)
        else:
            parts.append(_packer.pack(value))
    if len(_history_packed) > 2 * max(len(history), 1):
        kept = {h for h, _v in history}
        for height in [h for h in _history_packed if h not in kept]:
            del _history_packed[height]
    data = b"".join(parts)
    if len(data) > codec.MAX_MESSAGE_BYTES:
        raise codec.CodecError("", f"chain state is {len(data)} bytes, over the limit")
    return data


def decode_chain_state(data: bytes) -> ChainState:
    s = codec.decode(_StoredChainState, data)
    return ChainState(
        chain_id=s.chain_id,
        height=s.height,
        validators=_load_set(s.validators),
        next_validators=_load_set(s.next_validators),
        last_validators=None if s.last_validators is None else _load_set(s.last_validators),
        last_block_id=s.last_block_id,
        last_block_time_ms=s.last_block_time_ms,
        last_commit=s.last_commit,
        app_hash=s.app_hash,
        validator_history=tuple((h.height, _load_set(h.validators)) for h in s.validator_history),
        committed_evidence=tuple((e.height, e.evidence_hash) for e in s.committed_evidence),
    )
