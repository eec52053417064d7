"""The chain's vocabulary, shared by every room: what a message is and how it is encoded,
keys and signatures, result codes, units and events.

``types``       the core messages: transactions, blocks, proposals, votes, commits, evidence
``codec``       their canonical msgpack encoding
``crypto``      keys, addresses, domain-separated signatures, hashing, Merkle proofs
``signatures``  signature checks once per node: the threaded verifier and its verdict cache
``codes``       tx result codes, from mempool admission to the wire
``units``       exact conversion between decimal strings and integer units
``events``      what the exchange state machine reports
"""

from appchaind import native  # noqa: F401  (first: selects the compiled build or the source)
