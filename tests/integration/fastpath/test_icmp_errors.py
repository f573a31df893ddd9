"""ICMP errors about flows with rules: forwarded by the flow's rule, translated in their
own header and in the packet they quote (RFC 5508), so a NAT's hosts see errors about
the packets they sent, as they sent them.

The rules are a NAT's pair, installed directly: the client's flow leaves as
PUBLIC:<public port>, the server's answers to that address come back to the client.
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address

import pytest

from tests.integration.fastpath import packets
from tests.integration.fastpath.topology import (
    CLIENT,
    PUBLIC,
    SERVER,
    SLOWPATH,
    SLOWPATH_PORT,
    Lab,
)
from vnfs.sdk.bpf.driver import BpfDriver
from vnfs.sdk.encoding import PuntKind, decode_punt
from vnfs.sdk.flow import Count, FlowKey, FlowRule, Forward, Protocol, Rewrite

DEST_UNREACHABLE, TIME_EXCEEDED = 3, 11
PORT_UNREACHABLE, FRAGMENTATION_NEEDED = 3, 4


def nat_pair(proto: Protocol, cport: int, sport: int, public: int) -> tuple[FlowRule, FlowRule]:
    out = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), cport, sport, proto),
        (Rewrite(src=IPv4Address(PUBLIC), sport=public), Forward(), Count()),
    )
    back = FlowRule(
        FlowKey(IPv4Address(SERVER), IPv4Address(PUBLIC), sport, public, proto),
        (Rewrite(dst=IPv4Address(CLIENT), dport=cport), Forward(), Count()),
    )
    return out, back


def next_error(sniffer: socket.socket) -> packets.Parsed:
    """The next ICMP error the raw socket sees (it sees echo traffic too)."""
    while True:
        parsed = packets.parse(sniffer.recv(4096))
        if parsed.icmp[0] in (DEST_UNREACHABLE, TIME_EXCEEDED):
            return parsed


def test_port_unreachable_from_outside_reaches_the_inside_host_translated(
    lab: Lab, driver: BpfDriver
) -> None:
    out, back = nat_pair(Protocol.UDP, 40200, 5200, 62000)
    driver.install([out, back])
    sniffer = lab.socket(lab.client, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    lab.set_tx_checksum(lab.client, "c0", False)  # quoted back, so complete it now
    client = lab.socket(lab.client)
    client.bind((CLIENT, 40200))
    client.connect((SERVER, 5200))
    client.send(b"anyone there?")  # nothing listens on the server's port
    with pytest.raises(ConnectionRefusedError):
        client.recv(100)  # the kernel matched the error to the socket by what it quotes

    error = next_error(sniffer)
    assert (error.src, error.dst) == (SERVER, CLIENT)
    assert error.icmp[:2] == (DEST_UNREACHABLE, PORT_UNREACHABLE)
    assert error.header_ok and error.l4_ok
    quoted = error.quoted
    assert (quoted.src, quoted.dst, quoted.ports) == (CLIENT, SERVER, (40200, 5200))
    assert quoted.header_ok and quoted.l4_ok, "the quoted datagram's checksums follow"
    assert quoted.udp_payload == b"anyone there?"
    assert driver.datapath_counters()["icmp_errors"] == 1
    counters = driver.counters([back.key])[back.key]
    assert counters.packets == 0, "an error is not traffic of the flow"


def test_port_unreachable_from_the_inside_host_leaves_from_the_public_address(
    lab: Lab, driver: BpfDriver
) -> None:
    out, back = nat_pair(Protocol.UDP, 40201, 5201, 62001)
    driver.install([out, back])
    sniffer = lab.socket(lab.server, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    lab.set_tx_checksum(lab.server, "s0", False)  # quoted back, so complete it now
    server = lab.socket(lab.server)
    server.bind((SERVER, 5201))
    server.connect((PUBLIC, 62001))
    server.send(b"hello inside")  # reaches CLIENT:40201, where nothing listens
    with pytest.raises(ConnectionRefusedError):
        server.recv(100)

    error = next_error(sniffer)
    assert (error.src, error.dst) == (PUBLIC, SERVER), "the inside address never leaks"
    assert error.header_ok and error.l4_ok
    quoted = error.quoted
    assert (quoted.src, quoted.dst, quoted.ports) == (SERVER, PUBLIC, (5201, 62001))
    assert quoted.header_ok and quoted.l4_ok


def test_fragmentation_needed_about_a_tcp_segment_keeps_its_mtu_and_checksums(
    lab: Lab, driver: BpfDriver
) -> None:
    """A router on the outside asks for a smaller MTU (path MTU discovery)."""
    out, back = nat_pair(Protocol.TCP, 40202, 5202, 62002)
    driver.install([out, back])
    sent = packets.tcp(PUBLIC, 62002, SERVER, 5202, seq=77)
    sniffer = lab.socket(lab.client, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    router = lab.socket(lab.server, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    router.sendto(
        packets.icmp_error(DEST_UNREACHABLE, FRAGMENTATION_NEEDED, sent, rest=1280), (PUBLIC, 0)
    )

    error = next_error(sniffer)
    assert (error.src, error.dst) == (SERVER, CLIENT)
    assert error.icmp[:2] == (DEST_UNREACHABLE, FRAGMENTATION_NEEDED)
    assert struct.unpack_from("!I", error.l4, 4)[0] == 1280
    assert error.header_ok and error.l4_ok
    quoted = error.quoted
    assert (quoted.src, quoted.dst, quoted.ports) == (CLIENT, SERVER, (40202, 5202))
    assert quoted.header_ok and quoted.l4_ok
    assert struct.unpack_from("!I", quoted.l4, 4)[0] == 77  # the sequence number as sent


def test_time_exceeded_about_an_echo_request_gets_the_inside_identifier(
    lab: Lab, driver: BpfDriver
) -> None:
    out, back = nat_pair(Protocol.ICMP, 0x1234, 0, 0x4321)
    # Echo keys carry the identifier as sport on both directions (see the echo test).
    back = FlowRule(
        FlowKey(IPv4Address(SERVER), IPv4Address(PUBLIC), 0x4321, 0, Protocol.ICMP),
        (Rewrite(dst=IPv4Address(CLIENT), dport=0x1234), Forward(), Count()),
    )
    driver.install([out, back])
    request = packets.ipv4(
        PUBLIC, SERVER, socket.IPPROTO_ICMP, packets.icmp_echo(0x4321, 9, b"probe"), ttl=1
    )
    sniffer = lab.socket(lab.client, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    router = lab.socket(lab.server, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    router.sendto(packets.icmp_error(TIME_EXCEEDED, 0, request), (PUBLIC, 0))

    error = next_error(sniffer)
    assert (error.src, error.dst, error.icmp[0]) == (SERVER, CLIENT, TIME_EXCEEDED)
    assert error.header_ok and error.l4_ok
    quoted = error.quoted
    assert (quoted.src, quoted.dst) == (CLIENT, SERVER)
    assert quoted.icmp[0] == 8 and quoted.icmp[3:] == (0x1234, 9)
    assert quoted.header_ok and quoted.l4_ok


def test_an_error_about_a_flow_without_rules_is_a_miss(lab: Lab, driver: BpfDriver) -> None:
    stray = packets.udp(CLIENT, 40203, SERVER, 5203, b"no rules for this flow")
    punts = lab.socket(lab.slowpath)
    punts.bind((SLOWPATH, SLOWPATH_PORT))
    router = lab.socket(lab.server, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    router.sendto(packets.icmp_error(DEST_UNREACHABLE, PORT_UNREACHABLE, stray), (CLIENT, 0))
    kind, _, _, punted = decode_punt(punts.recv(4096))
    assert kind == PuntKind.MISS and packets.parse(bytes(punted)).quoted.ports == (40203, 5203)
    assert driver.global_counters().punted == 1
    assert driver.datapath_counters()["icmp_errors"] == 0
