"""Flow rules: what a slow path decides and a fast path executes per packet.

These are immutable values (frozen dataclasses, and FlowKey a slotted class
with its hash precomputed), not pydantic models: a slow path builds hundreds
of thousands of them per second, and they never come from untrusted input
directly (the wire decoders in `vnfs.sdk.encoding` validate). Decoders, which
check the records themselves, build keys and rules with `FlowKey.from_ints`
and `FlowRule.trusted`, skipping the constructors' checks.
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


class FlowKey:
    """The match of a rule: one direction of one flow.

    For ICMP echo the identifier is carried in `sport` and `dport` is 0, so an
    echo request and its reply are keyed like a UDP flow.
    `vrf` separates overlapping address spaces (a VPC id for CEN); 0 is the default.

    An immutable value like a frozen dataclass (equal keys hash alike; the
    fields are read-only). It holds the addresses as ints and its hash
    precomputed, because a slow path hashes every key several times per new
    flow; `src` and `dst` are IPv4Address objects made when first asked for.
    """

    __slots__ = ("_dst", "_hash", "_src", "_values")
    __match_args__ = ("src", "dst", "sport", "dport", "proto", "vrf")

    _values: tuple[int, int, int, int, Protocol, int]
    _hash: int
    _src: IPv4Address | None
    _dst: IPv4Address | None

    def __init__(
        self,
        src: IPv4Address,
        dst: IPv4Address,
        sport: int,
        dport: int,
        proto: Protocol,
        vrf: int = 0,
    ) -> None:
        if not (0 <= sport <= MAX_PORT and 0 <= dport <= MAX_PORT and 0 <= vrf <= MAX_VRF):
            _check_port("sport", sport)
            _check_port("dport", dport)
            raise ValueError(f"vrf {vrf} is outside 0..{MAX_VRF}")
        if not (isinstance(src, IPv4Address) and isinstance(dst, IPv4Address)):
            raise TypeError(f"a flow key's addresses are IPv4Address objects, not {src!r}, {dst!r}")
        values = (int(src), int(dst), sport, dport, proto, vrf)
        self._values = values
        self._hash = hash(values)
        self._src = src
        self._dst = dst

    @classmethod
    def from_ints(
        cls, src: int, dst: int, sport: int, dport: int, proto: Protocol, vrf: int = 0
    ) -> FlowKey:
        """A key from addresses as ints, without any check: for decoders whose input
        format bounds every field already (u32 addresses, u16 ports and vrf, a known
        protocol). Everyone else uses the checking constructor."""
        key = object.__new__(cls)
        values = (src, dst, sport, dport, proto, vrf)
        key._values = values
        key._hash = hash(values)
        key._src = key._dst = None
        return key

    @property
    def src(self) -> IPv4Address:
        address = self._src
        if address is None:
            address = self._src = IPv4Address(self._values[0])
        return address

    @property
    def dst(self) -> IPv4Address:
        address = self._dst
        if address is None:
            address = self._dst = IPv4Address(self._values[1])
        return address

    @property
    def sport(self) -> int:
        return self._values[2]

    @property
    def dport(self) -> int:
        return self._values[3]

    @property
    def proto(self) -> Protocol:
        return self._values[4]

    @property
    def vrf(self) -> int:
        return self._values[5]

    @property
    def ints(self) -> tuple[int, int, int, int, Protocol, int]:
        """(src, dst, sport, dport, proto, vrf) with the addresses as ints: what the key
        compares and hashes by, and what encoders pack."""
        return self._values

    def reversed(self) -> FlowKey:
        """The key of the other direction of the same flow, addresses unchanged."""
        src, dst, sport, dport, proto, vrf = self._values
        key = FlowKey.from_ints(dst, src, dport, sport, proto, vrf)
        key._src, key._dst = self._dst, self._src
        return key

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FlowKey):
            return self._hash == other._hash and self._values == other._values
        return NotImplemented

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[FlowKey], tuple[object, ...]]:
        return FlowKey, (self.src, self.dst, self.sport, self.dport, self.proto, self.vrf)

    def __repr__(self) -> str:
        return (
            f"FlowKey(src={self.src!r}, dst={self.dst!r}, sport={self.sport!r}, "
            f"dport={self.dport!r}, proto={self.proto!r}, vrf={self.vrf!r})"
        )

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
_COOKIE_LIMIT = 1 << 64

_SHAPES: dict[tuple[type, ...], tuple[int, ...] | None] = {}
"""valid sequences of action types -> the positions in canonical order (None: already
canonical). At most a few hundred entries: each kind appears at most once."""


def _canonical_order(shape: tuple[type, ...]) -> tuple[int, ...] | None:
    """Check a sequence of action types; the permutation that sorts it, None if sorted."""
    ranks = [_ACTION_ORDER[kind] for kind in shape]
    order: tuple[int, ...] | None = None
    kinds = list(shape)
    if ranks != sorted(ranks):
        order = tuple(sorted(range(len(shape)), key=lambda index: ranks[index]))
        kinds = [shape[index] for index in order]
    if Drop in kinds and any(k in (Rewrite, Forward, Encapsulate) for k in kinds):
        raise ValueError("a dropping rule cannot also rewrite, forward or encapsulate")
    for kind in (Rewrite, Forward, Encapsulate, Drop, Count):
        if kinds.count(kind) > 1:
            raise ValueError(f"a rule has at most one {kind.__name__} action")
    if Drop not in kinds and Forward not in kinds:
        raise ValueError("a rule must either forward or drop")
    _SHAPES[shape] = order
    return order


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
        # Which combinations are valid depends only on the action types: checked
        # once per combination (a slow path builds rules of a handful of shapes).
        actions = self.actions
        shape = tuple(map(type, actions))
        order = _SHAPES[shape] if shape in _SHAPES else _canonical_order(shape)
        if order is not None:
            object.__setattr__(self, "actions", tuple(actions[index] for index in order))
        idle, transitory, cookie = self.idle_timeout, self.transitory_timeout, self.cookie
        if not (
            0 < idle <= MAX_TIMEOUT_SECONDS
            and 0 <= transitory <= MAX_TIMEOUT_SECONDS
            and 0 <= cookie < _COOKIE_LIMIT
        ):
            for name, value in (("idle_timeout", idle), ("transitory_timeout", transitory)):
                if not 0 <= value <= MAX_TIMEOUT_SECONDS:
                    raise ValueError(f"{name} {value} is outside 0..{MAX_TIMEOUT_SECONDS} seconds")
            if idle == 0:
                raise ValueError("idle_timeout must be at least 1 second")
            raise ValueError("cookie must fit in 64 bits")

    @classmethod
    def trusted(
        cls,
        key: FlowKey,
        actions: tuple[Action, ...],
        idle_timeout: int,
        transitory_timeout: int,
        cookie: int,
    ) -> FlowRule:
        """A rule built without any check: for decoders that verified the record
        already (actions in canonical order and a valid combination, timeouts and
        cookie in range). Everyone else uses the checking constructor."""
        # The slots' own descriptors: a third of what the frozen __init__'s
        # object.__setattr__ calls cost.
        rule = object.__new__(cls)
        _set_key(rule, key)
        _set_actions(rule, actions)
        _set_idle(rule, idle_timeout)
        _set_transitory(rule, transitory_timeout)
        _set_cookie(rule, cookie)
        return rule

    def action(self, kind: type[ActionT]) -> ActionT | None:
        """The rule's action of this kind, if it has one."""
        for action in self.actions:
            if isinstance(action, kind):
                return action
        return None


_set_key = vars(FlowRule)["key"].__set__
_set_actions = vars(FlowRule)["actions"].__set__
_set_idle = vars(FlowRule)["idle_timeout"].__set__
_set_transitory = vars(FlowRule)["transitory_timeout"].__set__
_set_cookie = vars(FlowRule)["cookie"].__set__


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
