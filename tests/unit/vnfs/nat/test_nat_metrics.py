"""The NAT's metrics: NatLogic.metrics() families, and the NAT slow path's /metrics.

The slow-path test runs the real SlowPath with the real NatLogic and a real
fast-path Agent on loopback; only the datapath is the SDK tests' DriverDouble
(the tc-BPF datapath has its own tests in tests/integration/fastpath), and the
test plays the datapath's packet side with a UDP socket, as test_slowpath does.
"""

from __future__ import annotations

import secrets
import socket
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.vnfs.nat.factory import OUTSIDE, fastpath, logic, outbound, packet
from tests.unit.vnfs.packets import DST, SRC, icmp, ipv4, udp
from tests.unit.vnfs.runtime_support import (
    DriverDouble,
    InThread,
    Ports,
    loopback_subnet,
    unit_config,
    wait_until,
)
from vnfs.nat.audit import AuditLog
from vnfs.nat.config import NatConfig
from vnfs.nat.logic import NatLogic
from vnfs.nat.metrics import DROP_REASONS, EXHAUSTION_REASONS
from vnfs.sdk.agent import Agent
from vnfs.sdk.config import UnitConfig
from vnfs.sdk.encoding import PuntKind, decode_punt, encode_punt
from vnfs.sdk.flow import ExpiredRule, FlowKey, Protocol, RuleCounters
from vnfs.sdk.slowpath import SlowPath

pytestmark = pytest.mark.timeout(60)

Sample = tuple[str, frozenset[tuple[str, str]]]


def samples(families: Iterable[Metric]) -> dict[Sample, float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


def at(name: str, **labels: str) -> Sample:
    return name, frozenset({"vnf_instance_id": "nat-1", **labels}.items())


def test_the_logic_reports_mappings_sessions_blocks_exhaustion_and_drops(tmp_path: Path) -> None:
    nat = logic(tmp_path)
    nat.labels = {"vnf_instance_id": "nat-1"}
    udp_rules = outbound(nat, "10.10.0.5", 5000)
    outbound(nat, "10.10.0.5", 5001, proto=Protocol.TCP, dport=443)
    outbound(nat, "10.10.0.6", 7, proto=Protocol.ICMP, dport=0)
    # Outside-initiated packets to a pool address nobody holds, and to a non-pool one.
    pool_address = IPv4Address("203.0.113.1")
    assert nat.on_new_flow(packet("198.51.100.7", pool_address, 53, 9999, ingress=OUTSIDE)) == ()
    assert nat.on_new_flow(packet("198.51.100.7", "192.0.2.1", 53, 9999, ingress=OUTSIDE)) == ()
    # A fast path beyond the configured shards gets no mappings.
    assert nat.on_new_flow(packet("10.10.0.7", "198.51.100.7", 1, 53, fp=fastpath(9))) == ()

    values = samples(nat.metrics())
    assert values[at("vnf_nat_mappings", protocol="udp")] == 1
    assert values[at("vnf_nat_mappings", protocol="tcp")] == 1
    assert values[at("vnf_nat_mappings", protocol="icmp")] == 1
    assert values[at("vnf_nat_sessions", protocol="udp")] == 1
    assert values[at("vnf_nat_sessions", protocol="icmp")] == 1
    assert values[at("vnf_nat_fastpath_sessions", fastpath="0")] == 3
    assert values[at("vnf_nat_subscribers")] == 2
    assert values[at("vnf_nat_port_blocks_in_use", shard="0")] == 2
    assert values[at("vnf_nat_port_blocks_in_use", shard="1")] == 0
    assert values[at("vnf_nat_port_blocks", shard="0")] == nat.pool.total(0) > 0
    assert values[at("vnf_nat_exhaustion_events_total", reason="no_shard")] == 1
    assert values[at("vnf_nat_dropped_packets_total", reason="inbound_no_mapping")] == 1
    assert values[at("vnf_nat_dropped_packets_total", reason="inbound_not_pool")] == 1
    assert values[at("vnf_nat_dropped_inbound_packets_total")] == 2
    assert values[at("vnf_nat_audit_records_total")] == nat.audit.records > 0
    # Every reason is there from the start, at 0 when nothing happened.
    for reason in EXHAUSTION_REASONS:
        assert at("vnf_nat_exhaustion_events_total", reason=reason) in values
    for reason in DROP_REASONS:
        assert at("vnf_nat_dropped_packets_total", reason=reason) in values
    assert values[at("vnf_nat_dropped_packets_total", reason="hairpin_to_self")] == 0

    # The UDP session ends when both its rules aged out: its gauges go down.
    nat.on_rules_expired(fastpath(), [ExpiredRule(rule, RuleCounters()) for rule in udp_rules])
    values = samples(nat.metrics())
    assert values[at("vnf_nat_sessions", protocol="udp")] == 0
    assert values[at("vnf_nat_mappings", protocol="udp")] == 0
    assert values[at("vnf_nat_fastpath_sessions", fastpath="0")] == 2


def test_sessions_by_protocol_follow_a_fast_path_leaving(tmp_path: Path) -> None:
    nat = logic(tmp_path)
    outbound(nat, "10.10.0.5", 5000, fp=fastpath(1))
    outbound(nat, "10.10.0.5", 5001, proto=Protocol.TCP, fp=fastpath(1))
    assert nat.stats().sessions_by_protocol == {"icmp": 0, "tcp": 1, "udp": 1}
    nat.on_fastpath_left(fastpath(1))
    assert nat.stats().sessions_by_protocol == {"icmp": 0, "tcp": 0, "udp": 0}


# --- the slow path's /metrics ---------------------------------------------------------


@dataclass
class NatLab:
    slowpath: SlowPath
    logic: NatLogic
    fastpath_address: str
    slowpath_address: str
    ports: Ports
    datapath: socket.socket
    """the fast path's packet side: sends MISS, receives REINJECT"""

    def punt(self, data: bytes, replica: int = 2) -> None:
        datagram = encode_punt(PuntKind.MISS, replica, 1, data)
        self.datapath.sendto(datagram, (self.slowpath_address, self.ports.punt))

    def metrics(self) -> dict[Sample, float]:
        assert self.slowpath.metrics is not None
        url = f"http://{self.slowpath_address}:{self.slowpath.metrics.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


@pytest.fixture
def nat_lab(tmp_path: Path) -> Iterator[NatLab]:
    subnet = loopback_subnet()
    ports = Ports.pick(f"{subnet}.1")
    instance_id = "nat-" + secrets.token_hex(4)
    config = NatConfig.model_validate({"public_pool": {"cidr": "203.0.113.0/26"}})
    nat = NatLogic(
        config,
        audit=AuditLog(tmp_path / "audit.jsonl", per_mapping=False),
        labels={"vnf_instance_id": instance_id},
    )

    def unit(name: str, replica: int, address: str) -> UnitConfig:
        return unit_config(
            instance_id=instance_id,
            unit=name,
            replica=replica,
            punt_address=address,
            ports=ports,
            tmp=tmp_path,
            heartbeat=0.2,
        )

    slowpath = SlowPath(unit("slowpath", 0, f"{subnet}.1"), nat)
    fastpath_address = f"{subnet}.12"
    agent = Agent(unit("fastpath", 2, fastpath_address), DriverDouble())
    datapath = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    datapath.bind((fastpath_address, ports.reinject))
    datapath.settimeout(5)
    try:
        with InThread(slowpath, "slowpath"), InThread(agent, "agent"):
            wait_until(
                lambda: (fp := slowpath.fastpaths.get(2)) is not None and fp.ready,
                what="the fast path to be in sync",
            )
            yield NatLab(slowpath, nat, fastpath_address, f"{subnet}.1", ports, datapath)
    finally:
        datapath.close()
        nat.close()


def test_the_nat_slow_path_serves_the_nat_metrics(nat_lab: NatLab) -> None:
    instance = nat_lab.logic.labels["vnf_instance_id"]

    def at_lab(name: str, **labels: str) -> Sample:
        return name, frozenset({"vnf_instance_id": instance, **labels}.items())

    # A new outbound flow (ingress ifindex 1 is the fast path's "inside" on loopback):
    # decided, installed and re-injected.
    nat_lab.punt(ipv4(17, udp(40000, 53)))
    data, _ = nat_lab.datapath.recvfrom(65535)
    assert decode_punt(data)[0] == PuntKind.REINJECT
    # ICMP other than echo from inside is dropped by the NAT.
    nat_lab.punt(ipv4(1, icmp(3, 1, 0)))

    def scraped() -> dict[Sample, float]:
        return nat_lab.metrics()

    wait_until(
        lambda: (
            scraped().get(at_lab("vnf_nat_dropped_packets_total", reason="unsupported_icmp")) == 1
        ),
        what="the NAT's metrics on /metrics",
    )
    values = scraped()
    assert values[at_lab("vnf_nat_mappings", protocol="udp")] == 1
    assert values[at_lab("vnf_nat_sessions", protocol="udp")] == 1
    assert values[at_lab("vnf_nat_fastpath_sessions", fastpath="2")] == 1
    assert values[at_lab("vnf_nat_port_blocks_in_use", shard="2")] == 1
    assert values[at_lab("vnf_nat_exhaustion_events_total", reason="pool_exhausted")] == 0
    assert values[at_lab("vnf_nat_dropped_inbound_packets_total")] == 0
    # And the runtime's own families are still there beside them.
    assert values[at_lab("vnf_slowpath_new_flows_total")] == 1
    key = FlowKey(SRC, DST, 40000, 53, Protocol.UDP)
    assert nat_lab.logic.mappings.find_inside(2, key.src, key.sport, key.proto) is not None
