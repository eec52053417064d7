"""Mempool admission, limits, verified-signature cache, reaping and post-commit update."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest
import trio
import trio.testing

from appchaind.abci import TxResult
from appchaind.chain import codec, types
from appchaind.chain.codec import U64, message
from appchaind.chain.codes import Code
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.signatures import SignatureVerifier
from appchaind.node.mempool import Mempool

CHAIN = "mempool-test"
ALICE = PrivateKey(b"\x01" * 32)
BOB = PrivateKey(b"\x02" * 32)


@types.register_tx_body
@message
class _Note:
    """A tx body kind for these tests only."""

    TAG: ClassVar[int] = 252
    value: U64


def tx(key: PrivateKey, nonce: int, value: int = 0, expiry: int = 100, chain: str = CHAIN) -> bytes:
    return codec.encode(types.sign_tx(key, chain, nonce, expiry, _Note(value)))


def make(
    check=lambda raw, tx: TxResult(Code.OK), threads: int = 2, **limits
) -> tuple[Mempool, SignatureVerifier]:
    verifier = SignatureVerifier(threads=threads)
    return Mempool(chain_id=CHAIN, check_tx=check, verifier=verifier, **limits), verifier


#: Signature checks on two worker threads, and on the node's own thread (verify_threads 0).
THREADS = pytest.mark.parametrize("threads", [2, 0])


@THREADS
async def test_admission_dedup_and_reasons(threads: int) -> None:
    pool, verifier = make(
        check=lambda raw, t: (
            TxResult(Code.REFUSED, "value 13 is unlucky") if t.body.value == 13 else TxResult(0)
        ),
        threads=threads,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(verifier.run)
        good = tx(ALICE, 1)
        assert (await pool.add(good)).accepted
        dup = await pool.add(good)
        assert not dup.accepted and dup.duplicate and dup.code == Code.ALREADY_KNOWN
        unlucky = await pool.add(tx(ALICE, 2, value=13))
        assert (unlucky.code, unlucky.log) == (Code.REFUSED, "value 13 is unlucky")
        malformed = await pool.add(b"\x93\x01\x02")
        assert malformed.code == Code.MALFORMED and "malformed tx" in malformed.log
        wrong = await pool.add(tx(ALICE, 3, chain="other"))
        assert wrong.code == Code.WRONG_CHAIN and "wrong chain id" in wrong.log
        forged = codec.decode(types.Tx, tx(ALICE, 4))
        forged = types.Tx(
            forged.chain_id,
            BOB.public_key,
            forged.nonce,
            forged.expiry_height,
            forged.body,
            forged.signature,
        )
        bad = await pool.add(codec.encode(forged))
        assert bad.code == Code.BAD_SIGNATURE and "invalid signature" in bad.log
        assert len(pool) == 1
        assert verifier.tx_verified(types.tx_hash(good))
        nursery.cancel_scope.cancel()


async def test_limits_total_bytes_and_per_account() -> None:
    pool, verifier = make(max_txs=5, max_txs_per_account=3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(verifier.run)
        results = [await pool.add(tx(ALICE, n)) for n in range(5)]
        assert [r.accepted for r in results] == [True, True, True, False, False]
        assert results[3].code == Code.ACCOUNT_QUEUE_FULL
        assert "already has 3 txs waiting" in results[3].log
        assert [(await pool.add(tx(BOB, n))).accepted for n in range(2)] == [True, True]
        full = await pool.add(tx(BOB, 9))
        assert not full.accepted and full.code == Code.MEMPOOL_FULL
        assert "mempool is full" in full.log and Code(full.code).retryable
        nursery.cancel_scope.cancel()


@THREADS
async def test_concurrent_adds_are_verified_in_batches(threads: int) -> None:
    pool, verifier = make(threads=threads)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(verifier.run)
        raws = [tx(ALICE if i % 2 else BOB, i) for i in range(300)]
        async with trio.open_nursery() as adders:
            for raw in raws:
                adders.start_soon(pool.add, raw)
        assert len(pool) == 300
        assert verifier.verified_total == 300
        assert sorted(pool.reap(max_txs=1000, max_bytes=10**9)) == sorted(raws)
        nursery.cancel_scope.cancel()


async def test_reap_respects_limits_and_update_removes_expires_rechecks() -> None:
    banned: set[int] = set()
    pool, verifier = make(
        check=lambda raw, t: TxResult(Code.REFUSED, "banned") if t.nonce in banned else TxResult(0)
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(verifier.run)
        raws = [tx(ALICE, n, expiry=5 if n == 3 else 100) for n in range(6)]
        for raw in raws:
            assert (await pool.add(raw)).accepted
        assert pool.reap(max_txs=2, max_bytes=10**9) == raws[:2]
        assert pool.reap(max_txs=10, max_bytes=len(raws[0]) * 3) == raws[:3]
        banned.add(4)
        pool.update(5, [types.tx_hash(raws[0]), types.tx_hash(raws[1])])
        left = pool.reap(10, 10**9)
        assert left == [raws[2], raws[5]]  # 0, 1 committed; 3 expired; 4 failed recheck
        # A committed tx is remembered as seen and not re-admitted.
        assert (await pool.add(raws[0])).duplicate
        stats = pool.statistics()
        assert stats.size == 2 and stats.evicted_total == 2
        nursery.cancel_scope.cancel()


@THREADS
async def test_a_blocks_txs_are_verified_over_threads_once(threads: int) -> None:
    """A block's txs are checked on the threads; verdicts are remembered under each tx's
    hash, so the txs already checked (by the mempool or an earlier block) are not checked
    again, and a forged one stays refused."""
    _pool, verifier = make(threads=threads)
    raws = [tx(ALICE, n) for n in range(50)]
    txs = [codec.decode(types.Tx, raw) for raw in raws]
    bad = types.Tx(CHAIN, ALICE.public_key, 999, 1, _Note(1), b"\x00" * 64)
    hashes = [types.tx_hash(raw) for raw in raws] + [types.tx_hash(codec.encode(bad))]
    verdicts = await verifier.verify_txs([*txs, bad], hashes)
    assert verdicts == [True] * 50 + [False]
    assert verifier.verified_total == 51
    assert await verifier.verify_txs([*txs, bad], hashes) == verdicts
    assert verifier.verified_total == 51
    assert verifier.tx_verified(hashes[0]) and not verifier.tx_verified(hashes[-1])


CAROL = PrivateKey(b"\x03" * 32)


async def test_a_client_beyond_the_backlog_is_told_busy_before_any_work() -> None:
    """Overload: beyond ``backlog_limit`` waiting txs a client's tx is refused as BUSY
    (retryable, with the delay to wait) without being decoded or verified; a duplicate
    is still answered as one; a peer's gossip of txs another node accepted still gets in
    (every proposer must be able to include them)."""
    pool, verifier = make()
    pool.backlog_limit = 2
    pool.retry_after_ms = 321
    async with trio.open_nursery() as nursery:
        nursery.start_soon(verifier.run)
        first = tx(ALICE, 1)
        assert (await pool.add(first)).accepted
        assert (await pool.add(tx(ALICE, 2))).accepted
        checked = verifier.verified_total
        busy = await pool.add(b"\x93\x01\x02")  # not even decoded: BUSY, not MALFORMED
        assert (busy.code, busy.retry_after_ms) == (Code.BUSY, 321)
        assert "node busy" in busy.log and "retry in 321 ms" in busy.log
        assert Code(busy.code).retryable and Code(busy.code).http_status == 503
        assert (await pool.add(tx(BOB, 1))).code == Code.BUSY
        assert verifier.verified_total == checked
        assert (await pool.add(first)).duplicate
        gossiped = [tx(BOB, 1), tx(CAROL, 1)]
        assert [r.accepted for r in await pool.add_many(gossiped)] == [True, True]
        stats = pool.statistics()
        assert (stats.size, stats.busy_total, stats.rejected_total) == (4, 2, 2)
        nursery.cancel_scope.cancel()


async def test_a_client_is_told_busy_while_signature_checks_queue_up() -> None:
    """While the txs waiting for a signature check have waited longer than
    ``max_admit_delay_ms`` (here: no verifier thread runs at all), or more txs are being
    admitted than ``max_admitting``, a client's tx is refused as BUSY at once instead of
    joining the queue; when the queue drains, txs are admitted again."""
    pool, verifier = make(max_admit_delay_ms=1, max_admitting=3)
    results: list[object] = []

    async def add(raw: bytes) -> None:
        results.append(await pool.add(raw))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(add, tx(ALICE, 1))
        await trio.sleep(0.05)  # the first tx waits, unverified, longer than 1 ms
        slow = await pool.add(tx(BOB, 1))
        assert slow.code == Code.BUSY and "signature check" in slow.log
        pool.max_admit_delay_s = 3600.0
        for n in (2, 3):
            nursery.start_soon(add, tx(ALICE, n))
        await trio.sleep(0.05)
        crowded = await pool.add(tx(CAROL, 1))
        assert crowded.code == Code.BUSY and "being admitted" in crowded.log
        nursery.start_soon(verifier.run)
        while len(results) < 3:
            await trio.sleep(0.01)
        assert len(pool) == 3 and pool.admitting == 0
        assert (await pool.add(tx(CAROL, 1))).accepted
        nursery.cancel_scope.cancel()


async def test_after_a_block_only_the_senders_it_touched_are_rechecked() -> None:
    """Only the accounts a block touched changed, so only their waiting txs can have
    become invalid: those are re-checked (and evicted, counted, if they fail); another
    sender's waiting txs are not checked again."""
    checks: list[bytes] = []
    used: set[int] = set()

    def check(raw: bytes, t: types.Tx) -> TxResult:
        checks.append(t.sender_address)
        return TxResult(Code.REFUSED, "nonce used") if t.nonce in used else TxResult(Code.OK)

    pool, verifier = make(check=check)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(verifier.run)
        alice = [tx(ALICE, n) for n in (1, 2, 3)]
        bob = [tx(BOB, n) for n in (5, 6)]
        for raw in alice + bob:
            assert (await pool.add(raw)).accepted
        checks.clear()
        used.add(2)
        pool.update(1, [types.tx_hash(alice[0])])
        assert checks == [ALICE.address, ALICE.address]  # alice's two waiting txs only
        assert pool.reap(10, 10**9) == [alice[2], *bob]
        assert pool.statistics().evicted_total == 1
        nursery.cancel_scope.cancel()


async def test_an_idle_verifier_is_not_mistaken_for_a_slow_one() -> None:
    """Overload is judged by how long txs now waiting have waited: once the queue has
    drained, a pause longer than ``max_admit_delay_ms`` does not make the next tx BUSY."""
    pool, verifier = make(max_admit_delay_ms=1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(verifier.run)
        assert (await pool.add(tx(ALICE, 1))).accepted
        await trio.sleep(0.05)
        assert verifier.queue_delay_s() == 0.0
        assert (await pool.add(tx(BOB, 1))).accepted
        nursery.cancel_scope.cancel()


async def test_clients_txs_read_together_are_admitted_each_as_alone() -> None:
    """``add_from_clients`` (one read off an RPC connection): a duplicate in the batch is
    ALREADY_KNOWN, each tx's busy check counts those before it in the batch, a bad
    signature is refused alone, and the rest share one queued signature check."""
    pool, verifier = make(max_admitting=4)
    good = [tx(ALICE, n) for n in range(1, 4)]
    forged = codec.decode(types.Tx, tx(BOB, 1))
    bad = codec.encode(
        types.Tx(forged.chain_id, forged.sender, 2, forged.expiry_height, forged.body,
                 forged.signature)
    )  # fmt: skip
    batch = [good[0], good[0], good[1], bad, good[2], tx(CAROL, 1), tx(CAROL, 2)]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(verifier.run)
        results = await pool.add_from_clients(batch)
        codes = [r.code for r in results]
        assert codes == [
            Code.OK, Code.ALREADY_KNOWN, Code.OK, Code.BAD_SIGNATURE, Code.OK, Code.BUSY,
            Code.BUSY,
        ]  # fmt: skip
        assert "being admitted" in results[5].log and results[5].retry_after_ms > 0
        assert verifier.verified_total == 4 and pool.admitting == 0
        assert sorted(pool.reap(max_txs=10, max_bytes=10**9)) == sorted(good)
        # The same tx later, alone: known already; the busy ones are admitted now.
        assert (await pool.add(good[1])).code == Code.ALREADY_KNOWN
        assert [r.accepted for r in await pool.add_from_clients(batch[5:])] == [True, True]
        assert verifier.verified_total == 6
        nursery.cancel_scope.cancel()


async def test_queued_verdicts_come_from_the_cache_when_known() -> None:
    verifier = SignatureVerifier(threads=1)
    txs = [codec.decode(types.Tx, tx(ALICE, n)) for n in range(5)]
    hashes = [types.tx_hash(codec.encode(t)) for t in txs]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(verifier.run)
        assert await verifier.verify_queued(txs[:3], hashes[:3]) == [True] * 3
        assert verifier.verified_total == 3
        assert await verifier.verify_queued(txs, hashes) == [True] * 5
        assert verifier.verified_total == 5  # only the two new ones were checked
        assert verifier.queue_delay_s() == 0.0
        nursery.cancel_scope.cancel()


async def test_idle_worker_threads_all_take_a_share_of_a_queued_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Txs queued while every worker is idle are split between the threads: each thread's
    batch below waits at a barrier for the other's, so it passes only if both threads
    verify at once (one idle worker once slept for good, and one thread did all)."""
    from appchaind.chain import signatures

    barrier = threading.Barrier(2, timeout=30)
    threads: set[int] = set()

    def verify_at_the_barrier(txs: list[types.Tx]) -> list[bool]:
        threads.add(threading.get_ident())
        barrier.wait()
        return [t.verify_signature() for t in txs]

    monkeypatch.setattr(signatures, "_verify_batch", verify_at_the_barrier)
    verifier = SignatureVerifier(threads=2)
    txs = [codec.decode(types.Tx, tx(ALICE, n)) for n in range(1, 3)]
    hashes = [types.tx_hash(codec.encode(t)) for t in txs]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(verifier.run)
        await trio.testing.wait_all_tasks_blocked()  # both workers idle
        assert await verifier.verify_queued(txs, hashes) == [True] * 2  # one tx per thread
        assert len(threads) == 2 and verifier.verified_total == 2
        nursery.cancel_scope.cancel()


async def test_the_queue_delay_is_the_oldest_queued_txs_own_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The busy check reads how long the oldest tx still queued has waited, counted from
    when it joined the queue, not from when a worker last took a batch (under a steady
    queue that was always recent, and admission never turned busy)."""
    from appchaind.chain import signatures

    clock = [100.0]
    monkeypatch.setattr(signatures.time, "monotonic", lambda: clock[0])
    release = threading.Event()

    def verify_when_released(txs: list[types.Tx]) -> list[bool]:
        release.wait(30)
        return [t.verify_signature() for t in txs]

    monkeypatch.setattr(signatures, "_verify_batch", verify_when_released)
    verifier = SignatureVerifier(threads=1, max_batch=1)
    txs = [codec.decode(types.Tx, tx(ALICE, n)) for n in range(1, 4)]
    hashes = [types.tx_hash(codec.encode(t)) for t in txs]
    async with trio.open_nursery() as nursery:
        verdicts: list[list[bool]] = []

        async def queue() -> None:
            verdicts.append(await verifier.verify_queued(txs, hashes))

        nursery.start_soon(queue)  # queued at 100.0
        await trio.testing.wait_all_tasks_blocked()
        clock[0] = 100.4
        nursery.start_soon(verifier.run)  # a worker takes the first tx at 100.4
        await trio.testing.wait_all_tasks_blocked()
        clock[0] = 100.5
        assert verifier.queue_delay_s() == pytest.approx(0.5)
        release.set()
        while not verdicts:
            await trio.sleep(0.01)
        assert verdicts == [[True] * 3] and verifier.queue_delay_s() == 0.0
        nursery.cancel_scope.cancel()


async def test_checks_on_the_nodes_thread_let_other_tasks_run_between_batches() -> None:
    """With no worker threads a block's txs are checked INLINE_BATCH at a time, with a
    checkpoint between batches: the consensus loop is not held for the whole block."""
    from appchaind.chain.signatures import INLINE_BATCH

    _pool, verifier = make(threads=0)
    raws = [tx(ALICE, n) for n in range(INLINE_BATCH * 3)]
    txs = [codec.decode(types.Tx, raw) for raw in raws]
    hashes = [types.tx_hash(raw) for raw in raws]
    seen: list[int] = []

    async def other_task() -> None:
        while True:
            seen.append(sum(verifier.tx_verified(h) for h in hashes))
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_task)
        await trio.lowlevel.checkpoint()
        assert await verifier.verify_txs(txs, hashes) == [True] * len(txs)
        nursery.cancel_scope.cancel()
    # The other task ran while some but not all of the txs were checked.
    assert any(0 < n < len(txs) for n in seen)


@THREADS
async def test_a_queued_tx_checked_meanwhile_is_not_checked_again(threads: int) -> None:
    """A proposal's txs are checked at once, ahead of the admission queue: when one of them
    is also waiting in the queue, the queue's worker takes its verdict from the cache."""
    _pool, verifier = make(threads=threads)
    raws = [tx(ALICE, n) for n in range(10)]
    txs = [codec.decode(types.Tx, raw) for raw in raws]
    hashes = [types.tx_hash(raw) for raw in raws]
    async with trio.open_nursery() as nursery:
        verdicts: list[bool] = []

        async def admit() -> None:
            verdicts.extend(await verifier.verify_queued(txs, hashes))

        nursery.start_soon(admit)
        await trio.testing.wait_all_tasks_blocked()  # queued, no worker running yet
        assert await verifier.verify_txs(txs[:4], hashes[:4]) == [True] * 4
        nursery.start_soon(verifier.run)
        while not verdicts:
            await trio.sleep(0.001)
        nursery.cancel_scope.cancel()
    assert verdicts == [True] * 10
    assert verifier.verified_total == 10
