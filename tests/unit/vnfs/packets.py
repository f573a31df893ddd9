"""Raw IPv4 packets for the SDK tests (no third-party packet library)."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

SRC, DST = IPv4Address("10.10.0.5"), IPv4Address("198.51.100.9")


def checksum(data: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(
    proto: int,
    payload: bytes,
    *,
    frag: int = 0,
    options: bytes = b"",
    total: int | None = None,
    version: int = 4,
    fix_checksum: bool = True,
) -> bytes:
    ihl = (20 + len(options)) // 4
    length = total if total is not None else 20 + len(options) + len(payload)
    head = struct.pack(
        "!BBHHHBBH4s4s",
        version << 4 | ihl,
        0,
        length,
        1,
        frag,
        64,
        proto,
        0,
        SRC.packed,
        DST.packed,
    )
    head += options
    if fix_checksum:
        head = head[:10] + struct.pack("!H", checksum(head)) + head[12:]
    return head + payload


def tcp(sport: int, dport: int, flags: int, offset_words: int = 5, extra: bytes = b"") -> bytes:
    return (
        struct.pack("!HHIIBBHHH", sport, dport, 1, 0, offset_words << 4, flags, 65535, 0, 0) + extra
    )


def udp(sport: int, dport: int, data: bytes = b"hello") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def icmp(kind: int, code: int, ident: int) -> bytes:
    return struct.pack("!BBHHH", kind, code, 0, ident, 1) + b"ping"
