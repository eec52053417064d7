"""The consensus channel: votes, proposals and round status between validators.

Incoming: a vote or proposal of a nearby height is checked against its signer's key
first (a peer relaying a badly signed one is dropped; the verdict is cached for the
machine, so nothing is verified twice), logged to the WAL when it is of the current
height, and handed to the driver. Round status goes to block sync.

Outgoing: every ``STATUS_INTERVAL_S`` this node's round status; and when a height has
taken longer than ``REGOSSIP_AFTER_S``, this height's votes and proposal again (a peer
that missed them, or connected late, would otherwise wait for the next round), to the
peers that can use them, by their last round status: the votes to the peers at this
height (or not heard from), the proposal with its block only to those at this height
still before the propose step of our round (or not heard from), and to every peer at
this height once the height has taken ``PROPOSAL_TO_ALL_AFTER_S``. A block is large: sent
to every peer every ``REGOSSIP_AFTER_S``, as it was, a loaded chain whose heights took
longer than that re-sent and re-decoded each block four times over at every node, which
made its heights slower still.
"""

from __future__ import annotations

import time

import trio

from appchaind.chain import types
from appchaind.chain.signatures import SignatureVerifier
from appchaind.consensus.config import Step
from appchaind.consensus.events import BlockReceived, ProposalReceived, VoteReceived
from appchaind.consensus.validators import ValidatorSet
from appchaind.node.blocksync import BlockSyncReactor
from appchaind.node.interface import ConsensusDriver
from appchaind.node.messages import ProposalMessage, RoundStatus, VoteMessage, encode_message
from p2p.peers import Channel, Peer, PeerManager, PeerMisbehaved

__all__ = ["ConsensusGossip", "PROPOSAL_TO_ALL_AFTER_S", "REGOSSIP_AFTER_S", "STATUS_INTERVAL_S"]

STATUS_INTERVAL_S = 0.2
REGOSSIP_AFTER_S = 0.5
#: A height stuck this long re-sends its proposal to every peer at the height, whatever
#: their status says (a peer that prevoted nil without the block needs it to commit).
PROPOSAL_TO_ALL_AFTER_S = 3.0


class ConsensusGossip:
    """The consensus channel of one node."""

    def __init__(
        self,
        driver: ConsensusDriver,
        peers: PeerManager,
        blocksync: BlockSyncReactor,
        verifier: SignatureVerifier,
        chain_id: str,
    ) -> None:
        self.driver = driver
        self.peers = peers
        self.blocksync = blocksync
        self.verifier = verifier
        self.chain_id = chain_id

    def on_message(self, peer: Peer, message: object) -> None:
        """A consensus message from ``peer``; raises PeerMisbehaved for a forged one."""
        self._check_signed(message)
        driver = self.driver
        if isinstance(message, VoteMessage):
            if message.vote.height == driver.chain_state.height:
                driver.log_received(encode_message(message))
            driver.queue(VoteReceived(message.vote))
        elif isinstance(message, ProposalMessage):
            if message.proposal.height == driver.chain_state.height:
                driver.log_received(encode_message(message))
            driver.queue(ProposalReceived(message.proposal))
            driver.queue(BlockReceived(message.block))
        elif isinstance(message, RoundStatus):
            self.blocksync.on_round_status(peer.node_id, message)

    def _validators_for(self, height: int) -> ValidatorSet | None:
        """The validator set of ``height`` when it is the current, previous or next height."""
        state = self.driver.chain_state
        if height == state.height:
            return state.validators
        if height == state.height + 1:
            return state.next_validators
        if height == state.height - 1:
            return state.last_validators
        return None

    def _check_signed(self, message: object) -> None:
        """Drops a peer that relays a vote or proposal of a nearby height whose signature is
        invalid."""
        if isinstance(message, VoteMessage):
            vote = message.vote
            validators = self._validators_for(vote.height)
            if validators is None or vote.validator_index >= len(validators):
                return
            validator = validators.validators[vote.validator_index]
            if validator.address != vote.validator:
                return
            if not self.verifier.verify(
                validator.public_key, vote.sign_bytes(self.chain_id), vote.signature
            ):
                raise PeerMisbehaved(f"invalid signature on a vote by {vote.validator.hex()}")
        elif isinstance(message, ProposalMessage):
            proposal = message.proposal
            validators = self._validators_for(proposal.height)
            index = -1 if validators is None else validators.index_of(proposal.proposer)
            if validators is None or index < 0:
                return
            public_key = validators.validators[index].public_key
            if not self.verifier.verify(
                public_key, proposal.sign_bytes(self.chain_id), proposal.signature
            ):
                raise PeerMisbehaved(
                    f"invalid signature on a proposal by {proposal.proposer.hex()}"
                )

    async def run(self) -> None:
        """Tells peers where we are, and re-sends this height's messages when stuck."""
        last_regossip = 0.0
        while True:
            await trio.sleep(STATUS_INTERVAL_S)
            machine = self.driver.machine
            if machine is None:
                continue
            stats = machine.statistics()
            status = RoundStatus(
                stats.height, stats.round, int(stats.step), self.driver.latest_height, 1
            )
            self.peers.broadcast(Channel.CONSENSUS, encode_message(status))
            now = time.monotonic()
            stuck_s = now - self.driver.height_entered_at
            if stuck_s > REGOSSIP_AFTER_S and now - last_regossip > REGOSSIP_AFTER_S:
                last_regossip = now
                self.regossip(stuck_s)

    def regossip(self, stuck_s: float) -> None:
        """Re-sends this height's messages (:meth:`ConsensusMachine.gossip`) to the peers
        that can use them (see the module's doc); ``stuck_s``: how long the height has
        taken so far."""
        machine = self.driver.machine
        if machine is None:
            return
        stats = machine.statistics()
        votes: list[bytes] = []
        proposals: list[bytes] = []
        proposal: types.Proposal | None = None
        for message in machine.gossip():
            if isinstance(message, types.Vote):
                votes.append(encode_message(VoteMessage(message)))
            elif isinstance(message, types.Proposal):
                proposal = message
            elif isinstance(message, types.Block) and proposal is not None:
                if message.block_id() == proposal.block_hash:
                    proposals.append(encode_message(ProposalMessage(proposal, message)))
        states = self.blocksync.peer_states
        for node_id in list(self.peers.peers):
            state = states.get(node_id)
            if state is not None and state.height != stats.height:
                continue  # ahead: it has them; behind: it needs blocks (block sync)
            for payload in votes:
                self.peers.send_to(node_id, Channel.CONSENSUS, payload)
            if (
                state is None
                or stuck_s >= PROPOSAL_TO_ALL_AFTER_S
                or (state.round, state.step) <= (stats.round, Step.PROPOSE)
            ):
                for payload in proposals:
                    self.peers.send_to(node_id, Channel.CONSENSUS, payload)
