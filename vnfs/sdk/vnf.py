"""What a VNF writes: its decision logic, as the slow-path runtime calls it.

A VNF is a small package: a `VnfLogic` subclass (this module), its config
model (pydantic, filled from the unit's vnf-config.json), and the metrics it
adds. The runtime (`vnfs.sdk.slowpath`) owns sockets, batching, rule pushes,
expiry and recovery; the logic only answers questions about flows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vnfs.sdk.driver import Interface
from vnfs.sdk.flow import ExpiredRule, FlowKey, FlowRule, RuleCounters

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric


@dataclass(frozen=True, slots=True)
class FastPathInfo:
    """One fast-path instance as its agent registered it with the slow path."""

    instance: int
    """the replica index the VIM gave the fast-path unit (VNF_REPLICA_INDEX)"""
    epoch: str
    """changes whenever the fast path restarts with an empty table"""
    interfaces: tuple[Interface, ...]

    def interface(self, role: str) -> Interface | None:
        return next((i for i in self.interfaces if i.role == role), None)

    def by_ifindex(self, ifindex: int) -> Interface | None:
        for interface in self.interfaces:  # a handful: a loop beats a lookup table here
            if interface.ifindex == ifindex:
                return interface
        return None


@dataclass(frozen=True, slots=True)
class Packet:
    """A packet the fast path punted because no rule matched it."""

    key: FlowKey
    fastpath: FastPathInfo
    ingress: Interface | None
    """where it entered the fast path; None if the ifindex is unknown"""
    data: bytes
    """the whole IPv4 packet as received"""
    tcp_flags: int = 0
    icmp_type: int | None = None
    icmp_code: int | None = None


class VnfLogic(ABC):
    """The decisions of one VNF. The runtime calls these from one thread."""

    @abstractmethod
    def on_new_flow(self, packet: Packet) -> Sequence[FlowRule]:
        """Rules for the flow this packet starts (both directions if the VNF wants).

        An empty answer drops the packet. Rules go to `packet.fastpath`; the
        packet is re-injected once they are installed.
        """

    def on_rules_expired(
        self, fastpath: FastPathInfo, expired: Sequence[ExpiredRule]
    ) -> Sequence[FlowKey]:
        """Rules the fast path aged out; return further keys to remove (e.g. the
        other direction of a flow whose state the VNF now forgets)."""
        return ()

    # Optional hooks: most VNFs keep no per-fast-path state beyond their flows.
    def on_fastpath_joined(self, fastpath: FastPathInfo) -> None:  # noqa: B027
        """A fast-path instance registered (first time, or with a new epoch)."""

    def on_fastpath_left(self, fastpath: FastPathInfo) -> None:  # noqa: B027
        """A fast-path instance stopped answering; its flows are gone with it."""

    def metrics(self) -> Iterable[Metric]:
        """The VNF's own Prometheus metric families (`vnfs.sdk.metrics.counter` and
        `gauge` build them). Called once per heartbeat, like the other hooks; the
        runtime serves them with its own on /metrics."""
        return ()

    @abstractmethod
    def restore(
        self, fastpath: FastPathInfo, rules: Sequence[tuple[FlowRule, RuleCounters]]
    ) -> None:
        """After a slow-path restart: rebuild state from a fast path's table."""

    @abstractmethod
    def live_rules(self, fastpath: FastPathInfo) -> Sequence[FlowRule]:
        """After a fast-path restart (new epoch): every rule it should hold again."""
