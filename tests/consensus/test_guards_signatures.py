"""The node's one signature verifier, at the edges ``make mutate`` found unguarded: each
signature is checked once and its verdict (good or bad) remembered, the cache is bounded
and drops its oldest verdict first, a block's txs are each checked once however they are
spread over the threads, and the queue delay the mempool sheds load on keeps counting
while txs still wait after a worker took a batch; without worker threads txs are checked
INLINE_BATCH at a time between checkpoints (each once, counted), with threads in one share
per thread; a queued tx checked while it waited takes its verdict from the cache.
"""

from __future__ import annotations

import threading

import pytest
import trio
import trio.testing

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


def _recording_batches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every batch of txs checked from now on, as (its size, the thread that checked it),
    and every checkpoint the verifier passes, as (0, 0)."""
    batches: list[tuple[int, int]] = []
    verify_batch = signatures._verify_batch
    checkpoint = trio.lowlevel.checkpoint

    async def recording_checkpoint() -> None:
        batches.append((0, 0))
        await checkpoint()

    monkeypatch.setattr(signatures.trio.lowlevel, "checkpoint", recording_checkpoint)

    def recording(txs: list[types.Tx]) -> list[bool]:
        batches.append((len(txs), threading.get_ident()))
        return verify_batch(txs)

    monkeypatch.setattr(signatures, "_verify_batch", recording)
    return batches


async def test_without_threads_a_blocks_txs_are_checked_inline_batch_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no worker threads a block's txs are checked on the node's thread,
    INLINE_BATCH (64) at a time between checkpoints, each once, and counted with the
    signatures checked before them."""
    batches = _recording_batches(monkeypatch)
    verifier = SignatureVerifier(threads=0)
    assert verifier.verify(KEY.public_key, *_signed(1))
    txs, hashes = _txs(1, 65)
    assert await verifier.verify_txs(txs, hashes) == [True] * 65
    node = threading.get_ident()
    assert batches == [(64, node), (0, 0), (1, node), (0, 0)]
    assert verifier.verified_total == 1 + 65


async def test_without_threads_queued_txs_are_checked_inline_batch_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no worker threads the admission queue is worked off on the node's thread,
    INLINE_BATCH (64) txs between two checkpoints, not the whole queue at once."""
    batches = _recording_batches(monkeypatch)
    verifier = SignatureVerifier(threads=0)
    txs, hashes = _txs(1, 65)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(verifier.run)
        assert await verifier.verify_queued(txs, hashes) == [True] * 65
        nursery.cancel_scope.cancel()
    assert [size for size, _thread in batches] == [64, 0, 1, 0]  # 0: a checkpoint
    assert verifier.verified_total == 65


async def test_with_threads_a_blocks_txs_are_split_over_the_worker_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With worker threads a block's txs are split into one share per thread (5 txs on
    2 threads: 3 and 2; 2 txs: 1 and 1), checked off the node's thread."""
    batches = _recording_batches(monkeypatch)
    verifier = SignatureVerifier(threads=2)
    txs, hashes = _txs(1, 5)
    assert await verifier.verify_txs(txs, hashes) == [True] * 5
    assert sorted(size for size, _thread in batches) == [2, 3]
    batches.clear()
    txs, hashes = _txs(6, 2)
    assert await verifier.verify_txs(txs, hashes) == [True] * 2
    assert sorted(size for size, _thread in batches) == [1, 1]
    assert threading.get_ident() not in {thread for _size, thread in batches}


async def test_a_queued_tx_checked_while_it_waited_is_answered_from_the_cache() -> None:
    """A tx waiting in the admission queue when a proposal carrying it is checked (ahead
    of the queue) gets that verdict when a worker takes it: checked once, and a batch
    whose every tx is known by then needs no check at all."""
    verifier = SignatureVerifier(threads=1)
    txs, hashes = _txs(1, 1)
    verdicts: list[list[bool]] = []
    admitted = trio.Event()

    async def admit() -> None:
        verdicts.append(await verifier.verify_queued(txs, hashes))
        admitted.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(admit)
        await trio.testing.wait_all_tasks_blocked()  # queued; no worker runs yet
        assert await verifier.verify_txs(txs, hashes) == [True]
        nursery.start_soon(verifier.run)
        await admitted.wait()
        nursery.cancel_scope.cancel()
    assert verdicts == [[True]]
    assert verifier.verified_total == 1
