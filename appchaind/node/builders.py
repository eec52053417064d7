"""The node's builder channel: builders' bids in from p2p, and this validator's turn to
propose decided by the :class:`~appchaind.node.auction.Auction`, with its metrics and log.

A builder is a p2p peer that sends :class:`~appchaind.node.messages.BidMessage` on
``Channel.BUILDER``. A bid tx that does not decode drops the peer (as any malformed
message); a bid refused on arrival is counted by reason. At our turn the best bid that
holds against the exchange's own check (the one every validator makes in
``process_proposal``) becomes the block, or our own block does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from appchaind.chain import codec, crypto, types
from appchaind.chain.units import QUOTE_MICRO
from appchaind.consensus.effects import RequestPrepareProposal
from appchaind.consensus.events import ProposalPrepared
from appchaind.exchange.app import ExchangeApp
from appchaind.node.auction import Auction, BidBook, reason_label
from appchaind.node.interface import ConsensusDriver
from appchaind.node.messages import BidMessage
from appchaind.telemetry.logs import get_logger
from appchaind.telemetry.metrics import NodeMetrics

__all__ = ["BuilderReactor"]

log = get_logger("pbs")


class BuilderReactor:
    """Bids for ``proposer``'s (this validator's) blocks on the ``exchange`` chain.
    ``verify(raws)``: every tx well signed; ``proposer_of_round(r)``: the proposer of
    round ``r`` at the current height."""

    def __init__(
        self,
        driver: ConsensusDriver,
        exchange: ExchangeApp,
        proposer: bytes,
        deadline_s: float,
        metrics: NodeMetrics,
        verify: Callable[[Sequence[bytes]], Awaitable[bool]],
        proposer_of_round: Callable[[int], bytes],
    ) -> None:
        self.driver = driver
        self.exchange = exchange
        self.proposer = proposer
        self.metrics = metrics
        self.proposer_of_round = proposer_of_round
        self.auction = Auction(
            BidBook(proposer, self._can_bid), deadline_s, self._able_to_bid, verify, self._problem
        )

    def _can_bid(self, address: bytes) -> bool:
        builder = self.exchange.builders.get(address)
        return builder is not None and builder.bond >= self.exchange.params.min_builder_bid

    def _able_to_bid(self) -> set[bytes]:
        return {a for a in self.exchange.builders if self._can_bid(a)}

    def _problem(self, txs: Sequence[bytes], height: int, time_ms: int) -> str | None:
        return self.exchange.builder_block_problem(
            txs, height, time_ms, self.proposer, self.proposer_of_round
        )

    def on_bid(self, message: BidMessage) -> None:
        """Bids from a peer (raises CodecError for a bid tx that does not decode). The
        bids for other proposers are expected (a builder sends each block's bids for
        every proposer at once) and not counted as refused."""
        bids = [codec.decode(types.Tx, raw) for raw in message.bids]
        machine = self.driver.machine
        self.auction.book.enter(self.driver.chain_state.height, machine.round if machine else 0)
        m = self.metrics
        for tx, raw in zip(bids, message.bids, strict=True):
            reason = self.auction.offer(tx, raw, message.txs)
            if reason is None:
                builder = crypto.address_of(tx.sender).hex()
                m.pbs_bids.labels(chain_id=m.chain_id, builder=builder).inc()
                m.observe(m.pbs_bid_arrival_seconds, _since(self.driver.height_entered_at))
            elif reason != "other_proposer":
                m.pbs_refused_bids.labels(chain_id=m.chain_id, reason=reason).inc()

    def proposal_rejected(self, reason: str) -> None:
        """Another proposer's block we rejected in process_proposal."""
        m = self.metrics
        m.pbs_rejected_proposals.labels(chain_id=m.chain_id, reason=reason_label(reason)).inc()

    async def propose(
        self,
        effect: RequestPrepareProposal,
        local: Callable[[], Sequence[bytes]],
        max_txs: int | None = None,
    ) -> None:
        """Our turn: the best bid that holds (of at most ``max_txs`` txs), else
        ``local()``; handed to the machine."""
        outcome = await self.auction.choose(
            effect.height, effect.round, effect.time_ms, local, max_txs
        )
        m = self.metrics
        for reason in outcome.rejected:
            m.pbs_rejected_bids.labels(chain_id=m.chain_id, reason=reason_label(reason)).inc()
        winner = outcome.winner
        if winner is not None:
            m.set(m.pbs_winning_bid_value, winner.value / QUOTE_MICRO)
        else:
            m.pbs_local_fallback.labels(chain_id=m.chain_id, reason=outcome.fallback).inc()
        m.observe(m.pbs_auction_wait_seconds, outcome.waited_s)
        log.info(
            "proposal_built",
            height=effect.height,
            round=effect.round,
            builder=winner.builder.hex() if winner else "local",
            value=winner.value if winner else 0,
            fallback=outcome.fallback,
            rejected=list(outcome.rejected),
            waited_ms=round(outcome.waited_s * 1000),
        )
        self.driver.queue(ProposalPrepared(effect.height, effect.round, outcome.txs))


def _since(monotonic_start: float) -> float:
    return time.monotonic() - monotonic_start
