"""OPERATE and CHANGE_EXT_CONN by the executor on a real local VIM: needs root.

What is checked is what the system shows, not what the VIM's records say: stopped replicas
have no process left in their namespace, started ones serve again, and a moved connection
point's interface is a port of the new network's bridge and reaches a peer over it.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from typing import Any

import pytest

from tests.integration.vnfm.nat_executor import (
    LCM_DEFS,
    SERVER_PORT,
    Instance,
    check_changes,
    check_grantable,
    check_info,
    instantiate_params,
    server_pid,
    unit_of,
)
from tests.support.etsi_schema import validate
from tests.support.local_vim import next_cidr
from vim_adapters.interface import Network, NetworkSpec, Ownership, ReplicaState
from vim_adapters.local import health, processes
from vim_adapters.local.adapter import LocalVim
from vnfm import planner
from vnfm.executor import ExecutionError, Executor

UNITS = ("nat_fastpath", "nat_slowpath")
STOP = {"changeStateTo": "STOPPED", "stopType": "GRACEFUL", "gracefulStopTimeout": 5}
# What the NS (the NFVO) would own on the VIM: the external networks.
NS_OWNER = Ownership(vnf_instance_id="hA-ns")


def replica_netns(vim: LocalVim, unit: str, index: int = 0) -> str:
    record = vim.store.load().units[unit].replica(index)
    assert record is not None
    return record.netns


def address_on(vim: LocalVim, unit: str, ifname: str) -> str:
    found = vim.get_unit(unit)
    assert found is not None
    [replica] = found.replicas
    return next(a.ip for a in replica.addresses if a.connection_point == ifname)


def _ip_json(*argv: str) -> list[dict[str, Any]]:
    done = subprocess.run(["ip", "-j", *argv], check=True, capture_output=True, timeout=10)
    result: list[dict[str, Any]] = json.loads(done.stdout or b"[]")
    return result


def bridge_of(netns: str, ifname: str) -> str | None:
    """The host bridge the veth behind `ifname` of the namespace is a port of."""
    [inside] = _ip_json("-n", netns, "link", "show", "dev", ifname)
    peer = inside["link_index"]
    host = next(link for link in _ip_json("link", "show") if link["ifindex"] == peer)
    master = host.get("master")
    return str(master) if master is not None else None


def pings(netns: str, address: str) -> bool:
    done = subprocess.run(
        ["ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "2", address],
        capture_output=True,
        timeout=15,
    )
    return done.returncode == 0


def ns_network(vim: LocalVim, name: str) -> Network:
    return vim.ensure_network(NetworkSpec(name=name, cidr=next_cidr()), NS_OWNER)


# -- OPERATE --------------------------------------------------------------------------------------


def test_operate_stops_then_starts_every_replica(vim: LocalVim, executor: Executor) -> None:
    nat = Instance()
    nat.apply(executor.run(nat.ctx("INSTANTIATE", instantiate_params())))
    units = [unit_of(nat, vdu) for vdu in UNITS]
    namespaces = {unit: replica_netns(vim, unit) for unit in units}
    addresses = {unit: vim.get_unit(unit).replicas[0].addresses for unit in units}  # type: ignore[union-attr]
    old_pids = {unit: server_pid(vim, unit, 0) for unit in units}
    assert all(processes.processes_in_netns(ns) for ns in namespaces.values())

    stop = nat.ctx("OPERATE", STOP)
    grant = executor.grant_request(stop)
    check_grantable(grant)
    assert grant["operation"] == "OPERATE" and grant["flavourId"] == "default"
    assert "addResources" not in grant and "removeResources" not in grant
    assert {r["resource"]["resourceId"] for r in grant["updateResources"]} == {
        f"{unit}-0" for unit in units
    }

    stopped = executor.run(stop)
    assert stopped.vnf_state == "STOPPED" and stopped.instantiation_state == "INSTANTIATED"
    info = check_info(nat, stopped.instantiated_info)
    assert info["vnfState"] == "STOPPED"
    assert {v["vnfcState"] for v in info["vnfcInfo"]} == {"STOPPED"}
    vnfcs, links = check_changes(stopped.resource_changes)
    assert vnfcs == {f"{unit}-0": "MODIFIED" for unit in units} and links == {}
    for unit, ns in namespaces.items():
        # The processes are really gone; the replica, its namespace and addresses stay.
        assert processes.processes_in_netns(ns) == [], f"{unit} still runs something"
        assert processes.read_stat(old_pids[unit]) is None
        found = vim.get_unit(unit)
        assert found is not None
        assert [r.state for r in found.replicas] == [ReplicaState.STOPPED]
        assert found.replicas[0].addresses == addresses[unit]
    # Repeating the stop (a retry) changes nothing.
    assert executor.run(stop).instantiated_info == stopped.instantiated_info
    nat.apply(stopped)

    start = nat.ctx("OPERATE", {"changeStateTo": "STARTED"})
    check_grantable(executor.grant_request(start))
    started = executor.run(start)
    assert started.vnf_state == "STARTED"
    info = check_info(nat, started.instantiated_info)
    assert info["vnfState"] == "STARTED"
    assert {v["vnfcState"] for v in info["vnfcInfo"]} == {"STARTED"}
    for unit, ns in namespaces.items():
        found = vim.get_unit(unit)
        assert found is not None and found.ready
        assert found.replicas[0].addresses == addresses[unit]
        assert processes.processes_in_netns(ns), f"{unit} runs nothing"
        assert server_pid(vim, unit, 0) != old_pids[unit]
        # Really running again: its HTTP server accepts connections in its namespace.
        ip = found.replicas[0].addresses[0].ip
        assert health.tcp_ready(ns, ip, SERVER_PORT, timeout=5.0)
    nat.apply(started)

    # A FORCEFUL stop (stopType absent counts as FORCEFUL) stops them too.
    forced = executor.run(nat.ctx("OPERATE", {"changeStateTo": "STOPPED"}))
    assert forced.vnf_state == "STOPPED"
    assert all(processes.processes_in_netns(ns) == [] for ns in namespaces.values())
    nat.apply(forced)

    executor.run(nat.ctx("TERMINATE", {"terminationType": "FORCEFUL"}))
    assert vim.list_owned(nat.id) == []


def test_operate_refuses_bad_requests(executor: Executor) -> None:
    nat = Instance()
    with pytest.raises(ExecutionError) as not_instantiated:
        executor.run(nat.ctx("OPERATE", {"changeStateTo": "STARTED"}))
    assert not_instantiated.value.status == 409
    nat.flavour_id = "default"
    with pytest.raises(ExecutionError) as invalid:
        executor.run(nat.ctx("OPERATE", {"changeStateTo": "STARTED", "stopType": "FORCEFUL"}))
    assert invalid.value.status == 422 and "stopType" in invalid.value.detail


# -- CHANGE_EXT_CONN ------------------------------------------------------------------------------


def test_change_ext_conn_moves_cps_to_other_networks(vim: LocalVim, executor: Executor) -> None:
    mgmt_a, mgmt_b, outside = (ns_network(vim, n) for n in ("ha-mgmt-a", "ha-mgmt-b", "ha-out"))
    nat = Instance()
    first = {"id": "mgmt-a", "resourceId": mgmt_a.name, "extCps": [{"cpdId": "nat_mgmt"}]}
    nat.apply(executor.run(nat.ctx("INSTANTIATE", instantiate_params(extVirtualLinks=[first]))))
    fastpath, slowpath = (unit_of(nat, vdu) for vdu in UNITS)
    inside_ip = address_on(vim, fastpath, "inside")
    assert ipaddress.ip_address(address_on(vim, fastpath, "mgmt")) in _cidr(mgmt_a)

    request = {
        "extVirtualLinks": [
            {"id": "mgmt-b", "resourceId": mgmt_b.name, "extCps": [{"cpdId": "nat_mgmt"}]},
            {"id": "outside", "resourceId": outside.name, "extCps": [{"cpdId": "nat_outside"}]},
        ]
    }
    ctx = nat.ctx("CHANGE_EXT_CONN", request)
    grant = executor.grant_request(ctx)
    check_grantable(grant)
    assert grant["operation"] == "CHANGE_EXT_CONN"
    assert {(r["type"], r["resourceTemplateId"]) for r in grant["addResources"]} == {
        ("LINKPORT", "nat_mgmt"),
        ("LINKPORT", "nat_outside"),
    }
    assert {r["resource"]["resourceId"] for r in grant["updateResources"]} == {
        f"{fastpath}-0",
        f"{slowpath}-0",
    }

    result = executor.run(ctx)
    info = check_info(nat, result.instantiated_info)
    links = {link["id"]: link for link in info["extVirtualLinkInfo"]}
    # mgmt-a lost its only CP, so it is gone (SOL003 ExtVirtualLinkInfo, note).
    assert set(links) == {"mgmt-b", "outside"}
    assert links["mgmt-b"]["resourceHandle"]["resourceId"] == mgmt_b.name
    assert links["outside"]["currentVnfExtCpData"] == [{"cpdId": "nat_outside"}]
    assert result.changed_ext_connectivity is not None
    for link in result.changed_ext_connectivity:
        validate(LCM_DEFS, "ExtVirtualLinkInfo", link)
    assert {link["id"] for link in result.changed_ext_connectivity} == {"mgmt-b", "outside"}
    vnfcs, vls = check_changes(result.resource_changes)
    assert vnfcs == {f"{fastpath}-0": "MODIFIED", f"{slowpath}-0": "MODIFIED"}
    # The outside link is external now: its internal network went.
    internal_outside = planner.network_name(nat.id, "nat_outside_vl")
    assert vls == {internal_outside: "REMOVED"}
    assert vim.get_network(internal_outside) is None

    # Really attached: the interfaces are ports of the new bridges, with their addresses,
    # and the fast path reaches the slow path over the new management network.
    fp_ns, sp_ns = replica_netns(vim, fastpath), replica_netns(vim, slowpath)
    for ns, unit in ((fp_ns, fastpath), (sp_ns, slowpath)):
        assert bridge_of(ns, "mgmt") == mgmt_b.vim_id
        assert ipaddress.ip_address(address_on(vim, unit, "mgmt")) in _cidr(mgmt_b)
    assert bridge_of(fp_ns, "outside") == outside.vim_id
    assert ipaddress.ip_address(address_on(vim, fastpath, "outside")) in _cidr(outside)
    assert pings(fp_ns, address_on(vim, slowpath, "mgmt"))
    # A CP that did not move kept its address.
    assert address_on(vim, fastpath, "inside") == inside_ip
    for unit in (fastpath, slowpath):
        found = vim.get_unit(unit)
        assert found is not None and found.ready

    # A retry (same occurrence) converges without replacing anything again.
    pids = {unit: server_pid(vim, unit, 0) for unit in (fastpath, slowpath)}
    again = executor.run(ctx)
    assert again.instantiated_info == result.instantiated_info
    assert {unit: server_pid(vim, unit, 0) for unit in pids} == pids
    nat.apply(result)

    # A stopped VNF can be rewired too, and stays stopped: mgmt goes back to mgmt-a.
    nat.apply(executor.run(nat.ctx("OPERATE", {"changeStateTo": "STOPPED"})))
    back = {"extVirtualLinks": [first]}
    rewired = executor.run(nat.ctx("CHANGE_EXT_CONN", back))
    assert rewired.vnf_state == "STOPPED"
    info = check_info(nat, rewired.instantiated_info)
    assert info["vnfState"] == "STOPPED" and {v["vnfcState"] for v in info["vnfcInfo"]} == {
        "STOPPED"
    }
    assert {link["id"] for link in info["extVirtualLinkInfo"]} == {"mgmt-a", "outside"}
    for unit in (fastpath, slowpath):
        ns = replica_netns(vim, unit)
        assert processes.processes_in_netns(ns) == []
        assert bridge_of(ns, "mgmt") == mgmt_a.vim_id
    nat.apply(rewired)

    # An external CP the flavour does not have is refused, naming it.
    unknown = {"id": "x", "resourceId": mgmt_b.name, "extCps": [{"cpdId": "nat_nope"}]}
    with pytest.raises(ExecutionError) as refused:
        executor.run(nat.ctx("CHANGE_EXT_CONN", {"extVirtualLinks": [unknown]}))
    assert refused.value.status == 422 and "nat_nope" in refused.value.detail

    executor.run(nat.ctx("TERMINATE", {"terminationType": "FORCEFUL"}))
    assert vim.list_owned(nat.id) == []
    for network in (mgmt_a, mgmt_b, outside):
        assert vim.get_network(network.name) is not None  # the NS's, not the VNF's
        vim.delete_network(network.name)


def _cidr(network: Network) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(network.spec.cidr)
