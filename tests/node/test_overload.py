"""The block budget: proposals sized by what a tx costs this node, never growing when a
round fails, and the mempool's backlog limit derived from them."""

from __future__ import annotations

from appchaind.node.overload import MIN_BACKLOG_TXS, MIN_PROPOSAL_TXS, BlockBudget


def budget(**kw: int) -> BlockBudget:
    return BlockBudget(
        max_txs=kw.get("max_txs", 10_000),
        budget_ms=kw.get("budget_ms", 300),
        backlog_blocks=kw.get("backlog_blocks", 4),
        backlog_ms=kw.get("backlog_ms", 2_000),
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


def test_the_backlog_is_no_more_than_the_chain_commits_in_backlog_ms() -> None:
    """The proposals' cost counts only checking and executing a block; the chain commits
    at whatever its slowest part allows. Beyond ``backlog_ms`` of that rate a client's tx
    would wait longer than asked, so the backlog is capped there (never below the floor)."""
    b = budget(backlog_blocks=4, backlog_ms=2_000)
    b.observe_block(1_000, 0.1)  # cheap to execute: 3,000 per proposal, 12,000 by blocks
    assert b.commit_rate() is None and b.backlog_limit(50_000) == 12_000
    b.observe_interval(1.0, 1_500)  # but 1,500 txs a second committed
    assert b.commit_rate() == 1_500
    assert b.backlog_limit(50_000) == 3_000  # 2 s of it
    for _ in range(40):  # the chain slows to 200 txs a second: the limit follows to the floor
        b.observe_interval(1.0, 200)
    assert 199 < (b.commit_rate() or 0) < 201
    assert b.backlog_limit(50_000) == MIN_BACKLOG_TXS
    for _ in range(40):  # and rises again with the rate, up to what the blocks allow
        b.observe_interval(0.2, 3_000)
    assert b.backlog_limit(50_000) == 12_000


def test_under_load_the_backlog_grows_from_the_floor_to_the_chains_rate() -> None:
    """A quiet chain has a commit rate near zero, so its backlog limit is the floor; when
    load comes, each block takes the whole backlog in about one block interval, which is
    shorter than backlog_ms, so the measured rate and the limit grow block by block until
    the chain's capacity (here 4,000 txs/s: a block of n txs takes n / 4,000 s, at least
    0.2 s) bounds them, at backlog_ms of that capacity."""
    b = budget(backlog_blocks=4, backlog_ms=2_000)
    b.observe_block(1_000, 0.01)  # 30,000 per proposal by cost; the chain allows 10,000
    for _ in range(10):
        b.observe_interval(0.2, 0)  # quiet
    limit = b.backlog_limit(50_000)
    assert limit == MIN_BACKLOG_TXS
    for _ in range(60):
        block = min(limit, b.proposal_txs())
        b.observe_interval(max(0.2, block / 4_000), block)
        limit = b.backlog_limit(50_000)
    assert 7_000 < limit <= 8_000  # about 2 s of 4,000 txs/s
