"""The flow rules of NAT sessions, and reading them back from a fast path's table.

Every session is two rules, one per direction, built from the mappings it
uses; either can be rebuilt into its mappings (for `restore`) from its key
and rewrite alone. The cookie marks the rule as the NAT's and says which
kind it is and which mapping made it:

    bits 63..48  0x4E41 ("NA")       bits 47..44  layout version (1)
    bits 43..40  role (1 outbound, 2 inbound, 3 hairpin)
    bits 39..0   mapping id (the inside host's mapping; for hairpin rules the
                 mapping whose address becomes the packet's source)

ICMP echo: the fast path keys requests and replies alike with the echo
identifier in `sport` and `dport` 0 (vnfs.sdk.flow.FlowKey), and rewrites
the identifier through `Rewrite.sport` - in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address

from vnfs.nat.config import Timeouts
from vnfs.nat.mappings import MAPPING_ID_BITS, Mapping
from vnfs.sdk.flow import Count, FlowKey, FlowRule, Forward, Protocol, Rewrite

COOKIE_MAGIC = 0x4E41
COOKIE_VERSION = 1
_ID_MASK = (1 << MAPPING_ID_BITS) - 1


class Role(IntEnum):
    OUTBOUND = 1
    """inside -> outside: the source becomes the mapping's public endpoint"""
    INBOUND = 2
    """outside -> inside: the destination becomes the mapping's inside endpoint"""
    HAIRPIN = 3
    """inside -> inside through public endpoints: both are rewritten"""


def cookie(role: Role, mapping_id: int) -> int:
    return (COOKIE_MAGIC << 48) | (COOKIE_VERSION << 44) | (role << 40) | (mapping_id & _ID_MASK)


def parse_cookie(value: int) -> tuple[Role, int] | None:
    """(role, mapping id) of a NAT rule's cookie; None for any other cookie."""
    if value >> 48 != COOKIE_MAGIC or (value >> 44) & 0xF != COOKIE_VERSION:
        return None
    try:
        role = Role((value >> 40) & 0xF)
    except ValueError:
        return None
    return role, value & _ID_MASK


@dataclass(frozen=True, slots=True)
class Timers:
    idle: int
    transitory: int = 0


def timers_by_protocol(timeouts: Timeouts) -> dict[Protocol, Timers]:
    return {
        Protocol.TCP: Timers(timeouts.tcp_established, timeouts.tcp_transitory),
        Protocol.UDP: Timers(timeouts.udp),
        Protocol.ICMP: Timers(timeouts.icmp),
    }


# Immutable, so every rule can share them (a new flow builds two rules).
_FORWARD = Forward()
_COUNT = Count()


def _rule(key: FlowKey, rewrite: Rewrite, timers: Timers, role: Role, mapping: Mapping) -> FlowRule:
    return FlowRule(
        key=key,
        actions=(rewrite, _FORWARD, _COUNT),
        idle_timeout=timers.idle,
        transitory_timeout=timers.transitory,
        cookie=cookie(role, mapping.id),
    )


def session_rules(
    mapping: Mapping, remote: IPv4Address, remote_port: int, timers: Timers, vrf: int = 0
) -> tuple[FlowRule, FlowRule]:
    """(outbound, inbound) rules of a session between `mapping` and a remote endpoint.

    For ICMP `remote_port` is ignored (the echo identifier is the mapping's port).
    """
    if mapping.proto is Protocol.ICMP:
        outbound_key = FlowKey(
            mapping.inside_ip, remote, mapping.inside_port, 0, mapping.proto, vrf
        )
        inbound_key = FlowKey(remote, mapping.public_ip, mapping.public_port, 0, mapping.proto, vrf)
        inbound_rewrite = Rewrite(dst=mapping.inside_ip, sport=mapping.inside_port)
    else:
        outbound_key = FlowKey(
            mapping.inside_ip, remote, mapping.inside_port, remote_port, mapping.proto, vrf
        )
        inbound_key = FlowKey(
            remote, mapping.public_ip, remote_port, mapping.public_port, mapping.proto, vrf
        )
        inbound_rewrite = Rewrite(dst=mapping.inside_ip, dport=mapping.inside_port)
    outbound_rewrite = Rewrite(src=mapping.public_ip, sport=mapping.public_port)
    return (
        _rule(outbound_key, outbound_rewrite, timers, Role.OUTBOUND, mapping),
        _rule(inbound_key, inbound_rewrite, timers, Role.INBOUND, mapping),
    )


def hairpin_rules(
    source: Mapping, target: Mapping, timers: Timers, vrf: int = 0
) -> tuple[FlowRule, FlowRule]:
    """(forward, reverse) rules of inside host `source` talking to `target`'s public
    endpoint: each side sees the other's public endpoint (RFC 4787 REQ-9). TCP/UDP only."""
    if source.proto is Protocol.ICMP or target.proto is not source.proto:
        raise ValueError("hairpin rules need two TCP or two UDP mappings")
    proto = source.proto
    forward = FlowKey(
        source.inside_ip, target.public_ip, source.inside_port, target.public_port, proto, vrf
    )
    reverse = FlowKey(
        target.inside_ip, source.public_ip, target.inside_port, source.public_port, proto, vrf
    )
    return (
        _rule(
            forward,
            Rewrite(
                src=source.public_ip,
                sport=source.public_port,
                dst=target.inside_ip,
                dport=target.inside_port,
            ),
            timers,
            Role.HAIRPIN,
            source,
        ),
        _rule(
            reverse,
            Rewrite(
                src=target.public_ip,
                sport=target.public_port,
                dst=source.inside_ip,
                dport=source.inside_port,
            ),
            timers,
            Role.HAIRPIN,
            target,
        ),
    )


def partner_key(rule: FlowRule) -> FlowKey:
    """The key of the rule for the other direction of the same session."""
    key = rule.key
    rewrite = rule.action(Rewrite) or Rewrite(src=key.src)
    src = rewrite.src or key.src
    dst = rewrite.dst or key.dst
    sport = key.sport if rewrite.sport is None else rewrite.sport
    if key.proto is Protocol.ICMP:
        return FlowKey(dst, src, sport, 0, key.proto, key.vrf)
    dport = key.dport if rewrite.dport is None else rewrite.dport
    return FlowKey(dst, src, dport, sport, key.proto, key.vrf)


Endpoint = tuple[IPv4Address, int]


@dataclass(frozen=True, slots=True)
class MappingSeen:
    """A mapping a rule reveals, and the remote address its session counts."""

    inside: Endpoint
    public: Endpoint
    remote: IPv4Address


@dataclass(frozen=True, slots=True)
class ParsedRule:
    role: Role
    mapping_id: int
    """the id in the cookie: of `mappings[0]`"""
    mappings: tuple[MappingSeen, ...]
    """one mapping, or for hairpin rules (source, target)"""


def parse_rule(rule: FlowRule) -> ParsedRule | None:
    """What a NAT rule from a fast path's table says; None if it is not a NAT rule
    or its shape does not match its cookie."""
    parsed = parse_cookie(rule.cookie)
    rewrite = rule.action(Rewrite)
    if parsed is None or rewrite is None or rule.action(Forward) is None:
        return None
    role, mapping_id = parsed
    key = rule.key
    icmp = key.proto is Protocol.ICMP
    changes = (
        rewrite.src is not None,
        rewrite.dst is not None,
        rewrite.sport is not None,
        rewrite.dport is not None,
    )
    if role is Role.OUTBOUND and changes == (True, False, True, False):
        assert rewrite.src is not None and rewrite.sport is not None
        seen = MappingSeen((key.src, key.sport), (rewrite.src, rewrite.sport), key.dst)
        return ParsedRule(role, mapping_id, (seen,))
    if role is Role.INBOUND and changes == (False, True, icmp, not icmp):
        assert rewrite.dst is not None
        inside_port = rewrite.sport if icmp else rewrite.dport
        public_port = key.sport if icmp else key.dport
        assert inside_port is not None
        seen = MappingSeen((rewrite.dst, inside_port), (key.dst, public_port), key.src)
        return ParsedRule(role, mapping_id, (seen,))
    if role is Role.HAIRPIN and not icmp and changes == (True, True, True, True):
        assert rewrite.src is not None and rewrite.dst is not None
        assert rewrite.sport is not None and rewrite.dport is not None
        source = MappingSeen((key.src, key.sport), (rewrite.src, rewrite.sport), key.dst)
        target = MappingSeen((rewrite.dst, rewrite.dport), (key.dst, key.dport), rewrite.src)
        return ParsedRule(role, mapping_id, (source, target))
    return None
