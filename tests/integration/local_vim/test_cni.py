"""The real bridge + host-local CNI plugins, invoked as the CNI spec says a runtime must."""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.local_vim.conftest import Scope
from vim_adapters.errors import VimConflict, VimFatalError, VimNotFound
from vim_adapters.interface import NetworkSpec
from vim_adapters.local import bridges, cni, netns, system

pytestmark = pytest.mark.timeout(120)

# iputils-ping is not installed everywhere; a raw ICMP echo from Python is the same probe.
_PING = r"""
import os, socket, struct, sys, time

def checksum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF

target, ident = sys.argv[1], os.getpid() & 0xFFFF
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"probe"
sock.sendto(body[:2] + struct.pack("!H", checksum(body)) + body[4:], (target, 0))
deadline = time.monotonic() + 1.0
while (left := deadline - time.monotonic()) > 0:
    sock.settimeout(left)
    try:
        packet, (source, _) = sock.recvfrom(2048)
    except socket.timeout:
        break
    icmp = packet[(packet[0] & 0x0F) * 4:]
    if source == target and icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
        sys.exit(0)
sys.exit(1)
"""


def _ping(ns: str, address: str) -> bool:
    argv = netns.exec_argv(ns, [sys.executable, "-c", _PING, address])
    return system.run(argv, timeout=5, check=False).returncode == 0


@dataclass
class Link:
    spec: NetworkSpec
    bridge: str
    ipam_dir: Path
    config: dict[str, Any]

    def attach(self, ns: str, *, ifname: str = "eth1", ip: str | None = None) -> cni.CniResult:
        netns.create(ns)
        return cni.add(self.config, container_id=ns, netns=netns.path(ns), ifname=ifname, ip=ip)

    def detach(self, ns: str, *, ifname: str = "eth1") -> None:
        path = netns.path(ns) if netns.exists(ns) else None
        cni.delete(self.config, container_id=ns, netns=path, ifname=ifname)


def _make_link(scope: Scope, tmp_path: Path, **spec_fields: Any) -> Link:
    spec = NetworkSpec(name=f"{scope.prefix}-net", cidr=scope.cidr(), **spec_fields)
    bridge = scope.bridge()
    bridges.ensure(bridge, mtu=spec.mtu, vlan_filtering=False)
    ipam_dir = tmp_path / "ipam"
    config = cni.network_config(spec, bridge=bridge, ipam_dir=ipam_dir)
    return Link(spec=spec, bridge=bridge, ipam_dir=ipam_dir, config=config)


@pytest.fixture
def link(scope: Scope, tmp_path: Path) -> Iterator[Link]:
    made = _make_link(scope, tmp_path)
    try:
        yield made
    finally:
        # Detach every namespace the test made, so no lease outlives the test either.
        for ns in netns.list_names(scope.prefix):
            made.detach(ns)
            netns.delete(ns)
        bridges.delete(made.bridge)


def _eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _host_route_device(address: str) -> str | None:
    completed = system.run(["ip", "-j", "route", "get", address], check=False)
    routes = json.loads(completed.stdout or b"[]") if completed.returncode == 0 else []
    return routes[0].get("dev") if routes else None


def test_config_is_an_isolated_bridge_by_default(tmp_path: Path) -> None:
    spec = NetworkSpec(name="data", cidr="10.231.7.0/24", mtu=1400, vlan=12)
    config = cni.network_config(spec, bridge="tvbr", ipam_dir=tmp_path)
    assert config["cniVersion"] == "1.0.0"
    assert (config["type"], config["bridge"], config["name"]) == ("bridge", "tvbr", "data")
    assert config["isGateway"] is False
    assert config["ipMasq"] is False
    assert (config["mtu"], config["vlan"]) == (1400, 12)
    ipam = config["ipam"]
    assert ipam["type"] == "host-local"
    assert ipam["subnet"] == "10.231.7.0/24"
    assert (ipam["rangeStart"], ipam["rangeEnd"]) == ("10.231.7.1", "10.231.7.254")
    assert ipam["dataDir"] == str(tmp_path)

    gated = cni.network_config(
        NetworkSpec(name="g", cidr="10.231.7.0/24", gateway="10.231.7.254"),
        bridge="tvbr",
        ipam_dir=tmp_path,
    )
    assert gated["isGateway"] is True
    assert gated["ipMasq"] is False
    assert gated["ipam"]["gateway"] == "10.231.7.254"
    assert "mtu" not in gated and "vlan" not in gated

    with pytest.raises(VimFatalError):
        cni.network_config(
            NetworkSpec(name="tiny", cidr="10.231.7.0/31"), bridge="tvbr", ipam_dir=tmp_path
        )
    with pytest.raises(VimFatalError, match="not a host address"):
        cni.network_config(
            NetworkSpec(name="g", cidr="10.231.7.0/24", gateway="10.231.7.255"),
            bridge="tvbr",
            ipam_dir=tmp_path,
        )


def test_attached_namespaces_reach_each_other_but_not_the_host(scope: Scope, link: Link) -> None:
    a, b = scope.ns("a"), scope.ns("b")
    result_a = link.attach(a)
    result_b = link.attach(b)
    subnet = ipaddress.ip_network(link.spec.cidr)
    for result, ns in ((result_a, a), (result_b, b)):
        assert result.interface == "eth1"
        assert result.mac
        assert len(result.ips) == 1
        assert ipaddress.ip_interface(result.ips[0]).network == subnet
        assert result.ips[0] in netns.addresses(ns)["eth1"]
    # Isolated by default: every host address is assignable, .1 included.
    assert result_a.ips[0] == f"{scope.address(1)}/24"
    assert set(bridges.ports(link.bridge)) == {result_a.host_interface, result_b.host_interface}

    ip_a, ip_b = (r.ips[0].split("/")[0] for r in (result_a, result_b))
    assert _ping(a, ip_b)
    assert _ping(b, ip_a)
    assert bridges.addresses(link.bridge) == []
    assert _host_route_device(ip_a) != link.bridge

    cni.check(link.config, container_id=a, netns=netns.path(a), ifname="eth1", prev_result=result_a)


def test_fixed_address_and_address_in_use(scope: Scope, link: Link) -> None:
    a, b = scope.ns("a"), scope.ns("b")
    wanted = scope.address(77)
    result = link.attach(a, ip=wanted)
    assert result.ips == [f"{wanted}/24"]

    with pytest.raises(VimFatalError) as caught:
        link.attach(b, ip=f"{wanted}/24")
    assert wanted in caught.value.detail
    assert "not available" in caught.value.detail  # the plugin's own words
    # The failed ADD left nothing behind: no interface, no second lease, one bridge port.
    assert "eth1" not in netns.addresses(b)
    assert cni.leases(link.ipam_dir) == {link.spec.name: [wanted]}
    assert bridges.ports(link.bridge) == [result.host_interface]
    assert _ping(a, wanted)


def test_second_add_of_the_same_interface_is_a_conflict(scope: Scope, link: Link) -> None:
    a = scope.ns("a")
    first = link.attach(a)
    with pytest.raises(VimConflict):
        link.attach(a)
    # The refusal must not have torn down the attachment that holds the name.
    assert first.ips[0] in netns.addresses(a)["eth1"]
    assert cni.leases(link.ipam_dir) == {link.spec.name: [first.ips[0].split("/")[0]]}


def test_del_releases_the_lease_and_removes_the_veth(scope: Scope, link: Link) -> None:
    a = scope.ns("a")
    result = link.attach(a)
    assert cni.leases(link.ipam_dir) == {link.spec.name: [result.ips[0].split("/")[0]]}

    link.detach(a)
    link.detach(a)  # DEL is idempotent
    assert cni.leases(link.ipam_dir) == {}
    assert "eth1" not in netns.addresses(a)
    assert bridges.ports(link.bridge) == []


def test_del_after_the_namespace_is_gone(scope: Scope, link: Link) -> None:
    a, b = scope.ns("a"), scope.ns("b")
    link.attach(a)
    link.attach(b)
    stale_path = netns.path(a)
    netns.delete(a)
    netns.delete(b)
    # The runtime may still name the vanished namespace, or pass none at all.
    cni.delete(link.config, container_id=a, netns=stale_path, ifname="eth1")
    cni.delete(link.config, container_id=b, netns=None, ifname="eth1")
    assert cni.leases(link.ipam_dir) == {}
    # The kernel dismantles a deleted namespace, and so its veths, in the background.
    assert _eventually(lambda: bridges.ports(link.bridge) == [])


def test_invalid_config_is_fatal_with_the_plugin_message(scope: Scope, link: Link) -> None:
    a = scope.ns("a")
    broken = {**link.config, "ipam": {**link.config["ipam"], "subnet": "10.231.0.0/33"}}
    netns.create(a)
    with pytest.raises(VimFatalError) as caught:
        cni.add(broken, container_id=a, netns=netns.path(a), ifname="eth1")
    assert "invalid CIDR address: 10.231.0.0/33" in caught.value.detail
    # The bridge plugin had already made the veth when IPAM failed; the cleanup DEL took it.
    assert "eth1" not in netns.addresses(a)
    assert bridges.ports(link.bridge) == []
    assert cni.leases(link.ipam_dir) == {}


def test_missing_plugin_or_namespace(scope: Scope, link: Link, tmp_path: Path) -> None:
    a = scope.ns("a")
    netns.create(a)
    with pytest.raises(VimFatalError, match="containernetworking-plugins"):
        cni.add(link.config, container_id=a, netns=netns.path(a), ifname="e", cni_path=tmp_path)
    with pytest.raises(VimNotFound):
        cni.add(link.config, container_id=a, netns=tmp_path / "no-such-netns", ifname="eth1")


def test_gateway_network_puts_the_gateway_on_the_bridge(scope: Scope, tmp_path: Path) -> None:
    forwarding = [
        Path("/proc/sys/net/ipv4/ip_forward"),
        Path("/proc/sys/net/ipv6/conf/all/forwarding"),
    ]
    before = [p.read_text() for p in forwarding]
    gated = _make_link(scope, tmp_path, gateway=scope.address(1))
    a = scope.ns("gw")
    try:
        result = gated.attach(a)
        # The plugin switches host forwarding on for gateways; routing is not what we asked.
        assert [p.read_text() for p in forwarding] == before
        assert bridges.addresses(gated.bridge) == [f"{scope.address(1)}/24"]
        assert result.ips != [f"{scope.address(1)}/24"]
        assert _ping(a, scope.address(1))
    finally:
        gated.detach(a)
        netns.delete(a)
        bridges.delete(gated.bridge)
    assert cni.leases(gated.ipam_dir) == {}
    assert scope.leftovers() == []


def test_reserved_addresses_are_left_out_of_the_ranges(tmp_path: Path) -> None:
    spec = NetworkSpec(name="data", cidr="10.231.7.0/24")

    def ipam(*reserved: str) -> dict[str, Any]:
        config = cni.network_config(spec, bridge="tvbr", ipam_dir=tmp_path, reserved=reserved)
        found: dict[str, Any] = config["ipam"]
        return found

    # Reserved addresses outside the host range (or of the other family) change nothing.
    plain = ipam("10.231.8.1", "10.231.7.0", "2001:db8::1")
    assert (plain["rangeStart"], plain["rangeEnd"]) == ("10.231.7.1", "10.231.7.254")
    split = ipam("10.231.7.10", "10.231.7.1", "10.231.7.11")
    assert "subnet" not in split and split["dataDir"] == str(tmp_path)
    (range_set,) = split["ranges"]
    assert [(r["rangeStart"], r["rangeEnd"]) for r in range_set] == [
        ("10.231.7.2", "10.231.7.9"),
        ("10.231.7.12", "10.231.7.254"),
    ]
    assert {r["subnet"] for r in range_set} == {"10.231.7.0/24"}
    tiny = NetworkSpec(name="tiny", cidr="10.231.7.0/30")
    with pytest.raises(VimFatalError, match="every host address"):
        cni.network_config(
            tiny, bridge="tvbr", ipam_dir=tmp_path, reserved=["10.231.7.1", "10.231.7.2"]
        )
