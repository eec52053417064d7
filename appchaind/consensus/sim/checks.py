"""The properties a simulation checks on every run, and what it records to check them.

* agreement: no two honest nodes decide different blocks at a height;
* validity: a decided block was proposed and the application accepts it;
* no honest double sign: no honest validator signs two votes (or two proposals) for
  different blocks at one height/round/kind, across restarts;
* evidence: every equivocation that reached one honest node in both forms, at a height
  up to the goal height, ends up committed as evidence.

(Liveness, which needs the run's clock and the nodes' heights, is the simulation's.)
A broken property raises :class:`Violation`.
"""

from __future__ import annotations

from appchaind.chain.types import PRECOMMIT, Block, Proposal, Vote
from appchaind.consensus.sim.kvapp import valid_tx
from appchaind.consensus.sim.nodes import SimNode

__all__ = ["Checks", "Violation", "kind_name"]

#: (validator address, height, round, vote kind or 0 for a proposal)
Offence = tuple[bytes, int, int, int]


class Violation(Exception):
    """A broken safety or liveness property; the message says which and where."""


def kind_name(kind: int) -> str:
    return "precommit" if kind == PRECOMMIT else "prevote"


class Checks:
    """What the honest nodes decided and signed, and the equivocations they saw."""

    def __init__(self, addresses: dict[bytes, int], byz_addresses: set[bytes]) -> None:
        self.addresses = addresses
        self.byz_addresses = byz_addresses
        #: height -> the block hash the first honest node decided
        self.decided: dict[int, bytes] = {}
        self.proposed: set[bytes] = set()
        self.honest_signed: dict[Offence, bytes] = {}
        self.byz_seen: dict[tuple[int, int, bytes, int, int, int], bytes] = {}
        #: equivocations an honest node saw both forms of -> their height
        self.detectable: dict[Offence, int] = {}
        self.committed_offences: set[Offence] = set()

    def observe_vote(self, node: SimNode, vote: Vote) -> None:
        """Notes byzantine equivocations that reached an honest node at the votes' height."""
        if not node.honest or vote.validator not in self.byz_addresses:
            return
        if node.machine is None or node.machine.height != vote.height:
            return
        key = (node.index, node.incarnation, vote.validator, vote.height, vote.round, vote.kind)
        first = self.byz_seen.setdefault(key, vote.block_hash)
        if first != vote.block_hash:
            self.detectable.setdefault(
                (vote.validator, vote.height, vote.round, vote.kind), vote.height
            )

    def own_vote(self, node: SimNode, vote: Vote) -> None:
        """No honest double sign (votes)."""
        if not node.honest:
            return
        key = (vote.validator, vote.height, vote.round, vote.kind)
        first = self.honest_signed.setdefault(key, vote.block_hash)
        if first != vote.block_hash:
            raise Violation(
                f"honest validator {node.index} signed two {kind_name(vote.kind)}s at height "
                f"{vote.height} round {vote.round}: {first.hex()[:12]} and {vote.block_hash.hex()[:12]}"
            )

    def own_proposal(self, node: SimNode, proposal: Proposal) -> None:
        """No honest double sign (proposals); records what was proposed (validity)."""
        self.proposed.add(proposal.block_hash)
        if not node.honest:
            return
        key = (proposal.proposer, proposal.height, proposal.round, 0)
        first = self.honest_signed.setdefault(key, proposal.block_hash)
        if first != proposal.block_hash:
            raise Violation(
                f"honest validator {node.index} proposed two blocks at {proposal.height}/{proposal.round}"
            )

    def decision(self, node: SimNode, block: Block) -> None:
        """Agreement and validity of an honest node's decision; committed evidence."""
        if not node.honest:
            return
        height = block.header.height
        block_hash = block.block_id()
        first = self.decided.setdefault(height, block_hash)
        if first != block_hash:
            raise Violation(
                f"agreement: node {node.index} decided {block_hash.hex()[:12]} at height {height}, "
                f"another honest node decided {first.hex()[:12]}"
            )
        if first is block_hash:  # the first decision at this height
            if block_hash not in self.proposed:
                raise Violation(
                    f"validity: block {block_hash.hex()[:12]} at height {height} was never proposed"
                )
            if not all(valid_tx(tx) for tx in block.txs):
                raise Violation(
                    f"validity: decided block at height {height} holds an invalid transaction"
                )
            for ev in block.evidence:
                a = ev.vote_a
                self.committed_offences.add((a.validator, a.height, a.round, a.kind))

    def missing_evidence(self, goal_height: int) -> list[Offence]:
        """Equivocations seen below the goal height that no block has committed yet."""
        return [
            offence
            for offence, height in self.detectable.items()
            if height <= goal_height - 1 and offence not in self.committed_offences
        ]

    def check_evidence(self, goal_height: int) -> None:
        missing = self.missing_evidence(goal_height)
        if missing:
            who, height, round, kind = missing[0]
            raise Violation(
                f"evidence: the equivocation of validator {self.addresses[who]} at height {height} "
                f"round {round} ({kind_name(kind)}) was never committed"
            )
