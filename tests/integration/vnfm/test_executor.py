"""The VNF LCM executor on a real local VIM (namespaces, bridges, CNI): needs root.

The VNFD is the NAT sample package's, parsed from descriptors/packages/nat (see
`nat_executor`); OPERATE and CHANGE_EXT_CONN are in test_executor_operate_ext_conn.py.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from tests.integration.vnfm.nat_executor import (
    API_ROOT,
    NAT_LINKS,
    Instance,
    check_changes,
    check_grantable,
    check_info,
    instantiate_params,
    nat_vnfd,
    replica_count,
    server_pid,
    unit_of,
    wait_failed,
)
from tests.support.local_vim import next_cidr
from vim_adapters.interface import NetworkSpec, Ownership
from vim_adapters.local.adapter import LocalVim
from vnfm import planner
from vnfm.executor import Cancelled, ExecutionError, Executor
from vnfm.instantiated_info import snapshot

# -- the whole life of one NAT instance ---------------------------------------------------------


def test_nat_lifecycle(vim: LocalVim, executor: Executor) -> None:
    nat = Instance()
    fastpath, slowpath = unit_of(nat, "nat_fastpath"), unit_of(nat, "nat_slowpath")

    instantiate = nat.ctx("INSTANTIATE", instantiate_params(additionalParams={"k": "v"}))
    first = executor.run(instantiate)
    assert first.instantiation_state == "INSTANTIATED"
    assert first.vnf_state == "STARTED"
    assert first.flavour_id == "default"
    assert first.scale_levels == {"fastpath": 0}
    assert first.instantiation_level_id == "small"
    assert replica_count(vim, nat, "nat_fastpath") == 1
    assert replica_count(vim, nat, "nat_slowpath") == 1
    networks = {r.name for r in vim.list_owned(nat.id) if r.kind == "network"}
    assert networks == {planner.network_name(nat.id, vl) for vl in NAT_LINKS}
    assert all(r.owner.lcm_op_id == instantiate.op_id for r in vim.list_owned(nat.id))

    info = check_info(nat, first.instantiated_info)
    assert {r["vduId"] for r in info["vnfcResourceInfo"]} == {"nat_fastpath", "nat_slowpath"}
    assert {r["id"] for r in info["vnfcResourceInfo"]} == {f"{fastpath}-0", f"{slowpath}-0"}
    fp = next(r for r in info["vnfcResourceInfo"] if r["vduId"] == "nat_fastpath")
    assert fp["computeResource"]["vimLevelResourceType"] == "LOCAL.REPLICA"
    assert {cp["cpdId"] for cp in fp["vnfcCpInfo"]} == {
        "nat_fastpath_inside",
        "nat_fastpath_outside",
        "nat_fastpath_punt",
        "nat_fastpath_mgmt",
    }
    inside = next(cp for cp in fp["vnfcCpInfo"] if cp["cpdId"] == "nat_fastpath_inside")
    inside_ip = inside["cpProtocolInfo"][0]["ipOverEthernet"]["ipAddresses"][0]["addresses"][0]
    assert inside_ip.startswith("10.10.0.")
    assert {vl["vnfVirtualLinkDescId"] for vl in info["vnfVirtualLinkResourceInfo"]} == set(
        NAT_LINKS
    )
    ext = {cp["cpdId"]: cp for cp in info["extCpInfo"]}
    assert set(ext) == {"nat_inside", "nat_outside", "nat_mgmt"}
    assert ext["nat_inside"]["associatedVnfVirtualLinkId"] == planner.network_name(
        nat.id, "nat_inside_vl"
    )
    assert (
        inside_ip
        in ext["nat_inside"]["cpProtocolInfo"][0]["ipOverEthernet"]["ipAddresses"][0]["addresses"]
    )
    assert {v["vnfcState"] for v in info["vnfcInfo"]} == {"STARTED"}
    assert info["scaleStatus"] == [{"aspectId": "fastpath", "scaleLevel": 0}]
    assert info["maxScaleLevels"] == [{"aspectId": "fastpath", "scaleLevel": 7}]
    vnfcs, links = check_changes(first.resource_changes)
    assert vnfcs == {f"{fastpath}-0": "ADDED", f"{slowpath}-0": "ADDED"}
    assert set(links.values()) == {"ADDED"} and len(links) == 4

    # Retry (or a re-run after a crash): same VIM state, same result.
    owned = vim.list_owned(nat.id)
    again = executor.run(instantiate)
    assert vim.list_owned(nat.id) == owned
    assert again == first
    nat.apply(first)

    # Scale out by two steps, and a retry of that scale changes nothing more.
    scale_out = nat.ctx("SCALE", {"type": "SCALE_OUT", "aspectId": "fastpath", "numberOfSteps": 2})
    grown = executor.run(scale_out)
    assert grown.scale_levels == {"fastpath": 2}
    assert replica_count(vim, nat, "nat_fastpath") == 3
    assert replica_count(vim, nat, "nat_slowpath") == 1
    vnfcs, _ = check_changes(grown.resource_changes)
    assert vnfcs == {f"{fastpath}-1": "ADDED", f"{fastpath}-2": "ADDED"}
    assert check_info(nat, grown.instantiated_info)["scaleStatus"][0]["scaleLevel"] == 2
    owned = vim.list_owned(nat.id)
    assert executor.run(scale_out) == grown
    assert vim.list_owned(nat.id) == owned
    nat.apply(grown)

    shrunk = executor.run(nat.ctx("SCALE", {"type": "SCALE_IN", "aspectId": "fastpath"}))
    assert shrunk.scale_levels == {"fastpath": 1}
    assert replica_count(vim, nat, "nat_fastpath") == 2
    vnfcs, _ = check_changes(shrunk.resource_changes)
    assert vnfcs == {f"{fastpath}-2": "REMOVED"}
    check_info(nat, shrunk.instantiated_info)
    nat.apply(shrunk)

    large = executor.run(nat.ctx("SCALE_TO_LEVEL", {"instantiationLevelId": "large"}))
    assert large.scale_levels == {"fastpath": 3}
    assert replica_count(vim, nat, "nat_fastpath") == 4
    vnfcs, _ = check_changes(large.resource_changes)
    assert vnfcs == {f"{fastpath}-2": "ADDED", f"{fastpath}-3": "ADDED"}
    check_info(nat, large.instantiated_info)
    nat.apply(large)

    # Heal: kill one fast path's process; the default heals every failed replica.
    unit = vim.get_unit(fastpath)
    assert unit is not None
    before = next(r for r in unit.replicas if r.index == 1)
    old_pid = server_pid(vim, fastpath, 1)
    os.kill(old_pid, signal.SIGKILL)
    wait_failed(vim, fastpath, before.id)
    failed_info = snapshot(vim, nat.id, "default", nat.scale_levels, nat_vnfd())
    stopped = [
        v["vnfcResourceInfoId"] for v in failed_info["vnfcInfo"] if v["vnfcState"] != "STARTED"
    ]
    assert stopped == [before.id]
    healed = executor.run(nat.ctx("HEAL", {"cause": "fastpath_unhealthy"}))
    vnfcs, _ = check_changes(healed.resource_changes)
    assert vnfcs == {before.id: "MODIFIED"}
    assert server_pid(vim, fastpath, 1) != old_pid
    unit = vim.get_unit(fastpath)
    assert unit is not None and unit.ready
    after = next(r for r in unit.replicas if r.index == 1)
    assert after.addresses == before.addresses  # same IPs and MACs
    assert {v["vnfcState"] for v in check_info(nat, healed.instantiated_info)["vnfcInfo"]} == {
        "STARTED"
    }

    # An explicit list heals exactly those, even when healthy.
    chosen = executor.run(
        nat.ctx("HEAL", {"additionalParams": {"vnfcInstanceId": [f"{slowpath}-0"]}})
    )
    assert check_changes(chosen.resource_changes)[0] == {f"{slowpath}-0": "MODIFIED"}
    with pytest.raises(ExecutionError) as unknown:
        executor.run(nat.ctx("HEAL", {"additionalParams": {"vnfcInstanceId": ["nope-7"]}}))
    assert unknown.value.status == 422 and "nope-7" in unknown.value.detail

    terminate = nat.ctx(
        "TERMINATE", {"terminationType": "GRACEFUL", "gracefulTerminationTimeout": 5}
    )
    gone = executor.run(terminate)
    assert gone.instantiation_state == "NOT_INSTANTIATED"
    assert gone.instantiated_info is None and gone.vnf_state is None
    vnfcs, links = check_changes(gone.resource_changes)
    assert set(vnfcs.values()) == {"REMOVED"} and len(vnfcs) == 5
    assert set(links.values()) == {"REMOVED"} and len(links) == 4
    assert vim.list_owned(nat.id) == []
    assert vim.leaks() == []
    # Terminating again finds nothing to do.
    assert executor.run(terminate).resource_changes == {}


def test_ext_virtual_link_takes_over_an_internal_one(vim: LocalVim, executor: Executor) -> None:
    # An NS-level network the NFVO would have made, on the same (isolated) local VIM.
    ext_net = vim.ensure_network(
        NetworkSpec(name="ns-mgmt", cidr=next_cidr()), Ownership(vnf_instance_id="ns-1")
    )
    nat = Instance()
    link = {"id": "ext-mgmt", "resourceId": ext_net.name, "extCps": [{"cpdId": "nat_mgmt"}]}
    result = executor.run(nat.ctx("INSTANTIATE", instantiate_params(extVirtualLinks=[link])))
    networks = {r.name for r in vim.list_owned(nat.id) if r.kind == "network"}
    assert planner.network_name(nat.id, "nat_mgmt_vl") not in networks and len(networks) == 3
    info = check_info(nat, result.instantiated_info)
    [ext_link] = info["extVirtualLinkInfo"]
    assert ext_link["id"] == "ext-mgmt"
    assert ext_link["resourceHandle"]["resourceId"] == ext_net.name
    assert ext_link["currentVnfExtCpData"] == [{"cpdId": "nat_mgmt"}]
    mgmt = next(cp for cp in info["extCpInfo"] if cp["cpdId"] == "nat_mgmt")
    vnfc_cps = {
        cp["id"]: cp for vnfc in info["vnfcResourceInfo"] for cp in vnfc.get("vnfcCpInfo", [])
    }
    behind = vnfc_cps[mgmt["associatedVnfcCpId"]]
    assert behind["vnfExtCpId"] == "nat_mgmt"
    ext_ips = mgmt["cpProtocolInfo"][0]["ipOverEthernet"]["ipAddresses"][0]["addresses"]
    assert len(ext_ips) == 2  # the fast path's and the slow path's mgmt ports
    assert all(ip.startswith(ext_net.spec.cidr.rsplit(".", 1)[0]) for ip in ext_ips)

    executor.run(nat.ctx("TERMINATE", {"terminationType": "FORCEFUL"}))
    assert vim.list_owned(nat.id) == []
    assert vim.get_network(ext_net.name) is not None  # not the VNF's to delete
    vim.delete_network(ext_net.name)


def test_fixed_addresses_for_an_ext_cp_behind_several_vdus_are_refused(
    executor: Executor,
) -> None:
    config = {
        "layerProtocol": "IP_OVER_ETHERNET",
        "ipOverEthernet": {"ipAddresses": [{"type": "IPV4", "fixedAddresses": ["10.231.9.5"]}]},
    }
    link = {
        "id": "ext-mgmt",
        "resourceId": "ns-mgmt",
        "extCps": [{"cpdId": "nat_mgmt", "cpConfig": {"mgmt-0": {"cpProtocolData": [config]}}}],
    }
    with pytest.raises(ExecutionError) as failed:
        executor.run(Instance().ctx("INSTANTIATE", instantiate_params(extVirtualLinks=[link])))
    assert failed.value.status == 422 and "ambiguous" in failed.value.detail


# -- failure, rollback, cancellation -------------------------------------------------------------


def test_rollback_removes_a_half_done_instantiate(vim: LocalVim, executor: Executor) -> None:
    nat = Instance()
    missing_network = {
        "id": "ext-mgmt",
        "resourceId": "no-such-network",
        "extCps": [{"cpdId": "nat_mgmt"}],
    }
    ctx = nat.ctx("INSTANTIATE", instantiate_params(extVirtualLinks=[missing_network]))
    with pytest.raises(ExecutionError) as failed:
        executor.run(ctx)
    assert "no-such-network" in failed.value.detail
    assert failed.value.status == 500 and not failed.value.retryable
    made = {r.name for r in vim.list_owned(nat.id)}
    # The ext link replaced the mgmt link; the other three were made before the unit failed.
    assert made == {planner.network_name(nat.id, vl) for vl in NAT_LINKS if vl != "nat_mgmt_vl"}

    executor.rollback(ctx)
    assert vim.list_owned(nat.id) == []
    assert vim.leaks() == []
    executor.rollback(ctx)  # again: nothing left to remove


def test_a_new_instantiate_removes_what_a_failed_one_left(
    vim: LocalVim, executor: Executor
) -> None:
    nat = Instance()
    missing = {"id": "x", "resourceId": "no-such-network", "extCps": [{"cpdId": "nat_mgmt"}]}
    with pytest.raises(ExecutionError):
        executor.run(nat.ctx("INSTANTIATE", instantiate_params(extVirtualLinks=[missing])))
    # That occurrence was failed for good (no rollback); the instance is NOT_INSTANTIATED.
    ctx = nat.ctx("INSTANTIATE", instantiate_params())
    executor.run(ctx)
    owned = vim.list_owned(nat.id)
    assert len([r for r in owned if r.kind == "network"]) == 4
    assert {r.owner.lcm_op_id for r in owned} == {ctx.op_id}
    executor.rollback(ctx)
    assert vim.list_owned(nat.id) == []


def test_rollback_only_for_instantiate(executor: Executor) -> None:
    nat = Instance()
    with pytest.raises(ExecutionError) as refused:
        executor.rollback(nat.ctx("TERMINATE", {"terminationType": "FORCEFUL"}))
    assert "INSTANTIATE" in refused.value.detail


def test_cancel_between_steps(vim: LocalVim, executor: Executor) -> None:
    nat = Instance()
    checks: list[int] = []

    def cancel_after_two_networks() -> bool:
        checks.append(1)
        # Check 1 is before planning, 2 and 3 before the first two networks.
        return len(checks) > 3

    ctx = nat.ctx("INSTANTIATE", instantiate_params(), cancel_requested=cancel_after_two_networks)
    with pytest.raises(Cancelled) as cancelled:
        executor.run(ctx)
    assert cancelled.value.retryable
    assert "network" in cancelled.value.detail
    assert len([r for r in vim.list_owned(nat.id) if r.kind == "network"]) == 2
    assert not [r for r in vim.list_owned(nat.id) if r.kind == "unit"]
    # Retry after the cancellation finishes the job.
    retry = nat.ctx("INSTANTIATE", instantiate_params(), op_id=ctx.op_id)
    assert executor.run(retry).instantiation_state == "INSTANTIATED"
    executor.rollback(retry)
    assert vim.list_owned(nat.id) == []


@pytest.mark.parametrize(
    ("operation", "params", "says"),
    [
        ("INSTANTIATE", {"flavourId": "tiny"}, "tiny"),
        ("INSTANTIATE", instantiate_params(instantiationLevelId="huge"), "huge"),
        ("INSTANTIATE", {"flavourId": 7}, "flavourId"),
        ("SCALE", {"type": "SCALE_OUT", "aspectId": "fastpath", "numberOfSteps": 8}, "beyond"),
        ("SCALE", {"type": "SCALE_IN", "aspectId": "fastpath"}, "beyond level 0"),
        ("SCALE", {"type": "SCALE_OUT", "aspectId": "slowpath"}, "slowpath"),
        ("SCALE_TO_LEVEL", {"scaleInfo": [{"aspectId": "fastpath", "scaleLevel": 9}]}, "9"),
    ],
)
def test_plan_errors_are_422(
    vim: LocalVim, executor: Executor, operation: str, params: dict[str, Any], says: str
) -> None:
    nat = Instance()
    if operation != "INSTANTIATE":
        nat.flavour_id, nat.scale_levels = "default", {"fastpath": 0}
    with pytest.raises(ExecutionError) as failed:
        executor.run(nat.ctx(operation, params))
    assert failed.value.status == 422
    assert not failed.value.retryable
    assert says in failed.value.detail
    assert vim.list_owned(nat.id) == []


# -- granting ------------------------------------------------------------------------------------


def test_grant_request_for_instantiate(executor: Executor) -> None:
    nat = Instance()
    ctx = nat.ctx("INSTANTIATE", instantiate_params())
    body = executor.grant_request(ctx)
    check_grantable(body)
    assert body["vnfInstanceId"] == nat.id and body["vnfLcmOpOccId"] == ctx.op_id
    assert body["flavourId"] == "default" and body["instantiationLevelId"] == "small"
    assert body["isAutomaticInvocation"] is False
    kinds = [r["type"] for r in body["addResources"]]
    assert kinds.count("COMPUTE") == 2 and kinds.count("VL") == 4
    assert {r["vduId"] for r in body["addResources"] if r["type"] == "COMPUTE"} == {
        "nat_fastpath",
        "nat_slowpath",
    }
    assert {r["resourceTemplateId"] for r in body["addResources"] if r["type"] == "VL"} == set(
        NAT_LINKS
    )
    assert body["_links"]["vnfLcmOpOcc"]["href"] == (
        f"{API_ROOT}/vnflcm/v2/vnf_lcm_op_occs/{ctx.op_id}"
    )
    assert "removeResources" not in body


def test_grant_requests_of_later_operations(vim: LocalVim, executor: Executor) -> None:
    nat = Instance()
    nat.apply(executor.run(nat.ctx("INSTANTIATE", instantiate_params())))
    fastpath = unit_of(nat, "nat_fastpath")

    scale = executor.grant_request(
        nat.ctx("SCALE", {"type": "SCALE_OUT", "aspectId": "fastpath", "numberOfSteps": 2})
    )
    to_small = executor.grant_request(nat.ctx("SCALE_TO_LEVEL", {"instantiationLevelId": "small"}))
    heal = executor.grant_request(nat.ctx("HEAL", {"additionalParams": {"healAll": True}}))
    terminate = executor.grant_request(nat.ctx("TERMINATE", {"terminationType": "FORCEFUL"}))
    for body in (scale, to_small, heal, terminate):
        check_grantable(body)
        assert "instantiationLevelId" not in body
    assert [r["id"] for r in scale["addResources"]] == [
        "compute-nat_fastpath-1",
        "compute-nat_fastpath-2",
    ]
    assert "addResources" not in to_small and "removeResources" not in to_small
    assert len(heal["updateResources"]) == 2
    removed = terminate["removeResources"]
    assert {r["resource"]["resourceId"] for r in removed if r["type"] == "COMPUTE"} == {
        f"{fastpath}-0",
        f"{unit_of(nat, 'nat_slowpath')}-0",
    }
    assert {r["resourceTemplateId"] for r in removed if r["type"] == "VL"} == set(NAT_LINKS)
    executor.run(nat.ctx("TERMINATE", {"terminationType": "FORCEFUL"}))
    assert vim.list_owned(nat.id) == []
