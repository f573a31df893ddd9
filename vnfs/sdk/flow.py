"""Flow rules: what a slow path decides and a fast path executes per packet.

These are plain frozen dataclasses, not pydantic models: a slow path builds
hundreds of thousands of them per second, and they never come from untrusted
input directly (the wire decoders in `vnfs.sdk.encoding` validate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address
from typing import TypeVar

MAX_PORT = 0xFFFF
MAX_VRF = 0xFFFF
MAX_TIMEOUT_SECONDS = 0xFFFFFFFF


class Protocol(IntEnum):
    """IPv4 protocols the fast path keys flows on."""

    ICMP = 1
    TCP = 6
    UDP = 17


def _check_port(name: str, value: int) -> None:
    if not 0 <= value <= MAX_PORT:
        raise ValueError(f"{name} {value} is outside 0..{MAX_PORT}")


@dataclass(frozen=True, slots=True)
class FlowKey:
    """The match of a rule: one direction of one flow.

    For ICMP echo the identifier is carried in `sport` and `dport` is 0, so an
    echo request and its reply are keyed like a UDP flow.
    `vrf` separates overlapping address spaces (a VPC id for CEN); 0 is the default.
    """

    src: IPv4Address
    dst: IPv4Address
    sport: int
    dport: int
    proto: Protocol
    vrf: int = 0

    def __post_init__(self) -> None:
        _check_port("sport", self.sport)
        _check_port("dport", self.dport)
        if not 0 <= self.vrf <= MAX_VRF:
            raise ValueError(f"vrf {self.vrf} is outside 0..{MAX_VRF}")

    def reversed(self) -> FlowKey:
        """The key of the other direction of the same flow, addresses unchanged."""
        return FlowKey(self.dst, self.src, self.dport, self.sport, self.proto, self.vrf)

    def __str__(self) -> str:
        vrf = f" vrf {self.vrf}" if self.vrf else ""
        return f"{self.proto.name} {self.src}:{self.sport} -> {self.dst}:{self.dport}{vrf}"


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Replace header fields; None keeps the field. Checksums are fixed by the fast path."""

    src: IPv4Address | None = None
    dst: IPv4Address | None = None
    sport: int | None = None
    dport: int | None = None

    def __post_init__(self) -> None:
        if self.sport is not None:
            _check_port("sport", self.sport)
        if self.dport is not None:
            _check_port("dport", self.dport)
        if self.src is None and self.dst is None and self.sport is None and self.dport is None:
            raise ValueError("a rewrite must change at least one field")


@dataclass(frozen=True, slots=True)
class Forward:
    """Send the packet on.

    With neither field set, the fast path routes the (rewritten) destination
    through its own routing table. `next_hop` routes to that neighbour instead;
    `interface` (a name the fast path reported) forces the egress interface.
    """

    interface: str | None = None
    next_hop: IPv4Address | None = None


@dataclass(frozen=True, slots=True)
class Encapsulate:
    """Wrap the packet in outer IPv4 + UDP (+ an 8-byte VXLAN-style header carrying `vni`)."""

    outer_src: IPv4Address
    outer_dst: IPv4Address
    udp_dport: int
    udp_sport: int = 0
    vni: int = 0

    def __post_init__(self) -> None:
        _check_port("udp_dport", self.udp_dport)
        _check_port("udp_sport", self.udp_sport)
        if not 0 <= self.vni < 1 << 24:
            raise ValueError(f"vni {self.vni} is outside 0..{(1 << 24) - 1}")


@dataclass(frozen=True, slots=True)
class Drop:
    """Discard the packet (and count it)."""


@dataclass(frozen=True, slots=True)
class Count:
    """Keep per-rule packet and byte counters (readable with the driver's counters call)."""


Action = Rewrite | Forward | Encapsulate | Drop | Count
_ACTION_ORDER: dict[type, int] = {Rewrite: 0, Encapsulate: 1, Forward: 2, Drop: 3, Count: 4}
ActionT = TypeVar("ActionT", Rewrite, Forward, Encapsulate, Drop, Count)


@dataclass(frozen=True, slots=True)
class FlowRule:
    """One offloaded decision: packets matching `key` get `actions`.

    Actions apply in a fixed order whatever order they are given in: rewrite,
    encapsulate, then forward or drop; `actions` holds them in that order.

    The rule is removed when no packet matched it for `idle_timeout` seconds.
    For TCP, `transitory_timeout` applies until the flow has seen an ACK and
    again after a FIN or RST (RFC 5382's transitory state); 0 means the same
    as `idle_timeout`. `cookie` is the VNF's own tag, returned with the rule
    by dumps and expiry reports.
    """

    key: FlowKey
    actions: tuple[Action, ...]
    idle_timeout: int = 300
    transitory_timeout: int = 0
    cookie: int = 0

    def __post_init__(self) -> None:
        # One canonical order (the order the fast path applies them in), so a rule
        # read back from a fast path's table compares equal to the one installed.
        kinds = [type(action) for action in self.actions]
        ranks = [_ACTION_ORDER[kind] for kind in kinds]
        if ranks != sorted(ranks):
            ordered = tuple(sorted(self.actions, key=lambda a: _ACTION_ORDER[type(a)]))
            object.__setattr__(self, "actions", ordered)
            kinds = [type(action) for action in ordered]
        if Drop in kinds and any(k in (Rewrite, Forward, Encapsulate) for k in kinds):
            raise ValueError("a dropping rule cannot also rewrite, forward or encapsulate")
        for kind in (Rewrite, Forward, Encapsulate, Drop, Count):
            if kinds.count(kind) > 1:
                raise ValueError(f"a rule has at most one {kind.__name__} action")
        if Drop not in kinds and Forward not in kinds:
            raise ValueError("a rule must either forward or drop")
        for name, value in (
            ("idle_timeout", self.idle_timeout),
            ("transitory_timeout", self.transitory_timeout),
        ):
            if not 0 <= value <= MAX_TIMEOUT_SECONDS:
                raise ValueError(f"{name} {value} is outside 0..{MAX_TIMEOUT_SECONDS} seconds")
        if self.idle_timeout == 0:
            raise ValueError("idle_timeout must be at least 1 second")
        if not 0 <= self.cookie < 1 << 64:
            raise ValueError("cookie must fit in 64 bits")

    def action(self, kind: type[ActionT]) -> ActionT | None:
        """The rule's action of this kind, if it has one."""
        for action in self.actions:
            if isinstance(action, kind):
                return action
        return None


@dataclass(frozen=True, slots=True)
class RuleCounters:
    """What the fast path counted for one rule."""

    packets: int = 0
    bytes: int = 0
    last_seen_ns: int = 0
    """CLOCK_MONOTONIC time of the last matching packet; 0 when none matched yet."""
    tcp_flags_seen: int = 0


@dataclass(frozen=True, slots=True)
class ExpiredRule:
    """A rule the fast path aged out, with its final counters."""

    rule: FlowRule
    counters: RuleCounters


@dataclass(frozen=True, slots=True)
class RuleBatch:
    """Rules installed or removed together (one round trip, one map batch call)."""

    install: Sequence[FlowRule] = ()
    remove: Sequence[FlowKey] = field(default_factory=tuple)
