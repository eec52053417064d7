"""Keys, addresses, domain-separated signatures, hashing and Merkle proofs.

Signatures are ed25519 (libsodium via pynacl). What is signed is never a raw
message: it is ``sign_bytes(chain_id, kind, body)``, the canonical msgpack of
``["appchaind/v1", chain_id, kind, body]``, so a signature made for one chain
or one message kind can never be replayed as another.

Hashes are SHA-256. The Merkle tree is RFC 6962's (leaf = H(0x00 || item),
inner = H(0x01 || left || right), split at the largest power of two below n),
the tree CometBFT uses for its tx and validator hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import msgpack
import nacl.exceptions
import nacl.signing

__all__ = [
    "DOMAIN",
    "KeyFileError",
    "PrivateKey",
    "address_of",
    "sha256",
    "sign_bytes",
    "verify",
    "merkle_root",
    "merkle_proof",
    "verify_merkle_proof",
    "MerkleProof",
]

#: The domain tag that starts every sign-bytes. Bump it on an incompatible change.
DOMAIN = "appchaind/v1"

ADDRESS_BYTES = 20


def sha256(data: bytes) -> bytes:
    """SHA-256 digest (32 bytes)."""
    return hashlib.sha256(data).digest()


def address_of(public_key: bytes) -> bytes:
    """An account's or validator's address: the first 20 bytes of SHA-256(public key)."""
    if len(public_key) != 32:
        raise ValueError(f"an ed25519 public key is 32 bytes, got {len(public_key)}")
    return hashlib.sha256(public_key).digest()[:ADDRESS_BYTES]


def sign_bytes(chain_id: str, kind: str, body: bytes) -> bytes:
    """The exact bytes a signature covers: domain tag, chain id, message kind, canonical body."""
    data: bytes = msgpack.packb([DOMAIN, chain_id, kind, body], use_bin_type=True)
    return data


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


class KeyFileError(Exception):
    """A key file that is missing, unreadable or malformed. The message says which file and why."""


class PrivateKey:
    """An ed25519 signing key. ``seed`` is the 32-byte secret."""

    __slots__ = ("_signing_key", "public_key", "address")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError(f"an ed25519 seed is 32 bytes, got {len(seed)}")
        self._signing_key = nacl.signing.SigningKey(seed)
        self.public_key: bytes = bytes(self._signing_key.verify_key)
        self.address: bytes = address_of(self.public_key)

    @classmethod
    def generate(cls) -> PrivateKey:
        """A fresh key from the operating system's randomness (never used in replicated state)."""
        return cls(os.urandom(32))

    @property
    def seed(self) -> bytes:
        return bytes(self._signing_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte ed25519 signature of ``message``."""
        return self._signing_key.sign(message).signature

    def sign_message(self, chain_id: str, kind: str, body: bytes) -> bytes:
        """Signs the domain-separated ``sign_bytes(chain_id, kind, body)``."""
        return self.sign(sign_bytes(chain_id, kind, body))

    # ------------------------------------------------------------------ key files

    def to_json(self) -> str:
        return json.dumps(
            {
                "type": "ed25519",
                "address": self.address.hex(),
                "public_key": self.public_key.hex(),
                "private_key": self.seed.hex(),
            },
            indent=2,
        )

    def save(self, path: Path, *, overwrite: bool = False) -> None:
        """Writes the key file with mode 0600. Refuses to replace an existing file unless asked."""
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            raise KeyFileError(
                f"{path} already exists; refusing to overwrite a key (use --force to replace it)"
            ) from None
        with os.fdopen(fd, "w") as f:
            f.write(self.to_json() + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(path, 0o600)

    @classmethod
    def load(cls, path: Path) -> PrivateKey:
        """Reads a key file written by :meth:`save`; errors name the file and the problem."""
        try:
            doc = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise KeyFileError(f"key file {path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise KeyFileError(f"key file {path} is not readable JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("type") != "ed25519":
            raise KeyFileError(f'key file {path}: expected {{"type": "ed25519", ...}}')
        try:
            seed = bytes.fromhex(doc["private_key"])
            key = cls(seed)
        except (KeyError, TypeError, ValueError):
            raise KeyFileError(f"key file {path}: private_key must be 64 hex characters") from None
        if "public_key" in doc and doc["public_key"] != key.public_key.hex():
            raise KeyFileError(f"key file {path}: public_key does not match private_key")
        return key

    @classmethod
    def load_private(cls, path: Path) -> PrivateKey:
        """:meth:`load`, for a key the node holds (its node key, its validator key): refused
        when anyone but the file's owner may read or write it, as ssh refuses such a key.
        The key may already have leaked; the message says so and how to close the file."""
        try:
            mode = os.stat(path).st_mode & 0o777
        except FileNotFoundError:
            raise KeyFileError(f"key file {path} does not exist") from None
        if mode & 0o077:
            raise KeyFileError(
                f"key file {path} is open to other users (mode {mode:04o}); run "
                f"`chmod 600 {path}` (and replace the key if others could have read it)"
            )
        return cls.load(path)


# ---------------------------------------------------------------------------- Merkle tree

_EMPTY_ROOT = hashlib.sha256(b"").digest()


def _leaf_hash(item: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + item).digest()


def _inner_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split_point(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _root_of_hashes(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 1:
        return leaves[0]
    k = _split_point(n)
    return _inner_hash(_root_of_hashes(leaves[:k]), _root_of_hashes(leaves[k:]))


def merkle_root(items: list[bytes]) -> bytes:
    """The Merkle root of ``items`` (SHA-256 of b"" for an empty list)."""
    if not items:
        return _EMPTY_ROOT
    return _root_of_hashes([_leaf_hash(item) for item in items])


@dataclass(frozen=True, slots=True)
class MerkleProof:
    """That leaf ``index`` of ``total`` is in the tree: sibling hashes from the leaf up."""

    index: int
    total: int
    aunts: tuple[bytes, ...]


def merkle_proof(items: list[bytes], index: int) -> MerkleProof:
    """The inclusion proof of ``items[index]``."""
    if not 0 <= index < len(items):
        raise IndexError(f"index {index} outside a tree of {len(items)} items")
    leaves = [_leaf_hash(item) for item in items]
    lo, hi, i = 0, len(leaves), index
    # Walk down from the root, remembering the sibling subtree at each level.
    path: list[bytes] = []
    while hi - lo > 1:
        k = _split_point(hi - lo)
        if i - lo < k:
            path.append(_root_of_hashes(leaves[lo + k : hi]))
            hi = lo + k
        else:
            path.append(_root_of_hashes(leaves[lo : lo + k]))
            lo = lo + k
    return MerkleProof(index=index, total=len(items), aunts=tuple(reversed(path)))


def _root_from_aunts(index: int, total: int, leaf: bytes, aunts: list[bytes]) -> bytes | None:
    if total == 1:
        return leaf if not aunts else None
    if not aunts:
        return None
    k = _split_point(total)
    if index < k:
        left = _root_from_aunts(index, k, leaf, aunts[:-1])
        return None if left is None else _inner_hash(left, aunts[-1])
    right = _root_from_aunts(index - k, total - k, leaf, aunts[:-1])
    return None if right is None else _inner_hash(aunts[-1], right)


def verify_merkle_proof(root: bytes, item: bytes, proof: MerkleProof) -> bool:
    """True when ``proof`` shows ``item`` at ``proof.index`` in the tree whose root is ``root``."""
    if not 0 <= proof.index < proof.total:
        return False
    computed = _root_from_aunts(proof.index, proof.total, _leaf_hash(item), list(proof.aunts))
    return computed == root
