"""The proposer's side of proposer-builder separation: the bids builders send for this
validator's blocks, kept until its turn to propose (:class:`BidBook`, sans-I/O), and the
choice of the block when that turn comes (:class:`Auction`, which waits for bids).

A builder sends :class:`~appchaind.node.messages.BidMessage` on the p2p builder channel:
a signed :class:`~appchaind.exchange.txs.BuilderBid` tx and the txs of its block. The
book keeps, per (height, round), the best bid of each builder (a second bid of the same
builder for the same round replaces the first only if it is worth more) and at most
``max_per_round`` builders (the lowest bid goes when a better one comes). It refuses
at once what can be refused cheaply: not a bid, a bid for another proposer, a height
other than the current one or the next (a builder following a faster node bids for
the next height before this node has committed the current one), a round too far
ahead, from an account that is not a registered builder, or (checked last, one
signature) not signed by that builder: a forged bid must never displace a builder's
real one. What is costly (the block's signatures, the bond, the txs hash) is checked
by the node, best bid first, only when it proposes: :meth:`candidates`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import trio

from appchaind.chain.crypto import address_of
from appchaind.chain.types import Tx
from appchaind.exchange.txs import BuilderBid

__all__ = ["Bid", "BidBook", "Auction", "Outcome", "MAX_ROUNDS_AHEAD", "reason_label"]

#: Bids are kept for the current round and this many rounds after it.
MAX_ROUNDS_AHEAD = 2


@dataclass(frozen=True, slots=True)
class Bid:
    """A bid as received: ``value`` in micro-units; ``raw`` the bid tx's canonical bytes,
    ``txs`` the builder's block after it."""

    builder: bytes
    height: int
    round: int
    value: int
    raw: bytes
    txs: tuple[bytes, ...]


class BidBook:
    """Bids for the blocks ``proposer`` (this validator's address) builds.
    ``is_builder(address)`` says whether an address is a registered builder now."""

    def __init__(
        self, proposer: bytes, is_builder: Callable[[bytes], bool], max_per_round: int = 8
    ) -> None:
        self.proposer = proposer
        self.is_builder = is_builder
        self.max_per_round = max_per_round
        self.height = 0
        self.round = 0
        self._bids: dict[tuple[int, int], dict[bytes, Bid]] = {}
        #: Builders whose bid for (height, round) was kept, even if a better one of
        #: another builder has since pushed it out of the book.
        self._bidders: dict[tuple[int, int], set[bytes]] = {}
        #: Bids refused at once, by reason (for metrics and tests).
        self.refused: dict[str, int] = {}

    def enter(self, height: int, round: int) -> None:
        """The node is at (``height``, ``round``): bids of earlier heights and rounds go."""
        self.height, self.round = height, round
        for key in [k for k in self._bids if k < (height, round)]:
            del self._bids[key]
            del self._bidders[key]

    def offer(self, tx: Tx, raw: bytes, txs: tuple[bytes, ...]) -> str | None:
        """Keep the bid ``tx`` (canonical bytes ``raw``) for the block ``txs``; or why
        not (``refused`` counts the reason)."""
        reason = self._problem(tx)
        if reason is not None:
            self.refused[reason] = self.refused.get(reason, 0) + 1
            return reason
        body = tx.body
        assert isinstance(body, BuilderBid)
        builder = address_of(tx.sender)
        key = (body.height, body.round)
        bids = self._bids.setdefault(key, {})
        self._bidders.setdefault(key, set()).add(builder)
        previous = bids.get(builder)
        if previous is not None and previous.value >= body.value:
            return None
        bids[builder] = Bid(builder, body.height, body.round, body.value, raw, txs)
        if len(bids) > self.max_per_round:
            lowest = min(bids.values(), key=lambda b: (b.value, b.builder))
            del bids[lowest.builder]
        return None

    def _problem(self, tx: Tx) -> str | None:
        body = tx.body
        if not isinstance(body, BuilderBid):
            return "not_a_bid"
        if body.proposer != self.proposer:
            return "other_proposer"
        if body.height == self.height:
            first_round = self.round
        elif body.height == self.height + 1:
            first_round = 0
        else:
            return "other_height"
        if not first_round <= body.round <= first_round + MAX_ROUNDS_AHEAD:
            return "other_round"
        if not self.is_builder(address_of(tx.sender)):
            return "not_a_builder"
        if not tx.verify_signature():
            return "bad_signature"
        return None

    def candidates(self, height: int, round: int) -> list[Bid]:
        """The bids for (height, round), best first (value, then builder address)."""
        bids = self._bids.get((height, round), {})
        return sorted(bids.values(), key=lambda b: (-b.value, b.builder))

    def builders_bid(self, height: int, round: int) -> set[bytes]:
        """The builders that have bid for (height, round) (kept in the book or not)."""
        return set(self._bidders.get((height, round), ()))


@dataclass(frozen=True, slots=True)
class Outcome:
    """The block the auction chose: ``txs`` (a bid first when ``winner`` is set), or the
    local block and why no bid won (``fallback``: "no_bid", "invalid_bid")."""

    txs: tuple[bytes, ...]
    winner: Bid | None
    fallback: str
    #: Bids refused at proposal time, by reason ("bad_signature", "over_budget" or the
    #: check's message).
    rejected: tuple[str, ...]
    waited_s: float


class Auction:
    """The proposer's auction for one node: bids arrive by :meth:`offer` (from the p2p
    builder channel); at its turn :meth:`choose` waits until every registered builder
    able to bid has bid for the round or ``deadline_s`` passed (not at all when no
    builder can bid), then takes the best bid that holds, else the local block.

    ``eligible()``: addresses of the builders able to bid now (registered, bond at least
    the minimum bid). ``verify(raws)``: True when every tx's signature is good.
    ``problem(txs, height, time_ms)``: why ``txs`` cannot be this proposer's block (the
    application's check every validator will make), or None."""

    def __init__(
        self,
        book: BidBook,
        deadline_s: float,
        eligible: Callable[[], set[bytes]],
        verify: Callable[[Sequence[bytes]], Awaitable[bool]],
        problem: Callable[[Sequence[bytes], int, int], str | None],
    ) -> None:
        self.book = book
        self.deadline_s = deadline_s
        self.eligible = eligible
        self.verify = verify
        self.problem = problem
        self._arrived = trio.Event()

    def offer(self, tx: Tx, raw: bytes, txs: tuple[bytes, ...]) -> str | None:
        """A bid from the builder channel: kept (None) or why not."""
        reason = self.book.offer(tx, raw, txs)
        if reason is None:
            self._arrived.set()
        return reason

    async def choose(
        self,
        height: int,
        round: int,
        time_ms: int,
        local: Callable[[], Sequence[bytes]],
        max_txs: int | None = None,
    ) -> Outcome:
        """The block for (``height``, ``round``) at BFT time ``time_ms``: the best bid that
        holds and, bid included, has at most ``max_txs`` txs (the proposal size this node
        can check and execute in its block budget, as for its own blocks), or
        ``local()``."""
        started = trio.current_time()
        self.book.enter(height, round)
        eligible = self.eligible()
        if eligible:
            with trio.move_on_after(self.deadline_s):
                while not eligible <= self.book.builders_bid(height, round):
                    self._arrived = trio.Event()
                    await self._arrived.wait()
        waited = trio.current_time() - started
        rejected: list[str] = []
        candidates = self.book.candidates(height, round)
        for bid in candidates:
            txs = (bid.raw, *bid.txs)
            if max_txs is not None and len(txs) > max_txs:
                rejected.append("over_budget")
                continue
            if not await self.verify(txs):
                rejected.append("bad_signature")
                continue
            reason = self.problem(txs, height, time_ms)
            if reason is not None:
                rejected.append(reason)
                continue
            return Outcome(txs, bid, "", tuple(rejected), waited)
        fallback = "invalid_bid" if candidates else "no_bid"
        return Outcome(tuple(local()), None, fallback, tuple(rejected), waited)


def reason_label(reason: str) -> str:
    """A metric label for why a bid or a builder's block was refused (a few fixed values:
    the messages themselves name amounts and addresses)."""
    if reason in ("bad_signature", "over_budget"):
        return reason
    if reason.startswith("builder bid: "):
        return "bid_does_not_hold"
    if reason.startswith("tx "):
        return "bad_tx"
    return "over_limits"
