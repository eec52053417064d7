"""Tendermint-style BFT consensus: a sans-I/O state machine and its deterministic simulator.

Public API:

* :class:`ConsensusMachine` — ``start(now_ms)`` then ``handle(event, now_ms)``,
  both returning a list of effects (:mod:`appchaind.consensus.effects`);
* events (:mod:`appchaind.consensus.events`), :class:`ChainState`,
  :class:`ConsensusConfig`;
* :class:`ValidatorSet` (CometBFT proposer selection);
* :class:`GuardedSigner` (double-sign guard) and the :class:`Signer`,
  :class:`SignStateStore` and :class:`Verifier` interfaces.

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
