"""Parsing a punted IPv4 packet into the flow key the fast path looked up.

The key must be the one the datapath computes for the same packet, or the
rule the slow path installs would never match it: addresses and ports as
they are on the wire; ICMP echo requests and replies alike carry the echo
identifier in `sport` and 0 in `dport` (vnfs/sdk/bpf/flowtable.h); other
ICMP messages key with both ports 0.

Anything the fast path cannot key on (not IPv4, fragments, other protocols,
truncated or inconsistent headers, a bad IPv4 header checksum) raises
PacketError; nothing here trusts a length field without checking it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vnfs.sdk.flow import MAX_VRF, FlowKey, Protocol
from vnfs.sdk.vnf import FastPathInfo, Packet

IPV4_MIN_HEADER = 20
TCP_MIN_HEADER = 20
UDP_HEADER = 8
ICMP_HEADER = 8
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
_MORE_FRAGMENTS = 0x2000
_OFFSET_MASK = 0x1FFF

_IPV4 = struct.Struct("!BBHHHBBHII")
_PORTS = struct.Struct("!HH")
_ICMP = struct.Struct("!BBHH")


class PacketError(ValueError):
    """A punted packet the runtime cannot key; the message says why."""


@dataclass(frozen=True, slots=True)
class Parsed:
    key: FlowKey
    data: bytes
    """the IPv4 packet, cut to its total length (link-layer padding dropped)"""
    tcp_flags: int = 0
    icmp_type: int | None = None
    icmp_code: int | None = None


_PLAIN_HEADER_WORDS = struct.Struct("!10H")
"""a header without options, as 16-bit words (nearly every packet)"""


def _checksum_ok(header: bytes | memoryview) -> bool:
    if len(header) == IPV4_MIN_HEADER:
        total: int = sum(_PLAIN_HEADER_WORDS.unpack(header))
    else:
        total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


_Fields = tuple[FlowKey, bytes, int, int | None, int | None]
"""Parsed's fields: parse_punted builds its Packet from them directly"""


def parse_ipv4(data: bytes | memoryview, vrf: int = 0) -> Parsed:
    """The flow key and L4 details of one IPv4 packet (no link-layer header)."""
    return Parsed(*_parse(data, vrf))


def _parse(data: bytes | memoryview, vrf: int) -> _Fields:
    if not 0 <= vrf <= MAX_VRF:
        raise ValueError(f"vrf {vrf} is outside 0..{MAX_VRF}")
    if len(data) < IPV4_MIN_HEADER:
        raise PacketError(f"{len(data)} bytes is shorter than an IPv4 header")
    (ver_ihl, _tos, total_length, _ident, frag, _ttl, proto, _csum, src, dst) = _IPV4.unpack_from(
        data
    )
    if ver_ihl >> 4 != 4:
        raise PacketError(f"IP version {ver_ihl >> 4}, not 4")
    header_length = (ver_ihl & 0x0F) * 4
    if header_length < IPV4_MIN_HEADER:
        raise PacketError(f"IPv4 header length {header_length} is below {IPV4_MIN_HEADER}")
    if total_length < header_length or total_length > len(data):
        raise PacketError(
            f"IPv4 total length {total_length} does not fit header {header_length} "
            f"and packet {len(data)} bytes"
        )
    if not _checksum_ok(data[:header_length]):
        raise PacketError("bad IPv4 header checksum")
    if frag & (_MORE_FRAGMENTS | _OFFSET_MASK):
        raise PacketError("IPv4 fragment")
    packet = bytes(data[:total_length])
    payload = memoryview(packet)[header_length:]
    # The header's widths bound every key field (and vrf is checked above): keys are
    # built without checking them again.
    make_key = FlowKey.from_ints
    if proto == Protocol.TCP:
        if len(payload) < TCP_MIN_HEADER:
            raise PacketError(f"TCP header truncated to {len(payload)} bytes")
        data_offset = (payload[12] >> 4) * 4
        if data_offset < TCP_MIN_HEADER or data_offset > len(payload):
            raise PacketError(f"TCP data offset {data_offset} is invalid")
        sport, dport = _PORTS.unpack_from(payload)
        flags = payload[13]
        return make_key(src, dst, sport, dport, Protocol.TCP, vrf), packet, flags, None, None
    if proto == Protocol.UDP:
        if len(payload) < UDP_HEADER:
            raise PacketError(f"UDP header truncated to {len(payload)} bytes")
        sport, dport = _PORTS.unpack_from(payload)
        udp_length = int.from_bytes(payload[4:6], "big")
        if udp_length < UDP_HEADER or udp_length > len(payload):
            raise PacketError(f"UDP length {udp_length} does not fit {len(payload)} bytes")
        return make_key(src, dst, sport, dport, Protocol.UDP, vrf), packet, 0, None, None
    if proto == Protocol.ICMP:
        if len(payload) < ICMP_HEADER:
            raise PacketError(f"ICMP header truncated to {len(payload)} bytes")
        icmp_type, code, _csum, identifier = _ICMP.unpack_from(payload)
        sport = identifier if icmp_type in (ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY) else 0
        return make_key(src, dst, sport, 0, Protocol.ICMP, vrf), packet, 0, icmp_type, code
    raise PacketError(f"IP protocol {proto} is not TCP, UDP or ICMP")


def parse_punted(data: bytes | memoryview, fastpath: FastPathInfo, ingress_ifindex: int) -> Packet:
    """The `Packet` a VNF's logic sees for a packet `fastpath` punted: keyed in its
    ingress interface's VRF, as the datapath keyed it."""
    ingress = fastpath.by_ifindex(ingress_ifindex)
    key, packet, tcp_flags, icmp_type, icmp_code = _parse(data, ingress.vrf if ingress else 0)
    return Packet(key, fastpath, ingress, packet, tcp_flags, icmp_type, icmp_code)
