"""The `vpp` fast-path driver: flow rules as VPP objects, over vpp_papi.

For operators whose fast path is VPP (DPDK NICs). The driver owns the VPP
objects it creates (ACL tags start with "vnfs:", ABF policy ids from
`VppSettings.abf_policy_base`) and assumes VPP's NAT44-ED plugin is used by
nobody else: start() resets it.

How each rule shape maps onto VPP. An untranslated rule is an ABF policy
whose ACL permits exactly its 5-tuple, attached to the interfaces of its
vrf; a translated (NAT) rule has no ABF policy, because ABF would hand its
packets to the FIB before NAT44-ED translates them. Everything else meets
the vrf's catch-all punt policy, whose ACL denies the packets of NAT rules
(before and after translation) and permits the rest.

rule shape -> VPP feature (API messages):

* Rewrite of the source address/port, Forward() -> a NAT44-ED static
  mapping local=(src, sport) external=(new src, new sport); VPP routes the
  translated packet by FIB (nat44_add_del_static_mapping_v2, and deny
  entries in the punt ACL, acl_add_replace).
* Rewrite of the destination address/port, Forward() -> the same static
  mapping seen from outside: external=(dst, dport) local=(new dst, new
  dport). The two rules of one translated flow share one mapping.
* Forward() without rewrite -> ABF policy with a lookup path in the vrf's
  table (acl_add_replace, abf_policy_add_del, abf_itf_attach_add_del).
* Forward(next_hop) -> ABF policy with a path via next_hop, resolved in the
  vrf's table; Forward(interface[, next_hop]) -> path out of that interface.
* Encapsulate(vni, udp_dport), Forward() -> a VXLAN-GPE tunnel with next
  protocol IPv4 (the header the tc-BPF datapath writes), shared by the rules
  with the same outer header, and an ABF path into it
  (vxlan_gpe_add_del_tunnel_v2, sw_interface_set_flags,
  sw_interface_set_unnumbered, the ABF messages).
* Drop -> ABF policy with a drop path (not an interface deny ACL: an
  interface's ACL list holds at most 255 ACLs and is replaced whole on every
  change).
* a miss (no rule) -> the catch-all ABF policy of the vrf (permit any,
  attached after every rule) with a receive path; VPP punts the TCP, UDP and
  ICMP packets it receives to this process's punt socket
  (punt_socket_register, PUNT_API_TYPE_IP_PROTO) and `vnfs.sdk.vpp.punt`
  relays them to the slow path as the SDK's punt datagrams.

Rejected with a DriverError naming the rule and the reason, because VPP has
no feature doing exactly what they say: ICMP rules (ACLs match ICMP
type/code, not the echo identifier); rewriting source and destination
(twice-NAT takes the new external-host address from a pool); rewrite or
encapsulation combined with Forward(interface/next_hop) (NAT44-ED and
tunnels route by FIB); rewrite plus encapsulation; Encapsulate with a fixed
udp_sport (vxlan-gpe derives it from the flow hash); Count on a rule that is
not translated (ABF keeps no per-policy counters); two rules whose mappings
share a local or an external endpoint but differ otherwise (a static mapping
is per endpoint: per-flow backends need VPP's load-balanced mappings, which
choose backends themselves); rewrite rules without inside and outside
interfaces; NAT rules whose timeouts differ from those of the installed NAT
rules of the same protocol (below).

Where VPP differs from the rule model, and what the driver does about it:

* A static mapping translates every flow of its endpoints, not only the
  rule's. If ABF runs first on the input arc, packets of other flows of
  the endpoint meet the punt policy and reach the slow path untranslated;
  if NAT44-ED runs first, VPP translates them (and creates a session)
  before punting them. Either way the slow path decides such flows, but in
  the second case it sees them translated.
* The punt ACL is replaced whole whenever NAT rules come or go: one
  message per batch, but O(installed NAT rules) in size and in VPP's work.
* Timeouts: VPP's NAT session timeouts are per protocol (nat_set_timeouts:
  udp, tcp-established, tcp-transitory, icmp), not per rule. The first NAT
  rule of a protocol sets them (idle_timeout; for TCP also
  transitory_timeout, 0 meaning idle_timeout); later NAT rules of that
  protocol must agree while any is installed. VPP then ages the sessions
  itself, including TCP's transitory state, and age_out() expires a NAT rule
  when VPP timed its session out or reclaimed it (or, never seen, after its
  timeout since install).
* Counters: NAT rules report their session's totals (VPP counts both
  directions of a session together, so a flow's two rules show the same
  numbers) and last_seen from time_since_last_heard. ABF keeps no counters,
  so rules without translation report zeros, may not carry Count, and
  expire `idle_timeout` after they were installed (a lifetime, not an idle
  time): a longer flow misses once per lifetime and the slow path
  re-installs it.
* Re-injection: VPP's punt socket re-injects into ip4-lookup, past ABF and
  NAT44-ED, so the relay applies a NAT rule's rewrite itself to that one
  packet; packets of next-hop, interface, tunnel or drop rules are not
  re-injected (counted as forward_errors and dropped, respectively); the
  flow's next packet takes the rule in VPP.
* Global counters: punt and re-injection counters come from the relay
  (re-injected datagrams it cannot take count as reinject_errors); VPP's
  interface counters (stats segment) are not read, so rx/tx are 0.
* Batching: vpp_papi calls are one message each. The driver pipelines them
  in its asynchronous mode (`VppConnection.call_many`, `VppSettings.window`
  in flight), in phases because later objects need earlier replies
  (ACL index -> ABF policy -> attachments). An untranslated rule costs
  2 + interfaces-in-its-vrf messages, a translated one a static mapping
  (shared by its flow's two rules) plus its share of the punt ACL. At the
  tens of thousands of API messages per second a VPP main thread answers,
  expect some thousands of rules per second: far below the tc-BPF
  datapath's batch map updates. This rate is an estimate, not measured.
* Restart: a new VPP process (another vpe_pid on reconnect) has lost every
  object; the driver provisions it again and re-installs every rule it
  holds (counters restart from 0).

The message fields follow VPP's .api definitions (nat44_ed, acl, abf,
vxlan_gpe, punt, interface). VPP cannot run on the project's machines, so
the tests check them against a fake API client; the graph-level behaviour
this design relies on (abf-input-ip4 before NAT44-ED on the ip4-unicast
arc, VPP punting the TCP/UDP/ICMP packets a receive path delivers) comes
from VPP's sources and has not been observed on a running VPP.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from vnfs.sdk.driver import (
    DriverError,
    FastPathDriver,
    GlobalCounters,
    Health,
    Interface,
    PuntTarget,
    TableFull,
)
from vnfs.sdk.flow import ExpiredRule, FlowKey, FlowRule, Protocol, Rewrite, RuleCounters
from vnfs.sdk.packet import PacketError, parse_ipv4
from vnfs.sdk.vpp.api import ClientFactory, VppCallError, VppConnection, papi_client
from vnfs.sdk.vpp.plan import (
    ALL_ONES,
    NAT44_IS_CONNECTION_TRACKING,
    NAT44_IS_STATIC_MAPPING_ONLY,
    NAT_IS_EXT_HOST_VALID,
    NAT_IS_INSIDE,
    NAT_IS_OUTSIDE,
    TAG_PREFIX,
    Mapping,
    PathKind,
    RulePlan,
    Tunnel,
    acl_rule,
    acl_tag,
    fib_path,
    local_path,
    permit_any,
    plan,
)
from vnfs.sdk.vpp.punt import PUNT_HEADER_VERSION, PuntRelay, RelayCounters
from vnfs.sdk.vpp.rewrite import rewrite_ipv4
from vnfs.sdk.vpp.settings import VppSettings

log = logging.getLogger("vnfs.vpp")

IF_STATUS_API_FLAG_ADMIN_UP = 1
IF_STATUS_API_FLAG_LINK_UP = 2
PUNT_API_TYPE_IP_PROTO = 1
ADDRESS_IP4 = 0
PUNTED_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.ICMP)
NS = 1_000_000_000

Request = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Port:
    interface: Interface
    vpp_name: str
    sw_if_index: int
    vrf: int


@dataclass(slots=True)
class _Installed:
    plan: RulePlan
    installed_ns: int
    acl_index: int | None
    """the ACL and ABF policy of an untranslated rule; None for a NAT rule"""
    policy_id: int | None
    counters: RuleCounters = field(default_factory=RuleCounters)
    seen: bool = False
    """NAT rules: VPP's session was seen at least once"""
    timed_out: bool = False


def _session_id(installed: _Installed) -> tuple[object, ...] | None:
    """What a flow's two rules have in common: VPP's one session for both."""
    flow = installed.plan.flow
    if flow is None:
        return None
    return (flow.local, flow.remote, flow.proto, flow.vrf)


_TIMEOUT_NAMES = {
    Protocol.TCP: ("tcp_established", "tcp_transitory"),
    Protocol.UDP: ("udp",),
    Protocol.ICMP: ("icmp",),
}


def _nat_timeouts(rule: FlowRule) -> dict[str, int]:
    if rule.key.proto == Protocol.TCP:
        return {
            "tcp_established": rule.idle_timeout,
            "tcp_transitory": rule.transitory_timeout or rule.idle_timeout,
        }
    return {"udp": rule.idle_timeout}


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode("utf-8", "replace")
    return str(value).split("\0", 1)[0]


class _Undo:
    """Requests that take back what a half-applied batch created, run newest first."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def add(self, name: str, fields: dict[str, Any]) -> None:
        self.requests.append((name, fields))

    def run(self, connection: VppConnection) -> None:
        for name, fields in reversed(self.requests):
            try:
                connection.call(name, **fields)
            except DriverError as exc:
                log.error("undoing a failed batch: %s", exc)
                if not connection.connected:
                    return


class VppDriver(FastPathDriver):
    """One VPP instance as the fast path. Methods are called from the agent's thread;
    the punt relay's thread only reads the rule table (under `_lock`)."""

    name = "vpp"

    def __init__(
        self,
        settings: VppSettings | None = None,
        *,
        client_factory: ClientFactory = papi_client,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.settings = settings or VppSettings()
        self._connection = VppConnection(self.settings, client_factory)
        self._clock = clock
        self._lock = threading.Lock()
        self._vpe_pid: int | None = None
        self._interfaces: list[Interface] = []
        self._ports: dict[str, _Port] = {}
        self._nat = False
        self._punt: PuntTarget | None = None
        self._relay: PuntRelay | None = None
        self._relay_totals: RelayCounters | None = None
        """the last relay's counters, kept when it is replaced or closed"""
        self._punt_objects: list[tuple[int, int, int]] = []
        """(policy id, ACL index, vrf) of the catch-all punt policies"""
        self._lost: tuple[list[Interface], PuntTarget | None, list[FlowRule]] | None = None
        """what a restarted VPP must be given again (until that succeeds)"""
        self._reset_table()
        self._dropped = 0
        self._reinject_misses = 0
        self._forward_errors = 0

    def _reset_table(self) -> None:
        self._rules: dict[FlowKey, _Installed] = {}
        self._mappings: Counter[Mapping] = Counter()
        self._tunnels: dict[Tunnel, int] = {}
        self._tunnel_users: Counter[Tunnel] = Counter()
        self._timeouts = dict(self.settings.nat_timeouts.model_dump())
        self._nat_rules: Counter[Protocol] = Counter()
        self._free_policies: list[int] = []
        self._next_policy = self.settings.abf_policy_base

    # connection

    def _connect(self) -> VppConnection:
        """The connection, reconnecting (and rebuilding a restarted VPP) if needed."""
        connection = self._connection
        if not connection.connected:
            pid = connection.open()
            previous, self._vpe_pid = self._vpe_pid, pid
            if previous is not None and pid != previous and self._interfaces:
                log.warning("VPP restarted (pid %d -> %d): provisioning it again", previous, pid)
                self._lost = (
                    self._interfaces,
                    self._punt,
                    [installed.plan.rule for installed in self._rules.values()],
                )
        if self._lost is not None:
            interfaces, punt, rules = self._lost
            # Whatever an earlier attempt created is found again as leftovers.
            self._close_relay()
            with self._lock:
                self._reset_table()
            self._interfaces, self._ports, self._punt, self._punt_objects = [], {}, None, []
            try:
                self._provision(interfaces)
                self._arm_punt(punt)
                if rules:
                    self._install(rules)
            except DriverError:
                # Start over on the next call: the new VPP may hold half of it.
                connection.close()
                raise
            self._lost = None
        return connection

    # start

    def start(self, interfaces: Sequence[Interface], punt: PuntTarget | None) -> None:
        for interface in interfaces:
            if interface.vrf:
                raise DriverError(
                    f"{interface.name}: the vpp driver keys flows in VRF 0 only "
                    f"(asked for vrf {interface.vrf})"
                )
        self._connect()
        if list(interfaces) != self._interfaces:
            if self._rules or self._punt_objects:
                self._clear()
            self._provision(interfaces)
        if punt != self._punt:
            self._arm_punt(punt)

    def _provision(self, interfaces: Sequence[Interface]) -> None:
        connection = self._connection
        ports: dict[str, _Port] = {}
        for interface in interfaces:
            vpp_name = self.settings.interface_names.get(interface.name) or (
                self.settings.interface_template.format(name=interface.name)
            )
            found = [
                details
                for details in connection.dump(
                    "sw_interface_dump", name_filter_valid=True, name_filter=vpp_name
                )
                if _text(details.interface_name) == vpp_name
            ]
            if not found:
                raise DriverError(
                    f"VPP has no interface {vpp_name} for {interface.name} "
                    f"({interface.role}); set VNF_VPP_INTERFACE_NAMES"
                )
            sw_if_index = int(found[0].sw_if_index)
            table = connection.call(
                "sw_interface_get_table", sw_if_index=sw_if_index, is_ipv6=False
            )
            ports[interface.name] = _Port(interface, vpp_name, sw_if_index, int(table.vrf_id))
        self._remove_leftovers()
        connection.call_many(
            (
                "sw_interface_set_flags",
                {"sw_if_index": port.sw_if_index, "flags": IF_STATUS_API_FLAG_ADMIN_UP},
            )
            for port in ports.values()
        )
        inside = [p for p in ports.values() if p.interface.role in self.settings.nat_inside]
        outside = [p for p in ports.values() if p.interface.role in self.settings.nat_outside]
        self._nat = bool(inside and outside)
        if self._nat:
            # Disabling first drops a previous agent's mappings and sessions.
            with contextlib.suppress(VppCallError):
                connection.call("nat44_ed_plugin_enable_disable", enable=False)
            connection.call(
                "nat44_ed_plugin_enable_disable",
                enable=True,
                inside_vrf=0,
                outside_vrf=0,
                sessions=self.settings.nat_sessions,
                session_memory=0,
                flags=NAT44_IS_STATIC_MAPPING_ONLY | NAT44_IS_CONNECTION_TRACKING,
            )
            connection.call_many(
                [
                    (
                        "nat44_interface_add_del_feature",
                        {"is_add": True, "flags": NAT_IS_INSIDE, "sw_if_index": p.sw_if_index},
                    )
                    for p in inside
                ]
                + [
                    (
                        "nat44_interface_add_del_feature",
                        {"is_add": True, "flags": NAT_IS_OUTSIDE, "sw_if_index": p.sw_if_index},
                    )
                    for p in outside
                ]
            )
            connection.call("nat_set_timeouts", **self._timeouts)
        self._ports = ports
        self._interfaces = list(interfaces)

    def _owned_policy(self, policy_id: int) -> bool:
        base = self.settings.abf_policy_base
        return base <= policy_id <= base + self.settings.table_size + 0xFFFF

    def _remove_leftovers(self) -> None:
        """Objects a previous agent left in this VPP (the table starts empty, as after
        any fast-path restart: the slow path re-pushes to the new epoch)."""
        connection = self._connection
        attached = [d.attach for d in connection.dump("abf_itf_attach_dump")]
        connection.call_many(
            (
                "abf_itf_attach_add_del",
                {
                    "is_add": False,
                    "attach": self._attach(int(a.policy_id), int(a.sw_if_index), int(a.priority)),
                },
            )
            for a in attached
            if self._owned_policy(int(a.policy_id))
        )
        policies = [d.policy for d in connection.dump("abf_policy_dump")]
        connection.call_many(
            (
                "abf_policy_add_del",
                {
                    "is_add": False,
                    "policy": {
                        "policy_id": int(p.policy_id),
                        "acl_index": int(p.acl_index),
                        "n_paths": 0,
                        "paths": [],
                    },
                },
            )
            for p in policies
            if self._owned_policy(int(p.policy_id))
        )
        connection.call_many(
            ("acl_del", {"acl_index": int(details.acl_index)})
            for details in connection.dump("acl_dump", acl_index=ALL_ONES)
            if _text(details.tag).startswith(TAG_PREFIX)
        )

    def _allocate_policy(self) -> int:
        if self._free_policies:
            return self._free_policies.pop()
        self._next_policy += 1
        return self._next_policy

    # punt

    def _arm_punt(self, target: PuntTarget | None) -> None:
        self._disarm_punt()
        if target is None:
            return
        by_ifindex = {port.interface.ifindex: port for port in self._ports.values()}
        relay = PuntRelay(
            target=target,
            client_path=self.settings.punt_socket,
            vpp_path="",
            ifindex_of={port.sw_if_index: ifindex for ifindex, port in by_ifindex.items()},
            reinject=self._reinject,
        )
        connection = self._connection
        try:
            replies = connection.call_many(
                (
                    "punt_socket_register",
                    {
                        "header_version": PUNT_HEADER_VERSION,
                        "punt": self._punt_registration(protocol),
                        "pathname": str(self.settings.punt_socket),
                    },
                )
                for protocol in PUNTED_PROTOCOLS
            )
            relay.vpp_path = _text(replies[0].pathname)
            for vrf in sorted({port.vrf for port in self._ports.values()}):
                acl = connection.call(
                    "acl_add_replace",
                    acl_index=ALL_ONES,
                    tag=f"{TAG_PREFIX}punt",
                    count=1,
                    r=[permit_any()],
                )
                policy_id = self._allocate_policy()
                self._punt_objects.append((policy_id, int(acl.acl_index), vrf))
                connection.call(
                    "abf_policy_add_del",
                    is_add=True,
                    policy={
                        "policy_id": policy_id,
                        "acl_index": int(acl.acl_index),
                        "n_paths": 1,
                        "paths": [local_path(vrf)],
                    },
                )
                connection.call_many(
                    (
                        "abf_itf_attach_add_del",
                        {
                            "is_add": True,
                            "attach": self._attach(
                                policy_id, port.sw_if_index, self.settings.punt_priority
                            ),
                        },
                    )
                    for port in self._ports.values()
                    if port.vrf == vrf
                )
            self._refresh_punt_filters()
        except DriverError:
            relay.close()
            raise
        relay.start()
        self._relay = relay
        self._punt = target

    @staticmethod
    def _punt_registration(protocol: Protocol) -> dict[str, Any]:
        return {
            "type": PUNT_API_TYPE_IP_PROTO,
            "punt": {"ip_proto": {"af": ADDRESS_IP4, "protocol": int(protocol)}},
        }

    @staticmethod
    def _attach(policy_id: int, sw_if_index: int, priority: int) -> dict[str, Any]:
        return {
            "policy_id": policy_id,
            "sw_if_index": sw_if_index,
            "priority": priority,
            "is_ipv6": False,
        }

    def _disarm_punt(self) -> None:
        self._close_relay()
        connection = self._connection
        if self._punt is not None:
            connection.call_many(
                ("punt_socket_deregister", {"punt": self._punt_registration(protocol)})
                for protocol in PUNTED_PROTOCOLS
            )
        for policy_id, acl_index, vrf in self._punt_objects:
            connection.call_many(
                (
                    "abf_itf_attach_add_del",
                    {
                        "is_add": False,
                        "attach": self._attach(
                            policy_id, port.sw_if_index, self.settings.punt_priority
                        ),
                    },
                )
                for port in self._ports.values()
                if port.vrf == vrf
            )
            connection.call(
                "abf_policy_add_del",
                is_add=False,
                policy={"policy_id": policy_id, "acl_index": acl_index, "n_paths": 0, "paths": []},
            )
            connection.call("acl_del", acl_index=acl_index)
            self._free_policies.append(policy_id)
        self._punt_objects = []
        self._punt = None

    def _refresh_punt_filters(self, extra: Sequence[RulePlan] = ()) -> None:
        """Rewrite each vrf's punt ACL: deny the packets of NAT rules, then permit any.

        NAT rules have no ABF policy (ABF would send their packets to the FIB
        before NAT44-ED translates them); the deny entries keep their packets
        off the punt path instead, before and after translation, whichever
        of ABF and NAT44-ED comes first on the input arc. The ACL is
        replaced whole (O(NAT rules) per batch that changes them).
        """
        if not self._punt_objects:
            return
        nat = [i.plan for i in self._rules.values() if i.plan.mapping is not None]
        nat += list(extra)
        self._connection.call_many(
            (
                "acl_add_replace",
                {
                    "acl_index": acl_index,
                    "tag": f"{TAG_PREFIX}punt",
                    "count": len(entries),
                    "r": entries,
                },
            )
            for _policy_id, acl_index, vrf in self._punt_objects
            for entries in [
                [
                    *(
                        acl_rule(seen, permit=False)
                        for p in nat
                        if p.key.vrf == vrf
                        for seen in p.keys_seen()
                    ),
                    permit_any(),
                ]
            ]
        )

    def _close_relay(self) -> None:
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.close()
            self._relay_totals = relay.snapshot()

    def _reinject(self, ifindex: int, packet: bytes) -> bytes | None:
        """The relay thread's question: what VPP should route for this re-injected packet."""
        port = next((p for p in self._ports.values() if p.interface.ifindex == ifindex), None)
        try:
            parsed = parse_ipv4(packet, port.vrf if port else 0)
        except PacketError:
            with self._lock:
                self._forward_errors += 1
            return None
        with self._lock:
            installed = self._rules.get(parsed.key)
            if installed is None:
                self._reinject_misses += 1
                return None
            kind = installed.plan.path.kind
            if kind is PathKind.DROP:
                self._dropped += 1
                return None
            if installed.plan.mapping is None and kind is not PathKind.LOOKUP:
                self._forward_errors += 1
                return None
            rewrite = installed.plan.rule.action(Rewrite)
        return parsed.data if rewrite is None else rewrite_ipv4(parsed.data, rewrite)

    # install

    def install(self, rules: Sequence[FlowRule]) -> int:
        connection = self._connect()
        del connection
        if not self._interfaces:
            raise DriverError("the vpp datapath is not started")
        return self._install(rules)

    def _install(self, rules: Sequence[FlowRule]) -> int:
        names = frozenset(self._ports)
        batch: dict[FlowKey, RulePlan] = {}
        for rule in rules:
            batch[rule.key] = plan(rule, nat=self._nat, interfaces=names)
        fresh = {
            key: p
            for key, p in batch.items()
            if key not in self._rules or self._rules[key].plan.rule != p.rule
        }
        replaced = [key for key in fresh if key in self._rules]
        total = len(self._rules) - len(replaced) + len(fresh)
        if len(fresh) and total > self.settings.table_size:
            raise TableFull(
                f"{len(fresh)} rules do not fit: {len(self._rules)} of "
                f"{self.settings.table_size} installed"
            )
        kept = {key: installed for key, installed in self._rules.items() if key not in fresh}
        timeouts = self._check_nat(list(fresh.values()), kept)
        if replaced:
            self._remove(replaced)
        if fresh:
            self._apply(list(fresh.values()), timeouts)
        return len(batch)

    def _check_nat(
        self, plans: Sequence[RulePlan], kept: dict[FlowKey, _Installed]
    ) -> dict[str, int]:
        """VPP's NAT timeouts after `plans`; DriverError for conflicting mappings or timeouts."""
        by_local: dict[tuple[object, ...], Mapping] = {}
        by_external: dict[tuple[object, ...], Mapping] = {}
        in_use: Counter[Protocol] = Counter()
        for installed in kept.values():
            mapping = installed.plan.mapping
            if mapping is not None:
                by_local[(mapping.local, mapping.proto, mapping.vrf)] = mapping
                by_external[(mapping.external, mapping.proto, mapping.vrf)] = mapping
                in_use[installed.plan.key.proto] += 1
        timeouts = dict(self._timeouts)
        fixed = {name for proto in in_use for name in _TIMEOUT_NAMES[proto]}
        for planned in plans:
            mapping = planned.mapping
            if mapping is None:
                continue
            for index, endpoint in ((by_local, mapping.local), (by_external, mapping.external)):
                other = index.setdefault((endpoint, mapping.proto, mapping.vrf), mapping)
                if other != mapping:
                    raise DriverError(
                        f"rule for {planned.key}: VPP cannot map {mapping}: static mapping "
                        f"{other} already uses {endpoint} (NAT44-ED maps per endpoint, not "
                        "per flow)"
                    )
            for name, seconds in _nat_timeouts(planned.rule).items():
                if name in fixed and timeouts[name] != seconds:
                    raise DriverError(
                        f"rule for {planned.key}: VPP cannot time this flow out after "
                        f"{seconds} s: its NAT timeouts are per protocol and {name} is "
                        f"{timeouts[name]} s for the installed rules"
                    )
                timeouts[name] = seconds
                fixed.add(name)
        return timeouts

    def _apply(self, plans: Sequence[RulePlan], timeouts: dict[str, int]) -> None:
        connection = self._connection
        undo = _Undo()
        abf = [p for p in plans if p.mapping is None]
        policies = [self._allocate_policy() for _ in abf]
        try:
            tunnels = self._create_tunnels(plans, undo)
            mappings = [
                m
                for m in dict.fromkeys(p.mapping for p in plans if p.mapping)
                if self._mappings[m] == 0
            ]
            self._batch(
                [("nat44_add_del_static_mapping_v2", m.fields(is_add=True)) for m in mappings],
                [("nat44_add_del_static_mapping_v2", m.fields(is_add=False)) for m in mappings],
                undo,
            )
            if timeouts != self._timeouts:
                connection.call("nat_set_timeouts", **timeouts)
                undo.add("nat_set_timeouts", dict(self._timeouts))
            acls = self._batch(
                [
                    (
                        "acl_add_replace",
                        {
                            "acl_index": ALL_ONES,
                            "tag": acl_tag(p.rule),
                            "count": 1,
                            "r": [acl_rule(p.key)],
                        },
                    )
                    for p in abf
                ],
                None,
                undo,
                undo_reply=lambda reply: ("acl_del", {"acl_index": int(reply.acl_index)}),
            )
            policy_requests: list[Request] = [
                (
                    "abf_policy_add_del",
                    {
                        "is_add": True,
                        "policy": {
                            "policy_id": policy_id,
                            "acl_index": int(acl.acl_index),
                            "n_paths": 1,
                            "paths": [self._path(p, tunnels)],
                        },
                    },
                )
                for p, acl, policy_id in zip(abf, acls, policies, strict=True)
            ]
            self._batch(
                policy_requests,
                [
                    (
                        "abf_policy_add_del",
                        {
                            "is_add": False,
                            "policy": {**fields["policy"], "n_paths": 0, "paths": []},
                        },
                    )
                    for _, fields in policy_requests
                ],
                undo,
            )
            attaches = [
                self._attach(policy_id, port.sw_if_index, self.settings.rule_priority)
                for p, policy_id in zip(abf, policies, strict=True)
                for port in self._ports.values()
                if port.vrf == p.key.vrf
            ]
            self._batch(
                [("abf_itf_attach_add_del", {"is_add": True, "attach": a}) for a in attaches],
                [("abf_itf_attach_add_del", {"is_add": False, "attach": a}) for a in attaches],
                undo,
            )
            if any(p.mapping is not None for p in plans):
                self._refresh_punt_filters(extra=[p for p in plans if p.mapping is not None])
        except DriverError:
            undo.run(connection)
            self._free_policies.extend(policies)
            if any(p.mapping is not None for p in plans):
                with contextlib.suppress(DriverError):
                    self._refresh_punt_filters()
            raise
        now = self._clock()
        objects = {
            p.key: (int(a.acl_index), i) for p, a, i in zip(abf, acls, policies, strict=True)
        }
        with self._lock:
            self._timeouts = timeouts
            for p in plans:
                acl_index, policy_id = objects.get(p.key, (None, None))
                self._rules[p.key] = _Installed(p, now, acl_index, policy_id)
                if p.mapping is not None:
                    self._mappings[p.mapping] += 1
                    self._nat_rules[p.key.proto] += 1
                if p.path.tunnel is not None:
                    self._tunnel_users[p.path.tunnel] += 1
            self._tunnels.update(tunnels)

    def _path(self, planned: RulePlan, tunnels: dict[Tunnel, int]) -> dict[str, Any]:
        path = planned.path
        sw_if_index = ALL_ONES
        if path.interface is not None:
            sw_if_index = self._ports[path.interface].sw_if_index
        elif path.tunnel is not None:
            sw_if_index = tunnels.get(path.tunnel) or self._tunnels[path.tunnel]
        return fib_path(path, planned.key.vrf, sw_if_index)

    def _create_tunnels(self, plans: Sequence[RulePlan], undo: _Undo) -> dict[Tunnel, int]:
        wanted = [
            t
            for t in dict.fromkeys(p.path.tunnel for p in plans if p.path.tunnel)
            if t not in self._tunnels
        ]
        if not wanted:
            return {}
        replies = self._batch(
            [("vxlan_gpe_add_del_tunnel_v2", t.fields(is_add=True)) for t in wanted],
            [("vxlan_gpe_add_del_tunnel_v2", t.fields(is_add=False)) for t in wanted],
            undo,
        )
        created = {t: int(r.sw_if_index) for t, r in zip(wanted, replies, strict=True)}
        requests: list[Request] = []
        for tunnel, sw_if_index in created.items():
            source = next((p for p in self._ports.values() if p.vrf == tunnel.vrf), None)
            if source is None:
                raise DriverError(
                    f"no data interface is in vrf {tunnel.vrf} for tunnel "
                    f"{tunnel.src} -> {tunnel.dst}"
                )
            requests.append(
                (
                    "sw_interface_set_flags",
                    {"sw_if_index": sw_if_index, "flags": IF_STATUS_API_FLAG_ADMIN_UP},
                )
            )
            # The tunnel borrows that interface's address, so VPP routes IPv4 into it.
            requests.append(
                (
                    "sw_interface_set_unnumbered",
                    {
                        "sw_if_index": source.sw_if_index,
                        "unnumbered_sw_if_index": sw_if_index,
                        "is_add": True,
                    },
                )
            )
        self._connection.call_many(requests)
        return created

    def _batch(
        self,
        requests: list[Request],
        undo_requests: list[Request] | None,
        undo: _Undo,
        *,
        undo_reply: Callable[[Any], Request] | None = None,
    ) -> list[Any]:
        """Pipeline `requests`; remember how to undo each that succeeded; DriverError
        naming the first that failed."""
        if not requests:
            return []
        replies = self._connection.call_many(requests, check=False)
        failed: tuple[str, int] | None = None
        for index, reply in enumerate(replies):
            retval = int(getattr(reply, "retval", 0))
            if retval < 0:
                failed = failed or (requests[index][0], retval)
                continue
            if undo_requests is not None:
                undo.add(*undo_requests[index])
            elif undo_reply is not None:
                undo.add(*undo_reply(reply))
        if failed is not None:
            raise VppCallError(f"{failed[0]} failed with retval {failed[1]}", failed[1])
        return replies

    # remove

    def remove(self, keys: Sequence[FlowKey]) -> int:
        self._connect()
        found = list(dict.fromkeys(key for key in keys if key in self._rules))
        if found:
            self._remove(found)
        return len(found)

    def _remove(self, keys: Sequence[FlowKey]) -> None:
        connection = self._connection
        with self._lock:
            gone = [self._rules.pop(key) for key in keys]
        if any(i.plan.mapping is not None for i in gone):
            # Their packets go back to the punt path before VPP stops translating them.
            self._refresh_punt_filters()
        remaining = {_session_id(i) for i in self._rules.values()} - {None}
        requests: list[Request] = []
        abf = [i for i in gone if i.policy_id is not None]
        for installed in abf:
            key = installed.plan.key
            for port in self._ports.values():
                if port.vrf == key.vrf:
                    requests.append(
                        (
                            "abf_itf_attach_add_del",
                            {
                                "is_add": False,
                                "attach": self._attach(
                                    int(installed.policy_id or 0),
                                    port.sw_if_index,
                                    self.settings.rule_priority,
                                ),
                            },
                        )
                    )
        for installed in abf:
            requests.append(
                (
                    "abf_policy_add_del",
                    {
                        "is_add": False,
                        "policy": {
                            "policy_id": installed.policy_id,
                            "acl_index": installed.acl_index,
                            "n_paths": 0,
                            "paths": [],
                        },
                    },
                )
            )
            requests.append(("acl_del", {"acl_index": installed.acl_index}))
        sessions: list[Request] = []
        for installed in gone:
            p = installed.plan
            if p.mapping is not None:
                self._mappings[p.mapping] -= 1
                self._nat_rules[p.key.proto] -= 1
                if self._mappings[p.mapping] == 0:
                    del self._mappings[p.mapping]
                    # Deleting a static mapping deletes its sessions in VPP.
                    requests.append(
                        ("nat44_add_del_static_mapping_v2", p.mapping.fields(is_add=False))
                    )
                elif p.flow is not None and _session_id(installed) not in remaining:
                    remaining.add(_session_id(installed))
                    sessions.append(
                        (
                            "nat44_del_session",
                            {
                                "address": p.flow.local.address,
                                "protocol": int(p.flow.proto),
                                "port": p.flow.local.port,
                                "vrf_id": p.flow.vrf,
                                "flags": NAT_IS_INSIDE | NAT_IS_EXT_HOST_VALID,
                                "ext_host_address": p.flow.remote.address,
                                "ext_host_port": p.flow.remote.port,
                            },
                        )
                    )
            if p.path.tunnel is not None:
                self._tunnel_users[p.path.tunnel] -= 1
                if self._tunnel_users[p.path.tunnel] == 0:
                    del self._tunnel_users[p.path.tunnel]
                    self._tunnels.pop(p.path.tunnel)
                    requests.append(
                        ("vxlan_gpe_add_del_tunnel_v2", p.path.tunnel.fields(is_add=False))
                    )
            if installed.policy_id is not None:
                self._free_policies.append(installed.policy_id)
        for proto in list(self._nat_rules):
            if self._nat_rules[proto] <= 0:
                del self._nat_rules[proto]
        replies = connection.call_many(requests, check=False)
        # A flow that never carried a packet has no session to delete.
        connection.call_many(sessions, check=False)
        failures = [
            f"{name} ({reply.retval})"
            for (name, _), reply in zip(requests, replies, strict=True)
            if int(getattr(reply, "retval", 0)) < 0
        ]
        if failures:
            raise DriverError(f"removing {len(gone)} rules, VPP refused: {', '.join(failures)}")

    def _clear(self) -> None:
        if self._rules:
            self._remove(list(self._rules))
        self._disarm_punt()

    # counters, dump, aging

    def _sessions(
        self, installed: Iterable[_Installed]
    ) -> dict[tuple[IPv4Address, int], list[Any]]:
        users = {
            (i.plan.flow.local.address, i.plan.flow.vrf)
            for i in installed
            if i.plan.flow is not None
        }
        return {
            user: self._connection.dump(
                "nat44_user_session_v3_dump", ip_address=user[0], vrf_id=user[1]
            )
            for user in sorted(users)
        }

    def _observe(
        self,
        installed: _Installed,
        sessions: dict[tuple[IPv4Address, int], list[Any]],
        now_ns: int,
    ) -> bool:
        """Refresh a NAT rule's counters from its VPP session; False if it has none now."""
        flow = installed.plan.flow
        if flow is None:
            return False
        session = next(
            (s for s in sessions.get((flow.local.address, flow.vrf), ()) if flow.matches(s)), None
        )
        if session is None:
            return False
        idle_ns = int(float(session.time_since_last_heard) * NS)
        installed.counters = RuleCounters(
            packets=int(session.total_pkts),
            bytes=int(session.total_bytes),
            last_seen_ns=max(now_ns - idle_ns, 1),
        )
        installed.seen = True
        installed.timed_out = bool(session.is_timed_out)
        return True

    def counters(self, keys: Sequence[FlowKey]) -> dict[FlowKey, RuleCounters]:
        self._connect()
        chosen = [self._rules[key] for key in dict.fromkeys(keys) if key in self._rules]
        sessions = self._sessions(chosen)
        now = self._clock()
        for installed in chosen:
            self._observe(installed, sessions, now)
        return {installed.plan.key: installed.counters for installed in chosen}

    def dump(self) -> Iterator[tuple[FlowRule, RuleCounters]]:
        self._connect()
        installed = list(self._rules.values())
        sessions = self._sessions(installed)
        now = self._clock()
        for item in installed:
            self._observe(item, sessions, now)
        return iter([(item.plan.rule, item.counters) for item in installed])

    def age_out(self, now_ns: int) -> list[ExpiredRule]:
        self._connect()
        installed = list(self._rules.values())
        sessions = self._sessions(installed)
        expired: list[ExpiredRule] = []
        for item in installed:
            rule = item.plan.rule
            if item.plan.flow is None:
                done = now_ns - item.installed_ns >= rule.idle_timeout * NS
            elif self._observe(item, sessions, now_ns):
                done = item.timed_out
            else:
                # No session: VPP reclaimed a timed-out one, or none ever came.
                timeout = rule.idle_timeout
                if rule.key.proto == Protocol.TCP and rule.transitory_timeout:
                    timeout = rule.transitory_timeout
                done = item.seen or now_ns - item.installed_ns >= timeout * NS
            if done:
                expired.append(ExpiredRule(rule, item.counters))
        if expired:
            self._remove([e.rule.key for e in expired])
        return expired

    # observation

    def global_counters(self) -> GlobalCounters:
        relay = self._relay.snapshot() if self._relay is not None else self._relay_totals
        punted = relay.punted if relay else 0
        punt_errors = relay.punt_errors if relay else 0
        with self._lock:
            return GlobalCounters(
                misses=punted + punt_errors,
                punted=punted,
                punt_errors=punt_errors,
                reinjected=relay.reinjected if relay else 0,
                reinject_misses=self._reinject_misses,
                dropped=self._dropped,
                forward_errors=self._forward_errors,
                reinject_errors=relay.reinject_errors if relay else 0,
            )

    def health(self) -> Health:
        names = {name: False for name in self._ports}
        try:
            connection = self._connect()
            version = connection.call("show_version")
            details = {
                int(d.sw_if_index): int(d.flags)
                for d in connection.dump(
                    "sw_interface_dump", name_filter_valid=False, name_filter=""
                )
            }
        except DriverError as exc:
            return Health(False, str(exc), len(self._rules), self.settings.table_size, names)
        up = IF_STATUS_API_FLAG_ADMIN_UP | IF_STATUS_API_FLAG_LINK_UP
        for name, port in self._ports.items():
            names[name] = details.get(port.sw_if_index, 0) & up == up
        down = sorted(name for name, ok in names.items() if not ok)
        detail = f"VPP {_text(version.version)} (pid {self._vpe_pid})"
        if not self._ports:
            detail += ", not started"
        if down:
            detail += f", interfaces down: {', '.join(down)}"
        return Health(
            bool(self._ports) and not down,
            detail,
            len(self._rules),
            self.settings.table_size,
            names,
        )

    def interfaces(self) -> list[Interface]:
        return list(self._interfaces)

    def close(self) -> None:
        try:
            if self._connection.connected or self._interfaces:
                self._connect()
                self._clear()
                if self._nat:
                    self._connection.call("nat44_ed_plugin_enable_disable", enable=False)
        finally:
            self._close_relay()
            self._connection.close()
            with self._lock:
                self._reset_table()
            self._interfaces, self._ports, self._punt, self._punt_objects = [], {}, None, []
            self._nat = False
