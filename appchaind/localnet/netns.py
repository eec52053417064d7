"""Validators on separate network hosts: one Linux network namespace per node.

:class:`Hosts` makes ``n`` namespaces, each with its own network stack and one address
(``10.<net>.0.<i + 2>/24`` on ``eth0``), linked by veth pairs to a bridge in this
namespace (``10.<net>.0.1``), so this process reaches every node and the nodes reach
each other only through the bridge. Faults act on that network:

- :meth:`Hosts.isolate`, :meth:`Hosts.partition`: blackhole routes between hosts (both
  ways), :meth:`Hosts.heal` removes them all;
- :meth:`Hosts.link`: a host's link down or up (a flapping link is a few of those);
- :meth:`Hosts.limit`: a token-bucket bandwidth limit on a host's link (``tc tbf``),
  :meth:`Hosts.unlimit` removes it.

Everything made is removed on :meth:`Hosts.close` (also when the process is killed the
next :class:`Hosts` of the same name removes leftovers first). It needs root and the
``ip`` and ``tc`` commands; :func:`available` says whether this machine allows it, and
why not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from itertools import combinations

__all__ = ["Hosts", "available"]


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def available() -> str | None:
    """None if network namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"the {tool!r} command is not installed (Debian: iproute2)"
    probe = f"acprobe{os.getpid() % 100000}"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    _run("ip", "netns", "del", probe, check=False)
    return None


class Hosts:
    """``n`` network hosts named ``<name>-<i>`` on the subnet ``10.<net>.0.0/24``."""

    def __init__(self, n: int, name: str = "ac", net: int = 77) -> None:
        if not 1 <= n <= 200:
            raise ValueError(f"from 1 to 200 hosts, got {n}")
        self.n = n
        self.name = name
        self.net = net
        self.bridge = f"{name}br"
        self._blackholes: set[tuple[int, int]] = set()
        self._limited: set[int] = set()
        self._remove()  # leftovers of a run that was killed
        try:
            self._make()
        except BaseException:
            self._remove()
            raise

    # ------------------------------------------------------------------ addresses

    def host(self, i: int) -> str:
        """Node ``i``'s address."""
        return f"10.{self.net}.0.{i + 2}"

    def namespace(self, i: int) -> str:
        return f"{self.name}-{i}"

    def prefix(self, i: int) -> list[str]:
        """The command prefix that runs a program on host ``i``."""
        return ["ip", "netns", "exec", self.namespace(i)]

    def _veth(self, i: int) -> str:
        return f"{self.name}v{i}"

    # ------------------------------------------------------------------ faults

    def isolate(self, i: int) -> None:
        """Host ``i`` reaches no other host, and none reaches it (this process still
        does: the bridge is not cut)."""
        self.partition([[i], [j for j in range(self.n) if j != i]])

    def partition(self, groups: list[list[int]]) -> None:
        """Hosts in different groups cannot reach each other."""
        for a, b in combinations(range(len(groups)), 2):
            for i in groups[a]:
                for j in groups[b]:
                    self._blackhole(i, j)
                    self._blackhole(j, i)

    def heal(self) -> None:
        """Every partition removed."""
        for i, j in sorted(self._blackholes):
            _run(*self.prefix(i), "ip", "route", "del", "blackhole", f"{self.host(j)}/32",
                 check=False)  # fmt: skip
        self._blackholes.clear()

    def link(self, i: int, up: bool) -> None:
        """Host ``i``'s link to the bridge down (nothing in or out) or up again."""
        _run("ip", "link", "set", self._veth(i), "up" if up else "down")

    def limit(self, i: int, kbit: int) -> None:
        """Host ``i`` sends at most ``kbit`` kbit/s (a token bucket on its link)."""
        _run(*self.prefix(i), "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf",
             "rate", f"{kbit}kbit", "burst", "32kbit", "latency", "400ms")  # fmt: skip
        self._limited.add(i)

    def unlimit(self, i: int) -> None:
        _run(*self.prefix(i), "tc", "qdisc", "del", "dev", "eth0", "root", check=False)
        self._limited.discard(i)

    def _blackhole(self, i: int, j: int) -> None:
        if (i, j) not in self._blackholes:
            _run(*self.prefix(i), "ip", "route", "add", "blackhole", f"{self.host(j)}/32")
            self._blackholes.add((i, j))

    # ------------------------------------------------------------------ life

    def _make(self) -> None:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"10.{self.net}.0.1/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for i in range(self.n):
            ns, veth = self.namespace(i), self._veth(i)
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
            _run("ip", "link", "set", f"{veth}p", "netns", ns)
            _run("ip", "link", "set", veth, "master", self.bridge)
            _run("ip", "link", "set", veth, "up")
            _run(*self.prefix(i), "ip", "link", "set", f"{veth}p", "name", "eth0")
            _run(*self.prefix(i), "ip", "addr", "add", f"{self.host(i)}/24", "dev", "eth0")
            _run(*self.prefix(i), "ip", "link", "set", "eth0", "up")
            _run(*self.prefix(i), "ip", "link", "set", "lo", "up")

    def _remove(self) -> None:
        for i in range(self.n):
            _run("ip", "netns", "del", self.namespace(i), check=False)
            _run("ip", "link", "del", self._veth(i), check=False)
        _run("ip", "link", "del", self.bridge, check=False)

    def close(self) -> None:
        self._remove()

    def __enter__(self) -> Hosts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
