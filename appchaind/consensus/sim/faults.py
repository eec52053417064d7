"""What a simulation run may inject: the fault mixes, and the kinds of byzantine validator.

The attacks themselves are :mod:`appchaind.consensus.sim.byzantine`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ByzantineKind", "FaultMix", "MIXES"]


class ByzantineKind(enum.Enum):
    SILENT = "silent"
    EQUIVOCATE = "equivocate"
    INVALID = "invalid"
    ROUND_SPAM = "round-spam"
    #: signs anything, as :class:`~appchaind.consensus.sim.adversary.Adversary` plans
    ADAPTIVE = "adaptive"


@dataclass(frozen=True, slots=True)
class FaultMix:
    """The faults a run may inject. Probabilities in parts per million; times in virtual ms."""

    name: str
    drop_ppm: int = 0
    duplicate_ppm: int = 0
    max_delay_ms: int = 20
    partitions: bool = False
    crashes: bool = False
    wal_loss: bool = False
    byzantine: tuple[ByzantineKind, ...] = ()
    #: how many validators may be byzantine (at most, if their power allows)
    byzantine_validators: tuple[int, int] = (1, 3)
    validator_updates: bool = False
    gst_ms: tuple[int, int] = (0, 0)


_ALL_BYZ = (
    ByzantineKind.EQUIVOCATE,
    ByzantineKind.SILENT,
    ByzantineKind.INVALID,
    ByzantineKind.ROUND_SPAM,
    ByzantineKind.ADAPTIVE,
)

MIXES: dict[str, FaultMix] = {
    m.name: m
    for m in (
        FaultMix("calm", validator_updates=True),
        FaultMix(
            "lossy", drop_ppm=250_000, duplicate_ppm=100_000, max_delay_ms=300, gst_ms=(800, 2500)
        ),
        FaultMix(
            "partition", drop_ppm=50_000, max_delay_ms=200, partitions=True, gst_ms=(1000, 3000)
        ),
        FaultMix(
            "crash",
            drop_ppm=50_000,
            max_delay_ms=200,
            crashes=True,
            wal_loss=True,
            gst_ms=(800, 2500),
        ),
        FaultMix(
            "byzantine", drop_ppm=50_000, max_delay_ms=150, byzantine=_ALL_BYZ, gst_ms=(500, 2000)
        ),
        FaultMix(
            "equivocation",
            drop_ppm=20_000,
            max_delay_ms=40,
            byzantine=(ByzantineKind.EQUIVOCATE,),
            gst_ms=(500, 2000),
        ),  # fmt: skip
        FaultMix(
            "adversary",
            drop_ppm=10_000,
            max_delay_ms=60,
            byzantine=(ByzantineKind.ADAPTIVE,),
            gst_ms=(10000, 25000),
        ),  # fmt: skip
        FaultMix(
            "chaos",
            drop_ppm=150_000,
            duplicate_ppm=50_000,
            max_delay_ms=250,
            partitions=True,
            crashes=True,
            wal_loss=True,
            byzantine=_ALL_BYZ,
            validator_updates=True,
            gst_ms=(1500, 3000),
        ),  # fmt: skip
    )
}
