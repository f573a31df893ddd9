"""Build and check raw IPv4 packets for the datapath tests (no third-party packet library)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

IPV4 = struct.Struct("!BBHHHBBH4s4s")
UDP = struct.Struct("!HHHH")
ICMP_ECHO = struct.Struct("!BBHHH")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def _pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    return src + dst + struct.pack("!BBH", 0, proto, length)


def ipv4(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64, ident: int = 1) -> bytes:
    header = IPV4.pack(
        0x45, 0, 20 + len(payload), ident, 0, ttl, proto, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )  # fmt: skip
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def udp(src: str, sport: int, dst: str, dport: int, payload: bytes, ttl: int = 64) -> bytes:
    length = UDP.size + len(payload)
    segment = UDP.pack(sport, dport, length, 0) + payload
    pseudo = _pseudo(socket.inet_aton(src), socket.inet_aton(dst), socket.IPPROTO_UDP, length)
    value = checksum(pseudo + segment) or 0xFFFF
    return ipv4(
        src, dst, socket.IPPROTO_UDP, segment[:6] + struct.pack("!H", value) + segment[8:], ttl
    )


def icmp_echo(ident: int, sequence: int, payload: bytes, reply: bool = False) -> bytes:
    message = ICMP_ECHO.pack(0 if reply else 8, 0, 0, ident, sequence) + payload
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def tcp(src: str, sport: int, dst: str, dport: int, flags: int = 0x02, seq: int = 1) -> bytes:
    """A TCP segment without payload (a SYN by default) with a valid checksum."""
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0)
    pseudo = _pseudo(socket.inet_aton(src), socket.inet_aton(dst), socket.IPPROTO_TCP, 20)
    value = checksum(pseudo + segment)
    segment = segment[:16] + struct.pack("!H", value) + segment[18:]
    return ipv4(src, dst, socket.IPPROTO_TCP, segment)


def icmp_error(kind: int, code: int, quoted: bytes, rest: int = 0) -> bytes:
    """An ICMP error message (no IP header) quoting `quoted`; `rest` is the 4-byte field
    after the checksum (e.g. the next-hop MTU of "fragmentation needed")."""
    message = struct.pack("!BBHI", kind, code, 0, rest) + quoted
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


@dataclass(frozen=True)
class Parsed:
    """The fields of an IPv4 packet the tests look at."""

    src: str
    dst: str
    proto: int
    ttl: int
    header_ok: bool
    l4: bytes
    l4_ok: bool
    """the L4 checksum verifies (ICMP: over the message; TCP/UDP: with the pseudo-header)"""

    @property
    def ports(self) -> tuple[int, int]:
        return struct.unpack_from("!HH", self.l4)

    @property
    def udp_payload(self) -> bytes:
        return self.l4[UDP.size :]

    @property
    def udp_checksum(self) -> int:
        return int(struct.unpack_from("!H", self.l4, 6)[0])

    @property
    def quoted(self) -> Parsed:
        """The packet an ICMP error quotes."""
        return parse(self.l4[8:])

    @property
    def icmp(self) -> tuple[int, int, int, int, int]:
        """type, code, checksum, identifier, sequence"""
        kind, code, value, ident, sequence = ICMP_ECHO.unpack_from(self.l4)
        return kind, code, value, ident, sequence


def parse(packet: bytes) -> Parsed:
    version_ihl, _, total, _, _, ttl, proto, _, src, dst = IPV4.unpack_from(packet)
    assert version_ihl >> 4 == 4, "not IPv4"
    hlen = (version_ihl & 0xF) * 4
    l4 = packet[hlen:total]
    if proto == socket.IPPROTO_ICMP:
        l4_ok = checksum(l4) == 0
    elif proto == socket.IPPROTO_UDP and struct.unpack_from("!H", l4, 6)[0] == 0:
        l4_ok = True  # no checksum
    else:
        l4_ok = checksum(_pseudo(src, dst, proto, len(l4)) + l4) == 0
    return Parsed(
        src=socket.inet_ntoa(src),
        dst=socket.inet_ntoa(dst),
        proto=proto,
        ttl=ttl,
        header_ok=checksum(packet[:hlen]) == 0,
        l4=l4,
        l4_ok=l4_ok,
    )
