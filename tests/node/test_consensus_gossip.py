"""What a node re-sends when a height is slow, and to whom (consensus_gossip.regossip).

A block is large: re-sent to every peer every half second, a loaded chain whose heights
took longer than that re-sent and re-decoded each block four times over at every node.
The votes go to every peer at this height; the proposal with its block only to the
peers still before the propose step of our round, until the height is stuck for long."""

from __future__ import annotations

from dataclasses import dataclass, field

from appchaind.chain import types
from appchaind.chain.crypto import PrivateKey
from appchaind.consensus.config import Step
from appchaind.node.blocksync import PeerState
from appchaind.node.consensus_gossip import PROPOSAL_TO_ALL_AFTER_S, ConsensusGossip
from appchaind.node.messages import ProposalMessage, RoundStatus, VoteMessage, encode_message

KEY = PrivateKey(b"\x21" * 32)
HEIGHT, ROUND = 7, 1

HEADER = types.Header(
    "chain", HEIGHT, 7000, b"\x00" * 32, b"\x00" * 32, b"\x00" * 32, b"\x00" * 32,
    b"\x00" * 32, b"", KEY.address, b"\x00" * 32,
)  # fmt: skip
BLOCK = types.Block(HEADER, (b"tx-one", b"tx-two"), (), None)
PROPOSAL = types.Proposal(HEIGHT, ROUND, -1, BLOCK.block_id(), 7000, KEY.address, b"\x00" * 64)
PREVOTE = types.Vote(
    types.PREVOTE, HEIGHT, ROUND, BLOCK.block_id(), 7001, KEY.address, 0, b"", b"\x00" * 64, b""
)
VOTE_BYTES = encode_message(VoteMessage(PREVOTE))
PROPOSAL_BYTES = encode_message(ProposalMessage(PROPOSAL, BLOCK))


@dataclass
class _Stats:
    height: int = HEIGHT
    round: int = ROUND
    step: Step = Step.PREVOTE


class _Machine:
    def statistics(self) -> _Stats:
        return _Stats()

    def gossip(self) -> tuple[object, ...]:
        return (PREVOTE, PROPOSAL, BLOCK)


@dataclass
class _Driver:
    machine: _Machine = field(default_factory=_Machine)


@dataclass
class _Peers:
    peers: dict[str, object] = field(default_factory=dict)
    sent: dict[str, list[bytes]] = field(default_factory=dict)

    def send_to(self, node_id: str, channel: int, payload: bytes) -> bool:
        self.sent.setdefault(node_id, []).append(payload)
        return True


@dataclass
class _BlockSync:
    peer_states: dict[str, PeerState] = field(default_factory=dict)


def _gossip(states: dict[str, PeerState | None]) -> tuple[ConsensusGossip, _Peers]:
    peers = _Peers(peers={node_id: object() for node_id in states})
    blocksync = _BlockSync({k: v for k, v in states.items() if v is not None})
    gossip = ConsensusGossip(_Driver(), peers, blocksync, None, "chain")  # type: ignore[arg-type]
    return gossip, peers


def _state(height: int, round: int, step: Step) -> PeerState:
    return PeerState(height=height, round=round, step=int(step))


def test_the_block_goes_only_to_peers_that_have_not_passed_the_propose_step() -> None:
    gossip, peers = _gossip(
        {
            "waiting": _state(HEIGHT, ROUND, Step.PROPOSE),
            "new_height": _state(HEIGHT, 0, Step.NEW_HEIGHT),
            "earlier_round": _state(HEIGHT, ROUND - 1, Step.PRECOMMIT),
            "prevoted": _state(HEIGHT, ROUND, Step.PREVOTE),
            "precommitted": _state(HEIGHT, ROUND, Step.PRECOMMIT),
            "later_round": _state(HEIGHT, ROUND + 1, Step.PROPOSE),
            "ahead": _state(HEIGHT + 1, 0, Step.PROPOSE),
            "behind": _state(HEIGHT - 1, 0, Step.PROPOSE),
            "unknown": None,
        }
    )
    gossip.regossip(stuck_s=1.0)
    got = {node_id: set(payloads) for node_id, payloads in peers.sent.items()}
    both = {VOTE_BYTES, PROPOSAL_BYTES}
    assert got == {
        "waiting": both,
        "new_height": both,
        "earlier_round": both,
        "unknown": both,
        "prevoted": {VOTE_BYTES},
        "precommitted": {VOTE_BYTES},
        "later_round": {VOTE_BYTES},
    }


def test_a_height_stuck_for_long_sends_the_block_to_every_peer_at_it() -> None:
    gossip, peers = _gossip(
        {
            "prevoted": _state(HEIGHT, ROUND, Step.PREVOTE),
            "precommitted": _state(HEIGHT, ROUND, Step.PRECOMMIT),
            "ahead": _state(HEIGHT + 1, 0, Step.PROPOSE),
        }
    )
    gossip.regossip(stuck_s=PROPOSAL_TO_ALL_AFTER_S)
    assert {k: set(v) for k, v in peers.sent.items()} == {
        "prevoted": {VOTE_BYTES, PROPOSAL_BYTES},
        "precommitted": {VOTE_BYTES, PROPOSAL_BYTES},
    }


def test_a_peers_round_status_step_is_kept() -> None:
    from appchaind.node.blocksync import BlockSyncReactor

    reactor = BlockSyncReactor.__new__(BlockSyncReactor)
    reactor.peer_states = {}
    reactor.on_round_status("p", RoundStatus(HEIGHT, ROUND, int(Step.PRECOMMIT), HEIGHT - 1, 1))
    state = reactor.peer_states["p"]
    assert (state.height, state.round, state.step) == (HEIGHT, ROUND, Step.PRECOMMIT)
