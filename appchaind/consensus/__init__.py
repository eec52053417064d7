"""Tendermint-style BFT consensus: a sans-I/O state machine and its deterministic simulator.

Public API:

* :class:`ConsensusMachine` — ``start(now_ms)`` then ``handle(event, now_ms)``,
  both returning a list of effects (:mod:`appchaind.consensus.effects`);
* events (:mod:`appchaind.consensus.events`), :class:`ChainState`,
  :class:`ConsensusConfig`;
* :class:`ValidatorSet` (CometBFT proposer selection);
* :class:`GuardedSigner` (double-sign guard) and the :class:`Signer`,
  :class:`SignStateStore` and :class:`Verifier` interfaces.

How a driver (the node, the simulator, a test) uses the machine::

    machine = ConsensusMachine(config, chain_state, signer, verifier)
    perform(machine.start(now_ms))
    for event in incoming():                # network messages, fired timeouts, app answers
        wal.append(event)                   # inputs go to the write-ahead log first
        perform(machine.handle(event, now_ms))

``perform`` broadcasts, schedules timeouts (answered by ``TimeoutFired``),
asks the application (answered by ``ProposalPrepared``, ``ProposalProcessed``,
``VoteExtended``, ``VoteExtensionVerified``, ``BlockFinalized``), persists
``Decide``/``EnterHeight``/``BroadcastEvidence``. The signer is called
synchronously when a rule fires; ``GuardedSigner`` saves (fsyncs, in a node)
the last-signed height/round/step through its ``SignStateStore`` before the
signature is returned. At restart, build the machine from the persisted
``ChainState`` and replay the height's WAL, this node's own messages first.

``python -m appchaind.consensus.sim`` runs the simulator.
"""

from appchaind.consensus.config import ConsensusConfig, Mutation, Step
from appchaind.consensus.machine import NIL, ConsensusMachine, MachineStatistics
from appchaind.consensus.signer import (
    DoubleSignRefused,
    Ed25519Verifier,
    GuardedSigner,
    LastSignState,
    MemorySignStateStore,
    Signer,
    SignStateStore,
    Verifier,
)
from appchaind.consensus.state import ChainState
from appchaind.consensus.validators import ValidatorSet

__all__ = [
    "NIL",
    "ChainState",
    "ConsensusConfig",
    "ConsensusMachine",
    "DoubleSignRefused",
    "Ed25519Verifier",
    "GuardedSigner",
    "LastSignState",
    "MachineStatistics",
    "MemorySignStateStore",
    "Mutation",
    "SignStateStore",
    "Signer",
    "Step",
    "ValidatorSet",
    "Verifier",
]
