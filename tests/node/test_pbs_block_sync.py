"""A builder's block decided in a later round reaches every node's machine, whatever
the order its block and votes arrive in (issue 15): the node's answer to
process_proposal is the same whenever it is asked."""

from __future__ import annotations

from types import SimpleNamespace

from appchaind.consensus.effects import Decide, Effect, RequestProcessProposal
from appchaind.consensus.events import BlockReceived, Event, ProposalProcessed
from appchaind.consensus.machine import ConsensusMachine
from appchaind.consensus.sim.keys import FakeVerifier
from appchaind.node.node import Node
from tests.consensus.harness import Chain, Driver, config, of_type

# ------------------------------------------------------------------ process_proposal timing


class _NodeLikeDriver(Driver):
    """Answers RequestProcessProposal as Node._process_proposal does for a builder-built
    block whose bid names round 1 and the block's proposer (ExchangeApp's check,
    tests/exchange/test_builder_bids.py): valid iff Node._proposer_of_round(1), asked at
    the time of the request, is the block's proposer."""

    def __init__(self, machine: ConsensusMachine, chain: Chain) -> None:
        super().__init__(machine)
        self.node = SimpleNamespace(_machine=machine, chain_state=chain.state)

    def _answer(self, effect: Effect) -> Event | None:
        if isinstance(effect, RequestProcessProposal):
            block = effect.block
            bid_round = 1
            holds = Node._proposer_of_round(self.node, bid_round) == block.header.proposer  # type: ignore[arg-type]
            return ProposalProcessed(block.header.height, block.block_id(), holds)
        return super()._answer(effect)


def _synced_block(chain: Chain):  # type: ignore[no-untyped-def]
    """The block decided in round 1 of height 1 (a builder's block for round 1's proposer)
    and the 2f+1 precommits of its commit."""
    block = chain.block((b"bid", b"a=1"), proposer=chain.proposer(1))
    precommits = [chain.precommit(i, 1, block.block_id()) for i in range(3)]
    return block, precommits


def test_block_sync_decides_a_block_committed_in_round_1_fed_block_first() -> None:
    """BlockSyncReactor.feed queues BlockReceived(block) and then the commit's precommits:
    the syncing node's machine is at round 0 when it asks for process_proposal, and
    keeps that verdict for the height. The node's answer must be the one it gives in
    round 1 (once it answered "not a round reached", and the 2f+1 precommits of round 1
    never decided the block: the node was stuck on this height)."""
    chain = Chain()
    block, precommits = _synced_block(chain)

    votes_first = _NodeLikeDriver(
        ConsensusMachine(config(), chain.state, None, FakeVerifier()), chain
    )
    votes_first.start()
    effects = votes_first.feed(*precommits, BlockReceived(block))
    assert of_type(effects, Decide), "control: fed votes first, the block is decided"

    as_block_sync = _NodeLikeDriver(
        ConsensusMachine(config(), chain.state, None, FakeVerifier()), chain
    )
    as_block_sync.start()
    effects = as_block_sync.feed(BlockReceived(block), *precommits)
    assert of_type(effects, Decide), "fed as block sync feeds it, the block is never decided"
