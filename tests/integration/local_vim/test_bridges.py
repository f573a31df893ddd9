"""Linux bridges for virtual links: idempotent ensure/delete, names, ports, gateway address."""

from __future__ import annotations

import json

import pytest

from tests.integration.local_vim.conftest import Scope
from vim_adapters.errors import VimConflict, VimFatalError, VimNotFound
from vim_adapters.local import bridges, netns, system

pytestmark = pytest.mark.timeout(60)


def _mtu(name: str) -> int:
    link = json.loads(system.run(["ip", "-j", "link", "show", "dev", name]).stdout)[0]
    return int(link["mtu"])


def test_bridge_name_is_stable_short_and_distinct() -> None:
    name = bridges.bridge_name("a-network-name-that-is-much-longer-than-fifteen-chars", "tvx")
    assert name == bridges.bridge_name(
        "a-network-name-that-is-much-longer-than-fifteen-chars", "tvx"
    )
    assert len(name) == bridges.IFNAMSIZ
    assert name.startswith("tvx")
    assert bridges.bridge_name("net-a", "tvx") != bridges.bridge_name("net-b", "tvx")
    assert len(bridges.bridge_name("n", "tvabcd")) <= 15
    with pytest.raises(ValueError):
        bridges.bridge_name("n", "a-prefix-too-long")
    with pytest.raises(ValueError):
        bridges.bridge_name("n", "Bad")


def test_ensure_list_delete_are_idempotent(scope: Scope) -> None:
    one, two = scope.bridge("one"), scope.bridge("two")
    try:
        assert not bridges.exists(one)
        bridges.ensure(one, mtu=None, vlan_filtering=False)
        bridges.ensure(one, mtu=None, vlan_filtering=False)
        bridges.ensure(two, mtu=1400, vlan_filtering=False)
        assert bridges.exists(one)
        assert bridges.list_names(scope.prefix) == sorted([one, two])
        assert _mtu(two) == 1400
        bridges.ensure(two, mtu=1450, vlan_filtering=False)
        assert _mtu(two) == 1450
        assert bridges.ports(one) == []
        # An isolated link: the host has no address on it, not even IPv6 link-local.
        assert bridges.addresses(one) == []

        bridges.delete(one)
        bridges.delete(one)
        assert not bridges.exists(one)
        assert bridges.list_names(scope.prefix) == [two]
    finally:
        bridges.delete(one)
        bridges.delete(two)
    assert scope.leftovers() == []


def test_names_over_fifteen_chars_are_refused(scope: Scope) -> None:
    with pytest.raises(ValueError):
        bridges.ensure(scope.prefix + "x" * 10, mtu=None, vlan_filtering=False)
    with pytest.raises(ValueError):
        bridges.delete("Not-Valid")
    assert scope.leftovers() == []


def test_gateway_address_and_ports(scope: Scope) -> None:
    bridge, ns = scope.bridge(), scope.ns("p")
    host_end, inner_end = f"{scope.prefix}h", f"{scope.prefix}i"
    try:
        bridges.ensure(bridge, mtu=None, vlan_filtering=False)
        gateway = f"{scope.address(1)}/24"
        bridges.set_address(bridge, gateway)
        bridges.set_address(bridge, gateway)
        assert bridges.addresses(bridge) == [gateway]

        netns.create(ns)
        system.run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", inner_end])
        system.run(["ip", "link", "set", "dev", inner_end, "netns", ns])
        system.run(["ip", "link", "set", "dev", host_end, "master", bridge])
        assert bridges.ports(bridge) == [host_end]
    finally:
        netns.delete(ns)  # takes the veth pair with it
        bridges.delete(bridge)
    assert scope.leftovers() == []


def test_refuses_to_touch_an_interface_that_is_not_a_bridge(scope: Scope) -> None:
    left, right = f"{scope.prefix}l", f"{scope.prefix}r"
    try:
        system.run(["ip", "link", "add", left, "type", "veth", "peer", "name", right])
        assert not bridges.exists(left)
        with pytest.raises(VimConflict):
            bridges.ensure(left, mtu=None, vlan_filtering=False)
        with pytest.raises(VimConflict):
            bridges.delete(left)
        assert left in scope.leftovers()
    finally:
        system.run(["ip", "link", "delete", "dev", left], check=False)
    assert scope.leftovers() == []


def test_missing_bridge(scope: Scope) -> None:
    with pytest.raises(VimNotFound):
        bridges.ports(scope.bridge())
    with pytest.raises(VimNotFound):
        bridges.set_address(scope.bridge(), f"{scope.address(1)}/24")
    with pytest.raises(VimFatalError):
        bridges.set_address(scope.bridge(), "not-an-address")
    assert scope.leftovers() == []


def test_vlan_filtering_is_set_or_refused_clearly(scope: Scope) -> None:
    bridge = scope.bridge()
    try:
        try:
            bridges.ensure(bridge, mtu=None, vlan_filtering=True)
        except VimFatalError as exc:
            # Some kernels lack CONFIG_BRIDGE_VLAN_FILTERING; the error must say what failed.
            assert "vlan_filtering" in exc.detail
        else:
            link = json.loads(system.run(["ip", "-j", "-d", "link", "show", "dev", bridge]).stdout)[
                0
            ]
            assert link["linkinfo"]["info_data"]["vlan_filtering"] == 1
    finally:
        bridges.delete(bridge)
    assert scope.leftovers() == []
