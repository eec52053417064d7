"""Block sync: serving committed blocks to peers, and fetching the ones this node lacks.

Each peer reports its latest height in its round status. More than ``SYNC_LAG`` heights
behind the best of them, the node switches to sync mode (the driver rebuilds its machine
without a signer: it catches up without voting) and requests a window of heights spread
over the peers that have them; one height behind or less, it switches back. A fetched
block and its commit are fed to the machine as the block and the commit's precommits, so
a synced block is decided by the same rules as any other (its commit must verify).

A peer that answers for a height it was not asked, or with a commit for another block, or
that claims a height and then does not serve it, is dropped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import trio

from appchaind.chain import types
from appchaind.consensus.events import BlockReceived, VoteReceived
from appchaind.node.interface import ConsensusDriver
from appchaind.node.messages import (
    BlockRequest,
    BlockResponse,
    NoBlockResponse,
    RoundStatus,
    encode_message,
)
from appchaind.store import Store
from appchaind.telemetry.logs import get_logger
from appchaind.telemetry.metrics import NodeMetrics
from p2p.peers import Channel, Peer, PeerManager, PeerMisbehaved

__all__ = ["BlockSyncReactor", "PeerState", "SYNC_LAG"]

log = get_logger("blocksync")

#: Behind by more than this many heights, the node syncs without voting.
SYNC_LAG = 3
#: Heights requested ahead at once during block sync.
SYNC_WINDOW = 64
#: A block request unanswered for this long is sent to another peer.
SYNC_REQUEST_TIMEOUT_S = 2.0
#: In consensus mode one height behind, the next height is fetched only after this long
#: at one height (two or more behind, at once).
FETCH_AFTER_S = 1.0
SYNC_INTERVAL_S = 0.05


@dataclass(slots=True)
class PeerState:
    """What a peer last reported: its consensus height, round and step, its latest block."""

    height: int = 0
    round: int = 0
    step: int = 0
    latest_height: int = 0
    base: int = 0


class BlockSyncReactor:
    """The block sync channel of one node."""

    def __init__(
        self,
        driver: ConsensusDriver,
        peers: PeerManager,
        store: Store,
        metrics: NodeMetrics,
    ) -> None:
        self.driver = driver
        self.peers = peers
        self.store = store
        self.metrics = metrics
        self.peer_states: dict[str, PeerState] = {}
        #: True while the node catches up without voting.
        self.syncing = False
        self.blocks_synced = 0
        #: height -> (peer asked, when; -inf once the request is to be re-sent elsewhere)
        self._requested: dict[int, tuple[str, float]] = {}
        self._blocks: dict[int, tuple[types.Block, types.Commit]] = {}
        #: heights whose synced block and commit were fed to the machine, and when
        self._fed_heights: dict[int, float] = {}

    # ------------------------------------------------------------------ peers

    def on_round_status(self, peer_id: str, status: RoundStatus) -> None:
        state = self.peer_states.setdefault(peer_id, PeerState())
        state.height, state.round, state.step = status.height, status.round, status.step
        state.latest_height, state.base = status.latest_height, status.base

    def forget(self, peer_id: str) -> None:
        """``peer_id`` disconnected: what it was asked and had not answered is asked again
        (of it too, once it is back: it lost the requests with the connection, it did not
        refuse them)."""
        self.peer_states.pop(peer_id, None)
        for height, (asked, _when) in self._requested.items():
            if asked == peer_id:
                self._requested[height] = (asked, -math.inf)

    def on_message(self, peer: Peer, message: object) -> None:
        """A block sync message from ``peer``; raises PeerMisbehaved for a bad one."""
        if isinstance(message, BlockRequest):
            block = self.store.block(message.height)
            commit = self.store.commit(message.height)
            if block is None or commit is None:
                reply: object = NoBlockResponse(message.height)
            else:
                reply = BlockResponse(block, commit)
            peer.send(Channel.BLOCKSYNC, encode_message(reply))
        elif isinstance(message, BlockResponse):
            height = message.block.header.height
            if (
                message.commit.height != height
                or message.commit.block_hash != message.block.block_id()
            ):
                raise PeerMisbehaved(
                    f"block sync response for height {height} with a mismatched commit"
                )
            requested = self._requested.get(height)
            if requested is None or requested[0] != peer.node_id:
                return  # not asked of this peer (or asked again elsewhere): not kept
            if height > self.driver.latest_height and height not in self._blocks:
                self._blocks[height] = (message.block, message.commit)
                self.feed()
        elif isinstance(message, NoBlockResponse):
            claimed = self.peer_states.get(peer.node_id)
            if claimed is not None and message.height <= claimed.latest_height:
                raise PeerMisbehaved(
                    f"claimed height {claimed.latest_height} but has no block {message.height}"
                )
            self._requested.pop(message.height, None)

    # ------------------------------------------------------------------ the driver's side

    def feed(self) -> None:
        """Gives the machine the block and commit of its current height, if we have them."""
        height = self.driver.chain_state.height
        entry = self._blocks.get(height)
        if entry is None or height in self._fed_heights:
            return
        self._fed_heights[height] = time.monotonic()
        block, commit = entry
        self.driver.queue(BlockReceived(block))
        for index, sig in enumerate(commit.signatures):
            if sig.flag == types.COMMIT_BLOCK:
                self.driver.queue(
                    VoteReceived(sig.to_vote(commit.height, commit.round, commit.block_hash, index))
                )

    def restart_feeding(self) -> None:
        """A fresh machine was built: what the old one was fed must be fed again."""
        self._fed_heights.clear()

    def committed(self, height: int) -> None:
        """``height`` was committed (synced or decided in consensus)."""
        if self._blocks.pop(height, None) is not None and self.syncing:
            self.blocks_synced += 1
            self.metrics.inc(self.metrics.blocksync_blocks)
        self._requested.pop(height, None)
        self.feed()
        if self.syncing:
            # The window slides with each block, not only at the next tick: one request
            # round per SYNC_INTERVAL_S capped sync at SYNC_WINDOW / SYNC_INTERVAL_S blocks/s.
            self.step()

    # ------------------------------------------------------------------ fetching

    async def run(self) -> None:
        while True:
            await trio.sleep(SYNC_INTERVAL_S)
            self.step()

    def step(self) -> None:
        """Switches mode when far behind or caught up, and requests missing heights."""
        ours = self.driver.latest_height
        best = max((s.latest_height for s in self.peer_states.values()), default=0)
        behind = best - ours
        if behind > SYNC_LAG and not self.syncing:
            self.syncing = True
            self.driver.request_mode(True, best)
        elif behind <= 1 and self.syncing:
            self.syncing = False
            self.driver.request_mode(False, best)
        if behind <= 0:
            return
        self._fed_heights = {h: t for h, t in self._fed_heights.items() if h > ours}
        now = time.monotonic()
        # A height the machine was fed but did not decide (e.g. its commit did not verify):
        # drop that response and fetch the height again, from another peer.
        fed_at = self._fed_heights.get(ours + 1)
        if fed_at is not None and now - fed_at > SYNC_REQUEST_TIMEOUT_S:
            del self._fed_heights[ours + 1]
            self._blocks.pop(ours + 1, None)
            requested = self._requested.get(ours + 1)
            if requested is not None:
                self._requested[ours + 1] = (requested[0], -math.inf)
        candidates = sorted(
            (node_id for node_id, s in self.peer_states.items() if s.latest_height > ours),
        )
        if not candidates:
            return
        # Only the immediately next height while in consensus (peers may just be a step
        # ahead); a window of heights, spread over peers, while syncing.
        window = SYNC_WINDOW if self.syncing else 1
        # One height behind, the peers may only be a step ahead: their proposal and votes
        # may yet come, so the block is fetched after FETCH_AFTER_S. Two or more behind
        # (short of sync mode), the peers' consensus messages skip this node (they go only
        # to peers at most a height behind): the next block is fetched at once.
        if not self.syncing and behind <= 1 and now - self.driver.height_entered_at < FETCH_AFTER_S:
            return
        for i, height in enumerate(range(ours + 1, min(best, ours + window) + 1)):
            if height in self._blocks:
                continue
            requested = self._requested.get(height)
            if requested is not None and now - requested[1] < SYNC_REQUEST_TIMEOUT_S:
                continue
            if requested is not None and requested[1] != -math.inf:
                # The peer claimed this height and did not deliver it in time: a peer that
                # claims heights it does not serve would otherwise keep us syncing (and not
                # voting) for as long as it stays connected.
                silent = self.peers.peers.get(requested[0])
                if silent is not None:
                    silent.close(f"did not answer the block request for height {height}")
                self.forget(requested[0])  # blamed once: not again when it reconnects
                candidates = [c for c in candidates if c != requested[0]]
            able = [c for c in candidates if self.peer_states[c].latest_height >= height]
            if not able:
                continue
            previous = requested[0] if requested else None
            choices = [c for c in able if c != previous] or able
            node_id = choices[i % len(choices)]
            if self.peers.send_to(node_id, Channel.BLOCKSYNC, encode_message(BlockRequest(height))):
                self._requested[height] = (node_id, now)
