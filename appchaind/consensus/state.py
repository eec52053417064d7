"""What the machine needs to start a height: the chain as of the last decided block.

A driver persists the :class:`ChainState` it receives in
:class:`~appchaind.consensus.effects.EnterHeight` (in the same write as the
decided block) and builds a machine from it at restart.
"""

from __future__ import annotations

from dataclasses import dataclass

from appchaind.chain.types import Commit, Validator
from appchaind.consensus.validators import ValidatorSet

__all__ = ["ChainState"]


@dataclass(frozen=True, slots=True)
class ChainState:
    """The chain before block ``height``.

    ``validators`` decide ``height``; ``next_validators`` decide ``height + 1``
    (so an update returned when finalizing ``height - 1`` is already in
    ``next_validators``); ``last_validators`` signed ``last_commit`` (None at
    height 1). ``validator_history`` holds ``(height, validators)`` for the
    evidence window, oldest first. ``committed_evidence`` holds ``(evidence height,
    evidence hash)`` of evidence already in a block, within that window. Times are ms since epoch.
    """

    chain_id: str
    height: int
    validators: ValidatorSet
    next_validators: ValidatorSet
    last_validators: ValidatorSet | None
    last_block_id: bytes
    last_block_time_ms: int
    last_commit: Commit | None
    app_hash: bytes
    validator_history: tuple[tuple[int, ValidatorSet], ...] = ()
    committed_evidence: tuple[tuple[int, bytes], ...] = ()

    @classmethod
    def genesis(
        cls,
        chain_id: str,
        validators: tuple[Validator, ...],
        genesis_time_ms: int,
        app_hash: bytes = b"",
        initial_height: int = 1,
    ) -> ChainState:
        """CometBFT MakeGenesisState: next_validators = validators incremented once."""
        vals = ValidatorSet.from_genesis(validators)
        return cls(
            chain_id=chain_id,
            height=initial_height,
            validators=vals,
            next_validators=vals.increment(1),
            last_validators=None,
            last_block_id=b"",
            last_block_time_ms=genesis_time_ms,
            last_commit=None,
            app_hash=app_hash,
            validator_history=((initial_height, vals),),
        )

    def validators_at(self, height: int) -> ValidatorSet | None:
        """The set that decided ``height`` (within the evidence window), else None."""
        for h, vals in self.validator_history:
            if h == height:
                return vals
        return None
