"""Blocks as the consensus machine sees them: building this node's block, the machine's
part of valid(v) (the header and the consensus data a block carries), and the commit of
a decided round.

Pure functions of the chain state before the height (:class:`ChainState`) and their
arguments; signature checks go through the caller's ``vote_ok`` (the machine's, which asks
the node's one verifier).
"""

from __future__ import annotations

from collections.abc import Callable

from appchaind.chain import crypto
from appchaind.chain.types import (
    COMMIT_ABSENT,
    COMMIT_BLOCK,
    COMMIT_NIL,
    Block,
    Commit,
    CommitSig,
    DuplicateVoteEvidence,
    Header,
    InvalidBlock,
    Vote,
    check_block_hashes,
    commit_hash,
    evidence_hash,
)
from appchaind.consensus.config import ConsensusConfig
from appchaind.consensus.evidence import evidence_id, weighted_median_time
from appchaind.consensus.state import ChainState
from appchaind.consensus.validators import ValidatorSet
from appchaind.consensus.votes import VoteSet

__all__ = [
    "VoteCheck",
    "EvidenceCheck",
    "build_block",
    "check_block",
    "check_commit",
    "make_commit",
]

#: Whether a vote's signatures verify against the public key given.
VoteCheck = Callable[[Vote, bytes], bool]
#: Why evidence is not valid for a block of the given height, or None.
EvidenceCheck = Callable[[DuplicateVoteEvidence, int], "str | None"]


def build_block(
    state: ChainState,
    height: int,
    time_ms: int,
    txs: tuple[bytes, ...],
    evidence: tuple[DuplicateVoteEvidence, ...],
    proposer: bytes,
) -> Block:
    """getValue(): the block of ``txs`` and ``evidence`` at ``height`` on top of ``state``."""
    header = Header(
        chain_id=state.chain_id,
        height=height,
        time_ms=time_ms,
        last_block_id=state.last_block_id,
        last_commit_hash=commit_hash(state.last_commit),
        data_hash=crypto.merkle_root(list(txs)),
        validators_hash=state.validators.hash(),
        next_validators_hash=state.next_validators.hash(),
        app_hash=state.app_hash,
        proposer=proposer,
        evidence_hash=evidence_hash(evidence),
    )
    return Block(header, txs, evidence, state.last_commit)


def check_block(
    block: Block,
    state: ChainState,
    config: ConsensusConfig,
    vote_ok: VoteCheck,
    evidence_problem: EvidenceCheck,
) -> str | None:
    """The machine's part of valid(v): the header and the consensus data the block carries.

    Returns None when the block is well formed for the height after ``state``, else why not.
    """
    s = state
    header = block.header
    if header.chain_id != s.chain_id:
        return "wrong chain id"
    if header.last_block_id != s.last_block_id:
        return "wrong last block id"
    if header.app_hash != s.app_hash:
        return "wrong app hash"
    if header.validators_hash != s.validators.hash():
        return "wrong validators hash"
    if header.next_validators_hash != s.next_validators.hash():
        return "wrong next validators hash"
    if s.validators.index_of(header.proposer) < 0:
        return "the proposer is not a validator"
    if len(block.txs) > config.max_block_txs:
        return "too many transactions"
    try:
        check_block_hashes(block)
    except InvalidBlock as exc:
        return str(exc)
    if s.last_validators is None or block.last_commit is None:
        if block.last_commit is not None:
            return "unexpected last commit"
        if header.time_ms != s.last_block_time_ms:
            return "the first block's time is not the genesis time"
    else:
        reason = check_commit(block.last_commit, s.last_validators, s, config, vote_ok)
        if reason is not None:
            return reason
        if header.time_ms != weighted_median_time(block.last_commit, s.last_validators):
            return "block time is not the weighted median of the last commit"
        if header.time_ms <= s.last_block_time_ms:
            return "block time is not after the previous block's"
    seen: set[bytes] = set()
    committed = {e for _, e in s.committed_evidence}
    for ev in block.evidence:
        key = evidence_id(ev)
        if key in seen or key in committed:
            return "duplicate or already committed evidence"
        seen.add(key)
        reason = evidence_problem(ev, s.height)
        if reason is not None:
            return f"invalid evidence: {reason}"
    return None


def check_commit(
    commit: Commit,
    validators: ValidatorSet,
    state: ChainState,
    config: ConsensusConfig,
    vote_ok: VoteCheck,
) -> str | None:
    """The last commit: +2/3 of the previous height's power signed the previous block."""
    if commit.height != state.height - 1 or commit.block_hash != state.last_block_id:
        return "the last commit is for another block"
    if len(commit.signatures) != len(validators):
        return "the last commit has the wrong number of slots"
    power = 0
    for i, sig in enumerate(commit.signatures):
        val = validators.validators[i]
        if sig.validator != validators.addresses[i]:
            return "a last commit slot names the wrong validator"
        if sig.flag == COMMIT_ABSENT:
            if sig.signature or sig.extension or sig.extension_signature or sig.timestamp_ms:
                return "an absent slot carries data"
            continue
        if sig.flag not in (COMMIT_BLOCK, COMMIT_NIL):
            return "unknown commit slot flag"
        vote = sig.to_vote(commit.height, commit.round, commit.block_hash, i)
        if not vote_ok(vote, val.public_key):
            return "a last commit signature does not verify"
        if sig.flag == COMMIT_BLOCK:
            power += val.power
    if not config.two_thirds(power, validators.total_power):
        return "the last commit has less than 2/3 of the power"
    return None


def make_commit(
    height: int, round: int, block_hash: bytes, precommits: VoteSet, validators: ValidatorSet
) -> Commit:
    """The extended commit of (height, round): one slot per validator, in the set's order."""
    sigs = []
    for i, address in enumerate(validators.addresses):
        vote = precommits.vote_for(i, block_hash) or precommits.first(i)
        if vote is not None and vote.block_hash == block_hash:
            sigs.append(
                CommitSig(
                    COMMIT_BLOCK,
                    address,
                    vote.timestamp_ms,
                    vote.signature,
                    vote.extension,
                    vote.extension_signature,
                )  # fmt: skip
            )
        elif vote is not None and not vote.block_hash:
            sigs.append(CommitSig(COMMIT_NIL, address, vote.timestamp_ms, vote.signature, b"", b""))
        else:
            sigs.append(CommitSig(COMMIT_ABSENT, address, 0, b"", b"", b""))
    return Commit(height, round, block_hash, tuple(sigs))
