"""The sans-I/O Tendermint consensus state machine.

(long because: it is Algorithm 1 as one state machine. The upon-rules, the height's
variables and the intake of votes and proposals share that state, and reading them side by
side against the paper is the point; what does not need it has its own module: building
and checking blocks (:mod:`~appchaind.consensus.blocks`), the evidence pool
(:mod:`~appchaind.consensus.evidence`), vote tallies (:mod:`~appchaind.consensus.votes`).)

This is Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon,
Milosevic 2018), one height at a time. Each rule is a method whose comment
gives the paper's line numbers; :meth:`ConsensusMachine._advance` evaluates
the "upon" rules after every event until none fires. The machine owns no
socket, file or clock: ``handle(event, now_ms)`` returns the effects to perform,
``now_ms`` being the driver's local time (used only to timestamp this node's
votes and proposals, never to decide anything).

Paper → code:

* ``h_p, round_p, step_p`` → ``height, round, step``;
  ``lockedValue/lockedRound`` → ``locked_value/locked_round``;
  ``validValue/validRound`` → ``valid_value/valid_round``; ``decision_p[h_p]``
  → ``decision`` (persisted by the driver on :class:`Decide`).
* ``2f+1`` / ``f+1`` → strictly more than 2/3 / 1/3 of the height's total
  voting power (``ConsensusConfig.two_thirds/one_third``).
* ``valid(v)`` → the block passes the machine's structural checks
  (header, last commit, BFT time, evidence) and the application accepted it
  (``RequestProcessProposal`` → ``ProposalProcessed``).
* ``getValue()`` → ``RequestPrepareProposal`` → ``ProposalPrepared``.
* ``broadcast ⟨PREVOTE/PRECOMMIT⟩`` → sign through the injected signer (which
  persists its last-signed state first), count the vote locally, emit
  :class:`BroadcastVote`. A non-nil precommit first asks the application for its
  vote extension (``RequestExtendVote`` → ``VoteExtended``); the step change
  happens when the rule fires, the signature when the extension arrives.
* ``schedule OnTimeoutX`` → :class:`ScheduleTimeout`; the driver answers with
  :class:`TimeoutFired`.
* Line 49 asks for ⟨PROPOSAL, h, r, v, ∗⟩ and 2f+1 precommits for id(v); the
  machine accepts the block v from any source (a proposal of another round, or
  a peer helping it catch up), which is safe since 2f+1 precommits for id(v)
  exist only if a correct process found v valid.

Invariants:

* the machine never asks its signer for two different votes at one
  (height, round, kind), nor for two proposals at one (height, round);
* a vote signed with this node's key that comes back (from the WAL at
  restart, or from a peer) is this node's vote for that step. At restart a
  driver replays the height's WAL feeding this node's own proposals and votes
  first, so the machine never asks to sign again what it already signed;
* each signature is verified at most once per node: the machine keeps no verdicts of
  its own but asks the injected :class:`~appchaind.consensus.signer.Verifier`, which in
  a node is the node's one verdict cache (:class:`appchaind.chain.signatures.SignatureVerifier`,
  shared with the consensus channel that checked the vote on arrival, and with the
  mempool); a repeated vote is dropped before its signature is looked at;
* per vote the work is O(1) dictionary updates; rules read running tallies;
* no floats, no clock, no randomness, no iteration over sets.
"""

from __future__ import annotations

from dataclasses import dataclass

from appchaind.chain.types import (
    PRECOMMIT,
    PREVOTE,
    Block,
    Commit,
    DuplicateVoteEvidence,
    Proposal,
    Vote,
)
from appchaind.consensus.blocks import build_block, check_block, make_commit
from appchaind.consensus.config import ConsensusConfig, Mutation, Step
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
from appchaind.consensus.evidence import EvidencePool, evidence_id, weighted_median_time
from appchaind.consensus.signer import DoubleSignRefused, Signer, Verifier
from appchaind.consensus.state import ChainState
from appchaind.consensus.votes import RoundVotes

__all__ = ["ConsensusMachine", "MachineStatistics", "NIL"]

#: The paper's nil, as a block hash.
NIL = b""
_ZERO_SIGNATURE = b"\x00" * 64
#: At most this many distinct blocks are kept per height (a bound on what peers can make us hold).
_MAX_BLOCKS_PER_HEIGHT = 64
#: At most this many messages for the next height are buffered.
_MAX_BUFFERED = 10_000


@dataclass(frozen=True, slots=True)
class MachineStatistics:
    """A snapshot for metrics and logs."""

    height: int
    round: int
    step: Step
    locked_round: int
    valid_round: int
    votes_counted: int
    #: Signature checks the machine asked of its verifier (each signature once; the
    #: verifier answers a signature the node has seen from its cache).
    signatures_verified: int
    pending_evidence: int


class ConsensusMachine:
    """One validator's (or observer's, with ``signer=None``) Tendermint state machine.

    Use: ``effects = machine.start(now_ms)`` once, then
    ``effects = machine.handle(event, now_ms)`` for every event; perform the
    effects in order. See the module docstring for the paper's mapping.
    """

    def __init__(
        self,
        config: ConsensusConfig,
        state: ChainState,
        signer: Signer | None,
        verifier: Verifier,
    ) -> None:
        if state.chain_id != config.chain_id:
            raise ValueError("the chain state is for another chain")
        self.config = config
        self._signer = signer
        self._verifier = verifier
        self._evidence = EvidencePool(config.chain_id, config.evidence_max_age, self._verify)
        self._signatures_verified = 0
        self._votes_counted = 0
        self._now_ms = 0
        self._started = False
        self._enter(state)

    # ================================================================== public API

    def start(self, now_ms: int) -> list[Effect]:
        """Line 10: ``upon start do StartRound(0)`` at ``state.height``."""
        out: list[Effect] = []
        self._now_ms = now_ms
        if not self._started:
            self._started = True
            self._start_round(0, out)
            self._advance(out)
        return out

    def handle(self, event: Event, now_ms: int) -> list[Effect]:
        """Feeds one event; returns the effects, in the order the driver must perform them."""
        out: list[Effect] = []
        self._now_ms = now_ms
        if isinstance(event, VoteReceived):
            counted = self._votes_counted
            self._on_vote(event.vote, out)
            if counted == self._votes_counted:
                return out  # nothing was counted: no rule can fire
        elif isinstance(event, ProposalReceived):
            self._on_proposal(event.proposal, out)
        elif isinstance(event, BlockReceived):
            self._on_block(event.block, out)
        elif isinstance(event, TimeoutFired):
            self._on_timeout(event, out)
        elif isinstance(event, ProposalProcessed):
            if event.height == self.height and event.block_hash in self._blocks:
                self._verdicts.setdefault(event.block_hash, event.accepted)
        elif isinstance(event, ProposalPrepared):
            self._on_prepared(event, out)
        elif isinstance(event, VoteExtended):
            self._on_extended(event, out)
        elif isinstance(event, VoteExtensionVerified):
            self._on_extension_verified(event, out)
        elif isinstance(event, EvidenceReceived):
            self._evidence.receive(event.evidence, self._state)
        elif isinstance(event, BlockFinalized):
            self._on_finalized(event, out)
            return out
        if self._started:
            self._advance(out)
        return out

    @property
    def state(self) -> ChainState:
        """The chain before the current height (what a restart needs)."""
        return self._state

    @property
    def decision(self) -> Block | None:
        """decision_p[h_p]: the block decided at the current height, awaiting finalization."""
        return self._decision

    def block(self, block_hash: bytes) -> Block | None:
        """The block of the current height with hash ``block_hash`` that the machine holds
        (proposed, received or decided), or None."""
        return self._blocks.get(block_hash)

    @property
    def locked_block_hash(self) -> bytes | None:
        return None if self.locked_value is None else self._block_id(self.locked_value)

    def pending_evidence(self) -> tuple[DuplicateVoteEvidence, ...]:
        """Verified evidence not yet committed, oldest first (for gossip and the next proposal)."""
        return self._evidence.pending()

    def gossip(self) -> tuple[Vote | Proposal | Block, ...]:
        """Messages worth re-sending to peers: this node's votes of the current and previous
        round and of lockedRound/validRound, every precommit of the previous round, the
        prevotes of the polka behind validValue, and the proposals and blocks of the current
        round and of validValue (so a peer that missed them before the network healed can
        still complete the round: the paper assumes correct processes relay what they got)."""
        recent = (self.round - 1, self.round, self.locked_round, self.valid_round)
        messages: list[Vote | Proposal | Block] = [
            v for (round, _), v in self._own_votes.items() if round in recent
        ]
        previous = self._rounds.get(self.round - 1)
        if previous is not None:
            # Every precommit of the previous round, not only ours: 2f+1 of them moved us to
            # this round (lines 47, 65), and they move a peer still in that round here too.
            for slot in previous.precommits.slots:
                if slot is not None:
                    messages.extend(v for v in slot.values() if v.validator_index != self._my_index)
        if self.valid_value is not None:
            # The polka behind validValue: peers need it to accept a re-proposal (line 28).
            valid_hash = self._block_id(self.valid_value)
            polka = self._rounds[self.valid_round].prevotes.slots
            messages.extend(v[valid_hash] for v in polka if v is not None and valid_hash in v)
        for round in (self.round, self.valid_round):
            proposal = self._proposals.get(round)
            if proposal is not None:
                messages.append(proposal)
                block = self._blocks.get(proposal.block_hash)
                if block is not None:
                    messages.append(block)
        return tuple(messages)

    def statistics(self) -> MachineStatistics:
        return MachineStatistics(
            self.height,
            self.round,
            self.step,
            self.locked_round,
            self.valid_round,
            self._votes_counted,
            self._signatures_verified,
            len(self._evidence),
        )

    # ================================================================== heights

    def _enter(self, state: ChainState) -> None:
        """Lines 2-9 and 52-53: the variables of a fresh height."""
        self._state = state
        self.height = state.height
        self.round = 0
        self.step = Step.NEW_HEIGHT
        self.locked_value: Block | None = None  # line 6
        self.locked_round = -1  # line 7
        self.valid_value: Block | None = None  # line 8
        self.valid_round = -1  # line 9
        self._decision: Block | None = None
        self._decision_commit: Commit | None = None
        self._validators = state.validators
        self._height_time = max(state.last_block_time_ms, self._block_time())
        self._my_index = (
            -1 if self._signer is None else state.validators.index_of(self._signer.address)
        )
        self._proposers: dict[int, bytes] = {}
        self._proposals: dict[int, Proposal] = {}
        self._blocks: dict[bytes, Block] = {}
        self._block_ids: dict[int, tuple[Block, bytes]] = {}
        #: valid(v) per block hash: the application's process_proposal answer (or the
        #: machine's own structural refusal). Not signature verdicts: those are the verifier's.
        self._verdicts: dict[bytes, bool] = {}
        self._rounds: dict[int, RoundVotes] = {}
        self._fired: set[tuple[int, int]] = (
            set()
        )  # (paper line, round) of "for the first time" rules
        self._own_votes: dict[tuple[int, int], Vote] = {}
        self._awaiting_extension: dict[int, bytes] = {}
        self._awaiting_prepare: set[int] = set()
        #: precommits whose extension the application is checking (None) or has judged
        self._extension_checks: dict[Vote, bool | None] = {}
        #: (round, validator index) -> its first precommit for a block sent for checking
        self._asked_precommits: dict[tuple[int, int], Vote] = {}
        self._commit_candidates: list[tuple[int, bytes]] = []
        self._skip_round = -1
        self._buffered: list[Event] = []
        self._evidence.new_height(state)

    def _on_finalized(self, event: BlockFinalized, out: list[Effect]) -> None:
        """After decision_p[h_p] is executed (lines 52-54): next height, reset, StartRound(0)."""
        decided = self._decision
        if event.height != self.height or decided is None or self._decision_commit is None:
            return
        if event.block_hash != self._block_id(decided):
            return
        s = self._state
        new_height = s.height + 1
        window = new_height - self.config.evidence_max_age
        committed = s.committed_evidence + tuple(
            (ev.vote_a.height, evidence_id(ev)) for ev in decided.evidence
        )
        new_state = ChainState(
            chain_id=s.chain_id,
            height=new_height,
            validators=s.next_validators,
            # An update decided at H takes effect at H+2 (CometBFT updateState).
            next_validators=s.next_validators.with_updates(event.validator_updates).increment(1),
            last_validators=s.validators,
            last_block_id=event.block_hash,
            last_block_time_ms=decided.header.time_ms,
            last_commit=self._decision_commit,
            app_hash=event.app_hash,
            validator_history=tuple(
                (h, v)
                for h, v in s.validator_history + ((new_height, s.next_validators),)
                if h >= window
            ),
            committed_evidence=tuple((h, e) for h, e in committed if h >= window),
        )
        out.append(EnterHeight(new_state))
        buffered = self._buffered
        self._enter(new_state)
        if self.config.commit_ms > 0:
            out.append(ScheduleTimeout(new_height, 0, Step.NEW_HEIGHT, self.config.commit_ms))
        else:
            self._start_round(0, out)  # line 54
        for ev in buffered:
            out.extend(self.handle(ev, self._now_ms))
        self._advance(out)

    # ================================================================== the rules

    def _advance(self, out: list[Effect]) -> None:
        """Evaluates the "upon" rules until none fires."""
        while self._decision is None and self.step != Step.NEW_HEIGHT:
            if self._upon_commit(out):  # lines 49-54
                return
            if self._upon_higher_round(out):  # lines 55-56
                continue
            if not self._upon_current_round(out):
                return

    def _start_round(self, round: int, out: list[Effect]) -> None:
        """Lines 11-21: StartRound(round)."""
        self.round = round  # line 12
        self.step = Step.PROPOSE  # line 13
        if self._proposer(round) == self._my_address():  # line 14
            if self.valid_value is not None:  # line 15
                pol_round = self.valid_round  # line 16
                if self.config.mutation is Mutation.REPROPOSE_WITHOUT_POL:
                    pol_round = -1
                self._propose(self.valid_value, pol_round, out)  # lines 16, 19
            else:
                self._awaiting_prepare.add(round)  # line 18: getValue()
                out.append(
                    RequestPrepareProposal(
                        self.height,
                        round,
                        self._block_time(),
                        self.config.max_block_txs,
                        self._state.last_commit,
                    )  # fmt: skip
                )
        else:
            self._schedule(Step.PROPOSE, out)  # line 21

    def _upon_current_round(self, out: list[Effect]) -> bool:
        """The rules about round_p; True when one fired."""
        r = self.round
        votes = self._rounds.get(r)
        proposal = self._proposals.get(r)
        block = None if proposal is None else self._blocks.get(proposal.block_hash)
        verdict = None if proposal is None else self._verdicts.get(proposal.block_hash)
        mutation = self.config.mutation
        no_locking = mutation is Mutation.NO_LOCKING

        if (
            self.step == Step.PROPOSE
            and proposal is not None
            and block is not None
            and verdict is not None
        ):
            v = proposal.block_hash
            vr = proposal.pol_round
            if vr == -1:
                # line 22: upon ⟨PROPOSAL, h_p, round_p, v, −1⟩ from proposer(h_p, round_p) while step_p = propose
                if verdict and (
                    self.locked_round == -1 or self._locked_is(v) or no_locking
                ):  # line 23
                    self._vote(PREVOTE, v, out)  # line 24
                else:
                    self._vote(PREVOTE, NIL, out)  # line 26
                self.step = Step.PREVOTE  # line 27
                return True
            polka = self._rounds.get(vr)
            pol_power = 0 if polka is None else polka.prevotes.power(v)
            if mutation is Mutation.POL_ANY_VALUE and polka is not None:
                pol_power = polka.prevotes.total_power
            if self._two_thirds(pol_power) or mutation is Mutation.POL_WITHOUT_POLKA:
                # line 28: ... AND 2f+1 ⟨PREVOTE, h_p, vr, id(v)⟩ while step_p = propose ∧ (vr ≥ 0 ∧ vr < round_p)
                if verdict and (
                    self.locked_round <= vr
                    or self._locked_is(v)
                    or no_locking
                    or mutation is Mutation.POL_IGNORES_LOCK
                ):  # line 29
                    self._vote(PREVOTE, v, out)  # line 30
                else:
                    self._vote(PREVOTE, NIL, out)  # line 32
                self.step = Step.PREVOTE  # line 33
                return True

        if votes is None:
            return False

        # line 34: upon 2f+1 ⟨PREVOTE, h_p, round_p, ∗⟩ while step_p = prevote for the first time
        if (
            self.step == Step.PREVOTE
            and self._two_thirds(votes.prevotes.total_power)
            and self._first(34, r)
        ):
            self._schedule(Step.PREVOTE, out)  # line 35
            return True

        # line 36: upon ⟨PROPOSAL, h_p, round_p, v, ∗⟩ AND 2f+1 ⟨PREVOTE, h_p, round_p, id(v)⟩
        #          while valid(v) ∧ step_p ≥ prevote for the first time
        if (
            proposal is not None
            and block is not None
            and verdict is True
            and self.step >= Step.PREVOTE
            and self._two_thirds(votes.prevotes.power(proposal.block_hash))
            and self._first(36, r)
        ):
            if self.step == Step.PREVOTE:  # line 37
                self.locked_value = block  # line 38
                self.locked_round = r  # line 39
                self._vote(PRECOMMIT, proposal.block_hash, out)  # line 40
                self.step = Step.PRECOMMIT  # line 41
            self.valid_value = block  # line 42
            self.valid_round = r  # line 43
            return True

        # line 44: upon 2f+1 ⟨PREVOTE, h_p, round_p, nil⟩ while step_p = prevote
        if self.step == Step.PREVOTE and self._two_thirds(votes.prevotes.power(NIL)):
            self._vote(PRECOMMIT, NIL, out)  # line 45
            if mutation is Mutation.UNLOCK_ON_NIL_POLKA:
                self.locked_value, self.locked_round = None, -1
            self.step = Step.PRECOMMIT  # line 46
            return True

        # line 47: upon 2f+1 ⟨PRECOMMIT, h_p, round_p, ∗⟩ for the first time
        if self._two_thirds(votes.precommits.total_power) and self._first(47, r):
            self._schedule(Step.PRECOMMIT, out)  # line 48
            return True
        return False

    def _upon_commit(self, out: list[Effect]) -> bool:
        """Lines 49-54: upon ⟨PROPOSAL, h_p, r, v, ∗⟩ AND 2f+1 ⟨PRECOMMIT, h_p, r, id(v)⟩
        while decision_p[h_p] = nil."""
        for r, v in self._commit_candidates:
            block = self._blocks.get(v)
            if block is None or self._verdicts.get(v) is not True:  # line 50: valid(v)
                continue
            self._decision = block  # line 51
            self._decision_commit = make_commit(
                self.height, r, v, self._rounds[r].precommits, self._validators
            )
            out.append(Decide(block, self._decision_commit))
            out.append(RequestFinalizeBlock(block, self._decision_commit))
            # lines 52-54 run on BlockFinalized, once the application has executed v.
            return True
        return False

    def _upon_higher_round(self, out: list[Effect]) -> bool:
        """Lines 55-56: upon f+1 ⟨∗, h_p, round, ∗, ∗⟩ with round > round_p do StartRound(round)."""
        if self._skip_round > self.round:
            self._start_round(self._skip_round, out)
            return True
        return False

    def _on_timeout(self, event: TimeoutFired, out: list[Effect]) -> None:
        if event.height != self.height or self._decision is not None:
            return
        if event.step == Step.NEW_HEIGHT:
            if self.step == Step.NEW_HEIGHT:
                self._start_round(0, out)  # line 54, after timeout_commit
            return
        if event.round != self.round:
            return
        if event.step == Step.PROPOSE and self.step == Step.PROPOSE:  # lines 57-58
            self._vote(PREVOTE, NIL, out)  # line 59
            self.step = Step.PREVOTE  # line 60
        elif event.step == Step.PREVOTE and self.step == Step.PREVOTE:  # lines 61-62
            self._vote(PRECOMMIT, NIL, out)  # line 63
            self.step = Step.PRECOMMIT  # line 64
        elif event.step == Step.PRECOMMIT:  # lines 65-66
            self._start_round(self.round + 1, out)  # line 67

    # ================================================================== helpers of the rules

    def _two_thirds(self, power: int) -> bool:
        return self.config.two_thirds(power, self._validators.total_power)

    def _first(self, line: int, round: int) -> bool:
        """True the first time (line, round) is asked about."""
        key = (line, round)
        if key in self._fired:
            return False
        self._fired.add(key)
        return True

    def _locked_is(self, block_hash: bytes) -> bool:
        return self.locked_value is not None and self._block_id(self.locked_value) == block_hash

    def _block_id(self, block: Block) -> bytes:
        """block.block_id(), computed once per block object this height (the cache holds the
        object, so its id cannot be reused while cached)."""
        cached = self._block_ids.get(id(block))
        if cached is None:
            if len(self._block_ids) >= _MAX_BUFFERED:
                self._block_ids.clear()
            cached = self._block_ids[id(block)] = (block, block.block_id())
        return cached[1]

    def _my_address(self) -> bytes | None:
        return None if self._my_index < 0 or self._signer is None else self._signer.address

    def _proposer(self, round: int) -> bytes:
        """proposer(h_p, round): CometBFT's weighted round robin from the height's set."""
        address = self._proposers.get(round)
        if address is None:
            address = self._validators.proposer_for_round(round)
            self._proposers[round] = address
        return address

    def _schedule(self, step: Step, out: list[Effect]) -> None:
        out.append(
            ScheduleTimeout(self.height, self.round, step, self.config.timeout_ms(step, self.round))
        )

    def _block_time(self) -> int:
        """BFT time of the block at the current height (weighted median of the last commit)."""
        s = self._state
        if s.last_commit is None or s.last_validators is None:
            return s.last_block_time_ms
        return weighted_median_time(s.last_commit, s.last_validators)

    def _vote_time(self, block_hash: bytes = NIL) -> int:
        """A vote's timestamp: local time, but after the time of this height's block (and of
        the block voted for), so the BFT time of the next block is strictly later."""
        floor = self._height_time
        block = self._blocks.get(block_hash) if block_hash else None
        if block is not None:
            floor = max(floor, block.header.time_ms)
        return max(self._now_ms, floor + 1)

    # ------------------------------------------------------------------ proposing

    def _on_prepared(self, event: ProposalPrepared, out: list[Effect]) -> None:
        """Line 18-19 continued: getValue() returned; build the block and broadcast the proposal."""
        r = event.round
        if event.height != self.height or r not in self._awaiting_prepare:
            return
        self._awaiting_prepare.discard(r)
        if r != self.round or self.step != Step.PROPOSE or r in self._proposals:
            return
        block = self._build_block(event.txs[: self.config.max_block_txs])
        block_hash = self._block_id(block)
        self._blocks[block_hash] = block
        self._verdicts[block_hash] = True  # our own block: built from our own state
        self._propose(block, -1, out)

    def _build_block(self, txs: tuple[bytes, ...]) -> Block:
        proposer = self._signer.address if self._signer is not None else b""
        evidence = self._evidence.for_block(self.height)
        return build_block(self._state, self.height, self._block_time(), txs, evidence, proposer)

    def _propose(self, block: Block, pol_round: int, out: list[Effect]) -> None:
        """Line 19: broadcast ⟨PROPOSAL, h_p, round_p, proposal, validRound_p⟩ (and receive it)."""
        assert self._signer is not None
        block_hash = self._block_id(block)
        unsigned = Proposal(
            self.height, self.round, pol_round, block_hash, self._vote_time(),
            self._signer.address, _ZERO_SIGNATURE,
        )  # fmt: skip
        try:
            proposal = self._signer.sign_proposal(unsigned)
        except DoubleSignRefused as exc:
            out.append(SigningRefused(self.height, self.round, Step.PROPOSE, str(exc)))
            self._schedule(Step.PROPOSE, out)  # as a non-proposer would, so the round can end
            return
        self._proposals[self.round] = proposal
        out.append(BroadcastProposal(proposal, block))

    # ------------------------------------------------------------------ voting

    def _vote(self, kind: int, block_hash: bytes, out: list[Effect]) -> None:
        """broadcast ⟨PREVOTE|PRECOMMIT, h_p, round_p, block_hash⟩ (nothing if not a validator)."""
        if self._my_index < 0 or (self.round, kind) in self._own_votes:
            return
        if kind == PRECOMMIT and block_hash:
            self._awaiting_extension[self.round] = block_hash
            out.append(RequestExtendVote(self.height, self.round, block_hash))
            return
        self._sign_vote(kind, self.round, block_hash, b"", out)

    def _on_extended(self, event: VoteExtended, out: list[Effect]) -> None:
        if (
            event.height != self.height
            or self._awaiting_extension.get(event.round) != event.block_hash
        ):
            return
        del self._awaiting_extension[event.round]
        self._sign_vote(PRECOMMIT, event.round, event.block_hash, event.extension, out)

    def _sign_vote(
        self, kind: int, round: int, block_hash: bytes, extension: bytes, out: list[Effect]
    ) -> None:
        assert self._signer is not None
        if (round, kind) in self._own_votes:
            return
        unsigned = Vote(
            kind, self.height, round, block_hash, self._vote_time(block_hash), self._signer.address,
            self._my_index, extension, _ZERO_SIGNATURE, b"",
        )  # fmt: skip
        try:
            vote = self._signer.sign_vote(unsigned)
        except DoubleSignRefused as exc:
            step = Step.PREVOTE if kind == PREVOTE else Step.PRECOMMIT
            out.append(SigningRefused(self.height, round, step, str(exc)))
            signed = exc.signed
            if not (
                isinstance(signed, Vote)
                and (signed.height, signed.round, signed.kind) == (self.height, round, kind)
            ):
                return
            # We signed this vote before a crash made us forget it: it is out already, so it is
            # our vote for this step (re-sending it is what lets the round complete).
            vote = signed
        self._own_votes[(round, kind)] = vote
        votes = self._round_votes(round)
        if not votes.of(kind).has(self._my_index, vote.block_hash):
            self._count(votes, vote, out)
        out.append(BroadcastVote(vote))

    # ------------------------------------------------------------------ receiving votes

    def _on_vote(self, vote: Vote, out: list[Effect]) -> None:
        if vote.height != self.height:
            if vote.height == self.height + 1:
                self._buffer(VoteReceived(vote))
            return
        if (
            vote.kind not in (PREVOTE, PRECOMMIT)
            or vote.round > self.round + self.config.max_round_skip
        ):
            return
        index = vote.validator_index
        validators = self._validators.validators
        if index >= len(validators) or self._validators.addresses[index] != vote.validator:
            return
        votes = self._round_votes(vote.round)
        vote_set = votes.of(vote.kind)
        if vote_set.has(index, vote.block_hash) or vote_set.full(index):
            return  # a repeat: dropped before its signature is looked at
        if not self._vote_signature_ok(vote, validators[index].public_key):
            return
        first = vote_set.first(index)
        if first is not None:
            self._record_evidence(first, vote, out)
        if vote.kind == PRECOMMIT:
            # Two signed precommits of one validator in a round, for different blocks or a
            # block and nil, prove the double sign whatever the application says of the
            # extensions: a precommit for a block is counted only once its extension is
            # accepted (it may never be), so it is compared from when it arrives.
            earlier = self._asked_precommits.get((vote.round, index))
            if earlier is not None and earlier.block_hash != vote.block_hash:
                self._record_evidence(earlier, vote, out)
        if index == self._my_index:
            # Our own vote, from our WAL at restart or echoed by a peer: it is signed and out,
            # so it is our vote for that step (we will not ask the signer again), and we had
            # reached its round (StartRound only moves forward, as line 55 does).
            self._own_votes.setdefault((vote.round, vote.kind), vote)
            self._skip_round = max(self._skip_round, vote.round)
        elif vote.kind == PRECOMMIT and vote.block_hash:
            if vote not in self._extension_checks:
                self._asked_precommits.setdefault((vote.round, index), vote)
                self._extension_checks[vote] = None
                out.append(RequestVerifyVoteExtension(vote))
            return
        self._count(votes, vote, out)

    def _on_extension_verified(self, event: VoteExtensionVerified, out: list[Effect]) -> None:
        vote = event.vote
        if vote.height != self.height or vote not in self._extension_checks:
            return
        if self._extension_checks[vote] is not None:
            return  # answered already
        self._extension_checks[vote] = event.accepted
        if not event.accepted:
            return
        votes = self._round_votes(vote.round)
        index = vote.validator_index
        if not votes.precommits.has(index, vote.block_hash) and not votes.precommits.full(index):
            self._count(votes, vote, out)

    def _count(self, votes: RoundVotes, vote: Vote, out: list[Effect]) -> None:
        """Adds a checked vote to its tally and notes what the rules need to look at.

        A double sign is recorded when its second vote arrives (:meth:`_on_vote`, against
        the first vote counted and the first precommit sent for checking), not here: every
        offence is known by then, and counting a precommit later (once its extension is
        accepted) would only add another pair of votes of the same offence."""
        index = vote.validator_index
        power = self._validators.validators[index].power
        vote_set = votes.of(vote.kind)
        tally = vote_set.add(index, vote, power)
        self._votes_counted += 1
        votes.hear(index, power)
        if vote.kind == PRECOMMIT and vote.block_hash and self._two_thirds(tally):
            if tally - power <= 0 or not self._two_thirds(tally - power):
                self._commit_candidates.append((vote.round, vote.block_hash))
        if vote.round > self.round and vote.round > self._skip_round:
            if self.config.mutation is Mutation.SKIP_ON_SINGLE_VOTE or self.config.one_third(
                votes.heard_power, self._validators.total_power
            ):
                self._skip_round = vote.round

    def _round_votes(self, round: int) -> RoundVotes:
        votes = self._rounds.get(round)
        if votes is None:
            votes = self._rounds[round] = RoundVotes(round, len(self._validators))
        return votes

    def _vote_signature_ok(self, vote: Vote, public_key: bytes) -> bool:
        """The vote's signatures (and a precommit's extension signature). A commit's
        precommits were usually seen as votes already: the verifier answers from its cache."""
        chain_id = self.config.chain_id
        if not self._verify(public_key, vote.sign_bytes(chain_id), vote.signature):
            return False
        if vote.kind == PRECOMMIT and vote.block_hash:
            return self._verify(
                public_key, vote.extension_sign_bytes(chain_id), vote.extension_signature
            )
        return not vote.extension and not vote.extension_signature

    def _verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """A signature check, by the injected verifier (the node's one verdict cache)."""
        self._signatures_verified += 1
        return self._verifier.verify(public_key, message, signature)

    # ------------------------------------------------------------------ proposals and blocks

    def _on_proposal(self, proposal: Proposal, out: list[Effect]) -> None:
        if proposal.height != self.height:
            if proposal.height == self.height + 1:
                self._buffer(ProposalReceived(proposal))
            return
        r = proposal.round
        if r in self._proposals or r > self.round + self.config.max_round_skip:
            return  # only the first proposal of a round counts
        if not -1 <= proposal.pol_round < r:
            return
        proposer = self._proposer(r)
        if proposal.proposer != proposer:
            return
        public_key = self._validators.validators[self._validators.index_of(proposer)].public_key
        if not self._verify(
            public_key, proposal.sign_bytes(self.config.chain_id), proposal.signature
        ):
            return
        self._proposals[r] = proposal

    def _on_block(self, block: Block, out: list[Effect]) -> None:
        height = block.header.height
        if height != self.height:
            if height == self.height + 1:
                self._buffer(BlockReceived(block))
            return
        block_hash = self._block_id(block)
        if block_hash in self._blocks or len(self._blocks) >= _MAX_BLOCKS_PER_HEIGHT:
            return
        self._blocks[block_hash] = block
        reason = check_block(
            block, self._state, self.config, self._vote_signature_ok, self._evidence_problem
        )
        if reason is not None:
            self._verdicts[block_hash] = False
            return
        out.append(RequestProcessProposal(block))

    def _buffer(self, event: Event) -> None:
        if len(self._buffered) < _MAX_BUFFERED:
            self._buffered.append(event)

    # ------------------------------------------------------------------ evidence

    def _record_evidence(self, vote_1: Vote, vote_2: Vote, out: list[Effect]) -> None:
        evidence = self._evidence.record(vote_1, vote_2, self._state)
        if evidence is not None:
            out.append(BroadcastEvidence(evidence))

    def _evidence_problem(self, evidence: DuplicateVoteEvidence, before_height: int) -> str | None:
        return self._evidence.problem(evidence, before_height, self._state)
