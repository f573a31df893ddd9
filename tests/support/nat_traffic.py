"""Traffic through a deployed NAT on the local VIM: peer units, addresses, UDP exchanges.

Shared by the NAT's own deployment test (tests/integration/vnfs/test_nat_deployed.py) and
the NS end-to-end test (tests/integration/nslcm/test_ns_edge_gateway.py): a client unit on
the inside network, an echo server unit on the outside network (it answers with the source
address it saw, so a test checks the translation on the server side), and the helpers to
read their namespaces and addresses and to exchange datagrams through the NAT.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
import time

from vim_adapters.interface import ConnectionPointSpec, ProcessSpec, UnitSpec
from vim_adapters.local.adapter import LocalVim
from vnfs.sdk.bpf import netns

__all__ = [
    "ECHO_PORT",
    "ECHO_SERVER",
    "FIRST_PORT",
    "IDLE",
    "INSIDE_CIDR",
    "OUTSIDE_CIDR",
    "POOL",
    "SHARD_0",
    "address",
    "check_translated",
    "ip",
    "netns_of",
    "peer_unit",
    "udp_exchange",
]

INSIDE_CIDR, OUTSIDE_CIDR = "10.10.0.0/24", "198.51.100.0/24"
# The VNFD's pool is 203.0.113.0/26 in 8 shards: fast path 0 owns the first /29.
POOL = ipaddress.ip_network("203.0.113.0/26")
SHARD_0 = ipaddress.ip_network("203.0.113.0/29")
FIRST_PORT = 1024
ECHO_PORT = 7007

# The server answers every UDP datagram and TCP connection with the peer address it saw.
ECHO_SERVER = f"""
import socket, threading
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("0.0.0.0", {ECHO_PORT}))
tcp = socket.socket()
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", {ECHO_PORT}))
tcp.listen(16)
def serve_tcp():
    while True:
        conn, peer = tcp.accept()
        with conn:
            data = conn.recv(1024)
            conn.sendall(f"{{peer[0]}}:{{peer[1]}} ".encode() + data)
threading.Thread(target=serve_tcp, daemon=True).start()
while True:
    data, peer = udp.recvfrom(2048)
    udp.sendto(f"{{peer[0]}}:{{peer[1]}} ".encode() + data, peer)
"""
IDLE = "import time\nwhile True: time.sleep(60)\n"


def peer_unit(name: str, network: str, program: str) -> UnitSpec:
    return UnitSpec(
        name=name,
        replicas=1,
        processes=(ProcessSpec(name="main", command=(sys.executable, "-c", program)),),
        connection_points=(ConnectionPointSpec(name="eth1", network=network),),
    )


def netns_of(vim: LocalVim, unit: str, index: int = 0) -> str:
    record = vim.store.load().units[unit]
    return next(r.netns for r in record.replicas if r.index == index)


def address(vim: LocalVim, unit: str, interface: str, index: int = 0) -> str:
    found = vim.get_unit(unit)
    assert found is not None, f"unit {unit} is not on the VIM"
    replica = next(r for r in found.replicas if r.index == index)
    return next(a.ip for a in replica.addresses if a.connection_point == interface).split("/")[0]


def ip(namespace: str, *argv: str) -> None:
    subprocess.run(["ip", "-n", namespace, *argv], check=True, capture_output=True)


def udp_exchange(namespace: str, server: str, source_port: int, payload: bytes) -> str:
    """Send from the client namespace until an answer comes (the NAT may still be settling)."""
    with netns.entered_named(namespace):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.bind(("0.0.0.0", source_port))
        sock.settimeout(0.5)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sock.sendto(payload, (server, ECHO_PORT))
            try:
                answer, peer = sock.recvfrom(2048)
            except TimeoutError:
                continue
            assert peer == (server, ECHO_PORT), f"answer came from {peer}"
            seen, _, echoed = answer.partition(b" ")
            assert echoed == payload
            return seen.decode()
    raise AssertionError(f"no UDP answer from {server} through the NAT in 30 s")


def check_translated(seen: str) -> str:
    """The public address the server saw, checked to be the pool's (shard 0's) with a pool port."""
    address, _, port_text = seen.rpartition(":")
    assert ipaddress.ip_address(address) in SHARD_0, f"server saw {seen}, not a pool address"
    assert int(port_text) >= FIRST_PORT, f"server saw {seen}, not a pool port"
    return address
