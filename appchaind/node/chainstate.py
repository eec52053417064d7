"""Persisting the consensus :class:`ChainState` (validator sets with their proposer
priorities, the last commit, the evidence window) as one canonical record."""

from __future__ import annotations

from typing import Annotated

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


def _store_set(vs: ValidatorSet) -> _StoredValidatorSet:
    return _StoredValidatorSet(vs.validators, vs.priorities, vs.proposer_index)


def _load_set(stored: _StoredValidatorSet) -> ValidatorSet:
    return ValidatorSet(stored.validators, stored.priorities, stored.proposer_index)


def encode_chain_state(state: ChainState) -> bytes:
    return codec.encode(
        _StoredChainState(
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
            validator_history=tuple(
                _StoredHistory(h, _store_set(v)) for h, v in state.validator_history
            ),
            committed_evidence=tuple(_StoredEvidence(h, e) for h, e in state.committed_evidence),
        )
    )


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
