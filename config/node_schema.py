"""The node's ``config.toml`` keys: each key's name, type, default, allowed values and
documentation (:data:`SCHEMA`), the single source of truth that
:mod:`config.node_config` validates against and renders a commented ``config.toml``
from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["Key", "SCHEMA", "MS"]


@dataclass(frozen=True)
class Key:
    """One configuration key.

    ``kind`` is one of "int", "bool", "str", "address" (host:port), "peers"
    (a list of "nodeid@host:port"), "choice" (one of ``choices``).
    """

    name: str
    kind: str
    default: Any
    doc: str
    min: int | None = None
    max: int | None = None
    choices: tuple[str, ...] = ()


MS = "milliseconds"

SCHEMA: Mapping[str, tuple[Key, ...]] = MappingProxyType(
    {
        "node": (
            Key("moniker", "str", "node", "A human-readable name for this node, shown in status."),
            Key(
                "validator",
                "bool",
                True,
                "Sign proposals and votes with validator_key.json when this node is in the validator set.",
            ),
        ),
        "p2p": (
            Key(
                "listen_address",
                "address",
                "127.0.0.1:26600",
                "Where to accept peer connections (host:port).",
            ),
            Key(
                "persistent_peers",
                "peers",
                [],
                'Peers to keep connected, as "nodeid@host:port"; the node id is the hex address of the peer\'s node key.',
            ),
            Key(
                "max_inbound_peers",
                "int",
                40,
                "At most this many peers that dialled us.",
                0,
                10_000,
            ),
            Key(
                "max_outbound_peers",
                "int",
                10,
                "At most this many peers we dialled beyond the persistent ones.",
                0,
                10_000,
            ),
            Key(
                "send_queue_messages",
                "int",
                1024,
                "Per-peer send queue length; a peer that lets it fill is dropped.",
                16,
                1_000_000,
            ),
            Key(
                "max_frame_bytes",
                "int",
                16 * 1024 * 1024,
                "Largest p2p frame accepted; larger frames drop the peer. Must exceed the chain's params.max_block_bytes by 2 MiB (a proposal carries its block and the last commit).",
                1024,
                64 * 1024 * 1024,
            ),
            Key(
                "handshake_timeout_ms",
                "int",
                5_000,
                f"Time allowed for the authenticated handshake, in {MS}.",
                100,
                120_000,
            ),
            Key(
                "dial_backoff_min_ms",
                "int",
                200,
                f"First redial delay of a lost persistent peer, in {MS}; it doubles per failure.",
                10,
                600_000,
            ),
            Key(
                "dial_backoff_max_ms",
                "int",
                30_000,
                f"Longest redial delay, in {MS}.",
                10,
                3_600_000,
            ),
        ),
        "rpc": (
            Key(
                "listen_address",
                "address",
                "127.0.0.1:26601",
                "Where traders connect (length-prefixed msgpack RPC).",
            ),
            Key(
                "max_connections",
                "int",
                1_000,
                "At most this many RPC connections at once; one more gets an error frame "
                "and is closed (refusals are logged, at most one line per 5 s, and counted "
                'as appchaind_connections_failed_total{port="rpc",reason="refused"}).',
                1,
                1_000_000,
            ),
            Key(
                "max_connections_per_host",
                "int",
                200,
                "At most this many RPC connections at once from one IP address, so that "
                "one host's flood of connections leaves room for the others.",
                1,
                1_000_000,
            ),
            Key(
                "request_timeout_ms",
                "int",
                10_000,
                "Time allowed to receive the rest of a request once its first byte came, in "
                f"{MS}: a slower sender (a slow-loris) gets an error frame and is closed. An "
                "idle connection between requests is not timed out (subscribers are idle).",
                100,
                600_000,
            ),
            Key(
                "max_message_bytes",
                "int",
                1024 * 1024,
                "Largest RPC request accepted, in bytes.",
                1024,
                64 * 1024 * 1024,
            ),
            Key("max_subscriptions", "int", 32, "Subscriptions per connection.", 0, 10_000),
            Key(
                "requests_per_second",
                "int",
                1_000,
                "Request rate allowed per connection (token bucket).",
                1,
                1_000_000,
            ),
            Key(
                "subscriber_queue_messages",
                "int",
                4_096,
                "Messages buffered for a subscriber before it is dropped as too slow.",
                16,
                10_000_000,
            ),
        ),
        "http": (
            Key(
                "listen_address",
                "address",
                "127.0.0.1:26602",
                "Where JSON status, block queries and /metrics are served.",
            ),
            Key("enabled", "bool", True, "Serve the HTTP port at all."),
            Key(
                "max_connections",
                "int",
                256,
                "At most this many HTTP connections at once; one more is answered 503 and "
                "closed (refusals are logged, at most one line per 5 s, and counted as "
                'appchaind_connections_failed_total{port="http",reason="refused"}).',
                1,
                1_000_000,
            ),
            Key(
                "max_connections_per_host",
                "int",
                64,
                "At most this many HTTP connections at once from one IP address.",
                1,
                1_000_000,
            ),
            Key(
                "request_timeout_ms",
                "int",
                10_000,
                f"Time allowed for one request, headers and body, in {MS}, and on a kept-alive "
                "connection for the next one to come; a slower client (a slow-loris) is "
                "answered 408 and closed.",
                100,
                600_000,
            ),
            Key(
                "max_body_bytes",
                "int",
                1024 * 1024,
                "Largest request body accepted, in bytes; a larger one (by its "
                "content-length, before it is read) is answered 413 and the connection closed.",
                1024,
                64 * 1024 * 1024,
            ),
        ),
        "consensus": (
            Key(
                "timeout_propose_ms",
                "int",
                1_000,
                f"How long to wait for a proposal in round 0, in {MS}. Under load the "
                "proposer may commit the previous block a few hundred ms after the others and "
                "then build a large block: a timeout shorter than that fails the round, which "
                "costs more than the wait (at 400 ms a loaded 4-validator chain went to round 1 "
                "at one height in three, each such height taking about 2 s).",
                1,
                600_000,
            ),
            Key(
                "timeout_propose_delta_ms",
                "int",
                200,
                f"Added to timeout_propose per round, in {MS}.",
                0,
                600_000,
            ),
            Key(
                "timeout_prevote_ms",
                "int",
                200,
                f"How long to wait for more prevotes after +2/3 of any, in {MS}.",
                1,
                600_000,
            ),
            Key(
                "timeout_prevote_delta_ms",
                "int",
                100,
                f"Added to timeout_prevote per round, in {MS}.",
                0,
                600_000,
            ),
            Key(
                "timeout_precommit_ms",
                "int",
                200,
                f"How long to wait for more precommits after +2/3 of any, in {MS}.",
                1,
                600_000,
            ),
            Key(
                "timeout_precommit_delta_ms",
                "int",
                100,
                f"Added to timeout_precommit per round, in {MS}.",
                0,
                600_000,
            ),
            Key(
                "timeout_commit_ms",
                "int",
                100,
                f"Pause after a commit before the next height, to gather late precommits, in {MS}.",
                0,
                600_000,
            ),
        ),
        "mempool": (
            Key("max_txs", "int", 50_000, "Transactions held at most.", 1, 10_000_000),
            Key(
                "max_bytes",
                "int",
                256 * 1024 * 1024,
                "Bytes of transactions held at most.",
                1024,
                16 * 1024**3,
            ),
            Key(
                "max_txs_per_account",
                "int",
                1_000,
                "Transactions one account may have waiting.",
                1,
                10_000_000,
            ),
            Key(
                "max_block_txs",
                "int",
                10_000,
                "Transactions reaped into one proposal at most.",
                1,
                100_000,
            ),
            Key(
                "block_budget_ms",
                "int",
                # 300 made bigger blocks under overload (4 validators on 2 cores offered
                # 4,800 orders/s: gaps between blocks of 2.1-3.0 s); 200 kept every gap
                # under 1.7 s for ~6% fewer orders committed (1,746 vs 1,852/s, 3 runs each).
                200,
                "Work a proposal may cost a validator (checking it, then executing it), in "
                f"{MS}: this node measures what a tx costs it and proposes at most as many as "
                "fit (at most max_block_txs; half as many in each later round of a height).",
                10,
                60_000,
            ),
            Key(
                "backlog_blocks",
                "int",
                2,
                "Blocks' worth of waiting transactions beyond which new ones are refused as "
                "busy (code 44, with a retry delay), so that an accepted tx commits within a "
                "few blocks even when more is offered than the chain can take.",
                1,
                1_000,
            ),
            Key(
                "backlog_ms",
                "int",
                2_000,
                "And no more waiting transactions than the chain commits in this long, in "
                f"{MS}, at the rate it has been committing: what is accepted commits within "
                "about this time, and an overload's backlog is gone this soon after it stops.",
                100,
                600_000,
            ),
            Key(
                "max_admitting",
                "int",
                4_096,
                "Transactions being admitted (decoded, signature-checked) at once beyond "
                "which new ones are refused as busy.",
                1,
                1_000_000,
            ),
            Key(
                "max_admit_delay_ms",
                "int",
                250,
                "Refuse clients' transactions as busy while those already waiting for their "
                f"signature check have waited longer than this, in {MS}: a client's answer "
                "stays quick however much is offered.",
                1,
                600_000,
            ),
            Key(
                "verify_threads",
                "int",
                2,
                "Threads that verify signatures (libsodium releases the GIL); 0 checks them "
                "on the node's own thread, which is faster where the node has no spare core "
                "(several validators on one machine: localnet init writes 0 there).",
                0,
                256,
            ),
            Key(
                "recheck",
                "bool",
                True,
                "Re-run check_tx on up to 2,000 waiting transactions (oldest first) after each commit, dropping those that became invalid.",
            ),
        ),
        "pbs": (
            Key(
                "enabled",
                "bool",
                True,
                "Accept bids from bonded builders for the right to build our blocks (sent over p2p on the builder channel); the best valid bid wins, otherwise we build our own block from the mempool.",
            ),
            Key(
                "bid_deadline_ms",
                "int",
                150,
                f"How long after our turn starts we wait for builder bids, in {MS}, at most: the wait ends as soon as every registered builder able to bid has bid, and is skipped when none is. Must be less than half of consensus.timeout_propose_ms (the other validators' wait for our proposal).",
                0,
                60_000,
            ),
            Key(
                "listen_address",
                "address",
                "127.0.0.1:26603",
                "Reserved (builders now send bids over p2p, on the builder channel; this address is not opened).",
            ),
            Key(
                "inclusion_after_blocks",
                "int",
                1,
                "Inclusion lists against censorship: our precommit for height H lists (up to the chain's max_inclusion_txs and max_inclusion_bytes, oldest first) the orders and cancels of our mempool that the block does not carry and that we admitted when our last committed height was H - inclusion_after_blocks or lower; the next block must execute them. With 1, a tx a block leaves out runs at the end of the next block at the latest. 0 lists nothing.",
                0,
                1_000,
            ),
        ),
        "oracle": (
            Key(
                "source",
                "choice",
                "simulated",
                "Where this validator's prices come from.",
                choices=("simulated", "file"),
            ),
            Key(
                "file_path",
                "str",
                "oracle_prices.json",
                'For source = "file": JSON {"BTC-PERP": "65000.5", ...} written by the operator\'s process (relative to the home).',
            ),
            Key(
                "max_staleness_ms",
                "int",
                10_000,
                f'For source = "file": prices older than this are not reported, in {MS}.',
                100,
                3_600_000,
            ),
            Key(
                "simulated_step_ppm",
                "int",
                500,
                'For source = "simulated": the shared walk moves by up to this much per second, in parts per million (local networks use more, so liquidations happen in a demo).',
                0,
                100_000,
            ),
            Key(
                "simulated_noise_ppm",
                "int",
                200,
                'For source = "simulated": this validator\'s noise around the shared walk, in parts per million.',
                0,
                100_000,
            ),
        ),
        "logging": (
            Key(
                "level",
                "choice",
                "info",
                "Least severe level written.",
                choices=("debug", "info", "warning", "error"),
            ),
            Key(
                "format",
                "choice",
                "text",
                "One line per event: key=value text or JSON.",
                choices=("text", "json"),
            ),
        ),
    }
)
