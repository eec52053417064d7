"""Signature verdicts: ed25519 verification with a bounded cache of verdicts.

A signature is verified once per node: whoever checks it first (the consensus channel
dropping a peer that relays a forged vote, the consensus machine counting votes) leaves
the verdict here for the others.
"""

from __future__ import annotations

from collections import OrderedDict

from appchaind import crypto

__all__ = ["CachingVerifier"]


class CachingVerifier:
    """ed25519 verification with a bounded verdict cache, shared by the p2p reactor (which
    drops peers that send badly signed votes) and the consensus machine (which then finds
    the verdict cached instead of verifying twice)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._cache: OrderedDict[tuple[bytes, bytes, bytes], bool] = OrderedDict()
        self._capacity = capacity
        self.verified = 0

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        key = (public_key, signature, message)
        verdict = self._cache.get(key)
        if verdict is None:
            verdict = crypto.verify(public_key, message, signature)
            self.verified += 1
            self._cache[key] = verdict
            if len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        return verdict
