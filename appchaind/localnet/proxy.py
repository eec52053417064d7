"""A fault-injecting TCP proxy: delay, jitter, stalls and cuts between two endpoints.

The kernel's netem is not available here, so ``bench soak`` puts its delay and loss
between validators in user space: each node dials each of its peers through a
:class:`Link`, which listens on one address and forwards every connection it accepts to
a target, both ways, applying the :class:`Faults` in force when each chunk is read:

- ``delay_ms`` plus a jitter drawn uniformly from ``0 .. jitter_ms`` (a seeded RNG);
- ``stall``: the probability that a chunk is held ``stall_ms`` longer, as a lost TCP
  segment holds the stream until it is retransmitted (loss on TCP is a stall, never a
  gap);
- ``cut``: the probability, per chunk, that the connection is reset both ways (RST), as
  a middlebox or a peer's crash would.

A chunk is never delivered before the one read before it, so whatever the delays the
bytes arrive intact and in order (or the connection is cut). Faults change at run time:
:attr:`Link.faults` is read for every chunk.

The soak runs one proxy process per node, on that node's network host, with a link per
peer the node dials (``python -m appchaind.localnet.proxy --link PORT=HOST:PORT ...``);
:class:`ProxyProcess` starts it and sets its links' faults through its stdin (one JSON
line each, answered ``ok`` or ``error: ...`` on its stdout). It exits when its stdin
closes, so it never outlives the process that started it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import struct
import subprocess
import sys
from dataclasses import asdict, dataclass, fields
from typing import IO, Any

import trio

__all__ = ["Faults", "Link", "LinkStats", "ProxyProcess", "NO_FAULTS"]

#: Chunks read ahead of delivery per direction: the proxy's memory per connection is
#: bounded (this times the read size), and a slow receiver slows the sender.
QUEUED_CHUNKS = 64
READ_BYTES = 65536
#: Seconds allowed to connect to the target; a client whose target does not answer is cut.
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Faults:
    """What a link does to the chunks it forwards (the default: nothing)."""

    delay_ms: int = 0
    jitter_ms: int = 0
    stall: float = 0.0
    stall_ms: int = 1_000
    cut: float = 0.0

    def __post_init__(self) -> None:
        for name in ("delay_ms", "jitter_ms", "stall_ms"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= 600_000:
                raise ValueError(f"{name} must be an int from 0 to 600000, got {value!r}")
        for name in ("stall", "cut"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a probability from 0 to 1, got {value!r}")

    @classmethod
    def from_json(cls, doc: Any) -> Faults:
        """Faults from a JSON object; an unknown key is named in the error."""
        if not isinstance(doc, dict):
            raise ValueError(f"faults must be a JSON object, got {doc!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValueError(f"unknown fault {unknown[0]!r}; known: {', '.join(sorted(known))}")
        return cls(**doc)


NO_FAULTS = Faults()


@dataclass
class LinkStats:
    """What a link has done since it started."""

    connections: int = 0
    chunks: int = 0
    bytes: int = 0
    delayed: int = 0
    stalls: int = 0
    cuts: int = 0


class _Cut(Exception):
    """The fault drawn for a chunk: reset the connection both ways."""


def _reset(stream: trio.SocketStream) -> None:
    """Closing ``stream`` will send an RST, not a FIN."""
    try:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


async def _close(stream: trio.SocketStream) -> None:
    try:
        await stream.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


class Link:
    """Forwards connections accepted on ``listen`` to ``target`` with :attr:`faults`."""

    def __init__(
        self,
        listen: tuple[str, int],
        target: tuple[str, int],
        *,
        seed: int = 0,
        faults: Faults = NO_FAULTS,
    ) -> None:
        self.listen = listen
        self.target = target
        #: Read for every chunk: assign a new :class:`Faults` to change them at run time.
        self.faults = faults
        self.stats = LinkStats()
        self.bound_port = 0
        self._rng = random.Random(seed)

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listens (port 0: a free one, then :attr:`bound_port`) and serves until cancelled."""
        host, port = self.listen
        listeners = await trio.open_tcp_listeners(port, host=host)
        self.bound_port = listeners[0].socket.getsockname()[1]
        task_status.started(self.bound_port)
        await trio.serve_listeners(self._serve, listeners)

    async def _serve(self, client: trio.SocketStream) -> None:
        self.stats.connections += 1
        try:
            with trio.fail_after(CONNECT_TIMEOUT_S):
                upstream = await trio.open_tcp_stream(*self.target)
        except (OSError, trio.TooSlowError):
            _reset(client)
            await _close(client)
            return
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._direction, client, upstream)
                nursery.start_soon(self._direction, upstream, client)
        except BaseException as exc:  # a cut, a reset, or the proxy stopping: RST both ways
            for stream in (client, upstream):
                _reset(stream)
            if not isinstance(exc, Exception | BaseExceptionGroup) or not _contained(exc):
                raise
        finally:
            with trio.CancelScope(shield=True):
                await _close(client)
                await _close(upstream)

    async def _direction(self, source: trio.SocketStream, sink: trio.SocketStream) -> None:
        """One direction: a reader that stamps each chunk with its delivery time and a
        writer that delivers it then, in order; the end of the source is passed on as a
        half-close once the chunks before it are delivered."""
        send, receive = trio.open_memory_channel[tuple[float, bytes]](QUEUED_CHUNKS)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._deliver, receive, sink)
            async with send:
                last = trio.current_time()
                while True:
                    data = await source.receive_some(READ_BYTES)
                    if not data:
                        break
                    last = max(last, self._due(len(data)))
                    await send.send((last, data))

    def _due(self, size: int) -> float:
        """When a chunk read now is to be delivered (raises _Cut for a cut)."""
        faults, rng, stats = self.faults, self._rng, self.stats
        stats.chunks += 1
        stats.bytes += size
        if faults.cut and rng.random() < faults.cut:
            stats.cuts += 1
            raise _Cut("the link's cut fault")
        hold_ms = faults.delay_ms + (rng.randint(0, faults.jitter_ms) if faults.jitter_ms else 0)
        if faults.stall and rng.random() < faults.stall:
            stats.stalls += 1
            hold_ms += faults.stall_ms
        if hold_ms:
            stats.delayed += 1
        return trio.current_time() + hold_ms / 1000

    async def _deliver(
        self, receive: trio.MemoryReceiveChannel[tuple[float, bytes]], sink: trio.SocketStream
    ) -> None:
        async for due, data in receive:
            await trio.sleep_until(due)
            await sink.send_all(data)
        try:
            await sink.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


def _contained(exc: BaseException) -> bool:
    """True when ``exc`` is one connection's end (a cut, a reset, a broken stream)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_contained(e) for e in exc.exceptions)
    return isinstance(exc, _Cut | trio.BrokenResourceError | trio.ClosedResourceError | OSError)


# ---------------------------------------------------------------------- the process


class ProxyProcess:
    """A proxy process with one link per ``(listen port, target host, target port)``,
    started with ``prefix`` (e.g. ``ip netns exec NAME``: on a network host); its links
    listen on ``listen_host``."""

    def __init__(
        self,
        links: list[tuple[int, str, int]],
        *,
        prefix: list[str] | None = None,
        listen_host: str = "127.0.0.1",
        seed: int = 0,
        log: IO[bytes] | None = None,
    ) -> None:
        args = [sys.executable, "-m", "appchaind.localnet.proxy", "--listen-host", listen_host]
        args += ["--seed", str(seed)]
        for port, host, target in links:
            args += ["--link", f"{port}={host}:{target}"]
        self.links = len(links)
        self.proc = subprocess.Popen(
            [*(prefix or []), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.DEVNULL,
        )  # fmt: skip
        #: The port each link listens on (as asked, or the free one taken for port 0).
        self.ports = [int(p) for p in self._answer("ready").split()]

    def _answer(self, expected: str) -> str:
        """The rest of the proxy's next line, which starts with ``expected``; ValueError
        for an ``error: ...`` line (a bad request), RuntimeError if the proxy is gone."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if line.startswith("error: "):
            raise ValueError(line[len("error: ") :])
        if not line.startswith(expected):
            self.close()
            raise RuntimeError(f"the proxy answered {line!r} (expected {expected!r})")
        return line[len(expected) :].strip()

    def _ask(self, doc: dict[str, Any], expected: str = "ok") -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(doc).encode() + b"\n")
        self.proc.stdin.flush()
        return self._answer(expected)

    def set(self, faults: Faults, link: int | None = None) -> None:
        """``faults`` on link ``link`` (an index into the links given), or on every link."""
        self._ask({"link": link, "faults": asdict(faults)})

    def stats(self) -> list[LinkStats]:
        return [LinkStats(**doc) for doc in json.loads(self._ask({"stats": True}, "stats"))]

    def close(self) -> None:
        """Closes the proxy's stdin (it exits) and waits for it (killed after 5 s)."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _command(links: list[Link], line: bytes) -> str:
    """One control line's answer: set faults, or report statistics."""
    try:
        doc = json.loads(line)
        if not isinstance(doc, dict):
            raise ValueError("a control line is a JSON object")
        if doc.get("stats"):
            return "stats " + json.dumps([asdict(link.stats) for link in links])
        faults = Faults.from_json(doc.get("faults"))
        which = doc.get("link")
        if which is not None and (type(which) is not int or not 0 <= which < len(links)):
            raise ValueError(f"link must be null or from 0 to {len(links) - 1}, got {which!r}")
    except (ValueError, TypeError) as exc:
        return f"error: {exc}"
    for link in links if which is None else [links[which]]:
        link.faults = faults
    return "ok"


async def _serve(links: list[Link]) -> None:
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with trio.open_nursery() as nursery:
        ports = [await nursery.start(link.run) for link in links]
        print("ready " + " ".join(map(str, ports)), flush=True)
        buffer = b""
        while True:
            data = await stdin.receive_some(65536)
            if not data:
                break  # the parent is gone or done with us
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                print(_command(links, line), flush=True)
        nursery.cancel_scope.cancel()


def _link_arg(text: str) -> tuple[int, str, int]:
    port, _, target = text.partition("=")
    host, _, target_port = target.rpartition(":")
    try:
        return int(port), host, int(target_port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--link takes PORT=HOST:PORT, got {text!r}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m appchaind.localnet.proxy",
        description="Forward TCP connections with faults set on stdin (JSON lines).",
    )
    parser.add_argument("--link", type=_link_arg, action="append", required=True,
                        help="listen on PORT (0: any), forward to HOST:PORT (repeatable)")  # fmt: skip
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    links = [
        Link((args.listen_host, port), (host, target), seed=args.seed * 1000 + i)
        for i, (port, host, target) in enumerate(args.link)
    ]
    trio.run(_serve, links)


if __name__ == "__main__":
    main()
