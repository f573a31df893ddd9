"""The tc-BPF datapath forwarding by rules: NAT-style rewrites, ICMP, drop, TTL, routing, VRF.

Traffic runs between a client and a server namespace through the fast-path
namespace; the server side checks what the rules did to the packets.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address

import pytest

from tests.integration.fastpath import packets
from tests.integration.fastpath.topology import (
    CLIENT,
    FP_INSIDE,
    FP_OUTSIDE,
    PUBLIC,
    SERVER,
    Lab,
    wait_for,
)
from vnfs.sdk.bpf import netns
from vnfs.sdk.bpf.driver import BpfDriver
from vnfs.sdk.flow import (
    Count,
    Drop,
    Encapsulate,
    FlowKey,
    FlowRule,
    Forward,
    Protocol,
    Rewrite,
)

SO_NO_CHECK = 11
TCP_SYN, TCP_ACK, TCP_PSH, TCP_FIN = 0x02, 0x10, 0x08, 0x01


def nat_rules(proto: Protocol, cport: int, sport: int, public_port: int) -> list[FlowRule]:
    """Source NAT of client:cport -> server:sport to PUBLIC:public_port, and the way back."""
    out = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), cport, sport, proto),
        (Rewrite(src=IPv4Address(PUBLIC), sport=public_port), Forward(), Count()),
        cookie=1,
    )
    back = FlowRule(
        FlowKey(IPv4Address(SERVER), IPv4Address(PUBLIC), sport, public_port, proto),
        (Rewrite(dst=IPv4Address(CLIENT), dport=cport), Forward(), Count()),
        cookie=2,
    )
    return [out, back]


def nothing_arrives(sock: socket.socket, wait: float = 0.5) -> bool:
    sock.settimeout(wait)
    try:
        sock.recv(65536)
    except TimeoutError:
        return True
    return False


@pytest.mark.parametrize("checksums", ["complete", "offloaded", "none"])
def test_udp_flow_is_translated_both_ways(lab: Lab, driver: BpfDriver, checksums: str):
    """complete: senders compute checksums, the fast path updates them incrementally.
    offloaded: packets cross the fast path with partial checksums (CHECKSUM_PARTIAL, as
    veth carries them) that its egress completes. none: UDP without checksum (zero)."""
    out, back = nat_rules(Protocol.UDP, 40000, 5000, 61000)
    assert driver.install([out, back]) == 2
    server = lab.socket(lab.server)
    server.bind((SERVER, 5000))
    client = lab.socket(lab.client)
    client.bind((CLIENT, 40000))
    # Raw sockets next to the server and the client see the datagrams as they arrived.
    sniffer = lab.socket(lab.server, socket.SOCK_RAW, socket.IPPROTO_UDP)
    client_sniffer = lab.socket(lab.client, socket.SOCK_RAW, socket.IPPROTO_UDP)
    if checksums == "complete":
        lab.set_tx_checksum(lab.client, "c0", False)
        lab.set_tx_checksum(lab.server, "s0", False)
    elif checksums == "offloaded":
        lab.set_tx_checksum(lab.fastpath, "in0", False)
        lab.set_tx_checksum(lab.fastpath, "out0", False)
    else:
        client.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        server.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)

    client.sendto(b"ping over nat", (SERVER, 5000))
    data, peer = server.recvfrom(2048)
    assert (data, peer) == (b"ping over nat", (PUBLIC, 61000))
    seen = packets.parse(sniffer.recv(2048))
    assert (seen.src, seen.dst, seen.ports) == (PUBLIC, SERVER, (61000, 5000))
    assert seen.header_ok and seen.l4_ok
    assert seen.ttl == 63, "the fast path routes: TTL goes down by one"
    assert (seen.udp_checksum == 0) == (checksums == "none")

    server.sendto(b"pong", peer)
    data, peer = client.recvfrom(2048)
    assert (data, peer) == (b"pong", (SERVER, 5000))
    seen = packets.parse(client_sniffer.recv(2048))
    while seen.ports != (5000, 40000):  # the client's own datagram went out here too
        seen = packets.parse(client_sniffer.recv(2048))
    assert (seen.src, seen.dst) == (SERVER, CLIENT)
    assert seen.header_ok and seen.l4_ok
    assert (seen.udp_checksum == 0) == (checksums == "none")

    found = driver.counters([out.key, back.key])
    assert found[out.key].packets == 1 and found[back.key].packets == 1
    assert found[out.key].bytes == 14 + 20 + 8 + len(b"ping over nat")
    assert found[out.key].last_seen_ns <= time.monotonic_ns()
    totals = driver.global_counters()
    assert totals.hits == 2 and totals.tx_packets == 2 and totals.misses == 0


def test_tcp_connection_is_translated(lab: Lab, driver: BpfDriver):
    out, back = nat_rules(Protocol.TCP, 40001, 5001, 61001)
    driver.install([out, back])
    listener = lab.socket(lab.server, socket.SOCK_STREAM)
    listener.bind((SERVER, 5001))
    listener.listen(1)
    client = lab.socket(lab.client, socket.SOCK_STREAM)
    client.bind((CLIENT, 40001))
    client.connect((SERVER, 5001))
    connection, peer = listener.accept()
    assert peer == (PUBLIC, 61001)
    client.sendall(b"request" * 1000)
    received = b""
    while len(received) < 7000:
        received += connection.recv(65536)
    assert received == b"request" * 1000
    connection.sendall(b"response")
    assert client.recv(100) == b"response"
    client.close()
    assert connection.recv(100) == b""  # the client's FIN came through
    connection.close()
    listener.close()

    flags = driver.counters([out.key])[out.key].tcp_flags_seen
    assert flags & TCP_SYN and flags & TCP_ACK and flags & TCP_PSH and flags & TCP_FIN
    assert driver.counters([back.key])[back.key].packets >= 3


def test_icmp_echo_identifier_is_rewritten(lab: Lab, driver: BpfDriver):
    out = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), 0x1234, 0, Protocol.ICMP),
        (Rewrite(src=IPv4Address(PUBLIC), sport=0x4321), Forward(), Count()),
    )
    # The reply is keyed by its own identifier (sport) too; dport rewrites it back.
    back = FlowRule(
        FlowKey(IPv4Address(SERVER), IPv4Address(PUBLIC), 0x4321, 0, Protocol.ICMP),
        (Rewrite(dst=IPv4Address(CLIENT), dport=0x1234), Forward(), Count()),
    )
    driver.install([out, back])
    sniffer = lab.socket(lab.server, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    pinger = lab.socket(lab.client, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    pinger.sendto(packets.icmp_echo(0x1234, 7, b"echo payload"), (SERVER, 0))

    request = packets.parse(sniffer.recv(2048))
    assert (request.src, request.dst) == (PUBLIC, SERVER)
    assert request.icmp[0] == 8 and request.icmp[3:] == (0x4321, 7)
    assert request.header_ok and request.l4_ok
    reply = packets.parse(pinger.recv(2048))
    while reply.icmp[0] != 0:  # the raw socket also sees our own request go out
        reply = packets.parse(pinger.recv(2048))
    assert (reply.src, reply.dst) == (SERVER, CLIENT)
    assert reply.icmp[3:] == (0x1234, 7) and reply.l4_ok and reply.header_ok
    assert driver.counters([back.key])[back.key].packets == 1


def test_drop_rule_drops_and_counts(lab: Lab, driver: BpfDriver):
    rule = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), 40002, 5002, Protocol.UDP),
        (Drop(), Count()),
    )
    driver.install([rule])
    server = lab.socket(lab.server)
    server.bind((SERVER, 5002))
    client = lab.socket(lab.client)
    client.bind((CLIENT, 40002))
    for _ in range(3):
        client.sendto(b"x" * 100, (SERVER, 5002))
    assert nothing_arrives(server)
    counted = driver.counters([rule.key])[rule.key]
    assert (counted.packets, counted.bytes) == (3, 3 * (14 + 20 + 8 + 100))
    details = driver.datapath_counters()
    assert details["rule_drops"] == 3 and details["dropped"] == 3
    assert details["punted"] == 0


def test_ttl_one_is_dropped_not_forwarded(lab: Lab, driver: BpfDriver):
    out, _ = nat_rules(Protocol.UDP, 40003, 5003, 61003)
    driver.install([out])
    server = lab.socket(lab.server)
    server.bind((SERVER, 5003))
    client = lab.socket(lab.client)
    client.bind((CLIENT, 40003))
    client.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1)
    client.sendto(b"expiring", (SERVER, 5003))
    assert nothing_arrives(server)
    assert driver.datapath_counters()["ttl_exceeded"] == 1


def test_next_hop_and_forced_interface(lab: Lab, driver: BpfDriver):
    # 192.0.2.9 has no route in the fast path: only the rule's next hop gets it there.
    lab.ip(lab.server, "address", "add", "192.0.2.9/32", "dev", "lo")
    via_next_hop = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address("192.0.2.9"), 40004, 5004, Protocol.UDP),
        (Forward(next_hop=IPv4Address(SERVER)),),
    )
    via_interface = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), 40005, 5005, Protocol.UDP),
        (Forward(interface="out0"),),
    )
    wrong_interface = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), 40006, 5005, Protocol.UDP),
        (Forward(interface="in0"),),
    )
    driver.install([via_next_hop, via_interface, wrong_interface])
    target = lab.socket(lab.server)
    target.bind(("192.0.2.9", 5004))
    server = lab.socket(lab.server)
    server.bind((SERVER, 5005))

    client = lab.socket(lab.client)
    client.bind((CLIENT, 40004))
    client.sendto(b"next hop", ("192.0.2.9", 5004))
    assert target.recvfrom(100) == (b"next hop", (CLIENT, 40004))

    forced = lab.socket(lab.client)
    forced.bind((CLIENT, 40005))
    forced.sendto(b"forced", (SERVER, 5005))
    assert server.recvfrom(100) == (b"forced", (CLIENT, 40005))

    # No route to the server goes through in0: the rule cannot be honoured.
    wrong = lab.socket(lab.client)
    wrong.bind((CLIENT, 40006))
    wrong.sendto(b"wrong way", (SERVER, 5005))
    assert nothing_arrives(server)
    assert driver.datapath_counters()["forward_errors"] == 1


def test_vrf_of_the_ingress_interface_is_part_of_the_key(
    lab: Lab, driver: BpfDriver, make_driver: Callable[..., BpfDriver]
):
    in_vrf_7 = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), 40007, 5007, Protocol.UDP, vrf=7),
        (Forward(), Count()),
    )
    in_vrf_0 = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), 40008, 5007, Protocol.UDP),
        (Forward(), Count()),
    )
    driver.install([in_vrf_7, in_vrf_0])
    interfaces = [replace(i, vrf=7) if i.name == "in0" else i for i in lab.data_interfaces()]
    with netns.entered_named(lab.fastpath):
        driver.start(interfaces, lab.punt_target())  # started again: the VRF changes
    assert {i.name: i.vrf for i in driver.interfaces()} == {"in0": 7, "out0": 0, "punt0": 0}
    server = lab.socket(lab.server)
    server.bind((SERVER, 5007))
    for port in (40007, 40008):
        client = lab.socket(lab.client)
        client.bind((CLIENT, port))
        client.sendto(b"vrf", (SERVER, 5007))
    assert server.recvfrom(100) == (b"vrf", (CLIENT, 40007))
    assert nothing_arrives(server)
    found = driver.counters([in_vrf_7.key, in_vrf_0.key])
    assert (found[in_vrf_7.key].packets, found[in_vrf_0.key].packets) == (1, 0)
    assert driver.global_counters().misses == 1  # vrf 7 has no rule for port 40008


def test_traffic_to_the_unit_itself_goes_to_its_stack(lab: Lab, driver: BpfDriver):
    pinger = lab.socket(lab.client, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    pinger.sendto(packets.icmp_echo(99, 1, b"hello unit"), (FP_INSIDE, 0))
    reply = packets.parse(pinger.recv(2048))
    while reply.icmp[0] != 0:
        reply = packets.parse(pinger.recv(2048))
    assert reply.src == FP_INSIDE
    totals = driver.global_counters()
    assert totals.misses >= 1 and totals.passed_to_host >= 1 and totals.punted == 0


def test_encapsulation_reaches_a_vxlan_gpe_endpoint(lab: Lab, driver: BpfDriver):
    # The server decapsulates with a Linux VXLAN-GPE device and owns the inner destination.
    lab.ip(lab.server, "link", "add", "gpe0", "type", "vxlan", "gpe", "external",
           "dstport", "4790")  # fmt: skip
    lab.ip(lab.server, "link", "set", "gpe0", "up")
    lab.ip(lab.server, "address", "add", "10.99.0.2/32", "dev", "gpe0")
    lab.exec(lab.server, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0",
             "net.ipv4.conf.gpe0.rp_filter=0")  # fmt: skip
    rule = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address("10.99.0.2"), 40009, 5009, Protocol.UDP),
        (
            Encapsulate(
                outer_src=IPv4Address(FP_OUTSIDE),
                outer_dst=IPv4Address(SERVER),
                udp_dport=4790,
                vni=42,
            ),
            Forward(),
            Count(),
        ),
    )
    driver.install([rule])
    lab.set_tx_checksum(lab.client, "c0", False)  # complete inner checksums, to check them
    with netns.entered_named(lab.server):
        frames = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    frames.bind(("s0", 0))
    frames.settimeout(5.0)
    inner_receiver = lab.socket(lab.server)
    inner_receiver.bind(("10.99.0.2", 5009))
    client = lab.socket(lab.client)
    client.bind((CLIENT, 40009))
    client.sendto(b"tunnelled", ("10.99.0.2", 5009))

    assert inner_receiver.recvfrom(100) == (b"tunnelled", (CLIENT, 40009))
    outer = packets.parse(frames.recv(2048)[14:])
    while outer.proto != socket.IPPROTO_UDP:
        outer = packets.parse(frames.recv(2048)[14:])
    assert (outer.src, outer.dst, outer.ports[1]) == (FP_OUTSIDE, SERVER, 4790)
    assert outer.header_ok and outer.udp_checksum == 0
    assert 0xC000 <= outer.ports[0] <= 0xFFFF, "source port from the inner flow's hash"
    header = outer.udp_payload[:8]
    assert header == bytes([0x0C, 0, 0, 1, 0, 0, 42, 0])
    inner = packets.parse(outer.udp_payload[8:])
    assert (inner.src, inner.dst, inner.ttl) == (CLIENT, "10.99.0.2", 63)
    assert inner.l4_ok and inner.udp_payload == b"tunnelled"


def test_first_packets_wait_for_neighbour_resolution(lab: Lab, driver: BpfDriver):
    # Fresh namespaces: the fast path has not resolved the server's MAC yet.
    assert wait_for(lambda: all(driver.health().interfaces.values()))
    out, back = nat_rules(Protocol.UDP, 40010, 5010, 61010)
    driver.install([out, back])
    server = lab.socket(lab.server)
    server.bind((SERVER, 5010))
    client = lab.socket(lab.client)
    client.bind((CLIENT, 40010))
    for index in range(3):
        client.sendto(bytes([index]), (SERVER, 5010))
    assert sorted(server.recv(10) for _ in range(3)) == [b"\0", b"\1", b"\2"]
    assert driver.datapath_counters()["no_neighbour"] >= 1
