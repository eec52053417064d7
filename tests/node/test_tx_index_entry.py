"""The tx index entry written per committed tx: the fast encoding gives exactly the
canonical bytes of TxIndexEntry (the checked path for anything unusual)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from appchaind.chain import codec
from appchaind.node.view import TxIndexEntry, encode_tx_index_entry


@given(
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.text(max_size=400) | st.text(alphabet="abc ", max_size=1000),
    st.binary(max_size=3000),
)
def test_the_fast_entry_is_the_canonical_entry(
    height: int, index: int, code: int, log: str, events: bytes
) -> None:
    data = encode_tx_index_entry(height, index, code, log, events)
    assert data == codec.encode(TxIndexEntry(height, index, code, log, events))
    assert codec.decode(TxIndexEntry, data) == TxIndexEntry(height, index, code, log, events)
