"""A fast-path lab in network namespaces, for the tc-BPF datapath tests.

    client ns             fast-path ns                        server ns
    c0 10.11.1.2/24 ----- in0 10.11.1.1/24   out0 198.51.100.1/24 ----- s0 198.51.100.2/24
                          punt0 10.11.9.1/24 (MTU 1600)            routes 203.0.113.0/24 and
                                |                                   10.11.0.0/16 via the fast path
    slow-path ns          sp0 10.11.9.2/24 (MTU 1600)

203.0.113.7 is the "public" address NAT-style rules translate to; it is not
configured anywhere, the server just routes it to the fast path. Sockets are
made inside a namespace by entering it in the calling thread for the socket()
call only; they stay there afterwards.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from vnfs.sdk.bpf import netdev, netns
from vnfs.sdk.driver import Interface, PuntTarget

PREFIX = "hC"
CLIENT = "10.11.1.2"
FP_INSIDE = "10.11.1.1"
FP_OUTSIDE = "198.51.100.1"
SERVER = "198.51.100.2"
PUBLIC = "203.0.113.7"
FP_PUNT = "10.11.9.1"
SLOWPATH = "10.11.9.2"
PUNT_PORT = 47000
SLOWPATH_PORT = 47001
REINJECT_PORT = 47002
INSTANCE = 3
PUNT_MTU = 1600


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if check and completed.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {completed.stderr.strip()}")
    return completed


def namespaces_with(prefix: str) -> list[str]:
    listing = run("ip", "netns", "list").stdout.split()
    return sorted({name for name in listing if name.startswith(prefix)})


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@dataclass
class Lab:
    prefix: str

    @property
    def client(self) -> str:
        return f"{self.prefix}-cli"

    @property
    def fastpath(self) -> str:
        return f"{self.prefix}-fp"

    @property
    def server(self) -> str:
        return f"{self.prefix}-srv"

    @property
    def slowpath(self) -> str:
        return f"{self.prefix}-sp"

    @classmethod
    def create(cls, prefix: str = PREFIX) -> Lab:
        lab = cls(prefix=f"{prefix}{secrets.token_hex(3)}")
        try:
            lab._build()
        except BaseException:
            lab.destroy()
            raise
        return lab

    def _build(self) -> None:
        for name in (self.client, self.fastpath, self.server, self.slowpath):
            run("ip", "netns", "add", name)
            self.ip(name, "link", "set", "lo", "up")
        self._veth(self.client, "c0", self.fastpath, "in0")
        self._veth(self.fastpath, "out0", self.server, "s0")
        self._veth(self.fastpath, "punt0", self.slowpath, "sp0", mtu=PUNT_MTU)
        for ns, device, cidr in (
            (self.client, "c0", f"{CLIENT}/24"),
            (self.fastpath, "in0", f"{FP_INSIDE}/24"),
            (self.fastpath, "out0", f"{FP_OUTSIDE}/24"),
            (self.server, "s0", f"{SERVER}/24"),
            (self.fastpath, "punt0", f"{FP_PUNT}/24"),
            (self.slowpath, "sp0", f"{SLOWPATH}/24"),
        ):
            self.ip(ns, "address", "add", cidr, "dev", device)
            self.ip(ns, "link", "set", device, "up")
        # The agent does this in a real unit; bpf_fib_lookup needs it.
        self.exec(self.fastpath, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.ip(self.client, "route", "add", "default", "via", FP_INSIDE)
        self.ip(self.server, "route", "add", "203.0.113.0/24", "via", FP_OUTSIDE)
        self.ip(self.server, "route", "add", "10.11.0.0/16", "via", FP_OUTSIDE)

    def _veth(self, ns_a: str, dev_a: str, ns_b: str, dev_b: str, mtu: int = 1500) -> None:
        run(
            "ip", "link", "add", dev_a, "netns", ns_a, "mtu", str(mtu), "type", "veth",
            "peer", "name", dev_b, "netns", ns_b, "mtu", str(mtu),
        )  # fmt: skip

    def ip(self, ns: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return run("ip", "-n", ns, *argv)

    def exec(self, ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", ns, *argv, check=check)

    def destroy(self) -> None:
        for name in namespaces_with(self.prefix):
            run("ip", "netns", "delete", name, check=False)

    def set_tx_checksum(self, ns: str, device: str, enabled: bool) -> None:
        """Offloaded (CHECKSUM_PARTIAL) or software-complete checksums on `device`'s output."""
        with netns.entered_named(ns):
            netdev.set_tx_checksum(device, enabled)

    def link(self, ns: str, device: str) -> netdev.LinkInfo:
        with netns.entered_named(ns):
            return netdev.link_info(device)

    def socket(
        self, ns: str, kind: int = socket.SOCK_DGRAM, proto: int = 0, family: int = socket.AF_INET
    ) -> socket.socket:
        with netns.entered_named(ns):
            sock = socket.socket(family, kind, proto)
        sock.settimeout(5.0)
        return sock

    def data_interfaces(self) -> list[Interface]:
        links = [self.link(self.fastpath, name) for name in ("in0", "out0")]
        return [
            Interface(link.name, link.ifindex, link.mac, link.address, role)
            for link, role in zip(links, ("inside", "outside"), strict=True)
        ]

    def punt_target(self) -> PuntTarget:
        return PuntTarget(
            interface="punt0",
            local_address=FP_PUNT,
            local_port=PUNT_PORT,
            slowpath_address=SLOWPATH,
            slowpath_port=SLOWPATH_PORT,
            slowpath_mac=self.link(self.slowpath, "sp0").mac,
            reinject_port=REINJECT_PORT,
            instance=INSTANCE,
        )
