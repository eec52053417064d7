"""A node with its ports: the node, its RPC and HTTP servers and the metrics collector,
wired together and run in one nursery.

The node imports none of what faces outside. This module builds the servers on the
node's read-only view (:class:`~appchaind.node.view.NodeView`), registers the RPC
server's commit feed and the metrics collector as ``on_commit`` listeners, starts the
node, then opens the HTTP and RPC ports. Cancelling the nursery stops them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from appchaind.http.routes import make_http_server
from appchaind.http.server import HttpServer
from appchaind.node.collector import MetricsCollector
from appchaind.node.node import Node
from appchaind.rpc.server import RpcServer

__all__ = ["NodeService", "serve_node"]


@dataclass(frozen=True, slots=True)
class NodeService:
    """A running node and its servers (``http`` is None when ``[http] enabled`` is false)."""

    node: Node
    rpc: RpcServer
    http: HttpServer | None
    collector: MetricsCollector


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


async def serve_node(
    node: Node, *, task_status: trio.TaskStatus[NodeService] = trio.TASK_STATUS_IGNORED
) -> None:
    """Runs ``node`` with its RPC and HTTP ports until cancelled."""
    rpc = RpcServer(node)
    collector = MetricsCollector(node, rpc)
    node.on_commit.append(rpc.on_commit)
    node.on_commit.append(collector.on_commit)
    http: HttpServer | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        if node.config.http.enabled:
            http = make_http_server(
                node, rpc, collector.render, on_connection_failure=node.metrics.connection_failed
            )
            host, port = _host_port(node.config.http.listen_address)
            await nursery.start(http.run, host, port)
        host, port = _host_port(node.config.rpc.listen_address)
        await nursery.start(rpc.run, host, port)
        task_status.started(NodeService(node, rpc, http, collector))
