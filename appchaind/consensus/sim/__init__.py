"""The deterministic consensus simulator (``python -m appchaind.consensus.sim``).

``world``      the run: virtual clock, seeded faulty network, crashes and restarts
``faults``     the fault mixes and the kinds of byzantine validator
``byzantine``  the byzantine validators' attacks
``adversary``  the ADAPTIVE adversary: signs anything, targets groups, times its messages;
               per height a campaign against the lock rules (classic, stale, starve)
``checks``     the safety properties checked on every run (liveness is the world's)
``nodes``      a simulated validator and its disk
``keys``       hash signatures for fast runs, the unguarded signer of byzantine validators
``kvapp``      the replicated application of the simulation
"""

from appchaind.consensus.sim.checks import Violation
from appchaind.consensus.sim.faults import MIXES, FaultMix
from appchaind.consensus.sim.world import SimResult, Simulation, run_seed

__all__ = ["MIXES", "FaultMix", "SimResult", "Simulation", "Violation", "run_seed"]
