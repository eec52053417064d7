"""The consensus chain-state record: its bytes are the canonical encoding of the whole
record, whatever was reused from earlier blocks, and it decodes to the same state."""

from __future__ import annotations

from appchaind.chain import codec
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.types import Validator
from appchaind.consensus.state import ChainState
from appchaind.node import chainstate
from appchaind.node.chainstate import decode_chain_state, encode_chain_state


def _full_encoding(state: ChainState) -> bytes:
    """The record encoded field by field, nothing reused (the reference)."""
    s = chainstate._store_set
    return codec.encode(
        chainstate._StoredChainState(
            state.chain_id, state.height, s(state.validators), s(state.next_validators),
            None if state.last_validators is None else s(state.last_validators),
            state.last_block_id, state.last_block_time_ms, state.last_commit, state.app_hash,
            tuple(chainstate._StoredHistory(h, s(v)) for h, v in state.validator_history),
            tuple(chainstate._StoredEvidence(h, e) for h, e in state.committed_evidence),
        )
    )  # fmt: skip


def test_the_record_is_the_canonical_encoding_block_after_block() -> None:
    keys = [PrivateKey(bytes([i + 1]) * 32) for i in range(4)]
    validators = tuple(Validator(k.public_key, 10 + i) for i, k in enumerate(keys))
    state = ChainState.genesis("cs-test", validators, 1_700_000_000_000)
    for height in range(2, 160):
        # As the machine does: the window keeps the last 100 heights' sets, each a new
        # object (priorities move every height); one entry re-made for the same height.
        history = (*state.validator_history, (height, state.next_validators))
        if height % 11 == 0:  # another set for a height already written
            history = tuple((h, v.increment(1) if h == height - 5 else v) for h, v in history)
        state = ChainState(
            chain_id=state.chain_id,
            height=height,
            validators=state.next_validators,
            next_validators=state.next_validators.increment(1),
            last_validators=state.validators,
            last_block_id=bytes([height % 256]) * 32,
            last_block_time_ms=state.last_block_time_ms + 1000,
            last_commit=None,
            app_hash=bytes(32),
            validator_history=tuple((h, v) for h, v in history if h > height - 100),
            committed_evidence=((height - 1, bytes(32)),) if height % 7 == 0 else (),
        )
        data = encode_chain_state(state)
        assert data == _full_encoding(state), height
        assert decode_chain_state(data) == state
    assert len(chainstate._history_packed) <= 200  # the reused entries stay bounded
