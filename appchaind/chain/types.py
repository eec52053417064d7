"""The chain's core messages: transactions, blocks, proposals, votes, commits, evidence.

Every type here has a canonical encoding (appchaind.chain.codec). Hashes and
signatures are over canonical bytes; signatures are domain separated by
chain id and message kind (appchaind.chain.crypto.sign_bytes). Times are integer
milliseconds since the Unix epoch; heights start at 1; rounds at 0.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, TypeVar

from appchaind.chain import codec, crypto
from appchaind.chain.codec import (
    I32,
    U8,
    U32,
    U64,
    Address,
    Bytes,
    Hash32,
    HashOrEmpty,
    MaxItems,
    OneOf,
    PubKey,
    Signature,
    Str,
    message,
)

#: The largest transaction, in bytes, that a node accepts.
MAX_TX_BYTES = 64 * 1024
#: The largest vote extension (oracle prices and an inclusion list), in bytes.
MAX_VOTE_EXTENSION_BYTES = 64 * 1024
MAX_BLOCK_TXS = 100_000
MAX_EVIDENCE = 1_000
MAX_VALIDATORS = 10_000
MAX_CHAIN_ID_CHARS = 50

ChainId = Annotated[str, Str(MAX_CHAIN_ID_CHARS, min_len=1, ascii=True)]
#: A signature, or b"" where none applies (an absent commit signature, no extension).
OptionalSignature = Annotated[bytes, Bytes(0, 64)]
VoteExtension = Annotated[bytes, Bytes(0, MAX_VOTE_EXTENSION_BYTES)]
TxBytes = Annotated[bytes, Bytes(1, MAX_TX_BYTES)]

# ---------------------------------------------------------------------------- transactions

#: Transaction body kinds, tag -> class. The exchange application registers its kinds here.
TX_BODIES: dict[int, type] = {}

B = TypeVar("B", bound=type)


def register_tx_body(cls: B) -> B:
    """Class decorator: adds a message class with a unique ``TAG`` to the tx body kinds."""
    tag = getattr(cls, "TAG", None)
    if type(tag) is not int or not 0 <= tag < 256:
        raise TypeError(f"{cls.__name__}.TAG must be an int in [0, 256)")
    existing = TX_BODIES.get(tag)
    if existing is not None and existing is not cls:
        raise TypeError(f"tx body tag {tag} is taken by {existing.__name__}")
    TX_BODIES[tag] = cls
    return cls


TxBody = Annotated[object, OneOf(TX_BODIES)]


@message
class TxSignDoc:
    """What a transaction's signature covers: everything but the signature."""

    chain_id: ChainId
    sender: PubKey
    nonce: U64
    expiry_height: U64
    body: TxBody


@message
class Tx:
    """A signed transaction envelope.

    ``nonce`` must be unique among the sender's recent nonces and inside the
    chain's nonce window (a millisecond timestamp works), so one trader may have
    many transactions in flight at once. ``expiry_height`` is the last height at
    which the transaction may be included.
    """

    chain_id: ChainId
    sender: PubKey
    nonce: U64
    expiry_height: U64
    body: TxBody
    signature: Signature

    SIGN_KIND: ClassVar[str] = "tx"

    def sign_doc(self) -> TxSignDoc:
        return TxSignDoc(self.chain_id, self.sender, self.nonce, self.expiry_height, self.body)

    def verify_signature(self) -> bool:
        """True when ``signature`` is the sender's signature of this transaction."""
        doc = codec.encode(self.sign_doc())
        return crypto.verify(
            self.sender, crypto.sign_bytes(self.chain_id, self.SIGN_KIND, doc), self.signature
        )

    @property
    def sender_address(self) -> bytes:
        return crypto.address_of(self.sender)


def sign_tx(
    key: crypto.PrivateKey, chain_id: str, nonce: int, expiry_height: int, body: object
) -> Tx:
    """Builds and signs a transaction envelope."""
    doc = TxSignDoc(chain_id, key.public_key, nonce, expiry_height, body)
    signature = key.sign_message(chain_id, Tx.SIGN_KIND, codec.encode(doc))
    return Tx(chain_id, key.public_key, nonce, expiry_height, body, signature)


def tx_hash(tx_bytes: bytes) -> bytes:
    """A transaction's id: SHA-256 of its canonical bytes."""
    return crypto.sha256(tx_bytes)


# ---------------------------------------------------------------------------- validators


@message
class Validator:
    """A validator's consensus key and voting power (an integer weight)."""

    public_key: PubKey
    power: U64

    @property
    def address(self) -> bytes:
        return crypto.address_of(self.public_key)


def validators_hash(validators: tuple[Validator, ...]) -> bytes:
    """Merkle root over the canonical validators, in the set's canonical order."""
    return crypto.merkle_root([codec.encode(v) for v in validators])


# ---------------------------------------------------------------------------- votes

PREVOTE = 1
PRECOMMIT = 2
VOTE_KINDS = (PREVOTE, PRECOMMIT)


@message
class VoteSignDoc:
    """What a vote's signature covers. ``block_hash`` is b"" for a nil vote."""

    kind: U8
    height: U64
    round: U32
    block_hash: HashOrEmpty
    timestamp_ms: U64
    validator: Address


@message
class VoteExtensionSignDoc:
    """What a vote extension's signature covers."""

    height: U64
    round: U32
    block_hash: Hash32
    extension: VoteExtension


@message
class Vote:
    """A prevote or precommit for a block hash (b"" = nil) at (height, round).

    Non-nil precommits carry the application's vote extension with its own
    signature, so a commit can be checked without the extensions.
    """

    kind: U8
    height: U64
    round: U32
    block_hash: HashOrEmpty
    timestamp_ms: U64
    validator: Address
    validator_index: U32
    extension: VoteExtension
    signature: Signature
    extension_signature: OptionalSignature

    SIGN_KIND: ClassVar[str] = "vote"
    EXTENSION_SIGN_KIND: ClassVar[str] = "vote_extension"

    def sign_doc(self) -> VoteSignDoc:
        return VoteSignDoc(
            self.kind, self.height, self.round, self.block_hash, self.timestamp_ms, self.validator
        )

    def sign_bytes(self, chain_id: str) -> bytes:
        return crypto.sign_bytes(chain_id, self.SIGN_KIND, codec.encode(self.sign_doc()))

    def extension_sign_bytes(self, chain_id: str) -> bytes:
        doc = VoteExtensionSignDoc(self.height, self.round, self.block_hash, self.extension)
        return crypto.sign_bytes(chain_id, self.EXTENSION_SIGN_KIND, codec.encode(doc))

    def verify_signature(self, chain_id: str, public_key: bytes) -> bool:
        """Checks the vote signature and, on a non-nil precommit, the extension signature."""
        if not crypto.verify(public_key, self.sign_bytes(chain_id), self.signature):
            return False
        if self.kind == PRECOMMIT and self.block_hash:
            return crypto.verify(
                public_key, self.extension_sign_bytes(chain_id), self.extension_signature
            )
        return not self.extension and not self.extension_signature


def sign_vote(
    key: crypto.PrivateKey,
    chain_id: str,
    *,
    kind: int,
    height: int,
    round: int,
    block_hash: bytes,
    timestamp_ms: int,
    validator_index: int,
    extension: bytes = b"",
) -> Vote:
    """Builds and signs a vote (and its extension, on a non-nil precommit)."""
    if kind not in VOTE_KINDS:
        raise ValueError(f"vote kind must be one of {VOTE_KINDS}, got {kind}")
    extended = kind == PRECOMMIT and bool(block_hash)
    if extension and not extended:
        raise ValueError("only non-nil precommits carry a vote extension")
    unsigned = Vote(
        kind, height, round, block_hash, timestamp_ms, key.address, validator_index,
        extension, b"\x00" * 64, b"",
    )  # fmt: skip
    signature = key.sign(unsigned.sign_bytes(chain_id))
    ext_signature = key.sign(unsigned.extension_sign_bytes(chain_id)) if extended else b""
    return Vote(
        kind, height, round, block_hash, timestamp_ms, key.address, validator_index,
        extension, signature, ext_signature,
    )  # fmt: skip


# ---------------------------------------------------------------------------- proposals


@message
class ProposalSignDoc:
    height: U64
    round: U32
    pol_round: I32
    block_hash: Hash32
    timestamp_ms: U64
    proposer: Address


@message
class Proposal:
    """The proposer's signed claim that ``block_hash`` is its block for (height, round).

    ``pol_round`` is -1, or the round of the polka that justifies re-proposing
    a valid value (the paper's validRound).
    """

    height: U64
    round: U32
    pol_round: I32
    block_hash: Hash32
    timestamp_ms: U64
    proposer: Address
    signature: Signature

    SIGN_KIND: ClassVar[str] = "proposal"

    def sign_bytes(self, chain_id: str) -> bytes:
        doc = ProposalSignDoc(
            self.height, self.round, self.pol_round, self.block_hash, self.timestamp_ms,
            self.proposer,
        )  # fmt: skip
        return crypto.sign_bytes(chain_id, self.SIGN_KIND, codec.encode(doc))

    def verify_signature(self, chain_id: str, public_key: bytes) -> bool:
        return crypto.verify(public_key, self.sign_bytes(chain_id), self.signature)


def sign_proposal(
    key: crypto.PrivateKey,
    chain_id: str,
    *,
    height: int,
    round: int,
    pol_round: int,
    block_hash: bytes,
    timestamp_ms: int,
) -> Proposal:
    unsigned = Proposal(height, round, pol_round, block_hash, timestamp_ms, key.address, b"\0" * 64)
    signature = key.sign(unsigned.sign_bytes(chain_id))
    return Proposal(height, round, pol_round, block_hash, timestamp_ms, key.address, signature)


# ---------------------------------------------------------------------------- commits

COMMIT_ABSENT = 0
COMMIT_BLOCK = 1
COMMIT_NIL = 2


@message
class CommitSig:
    """One validator's slot in a commit: absent, a precommit for the block, or a nil precommit.

    For ``COMMIT_BLOCK`` the signature is over the precommit for the commit's
    block hash; for ``COMMIT_NIL`` over a nil precommit. ``extension`` and
    ``extension_signature`` are the vote extension (extended commits only).
    """

    flag: U8
    validator: Address
    timestamp_ms: U64
    signature: OptionalSignature
    extension: VoteExtension
    extension_signature: OptionalSignature

    def to_vote(self, height: int, round: int, block_hash: bytes, index: int) -> Vote:
        """The precommit this slot stands for (to check its signature)."""
        voted = block_hash if self.flag == COMMIT_BLOCK else b""
        return Vote(
            PRECOMMIT, height, round, voted, self.timestamp_ms, self.validator, index,
            self.extension, self.signature, self.extension_signature,
        )  # fmt: skip


@message
class Commit:
    """+2/3 of voting power precommitted ``block_hash`` at (height, round).

    ``signatures`` has one slot per validator of the height's set, in the set's order.
    """

    height: U64
    round: U32
    block_hash: Hash32
    signatures: Annotated[tuple[CommitSig, ...], MaxItems(MAX_VALIDATORS)]


def commit_hash(commit: Commit | None) -> bytes:
    """Hash of a commit as the next header records it (b"" before height 2)."""
    return b"" if commit is None else crypto.sha256(codec.encode(commit))


# ---------------------------------------------------------------------------- evidence


@message
class DuplicateVoteEvidence:
    """Two votes by one validator for the same height, round and kind, for different blocks."""

    vote_a: Vote
    vote_b: Vote


def evidence_hash(evidence: tuple[DuplicateVoteEvidence, ...]) -> bytes:
    return crypto.merkle_root([codec.encode(e) for e in evidence])


# ---------------------------------------------------------------------------- blocks


@message
class Header:
    """A block header. ``last_block_id`` and ``last_commit_hash`` are b"" at height 1."""

    chain_id: ChainId
    height: U64
    time_ms: U64
    last_block_id: HashOrEmpty
    last_commit_hash: HashOrEmpty
    data_hash: Hash32
    validators_hash: Hash32
    next_validators_hash: Hash32
    app_hash: HashOrEmpty
    proposer: Address
    evidence_hash: Hash32

    def block_id(self) -> bytes:
        """The block's hash: SHA-256 of the canonical header."""
        return crypto.sha256(codec.encode(self))


@message
class Block:
    """A header, the raw transactions it orders, evidence, and the commit of the previous block."""

    header: Header
    txs: Annotated[tuple[TxBytes, ...], MaxItems(MAX_BLOCK_TXS)]
    evidence: Annotated[tuple[DuplicateVoteEvidence, ...], MaxItems(MAX_EVIDENCE)]
    last_commit: Commit | None

    def block_id(self) -> bytes:
        return self.header.block_id()


class InvalidBlock(Exception):
    """A block whose contents do not match its header."""


def check_block_hashes(block: Block) -> None:
    """Checks that the header's data, evidence and last-commit hashes match the body."""
    header = block.header
    if header.data_hash != crypto.merkle_root(list(block.txs)):
        raise InvalidBlock(f"height {header.height}: data_hash does not match the txs")
    if header.evidence_hash != evidence_hash(block.evidence):
        raise InvalidBlock(f"height {header.height}: evidence_hash does not match the evidence")
    if header.last_commit_hash != commit_hash(block.last_commit):
        raise InvalidBlock(f"height {header.height}: last_commit_hash does not match last_commit")
    if (block.last_commit is None) != (header.height == 1):
        raise InvalidBlock(f"height {header.height}: last_commit must be present iff height > 1")
