"""The node's one signature verifier, at the edges ``make mutate`` found unguarded: each
signature is checked once and its verdict (good or bad) remembered, the cache is bounded
and drops its oldest verdict first, a block's txs are each checked once however they are
spread over the threads, and the queue delay the mempool sheds load on keeps counting
while txs still wait after a worker took a batch.
"""

from __future__ import annotations

import pytest

from appchaind.chain import codec, signatures, types
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.signatures import SignatureVerifier
from appchaind.node.kvapp import KVSet

CHAIN = "signatures-test"
KEY = PrivateKey(b"\x07" * 32)


def _signed(n: int) -> tuple[bytes, bytes]:
    """A message and KEY's signature over it."""
    message = b"message %d" % n
    return message, KEY.sign(message)


def _txs(first: int, count: int) -> tuple[list[types.Tx], list[bytes]]:
    """``count`` signed txs (nonces from ``first``) and their hashes."""
    txs = [
        types.sign_tx(KEY, CHAIN, nonce, 100, KVSet(b"k", b"%d" % nonce))
        for nonce in range(first, first + count)
    ]
    return txs, [types.tx_hash(codec.encode(t)) for t in txs]


def test_a_signature_is_checked_once_and_its_verdict_good_or_bad_remembered() -> None:
    verifier = SignatureVerifier(threads=1)
    message, signature = _signed(1)
    forged = bytes([signature[0] ^ 1]) + signature[1:]
    for _ in range(2):
        assert verifier.verify(KEY.public_key, message, signature)
        assert not verifier.verify(KEY.public_key, message, forged)
    assert verifier.verified_total == 2 and len(verifier) == 2


def test_the_verdict_cache_holds_capacity_verdicts_and_drops_the_oldest_first() -> None:
    verifier = SignatureVerifier(threads=1, capacity=2)
    signed = [_signed(n) for n in range(3)]
    for message, signature in signed:
        assert verifier.verify(KEY.public_key, message, signature)
    assert len(verifier) == 2
    for message, signature in (signed[2], signed[1]):  # the two newest: still known
        verifier.verify(KEY.public_key, message, signature)
    assert verifier.verified_total == 3
    verifier.verify(KEY.public_key, *signed[0])  # the oldest: dropped, checked again
    assert verifier.verified_total == 4


async def test_a_blocks_txs_are_each_checked_once_over_the_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[types.Tx] = []
    verify_batch = signatures._verify_batch

    def counting(txs: list[types.Tx]) -> list[bool]:
        checked.extend(txs)
        return verify_batch(txs)

    monkeypatch.setattr(signatures, "_verify_batch", counting)
    verifier = SignatureVerifier(threads=2)
    txs, hashes = _txs(1, 5)
    assert await verifier.verify_txs(txs, hashes) == [True] * 5
    assert sorted(t.nonce for t in checked) == [1, 2, 3, 4, 5]
    more, more_hashes = _txs(6, 2)
    assert await verifier.verify_txs(txs + more, hashes + more_hashes) == [True] * 7
    assert len(checked) == 7 and verifier.verified_total == 7
