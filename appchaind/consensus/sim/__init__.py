"""The deterministic consensus simulator (``python -m appchaind.consensus.sim``)."""

from appchaind.consensus.sim.world import (
    MIXES,
    FaultMix,
    SimResult,
    Simulation,
    Violation,
    run_seed,
)

__all__ = ["MIXES", "FaultMix", "SimResult", "Simulation", "Violation", "run_seed"]
