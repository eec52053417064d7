"""How much this node takes on: the size of its proposals and of its mempool's backlog.

Offered more orders than the chain can commit, a node must neither propose blocks that
the validators cannot check and execute within a round (a round fails, the next
proposal is bigger still, and the chain stops) nor accept txs it cannot commit for
minutes. :class:`BlockBudget` measures what a tx costs this node (checking a proposal and
executing the block, wall-clock, so a busy machine counts as a slow one) and derives:

* :meth:`BlockBudget.proposal_txs`: the txs of a proposal, so that its work fits
  ``[mempool] block_budget_ms``; halved in each later round of a height, so a round
  that failed on a proposal too big is followed by a smaller one, never a bigger one;
* :meth:`BlockBudget.backlog_limit`: ``[mempool] backlog_blocks`` proposals' worth of
  waiting txs, and no more than the chain commits in ``[mempool] backlog_ms`` at the rate
  it has been committing (the proposals' cost counts only checking and executing a block,
  while the chain's rate is whatever its slowest part allows: gossip, signature checks,
  consensus); beyond it the mempool refuses new txs as BUSY (retryable), which costs a
  hash and a lookup, not a decoding nor a signature check. So an accepted tx waits about
  ``backlog_ms`` at most, and once an overload stops the backlog is gone that soon;
* :meth:`BlockBudget.retry_after_ms`: the delay a busy refusal suggests, about one block
  interval.

None of this is replicated state: each node sizes its own proposals and admission;
every validator still checks any proposal against the chain's limits.
"""

from __future__ import annotations

__all__ = ["BlockBudget"]

#: A proposal never shrinks below this many txs (a small block is always cheap).
MIN_PROPOSAL_TXS = 500
#: The backlog limit never falls below this many txs (room for a burst on a quiet chain,
#: whose commit rate says nothing of what it can take), unless the chain's blocks are so
#: small that ``backlog_blocks`` full blocks hold fewer. Under load the limit follows the
#: commit rate up from here: a block takes the backlog in one block interval, so the rate
#: measured is at least this floor per interval, and ``backlog_ms`` of it is more.
MIN_BACKLOG_TXS = 1_000
#: Blocks with fewer txs than this say little about the cost of one tx.
MIN_SAMPLE_TXS = 50
#: Weight of the newest block in the moving averages.
ALPHA = 0.3


class BlockBudget:
    """What this node proposes and admits, from what its recent blocks cost it."""

    def __init__(
        self, *, max_txs: int, budget_ms: int, backlog_blocks: int, backlog_ms: int = 2_000
    ) -> None:
        self.max_txs = max_txs
        self.budget_s = budget_ms / 1000
        self.backlog_blocks = backlog_blocks
        self.backlog_s = backlog_ms / 1000
        #: Moving average of the seconds one tx costs (check + execute); None until measured.
        self.tx_cost_s: float | None = None
        #: Moving average of the time between commits, in seconds.
        self.block_interval_s: float | None = None
        #: Moving average of the txs of a committed block (empty ones count).
        self.block_txs: float | None = None

    def observe_block(self, txs: int, seconds: float) -> None:
        """A committed block of ``txs`` txs cost this node ``seconds`` of work."""
        if txs < MIN_SAMPLE_TXS:
            return
        cost = seconds / txs
        self.tx_cost_s = cost if self.tx_cost_s is None else (
            ALPHA * cost + (1 - ALPHA) * self.tx_cost_s
        )  # fmt: skip

    def observe_interval(self, seconds: float, txs: int = 0) -> None:
        """A block of ``txs`` txs committed ``seconds`` after the previous one."""
        if seconds <= 0:
            return
        last = self.block_interval_s
        self.block_interval_s = seconds if last is None else ALPHA * seconds + (1 - ALPHA) * last
        held = self.block_txs
        self.block_txs = txs if held is None else ALPHA * txs + (1 - ALPHA) * held

    def commit_rate(self) -> float | None:
        """Txs per second the chain has been committing (moving averages of the txs per
        block and of the block interval); None until a block interval is seen."""
        if self.block_interval_s is None or self.block_txs is None:
            return None
        return self.block_txs / self.block_interval_s

    def proposal_txs(self, at_round: int = 0) -> int:
        """Txs to put in a proposal at round ``at_round`` of a height at most."""
        if self.tx_cost_s is None or self.tx_cost_s <= 0:
            fits = self.max_txs
        else:
            fits = round(self.budget_s / self.tx_cost_s)
        size = min(self.max_txs, max(MIN_PROPOSAL_TXS, fits))
        return max(min(MIN_PROPOSAL_TXS, self.max_txs), size >> min(at_round, 8))

    def backlog_limit(self, hard_limit: int) -> int:
        """Txs waiting beyond which new ones are refused as busy (at most ``hard_limit``)."""
        floor = min(MIN_BACKLOG_TXS, self.backlog_blocks * self.max_txs)
        limit = self.backlog_blocks * self.proposal_txs()
        rate = self.commit_rate()
        if rate is not None:
            limit = min(limit, int(rate * self.backlog_s))
        return min(hard_limit, max(floor, limit))

    def retry_after_ms(self) -> int:
        """The delay a busy refusal suggests: about one block interval."""
        interval = self.block_interval_s if self.block_interval_s is not None else 0.5
        return max(100, min(5_000, int(interval * 1000)))
