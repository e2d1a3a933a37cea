"""A small network of a test's own: a Linux bridge on the host and one network namespace per node.

```text
  host (root namespace)  lc<id>br  10.<a>.<b>.1/24 ─┬─ veth ─ namespace lc<id>n1  eth0 10.<a>.<b>.11
                                                    ├─ veth ─ namespace lc<id>n2  eth0 10.<a>.<b>.12
                                                    └─ veth ─ namespace lc<id>n3  eth0 10.<a>.<b>.13
```

The subnet is picked at random in 10.0.0.0/8 and checked free on the host; nothing is routed off the
machine (the namespaces have no default route). Partitions are nftables rules in a table of the network's
own on the host, which drop a node's packets to a port of the host (PostgreSQL, Redis): its established
connections hang as they would behind a dead switch, rather than being refused. `Network.close()` removes
the namespaces, the bridge and the table, whatever the test did; names carry a random id, so a run that
was killed before its clean-up leaves nothing the next run would trip on.

Needs root, `ip` (iproute2) and, for partitions, `nft` (Debian's nftables).
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["PREFIX", "Network", "Node", "missing"]

PREFIX = "lc"  # every interface, namespace and nftables table these tests make starts with it
_INPUT_CHAIN = "chain input {\ntype filter hook input priority -10;\n}"


def missing() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (apt-get install iproute2 nftables)"
    probe = f"{PREFIX}probe{os.getpid() % 10000}"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _run("ip", "netns", "del", probe, check=False)
    return None


def _run(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, input=input)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result


@dataclass
class Node:
    name: str  # the namespace
    address: str
    veth: str  # the host's end

    def exec_argv(self, argv: Sequence[str], hostname: str | None = None) -> list[str]:
        """`argv` run inside the namespace, under `hostname` (a UTS namespace of its own) if given."""
        inner = list(argv)
        if hostname is not None:
            inner = ["unshare", "--uts", "sh", "-c", f'hostname {hostname} && exec "$@"', "sh", *inner]
        return ["ip", "netns", "exec", self.name, *inner]


@dataclass
class Network:
    size: int = 3
    ident: str = field(default_factory=lambda: f"{random.randrange(16**4):04x}")
    nodes: list[Node] = field(default_factory=list)
    subnet: ipaddress.IPv4Network | None = None

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.ident}br"

    @property
    def table(self) -> str:
        return f"{PREFIX}{self.ident}"

    @property
    def host_address(self) -> str:
        assert self.subnet is not None
        return str(self.subnet.network_address + 1)

    def open(self) -> Network:
        self.subnet = _free_subnet()
        prefix = self.subnet.prefixlen
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.host_address}/{prefix}", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for index in range(1, self.size + 1):
            node = Node(
                f"{PREFIX}{self.ident}n{index}",
                str(self.subnet.network_address + 10 + index),
                f"{PREFIX}{self.ident}v{index}",
            )
            _run("ip", "netns", "add", node.name)
            _run("ip", "link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", node.name)
            _run("ip", "link", "set", node.veth, "master", self.bridge, "up")
            _run("ip", "-n", node.name, "addr", "add", f"{node.address}/{prefix}", "dev", "eth0")
            _run("ip", "-n", node.name, "link", "set", "eth0", "up")
            _run("ip", "-n", node.name, "link", "set", "lo", "up")
            self.nodes.append(node)
        _run(
            "nft",
            "-f",
            "-",
            input=f"table inet {self.table} {{\n{_INPUT_CHAIN}\n}}\n",
        )
        return self

    def cut(self, node: Node, port: int) -> str:
        """Drop every packet from `node` to `port` on the host; returns the rule's handle for `heal`."""
        rule = _run(
            "nft",
            "--echo",
            "--handle",
            "add",
            "rule",
            "inet",
            self.table,
            "input",
            "ip",
            "saddr",
            node.address,
            "tcp",
            "dport",
            str(port),
            "drop",
        )
        return rule.stdout.rsplit("# handle", 1)[1].strip()

    def heal(self, handle: str) -> None:
        _run("nft", "delete", "rule", "inet", self.table, "input", "handle", handle)

    def link(self, node: Node, up: bool) -> None:
        """Take the node's link down (a pulled cable: every peer at once) or up again."""
        _run("ip", "link", "set", node.veth, "up" if up else "down")

    def close(self) -> None:
        _run("nft", "delete", "table", "inet", self.table, check=False)
        for node in self.nodes:
            _run("ip", "netns", "del", node.name, check=False)  # its end of the veth goes with it
            _run("ip", "link", "del", node.veth, check=False)
        _run("ip", "link", "del", self.bridge, check=False)
        self.nodes.clear()


def _free_subnet() -> ipaddress.IPv4Network:
    used = _run("ip", "-o", "-4", "addr", "show").stdout
    taken = [
        ipaddress.ip_interface(word).network for word in used.split() if "/" in word and word[0].isdigit()
    ]
    for _ in range(100):
        subnet = ipaddress.IPv4Network(f"10.{random.randrange(64, 250)}.{random.randrange(256)}.0/24")
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise RuntimeError("no free /24 in 10.0.0.0/8 on this host")
