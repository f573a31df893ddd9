"""The NAT's counters, as plain data for the runtime's metrics exporter.

`NatLogic.stats()` returns a `NatStats` snapshot; gauges are current values,
counters only grow while the process lives. Dict-valued fields are meant as
one metric with a label (shard, reason or protocol).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    @property
    def dropped_inbound(self) -> int:
        """Outside-initiated packets dropped: no mapping, filtered, or not for the pool."""
        return sum(count for reason, count in self.dropped.items() if reason.startswith("inbound"))
