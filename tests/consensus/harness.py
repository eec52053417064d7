"""Helpers for driving consensus machines by hand: keys, signed messages, an auto-answering app."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from appchaind.chain import crypto
from appchaind.chain.types import (
    PRECOMMIT,
    PREVOTE,
    Block,
    Header,
    Proposal,
    Validator,
    Vote,
    commit_hash,
    evidence_hash,
)
from appchaind.consensus.config import ConsensusConfig, Mutation
from appchaind.consensus.effects import (
    BroadcastEvidence,
    BroadcastProposal,
    BroadcastVote,
    Effect,
    RequestExtendVote,
    RequestFinalizeBlock,
    RequestPrepareProposal,
    RequestProcessProposal,
    RequestVerifyVoteExtension,
)
from appchaind.consensus.events import (
    BlockFinalized,
    BlockReceived,
    Event,
    EvidenceReceived,
    ProposalPrepared,
    ProposalProcessed,
    ProposalReceived,
    VoteExtended,
    VoteExtensionVerified,
    VoteReceived,
)
from appchaind.consensus.machine import ConsensusMachine
from appchaind.consensus.signer import GuardedSigner, MemorySignStateStore
from appchaind.consensus.sim.keys import CHAIN_ID, FakeKey, FakeVerifier, RawSigner
from appchaind.consensus.state import ChainState

GENESIS_MS = 1_000_000
NOW = 2_000_000
EXT = b"ext"


def config(mutation: Mutation = Mutation.NONE, **overrides: int) -> ConsensusConfig:
    values: dict[str, Any] = {
        "propose_ms": 300,
        "propose_delta_ms": 100,
        "prevote_ms": 200,
        "prevote_delta_ms": 50,
        "precommit_ms": 200,
        "precommit_delta_ms": 50,
    }
    values.update(overrides)
    return ConsensusConfig(chain_id=CHAIN_ID, mutation=mutation, **values)


class CountingVerifier(FakeVerifier):
    def __init__(self) -> None:
        self.calls = 0

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        self.calls += 1
        return super().verify(public_key, message, signature)


class Chain:
    """A genesis of validators with the given powers; ``i`` below is the slot in the set."""

    def __init__(self, powers: Iterable[int] = (1, 1, 1, 1)) -> None:
        keys = [FakeKey(bytes([i + 1]) * 32) for i, _ in enumerate(powers)]
        validators = tuple(Validator(k.public_key, p) for k, p in zip(keys, powers, strict=True))
        self.state = ChainState.genesis(CHAIN_ID, validators, GENESIS_MS)
        by_address = {k.address: k for k in keys}
        self.keys = [by_address[a] for a in self.state.validators.addresses]
        self.public_keys = tuple(k.public_key for k in self.keys)

    def proposer(self, round: int, state: ChainState | None = None) -> int:
        vals = (state or self.state).validators
        return vals.index_of(vals.proposer_for_round(round))

    def not_proposer(self, rounds: Iterable[int] = (0, 1, 2)) -> int:
        busy = {self.proposer(r) for r in rounds}
        return next(i for i in range(len(self.keys)) if i not in busy)

    def machine(
        self,
        index: int,
        *,
        mutation: Mutation = Mutation.NONE,
        verifier: FakeVerifier | None = None,
        state: ChainState | None = None,
        **overrides: int,
    ) -> ConsensusMachine:
        signer = GuardedSigner(self.keys[index], CHAIN_ID, MemorySignStateStore())
        return ConsensusMachine(
            config(mutation, **overrides), state or self.state, signer, verifier or FakeVerifier()
        )

    def block(self, txs: tuple[bytes, ...] = (b"a=1",), proposer: int = 0) -> Block:
        """A well-formed block at height 1."""
        s = self.state
        header = Header(
            chain_id=CHAIN_ID,
            height=1,
            time_ms=s.last_block_time_ms,
            last_block_id=b"",
            last_commit_hash=commit_hash(None),
            data_hash=crypto.merkle_root(list(txs)),
            validators_hash=s.validators.hash(),
            next_validators_hash=s.next_validators.hash(),
            app_hash=s.app_hash,
            proposer=self.keys[proposer].address,
            evidence_hash=evidence_hash(()),
        )
        return Block(header, txs, (), None)

    def proposal(self, block: Block, round: int, pol_round: int = -1, height: int = 1) -> Proposal:
        proposer = self.keys[self.proposer(round)]
        unsigned = Proposal(
            height, round, pol_round, block.block_id(), NOW, proposer.address, b"\0" * 64
        )
        return RawSigner(proposer).sign_proposal(unsigned)

    def vote(self, index: int, kind: int, round: int, block_hash: bytes, height: int = 1) -> Vote:
        key = self.keys[index]
        extension = EXT if kind == PRECOMMIT and block_hash else b""
        unsigned = Vote(
            kind, height, round, block_hash, NOW, key.address, index, extension, b"\0" * 64, b""
        )
        return RawSigner(key).sign_vote(unsigned)

    def prevote(self, index: int, round: int, block_hash: bytes) -> VoteReceived:
        return VoteReceived(self.vote(index, PREVOTE, round, block_hash))

    def precommit(self, index: int, round: int, block_hash: bytes) -> VoteReceived:
        return VoteReceived(self.vote(index, PRECOMMIT, round, block_hash))


class Driver:
    """Runs a machine and answers its application requests at once (an accepting app)."""

    def __init__(self, machine: ConsensusMachine, *, reject: Iterable[bytes] = ()) -> None:
        self.machine = machine
        self.reject = set(reject)
        self.app_hash = b""
        self.updates: dict[int, tuple[Validator, ...]] = {}
        self.now = NOW

    def start(self) -> list[Effect]:
        return self._run(self.machine.start(self.now))

    def feed(self, *events: Event) -> list[Effect]:
        out: list[Effect] = []
        for event in events:
            out.extend(self._run(self.machine.handle(event, self.now)))
        return out

    def _answer(self, effect: Effect) -> Event | None:
        if isinstance(effect, RequestPrepareProposal):
            return ProposalPrepared(effect.height, effect.round, (b"tx%d=1" % effect.height,))
        if isinstance(effect, RequestProcessProposal):
            block_hash = effect.block.block_id()
            return ProposalProcessed(
                effect.block.header.height, block_hash, block_hash not in self.reject
            )
        if isinstance(effect, RequestExtendVote):
            return VoteExtended(effect.height, effect.round, effect.block_hash, EXT)
        if isinstance(effect, RequestVerifyVoteExtension):
            return VoteExtensionVerified(effect.vote, effect.vote.extension == EXT)
        if isinstance(effect, RequestFinalizeBlock):
            block = effect.block
            self.app_hash = crypto.sha256(self.app_hash + block.block_id())
            return BlockFinalized(
                block.header.height,
                block.block_id(),
                self.app_hash,
                self.updates.get(block.header.height, ()),
            )
        return None

    def _run(self, effects: list[Effect]) -> list[Effect]:
        done: list[Effect] = []
        queue = deque(effects)
        while queue:
            effect = queue.popleft()
            done.append(effect)
            answer = self._answer(effect)
            if answer is not None:
                queue.extend(self.machine.handle(answer, self.now))
        return done


def of_type(effects: Iterable[Effect], cls: type) -> list[Any]:
    return [e for e in effects if isinstance(e, cls)]


def votes_out(effects: Iterable[Effect]) -> list[Vote]:
    return [e.vote for e in effects if isinstance(e, BroadcastVote)]


class Cluster:
    """All validators of a chain, messages delivered at once in FIFO order (a perfect network)."""

    def __init__(self, chain: Chain, **overrides: int) -> None:
        self.chain = chain
        self.drivers = [Driver(chain.machine(i, **overrides)) for i in range(len(chain.keys))]
        self.decided: dict[int, list[bytes]] = {}
        self.blocks: dict[int, Block] = {}
        self.effects: list[tuple[int, Effect]] = []

    def start(self) -> None:
        queue: deque[tuple[int, Effect]] = deque()
        for i, d in enumerate(self.drivers):
            queue.extend((i, e) for e in d.start())
        self._pump(queue)

    def deliver(self, sender: int, events: Iterable[Event]) -> None:
        queue: deque[tuple[int, Effect]] = deque()
        for i, d in enumerate(self.drivers):
            if i != sender:
                for event in events:
                    queue.extend((i, e) for e in d.feed(event))
        self._pump(queue)

    def _pump(self, queue: deque[tuple[int, Effect]]) -> None:
        from appchaind.consensus.effects import Decide

        while queue:
            sender, effect = queue.popleft()
            self.effects.append((sender, effect))
            events: list[Event] = []
            if isinstance(effect, BroadcastVote):
                events = [VoteReceived(effect.vote)]
            elif isinstance(effect, BroadcastProposal):
                events = [BlockReceived(effect.block), ProposalReceived(effect.proposal)]
            elif isinstance(effect, BroadcastEvidence):
                events = [EvidenceReceived(effect.evidence)]
            elif isinstance(effect, Decide):
                height = effect.block.header.height
                self.decided.setdefault(height, []).append(effect.block.block_id())
                self.blocks[height] = effect.block
            for i, d in enumerate(self.drivers):
                if i != sender:
                    for event in events:
                        queue.extend((i, e) for e in d.feed(event))

    def run_until_height(self, height: int, max_ticks: int = 50) -> None:
        """Fires due timeouts (lowest first) until every machine is past ``height``."""
        from appchaind.consensus.effects import ScheduleTimeout
        from appchaind.consensus.events import TimeoutFired

        for _ in range(max_ticks):
            if all(d.machine.height > height for d in self.drivers):
                return
            pending = [(i, e) for i, e in self.effects if isinstance(e, ScheduleTimeout)]
            self.effects = [(i, e) for i, e in self.effects if not isinstance(e, ScheduleTimeout)]
            queue: deque[tuple[int, Effect]] = deque()
            for i, e in pending:
                queue.extend(
                    (i, x) for x in self.drivers[i].feed(TimeoutFired(e.height, e.round, e.step))
                )
            self._pump(queue)
        raise AssertionError("the cluster did not reach the height")
