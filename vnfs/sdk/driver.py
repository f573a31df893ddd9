"""The fast-path driver interface: what a fast-path agent needs from a datapath.

A driver owns one datapath instance (the tc-BPF program and its maps on this
unit's interfaces, or a VPP instance). Slow paths never call a driver
directly; they push rules to the fast-path agent, which calls its driver.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import ClassVar

from vnfs.sdk.encoding import encode_rules_with_counters, iter_keys, iter_rules
from vnfs.sdk.flow import ExpiredRule, FlowKey, FlowRule, RuleCounters
from vnfs.sdk.links import IfindexMap


class DriverError(RuntimeError):
    """The datapath refused or failed an operation; the message says which and why."""


class TableFull(DriverError):
    """The flow table has no room for more rules."""


@dataclass(frozen=True, slots=True)
class Interface:
    """A datapath interface as the slow path needs to know it."""

    name: str
    ifindex: int
    mac: str
    address: str | None
    """IPv4 address with prefix length, e.g. '10.10.0.5/24'"""
    role: str
    """what the VNF uses it for, e.g. 'inside', 'outside', 'punt'"""
    vrf: int = 0
    """flows entering here are keyed with this VRF (e.g. a VPC id); 0 is the default"""


@dataclass(frozen=True, slots=True)
class PuntTarget:
    """Where the datapath sends packets that match no rule."""

    interface: str
    local_address: str
    local_port: int
    slowpath_address: str
    slowpath_port: int
    slowpath_mac: str
    reinject_port: int
    """UDP port on `local_address` where the slow path sends packets back"""
    instance: int
    """this fast path's instance number, carried in every punt header"""


@dataclass(frozen=True, slots=True)
class GlobalCounters:
    """Datapath-wide counters since the datapath started."""

    rx_packets: int = 0
    rx_bytes: int = 0
    hits: int = 0
    misses: int = 0
    punted: int = 0
    punt_errors: int = 0
    reinjected: int = 0
    reinject_misses: int = 0
    dropped: int = 0
    passed_to_host: int = 0
    forward_errors: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    reinject_errors: int = 0
    """re-injected packets the fast path could not take (malformed, unknown ingress)"""


@dataclass(frozen=True, slots=True)
class Health:
    healthy: bool
    detail: str = ""
    table_entries: int = 0
    table_capacity: int = 0
    interfaces: Mapping[str, bool] = field(default_factory=dict)
    """interface name -> program attached and link up"""


class FastPathDriver(ABC):
    """One datapath. Methods are called from one thread (the agent's), except where
    `concurrent_maintenance` allows a second one.

    The `*_encoded` methods, `table_entries` and `datapath_counters` have defaults
    built on the abstract methods; drivers whose table holds the
    `vnfs.sdk.encoding` records override them to skip decoding (the agent calls
    them, not the decoding ones, so a big table costs no per-rule Python work).
    """

    name: str

    concurrent_maintenance: ClassVar[bool] = False
    """True if age_out_encoded, dump_encoded, table_entries, health, global_counters
    and datapath_counters may run on a second thread while the others run on the
    first (so a long table scan does not hold up rule installs). False: every method
    is called from one thread."""

    datagram_installs: ClassVar[bool] = False
    """True if the datapath takes INSTALL datagrams (`vnfs.sdk.encoding.PuntKind.INSTALL`)
    from the slow path on its re-inject port and puts their rules in its table itself,
    counting the flows it adds as the datapath counter `datagram_added` (so
    `table_entries` stays right)."""

    @abstractmethod
    def start(self, interfaces: Sequence[Interface], punt: PuntTarget | None) -> None:
        """Attach to the data interfaces and arm the punt path; repeatable."""

    @abstractmethod
    def install(self, rules: Sequence[FlowRule]) -> int:
        """Add or replace rules; returns how many were applied. TableFull if no room."""

    def install_encoded(self, keys: bytes, actions: bytes, count: int) -> int:
        """Install rules already in the `vnfs.sdk.encoding` layout (as the rule-push
        protocol carries them). Drivers whose tables use that layout override this
        to skip decoding."""
        names = {interface.ifindex: interface.name for interface in self.interfaces()}
        rules = [rule for rule, _ in iter_rules(keys, actions, names)]
        if len(rules) != count:
            raise DriverError(f"batch says {count} rules but carries {len(rules)}")
        return self.install(rules)

    @abstractmethod
    def remove(self, keys: Sequence[FlowKey]) -> int:
        """Delete rules; absent keys are ignored. Returns how many were deleted."""

    def remove_encoded(self, keys: bytes, count: int) -> int:
        """`remove` for packed keys (as a REMOVE frame carries them)."""
        decoded = list(iter_keys(keys))
        if len(decoded) != count:
            raise DriverError(f"batch says {count} keys but carries {len(decoded)}")
        return self.remove(decoded)

    @abstractmethod
    def counters(self, keys: Sequence[FlowKey]) -> dict[FlowKey, RuleCounters]:
        """Per-rule counters of the given keys that are installed."""

    @abstractmethod
    def global_counters(self) -> GlobalCounters: ...

    def datapath_counters(self) -> dict[str, int]:
        """Every counter the datapath keeps, by name: GlobalCounters' fields and any
        details of the driver's own (e.g. ttl_exceeded), for metrics."""
        return asdict(self.global_counters())

    @abstractmethod
    def dump(self) -> Iterator[tuple[FlowRule, RuleCounters]]:
        """Every installed rule with its counters, for reconciliation after a restart."""

    def dump_encoded(self) -> Iterator[tuple[bytes, bytes, int]]:
        """The table as (keys, actions carrying their counters, count) chunks: what
        DUMP_CHUNK frames carry."""
        return encode_rules_with_counters(self.dump(), self._ifindex_map())

    @abstractmethod
    def age_out(self, now_ns: int) -> list[ExpiredRule]:
        """Remove rules idle past their timeout at CLOCK_MONOTONIC `now_ns`; return them."""

    def age_out_encoded(self, now_ns: int, limit: int | None = None) -> tuple[bytes, bytes, int]:
        """`age_out`, returning the expired records as (keys, actions carrying their
        final counters, count): what EXPIRED frames carry.

        With `limit`, a driver may stop after about that many, leaving the rest for
        the next call: callers call again while a call returned `limit` or more.
        (This default ages everything out at once.)"""
        expired = self.age_out(now_ns)
        if not expired:
            return b"", b"", 0
        items = ((item.rule, item.counters) for item in expired)
        chunks = encode_rules_with_counters(items, self._ifindex_map(), chunk=len(expired))
        return next(chunks)

    def table_entries(self) -> int:
        """Rules in the table now."""
        return self.health().table_entries

    @abstractmethod
    def health(self) -> Health: ...

    @abstractmethod
    def interfaces(self) -> list[Interface]:
        """The interfaces the datapath is attached to."""

    @abstractmethod
    def close(self) -> None:
        """Detach from the interfaces and release the table; the rules are gone after."""

    def _ifindex_map(self) -> IfindexMap:
        # 'ifindex<N>' names (interfaces decoding did not know) encode back unchanged.
        return IfindexMap({interface.name: interface.ifindex for interface in self.interfaces()})
