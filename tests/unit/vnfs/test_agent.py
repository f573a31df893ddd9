"""The fast-path agent, run for real on loopback with a datapath test double.

The tests play the slow path with plain sockets (announcements, registrations)
and a real rule-push client.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

import pytest

from tests.unit.vnfs.runtime_support import (
    DriverDouble,
    InThread,
    Ports,
    address_of,
    loopback_subnet,
    unit_config,
    wait_until,
)
from vnfs.sdk import discovery
from vnfs.sdk.agent import Agent, make_driver, serve
from vnfs.sdk.config import ConfigError, UnitConfig
from vnfs.sdk.driver import GlobalCounters, PuntTarget
from vnfs.sdk.encoding import encode_rules, iter_rules
from vnfs.sdk.flow import FlowKey, FlowRule, Forward, Protocol, RuleCounters
from vnfs.sdk.rulepush import RulePushClient

pytestmark = pytest.mark.timeout(60)
BROADCAST = "127.255.255.255"


class SlowPathSockets:
    """The slow path's control socket, driven by hand."""

    def __init__(self, address: str, ports: Ports, instance_id: str) -> None:
        self.address = address
        self.ports = ports
        self.instance_id = instance_id
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.sock.bind((address, ports.control))
        self.sock.settimeout(5)

    def announce(self, to: str = BROADCAST, instance_id: str | None = None) -> None:
        message = discovery.Announce(
            vnf_instance_id=instance_id or self.instance_id,
            slowpath_id="sp1",
            punt_address=IPv4Address(self.address),
            punt_port=self.ports.punt,
            control_port=self.ports.control,
        )
        self.sock.sendto(discovery.encode(message), (to, self.ports.discovery))

    def registration(self) -> tuple[discovery.Register, tuple[str, int]]:
        data, source = self.sock.recvfrom(65535)
        message = discovery.decode(data)
        assert isinstance(message, discovery.Register)
        return message, source

    def close(self) -> None:
        self.sock.close()


class Unit:
    def __init__(self, config: UnitConfig, driver: DriverDouble, agent: Agent) -> None:
        self.config, self.driver, self.agent = config, driver, agent


@pytest.fixture
def subnet() -> str:
    return loopback_subnet()


@pytest.fixture
def ports(subnet: str) -> Ports:
    return Ports.pick(f"{subnet}.1")


@pytest.fixture
def instance_id() -> str:
    return "vnf-" + secrets.token_hex(4)


@pytest.fixture
def slowpath(subnet: str, ports: Ports, instance_id: str) -> Iterator[SlowPathSockets]:
    sockets = SlowPathSockets(f"{subnet}.1", ports, instance_id)
    yield sockets
    sockets.close()


def make_unit(tmp: Path, subnet: str, ports: Ports, instance_id: str, **sdk: Any) -> Unit:
    config = unit_config(
        instance_id=instance_id,
        unit="fastpath",
        replica=2,
        punt_address=f"{subnet}.12",
        ports=ports,
        tmp=tmp,
        **sdk,
    )
    driver = DriverDouble()
    return Unit(config, driver, Agent(config, driver))


@pytest.fixture
def unit(tmp_path: Path, subnet: str, ports: Ports, instance_id: str) -> Iterator[Unit]:
    made = make_unit(tmp_path, subnet, ports, instance_id)
    with InThread(made.agent, "agent"):
        wait_until(lambda: made.agent.metrics is not None, what="the agent to start")
        yield made
    assert made.driver.closed, "the agent must close its datapath when it stops"


def test_announce_leads_to_registration_and_an_armed_punt_path(
    unit: Unit, slowpath: SlowPathSockets, subnet: str, ports: Ports
) -> None:
    # Before any slow path is known, the datapath runs without a punt target.
    assert unit.driver.starts[0][1] is None
    assert [i.role for i in unit.driver.starts[0][0]] == ["inside", "outside"]
    slowpath.announce(instance_id="someone-else")
    slowpath.announce()
    registration, source = slowpath.registration()
    assert source == (f"{subnet}.12", ports.discovery)
    assert registration.vnf_instance_id == unit.config.vnf_instance_id
    assert (registration.instance, registration.epoch) == (2, unit.agent.epoch)
    assert registration.punt_address == IPv4Address(f"{subnet}.12")
    assert (registration.rulepush_port, registration.reinject_port) == (
        ports.rulepush,
        ports.reinject,
    )
    assert sorted(i.role for i in registration.interfaces) == ["inside", "mgmt", "outside", "punt"]
    wait_until(lambda: unit.driver.starts[-1][1] is not None, what="the punt path")
    assert unit.driver.starts[-1][1] == PuntTarget(
        interface="lo",
        local_address=f"{subnet}.12",
        local_port=ports.reinject,
        slowpath_address=f"{subnet}.1",
        slowpath_port=ports.punt,
        slowpath_mac="00:00:00:00:00:00",  # loopback resolves no neighbours
        reinject_port=ports.reinject,
        instance=2,
    )
    # Heartbeats follow, with the same epoch; announcing again changes nothing.
    slowpath.announce()
    again, _ = slowpath.registration()
    assert again.epoch == registration.epoch
    assert len([start for start in unit.driver.starts if start[1] is not None]) == 1


def test_an_explicit_slow_path_address_needs_no_broadcast(
    tmp_path: Path, subnet: str, ports: Ports, instance_id: str, slowpath: SlowPathSockets
) -> None:
    made = make_unit(
        tmp_path, subnet, ports, instance_id, slowpath_address=IPv4Address(f"{subnet}.1")
    )
    with InThread(made.agent, "agent"):
        registration, source = slowpath.registration()  # nobody announced anything
        assert registration.instance == 2
        assert made.driver.starts[-1][1] is None
        slowpath.announce(to=source[0])  # the unicast answer to a REGISTER
        wait_until(lambda: made.driver.starts[-1][1] is not None, what="the punt path")
        assert made.agent._broadcast is None


def test_rule_pushes_reach_the_driver_and_expiry_is_reported(
    unit: Unit, subnet: str, ports: Ports
) -> None:
    expired: list[tuple[FlowRule, RuleCounters]] = []
    key = FlowKey(IPv4Address("10.0.0.1"), IPv4Address("198.51.100.1"), 1000, 53, Protocol.UDP)
    short = FlowRule(key, (Forward(),), idle_timeout=1)
    long = FlowRule(key.reversed(), (Forward(),), idle_timeout=300)

    async def scenario() -> None:
        client = await RulePushClient.connect(
            f"{subnet}.12",
            ports.rulepush,
            on_expired=lambda k, a, n: expired.extend(iter_rules(k, a, {1: "lo"})),
        )
        try:
            assert await client.install(*encode_rules([short, long])) == 2
            assert unit.driver.keys() == {key, key.reversed()}
            unit.driver.hit(key, packets=5, size=100)
            for _ in range(100):
                if expired:
                    break
                await asyncio.sleep(0.05)
            stats = await client.stats()
            assert stats.table_entries == 1
        finally:
            await client.close()

    asyncio.run(scenario())
    assert [rule for rule, _ in expired] == [short]
    assert (expired[0][1].packets, expired[0][1].bytes) == (5, 500)
    assert unit.driver.keys() == {key.reversed()}


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_metrics_and_health(unit: Unit, subnet: str) -> None:
    assert unit.agent.metrics is not None
    base = f"http://{subnet}.12:{unit.agent.metrics.port}"
    unit.driver.totals = GlobalCounters(
        rx_packets=1000, rx_bytes=64_000, misses=10, reinject_errors=2
    )
    unit.driver.details = {"ttl_exceeded": 3, "punt_gso": 1}
    labels = f'replica="2",vnf_instance_id="{unit.config.vnf_instance_id}"'

    def scraped() -> str:
        return _get(base + "/metrics")[1]

    wait_until(lambda: f"vnf_fastpath_rx_packets_total{{{labels}}} 1000.0" in scraped())
    text = scraped()
    assert f"vnf_fastpath_misses_total{{{labels}}} 10.0" in text
    assert f"vnf_fastpath_reinject_errors_total{{{labels}}} 2.0" in text
    # The datapath's other counters, one labelled family (GlobalCounters' are not repeated).
    details = [line for line in text.splitlines() if line.startswith("vnf_fastpath_datapath_")]
    assert sorted(details) == [
        f'vnf_fastpath_datapath_counter_total{{counter="punt_gso",{labels}}} 1.0',
        f'vnf_fastpath_datapath_counter_total{{counter="ttl_exceeded",{labels}}} 3.0',
    ]
    assert f"vnf_fastpath_active_flows{{{labels}}} 0.0" in text
    assert f"vnf_fastpath_table_capacity{{{labels}}} 4096.0" in text
    assert f"vnf_fastpath_slowpath_connected{{{labels}}} 0.0" in text
    unit.driver.totals = GlobalCounters(rx_packets=5000, rx_bytes=320_000, misses=10)
    wait_until(
        lambda: f"vnf_fastpath_rx_packets_per_second{{{labels}}} 0.0" not in scraped(),
        what="a packet rate",
    )
    status, body = _get(base + "/healthz")
    assert status == 200
    health = json.loads(body)
    assert health["healthy"] is True and health["epoch"] == unit.agent.epoch
    assert _get(base + "/nothing")[0] == 404


def test_sigterm_stops_the_agent_and_closes_the_datapath(
    tmp_path: Path, subnet: str, ports: Ports, instance_id: str
) -> None:
    made = make_unit(tmp_path, subnet, ports, instance_id)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.5, os.kill, os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(serve(made.agent), 10)

    asyncio.run(scenario())
    assert made.driver.closed
    # Its ports are free again.
    with socket.socket() as sock:
        sock.bind((f"{subnet}.12", ports.rulepush))
    assert threading.active_count() >= 1


def test_a_punt_link_without_an_address_is_a_config_error(
    tmp_path: Path, subnet: str, ports: Ports, instance_id: str
) -> None:
    config = unit_config(
        instance_id=instance_id,
        unit="fastpath",
        replica=0,
        punt_address=f"{subnet}.12",
        ports=ports,
        tmp=tmp_path,
    )
    points = dict(config.connection_points)
    points["punt"] = points["punt"].model_copy(update={"address": None})
    broken = config.model_copy(update={"connection_points": points})
    with pytest.raises(ConfigError, match="'punt' \\(lo\\) has no IPv4 address"):
        Agent(broken, DriverDouble())


def test_the_agent_process_exits_2_on_a_config_error(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "vnfs.sdk.agent"],
        env={"PATH": os.environ.get("PATH", "/usr/bin"), "VNF_UNIT": "fastpath"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        "configuration error: environment variable VNF_INSTANCE_ID is not set"
    )


def test_interface_facts(unit: Unit) -> None:
    assert address_of(unit.config) == IPv4Address(unit.agent.punt_address.ip)
    lo = next(i for i in unit.agent.interfaces if i.role == "punt")
    assert (lo.name, lo.ifindex, lo.mac) == ("lo", socket.if_nametoindex("lo"), "00:00:00:00:00:00")


def test_the_datapath_comes_from_the_config(
    tmp_path: Path, subnet: str, ports: Ports, instance_id: str
) -> None:
    def config(datapath: str) -> UnitConfig:
        return unit_config(
            instance_id=instance_id,
            unit="fastpath",
            replica=0,
            punt_address=f"{subnet}.12",
            ports=ports,
            tmp=tmp_path,
            datapath=datapath,
        )

    # VPP cannot run here; building its driver does not connect to it yet.
    assert type(make_driver(config("vpp"), {})).__name__ == "VppDriver"
    with pytest.raises(ConfigError, match="unknown datapath 'dpdk'"):
        make_driver(config("dpdk"))


def test_a_punt_link_without_broadcast_needs_an_explicit_slow_path(
    tmp_path: Path, subnet: str, ports: Ports, instance_id: str
) -> None:
    def config(**sdk: Any) -> UnitConfig:
        base = unit_config(
            instance_id=instance_id,
            unit="fastpath",
            replica=0,
            punt_address=f"{subnet}.12",
            ports=ports,
            tmp=tmp_path,
            **sdk,
        )
        points = dict(base.connection_points)
        points["punt"] = points["punt"].model_copy(
            update={"address": IPv4Interface(f"{subnet}.12/31")}
        )
        return base.model_copy(update={"connection_points": points})

    with pytest.raises(ConfigError, match="has no broadcast address"):
        Agent(config(), DriverDouble())
    Agent(config(slowpath_address=IPv4Address(f"{subnet}.13")), DriverDouble())


def test_vrfs_key_the_data_interfaces_and_name_only_data_connection_points(
    tmp_path: Path, subnet: str, ports: Ports, instance_id: str
) -> None:
    def config(vrfs: dict[str, int]) -> UnitConfig:
        return unit_config(
            instance_id=instance_id,
            unit="fastpath",
            replica=0,
            punt_address=f"{subnet}.12",
            ports=ports,
            tmp=tmp_path,
            vrfs=vrfs,
        )

    agent = Agent(config({"inside": 7}), DriverDouble())
    assert {i.role: i.vrf for i in agent.data_interfaces} == {"inside": 7, "outside": 0}
    assert {i.role: i.vrf for i in agent.interfaces} == {  # what REGISTER carries
        "inside": 7, "mgmt": 0, "outside": 0, "punt": 0,
    }  # fmt: skip
    with pytest.raises(ConfigError, match="vrfs names punt, not a data connection point"):
        Agent(config({"punt": 3}), DriverDouble())
