"""The NAT's decisions: what rules a flow's first packet gets (carrier-grade NAT44).

Packets are told apart by the role of the interface they entered on:

* `inside`, to a non-pool address: the source endpoint gets its mapping
  (endpoint-independent, paired pooling; vnfs.nat.mappings) on the shard of
  the fast path that punted it, and the session gets an outbound rule
  (source -> public endpoint) and an inbound rule (destination -> inside
  endpoint). Port exhaustion refuses the flow (no rules: dropped), logs one
  line (at most one per LOG_INTERVAL per fast path and reason, with the
  number left out) and counts it; a port of a live mapping is never handed
  out again.
* `inside`, to a pool address (hairpinning, RFC 4787 REQ-9): the destination
  must be another subscriber's mapping; both rules rewrite both ends so each
  host sees the other's public endpoint. Hairpinned packets are not filtered:
  with address-dependent filtering two subscribers could otherwise never
  reach each other (each one's first packet would be dropped by the other's
  filter, and a dropped packet opens no filter). ICMP to pool addresses is
  dropped (they are not hosts).
* `outside`, to a pool address: admitted when a mapping of that endpoint
  exists on this fast path's shard and its filter admits the remote
  (endpoint-independent or address-dependent filtering); then the same two
  rules. Otherwise dropped and counted.

Only ICMP echo is translated: requests from inside, replies from outside.
ICMP errors (and every other ICMP type) are dropped for now: translating
them needs the embedded packet rewritten, which the fast path cannot do yet.
Protocols other than TCP, UDP and ICMP never reach the logic (the fast path
keys only those).

A TCP session ends when the fast path ages either of its rules out (a live
connection has packets both ways, ACKs at least; after FIN or RST the
transitory timeout applies): the other rule is removed too. A UDP or ICMP
session ends only when both rules have aged out, so traffic in one direction
keeps the mapping (RFC 4787 REQ-6 asks for outbound refresh; inbound refresh
is allowed, and one-way streams need it); a packet in the idle direction is
punted and gets both rules again. When a session ends, its mappings' session
counts go down, which releases ports and blocks. The timeouts are per
protocol: TCP established + transitory (RFC 5382), UDP (RFC 4787), ICMP
(RFC 5508).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from vnfs.nat.audit import AuditLog
from vnfs.nat.config import NatConfig, NatUnitConfig
from vnfs.nat.mappings import Mapping, MappingTable, Refusal
from vnfs.nat.metrics import NatStats, families
from vnfs.nat.pool import PortBlockPool
from vnfs.nat.rules import hairpin_rules, parse_rule, partner_key, session_rules, timers_by_protocol
from vnfs.sdk.flow import ExpiredRule, FlowKey, FlowRule, Protocol, RuleCounters
from vnfs.sdk.vnf import FastPathInfo, Packet, VnfLogic

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)

INSIDE = "inside"
OUTSIDE = "outside"
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
LOG_INTERVAL = 10.0
"""seconds between two exhaustion log lines of one fast path for one reason"""


@dataclass(eq=False, slots=True)
class Session:
    """One pair of rules on one fast path, and the mappings it keeps alive."""

    fastpath: int
    rules: list[FlowRule]
    links: tuple[tuple[Mapping, IPv4Address], ...]
    """(mapping, remote address it counts for filtering)"""
    idle: set[FlowKey] = field(default_factory=set)
    """rules the fast path aged out while the other direction still lives (UDP, ICMP)"""

    def live(self) -> list[FlowRule]:
        return [rule for rule in self.rules if rule.key not in self.idle]


class NatLogic(VnfLogic):
    """The NAT's VnfLogic. `audit` defaults to a log opened at config.audit.path
    (closed by `close`); `clock` (monotonic seconds) paces the exhaustion log;
    `labels` go on every metric (the slow path's use vnf_instance_id)."""

    def __init__(
        self,
        config: NatConfig,
        *,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.monotonic,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.labels = dict(labels or {})
        self.pool = PortBlockPool(config.public_pool, config.shards)
        self._owns_audit = audit is None
        self.audit = audit or AuditLog(
            config.audit.path,
            per_mapping=config.audit.per_mapping,
            max_bytes=config.audit.max_bytes,
            backups=config.audit.backups,
        )
        self.mappings = MappingTable(
            self.pool,
            filtering=config.filtering,
            max_blocks_per_subscriber=config.max_blocks_per_subscriber,
            audit=self.audit,
        )
        self._timers = timers_by_protocol(config.timeouts)
        self._sessions: dict[int, dict[FlowKey, Session]] = {}
        self._session_count: dict[int, int] = {}
        self._protocol_sessions: dict[Protocol, int] = dict.fromkeys(Protocol, 0)
        self._clock = clock
        self._logged: dict[tuple[int, str], tuple[float, int]] = {}
        self.exhaustion: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.restore_skipped = 0

    @classmethod
    def from_unit(cls, unit: NatUnitConfig) -> NatLogic:
        """The factory the slow-path runtime calls with the loaded unit configuration."""
        return cls(unit.nat, labels={"vnf_instance_id": unit.vnf_instance_id})

    def close(self) -> None:
        if self._owns_audit:
            self.audit.close()

    # New flows --------------------------------------------------------------

    def on_new_flow(self, packet: Packet) -> Sequence[FlowRule]:
        instance = packet.fastpath.instance
        key = packet.key
        known = self._sessions.get(instance, {}).get(key)
        if known is not None:
            # Punted again before its rules landed (a retransmission), or traffic again
            # in a direction whose rule aged out: the same rules, installed again.
            known.idle.clear()
            return tuple(known.rules)
        if packet.ingress is None:
            return self._drop("unknown_ingress")
        if packet.ingress.role == INSIDE:
            return self._from_inside(packet)
        if packet.ingress.role == OUTSIDE:
            return self._from_outside(packet)
        return self._drop("unexpected_interface")

    def _drop(self, reason: str) -> Sequence[FlowRule]:
        self.dropped[reason] += 1
        return ()

    def _from_inside(self, packet: Packet) -> Sequence[FlowRule]:
        key = packet.key
        if key.proto is Protocol.ICMP and packet.icmp_type != ICMP_ECHO_REQUEST:
            return self._drop("unsupported_icmp")
        if key.src in self.pool:
            return self._drop("source_in_pool")
        if key.dst in self.pool:
            return self._hairpin(packet)
        mapping = self._obtain(packet)
        if mapping is None:
            return ()
        return self._open(packet.fastpath.instance, mapping, key.dst, key.dport, key.vrf)

    def _from_outside(self, packet: Packet) -> Sequence[FlowRule]:
        key = packet.key
        instance = packet.fastpath.instance
        if key.dst not in self.pool:
            return self._drop("inbound_not_pool")
        if key.proto is Protocol.ICMP:
            if packet.icmp_type != ICMP_ECHO_REPLY:
                return self._drop("unsupported_icmp")
            mapping = self.mappings.find_public(key.dst, key.sport, key.proto)
        else:
            mapping = self.mappings.find_public(key.dst, key.dport, key.proto)
        if mapping is None:
            return self._drop("inbound_no_mapping")
        if mapping.shard != instance:
            # The outside network must route each shard's prefixes to its instance.
            return self._drop("inbound_wrong_shard")
        if not self.mappings.admits(mapping, key.src):
            return self._drop("inbound_filtered")
        return self._open(instance, mapping, key.src, key.sport, key.vrf)

    def _hairpin(self, packet: Packet) -> Sequence[FlowRule]:
        key = packet.key
        if not self.config.hairpinning:
            return self._drop("hairpin_disabled")
        if key.proto is Protocol.ICMP:
            return self._drop("hairpin_no_mapping")
        target = self.mappings.find_public(key.dst, key.dport, key.proto)
        if target is None:
            return self._drop("hairpin_no_mapping")
        source = self._obtain(packet)
        if source is None:
            return ()
        if (source.inside_ip, source.inside_port) == (target.inside_ip, target.inside_port):
            self.mappings.discard_if_unused(source)
            return self._drop("hairpin_to_self")
        rules = hairpin_rules(source, target, self._timers[key.proto], key.vrf)
        self._add_session(
            packet.fastpath.instance,
            list(rules),
            ((source, target.public_ip), (target, source.public_ip)),
        )
        return rules

    def _obtain(self, packet: Packet) -> Mapping | None:
        key = packet.key
        instance = packet.fastpath.instance
        if instance >= self.config.shards:
            self._refused(packet, "no_shard")
            return None
        found = self.mappings.obtain(instance, key.src, key.sport, key.proto)
        if isinstance(found, Refusal):
            self._refused(packet, found.value)
            return None
        return found

    def _open(
        self, instance: int, mapping: Mapping, remote: IPv4Address, remote_port: int, vrf: int
    ) -> Sequence[FlowRule]:
        rules = session_rules(mapping, remote, remote_port, self._timers[mapping.proto], vrf)
        self._add_session(instance, list(rules), ((mapping, remote),))
        return rules

    def _add_session(
        self,
        instance: int,
        rules: list[FlowRule],
        links: tuple[tuple[Mapping, IPv4Address], ...],
    ) -> Session:
        session = Session(instance, rules, links)
        table = self._sessions.setdefault(instance, {})
        for mapping, remote in links:
            self.mappings.attach(mapping, remote)
        # A restored half session (its other rule aged out while no slow path ran)
        # is superseded when its flow is punted again; the new rules replace its rule.
        for rule in rules:
            old = table.get(rule.key)
            if old is not None:  # ending it drops all its keys: found once at most
                self._end_session(old, "idle")
        for rule in rules:
            table[rule.key] = session
        self._session_count[instance] = self._session_count.get(instance, 0) + 1
        self._protocol_sessions[rules[0].key.proto] += 1
        return session

    def _end_session(self, session: Session, reason: str) -> None:
        table = self._sessions.get(session.fastpath, {})
        for rule in session.rules:
            if table.get(rule.key) is session:
                del table[rule.key]
        self._session_count[session.fastpath] -= 1
        self._protocol_sessions[session.rules[0].key.proto] -= 1
        for mapping, remote in session.links:
            self.mappings.detach(mapping, remote, reason)

    def _refused(self, packet: Packet, reason: str) -> None:
        self.exhaustion[reason] += 1
        key = packet.key
        instance = packet.fastpath.instance
        now = self._clock()
        # One line per fast path and reason per interval: an exhausted pool refuses
        # every new flow, and the log must not become the bottleneck.
        last, suppressed = self._logged.get((instance, reason), (None, 0))
        if last is not None and now - last < LOG_INTERVAL:
            self._logged[(instance, reason)] = (last, suppressed + 1)
            return
        self._logged[(instance, reason)] = (now, 0)
        more = f"; {suppressed} more refused since the last report" if suppressed else ""
        log.warning(
            "NAT refused a new flow on fast path %d: %s (%s)%s",
            instance,
            key,
            self._explain(reason, instance, key.src),
            more,
        )

    def _explain(self, reason: str, instance: int, subscriber: IPv4Address) -> str:
        size = self.config.public_pool.port_block_size
        if reason == "no_shard":
            return f"no_shard: the pool is split into {self.config.shards} shards"
        if reason == "subscriber_limit":
            return (
                f"subscriber_limit: {subscriber} holds {self.config.max_blocks_per_subscriber} "
                f"blocks of {size} ports, all in use for this protocol"
            )
        held = self.mappings.subscriber(instance, subscriber)
        if reason == "address_exhausted" and held is not None:
            return f"address_exhausted: no free block left on {held.public_ip}"
        return (
            f"{reason}: {self.pool.in_use(instance)} of {self.pool.total(instance)} "
            f"blocks of shard {instance} in use"
        )

    # Expiry and fast-path lifecycle ------------------------------------------

    def on_rules_expired(
        self, fastpath: FastPathInfo, expired: Sequence[ExpiredRule]
    ) -> Sequence[FlowKey]:
        table = self._sessions.get(fastpath.instance, {})
        gone = {item.rule.key for item in expired}
        remove: list[FlowKey] = []
        for item in expired:
            key = item.rule.key
            session = table.get(key)
            if session is None:
                continue
            session.idle.add(key)
            if key.proto is not Protocol.TCP and len(session.idle) < len(session.rules):
                continue  # one-way UDP/ICMP traffic keeps the session (RFC 4787 REQ-6)
            idle = session.idle
            remove.extend(r.key for r in session.rules if r.key not in gone and r.key not in idle)
            self._end_session(session, "idle")
        return remove

    def on_fastpath_joined(self, fastpath: FastPathInfo) -> None:
        if fastpath.instance >= self.config.shards:
            log.warning(
                "fast path %d joined, but the pool is split into %d shards: it gets no "
                "mappings (raise `shards` to the VDU's max_number_of_instances)",
                fastpath.instance,
                self.config.shards,
            )

    def on_fastpath_left(self, fastpath: FastPathInfo) -> None:
        table = self._sessions.get(fastpath.instance, {})
        for session in list({id(s): s for s in table.values()}.values()):
            self._end_session(session, "fastpath_left")
        self._sessions.pop(fastpath.instance, None)
        self._session_count.pop(fastpath.instance, None)

    # Recovery ---------------------------------------------------------------

    def restore(
        self, fastpath: FastPathInfo, rules: Sequence[tuple[FlowRule, RuleCounters]]
    ) -> None:
        instance = fastpath.instance
        table = self._sessions.setdefault(instance, {})
        skipped_before = self.restore_skipped
        for rule, _ in rules:
            if rule.key in table:
                continue  # restored already (a repeated dump)
            partner = table.get(partner_key(rule))
            if partner is not None and len(partner.rules) == 1:
                partner.rules.append(rule)
                table[rule.key] = partner
                continue
            self._restore_session(instance, rule)
        skipped = self.restore_skipped - skipped_before
        log.info(
            "restored %d sessions of fast path %d (%d rules not restored)",
            self._session_count.get(instance, 0),
            instance,
            skipped,
        )

    def _restore_session(self, instance: int, rule: FlowRule) -> None:
        parsed = parse_rule(rule)
        if parsed is None:
            self._skip(instance, rule, "not a NAT rule")
            return
        links: list[tuple[Mapping, IPv4Address]] = []
        for position, seen in enumerate(parsed.mappings):
            # A mapping lives on the shard of its public address; for a hairpin rule
            # that may be another fast path's.
            shard = self.pool.shard_of(seen.public[0])
            if shard is None:
                self._skip(instance, rule, f"{seen.public[0]} is not a pool address")
                return
            wanted = parsed.mapping_id if position == 0 else 0
            mapping = self.mappings.restore(shard, rule.key.proto, seen.inside, seen.public, wanted)
            if isinstance(mapping, str):
                self._skip(instance, rule, mapping)
                for made, _ in links:
                    self.mappings.discard_if_unused(made)
                return
            links.append((mapping, seen.remote))
        self._add_session(instance, [rule], tuple(links))

    def _skip(self, instance: int, rule: FlowRule, why: str) -> None:
        self.restore_skipped += 1
        log.warning("fast path %d: rule %s not restored: %s", instance, rule.key, why)

    def live_rules(self, fastpath: FastPathInfo) -> Sequence[FlowRule]:
        table = self._sessions.get(fastpath.instance, {})
        sessions = {id(s): s for s in table.values()}.values()
        return [rule for session in sessions for rule in session.live()]

    # Metrics ----------------------------------------------------------------

    def stats(self) -> NatStats:
        shards = range(self.config.shards)
        return NatStats(
            mappings_active={p.name.lower(): n for p, n in self.mappings.active.items()},
            sessions_active=dict(self._session_count),
            sessions_by_protocol={p.name.lower(): n for p, n in self._protocol_sessions.items()},
            subscribers_active=self.mappings.subscribers,
            blocks_in_use={s: self.pool.in_use(s) for s in shards},
            blocks_total={s: self.pool.total(s) for s in shards},
            exhaustion_events=dict(self.exhaustion),
            dropped=dict(self.dropped),
            restore_skipped=self.restore_skipped,
            audit_records=self.audit.records,
            audit_errors=self.audit.errors,
        )

    def metrics(self) -> Iterable[Metric]:
        """The NAT's metric families (vnfs.nat.metrics), served on the slow path's /metrics."""
        return families(self.stats(), self.labels)
