"""The client library's pipelined requests: many requests in one write, each answered on
its own id, and a lost connection answering every request still waiting."""

from __future__ import annotations

from functools import partial
from typing import Any

import trio

from appchaind.client.library import Client, RpcError
from appchaind.rpc.protocol import ErrorCode, FrameDecoder, parse_request, response_frame


class _Server:
    """A loopback RPC server that records how its requests arrive (reads, ids) and
    answers ``echo`` with its params; ``hang_up`` closes after that many requests."""

    def __init__(self, hang_up: int | None = None) -> None:
        self.reads: list[int] = []
        self.hang_up = hang_up
        self.port = 0

    async def serve(self, stream: trio.SocketStream) -> None:
        decoder = FrameDecoder(1 << 20)
        seen = 0
        async with stream:
            while data := await stream.receive_some(65536):
                payloads = decoder.feed(data)
                self.reads.append(len(payloads))
                for payload in payloads:
                    request_id, _method, params = parse_request(payload, 1 << 20)
                    seen += 1
                    if self.hang_up is not None and seen > self.hang_up:
                        return
                    await stream.send_all(response_frame(request_id, params))


async def _connect(nursery: trio.Nursery, server: _Server) -> Client:
    listeners = await nursery.start(partial(trio.serve_tcp, server.serve, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    client = Client(stream)
    nursery.start_soon(client._read_loop)
    return client


async def test_queued_requests_go_out_in_one_write_and_each_gets_its_reply() -> None:
    server = _Server()
    answers: dict[int, Any] = {}
    async with trio.open_nursery() as nursery:
        client = await _connect(nursery, server)
        for n in range(50):
            client.request_nowait(
                "echo", {"n": n}, lambda reply, n=n: answers.__setitem__(n, reply)
            )
        assert server.reads == []  # nothing is written before flush
        await client.flush()
        with trio.fail_after(10):
            while len(answers) < 50:
                await trio.sleep(0.01)
        assert answers == {n: {"n": n} for n in range(50)}
        assert server.reads[0] > 1  # the 50 frames arrived in few reads, not 50
        # Plain requests made concurrently are joined into writes too, replies matched.
        results: dict[int, Any] = {}

        async def ask(n: int) -> None:
            results[n] = await client.request("echo", {"m": n})

        async with trio.open_nursery() as askers:
            for n in range(30):
                askers.start_soon(ask, n)
        assert results == {n: {"m": n} for n in range(30)}
        nursery.cancel_scope.cancel()


async def test_a_lost_connection_answers_every_waiting_request_with_an_error() -> None:
    server = _Server(hang_up=3)
    answers: list[Any] = []
    async with trio.open_nursery() as nursery:
        client = await _connect(nursery, server)
        for n in range(10):
            client.request_nowait("echo", {"n": n}, answers.append)
        await client.flush()
        with trio.fail_after(10):
            while len(answers) < 10:
                await trio.sleep(0.01)
        assert answers[:3] == [{"n": 0}, {"n": 1}, {"n": 2}]  # answered before the hang-up
        assert all(isinstance(a, RpcError) for a in answers[3:]) and len(answers) == 10
        assert {a.code for a in answers[3:]} == {ErrorCode.UNAVAILABLE}
        # Requests after the loss are answered at once with the same error.
        late: list[Any] = []
        client.request_nowait("echo", {}, late.append)
        assert len(late) == 1 and isinstance(late[0], RpcError)
        nursery.cancel_scope.cancel()
