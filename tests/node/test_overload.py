"""The block budget: proposals sized by what a tx costs this node, never growing when a
round fails, and the mempool's backlog limit derived from them."""

from __future__ import annotations

from appchaind.node.overload import MIN_BACKLOG_TXS, MIN_PROPOSAL_TXS, BlockBudget


def budget(**kw: int) -> BlockBudget:
    return BlockBudget(
        max_txs=kw.get("max_txs", 10_000),
        budget_ms=kw.get("budget_ms", 300),
        backlog_blocks=kw.get("backlog_blocks", 4),
    )


def test_until_measured_a_proposal_may_be_as_large_as_the_chain_allows() -> None:
    b = budget()
    assert b.proposal_txs() == 10_000
    b.observe_block(10, 5.0)  # too few txs to say what one costs
    assert b.proposal_txs() == 10_000 and b.tx_cost_s is None


def test_a_proposal_fits_the_budget_at_the_measured_cost() -> None:
    b = budget(budget_ms=300)
    b.observe_block(1_000, 0.2)  # 200 us per tx: 1,500 txs fit in 300 ms
    assert b.proposal_txs() == 1_500
    b.observe_block(1_000, 1.0)  # slower now (1 ms per tx): the average moves toward it
    assert b.tx_cost_s is not None and 0.0002 < b.tx_cost_s < 0.001
    assert MIN_PROPOSAL_TXS <= b.proposal_txs() < 1_500


def test_later_rounds_propose_less_never_more() -> None:
    b = budget(budget_ms=300)
    b.observe_block(1_000, 0.1)  # 3,000 fit
    sizes = [b.proposal_txs(r) for r in range(6)]
    assert sizes[0] == 3_000 and sizes[1] == 1_500 and sizes[2] == 750
    assert all(a >= c for a, c in zip(sizes, sizes[1:], strict=False))
    assert min(sizes) == MIN_PROPOSAL_TXS


def test_limits_hold_at_both_ends() -> None:
    fast = budget(max_txs=2_000)
    fast.observe_block(1_000, 0.001)
    assert fast.proposal_txs() == 2_000  # never above the chain's limit
    slow = budget()
    slow.observe_block(1_000, 100.0)
    assert slow.proposal_txs() == MIN_PROPOSAL_TXS  # a small block is always proposed
    tiny = budget(max_txs=10)
    assert tiny.proposal_txs(5) == 10


def test_the_backlog_is_a_few_proposals_and_the_retry_delay_a_block_interval() -> None:
    b = budget(backlog_blocks=4)
    b.observe_block(1_000, 0.1)  # 3,000 per proposal
    assert b.backlog_limit(50_000) == 12_000
    assert b.backlog_limit(5_000) == 5_000  # never above the mempool's hard limit
    slow = budget(backlog_blocks=1)
    slow.observe_block(1_000, 100.0)
    assert slow.backlog_limit(50_000) == MIN_BACKLOG_TXS
    assert b.retry_after_ms() == 500  # no interval seen yet
    b.observe_interval(0.8)
    assert b.retry_after_ms() == 800
    b.observe_interval(60.0)
    assert b.retry_after_ms() == 5_000  # capped: a client retries within seconds
