"""The mempool: admission, deduplication, limits, verified-signature cache, reaping.

Admission of a transaction's bytes, in order:

1. size limit and deduplication by tx hash (a recently seen tx is not checked twice);
2. load, for a client's tx (:meth:`Mempool.add`): while more txs wait than the chain
   can commit in a few blocks (:attr:`Mempool.backlog_limit`, set by the node from its
   block budget), while more are being admitted at once than
   :attr:`Mempool.max_admitting`, or while the txs waiting for a signature check have
   waited longer than :attr:`Mempool.max_admit_delay_s`, the tx is refused with
   :attr:`~appchaind.chain.codes.Code.BUSY` and a retry delay, before any work is spent on
   it. A peer's gossip (:meth:`Mempool.add_many`) is not refused for load: another node
   accepted those txs, and every proposer must be able to include them (gossip is
   bounded by the peers' own admission and the hard limits);
3. canonical decoding (a CodecError names the bad field), then capacity: total count,
   total bytes, and per-account count;
4. signature verification on worker threads (libsodium releases the GIL), in
   batches so the thread hand-off is paid once per batch, not per tx;
5. the application's ``check_tx``.

A tx accepted is either committed, or removed later with a count in
:attr:`Mempool.evicted_total` (expired, or no longer valid after a block): never dropped
silently.

Signatures are checked by the node's one :class:`~appchaind.chain.signatures.SignatureVerifier`,
whose verdict cache then spares a block's txs a second check. After each commit, :meth:`update` drops
included and expired txs and re-checks a bounded number of the rest.

Each waiting tx remembers the last committed height when it was admitted: a validator
lists the txs that waited long enough in its precommit (:meth:`Mempool.inclusion_list`,
:mod:`appchaind.exchange.inclusion`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass

import trio

from appchaind.abci import TxResult
from appchaind.chain import codec, types
from appchaind.chain.codes import Code
from appchaind.chain.signatures import SignatureVerifier
from appchaind.chain.types import Tx, tx_hash

__all__ = ["Mempool", "AddResult", "MempoolStats", "CheckTx"]

#: The application's admission check (:meth:`appchaind.abci.Application.check_tx`) of a
#: tx's canonical bytes and the tx decoded (signature already verified): code 0 to accept.
CheckTx = Callable[[bytes, Tx], TxResult]


@dataclass(frozen=True, slots=True)
class AddResult:
    """The mempool's verdict on one tx: ``code`` (:class:`~appchaind.chain.codes.Code`; 0 when
    accepted) and ``log`` (why not, for the sender)."""

    accepted: bool
    tx_hash: bytes
    code: int = Code.OK
    log: str = ""
    #: For a busy refusal: when to try again, in ms (0 otherwise).
    retry_after_ms: int = 0

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
    busy_total: int
    evicted_total: int
    rechecked_total: int
    verified_cache: int
    backlog_limit: int
    admitting: int


@dataclass(slots=True)
class _Entry:
    tx: Tx
    raw: bytes
    sender: bytes
    #: The node's last committed height when the tx was admitted (inclusion lists).
    height_added: int


#: Recently seen tx hashes kept to answer ALREADY_KNOWN: about 25 s of a busy chain's
#: traffic (gossip repeats a tx within seconds; a committed tx sent again is refused by
#: its nonce anyway). About 170 bytes each: 8.5 MB (it was 200,000: 34 MB, which took
#: minutes of load to fill, so a node's memory kept growing long after its state had
#: stopped).
SEEN_CACHE = 50_000


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
        seen_cache: int = SEEN_CACHE,
        max_admitting: int = 4_096,
        max_admit_delay_ms: int = 250,
    ) -> None:
        self.chain_id = chain_id
        self.check_tx = check_tx
        self.verifier = verifier
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.max_txs_per_account = max_txs_per_account
        self.max_tx_bytes = max_tx_bytes
        #: Txs waiting beyond which new ones are refused as BUSY: what the chain commits in
        #: a few blocks (the node sets it after each block from its block budget).
        self.backlog_limit = max_txs
        #: Txs being admitted at once (decoding, verifying) beyond which new ones are BUSY.
        self.max_admitting = max_admitting
        self.admitting = 0
        #: Refuse as BUSY while txs wait longer than this for their signature check: the
        #: node's answer to a client stays quick however much is offered.
        self.max_admit_delay_s = max_admit_delay_ms / 1000
        #: The delay a busy refusal suggests (about one block interval; the node updates it).
        self.retry_after_ms = 500
        self._txs: OrderedDict[bytes, _Entry] = OrderedDict()
        self._per_sender: dict[bytes, int] = {}
        self._bytes = 0
        self._seen = _LRUSet(seen_cache)
        self.height = 0
        self.rejected_total = 0
        self.busy_total = 0
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
            busy_total=self.busy_total,
            evicted_total=self.evicted_total,
            rechecked_total=self.rechecked_total,
            verified_cache=len(self.verifier),
            backlog_limit=self.backlog_limit,
            admitting=self.admitting,
        )

    # ------------------------------------------------------------------ admission

    def _refuse(self, h: bytes, code: int, log: str) -> AddResult:
        self.rejected_total += 1
        return AddResult(False, h, code, log)

    def _busy(self, h: bytes) -> AddResult | None:
        """A BUSY refusal while the node has more work than it can finish soon, else None."""
        waiting = len(self._txs)
        if waiting >= self.backlog_limit:
            why = (
                f"node busy: {waiting} txs wait for a block, about as many as the chain "
                "commits in a few blocks"
            )
        elif self.admitting >= self.max_admitting:
            why = f"node busy: {self.admitting} txs are being admitted"
        elif self.verifier.queue_delay_s() > self.max_admit_delay_s:
            why = (
                "node busy: txs wait more than "
                f"{self.max_admit_delay_s * 1000:.0f} ms for their signature check"
            )
        else:
            return None
        self.rejected_total += 1
        self.busy_total += 1
        retry = self.retry_after_ms
        return AddResult(False, h, Code.BUSY, f"{why}; retry in {retry} ms", retry)

    def _precheck(self, raw: bytes, h: bytes, client: bool) -> AddResult | Tx:
        """Everything before the signature: size, duplicates, load (``client``: a client's
        tx, not a peer's), decoding, chain, capacity. Returns the decoded tx, or the refusal."""
        if len(raw) > self.max_tx_bytes:
            return self._refuse(
                h, Code.TOO_LARGE, f"tx is {len(raw)} bytes; the limit is {self.max_tx_bytes}"
            )
        if h in self._txs or h in self._seen:
            return AddResult(
                False, h, Code.ALREADY_KNOWN, "tx already in the mempool or recently seen"
            )
        full = self._capacity_problem(None, len(raw))
        if full is not None:
            return self._refuse(h, *full)
        if client:
            busy = self._busy(h)
            if busy is not None:
                return busy
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
        full = self._capacity_problem(tx.sender_address, len(raw))
        if full is not None:
            return self._refuse(h, *full)
        return tx

    def _admit_verified(self, raw: bytes, h: bytes, tx: Tx, signed: bool) -> AddResult:
        """The steps after the signature check (``signed``: its verdict)."""
        if not signed:
            return self._refuse(
                h, Code.BAD_SIGNATURE, "invalid signature: the tx is not signed by its sender key"
            )
        sender = tx.sender_address
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

    async def add(self, raw: bytes) -> AddResult:
        """Admits a client's ``raw`` (a canonical Tx) or says why not. Never raises for bad
        input."""
        return (await self.add_from_clients([raw]))[0]

    async def add_from_clients(self, raws: Sequence[bytes]) -> list[AddResult]:
        """Admits clients' txs (those of one read off an RPC connection, say), each as
        :meth:`add` would: refused when the node is busy, their signatures checked through
        the verifier's queue together."""
        results: list[AddResult | None] = []
        todo: list[tuple[int, bytes, bytes, Tx]] = []
        try:
            for raw in raws:
                h = tx_hash(raw)
                checked = self._precheck(raw, h, True)
                if isinstance(checked, AddResult):
                    results.append(checked)
                    continue
                self._seen.add(h)
                self.admitting += 1  # the next one's busy check counts this one
                todo.append((len(results), raw, h, checked))
                results.append(None)
            if todo:
                verdicts = await self.verifier.verify_queued(
                    [t[3] for t in todo], [t[2] for t in todo]
                )
        finally:
            self.admitting -= len(todo)
        if todo:
            for (i, raw, h, tx), signed in zip(todo, verdicts, strict=True):
                results[i] = self._admit_verified(raw, h, tx, signed)
        return [r for r in results if r is not None]

    async def add_many(self, raws: Iterable[bytes]) -> list[AddResult]:
        """Admits a peer's gossip message (not refused for load, see the module's doc):
        the signatures of the new txs join the verifier's queue with the clients' (so a
        node checking on its own thread takes one batch of them per turn of its event
        loop and consensus gets the turns between; a proposal's txs go first)."""
        results: list[AddResult | None] = []
        todo: list[tuple[int, bytes, bytes, Tx]] = []
        for raw in raws:
            h = tx_hash(raw)
            checked = self._precheck(raw, h, False)
            if isinstance(checked, AddResult):
                results.append(checked)
                continue
            self._seen.add(h)
            todo.append((len(results), raw, h, checked))
            results.append(None)
        if todo:
            self.admitting += len(todo)
            try:
                verdicts = await self.verifier.verify_queued(
                    [t[3] for t in todo], [t[2] for t in todo]
                )
            finally:
                self.admitting -= len(todo)
            for (i, raw, h, tx), signed in zip(todo, verdicts, strict=True):
                results[i] = self._admit_verified(raw, h, tx, signed)
        return [r for r in results if r is not None]

    def _capacity_problem(self, sender: bytes | None, size: int) -> tuple[Code, str] | None:
        """The hard limits (``sender`` None: the total ones only)."""
        if len(self._txs) >= self.max_txs:
            return Code.MEMPOOL_FULL, f"mempool is full ({self.max_txs} txs); retry later"
        if self._bytes + size > self.max_bytes:
            return Code.MEMPOOL_FULL, f"mempool is full ({self.max_bytes} bytes); retry later"
        if sender is not None and self._per_sender.get(sender, 0) >= self.max_txs_per_account:
            return Code.ACCOUNT_QUEUE_FULL, (
                f"account {sender.hex()} already has {self.max_txs_per_account} txs waiting; "
                "wait for some to commit"
            )
        return None

    # ------------------------------------------------------------------ proposals and commits

    def reap(self, max_txs: int, max_bytes: int) -> list[bytes]:
        """Up to ``max_txs`` txs (and ``max_bytes``) in arrival order, for a proposal."""
        return self.reap_decoded(max_txs, max_bytes)[0]

    def reap_decoded(self, max_txs: int, max_bytes: int) -> tuple[list[bytes], list[Tx]]:
        """:meth:`reap`, with the same txs decoded (their signatures verified)."""
        raws: list[bytes] = []
        txs: list[Tx] = []
        total = 0
        for entry in self._txs.values():
            if len(raws) >= max_txs or total + len(entry.raw) > max_bytes:
                break
            raws.append(entry.raw)
            txs.append(entry.tx)
            total += len(entry.raw)
        return raws, txs

    def inclusion_list(
        self,
        admitted_by: int,
        exclude: Container[bytes],
        max_txs: int,
        max_bytes: int,
        listable: Callable[[Tx], bool],
    ) -> list[bytes]:
        """This validator's inclusion list: the oldest waiting txs that were admitted
        when the last committed height was at most ``admitted_by``, are ``listable``, and
        are not in ``exclude`` (the bytes of the block being precommitted); at most
        ``max_txs`` of them and ``max_bytes`` in total (a tx that would exceed it is passed
        over). Txs wait in arrival order, so their admission heights never decrease."""
        listed: list[bytes] = []
        total = 0
        for entry in self._txs.values():
            if len(listed) >= max_txs or entry.height_added > admitted_by:
                break
            raw = entry.raw
            if total + len(raw) > max_bytes or raw in exclude or not listable(entry.tx):
                continue
            listed.append(raw)
            total += len(raw)
        return listed

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
        """After committing ``height``: drop its txs, evict expired ones, and re-check (up
        to ``recheck_limit``, oldest first) the waiting txs of the senders the block
        touched, against the new state: only their accounts changed (a nonce used, a
        balance moved), so only their txs can have become invalid."""
        self.height = height
        touched: set[bytes] = set()
        for h in committed:
            self._seen.add(h)
            entry = self._remove(h)
            if entry is not None:
                touched.add(entry.sender)
        checked = 0
        for h, entry in list(self._txs.items()):
            if entry.tx.expiry_height <= height:
                self._remove(h)
                self.evicted_total += 1
                continue
            if entry.sender in touched and checked < recheck_limit:
                checked += 1
                if self.check_tx(entry.raw, entry.tx).code != Code.OK:
                    self._remove(h)
                    self.evicted_total += 1
        self.rechecked_total += checked
