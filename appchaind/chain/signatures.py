"""Signature checks, once per node: the threaded verifier and the one verdict cache.

Whoever needs a signature checked asks the node's one :class:`SignatureVerifier`:

- consensus messages (a vote's signatures, a proposal's) through :meth:`verify`, on the
  node's thread: the consensus channel, which drops a peer relaying a forged vote, and
  the consensus machine, counting votes, find each other's verdicts;
- txs through :meth:`verify_queued` (mempool admission: concurrent requests are batched onto
  worker threads, so the thread hand-off is paid once per batch; libsodium releases the
  GIL) and :meth:`verify_txs` (a proposed block's txs, spread over the threads).

With ``threads=0`` the txs are checked on the node's own thread, :data:`INLINE_BATCH` at a
time between checkpoints. That is the better choice where the node has no spare core (a
localnet of several validators on one machine): each check on a worker thread takes the
GIL back from a busy event loop, and those hand-offs cost more than the check (four
validators on two cores committed about 1,000 orders/s with two threads each, about
1,450/s inline).

Every verdict goes into one bounded cache (oldest out first): a tx's under its hash
(SHA-256 of its canonical bytes, computed once by the caller), any other message's under
(public key, signature, message). :meth:`tx_verified` answers from the cache alone: a
block's txs that the mempool admitted are not verified again. No one else keeps
verdicts: the consensus machine asks this verifier for every signature it needs (a
commit's precommits, seen as votes before, are answered from the cache), and the
application is handed the txs verified here already decoded (:mod:`appchaind.abci`).
"""

from __future__ import annotations

import time
from collections import OrderedDict

import trio

from appchaind.chain import crypto
from appchaind.chain.types import Tx

__all__ = ["SignatureVerifier"]

CacheKey = bytes | tuple[bytes, bytes, bytes]

#: Verdicts kept. A tx admitted to the mempool needs none (the block check takes it from
#: the mempool, decoded); the cache serves the txs of peers' proposals between their
#: arrival and the commit, and votes seen before a commit holds them: seconds of traffic.
#: 100,000 is about 50 s at 2,000 txs/s, ~17 MB (it was 400,000: ~70 MB, filling for
#: minutes under load).
VERDICT_CACHE = 100_000

#: Txs checked on the node's thread between two checkpoints when there are no worker
#: threads (about 6 ms of libsodium at ~100 us a check: the consensus loop waits no longer).
INLINE_BATCH = 64


def _verify_batch(txs: list[Tx]) -> list[bool]:
    return [tx.verify_signature() for tx in txs]


class _Waiter:
    """A caller of :meth:`SignatureVerifier.verify_queued` waiting for its verdicts."""

    __slots__ = ("remaining", "verdicts", "done")

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining
        self.verdicts: dict[int, bool] = {}
        self.done = trio.Event()


class SignatureVerifier:
    """Verifies signatures on ``threads`` worker threads (0: on the node's thread) and
    remembers the verdicts.

    Run :meth:`run` in a nursery before awaiting :meth:`verify_queued`."""

    def __init__(
        self, threads: int, *, capacity: int = VERDICT_CACHE, max_batch: int = 512
    ) -> None:
        self.threads = threads
        self.capacity = capacity
        self.max_batch = max_batch
        self._cache: OrderedDict[CacheKey, bool] = OrderedDict()
        #: Txs waiting for a worker thread: (tx, hash, whoever waits, index in its list,
        #: when it joined the queue in monotonic seconds).
        self._pending: list[tuple[Tx, bytes, _Waiter, int, float]] = []
        self._wakeup = trio.Event()
        #: Signatures actually checked (not answered from the cache).
        self.verified_total = 0

    def __len__(self) -> int:
        """Verdicts in the cache."""
        return len(self._cache)

    def _remember(self, key: CacheKey, verdict: bool) -> None:
        self._cache[key] = verdict
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)

    # ------------------------------------------------------------------ consensus messages

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is ``public_key``'s over ``message`` (cached)."""
        key = (public_key, signature, message)
        verdict = self._cache.get(key)
        if verdict is None:
            verdict = crypto.verify(public_key, message, signature)
            self.verified_total += 1
            self._remember(key, verdict)
        return verdict

    # ------------------------------------------------------------------ txs

    def queue_delay_s(self) -> float:
        """How long the oldest tx waiting for a worker thread has waited (0 if none)."""
        return time.monotonic() - self._pending[0][4] if self._pending else 0.0

    def tx_verified(self, h: bytes) -> bool:
        """True when the tx with hash ``h`` is known to carry a valid signature."""
        return self._cache.get(h) is True

    async def verify_queued(self, txs: list[Tx], hashes: list[bytes]) -> list[bool]:
        """Clients' txs' verdicts: those not cached join the queue the worker threads take
        batches from (so :meth:`queue_delay_s` sees them), one wake-up for all of them."""
        verdicts: list[bool | None] = [self._cache.get(h) for h in hashes]
        todo = [i for i, v in enumerate(verdicts) if v is None]
        if todo:
            waiter = _Waiter(len(todo))
            now = time.monotonic()
            self._pending.extend((txs[i], hashes[i], waiter, i, now) for i in todo)
            self._wakeup.set()
            await waiter.done.wait()
            for i in todo:
                verdicts[i] = waiter.verdicts[i]
        return [bool(v) for v in verdicts]

    async def verify_txs(self, txs: list[Tx], hashes: list[bytes]) -> list[bool]:
        """The verdicts of a list of txs (a received block's), spread over the threads;
        those already cached are not checked again."""
        verdicts: list[bool | None] = [self._cache.get(h) for h in hashes]
        todo = [i for i, v in enumerate(verdicts) if v is None]
        if todo and not self.threads:
            for start in range(0, len(todo), INLINE_BATCH):
                part = todo[start : start + INLINE_BATCH]
                for i, ok in zip(part, _verify_batch([txs[i] for i in part]), strict=True):
                    verdicts[i] = ok
                    self._remember(hashes[i], ok)
                await trio.lowlevel.checkpoint()
            self.verified_total += len(todo)
        elif todo:
            chunk = max(1, -(-len(todo) // self.threads))
            parts = [todo[start : start + chunk] for start in range(0, len(todo), chunk)]

            async def check(part: list[int]) -> None:
                results = await trio.to_thread.run_sync(_verify_batch, [txs[i] for i in part])
                for i, ok in zip(part, results, strict=True):
                    verdicts[i] = ok
                    self._remember(hashes[i], ok)

            async with trio.open_nursery() as nursery:
                for part in parts:
                    nursery.start_soon(check, part)
            self.verified_total += len(todo)
        return [bool(v) for v in verdicts]

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(max(1, self.threads)):
                nursery.start_soon(self._worker)

    async def _worker(self) -> None:
        while True:
            if not self._pending:
                # One event for all idle workers: a worker replacing it while another
                # waited on the old one left that one asleep for good (one thread did all).
                if self._wakeup.is_set():
                    self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            # A share of the queue, so that the other threads take the rest at once (one
            # thread taking all of a read's txs left the others idle).
            if self.threads:
                size = min(self.max_batch, -(-len(self._pending) // self.threads))
            else:
                size = INLINE_BATCH
            batch = self._pending[:size]
            del self._pending[:size]
            # A tx may have been checked while it waited (a proposal carrying it is checked
            # at once, ahead of the queue): its verdict is taken from the cache.
            known = [self._cache.get(b[1]) for b in batch]
            todo = [b[0] for b, v in zip(batch, known, strict=True) if v is None]
            if not todo:
                checked: list[bool] = []
            elif self.threads:
                checked = await trio.to_thread.run_sync(_verify_batch, todo)
            else:
                checked = _verify_batch(todo)
            if not self.threads:
                await trio.lowlevel.checkpoint()
            self.verified_total += len(todo)
            fresh = iter(checked)
            verdicts = [next(fresh) if v is None else v for v in known]
            for (_tx, h, waiter, index, _since), ok in zip(batch, verdicts, strict=True):
                self._remember(h, ok)
                waiter.verdicts[index] = ok
                waiter.remaining -= 1
                if not waiter.remaining:
                    waiter.done.set()
