"""Which VPP objects implement one flow rule (the table in `vnfs.sdk.vpp.driver`).

Pure functions: a rule in, a `RulePlan` (or a DriverError naming the rule and
why VPP cannot express it) out, and the API fields of each object. Nothing
here talks to VPP.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from vnfs.sdk.driver import DriverError
from vnfs.sdk.flow import Count, Drop, Encapsulate, FlowKey, FlowRule, Forward, Protocol, Rewrite

ALL_ONES = 0xFFFFFFFF
"""~0: VPP's "none" for interface indexes, table ids and ACL indexes"""
ANY = IPv4Address(0)
VXLAN_GPE_PORT = 4790
VXLAN_GPE_NEXT_IP4 = 1
"""vxlan-gpe next protocol IPv4: the inner packet has no Ethernet header"""

# vl_api_nat_config_flags_t
NAT_IS_NONE = 0x00
NAT_IS_OUTSIDE = 0x10
NAT_IS_INSIDE = 0x20
NAT_IS_EXT_HOST_VALID = 0x80
# vl_api_nat44_config_flags_t
NAT44_IS_STATIC_MAPPING_ONLY = 0x02
NAT44_IS_CONNECTION_TRACKING = 0x04
# vl_api_acl_action_t
ACL_ACTION_API_DENY = 0
ACL_ACTION_API_PERMIT = 1
# vl_api_fib_path_type_t
FIB_API_PATH_TYPE_NORMAL = 0
FIB_API_PATH_TYPE_LOCAL = 1
FIB_API_PATH_TYPE_DROP = 2
FIB_API_PATH_NH_PROTO_IP4 = 0

TAG_PREFIX = "vnfs:"
"""every ACL this driver creates carries a tag starting so; leftovers are found by it"""


class PathKind(Enum):
    LOOKUP = "lookup"
    """route the destination through the VRF's FIB"""
    NEXT_HOP = "next-hop"
    INTERFACE = "interface"
    DROP = "drop"
    TUNNEL = "tunnel"


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: IPv4Address
    port: int

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True, slots=True)
class Mapping:
    """One NAT44-ED static mapping: local endpoint <-> external endpoint."""

    local: Endpoint
    external: Endpoint
    proto: Protocol
    vrf: int

    def fields(self, *, is_add: bool) -> dict[str, Any]:
        return {
            "is_add": is_add,
            "match_pool": False,
            "flags": NAT_IS_NONE,
            "pool_ip_address": ANY,
            "local_ip_address": self.local.address,
            "external_ip_address": self.external.address,
            "protocol": int(self.proto),
            "local_port": self.local.port,
            "external_port": self.external.port,
            "external_sw_if_index": ALL_ONES,
            "vrf_id": self.vrf,
            "tag": f"{TAG_PREFIX}nat",
        }

    def __str__(self) -> str:
        return f"{self.proto.name} {self.local} <-> {self.external} vrf {self.vrf}"


@dataclass(frozen=True, slots=True)
class Flow:
    """Where VPP's session of a NAT rule is: the user (inside address) and the match."""

    inside: bool
    """True: the rule's packets go inside -> outside (its key's source is the local endpoint)"""
    local: Endpoint
    translated: Endpoint
    """the endpoint on the rule's side of the mapping: local for in2out, external for out2in"""
    remote: Endpoint
    proto: Protocol
    vrf: int

    def matches(self, session: Any) -> bool:
        """Whether a nat44_user_session_v3_details is this flow's session."""
        if int(session.protocol) != int(self.proto):
            return False
        if (IPv4Address(session.ext_host_address), int(session.ext_host_port)) != (
            self.remote.address,
            self.remote.port,
        ):
            return False
        if self.inside:
            mine = (IPv4Address(session.inside_ip_address), int(session.inside_port))
        else:
            mine = (IPv4Address(session.outside_ip_address), int(session.outside_port))
        return mine == (self.translated.address, self.translated.port)


@dataclass(frozen=True, slots=True)
class Tunnel:
    """A VXLAN-GPE tunnel carrying IPv4 (shared by every rule with the same outer header)."""

    src: IPv4Address
    dst: IPv4Address
    port: int
    vni: int
    vrf: int

    def fields(self, *, is_add: bool) -> dict[str, Any]:
        return {
            "is_add": is_add,
            "local": self.src,
            "remote": self.dst,
            "local_port": self.port,
            "remote_port": self.port,
            "mcast_sw_if_index": ALL_ONES,
            "encap_vrf_id": self.vrf,
            "decap_vrf_id": self.vrf,
            "protocol": VXLAN_GPE_NEXT_IP4,
            "vni": self.vni,
        }


@dataclass(frozen=True, slots=True)
class Path:
    kind: PathKind
    next_hop: IPv4Address | None = None
    interface: str | None = None
    tunnel: Tunnel | None = None


@dataclass(frozen=True, slots=True)
class RulePlan:
    rule: FlowRule
    path: Path
    mapping: Mapping | None = None
    flow: Flow | None = None

    @property
    def key(self) -> FlowKey:
        return self.rule.key

    def keys_seen(self) -> tuple[FlowKey, ...]:
        """The rule's packets as a feature may see them: before and after its rewrite."""
        rewrite = self.rule.action(Rewrite)
        if rewrite is None:
            return (self.key,)
        k = self.key
        after = FlowKey(
            rewrite.src or k.src,
            rewrite.dst or k.dst,
            k.sport if rewrite.sport is None else rewrite.sport,
            k.dport if rewrite.dport is None else rewrite.dport,
            k.proto,
            k.vrf,
        )
        return (k, after)


def _reject(rule: FlowRule, why: str) -> DriverError:
    return DriverError(f"rule for {rule.key}: VPP cannot {why}")


def plan(rule: FlowRule, *, nat: bool, interfaces: frozenset[str]) -> RulePlan:
    """The VPP objects of `rule`; DriverError if VPP cannot do exactly what it says.

    `nat`: whether NAT44-ED runs on this VPP (inside and outside interfaces
    attached); `interfaces`: the names Forward.interface may use.
    """
    planned = _plan(rule, nat=nat, interfaces=interfaces)
    if planned.mapping is None and rule.action(Count) is not None:
        raise _reject(
            rule,
            "count the packets of an ABF-forwarded flow: VPP's ABF keeps no "
            "per-policy counters (only NAT sessions are counted)",
        )
    return planned


def _plan(rule: FlowRule, *, nat: bool, interfaces: frozenset[str]) -> RulePlan:
    key = rule.key
    if key.proto == Protocol.ICMP:
        raise _reject(
            rule, "match ICMP flows exactly: ACLs match ICMP type and code, not the echo identifier"
        )
    rewrite = rule.action(Rewrite)
    forward = rule.action(Forward)
    encap = rule.action(Encapsulate)
    if rule.action(Drop) is not None:
        return RulePlan(rule, Path(PathKind.DROP))
    assert forward is not None  # FlowRule guarantees forward or drop
    if forward.interface is not None and forward.interface not in interfaces:
        known = ", ".join(sorted(interfaces)) or "none"
        raise DriverError(
            f"rule for {key}: the fast path has no interface {forward.interface!r} "
            f"(attached: {known})"
        )
    if rewrite is not None:
        if encap is not None:
            raise _reject(
                rule,
                "rewrite and encapsulate one flow: NAT44-ED routes by FIB after "
                "translating, and no route can select a single flow",
            )
        if forward.interface is not None or forward.next_hop is not None:
            raise _reject(
                rule,
                "force the egress of a translated flow: NAT44-ED routes the "
                "translated packet through the FIB",
            )
        if not nat:
            raise _reject(
                rule,
                "rewrite addresses: NAT44-ED needs an inside and an outside "
                "interface, and none is attached",
            )
        mapping, flow = _nat(rule, rewrite)
        return RulePlan(rule, Path(PathKind.LOOKUP), mapping, flow)
    if encap is not None:
        if encap.udp_sport:
            raise _reject(
                rule,
                f"send from UDP source port {encap.udp_sport}: VPP's vxlan-gpe "
                "derives the source port from the inner flow's hash",
            )
        if forward.interface is not None or forward.next_hop is not None:
            raise _reject(
                rule,
                "force the egress of an encapsulated flow: VPP routes the outer "
                "packet of a vxlan-gpe tunnel through the FIB",
            )
        tunnel = Tunnel(encap.outer_src, encap.outer_dst, encap.udp_dport, encap.vni, key.vrf)
        return RulePlan(rule, Path(PathKind.TUNNEL, tunnel=tunnel))
    if forward.interface is not None:
        return RulePlan(
            rule, Path(PathKind.INTERFACE, next_hop=forward.next_hop, interface=forward.interface)
        )
    if forward.next_hop is not None:
        return RulePlan(rule, Path(PathKind.NEXT_HOP, next_hop=forward.next_hop))
    return RulePlan(rule, Path(PathKind.LOOKUP))


def _nat(rule: FlowRule, rewrite: Rewrite) -> tuple[Mapping, Flow]:
    key = rule.key
    source = rewrite.src is not None or rewrite.sport is not None
    destination = rewrite.dst is not None or rewrite.dport is not None
    if source and destination:
        raise _reject(
            rule,
            "rewrite source and destination of one flow: twice-NAT takes the "
            "external host's new address from a pool, not from the rule",
        )
    src, dst = Endpoint(key.src, key.sport), Endpoint(key.dst, key.dport)
    if source:
        new = Endpoint(
            rewrite.src or key.src, key.sport if rewrite.sport is None else rewrite.sport
        )
        mapping = Mapping(local=src, external=new, proto=key.proto, vrf=key.vrf)
        return mapping, Flow(True, src, src, dst, key.proto, key.vrf)
    new = Endpoint(rewrite.dst or key.dst, key.dport if rewrite.dport is None else rewrite.dport)
    mapping = Mapping(local=new, external=dst, proto=key.proto, vrf=key.vrf)
    return mapping, Flow(False, new, dst, src, key.proto, key.vrf)


def acl_rule(key: FlowKey, *, permit: bool = True) -> dict[str, Any]:
    """An ACL entry matching exactly the packets of `key` (vl_api_acl_rule_t)."""
    return {
        "is_permit": ACL_ACTION_API_PERMIT if permit else ACL_ACTION_API_DENY,
        "src_prefix": IPv4Network(key.src),
        "dst_prefix": IPv4Network(key.dst),
        "proto": int(key.proto),
        "srcport_or_icmptype_first": key.sport,
        "srcport_or_icmptype_last": key.sport,
        "dstport_or_icmpcode_first": key.dport,
        "dstport_or_icmpcode_last": key.dport,
        "tcp_flags_mask": 0,
        "tcp_flags_value": 0,
    }


def permit_any() -> dict[str, Any]:
    """An ACL entry matching every IPv4 packet (the punt policy's classifier)."""
    return {
        "is_permit": ACL_ACTION_API_PERMIT,
        "src_prefix": IPv4Network("0.0.0.0/0"),
        "dst_prefix": IPv4Network("0.0.0.0/0"),
        "proto": 0,
        "srcport_or_icmptype_first": 0,
        "srcport_or_icmptype_last": 0xFFFF,
        "dstport_or_icmpcode_first": 0,
        "dstport_or_icmpcode_last": 0xFFFF,
        "tcp_flags_mask": 0,
        "tcp_flags_value": 0,
    }


def acl_tag(rule: FlowRule) -> str:
    """The ACL's tag (string[64]): marks it as ours and keeps the rule's own fields."""
    return f"{TAG_PREFIX}{rule.cookie:016x}:{rule.idle_timeout:x}:{rule.transitory_timeout:x}"


def fib_path(path: Path, vrf: int, sw_if_index: int = ALL_ONES) -> dict[str, Any]:
    """The vl_api_fib_path_t of an ABF policy; `sw_if_index` of the interface or tunnel."""
    kind = FIB_API_PATH_TYPE_NORMAL
    next_hop = ANY
    if path.kind is PathKind.DROP:
        kind = FIB_API_PATH_TYPE_DROP
    elif path.kind in (PathKind.NEXT_HOP, PathKind.INTERFACE) and path.next_hop is not None:
        next_hop = path.next_hop
    if path.kind not in (PathKind.INTERFACE, PathKind.TUNNEL):
        sw_if_index = ALL_ONES
    return {
        "sw_if_index": sw_if_index,
        # A path with neither next hop nor interface is a lookup in this table.
        "table_id": vrf,
        "rpf_id": 0,
        "weight": 1,
        "preference": 0,
        "type": kind,
        "flags": 0,
        "proto": FIB_API_PATH_NH_PROTO_IP4,
        "nh": {
            "address": {"ip4": next_hop},
            "via_label": 0,
            "obj_id": 0,
            "classify_table_index": ALL_ONES,
        },
        "n_labels": 0,
    }


def local_path(vrf: int) -> dict[str, Any]:
    """A receive path: the packet goes to VPP's ip4-local (and from there to the punt socket)."""
    path = fib_path(Path(PathKind.LOOKUP), vrf)
    path["type"] = FIB_API_PATH_TYPE_LOCAL
    return path
