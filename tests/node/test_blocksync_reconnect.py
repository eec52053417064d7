"""Block sync after a peer's connection drops: the requests lost with the connection are
asked again, of the same peer once it is back, and the peer is not dropped for them
(a syncing node whose only peer once dropped it for being slow stayed at the height it
had reached, dropping the peer at every reconnect for "not answering"); and a node a few
heights behind, short of sync mode, fetching its next block at once."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from appchaind.node import blocksync
from appchaind.node.blocksync import BlockSyncReactor
from appchaind.node.messages import BLOCKSYNC_MESSAGES, RoundStatus, decode_message


@dataclass
class _Driver:
    latest_height: int = 0
    height_entered_at: float = 0.0
    modes: list[bool] = field(default_factory=list)

    def request_mode(self, syncing: bool, best: int) -> None:
        self.modes.append(syncing)


@dataclass
class _Peer:
    closed: list[str] = field(default_factory=list)

    def close(self, reason: str) -> None:
        self.closed.append(reason)


@dataclass
class _Peers:
    peers: dict[str, _Peer] = field(default_factory=dict)
    sent: list[tuple[str, int]] = field(default_factory=list)

    def send_to(self, node_id: str, channel: int, payload: bytes) -> bool:
        if node_id not in self.peers:
            return False
        self.sent.append((node_id, decode_message(BLOCKSYNC_MESSAGES, payload, 1 << 20).height))
        return True


def _reactor() -> tuple[BlockSyncReactor, _Peers]:
    peers = _Peers()
    reactor = BlockSyncReactor(_Driver(), peers, store=None, metrics=None)  # type: ignore[arg-type]
    return reactor, peers


def _status(latest: int) -> RoundStatus:
    return RoundStatus(latest + 1, 0, 0, latest, 1)


def test_requests_lost_with_a_dropped_connection_are_asked_again_without_blame(
    monkeypatch: Any,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(blocksync.time, "monotonic", lambda: clock[0])
    reactor, peers = _reactor()
    peers.peers["v"] = _Peer()
    reactor.on_round_status("v", _status(1_000))
    reactor.step()
    asked = [h for _, h in peers.sent]
    assert asked == list(range(1, blocksync.SYNC_WINDOW + 1))
    # The connection drops (the peer's send queue overflowed) and comes back later.
    dropped = peers.peers.pop("v")
    reactor.forget("v")
    clock[0] += 10 * blocksync.SYNC_REQUEST_TIMEOUT_S
    peers.peers["v"] = back = _Peer()
    reactor.on_round_status("v", _status(1_000))
    peers.sent.clear()
    reactor.step()
    assert back.closed == [] and dropped.closed == []
    assert [h for _, h in peers.sent] == asked  # every lost request asked again, of it


def test_a_peer_that_does_not_answer_is_dropped_once_and_asked_again_when_back(
    monkeypatch: Any,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(blocksync.time, "monotonic", lambda: clock[0])
    reactor, peers = _reactor()
    peers.peers["v"] = silent = _Peer()
    reactor.on_round_status("v", _status(10))
    reactor.step()
    clock[0] += blocksync.SYNC_REQUEST_TIMEOUT_S + 1
    reactor.step()
    assert silent.closed == ["did not answer the block request for height 1"]
    peers.peers.pop("v")
    reactor.forget("v")
    peers.peers["v"] = back = _Peer()
    reactor.on_round_status("v", _status(10))
    peers.sent.clear()
    reactor.step()
    assert back.closed == []
    assert [h for _, h in peers.sent] == list(range(1, 11))
    assert all(when != -math.inf for _, when in reactor._requested.values())


def test_two_heights_behind_the_next_block_is_fetched_at_once_one_behind_after_a_wait(
    monkeypatch: Any,
) -> None:
    """Short of sync mode (at most SYNC_LAG behind), a node one height behind waits
    FETCH_AFTER_S for the round it may still see; two behind, its peers' consensus
    messages skip it, so it asks for the next block at once (it used to wait a second per
    height while the chain went on)."""
    clock = [100.0]
    monkeypatch.setattr(blocksync.time, "monotonic", lambda: clock[0])
    reactor, peers = _reactor()
    driver = reactor.driver
    driver.latest_height, driver.height_entered_at = 10, 100.0  # type: ignore[misc]
    peers.peers["v"] = _Peer()
    reactor.on_round_status("v", _status(11))
    reactor.step()
    assert peers.sent == [] and not reactor.syncing
    clock[0] += blocksync.FETCH_AFTER_S
    reactor.step()
    assert peers.sent == [("v", 11)]
    peers.sent.clear()
    driver.latest_height, driver.height_entered_at = 11, clock[0]  # type: ignore[misc]
    reactor.on_round_status("v", _status(13))
    reactor.step()
    assert peers.sent == [("v", 12)] and not reactor.syncing
