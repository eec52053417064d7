"""The small interface between the consensus driver (:class:`~appchaind.node.node.Node`)
and its reactors (consensus gossip, block sync, mempool gossip).

Reactors read the chain state and hand the driver events for the consensus machine;
they never call the machine themselves, and the driver never reaches into them beyond
their public methods. Everything runs on the node's one trio thread.
"""

from __future__ import annotations

from typing import Protocol

from appchaind.consensus.events import Event
from appchaind.consensus.machine import ConsensusMachine
from appchaind.consensus.state import ChainState

__all__ = ["ConsensusDriver"]


class ConsensusDriver(Protocol):
    """What a reactor may see and ask of the driver."""

    @property
    def chain_state(self) -> ChainState:
        """The state of the height being decided (``height`` is one above the latest)."""
        ...

    @property
    def latest_height(self) -> int:
        """The height of the latest committed block."""
        ...

    @property
    def machine(self) -> ConsensusMachine | None:
        """The consensus machine, once the consensus loop has started."""
        ...

    @property
    def height_entered_at(self) -> float:
        """When (``time.monotonic()``) the current height began."""
        ...

    def queue(self, event: Event) -> None:
        """Hands ``event`` to the consensus loop."""
        ...

    def log_received(self, payload: bytes) -> None:
        """Appends a received consensus message of the current height to the WAL."""
        ...

    def request_mode(self, syncing: bool, best: int) -> None:
        """Asks the consensus loop to rebuild its machine without (sync) or with (consensus)
        a signer; ``best``: the highest height a peer reported."""
        ...
