"""The attacks of byzantine validators (less than 1/3 of the power): equivocating proposals
and votes (with the split-brain attack on locking), and spamming votes of future rounds.
Invalid blocks and silence are in the simulation's effect handling."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from appchaind.chain import crypto
from appchaind.chain.types import PRECOMMIT, Block, Proposal, Vote
from appchaind.consensus.events import BlockReceived, ProposalReceived, VoteReceived
from appchaind.consensus.machine import NIL
from appchaind.consensus.sim.keys import RawSigner
from appchaind.consensus.sim.nodes import SimNode

if TYPE_CHECKING:
    from appchaind.consensus.sim.world import Simulation

__all__ = ["attack_group", "equivocate_proposal", "equivocate_vote", "spam_rounds", "split"]


def split(sim: Simulation, node: SimNode, first: tuple[Any, ...], second: tuple[Any, ...]) -> None:
    """Sends ``first`` to a random subset of the peers and ``second`` to the rest. Half the
    time the split is stealthy (each peer gets one version: a polka or a commit only some
    see); otherwise each peer also gets the other version with probability 1/2."""
    rng = sim.rng
    stealthy = rng.randrange(2) == 0
    share = rng.randint(1, 3)  # first goes to about share/4 of the peers
    for dst in range(len(sim.nodes)):
        if dst == node.index:
            continue
        mine, other = (first, second) if rng.randrange(4) < share else (second, first)
        for m in mine:
            sim.send(node.index, dst, m)
        if not stealthy and rng.randrange(2):
            for m in other:
                sim.send(node.index, dst, m)


def equivocate_proposal(sim: Simulation, node: SimNode, proposal: Proposal, block: Block) -> None:
    sim.faults += 1
    txs = block.txs + (b"alt%d=x%d" % (node.index, sim.rng.randint(0, 1 << 20)),)
    header = dataclasses.replace(block.header, data_hash=crypto.merkle_root(list(txs)))
    alt_block = dataclasses.replace(block, header=header, txs=txs)
    alt_hash = alt_block.block_id()
    node.alt_hashes[(proposal.height, proposal.round)] = alt_hash
    sim.checks.proposed.add(alt_hash)
    signer = RawSigner(node.key)
    alt = signer.sign_proposal(dataclasses.replace(proposal, block_hash=alt_hash))
    # The split-brain attack on locking: proposal and prevote A go to group A, B to the
    # rest; the precommit for A reaches a single victim of group A, so only it decides.
    group_a, victim = attack_group(sim, node, proposal.round)
    node.split_groups[(proposal.height, proposal.round)] = (group_a, victim)
    a = (ProposalReceived(proposal), BlockReceived(block))
    b = (ProposalReceived(alt), BlockReceived(alt_block))
    for dst in range(len(sim.nodes)):
        if dst != node.index:
            for m in a if group_a[dst] else b:
                sim.send(node.index, dst, m)


def attack_group(sim: Simulation, node: SimNode, round: int) -> tuple[tuple[bool, ...], int]:
    """The split-brain attack on locking: the peers that get version A, and the victim.

    Group A plus the byzantine power make a polka (more than 2/3) while its honest
    members alone do not; the next round's proposer is left out (so it has no
    validValue and proposes something new); the victim, the only one that gets the
    byzantine precommit for A and so decides A, is the weakest member of group A (so
    that, if locks are ignored, the other honest nodes can decide something else).
    """
    assert node.machine is not None
    vals = node.machine.state.validators
    next_proposer = sim.addresses[vals.proposer_for_round(round + 1)]
    power = {
        i: vals.validators[vals.index_of(n.key.address)].power for i, n in enumerate(sim.nodes)
    }
    byz = sum(power[i] for i, n in enumerate(sim.nodes) if not n.honest)
    total = vals.total_power
    group = [False] * len(sim.nodes)
    honest = [i for i, n in enumerate(sim.nodes) if n.honest and i != next_proposer]
    sim.rng.shuffle(honest)
    if not honest:
        return tuple(group), next_proposer
    victim = min(honest, key=lambda i: power[i])
    group[victim] = True
    group_power = power[victim]
    for i in honest:
        if 3 * (group_power + byz) > 2 * total:
            break
        if i != victim:
            group[i] = True
            group_power += power[i]
    return tuple(group), victim


def equivocate_vote(sim: Simulation, node: SimNode, vote: Vote) -> None:
    sim.faults += 1
    alt_hash = node.alt_hashes.get((vote.height, vote.round), NIL)
    if alt_hash == vote.block_hash:
        alt_hash = NIL
    if alt_hash == vote.block_hash:
        alt_hash = crypto.sha256(b"bogus%d" % sim.rng.randint(0, 1 << 30))
    extension = node.app.extend_vote(vote.height) if vote.kind == PRECOMMIT and alt_hash else b""
    alt = RawSigner(node.key).sign_vote(
        dataclasses.replace(vote, block_hash=alt_hash, extension=extension, extension_signature=b"")
    )
    groups = node.split_groups.get((vote.height, vote.round))
    if groups is None:
        split(sim, node, (VoteReceived(vote),), (VoteReceived(alt),))
        return
    group_a, victim = groups
    for dst in range(len(sim.nodes)):
        if dst != node.index:
            first = group_a[dst] if vote.kind != PRECOMMIT else dst == victim
            sim.send(node.index, dst, VoteReceived(vote if first else alt))


def spam_rounds(sim: Simulation, node: SimNode, seen: Vote) -> None:
    """ROUND_SPAM: answer every vote with a nil prevote for the next round."""
    key = (seen.height, seen.round + 1)
    if key in node.spammed or node.machine is None:
        return
    node.spammed.add(key)
    sim.faults += 1
    index = node.machine.state.validators.index_of(node.key.address)
    if index < 0:
        return
    unsigned = Vote(
        1,
        seen.height,
        seen.round + 1,
        NIL,
        sim.now,
        node.key.address,
        index,
        b"",
        b"\0" * 64,
        b"",
    )
    sim.broadcast(node.index, (VoteReceived(RawSigner(node.key).sign_vote(unsigned)),))
