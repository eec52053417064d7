"""A running node: the consensus driver and the reactors around it.

(long because: the driver performs every effect of the consensus machine in order, and
the order is the safety argument: the WAL before a message leaves, the store batch
before the next height, the budget and admission fed from the block just committed.
Gossip, block sync, mempool gossip, overload sizing and the ports are modules of their
own.)

One trio nursery holds the node's services: the peer manager, the signature
verifier, the consensus driver (this module) and its reactors, each in a file of its
own and talking to the driver through :class:`~appchaind.node.interface.ConsensusDriver`:
consensus gossip (:mod:`appchaind.node.consensus_gossip`), block sync
(:mod:`appchaind.node.blocksync`) and mempool gossip (:mod:`appchaind.node.mempool_gossip`).
The ports that face outside (RPC, HTTP) are not the node's: :mod:`appchaind.node.service`
wires them to its read-only view. Cancelling the nursery (Ctrl-C, SIGTERM) stops the
node; everything it acknowledged as committed is already on disk.

The driver feeds the sans-I/O :class:`ConsensusMachine` one event at a time and
performs the effects it returns, in order:

* own proposals and votes go to the WAL (fsynced) before they leave the node;
  signatures were made by the guarded signer, whose state was fsynced first;
* a decided block, its commit, the application's state changes and the next
  height's chain state are written in one LevelDB batch, then the WAL restarts;
* application questions (prepare/process/extend/verify) are answered at once
  and their answers queued back as events.

Catch-up and block sync are one mechanism (:mod:`appchaind.node.blocksync`): fetched
blocks and their commits are fed to the machine, which checks each commit against the
validator set of its height and decides. While syncing, the driver runs the machine
without a signer (it cannot help consensus there); once caught up it switches back to
voting.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import trio

from appchaind import native
from appchaind.abci import AppFactory, Application, FinalizeResult
from appchaind.chain import codec, crypto, types
from appchaind.chain.codes import Code
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.signatures import SignatureVerifier
from appchaind.consensus.config import ConsensusConfig
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
from appchaind.consensus.machine import ConsensusMachine
from appchaind.consensus.privval import file_signer
from appchaind.consensus.signer import GuardedSigner
from appchaind.consensus.state import ChainState
from appchaind.consensus.validators import ValidatorSet
from appchaind.consensus.wal import WAL
from appchaind.containment import ConnectionGuard
from appchaind.errors import StartupError
from appchaind.exchange import inclusion
from appchaind.exchange.app import ExchangeApp, StateError
from appchaind.exchange.startup import exchange_app_factory
from appchaind.home import HomePaths
from appchaind.node import clock
from appchaind.node.blocksync import BlockSyncReactor
from appchaind.node.builders import BuilderReactor
from appchaind.node.chainstate import decode_chain_state, encode_chain_state
from appchaind.node.consensus_gossip import ConsensusGossip
from appchaind.node.double_sign import conflicting_prevote, double_sign_key
from appchaind.node.gc_schedule import GcSchedule
from appchaind.node.mempool import AddResult, Mempool
from appchaind.node.mempool_gossip import MempoolGossip
from appchaind.node.messages import (
    BLOCKSYNC_MESSAGES,
    BUILDER_MESSAGES,
    CONSENSUS_MESSAGES,
    EVIDENCE_MESSAGES,
    MEMPOOL_MESSAGES,
    BidMessage,
    EvidenceMessage,
    ProposalMessage,
    TxsMessage,
    VoteMessage,
    decode_message,
    encode_message,
)
from appchaind.node.overload import BlockBudget
from appchaind.node.view import (
    NodeStatus,
    TxIndexEntry,
    TxIndexEntryV1,
    decode_forced_txs,
    encode_forced_txs,
    encode_tx_index_entry,
)
from appchaind.rpc.views import pack_tx_events
from appchaind.store import INDEXES, META, Store, StoreDamaged, WriteBatch, height_key
from appchaind.telemetry.logs import get_logger
from appchaind.telemetry.metrics import NodeMetrics
from config.genesis import load_genesis
from config.node_config import NodeConfig, load_config
from p2p.peers import Channel, Peer, PeerManager, PeerMisbehaved

__all__ = ["Node"]

log = get_logger("node")

CHAIN_STATE_KEY = META + b"chain_state"
TX_INDEX = INDEXES + b"tx/"
#: Height -> the forced txs executed after the block there (for queries only: a replay
#: derives them again from the block and the state).
FORCED_TXS = INDEXES + b"forced/"
#: Room in a p2p frame beyond a block's txs: header, last commit, proposal, framing.
FRAME_OVERHEAD_BYTES = 2 * 1024 * 1024
#: Waiting txs re-checked against the new state after each commit (``[mempool] recheck``).
RECHECK_LIMIT = 2_000
#: Peers are not read while more than this many events wait for the consensus loop.
MAX_QUEUED_EVENTS = 20_000
#: The consensus loop handles every queued event before it lets other tasks (RPC and
#: gossip admission) run, for up to this long: consensus is served first.
CONSENSUS_SLICE_S = 0.05


@dataclass(frozen=True, slots=True)
class _SwitchMode:
    """Internal driver event: rebuild the machine with (consensus) or without (sync) a signer."""

    syncing: bool
    best: int


class Node:
    """A validator (or full node) with its home at ``home``."""

    def __init__(
        self, home: Path, *, app_factory: AppFactory | None = None, manage_gc: bool = False
    ) -> None:
        """``manage_gc``: keep full garbage collections off the consensus path
        (:mod:`appchaind.node.gc_schedule`; the daemon does, in-process test nodes do not,
        since freezing would reach the whole test process)."""
        self.paths = HomePaths(Path(home))
        offset = clock.configure_from_environment()
        if offset:
            log.warning("clock_skewed", offset_ms=offset, env=clock.OFFSET_ENV)
        self.gc_schedule = GcSchedule() if manage_gc else None
        self.config: NodeConfig = load_config(self.paths.home)
        self.genesis = load_genesis(self.paths.genesis)
        self.chain_id = self.genesis.chain_id
        needed = self.genesis.params.max_block_bytes + FRAME_OVERHEAD_BYTES
        if self.config.p2p.max_frame_bytes < needed:
            raise StartupError(
                f"p2p.max_frame_bytes = {self.config.p2p.max_frame_bytes} cannot carry this "
                f"chain's blocks (params.max_block_bytes = {self.genesis.params.max_block_bytes}); "
                f"set it to at least {needed} in config.toml"
            )
        self.node_key = PrivateKey.load_private(self.paths.node_key)
        self.validator_key = PrivateKey.load_private(self.paths.validator_key)
        self.store = Store(self.paths.data, home_for_messages=self.paths.home)
        try:
            self.store.check_genesis(self.genesis.hash())
            factory = app_factory or exchange_app_factory
            try:
                self.app: Application = factory(
                    self.store, self.genesis, self.config, self.validator_key.address
                )
            except StateError as exc:
                raise StoreDamaged(self.paths.data, str(exc)) from None
            self.chain_state = self._load_chain_state()
        except BaseException:
            self.store.close()
            raise
        try:
            #: The test-only double-sign mode's key (None: off; :mod:`.double_sign`).
            self._double_sign = double_sign_key(os.environ, self.chain_id, self.validator_key)
        except StartupError:
            self.store.close()
            raise
        if self._double_sign is not None:
            log.warning("test_double_sign_mode", validator=self.validator_key.address.hex())
        self.wal = WAL(self.paths.data / "cs.wal")
        self.signer: GuardedSigner | None = (
            file_signer(self.validator_key, self.chain_id, self.paths.data / "sign_state.json")
            if self.config.node.validator
            else None
        )
        c = self.config.consensus
        self.consensus_config = ConsensusConfig(
            chain_id=self.chain_id,
            propose_ms=c.timeout_propose_ms,
            propose_delta_ms=c.timeout_propose_delta_ms,
            prevote_ms=c.timeout_prevote_ms,
            prevote_delta_ms=c.timeout_prevote_delta_ms,
            precommit_ms=c.timeout_precommit_ms,
            precommit_delta_ms=c.timeout_precommit_delta_ms,
            commit_ms=c.timeout_commit_ms,
            # The chain's rule for every proposal; this node's own proposals are capped
            # lower by [mempool] max_block_txs (the budget below).
            max_block_txs=self.genesis.params.max_block_txs,
        )
        self.metrics = NodeMetrics(self.chain_id)
        #: The one signature verifier and verdict cache of this node (txs and votes alike).
        self.verifier = SignatureVerifier(self.config.mempool.verify_threads)
        m = self.config.mempool
        self.mempool = Mempool(
            chain_id=self.chain_id,
            check_tx=self.app.check_tx,
            verifier=self.verifier,
            max_txs=m.max_txs,
            max_bytes=m.max_bytes,
            max_txs_per_account=m.max_txs_per_account,
            max_tx_bytes=self.genesis.params.max_tx_bytes,
            max_admitting=m.max_admitting,
            max_admit_delay_ms=m.max_admit_delay_ms,
        )
        self.mempool.height = self.latest_height
        #: Sizes this node's proposals and its mempool's backlog from what blocks cost it.
        self.budget = BlockBudget(
            max_txs=min(m.max_block_txs, self.genesis.params.max_block_txs),
            budget_ms=m.block_budget_ms,
            backlog_blocks=m.backlog_blocks,
            backlog_ms=m.backlog_ms,
        )
        self.mempool.backlog_limit = self.budget.backlog_limit(m.max_txs)
        #: Seconds spent this height preparing or checking proposals (the block's cost).
        self._height_work_s = 0.0
        self._last_commit_at: float | None = None
        #: While syncing, one progress line a second instead of a line per block: (when
        #: the last was written, blocks synced since).
        self._sync_log = (0.0, 0)
        p = self.config.p2p
        host, _, port = p.listen_address.rpartition(":")
        self.peers = PeerManager(
            node_key=self.node_key,
            chain_id=self.chain_id,
            listen_host=host,
            listen_port=int(port),
            persistent_peers=list(p.persistent_peers),
            on_message=self._on_peer_message,
            max_inbound_peers=p.max_inbound_peers,
            send_queue_messages=p.send_queue_messages,
            max_frame_bytes=p.max_frame_bytes,
            handshake_timeout_ms=p.handshake_timeout_ms,
            dial_backoff_min_ms=p.dial_backoff_min_ms,
            dial_backoff_max_ms=p.dial_backoff_max_ms,
            on_peer_disconnected=self._on_peer_disconnected,
            on_connection_failure=self.metrics.connection_failed,
        )
        #: Contains a failure in one commit listener (the RPC streams' feed): the block is
        #: already committed, and the other listeners and consensus carry on.
        self._listener_guard = ConnectionGuard(
            "commit_listener", on_failure=self.metrics.connection_failed
        )
        self._events_send, self._events_recv = trio.open_memory_channel[Event | _SwitchMode](
            math.inf
        )
        self._machine: ConsensusMachine | None = None
        self._nursery: trio.Nursery | None = None
        self._pending_batch: WriteBatch | None = None
        #: Digests of the records in the WAL since its last reset (own messages are logged once).
        self._wal_logged: set[bytes] = set()
        self._height_entered_at = time.monotonic()
        self._last_block_time_ms = self.chain_state.last_block_time_ms
        #: Per validator address, the latest height whose commit carries its precommit for
        #: the block (``/validators``' ``last_signed_height``); since the last stored commit.
        self._last_signed: dict[bytes, int] = {}
        try:  # only for the ports' view: an unreadable record leaves it empty
            last_commit = self.store.commit(self.latest_height) if self.latest_height else None
        except codec.CodecError:
            last_commit = None
        if last_commit is not None:
            self._note_signers(last_commit)
        self.committed = trio.Condition()
        self.started = trio.Event()
        #: Called after each commit with the block, the hashes (computed once, here) of its
        #: txs then of the forced txs the application ran after them (``result.forced_txs``),
        #: and the application's result (one tx result per hash).
        self.on_commit: list[Callable[[types.Block, list[bytes], FinalizeResult], None]] = []
        # The reactors, each talking to this driver through ConsensusDriver.
        self.blocksync = BlockSyncReactor(self, self.peers, self.store, self.metrics)
        self.consensus_gossip = ConsensusGossip(
            self, self.peers, self.blocksync, self.verifier, self.chain_id
        )
        self.mempool_gossip = MempoolGossip(
            self.mempool,
            self.peers,
            self.metrics,
            self.config.p2p.max_frame_bytes,
            on_failure=self.metrics.connection_failed,
        )
        #: Builder bids for this validator's blocks (None: PBS off, or not the exchange).
        exchange = self.exchange
        self.pbs: BuilderReactor | None = None
        if exchange is not None and self.config.pbs.enabled:
            self.pbs = BuilderReactor(
                self,
                exchange,
                self.validator_key.address,
                self.config.pbs.bid_deadline_ms / 1000,
                self.metrics,
                self._verify_raws,
                self._proposer_of_round,
            )

    # ------------------------------------------------------------------ state

    def _load_chain_state(self) -> ChainState:
        raw = self.store.get(CHAIN_STATE_KEY)
        if raw is None:
            state = ChainState.genesis(
                self.chain_id,
                self.genesis.validator_set(),
                self.genesis.genesis_time_ms,
                app_hash=self.app.app_hash,
            )
        else:
            try:
                state = decode_chain_state(raw)
            except codec.CodecError as exc:
                raise StoreDamaged(
                    self.paths.data, f"the consensus state is unreadable: {exc}"
                ) from None
        stored = self.store.latest_height()
        if not (state.height - 1 == stored == self.app.height):
            raise StoreDamaged(
                self.paths.data,
                f"block store at height {stored}, application at {self.app.height} and "
                f"consensus state at {state.height - 1} disagree",
            )
        if state.chain_id != self.chain_id:
            raise StoreDamaged(
                self.paths.data,
                f"its consensus state is chain {state.chain_id!r}, genesis.json is {self.chain_id!r}",
            )
        latest = self._latest_block_matches(state) if stored else None
        if latest is not None:
            raise StoreDamaged(self.paths.data, latest)
        return state

    def _latest_block_matches(self, state: ChainState) -> str | None:
        """What is wrong with the latest stored block, or None: it must decode and be the
        block the consensus state says was committed last (a cheap start-time check of
        the record every peer and RPC client asks for first)."""
        height = state.height - 1
        try:
            block = self.store.block(height)
        except codec.CodecError as exc:
            return f"the block at height {height} is unreadable: {exc}"
        if block is None or block.block_id() != state.last_block_id:
            return f"the block at height {height} is not the one the consensus state committed"
        return None

    @property
    def latest_height(self) -> int:
        """The height of the latest committed block."""
        return self.chain_state.height - 1

    def status(self) -> NodeStatus:
        s = self.chain_state
        machine = self._machine
        stats = machine.statistics() if machine is not None else None
        index = s.validators.index_of(self.validator_key.address)
        return NodeStatus(
            chain_id=self.chain_id,
            node_id=self.node_key.address.hex(),
            moniker=self.config.node.moniker,
            height=s.height - 1,
            block_hash=s.last_block_id,
            app_hash=s.app_hash,
            block_time_ms=s.last_block_time_ms,
            catching_up=self.syncing,
            peers=len(self.peers.peers),
            consensus_height=stats.height if stats else s.height,
            consensus_round=stats.round if stats else 0,
            consensus_step=int(stats.step) if stats else 0,
            validator_address=self.validator_key.address if index >= 0 else None,
            voting_power=s.validators.validators[index].power if index >= 0 else 0,
            proposal_txs=min(self.genesis.params.max_block_txs, self.budget.proposal_txs()),
        )

    @property
    def exchange(self) -> ExchangeApp | None:
        """The exchange application, or None when the node runs another app."""
        return self.app if isinstance(self.app, ExchangeApp) else None

    def block(self, height: int) -> types.Block | None:
        """The committed block at ``height``."""
        return self.store.block(height)

    def is_pending(self, h: bytes) -> bool:
        """True while the tx with hash ``h`` waits in the mempool."""
        return h in self.mempool

    def validator_set(self) -> ValidatorSet:
        """The validators of the next height."""
        return self.chain_state.validators

    def peer_list(self) -> list[tuple[str, bool]]:
        """Connected peers as (node id, dialled by us), by node id."""
        return sorted((p.node_id, p.outbound) for p in self.peers.peers.values())

    def forced_txs(self, height: int) -> list[bytes]:
        """The txs of inclusion lists that the application executed after the block at
        ``height`` (none carried them), in execution order."""
        raw = self.store.get(FORCED_TXS + height_key(height))
        return [] if raw is None else decode_forced_txs(raw)

    def tx_location(self, h: bytes) -> TxIndexEntry | None:
        """The committed tx with hash ``h``: its height, index and result."""
        raw = self.store.get(TX_INDEX + h)
        if raw is None:
            return None
        try:
            return codec.decode(TxIndexEntry, raw)
        except codec.CodecError:
            old = codec.decode(TxIndexEntryV1, raw)
            return TxIndexEntry(old.height, old.index, old.code, old.log)

    async def wait_committed(self, height: int) -> None:
        """Returns once the block at ``height`` is committed."""
        async with self.committed:
            while self.latest_height < height:
                await self.committed.wait()

    # ------------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.peers.run)
                nursery.start_soon(self.verifier.run)
                nursery.start_soon(self._consensus_loop)
                nursery.start_soon(self.consensus_gossip.run)
                nursery.start_soon(self.blocksync.run)
                await nursery.start(self.mempool_gossip.run)
                log.info(
                    "node_started",
                    node_id=self.node_key.address.hex(),
                    chain_id=self.chain_id,
                    height=self.latest_height,
                    validator=self.signer is not None,
                    cores=native.status()[1],
                )
                if self.gc_schedule is not None:
                    seconds = self.gc_schedule.start()
                    self.metrics.observe(self.metrics.gc_pause, seconds)
                    log.info("gc_frozen", full_collection_ms=round(seconds * 1000, 1))
                self.started.set()
                task_status.started()
        finally:
            if self.gc_schedule is not None:
                self.gc_schedule.stop()
            self.wal.close()
            self.store.close()
            log.info("node_stopped", height=self.latest_height)

    # ------------------------------------------------------------------ consensus driver

    def _new_machine(self, *, with_signer: bool) -> ConsensusMachine:
        # While syncing there is nothing to wait for after a decision: no pause between heights.
        config = (
            self.consensus_config if with_signer else replace(self.consensus_config, commit_ms=0)
        )
        return ConsensusMachine(
            config,
            self.chain_state,
            self.signer if with_signer else None,
            self.verifier,
        )

    async def _consensus_loop(self) -> None:
        machine = self._machine = self._new_machine(with_signer=True)
        effects = machine.start(clock.now_ms())
        effects += self._replay_wal(machine)
        await self._perform(effects)
        while True:
            await self._handle_event(await self._events_recv.receive())
            # Everything already queued is handled before RPC and gossip admission get the
            # CPU back (each receive() would otherwise wait a whole scheduler turn of them).
            until = time.perf_counter() + CONSENSUS_SLICE_S
            while time.perf_counter() < until:
                try:
                    event = self._events_recv.receive_nowait()
                except trio.WouldBlock:
                    break
                await self._handle_event(event)

    async def _handle_event(self, event: Event | _SwitchMode) -> None:
        if isinstance(event, _SwitchMode):
            await self._switch_mode(event)
            return
        assert self._machine is not None
        await self._perform(self._machine.handle(event, clock.now_ms()))

    def _replay_wal(self, machine: ConsensusMachine) -> list[Effect]:
        """Feeds this height's WAL to a fresh machine: own and received messages, so a
        restarted validator (or one switching back from block sync at the same height)
        resumes with its locks and re-sends (the same) votes instead of signing anew."""
        effects: list[Effect] = []
        replayed = 0
        for record in self.wal.replay():
            self._wal_logged.add(crypto.sha256(record))
            logged = self._event_from_wal(record)
            if logged is not None:
                replayed += 1
                effects += machine.handle(logged, clock.now_ms())
        if replayed:
            log.info("wal_replayed", height=self.chain_state.height, records=replayed)
        return effects

    def _event_from_wal(self, record: bytes) -> Event | None:
        try:
            message = decode_message(CONSENSUS_MESSAGES, record, types.MAX_TX_BYTES * 2000)
        except codec.CodecError:
            return None
        if isinstance(message, VoteMessage) and message.vote.height == self.chain_state.height:
            return VoteReceived(message.vote)
        if (
            isinstance(message, ProposalMessage)
            and message.proposal.height == self.chain_state.height
        ):
            self._events_send.send_nowait(BlockReceived(message.block))
            return ProposalReceived(message.proposal)
        return None

    # ------------------------------------------------------------------ ConsensusDriver

    @property
    def machine(self) -> ConsensusMachine | None:
        return self._machine

    @property
    def height_entered_at(self) -> float:
        return self._height_entered_at

    @property
    def syncing(self) -> bool:
        """True while block sync catches up (the machine runs without a signer)."""
        return self.blocksync.syncing

    def queue(self, event: Event) -> None:
        self._events_send.send_nowait(event)

    def log_received(self, payload: bytes) -> None:
        self.wal.append(payload, sync=False)

    def request_mode(self, syncing: bool, best: int) -> None:
        self._events_send.send_nowait(_SwitchMode(syncing, best))

    async def _perform(self, effects: list[Effect]) -> None:
        for effect in effects:
            await self._perform_one(effect)

    def _log_own(self, payload: bytes) -> None:
        """Our own signed message goes to the WAL, fsynced, before it leaves the node (once:
        a message re-sent after a WAL replay is already there)."""
        digest = crypto.sha256(payload)
        if digest not in self._wal_logged:
            self.wal.append(payload, sync=True)
            self._wal_logged.add(digest)

    def _broadcast_consensus(self, payload: bytes, height: int) -> None:
        """Our vote or proposal at ``height`` to every peer that can use it: not to those
        more than a height behind, which catch up by block sync (a syncing peer that
        cannot read a fast chain's every message would overflow its queue and be
        dropped); the re-gossip sends them what they need once they reach the height."""
        behind = {
            node_id
            for node_id, state in self.blocksync.peer_states.items()
            if state.height < height - 1
        }
        self.peers.broadcast(Channel.CONSENSUS, payload, skip=behind)

    async def _perform_one(self, effect: Effect) -> None:
        if isinstance(effect, BroadcastVote):
            payload = encode_message(VoteMessage(effect.vote))
            self._log_own(payload)
            self._broadcast_consensus(payload, effect.vote.height)
            if self._double_sign is not None:
                other = conflicting_prevote(self._double_sign, self.chain_id, effect.vote)
                if other is not None:
                    self.peers.broadcast(Channel.CONSENSUS, encode_message(VoteMessage(other)))
        elif isinstance(effect, BroadcastProposal):
            payload = encode_message(ProposalMessage(effect.proposal, effect.block))
            self._log_own(payload)
            self._broadcast_consensus(payload, effect.proposal.height)
            log.info(
                "proposed",
                height=effect.proposal.height,
                round=effect.proposal.round,
                txs=len(effect.block.txs),
                block=effect.proposal.block_hash.hex()[:16],
            )
        elif isinstance(effect, ScheduleTimeout):
            assert self._nursery is not None
            self._nursery.start_soon(self._timer, effect)
        elif isinstance(effect, RequestPrepareProposal):
            if self.pbs is not None and self._nursery is not None:
                self._nursery.start_soon(
                    self.pbs.propose,
                    effect,
                    lambda: self._local_block(effect),
                    self._proposal_txs(effect),
                )
            else:
                txs = self._local_block(effect)
                self.queue(ProposalPrepared(effect.height, effect.round, tuple(txs)))
        elif isinstance(effect, RequestProcessProposal):
            accepted = await self._process_proposal(effect.block)
            self.queue(
                ProposalProcessed(effect.block.header.height, effect.block.block_id(), accepted)
            )
        elif isinstance(effect, RequestExtendVote):
            include = self._inclusion_list(effect.height, effect.block_hash)
            extension = self.app.extend_vote(
                effect.height, effect.round, effect.block_hash, include
            )
            self.queue(VoteExtended(effect.height, effect.round, effect.block_hash, extension))
        elif isinstance(effect, RequestVerifyVoteExtension):
            self.queue(
                VoteExtensionVerified(effect.vote, self.app.verify_vote_extension(effect.vote))
            )
        elif isinstance(effect, RequestFinalizeBlock):
            await self._finalize(effect.block, effect.commit)
        elif isinstance(effect, EnterHeight):
            self._enter_height(effect.state)
        elif isinstance(effect, BroadcastEvidence):
            log.warning(
                "evidence",
                validator=effect.evidence.vote_a.validator,
                height=effect.evidence.vote_a.height,
                round=effect.evidence.vote_a.round,
            )
            self.peers.broadcast(Channel.EVIDENCE, encode_message(EvidenceMessage(effect.evidence)))
        elif isinstance(effect, SigningRefused):
            self.metrics.inc(self.metrics.double_sign_refused)
            log.warning(
                "signing_refused", height=effect.height, round=effect.round, reason=effect.reason
            )
        elif isinstance(effect, Decide):
            pass  # persisted with the application's state in _finalize

    def _proposal_txs(self, effect: RequestPrepareProposal) -> int:
        """Txs a proposal (ours or a builder's) may hold: at most what the validators can
        check and execute within the block budget."""
        return min(effect.max_txs, self.budget.proposal_txs(effect.round))

    def _inclusion_list(self, height: int, block_hash: bytes) -> list[bytes]:
        """Our inclusion list for our precommit of the block ``block_hash`` at ``height``
        (:mod:`appchaind.exchange.inclusion`): the oldest orders and cancels of our mempool
        that the block does not carry, admitted when our last committed height was at most
        ``height - [pbs] inclusion_after_blocks``, within the chain's caps. Empty when that
        key is 0, for another application, or if the machine does not hold the block."""
        after = self.config.pbs.inclusion_after_blocks
        block = self._machine.block(block_hash) if self._machine is not None else None
        if after == 0 or self.exchange is None or block is None:
            return []
        params = self.genesis.params
        return self.mempool.inclusion_list(
            height - after,
            frozenset(block.txs),
            params.max_inclusion_txs,
            params.max_inclusion_bytes,
            inclusion.listable,
        )

    def _local_block(self, effect: RequestPrepareProposal) -> list[bytes]:
        """This node's own block from its mempool."""
        started = time.perf_counter()
        limit = self._proposal_txs(effect)
        candidates, decoded = self.mempool.reap_decoded(limit, self.genesis.params.max_block_bytes)
        txs = self.app.prepare_proposal(effect.height, effect.time_ms, candidates, decoded=decoded)
        self._height_work_s += time.perf_counter() - started
        return txs

    async def _timer(self, effect: ScheduleTimeout) -> None:
        await trio.sleep(effect.duration_ms / 1000)
        self.queue(TimeoutFired(effect.height, effect.round, effect.step))

    async def _verify_raws(self, raws: Sequence[bytes]) -> bool:
        """True when every tx of ``raws`` decodes and is well signed (see _verify_txs)."""
        return await self._verify_txs(raws) is not None

    async def _verify_txs(self, raws: Sequence[bytes]) -> frozenset[bytes] | None:
        """Checks every tx signature of ``raws`` (a block's txs) not already verified, on
        worker threads. Returns their hashes (all now verified), or None if any is bad."""
        all_hashes = [types.tx_hash(raw) for raw in raws]
        unverified: list[types.Tx] = []
        hashes: list[bytes] = []
        for raw, h in zip(raws, all_hashes, strict=True):
            if self.verifier.tx_verified(h):
                continue
            try:
                unverified.append(codec.decode(types.Tx, raw))
            except codec.CodecError:
                return None
            hashes.append(h)
        verdicts = await self.verifier.verify_txs(unverified, hashes)
        return frozenset(all_hashes) if all(verdicts) else None

    def _proposer_of_round(self, round: int) -> bytes:
        """The proposer of ``round`` at the current height, from the proposer schedule
        alone (never from the round the machine is in: a block's verdict must not depend
        on when it arrived). The exchange bounds the rounds a bid may name
        (``MAX_BID_ROUND``): each round past 0 costs a step of the schedule."""
        return self.chain_state.validators.proposer_for_round(round)

    async def _process_proposal(self, block: types.Block) -> bool:
        started = time.perf_counter()
        try:
            verified = await self._verify_txs(block.txs)
            if verified is None:
                log.info("proposal_rejected", height=block.header.height, reason="bad tx signature")
                return False
            accepted, reason = self.app.process_proposal(block, self._proposer_of_round)
            if not accepted and self.pbs is not None:
                self.pbs.proposal_rejected(reason)
            if not accepted:
                log.info("proposal_rejected", height=block.header.height, reason=reason)
            return accepted
        finally:
            self._height_work_s += time.perf_counter() - started

    async def _finalize(self, block: types.Block, commit: types.Commit) -> None:
        started = time.perf_counter()
        height = block.header.height
        hashes = [types.tx_hash(raw) for raw in block.txs]
        txs = [self._verified_tx(raw, h) for raw, h in zip(block.txs, hashes, strict=True)]
        # (The exchange pauses the cyclic GC while the block executes.)
        result = self.app.finalize_block(block, txs, self.chain_state.last_validators)
        # The forced txs (inclusion lists) are committed like the block's own, after them.
        hashes += [types.tx_hash(raw) for raw in result.forced_txs]
        batch = WriteBatch()
        batch.put_block(block, commit)
        indexed: set[bytes] = set()
        for index, (h, outcome) in enumerate(zip(hashes, result.tx_results, strict=True)):
            if outcome.code != Code.OK and (h in indexed or self.store.get(TX_INDEX + h)):
                # A copy of a tx already committed (a block may carry one again: it fails
                # as a replay): the first commit's result stands, or a proposer could make
                # `tx` report a committed order as failed. Only a success replaces it (a
                # tx refused before its nonce counted can succeed later).
                continue
            indexed.add(h)
            entry = encode_tx_index_entry(
                height, index, outcome.code, outcome.log[:1000], pack_tx_events(outcome.events)
            )
            batch.put(TX_INDEX + h, entry)
        if result.forced_txs:
            batch.put(FORCED_TXS + height_key(height), encode_forced_txs(result.forced_txs))
        self.app.commit(batch)
        self._pending_batch = batch
        assert self._machine is not None
        effects = self._machine.handle(
            BlockFinalized(height, block.block_id(), result.app_hash, result.validator_updates),
            clock.now_ms(),
        )
        # The proposal's check (or preparation) this height, before EnterHeight resets it.
        checked_s = self._height_work_s
        # EnterHeight comes first: it writes the batch (block + state + next chain state).
        await self._perform(effects)
        seconds = time.perf_counter() - started
        self._after_commit(block, hashes, commit, result, seconds)
        self._update_budget(len(block.txs), checked_s + seconds)

    def _verified_tx(self, raw: bytes, h: bytes) -> types.Tx | None:
        """The tx ``raw`` (hash ``h``) decoded, if its signature is known good: from the
        mempool, else decoded here when the verifier has its verdict (it checked the
        block's txs when the proposal came). None: the application checks it."""
        tx = self.mempool.decoded(h)
        if tx is None and self.verifier.tx_verified(h):
            try:
                tx = codec.decode(types.Tx, raw)
            except codec.CodecError:
                return None
        return tx

    def _enter_height(self, state: ChainState) -> None:
        batch = self._pending_batch or WriteBatch()
        self._pending_batch = None
        batch.put(CHAIN_STATE_KEY, encode_chain_state(state))
        # Synced blocks are not fsynced one by one: none was acknowledged to anyone, a
        # process crash loses nothing (the OS has the writes), and a machine crash loses
        # at most the last ones, fetched again on restart. The first write after sync
        # (or any decided in consensus) is fsynced, and with it everything before.
        self.store.write(batch, sync=not self.syncing)
        self.chain_state = state
        self.wal.reset()
        self._wal_logged.clear()
        self._height_entered_at = time.monotonic()
        self._height_work_s = 0.0

    def _after_commit(
        self,
        block: types.Block,
        hashes: list[bytes],
        commit: types.Commit,
        result: FinalizeResult,
        seconds: float,
    ) -> None:
        height = block.header.height
        self.mempool.update(
            height,
            hashes,
            recheck_limit=RECHECK_LIMIT if self.config.mempool.recheck else 0,
        )
        m = self.metrics
        m.set(m.height, height)
        m.set(m.latest_block_height, height)
        m.set(m.rounds, commit.round)
        forced = len(result.forced_txs)
        m.set(m.num_txs, len(block.txs))
        m.inc(m.total_txs, len(block.txs) + forced)
        m.set(m.block_size_bytes, sum(map(len, block.txs)))
        m.set(m.validators, len(self.chain_state.validators))
        m.set(m.validators_power, self.chain_state.validators.total_power)
        m.set(m.missing_validators, len(commit.signatures) - self._note_signers(commit))
        m.set(m.byzantine_validators, len(block.evidence))
        interval_ms = block.header.time_ms - self._last_block_time_ms
        if height > 1:
            m.observe(m.block_interval, interval_ms / 1000)
        self._last_block_time_ms = block.header.time_ms
        m.observe(m.block_processing, seconds)
        if self.gc_schedule is not None:
            paused, full = self.gc_schedule.after_commit()
            m.observe(m.gc_pause, paused)
            if full:
                log.info("gc_full_collection", height=height, ms=round(paused * 1000, 1))
        if forced:
            m.inc(m.pbs_forced_inclusions, forced)
            log.info(
                "forced_inclusions",
                height=height,
                txs=forced,
                tx_hashes=[h.hex()[:16] for h in hashes[len(block.txs) :]],
            )
        if self.syncing:
            self._log_sync_progress(height, len(block.txs))
        else:
            log.info(
                "committed",
                height=height,
                round=commit.round,
                txs=len(block.txs),
                block=block.block_id().hex()[:16],
                app_hash=result.app_hash.hex()[:16],
                interval_ms=interval_ms,
            )
        for listener in self.on_commit:
            try:
                listener(block, hashes, result)
            except Exception as exc:
                self._listener_guard.record(exc, getattr(listener, "__qualname__", "?"))
        self.blocksync.committed(height)
        assert self._nursery is not None
        self._nursery.start_soon(self._notify_committed)

    def _log_sync_progress(self, height: int, txs: int) -> None:
        """One ``block_sync_progress`` line a second while syncing (a line per block was a
        few percent of a synced block's cost, and hundreds of lines a second)."""
        last, blocks = self._sync_log
        now = time.monotonic()
        if now - last < 1.0:
            self._sync_log = (last, blocks + 1)
            return
        log.info("block_sync_progress", height=height, blocks=blocks + 1, txs_last=txs)
        self._sync_log = (now, 0)

    def _note_signers(self, commit: types.Commit) -> int:
        """Records ``commit``'s height as the last signed of each validator whose precommit
        for the block it carries; returns how many."""
        signed = 0
        last_signed = self._last_signed
        for s in commit.signatures:
            if s.flag == types.COMMIT_BLOCK:
                last_signed[s.validator] = commit.height
                signed += 1
        return signed

    def last_signed_heights(self) -> dict[bytes, int]:
        """Per validator address, the latest height whose commit (as this node has it)
        carries its precommit for the block; a validator not seen since the node started
        (or since the last commit stored before) is absent."""
        return dict(self._last_signed)

    def _update_budget(self, txs: int, work_s: float) -> None:
        """Feeds the block's cost (its proposal's check or preparation, then its execution)
        and the time since the last commit to the budget, and sizes admission from it."""
        budget = self.budget
        budget.observe_block(txs, work_s)
        now = time.monotonic()
        if self._last_commit_at is not None and not self.syncing:
            budget.observe_interval(now - self._last_commit_at, txs)
        self._last_commit_at = now
        self.mempool.backlog_limit = budget.backlog_limit(self.config.mempool.max_txs)
        self.mempool.retry_after_ms = budget.retry_after_ms()
        self.metrics.set(self.metrics.block_budget_txs, budget.proposal_txs())

    async def _notify_committed(self) -> None:
        async with self.committed:
            self.committed.notify_all()

    # ------------------------------------------------------------------ p2p reactors

    async def _on_peer_message(self, peer: Peer, channel: int, payload: bytes) -> None:
        # Back-pressure: while the consensus loop is behind, stop reading from peers (their
        # TCP windows fill and a flooding peer only slows itself); timers and the
        # application's answers are never held back.
        while self._events_recv.statistics().current_buffer_used > MAX_QUEUED_EVENTS:
            await trio.sleep(0.005)
        limit = self.config.p2p.max_frame_bytes
        try:
            if channel == Channel.CONSENSUS:
                message = decode_message(CONSENSUS_MESSAGES, payload, limit)
                self.consensus_gossip.on_message(peer, message)
            elif channel == Channel.MEMPOOL:
                message = decode_message(MEMPOOL_MESSAGES, payload, limit)
                assert isinstance(message, TxsMessage)
                self.mempool_gossip.on_txs(message, peer.node_id)
            elif channel == Channel.EVIDENCE:
                message = decode_message(EVIDENCE_MESSAGES, payload, limit)
                assert isinstance(message, EvidenceMessage)
                self.queue(EvidenceReceived(message.evidence))
            elif channel == Channel.BLOCKSYNC:
                message = decode_message(BLOCKSYNC_MESSAGES, payload, limit)
                self.blocksync.on_message(peer, message)
            elif channel == Channel.BUILDER:
                message = decode_message(BUILDER_MESSAGES, payload, limit)
                assert isinstance(message, BidMessage)
                if self.pbs is not None:
                    self.pbs.on_bid(message)
            else:
                raise PeerMisbehaved(f"channel {channel} is not served")
        except codec.CodecError as exc:
            raise PeerMisbehaved(f"malformed message on channel {channel}: {exc}") from None

    def _on_peer_disconnected(self, peer: Peer) -> None:
        self.blocksync.forget(peer.node_id)

    async def submit_tx(self, raw: bytes) -> AddResult:
        """Admits a tx from a client (RPC/HTTP) and gossips it on success."""
        return (await self.mempool_gossip.submit([raw]))[0]

    async def submit_txs(self, raws: Sequence[bytes]) -> list[AddResult]:
        """Admits clients' txs together (one read off an RPC connection): each as
        :meth:`submit_tx` would, their signature checks queued at once."""
        return await self.mempool_gossip.submit(raws)

    async def _switch_mode(self, switch: _SwitchMode) -> None:
        """Runs inside the consensus loop: a fresh machine at the current height, voting or not."""
        log.info(
            "block_sync_started" if switch.syncing else "block_sync_finished",
            height=self.latest_height,
            peer_height=switch.best,
            blocks_synced=self.blocksync.blocks_synced,
        )
        self._machine = self._new_machine(with_signer=not switch.syncing)
        self.blocksync.restart_feeding()
        effects = self._machine.start(clock.now_ms())
        # The WAL holds this height's votes (ours among them) and proposals: without them a
        # validator back from sync at the same height would forget its lock (amnesia).
        effects += self._replay_wal(self._machine)
        self.blocksync.feed()
        await self._perform(effects)
