"""Applying a Rewrite to one IPv4 packet in user space, checksums included.

Only for the first packet of a NAT flow that the slow path hands back: VPP's
punt socket re-injects past NAT44-ED, so the relay translates that one
packet the way the rule's static mapping translates the ones after it.
Callers pass packets `vnfs.sdk.packet.parse_ipv4` accepted (TCP or UDP, no
fragments, lengths checked).
"""

from __future__ import annotations

import struct

from vnfs.sdk.flow import Protocol, Rewrite

_ADDRESSES = slice(12, 20)
_CHECKSUM_OFFSET = {Protocol.TCP: 16, Protocol.UDP: 6}


def _fold(total: int) -> int:
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internet_checksum(data: bytes | bytearray | memoryview) -> int:
    """RFC 1071 checksum of `data` (odd lengths padded with a zero byte)."""
    padded = bytes(data) + b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
    return ~_fold(total) & 0xFFFF


def rewrite_ipv4(packet: bytes, rewrite: Rewrite) -> bytes:
    """`packet` with the rewrite applied and its IPv4 and TCP/UDP checksums recomputed."""
    data = bytearray(packet)
    header = (data[0] & 0x0F) * 4
    proto = Protocol(data[9])
    if proto not in _CHECKSUM_OFFSET:
        raise ValueError(f"cannot rewrite a {proto.name} packet")
    if rewrite.src is not None:
        data[12:16] = rewrite.src.packed
    if rewrite.dst is not None:
        data[16:20] = rewrite.dst.packed
    if rewrite.sport is not None:
        data[header : header + 2] = rewrite.sport.to_bytes(2, "big")
    if rewrite.dport is not None:
        data[header + 2 : header + 4] = rewrite.dport.to_bytes(2, "big")
    data[10:12] = b"\0\0"
    data[10:12] = internet_checksum(data[:header]).to_bytes(2, "big")
    total_length = int.from_bytes(data[2:4], "big")
    segment = header + _CHECKSUM_OFFSET[proto]
    if proto == Protocol.UDP and data[segment : segment + 2] == b"\0\0":
        return bytes(data)  # UDP without checksum (RFC 768) stays without
    data[segment : segment + 2] = b"\0\0"
    payload = data[header:total_length]
    pseudo = bytes(data[_ADDRESSES]) + struct.pack("!BBH", 0, proto, len(payload))
    checksum = internet_checksum(pseudo + bytes(payload))
    if proto == Protocol.UDP and checksum == 0:
        checksum = 0xFFFF  # RFC 768: a computed zero is sent as all ones
    data[segment : segment + 2] = checksum.to_bytes(2, "big")
    return bytes(data)
