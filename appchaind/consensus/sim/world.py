"""A deterministic simulation of N validators on a virtual clock and a seeded, faulty network.

(long because: the network, the nodes' drivers and the simulator's block sync share the
virtual clock's event queue; block sync is the next part to move out.)

Everything random comes from one ``random.Random(seed)``, so a seed replays
exactly. Before GST the network delays, drops, duplicates and reorders
messages and partitions the validators; honest nodes crash and restart by
replaying what they had persisted (chain state, WAL, last-sign state,
evidence), possibly losing the WAL's tail that was never fsynced; byzantine
validators (< 1/3 of the power) equivocate, vote for invalid blocks, go silent,
spam votes from future rounds, or (ADAPTIVE, :mod:`~appchaind.consensus.sim.adversary`)
sign anything a validator can, aimed at the honest validators' locks. After GST the
network is reliable with delays of at most ``POST_GST_DELAY_MS``. Every node says its
height to its peers each ``GOSSIP_INTERVAL_MS``; a peer past it answers with the block and
its commit, and a node that enters a height its peers said they were past asks them for the
next one at once (block sync).

Checked on every run: agreement, validity, no honest double sign and evidence (up to
``K`` heights after GST), as :mod:`~appchaind.consensus.sim.checks` says (a broken one is
a :class:`~appchaind.consensus.sim.checks.Violation`); and liveness: within
``LIVENESS_BOUND_MS`` after GST every honest node decides ``K`` heights beyond the highest
height decided at GST (and no honest node goes through more than
``MAX_ROUNDS_AFTER_GST`` rounds of a height after GST).
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass
from typing import Any

from appchaind.chain import crypto
from appchaind.chain.signatures import SignatureVerifier
from appchaind.chain.types import (
    COMMIT_ABSENT,
    Block,
    Commit,
    Proposal,
    Validator,
    Vote,
)
from appchaind.consensus.config import ConsensusConfig, Mutation
from appchaind.consensus.effects import (
    BroadcastEvidence,
    BroadcastProposal,
    BroadcastVote,
    Decide,
    Effect,
    EnterHeight,
    RequestExtendVote,
    RequestFinalizeBlock,
    RequestPrepareProposal,
    RequestProcessProposal,
    RequestVerifyVoteExtension,
    ScheduleTimeout,
    SigningRefused,
)
from appchaind.consensus.events import (
    BlockFinalized,
    BlockReceived,
    Event,
    EvidenceReceived,
    ProposalPrepared,
    ProposalProcessed,
    ProposalReceived,
    TimeoutFired,
    VoteExtended,
    VoteExtensionVerified,
    VoteReceived,
)
from appchaind.consensus.evidence import evidence_id
from appchaind.consensus.machine import ConsensusMachine
from appchaind.consensus.signer import (
    GuardedSigner,
    SigningKey,
    Verifier,
)
from appchaind.consensus.sim import byzantine
from appchaind.consensus.sim.adversary import Adversary, AdversarySigner
from appchaind.consensus.sim.checks import Checks, Violation
from appchaind.consensus.sim.faults import MIXES, ByzantineKind, FaultMix
from appchaind.consensus.sim.keys import CHAIN_ID, FakeKey, FakeVerifier, RawSigner
from appchaind.consensus.sim.kvapp import KVApp
from appchaind.consensus.sim.nodes import Disk, SignStore, SimNode, Status
from appchaind.consensus.state import ChainState

__all__ = ["SimResult", "Simulation", "run_seed"]

GENESIS_TIME_MS = 1_700_000_000_000
#: Heights every honest node must decide after GST.
K_HEIGHTS = 3
LIVENESS_BOUND_MS = 30_000
#: After GST an honest node that goes through this many rounds of one height has clearly lost
#: liveness (with the correct algorithm a height ends within a few rounds once the network
#: is timely).
MAX_ROUNDS_AFTER_GST = 30
POST_GST_DELAY_MS = 20
GOSSIP_INTERVAL_MS = 500
TX_INTERVAL_MS = 150


@dataclass
class SimResult:
    seed: int
    mix: str
    validators: int
    byzantine: int
    heights_decided: int
    faults_injected: int
    messages_delivered: int
    virtual_ms: int
    violation: str | None = None


# ---------------------------------------------------------------------------- the world


class Simulation:
    """One seeded run. ``run()`` returns a :class:`SimResult` (``violation`` set on failure)."""

    def __init__(
        self,
        seed: int,
        mix: FaultMix,
        *,
        mutation: Mutation = Mutation.NONE,
        real_signatures: bool = False,
    ) -> None:
        self.seed = seed
        self.mix = mix
        self.rng = random.Random(seed)
        rng = self.rng
        n = rng.choice((4, 4, 4, 5, 5, 6, 7, 10))
        powers = [rng.randint(1, 10) for _ in range(n)]
        keys: list[SigningKey] = []
        for i in range(n):
            key_seed = crypto.sha256(b"sim-validator-%d-%d" % (seed, i))
            keys.append(crypto.PrivateKey(key_seed) if real_signatures else FakeKey(key_seed))
        # With real signatures, the node's verifier and its one verdict cache (used here
        # without its threads: the machine calls verify() directly).
        self.verifier: Verifier = (
            SignatureVerifier(threads=1) if real_signatures else FakeVerifier()
        )
        total = sum(powers)
        byz: dict[int, ByzantineKind] = {}
        if mix.byzantine:
            # As much byzantine power as the model allows (just under 1/3), on up to 3
            # validators: the strongest first, or (for a mix that wants several byzantine
            # proposers) in a random order.
            budget = rng.randint(*mix.byzantine_validators)
            byz_power = 0
            order = sorted(range(n), key=lambda i: (-powers[i], rng.random()))
            if mix.byzantine_validators[0] > 1:
                rng.shuffle(order)
            for i in order:
                if len(byz) < budget and 3 * (byz_power + powers[i]) < total:
                    byz[i] = rng.choice(mix.byzantine)
                    byz_power += powers[i]
        self.config = ConsensusConfig(
            chain_id=CHAIN_ID,
            propose_ms=300,
            propose_delta_ms=100,
            prevote_ms=100,
            prevote_delta_ms=50,
            precommit_ms=100,
            precommit_delta_ms=50,
            commit_ms=rng.choice((0, 0, 20)),
            evidence_max_age=50,
            mutation=mutation,
        )
        self._genesis_power = powers
        validators = tuple(Validator(k.public_key, p) for k, p in zip(keys, powers, strict=True))
        genesis = ChainState.genesis(CHAIN_ID, validators, GENESIS_TIME_MS)
        public_keys = tuple(k.public_key for k in keys)
        self.nodes: list[SimNode] = []
        for i, key in enumerate(keys):
            app = KVApp(public_keys)
            disk = Disk(state=genesis, app=app.snapshot())
            disk.sign_store = SignStore(disk)
            self.nodes.append(SimNode(i, key, byz.get(i), disk, app))
        self.addresses = {k.address: i for i, k in enumerate(keys)}
        self.byz_addresses = {keys[i].address for i in byz}
        lo, hi = mix.gst_ms
        self.gst_ms = rng.randint(lo, hi) if hi else 0
        self.now = 0
        self._queue: list[tuple[int, int, int, int, Any]] = []
        self._seq = 0
        self._partition: list[int] | None = None  # group id per node while partitioned
        self.checks = Checks(self.addresses, self.byz_addresses)
        self.adversary = Adversary(self)
        self.gst_height: int | None = None
        self._progress = False
        self._gst_rounds: dict[int, tuple[int, int]] = {}
        self.goal_height: int | None = None
        # statistics
        self.faults = 0
        self.delivered = 0
        self.refusals = 0

    # ------------------------------------------------------------------ scheduling

    def _push(self, at: int, node: int, incarnation: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, node, incarnation, payload))

    def send(self, src: int, dst: int, payload: Any) -> None:
        rng = self.rng
        if self.now < self.gst_ms:
            if self._partition is not None and self._partition[src] != self._partition[dst]:
                self.faults += 1
                return
            if rng.randrange(1_000_000) < self.mix.drop_ppm:
                self.faults += 1
                return
            delay = rng.randint(1, self.mix.max_delay_ms)
            if rng.randrange(1_000_000) < self.mix.duplicate_ppm:
                self.faults += 1
                self._push(self.now + rng.randint(1, self.mix.max_delay_ms), dst, -1, payload)
        else:
            delay = rng.randint(1, POST_GST_DELAY_MS)
        self._push(self.now + delay, dst, -1, payload)

    def send_later(self, src: int, dst: int, payload: Any, delay_ms: int) -> None:
        """Sends ``payload`` ``delay_ms`` from now (a withheld or late message)."""
        self._push(self.now + delay_ms, -1, 0, ("send", src, dst, payload))

    def broadcast(self, src: int, payloads: tuple[Any, ...]) -> None:
        for dst in range(len(self.nodes)):
            if dst != src:
                for payload in payloads:
                    self.send(src, dst, payload)

    # ------------------------------------------------------------------ running

    def run(self) -> SimResult:
        violation: str | None = None
        try:
            self._run()
        except Violation as exc:
            violation = str(exc)
        return SimResult(
            seed=self.seed,
            mix=self.mix.name,
            validators=len(self.nodes),
            byzantine=sum(1 for n in self.nodes if not n.honest),
            heights_decided=len(self.checks.decided),
            faults_injected=self.faults,
            messages_delivered=self.delivered,
            virtual_ms=self.now,
            violation=violation,
        )

    def _run(self) -> None:
        rng = self.rng
        for node in self.nodes:
            if node.byzantine is not ByzantineKind.SILENT:
                self._boot(node)
                self._push(rng.randint(1, GOSSIP_INTERVAL_MS), node.index, -2, "gossip")
        self._push(TX_INTERVAL_MS, -1, 0, "tx")
        self._plan_faults()
        self._push(self.gst_ms, -1, 0, "gst")
        deadline = self.gst_ms + LIVENESS_BOUND_MS
        while self._queue:
            at, _, target, incarnation, payload = heapq.heappop(self._queue)
            if at > deadline:
                break
            self.now = at
            if target < 0:
                self._world_event(payload)
            else:
                self._node_event(self.nodes[target], incarnation, payload)
            if self._progress and self.goal_height is not None:
                self._progress = False
                if self._finished():
                    return
        self._final_checks()

    def _plan_faults(self) -> None:
        rng, mix = self.rng, self.mix
        if not self.gst_ms:
            return
        if mix.partitions:
            t = rng.randint(0, self.gst_ms // 2)
            while t < self.gst_ms - 100:
                heal = min(self.gst_ms, t + rng.randint(200, 1500))
                self._push(t, -1, 0, ("partition", rng.randint(0, 1 << 30)))
                self._push(heal, -1, 0, "heal")
                t = heal + rng.randint(50, 800)
        if mix.crashes:
            honest = [n.index for n in self.nodes if n.honest]
            for _ in range(rng.randint(1, 3)):
                index = rng.choice(honest)
                t = rng.randint(0, max(1, self.gst_ms - 300))
                self._push(t, -1, 0, ("crash", index, min(self.gst_ms, t + rng.randint(50, 1500))))
        if mix.validator_updates:
            honest = [n.index for n in self.nodes if n.honest]
            for _ in range(rng.randint(1, 3)):
                index = rng.choice(honest)
                # Only ever above the genesis power: the byzantine share can only shrink.
                tx = b"power:%d:%d" % (index, self._genesis_power[index] + rng.randint(1, 10))
                self._push(rng.randint(0, max(1, self.gst_ms + 1000)), -1, 0, ("tx", tx))

    def _world_event(self, payload: Any) -> None:
        if payload == "gst":
            self._partition = None
            self.gst_height = max(self._height(n) for n in self.nodes if n.honest) - 1
            self.goal_height = self.gst_height + K_HEIGHTS
            self._gst_rounds = {
                n.index: (n.machine.height, n.machine.round) for n in self.nodes if n.machine
            }
            for node in self.nodes:
                if node.machine is not None and node.honest:
                    self.broadcast(
                        node.index,
                        tuple(EvidenceReceived(e) for e in node.machine.pending_evidence()),
                    )
        elif payload == "heal":
            self._partition = None
        elif payload == "tx":
            tx = b"k%d=v%d" % (self.rng.randint(0, 50), self.now)
            for node in self.nodes:
                node.app.mempool.append(tx)
            self._push(self.now + TX_INTERVAL_MS, -1, 0, "tx")
        elif payload[0] == "send":
            self.send(payload[1], payload[2], payload[3])
        elif payload[0] == "tx":
            for node in self.nodes:
                node.app.mempool.append(payload[1])
        elif payload[0] == "partition":
            split = random.Random(payload[1])
            self._partition = [split.randint(0, 1) for _ in self.nodes]
            self.faults += 1
        elif payload[0] == "crash":
            node = self.nodes[payload[1]]
            if node.machine is not None:
                self._crash(node)
                self._push(max(payload[2], self.now + 1), node.index, -3, "restart")

    def _height(self, node: SimNode) -> int:
        return node.machine.height if node.machine is not None else node.disk.state.height

    # ------------------------------------------------------------------ node lifecycle

    def _signer_for(self, node: SimNode) -> Any:
        if node.byzantine is ByzantineKind.ADAPTIVE:
            return AdversarySigner(node.key)
        if node.byzantine in (ByzantineKind.EQUIVOCATE, ByzantineKind.ROUND_SPAM):
            return RawSigner(node.key)
        assert node.disk.sign_store is not None
        return GuardedSigner(node.key, CHAIN_ID, node.disk.sign_store)

    def _boot(self, node: SimNode) -> None:
        disk = node.disk
        node.app.restore(disk.app)
        node.machine = ConsensusMachine(
            self.config, disk.state, self._signer_for(node), self.verifier
        )
        # This node's own signed messages first, so it never asks to sign them again.
        wal = [e for e in disk.wal if _is_own(e[1], node.key.address)]
        wal += [e for e in disk.wal if not _is_own(e[1], node.key.address)]
        for at, event in wal:
            if isinstance(event, ProposalReceived | VoteReceived | BlockReceived):
                self._perform(node, node.machine.handle(event, at))
        self._perform(node, node.machine.start(disk.height_started_ms))
        for at, event in disk.wal:
            if _is_own(event, node.key.address):
                continue
            if node.machine.height != disk.state.height:
                break
            self._perform(node, node.machine.handle(event, at))
        for evidence in list(disk.evidence.values()):
            self._perform(node, node.machine.handle(EvidenceReceived(evidence), self.now))

    def _crash(self, node: SimNode) -> None:
        self.faults += 1
        node.machine = None
        node.incarnation += 1
        disk = node.disk
        if self.mix.wal_loss and len(disk.wal) > disk.durable:
            keep = disk.durable + self.rng.randint(0, len(disk.wal) - disk.durable)
            if keep < len(disk.wal):
                self.faults += 1
            del disk.wal[keep:]

    def _node_event(self, node: SimNode, incarnation: int, payload: Any) -> None:
        if payload == "restart":
            if node.machine is None:
                self._boot(node)
            return
        if payload == "gossip":
            self._push(self.now + GOSSIP_INTERVAL_MS, node.index, -2, "gossip")
            if node.machine is not None:
                self._check_rounds(node, node.machine)
                self._gossip(node)
            return
        if node.machine is None:
            return
        if incarnation >= 0:  # a timer
            if incarnation == node.incarnation:
                self._feed(node, payload)
            return
        self.delivered += 1
        if isinstance(payload, Status):
            node.peer_heights[payload.sender] = payload.height
            if node.byzantine is not ByzantineKind.ADAPTIVE:  # it gives nobody its commits
                self._catch_up(node, payload)
            return
        if isinstance(payload, VoteReceived):
            self.checks.observe_vote(node, payload.vote)
            if node.byzantine is ByzantineKind.ROUND_SPAM:
                byzantine.spam_rounds(self, node, payload.vote)
        if node.byzantine is ByzantineKind.ADAPTIVE:
            self.adversary.observe(payload)
        self._feed(node, payload)

    def _feed(self, node: SimNode, event: Event) -> None:
        machine = node.machine
        assert machine is not None
        node.disk.wal.append((self.now, event))
        self._perform(node, machine.handle(event, self.now))

    def _check_rounds(self, node: SimNode, machine: ConsensusMachine) -> None:
        if not node.honest or self.goal_height is None:
            return
        height, round = self._gst_rounds.get(node.index, (0, 0))
        start = round if machine.height == height else 0
        if machine.round - start > MAX_ROUNDS_AFTER_GST:
            raise Violation(
                f"liveness: after GST honest node {node.index} went through more than "
                f"{MAX_ROUNDS_AFTER_GST} rounds of height {machine.height}"
            )

    def _gossip(self, node: SimNode) -> None:
        machine = node.machine
        assert machine is not None
        if node.byzantine is ByzantineKind.ADAPTIVE:  # asks to catch up, relays nothing
            self.broadcast(node.index, (Status(node.index, machine.height),))
            return
        if not node.honest and node.byzantine is not ByzantineKind.INVALID:
            return
        messages: list[Any] = [Status(node.index, machine.height)]
        if machine.height == node.last_gossip_height:  # stuck for a whole interval
            messages.extend(EvidenceReceived(e) for e in machine.pending_evidence()[:8])
            for m in machine.gossip():
                messages.append(_as_event(m))
        node.last_gossip_height = machine.height
        self.broadcast(node.index, tuple(messages))

    def _sync(self, node: SimNode, height: int) -> None:
        """Block sync: a node that enters ``height`` while peers said they were past it asks
        them for its next block at once, instead of at its next gossip (else a node left one
        height behind a chain that decides a height faster than the gossip interval never
        catches up)."""
        for peer, peer_height in sorted(node.peer_heights.items()):
            if peer_height > height:
                self.send(node.index, peer, Status(node.index, height))

    def _catch_up(self, node: SimNode, status: Status) -> None:
        stored = node.disk.blocks.get(status.height)
        if stored is None:
            return
        self.send_commit(node.index, status.sender, *stored)

    def send_commit(self, src: int, dst: int, block: Block, commit: Commit) -> None:
        """A decided block and the precommits of its commit, from ``src`` to ``dst``."""
        messages: list[Any] = [BlockReceived(block)]
        for i, sig in enumerate(commit.signatures):
            if sig.flag != COMMIT_ABSENT:
                messages.append(
                    VoteReceived(sig.to_vote(commit.height, commit.round, commit.block_hash, i))
                )
        for m in messages:
            self.send(src, dst, m)

    # ------------------------------------------------------------------ effects

    def _perform(self, node: SimNode, effects: list[Effect]) -> None:
        pending = deque(effects)
        while pending:
            effect = pending.popleft()
            answer = self._perform_one(node, effect)
            if answer is not None and node.machine is not None:
                pending.extend(node.machine.handle(answer, self.now))

    def _perform_one(self, node: SimNode, effect: Effect) -> Event | None:
        app = node.app
        if isinstance(effect, BroadcastVote):
            self._on_own_vote(node, effect.vote)
        elif isinstance(effect, ScheduleTimeout):
            timeout = TimeoutFired(effect.height, effect.round, effect.step)
            self._push(self.now + effect.duration_ms, node.index, node.incarnation, timeout)
        elif isinstance(effect, RequestVerifyVoteExtension):
            return VoteExtensionVerified(effect.vote, app.verify_vote_extension(effect.vote))
        elif isinstance(effect, RequestProcessProposal):
            accepted = node.byzantine is ByzantineKind.INVALID or app.process_proposal(effect.block)
            return ProposalProcessed(effect.block.header.height, effect.block.block_id(), accepted)
        elif isinstance(effect, BroadcastProposal):
            self._on_own_proposal(node, effect.proposal, effect.block)
        elif isinstance(effect, RequestExtendVote):
            return VoteExtended(
                effect.height, effect.round, effect.block_hash, app.extend_vote(effect.height)
            )
        elif isinstance(effect, RequestPrepareProposal):
            txs = app.prepare_proposal(effect.max_txs)
            if node.byzantine is ByzantineKind.INVALID:
                txs = txs + (b"INVALID",)
                self.faults += 1
            return ProposalPrepared(effect.height, effect.round, txs)
        elif isinstance(effect, Decide):
            self._on_decide(node, effect.block, effect.commit)
        elif isinstance(effect, RequestFinalizeBlock):
            app_hash, updates = app.finalize_block(effect.block)
            block = effect.block
            return BlockFinalized(block.header.height, block.block_id(), app_hash, updates)
        elif isinstance(effect, EnterHeight):
            disk = node.disk
            disk.state = effect.state
            disk.app = app.snapshot()
            disk.wal = []
            disk.durable = 0
            disk.height_started_ms = self.now
            self._sync(node, effect.state.height)
        elif isinstance(effect, BroadcastEvidence):
            node.disk.evidence[evidence_id(effect.evidence)] = effect.evidence
            self.broadcast(node.index, (EvidenceReceived(effect.evidence),))
        elif isinstance(effect, SigningRefused):
            self.refusals += 1
        return None

    def _log_own(self, node: SimNode, events: tuple[Event, ...]) -> None:
        """Own messages go to the WAL, fsynced, before they are sent."""
        disk = node.disk
        disk.wal.extend((self.now, e) for e in events)
        disk.durable = len(disk.wal)

    def _on_own_vote(self, node: SimNode, vote: Vote) -> None:
        self._log_own(node, (VoteReceived(vote),))
        self.checks.own_vote(node, vote)
        if node.byzantine is ByzantineKind.EQUIVOCATE:
            byzantine.equivocate_vote(self, node, vote)
            return
        if node.byzantine is ByzantineKind.ADAPTIVE:
            self.adversary.vote(node, vote)
            return
        self.broadcast(node.index, (VoteReceived(vote),))

    def _on_own_proposal(self, node: SimNode, proposal: Proposal, block: Block) -> None:
        self._log_own(node, (BlockReceived(block), ProposalReceived(proposal)))
        self.checks.own_proposal(node, proposal)
        if node.byzantine is ByzantineKind.EQUIVOCATE:
            byzantine.equivocate_proposal(self, node, proposal, block)
            return
        if node.byzantine is ByzantineKind.ADAPTIVE:
            self.adversary.propose(node, proposal, block)
            return
        self.broadcast(node.index, (ProposalReceived(proposal), BlockReceived(block)))

    # ------------------------------------------------------------------ checks

    def _on_decide(self, node: SimNode, block: Block, commit: Commit) -> None:
        node.disk.blocks[block.header.height] = (block, commit)
        self._progress = True
        self.checks.decision(node, block)
        if node.honest:
            self.adversary.decided(node, block, commit)

    def _finished(self) -> bool:
        assert self.goal_height is not None
        if any(self._height(n) <= self.goal_height for n in self.nodes if n.honest):
            return False
        return not self.checks.missing_evidence(self.goal_height)

    def _final_checks(self) -> None:
        if self.goal_height is None:
            raise Violation("the run ended before GST")
        laggards = [n.index for n in self.nodes if n.honest and self._height(n) <= self.goal_height]
        if laggards:
            heights = {n.index: self._height(n) - 1 for n in self.nodes if n.honest}
            raise Violation(
                f"liveness: {LIVENESS_BOUND_MS} ms after GST, honest nodes {laggards} have not decided "
                f"height {self.goal_height} (decided heights: {heights})"
            )
        self.checks.check_evidence(self.goal_height)


def _is_own(event: Event, address: bytes) -> bool:
    if isinstance(event, VoteReceived):
        return event.vote.validator == address
    if isinstance(event, ProposalReceived):
        return event.proposal.proposer == address
    return isinstance(event, BlockReceived) and event.block.header.proposer == address


def _as_event(message: Vote | Proposal | Block) -> Event:
    if isinstance(message, Vote):
        return VoteReceived(message)
    if isinstance(message, Proposal):
        return ProposalReceived(message)
    return BlockReceived(message)


def run_seed(
    seed: int,
    mix: str | FaultMix,
    *,
    mutation: Mutation = Mutation.NONE,
    real_signatures: bool = False,
) -> SimResult:
    """Runs one seed of one fault mix; the result says whether a property broke."""
    fault_mix = MIXES[mix] if isinstance(mix, str) else mix
    return Simulation(seed, fault_mix, mutation=mutation, real_signatures=real_signatures).run()
