"""The node the RPC and HTTP targets talk to: a real :class:`~appchaind.node.node.Node` of a
fresh home (the exchange at its genesis, LevelDB in a temporary folder), never started.

Block 2 of the samples is in its store. Its ports see it through :class:`FuzzNodeView`, the node's view in every way but one:
a submitted tx is judged at once by the application's ``check_tx`` (decoding, signature,
envelope), where the running node would queue its signature for the verifier's threads,
which an unstarted node does not run.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import trio
import trio.testing

from appchaind.chain.codes import Code
from appchaind.chain.types import tx_hash
from appchaind.home import init_home
from appchaind.node.mempool import AddResult
from appchaind.node.node import TX_INDEX, Node
from appchaind.node.view import encode_tx_index_entry
from appchaind.store import WriteBatch
from tools.fuzz import samples

__all__ = ["FuzzNodeView", "fuzz_node", "serve_bytes"]


class FuzzNodeView:
    """``node`` as its ports see it, with txs admitted by ``check_tx`` alone."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)

    async def submit_tx(self, raw: bytes) -> AddResult:
        return self._admit(raw)

    async def submit_txs(self, raws: Sequence[bytes]) -> list[AddResult]:
        return [self._admit(raw) for raw in raws]

    def _admit(self, raw: bytes) -> AddResult:
        exchange = self._node.exchange
        assert exchange is not None
        result = exchange.check_tx(raw)
        return AddResult(result.code == Code.OK, tx_hash(raw), result.code, result.log)


def _store_sample_block(node: Node) -> None:
    """Block 2 of :mod:`tools.fuzz.samples`, its commit and its txs' index entries, so that
    ``/block/2``, ``block`` and ``tx`` answer with a block and txs, not only "not found"."""
    block = samples.block()
    batch = WriteBatch()
    batch.put_block(block, samples.commit())
    for index, raw in enumerate(block.txs):
        batch.put(TX_INDEX + tx_hash(raw), encode_tx_index_entry(2, index, 0, "", b"\x90"))
    node.store.write(batch)


@cache
def fuzz_node() -> FuzzNodeView:
    """The one node of this process (made on first use, removed at exit)."""
    folder = Path(tempfile.mkdtemp(prefix="appchaind-fuzz-"))
    home = folder / "home"
    init_home(home, moniker="fuzz", chain_id=samples.CHAIN_ID, genesis_time="2026-01-01T00:00:00Z")
    node = Node(home)
    _store_sample_block(node)

    def remove() -> None:
        node.store.close()
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(remove)
    return FuzzNodeView(node)


async def serve_bytes(handle: Callable[[Any], Awaitable[None]], data: bytes) -> bytes:
    """What a port's handler of one connection (``handle``, given the server's end of an
    in-memory connection) writes to a client that sends ``data`` and closes its side, until
    the server closes its own. A server that stops reading first (it answered and closed)
    cuts the client's send short, as a real connection's would."""
    server_end, client_end = trio.testing.memory_stream_pair()
    replies = bytearray()

    async def client() -> None:
        try:
            await client_end.send_all(data)
            await client_end.send_eof()
        except trio.BrokenResourceError:
            pass
        while chunk := await client_end.receive_some(65536):
            replies.extend(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        try:
            await handle(server_end)
        finally:
            await server_end.aclose()
    return bytes(replies)
