"""The mempool: admission, deduplication, limits, verified-signature cache, reaping.

Admission of a transaction's bytes, in order:

1. size limit, then canonical decoding (a CodecError names the bad field);
2. deduplication by tx hash (a recently seen tx is not checked twice);
3. capacity: total count, total bytes, and per-account count;
4. signature verification on worker threads (libsodium releases the GIL), in
   batches so the thread hand-off is paid once per batch, not per tx;
5. the application's ``check_tx``.

Signatures are checked by the node's one :class:`~appchaind.signatures.SignatureVerifier`,
whose verdict cache then spares a block's txs a second check. After each commit, :meth:`update` drops
included and expired txs and re-checks a bounded number of the rest.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import trio

from appchaind import codec, types
from appchaind.abci import TxResult
from appchaind.codes import Code
from appchaind.signatures import SignatureVerifier
from appchaind.types import Tx, tx_hash

__all__ = ["Mempool", "AddResult", "MempoolStats", "CheckTx"]

#: The application's admission check (:meth:`appchaind.abci.Application.check_tx`) of a
#: tx's canonical bytes and the tx decoded (signature already verified): code 0 to accept.
CheckTx = Callable[[bytes, Tx], TxResult]


@dataclass(frozen=True, slots=True)
class AddResult:
    """The mempool's verdict on one tx: ``code`` (:class:`~appchaind.codes.Code`; 0 when
    accepted) and ``log`` (why not, for the sender)."""

    accepted: bool
    tx_hash: bytes
    code: int = Code.OK
    log: str = ""

    @property
    def duplicate(self) -> bool:
        """The tx was already in the mempool or recently seen (not an error for gossip)."""
        return self.code == Code.ALREADY_KNOWN


@dataclass(frozen=True, slots=True)
class MempoolStats:
    size: int
    size_bytes: int
    accounts: int
    rejected_total: int
    evicted_total: int
    rechecked_total: int
    verified_cache: int


@dataclass(slots=True)
class _Entry:
    tx: Tx
    raw: bytes
    sender: bytes
    height_added: int


class _LRUSet:
    """A bounded set of hashes; the oldest fall out first."""

    __slots__ = ("_items", "_capacity")

    def __init__(self, capacity: int) -> None:
        self._items: OrderedDict[bytes, None] = OrderedDict()
        self._capacity = capacity

    def add(self, key: bytes) -> None:
        self._items[key] = None
        self._items.move_to_end(key)
        if len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def __contains__(self, key: bytes) -> bool:
        return key in self._items

    def discard(self, key: bytes) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class Mempool:
    """Pending transactions in arrival order, with the limits from ``[mempool]``."""

    def __init__(
        self,
        *,
        chain_id: str,
        check_tx: CheckTx,
        verifier: SignatureVerifier,
        max_txs: int = 50_000,
        max_bytes: int = 256 * 1024 * 1024,
        max_txs_per_account: int = 1_000,
        max_tx_bytes: int = types.MAX_TX_BYTES,
        seen_cache: int = 200_000,
    ) -> None:
        self.chain_id = chain_id
        self.check_tx = check_tx
        self.verifier = verifier
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.max_txs_per_account = max_txs_per_account
        self.max_tx_bytes = max_tx_bytes
        self._txs: OrderedDict[bytes, _Entry] = OrderedDict()
        self._per_sender: dict[bytes, int] = {}
        self._bytes = 0
        self._seen = _LRUSet(seen_cache)
        self.height = 0
        self.rejected_total = 0
        self.evicted_total = 0
        self.rechecked_total = 0
        self.tx_available = trio.Event()

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, h: bytes) -> bool:
        return h in self._txs

    def decoded(self, h: bytes) -> Tx | None:
        """The waiting tx with hash ``h``, decoded and signature-verified, or None."""
        entry = self._txs.get(h)
        return None if entry is None else entry.tx

    def statistics(self) -> MempoolStats:
        return MempoolStats(
            size=len(self._txs),
            size_bytes=self._bytes,
            accounts=len(self._per_sender),
            rejected_total=self.rejected_total,
            evicted_total=self.evicted_total,
            rechecked_total=self.rechecked_total,
            verified_cache=len(self.verifier),
        )

    # ------------------------------------------------------------------ admission

    def _refuse(self, h: bytes, code: int, log: str) -> AddResult:
        self.rejected_total += 1
        return AddResult(False, h, code, log)

    async def add(self, raw: bytes) -> AddResult:
        """Admits ``raw`` (a canonical Tx) or says why not. Never raises for bad input."""
        h = tx_hash(raw)
        if len(raw) > self.max_tx_bytes:
            return self._refuse(
                h, Code.TOO_LARGE, f"tx is {len(raw)} bytes; the limit is {self.max_tx_bytes}"
            )
        if h in self._txs or h in self._seen:
            return AddResult(
                False, h, Code.ALREADY_KNOWN, "tx already in the mempool or recently seen"
            )
        try:
            tx = codec.decode(Tx, raw, max_bytes=self.max_tx_bytes)
        except codec.CodecError as exc:
            return self._refuse(h, Code.MALFORMED, f"malformed tx: {exc}")
        if tx.chain_id != self.chain_id:
            return self._refuse(
                h,
                Code.WRONG_CHAIN,
                f"wrong chain id {tx.chain_id!r}; this chain is {self.chain_id!r}",
            )
        sender = tx.sender_address
        full = self._capacity_problem(sender, len(raw))
        if full is not None:
            return self._refuse(h, *full)
        self._seen.add(h)
        if not await self.verifier.verify_tx(tx, h):
            return self._refuse(
                h, Code.BAD_SIGNATURE, "invalid signature: the tx is not signed by its sender key"
            )
        # Capacity again: other txs may have been admitted while we verified.
        full = self._capacity_problem(sender, len(raw))
        if full is not None:
            self._seen.discard(h)
            return self._refuse(h, *full)
        checked = self.check_tx(raw, tx)
        code, log = checked.code, checked.log
        if code != Code.OK:
            return self._refuse(h, code, log)
        self._txs[h] = _Entry(tx, raw, sender, self.height)
        self._per_sender[sender] = self._per_sender.get(sender, 0) + 1
        self._bytes += len(raw)
        self.tx_available.set()
        return AddResult(True, h)

    def _capacity_problem(self, sender: bytes, size: int) -> tuple[Code, str] | None:
        if len(self._txs) >= self.max_txs:
            return Code.MEMPOOL_FULL, f"mempool is full ({self.max_txs} txs); retry later"
        if self._bytes + size > self.max_bytes:
            return Code.MEMPOOL_FULL, f"mempool is full ({self.max_bytes} bytes); retry later"
        if self._per_sender.get(sender, 0) >= self.max_txs_per_account:
            return Code.ACCOUNT_QUEUE_FULL, (
                f"account {sender.hex()} already has {self.max_txs_per_account} txs waiting; "
                "wait for some to commit"
            )
        return None

    # ------------------------------------------------------------------ proposals and commits

    def reap(self, max_txs: int, max_bytes: int) -> list[bytes]:
        """Up to ``max_txs`` txs (and ``max_bytes``) in arrival order, for a proposal."""
        out: list[bytes] = []
        total = 0
        for entry in self._txs.values():
            if len(out) >= max_txs or total + len(entry.raw) > max_bytes:
                break
            out.append(entry.raw)
            total += len(entry.raw)
        return out

    def _remove(self, h: bytes) -> _Entry | None:
        entry = self._txs.pop(h, None)
        if entry is None:
            return None
        self._bytes -= len(entry.raw)
        left = self._per_sender[entry.sender] - 1
        if left:
            self._per_sender[entry.sender] = left
        else:
            del self._per_sender[entry.sender]
        if not self._txs:
            self.tx_available = trio.Event()
        return entry

    def update(
        self, height: int, committed: Iterable[bytes], *, recheck_limit: int = 10_000
    ) -> None:
        """After committing ``height``: drop its txs, evict expired ones, re-check up to
        ``recheck_limit`` of the rest against the new state (oldest first)."""
        self.height = height
        for h in committed:
            self._seen.add(h)
            self._remove(h)
        checked = 0
        for h, entry in list(self._txs.items()):
            if entry.tx.expiry_height <= height:
                self._remove(h)
                self.evicted_total += 1
                continue
            if checked < recheck_limit:
                checked += 1
                if self.check_tx(entry.raw, entry.tx).code != Code.OK:
                    self._remove(h)
                    self.evicted_total += 1
        self.rechecked_total += checked
