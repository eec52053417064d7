"""Talking to a node's RPC port from outside: the client library (``library``: queries,
signed txs, streams) and the trading commands of the CLI built on it (``cli``: ``tx``,
``query``, ``watch``, ``status``)."""
