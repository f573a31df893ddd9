"""The NAT's counters, as plain data and as the Prometheus families the slow path serves.

`NatLogic.stats()` returns a `NatStats` snapshot; gauges are current values,
counters only grow while the process lives. Dict-valued fields are one metric
with a label (shard, fastpath, reason or protocol). `families` turns a
snapshot into metric families (NatLogic.metrics, once per heartbeat):

    vnf_nat_mappings{protocol}                   gauge: live mappings
    vnf_nat_sessions{protocol}                   gauge: live sessions (rule pairs)
    vnf_nat_fastpath_sessions{fastpath}          gauge: sessions per fast path
    vnf_nat_subscribers                          gauge: inside addresses holding blocks
    vnf_nat_port_blocks_in_use{shard}            gauge
    vnf_nat_port_blocks{shard}                   gauge: blocks the shard owns
    vnf_nat_exhaustion_events_total{reason}      counter: new flows refused a mapping
    vnf_nat_dropped_packets_total{reason}        counter: punted packets given no rules
    vnf_nat_dropped_inbound_packets_total        counter: the inbound_* drops together
    vnf_nat_restore_skipped_rules_total          counter
    vnf_nat_audit_records_total, vnf_nat_audit_errors_total   counters

Every reason and protocol is present from the start (at 0), so rates and
alerts need no absent-series handling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from vnfs.sdk.metrics import counter, gauge

DROP_REASONS = (
    "unknown_ingress",
    "unexpected_interface",
    "unsupported_icmp",
    "source_in_pool",
    "inbound_not_pool",
    "inbound_no_mapping",
    "inbound_filtered",
    "inbound_wrong_shard",
    "hairpin_disabled",
    "hairpin_no_mapping",
    "hairpin_to_self",
)
"""why a punted packet got no rules (besides port exhaustion)"""
EXHAUSTION_REASONS = ("pool_exhausted", "address_exhausted", "subscriber_limit", "no_shard")
"""why a new outbound flow was refused a mapping; no_shard: the fast-path instance index
is at or above the configured number of shards, so it owns no blocks"""


@dataclass(frozen=True, slots=True)
class NatStats:
    mappings_active: dict[str, int]
    """gauge, by protocol ("tcp", "udp", "icmp")"""
    sessions_active: dict[int, int]
    """gauge, by fast-path instance: sessions (rule pairs) installed there"""
    subscribers_active: int
    """gauge: inside addresses holding at least one block (per shard counted apart)"""
    blocks_in_use: dict[int, int]
    """gauge, by shard"""
    blocks_total: dict[int, int]
    """constant, by shard"""
    exhaustion_events: dict[str, int] = field(default_factory=dict)
    """counter, by reason (EXHAUSTION_REASONS): new flows refused"""
    dropped: dict[str, int] = field(default_factory=dict)
    """counter, by reason (DROP_REASONS): punted packets dropped without rules"""
    restore_skipped: int = 0
    """counter: rules in a fast path's table that restore() could not account for"""
    audit_records: int = 0
    """counter: records written to the mapping log"""
    audit_errors: int = 0
    """counter: mapping-log records lost to write errors"""
    sessions_by_protocol: dict[str, int] = field(default_factory=dict)
    """gauge, by protocol ("tcp", "udp", "icmp")"""

    @property
    def dropped_inbound(self) -> int:
        """Outside-initiated packets dropped: no mapping, filtered, or not for the pool."""
        return sum(count for reason, count in self.dropped.items() if reason.startswith("inbound"))


PROTOCOLS = ("icmp", "tcp", "udp")


def families(stats: NatStats, labels: Mapping[str, str]) -> list[Metric]:
    """The NAT's metric families for one snapshot; `labels` go on every sample."""
    names, values = list(labels), list(labels.values())

    def by(
        kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
        name: str,
        documentation: str,
        label: str,
        samples: Mapping[str, int] | Mapping[int, int],
    ) -> Metric:
        family = kind(name, documentation, labels=[*names, label])
        for key, value in sorted(samples.items()):
            family.add_metric([*values, str(key)], value)
        return family

    def every(known: tuple[str, ...], seen: Mapping[str, int]) -> dict[str, int]:
        return {name: seen.get(name, 0) for name in (*known, *seen)}

    return [
        by(GaugeMetricFamily, "vnf_nat_mappings", "live NAT mappings, by protocol", "protocol",
           every(PROTOCOLS, stats.mappings_active)),
        by(GaugeMetricFamily, "vnf_nat_sessions", "live NAT sessions (rule pairs), by protocol",
           "protocol", every(PROTOCOLS, stats.sessions_by_protocol)),
        by(GaugeMetricFamily, "vnf_nat_fastpath_sessions", "live NAT sessions, by fast path",
           "fastpath", stats.sessions_active),
        gauge("vnf_nat_subscribers", "inside addresses holding port blocks (per shard)",
              stats.subscribers_active, labels),
        by(GaugeMetricFamily, "vnf_nat_port_blocks_in_use", "port blocks allocated, by shard",
           "shard", stats.blocks_in_use),
        by(GaugeMetricFamily, "vnf_nat_port_blocks", "port blocks each shard owns", "shard",
           stats.blocks_total),
        by(CounterMetricFamily, "vnf_nat_exhaustion_events",
           "new flows refused a mapping (port exhaustion), by reason", "reason",
           every(EXHAUSTION_REASONS, stats.exhaustion_events)),
        by(CounterMetricFamily, "vnf_nat_dropped_packets",
           "punted packets the NAT gave no rules, by reason", "reason",
           every(DROP_REASONS, stats.dropped)),
        counter("vnf_nat_dropped_inbound_packets",
                "outside-initiated packets dropped (no mapping, filtered, not for the pool)",
                stats.dropped_inbound, labels),
        counter("vnf_nat_restore_skipped_rules",
                "fast-path rules a slow-path restart could not account for",
                stats.restore_skipped, labels),
        counter("vnf_nat_audit_records", "records written to the mapping log",
                stats.audit_records, labels),
        counter("vnf_nat_audit_errors", "mapping-log records lost to write errors",
                stats.audit_errors, labels),
    ]  # fmt: skip
