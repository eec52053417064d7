"""A simulated validator: its machine, its application, and the disk that survives a crash."""

from __future__ import annotations

from dataclasses import dataclass, field

from appchaind.chain.types import Block, Commit, DuplicateVoteEvidence
from appchaind.consensus.events import Event
from appchaind.consensus.machine import ConsensusMachine
from appchaind.consensus.signer import LastSignState, MemorySignStateStore, SigningKey
from appchaind.consensus.sim.faults import ByzantineKind
from appchaind.consensus.sim.kvapp import KVApp
from appchaind.consensus.state import ChainState

__all__ = ["Disk", "SignStore", "SimNode", "Status"]


@dataclass(frozen=True, slots=True)
class Status:
    """Gossip: "I am at this height" (an ahead peer answers with the block and its commit)."""

    sender: int
    height: int


class SignStore(MemorySignStateStore):
    """The last-sign state on the simulated disk; saving it also fsyncs the WAL."""

    def __init__(self, disk: Disk) -> None:
        super().__init__()
        self._disk = disk

    def save(self, state: LastSignState) -> None:
        super().save(state)
        self._disk.durable = len(self._disk.wal)


@dataclass
class Disk:
    """What survives a crash."""

    state: ChainState
    app: tuple[dict[bytes, bytes], bytes, int]
    height_started_ms: int = 0
    wal: list[tuple[int, Event]] = field(default_factory=list)
    durable: int = 0
    sign_store: MemorySignStateStore | None = None
    evidence: dict[bytes, DuplicateVoteEvidence] = field(default_factory=dict)
    blocks: dict[int, tuple[Block, Commit]] = field(default_factory=dict)


class SimNode:
    def __init__(
        self, index: int, key: SigningKey, byzantine: ByzantineKind | None, disk: Disk, app: KVApp
    ) -> None:
        self.index = index
        self.key = key
        self.byzantine = byzantine
        self.disk = disk
        self.app = app
        self.machine: ConsensusMachine | None = None
        self.incarnation = 0
        self.last_gossip_height = -1
        self.alt_hashes: dict[tuple[int, int], bytes] = {}
        #: (height, round) -> (peers that got proposal A, the one peer that gets precommit A)
        self.split_groups: dict[tuple[int, int], tuple[tuple[bool, ...], int]] = {}
        self.spammed: set[tuple[int, int]] = set()
        #: peer -> the height its last Status gave (block sync asks the peers ahead)
        self.peer_heights: dict[int, int] = {}

    @property
    def honest(self) -> bool:
        return self.byzantine is None
