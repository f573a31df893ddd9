"""The binary form of flow rules, shared by the rule-push protocol and the BPF map.

One layout serves both so a fast-path agent can hand a received batch to
BPF_MAP_UPDATE_BATCH without touching each rule. `vnfs/sdk/bpf/flowtable.h`
declares the same structs; `tests/unit/vnfs/test_encoding.py` checks the sizes
and offsets against the C header compiled by clang.

struct flow_key (16 bytes, addresses and ports in network order):
    0  src  u32      4  dst  u32      8  sport u16    10 dport u16
    12 proto u8      13 pad u8        14 vrf u16 (host order)

struct flow_action (88 bytes, host order unless marked "net"):
    0  flags u32                 4  idle_timeout_s u32      8  transitory_timeout_s u32
    12 new_src u32 net           16 new_dst u32 net         20 new_sport u16 net
    22 new_dport u16 net         24 out_ifindex u32         28 next_hop u32 net
    32 encap_src u32 net         36 encap_dst u32 net       40 encap_sport u16 net
    42 encap_dport u16 net       44 encap_vni u32           48 cookie u64
    56 packets u64               64 bytes u64               72 last_seen_ns u64
    80 tcp_flags_seen u32        84 reserved u32
The last five fields are written by the datapath; an encoder leaves them 0.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address
from socket import htonl, htons, ntohl, ntohs

from vnfs.sdk.flow import (
    Count,
    Drop,
    Encapsulate,
    FlowKey,
    FlowRule,
    Forward,
    Protocol,
    Rewrite,
    RuleCounters,
)

KEY = struct.Struct("!4s4sHHBx")
"""The network-order part of struct flow_key; `vrf` (host order) follows as VRF."""
VRF = struct.Struct("=H")
KEY_SIZE = 16

ACTION = struct.Struct("=III4s4s2s2sI4s4s4s2s2sIQQQQII")
ACTION_SIZE = 88

# The same records with every field a number, for the per-rule codecs: network-order
# fields go through htonl/htons (or, for the key's host-order vrf, the other way
# round), which is cheaper than building bytes objects per field. Host order ("=")
# and network order ("!") are the same on a big-endian machine, where the swaps
# are no-ops, so these hold on either.
_KEY_NUMBERS = struct.Struct("!IIHHBBH")
"""src, dst, sport, dport, proto, pad, vrf (byte-swapped: it is host order)"""
_ACTION_NUMBERS = struct.Struct("=IIIIIHHIIIIHHIQQQQII")
_ACTION_HEAD = struct.Struct("=IIIIIHHIIIIHHIQ32x")
"""the encoder's part of a flow_action (up to the cookie), counters zeroed"""
COUNTERS_OFFSET = 56
LAST_SEEN_OFFSET = 72
COUNTERS = struct.Struct("=QQQI4x")
"""packets, bytes, last_seen_ns, tcp_flags_seen (and the reserved word): the 32 bytes of
a flow_action from COUNTERS_OFFSET, the part the datapath writes"""


class ActionFlag(IntFlag):
    """Bits of flow_action.flags; the C header defines the same values."""

    REWRITE_SRC = 1 << 0
    REWRITE_DST = 1 << 1
    REWRITE_SPORT = 1 << 2
    REWRITE_DPORT = 1 << 3
    FORWARD = 1 << 4
    ENCAP = 1 << 5
    DROP = 1 << 6
    COUNT = 1 << 7


# Plain int masks for decoding: IntFlag arithmetic costs microseconds per operation
# (a dump decodes up to a million records), and IntFlag keeps unknown bits instead
# of refusing them.
_KNOWN_FLAGS = sum(flag.value for flag in ActionFlag)
_REWRITE_SRC = ActionFlag.REWRITE_SRC.value
_REWRITE_DST = ActionFlag.REWRITE_DST.value
_REWRITE_SPORT = ActionFlag.REWRITE_SPORT.value
_REWRITE_DPORT = ActionFlag.REWRITE_DPORT.value
_REWRITE_ANY = _REWRITE_SRC | _REWRITE_DST | _REWRITE_SPORT | _REWRITE_DPORT
_FORWARD = ActionFlag.FORWARD.value
_ENCAP = ActionFlag.ENCAP.value
_DROP = ActionFlag.DROP.value
_COUNT = ActionFlag.COUNT.value


class EncodingError(ValueError):
    """Bytes that are not a valid rule, or a rule that cannot be encoded."""


_PROTOCOLS = {protocol.value: protocol for protocol in Protocol}
# Shared action values for decoded records: they are immutable.
_PLAIN_FORWARD = Forward()
_DROP_ACTION = Drop()
_COUNT_ACTION = Count()


def encode_key(key: FlowKey) -> bytes:
    src, dst, sport, dport, proto, vrf = key.ints
    return _KEY_NUMBERS.pack(src, dst, sport, dport, proto, 0, htons(vrf) if vrf else 0)


def decode_key(data: bytes | memoryview) -> FlowKey:
    if len(data) != KEY_SIZE:
        raise EncodingError(f"a flow key is {KEY_SIZE} bytes, got {len(data)}")
    return _key_at(data, 0)


def _key_at(data: bytes | memoryview, offset: int) -> FlowKey:
    src, dst, sport, dport, proto, pad, vrf = _KEY_NUMBERS.unpack_from(data, offset)
    if pad:
        raise EncodingError("a flow key's pad byte must be 0 (the datapath would never match it)")
    protocol = _PROTOCOLS.get(proto)
    if protocol is None:
        raise EncodingError(f"protocol {proto} is not ICMP, TCP or UDP")
    # Every field is in range by its width: no checks to repeat.
    return FlowKey.from_ints(src, dst, sport, dport, protocol, ntohs(vrf) if vrf else 0)


def encode_action(rule: FlowRule, ifindex_of: Mapping[str, int] | None = None) -> bytes:
    """The flow_action record of `rule`; `ifindex_of` resolves Forward.interface names."""
    flags = 0
    new_src = new_dst = next_hop = encap_src = encap_dst = 0
    new_sport = new_dport = encap_sport = encap_dport = 0
    out_ifindex = vni = 0
    for action in rule.actions:
        if isinstance(action, Rewrite):
            if action.src is not None:
                flags |= _REWRITE_SRC
                new_src = htonl(int(action.src))
            if action.dst is not None:
                flags |= _REWRITE_DST
                new_dst = htonl(int(action.dst))
            if action.sport is not None:
                flags |= _REWRITE_SPORT
                new_sport = htons(action.sport)
            if action.dport is not None:
                flags |= _REWRITE_DPORT
                new_dport = htons(action.dport)
        elif isinstance(action, Forward):
            flags |= _FORWARD
            if action.interface is not None:
                if ifindex_of is None or action.interface not in ifindex_of:
                    raise EncodingError(
                        f"rule for {rule.key}: the fast path has no interface {action.interface!r}"
                    )
                out_ifindex = ifindex_of[action.interface]
            if action.next_hop is not None:
                next_hop = htonl(int(action.next_hop))
        elif isinstance(action, Count):
            flags |= _COUNT
        elif isinstance(action, Encapsulate):
            flags |= _ENCAP
            encap_src, encap_dst = htonl(int(action.outer_src)), htonl(int(action.outer_dst))
            encap_sport, encap_dport = htons(action.udp_sport), htons(action.udp_dport)
            vni = action.vni
        elif isinstance(action, Drop):
            flags |= _DROP
    return _ACTION_HEAD.pack(
        flags,
        rule.idle_timeout,
        rule.transitory_timeout,
        new_src,
        new_dst,
        new_sport,
        new_dport,
        out_ifindex,
        next_hop,
        encap_src,
        encap_dst,
        encap_sport,
        encap_dport,
        vni,
        rule.cookie,
    )


def decode_action(
    key: FlowKey,
    data: bytes | memoryview,
    interface_of: Mapping[int, str] | None = None,
) -> tuple[FlowRule, RuleCounters]:
    """The rule and counters of one flow_action record (as dumped from a fast path)."""
    if len(data) != ACTION_SIZE:
        raise EncodingError(f"a flow action is {ACTION_SIZE} bytes, got {len(data)}")
    return _action_at(key, data, 0, interface_of)


def _action_at(
    key: FlowKey,
    data: bytes | memoryview,
    offset: int,
    interface_of: Mapping[int, str] | None,
) -> tuple[FlowRule, RuleCounters]:
    (
        flags,
        idle,
        transitory,
        new_src,
        new_dst,
        new_sport,
        new_dport,
        out_ifindex,
        next_hop,
        encap_src,
        encap_dst,
        encap_sport,
        encap_dport,
        vni,
        cookie,
        packets,
        byte_count,
        last_seen,
        tcp_flags,
        _reserved,
    ) = _ACTION_NUMBERS.unpack_from(data, offset)
    # What FlowRule checks, on the flags (the record's widths bound everything else),
    # so the rule can be built without checking it again.
    if flags & ~_KNOWN_FLAGS:
        raise EncodingError(f"unknown action flags {flags & ~_KNOWN_FLAGS:#x}")
    if flags & _DROP and flags & (_REWRITE_ANY | _FORWARD | _ENCAP):
        raise EncodingError(
            f"rule for {key}: a dropping rule cannot also rewrite, forward or encapsulate"
        )
    if not flags & (_DROP | _FORWARD):
        raise EncodingError(f"rule for {key}: a rule must either forward or drop")
    if idle == 0:
        raise EncodingError(f"rule for {key}: idle_timeout must be at least 1 second")
    actions: list[Rewrite | Forward | Encapsulate | Drop | Count] = []
    if flags & _REWRITE_ANY:
        actions.append(
            Rewrite(
                src=IPv4Address(ntohl(new_src)) if flags & _REWRITE_SRC else None,
                dst=IPv4Address(ntohl(new_dst)) if flags & _REWRITE_DST else None,
                sport=ntohs(new_sport) if flags & _REWRITE_SPORT else None,
                dport=ntohs(new_dport) if flags & _REWRITE_DPORT else None,
            )
        )
    if flags & _ENCAP:
        try:
            actions.append(
                Encapsulate(
                    outer_src=IPv4Address(ntohl(encap_src)),
                    outer_dst=IPv4Address(ntohl(encap_dst)),
                    udp_dport=ntohs(encap_dport),
                    udp_sport=ntohs(encap_sport),
                    vni=vni,
                )
            )
        except ValueError as exc:
            raise EncodingError(f"rule for {key}: {exc}") from None
    if flags & _FORWARD:
        if out_ifindex or next_hop:
            interface = None
            if out_ifindex:
                interface = (interface_of or {}).get(out_ifindex, f"ifindex{out_ifindex}")
            actions.append(
                Forward(
                    interface=interface,
                    next_hop=IPv4Address(ntohl(next_hop)) if next_hop else None,
                )
            )
        else:
            actions.append(_PLAIN_FORWARD)
    if flags & _DROP:
        actions.append(_DROP_ACTION)
    if flags & _COUNT:
        actions.append(_COUNT_ACTION)
    rule = FlowRule.trusted(key, tuple(actions), idle, transitory, cookie)
    return rule, RuleCounters(packets, byte_count, last_seen, tcp_flags)


def encode_rules(
    rules: Iterable[FlowRule], ifindex_of: Mapping[str, int] | None = None
) -> tuple[bytes, bytes, int]:
    """(keys, actions, count): the two arrays a BPF batch update takes."""
    keys: list[bytes] = []
    actions: list[bytes] = []
    for rule in rules:
        keys.append(encode_key(rule.key))
        actions.append(encode_action(rule, ifindex_of))
    return b"".join(keys), b"".join(actions), len(keys)


def encode_counters(counters: RuleCounters) -> bytes:
    return COUNTERS.pack(
        counters.packets, counters.bytes, counters.last_seen_ns, counters.tcp_flags_seen
    )


def decode_counters(data: bytes | memoryview) -> RuleCounters:
    packets, byte_count, last_seen, flags = COUNTERS.unpack(data)
    return RuleCounters(packets, byte_count, last_seen, flags)


def encode_rules_with_counters(
    items: Iterable[tuple[FlowRule, RuleCounters]],
    ifindex_of: Mapping[str, int] | None = None,
    chunk: int = 4096,
) -> Iterator[tuple[bytes, bytes, int]]:
    """(keys, actions, count) chunks of rules whose action records carry their counters,
    as a fast path's table holds them (what DUMP and EXPIRED frames carry)."""
    keys: list[bytes] = []
    actions: list[bytes] = []
    for rule, counters in items:
        keys.append(encode_key(rule.key))
        action = encode_action(rule, ifindex_of)
        actions.append(action[:COUNTERS_OFFSET] + encode_counters(counters))
        if len(keys) >= chunk:
            yield b"".join(keys), b"".join(actions), len(keys)
            keys, actions = [], []
    if keys:
        yield b"".join(keys), b"".join(actions), len(keys)


def encode_keys(keys: Sequence[FlowKey]) -> bytes:
    return b"".join(encode_key(key) for key in keys)


def iter_keys(data: bytes | memoryview) -> Iterator[FlowKey]:
    if len(data) % KEY_SIZE:
        raise EncodingError(f"{len(data)} bytes is not a whole number of {KEY_SIZE}-byte keys")
    for offset in range(0, len(data), KEY_SIZE):
        yield _key_at(data, offset)


def iter_rules(
    keys: bytes | memoryview,
    actions: bytes | memoryview,
    interface_of: Mapping[int, str] | None = None,
) -> Iterator[tuple[FlowRule, RuleCounters]]:
    """Decode parallel key and action arrays (a dump or a received install batch)."""
    count, remainder = divmod(len(keys), KEY_SIZE)
    if remainder or len(actions) != count * ACTION_SIZE:
        raise EncodingError(
            f"{len(keys)} bytes of keys and {len(actions)} bytes of actions are not "
            f"matching arrays of {KEY_SIZE}- and {ACTION_SIZE}-byte records"
        )
    for index in range(count):
        key = _key_at(keys, index * KEY_SIZE)
        yield _action_at(key, actions, index * ACTION_SIZE, interface_of)


# --- punt channel ---------------------------------------------------------------

PUNT_HEADER = struct.Struct("!BBHI")
"""version, kind, fast-path instance, ingress ifindex: 8 bytes after the UDP header,
followed by the IPv4 packet (no Ethernet header)."""
PUNT_VERSION = 1


class PuntKind(IntEnum):
    MISS = 1
    """fast path -> slow path: no rule matched this packet"""
    REINJECT = 2
    """slow path -> fast path: forward this packet again, now that its rule is installed"""
    INSTALL = 3
    """slow path -> fast path: put these rules in the table (the header's ifindex field holds
    their count; each record a key, then an action). Sent just before the REINJECT of a new
    flow's first packet to a datapath that takes them (the tc-BPF one), it spares that packet
    the round trip through the agent."""


INSTALL_MAX_RULES = 8
"""rules one INSTALL datagram carries at most (832 bytes of records)"""


def encode_punt(kind: PuntKind, instance: int, ifindex: int, packet: bytes) -> bytes:
    return PUNT_HEADER.pack(PUNT_VERSION, int(kind), instance, ifindex) + packet


def encode_install(instance: int, keys: Sequence[bytes], actions: Sequence[bytes]) -> bytes:
    """An INSTALL datagram's payload: encoded keys and their actions, record by record."""
    count = len(keys)
    if not 1 <= count <= INSTALL_MAX_RULES or len(actions) != count:
        raise EncodingError(
            f"an INSTALL datagram carries 1..{INSTALL_MAX_RULES} rules, not {count}"
        )
    records = [part for pair in zip(keys, actions, strict=True) for part in pair]
    return PUNT_HEADER.pack(PUNT_VERSION, PuntKind.INSTALL, instance, count) + b"".join(records)


def decode_punt(datagram: bytes | memoryview) -> tuple[PuntKind, int, int, memoryview]:
    """(kind, fast-path instance, ingress ifindex, IPv4 packet) of one punt datagram."""
    if len(datagram) < PUNT_HEADER.size + 20:
        raise EncodingError(f"a punt datagram of {len(datagram)} bytes is too short")
    version, kind, instance, ifindex = PUNT_HEADER.unpack_from(datagram)
    if version != PUNT_VERSION:
        raise EncodingError(f"punt header version {version}, expected {PUNT_VERSION}")
    if kind == PuntKind.INSTALL:
        raise EncodingError("an INSTALL datagram carries rules, not a packet")
    if kind not in (PuntKind.MISS, PuntKind.REINJECT):
        raise EncodingError(f"unknown punt kind {kind}")
    return PuntKind(kind), instance, ifindex, memoryview(datagram)[PUNT_HEADER.size :]
