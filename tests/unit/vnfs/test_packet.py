"""Parsing punted IPv4 packets into flow keys, and refusing what cannot be keyed."""

from __future__ import annotations

import contextlib
import random
import struct

import pytest

from tests.unit.vnfs.packets import DST, SRC, icmp, ipv4, tcp, udp
from vnfs.sdk.driver import Interface
from vnfs.sdk.flow import FlowKey, Protocol
from vnfs.sdk.packet import PacketError, parse_ipv4, parse_punted
from vnfs.sdk.vnf import FastPathInfo


def test_tcp_syn() -> None:
    parsed = parse_ipv4(ipv4(6, tcp(40000, 443, 0x02)))
    assert parsed.key == FlowKey(SRC, DST, 40000, 443, Protocol.TCP)
    assert parsed.tcp_flags == 0x02
    assert parsed.icmp_type is None


def test_tcp_with_options_and_ip_options() -> None:
    packet = ipv4(
        6, tcp(1, 2, 0x12, offset_words=6, extra=b"\x02\x04\x05\xb4"), options=b"\x01" * 4
    )
    parsed = parse_ipv4(packet)
    assert (parsed.key.sport, parsed.key.dport, parsed.tcp_flags) == (1, 2, 0x12)


def test_udp_and_link_layer_padding_is_dropped() -> None:
    packet = ipv4(17, udp(5353, 53))
    parsed = parse_ipv4(packet + b"\0" * 12, vrf=7)
    assert parsed.key == FlowKey(SRC, DST, 5353, 53, Protocol.UDP, 7)
    assert parsed.data == packet


@pytest.mark.parametrize("kind", [8, 0])
def test_icmp_echo_request_and_reply_carry_the_identifier_in_sport(kind: int) -> None:
    parsed = parse_ipv4(ipv4(1, icmp(kind, 0, 0x1234)))
    assert parsed.key == FlowKey(SRC, DST, 0x1234, 0, Protocol.ICMP)
    assert (parsed.icmp_type, parsed.icmp_code) == (kind, 0)


def test_other_icmp_keys_with_zero_ports() -> None:
    parsed = parse_ipv4(ipv4(1, icmp(3, 4, 0x5678)))
    assert (parsed.key.sport, parsed.key.dport) == (0, 0)
    assert (parsed.icmp_type, parsed.icmp_code) == (3, 4)


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (b"\x45" * 19, "shorter than an IPv4 header"),
        (ipv4(17, udp(1, 2), version=6), "IP version 6"),
        (b"\x44" + ipv4(17, udp(1, 2))[1:], "header length 16"),
        (ipv4(17, udp(1, 2), total=200), "total length 200"),
        (ipv4(17, udp(1, 2), total=12), "total length 12"),
        (ipv4(17, udp(1, 2), fix_checksum=False), "checksum"),
        (ipv4(17, udp(1, 2), frag=0x2000), "fragment"),
        (ipv4(17, b"", frag=0x0010), "fragment"),
        (ipv4(6, tcp(1, 2, 2)[:19]), "TCP header truncated"),
        (ipv4(6, tcp(1, 2, 2, offset_words=4)), "TCP data offset 16"),
        (ipv4(6, tcp(1, 2, 2, offset_words=8)), "TCP data offset 32"),
        (ipv4(17, udp(1, 2)[:7]), "UDP header truncated"),
        (ipv4(17, struct.pack("!HHHH", 1, 2, 4, 0)), "UDP length 4"),
        (ipv4(17, struct.pack("!HHHH", 1, 2, 99, 0)), "UDP length 99"),
        (ipv4(1, b"\x08\x00\x00"), "ICMP header truncated"),
        (ipv4(47, b"\0" * 8), "IP protocol 47"),
    ],
)
def test_what_cannot_be_keyed_is_refused(packet: bytes, message: str) -> None:
    with pytest.raises(PacketError, match=message):
        parse_ipv4(packet)


def test_random_bytes_never_raise_anything_else() -> None:
    rng = random.Random(5)
    valid = ipv4(6, tcp(1, 2, 2))
    for _ in range(5000):
        if rng.random() < 0.5:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
        else:  # flip bytes of a valid packet, so the deeper checks are reached
            mutable = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                mutable[rng.randrange(len(mutable))] = rng.randrange(256)
            data = bytes(mutable[: rng.randrange(len(mutable) + 1)])
        with contextlib.suppress(PacketError):
            parse_ipv4(data)


def test_punted_packet_knows_its_fast_path_and_ingress() -> None:
    inside = Interface("inside", 4, "02:00:00:00:00:04", "10.10.0.1/24", "inside")
    fastpath = FastPathInfo(2, "e1", (inside,))
    packet = parse_punted(ipv4(17, udp(1000, 53)), fastpath, 4)
    assert packet.fastpath is fastpath and packet.ingress == inside
    assert packet.key.dport == 53
    assert parse_punted(ipv4(17, udp(1000, 53)), fastpath, 9).ingress is None


def test_a_punted_packet_is_keyed_in_its_ingress_interfaces_vrf() -> None:
    vpc = Interface("vpc7", 5, "02:00:00:00:00:05", "10.10.7.1/24", "vpc7", vrf=7)
    plain = Interface("inside", 4, "02:00:00:00:00:04", "10.10.0.1/24", "inside")
    fastpath = FastPathInfo(2, "e1", (plain, vpc))
    assert parse_punted(ipv4(17, udp(1000, 53)), fastpath, 5).key.vrf == 7
    assert parse_punted(ipv4(17, udp(1000, 53)), fastpath, 4).key.vrf == 0
    assert parse_punted(ipv4(17, udp(1000, 53)), fastpath, 9).key.vrf == 0  # unknown ingress
