"""The granting decision, with hand-made VNFD sizing and VIM inventories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from descriptors.tosca import parse_vnfd
from nfvo.grant.placement import (
    CapacityPolicy,
    GrantRejected,
    VduSize,
    VimChoice,
    VnfdResources,
    decide,
    vnfd_resources,
)
from nfvo.grant.schemas import GrantRequest
from vim_adapters.interface import Inventory

NAT = Path(__file__).resolve().parents[3] / "descriptors" / "packages" / "nat"
VNFD_ID = "vnfd-1"
VIM = VimChoice(
    connection_id="local", vim_id="local", vim_type="NFVMANO.LOCAL.V_1", single_host=True
)
SIZING = VnfdResources(
    vnfd_id=VNFD_ID,
    flavour_id="default",
    vdus={"fast": VduSize(2.0, 1024), "slow": VduSize(1.0, 512)},
    virtual_links=frozenset({"punt_vl"}),
    storages=frozenset({"disk"}),
    cps=frozenset({"inside"}),
    instantiation_levels={"small": {"fast": 1, "slow": 1}, "big": {"fast": 4, "slow": 1}},
)


def inventory(
    cpu_total: float = 4, cpu_used: float = 0, mem_total: int = 8192, mem_used: int = 0
) -> Inventory:
    return Inventory(
        vim_type="local",
        cpu_total=cpu_total,
        cpu_allocated=cpu_used,
        memory_mib_total=mem_total,
        memory_mib_allocated=mem_used,
        networks=0,
        replicas=0,
    )


def compute(rid: str, vdu: str = "fast") -> dict[str, Any]:
    return {"id": rid, "type": "COMPUTE", "vduId": vdu, "resourceTemplateId": vdu}


def request(**fields: Any) -> GrantRequest:
    body: dict[str, Any] = {
        "vnfInstanceId": "inst-1",
        "vnfLcmOpOccId": "op-1",
        "vnfdId": VNFD_ID,
        "flavourId": "default",
        "operation": "INSTANTIATE",
        "isAutomaticInvocation": False,
        "_links": {
            "vnfLcmOpOcc": {"href": "http://vnfm/vnflcm/v2/vnf_lcm_op_occs/op-1"},
            "vnfInstance": {"href": "http://vnfm/vnflcm/v2/vnf_instances/inst-1"},
        },
    }
    body.update(fields)
    return GrantRequest.model_validate(body)


def run(req: GrantRequest, inv: Inventory, policy: CapacityPolicy | None = None) -> dict[str, Any]:
    grant = decide(
        req,
        grant_id="g-1",
        self_href="http://nfvo/grant/v1/grants/g-1",
        target=SIZING,
        current=SIZING,
        inventory=inv,
        vim=VIM,
        policy=policy,
    )
    return grant.to_json()


def rejected(req: GrantRequest, inv: Inventory, policy: CapacityPolicy | None = None) -> str:
    with pytest.raises(GrantRejected) as caught:
        run(req, inv, policy)
    return caught.value.detail


def test_grant_echoes_resources_on_the_chosen_vim() -> None:
    req = request(
        addResources=[
            compute("c1"),
            compute("c2", "slow"),
            {"id": "v1", "type": "VL", "resourceTemplateId": "punt_vl"},
            {"id": "p1", "type": "LINKPORT", "resourceTemplateId": "inside"},
            {"id": "s1", "type": "STORAGE", "resourceTemplateId": "disk"},
        ]
    )
    grant = run(req, inventory())
    assert grant["id"] == "g-1"
    assert grant["vnfInstanceId"] == "inst-1" and grant["vnfLcmOpOccId"] == "op-1"
    assert grant["vimConnectionInfo"] == {
        "local": {"vimId": "local", "vimType": "NFVMANO.LOCAL.V_1"}
    }
    assert [g["resourceDefinitionId"] for g in grant["addResources"]] == [
        "c1",
        "c2",
        "v1",
        "p1",
        "s1",
    ]
    assert {g["vimConnectionId"] for g in grant["addResources"]} == {"local"}
    assert "removeResources" not in grant and "zones" not in grant
    assert grant["_links"] == {
        "self": {"href": "http://nfvo/grant/v1/grants/g-1"},
        "vnfLcmOpOcc": {"href": "http://vnfm/vnflcm/v2/vnf_lcm_op_occs/op-1"},
        "vnfInstance": {"href": "http://vnfm/vnflcm/v2/vnf_instances/inst-1"},
    }


def test_exactly_full_is_granted_one_more_is_not() -> None:
    # 2 + 1 vCPU of 4 with 1 allocated: exactly full.
    run(request(addResources=[compute("a"), compute("b", "slow")]), inventory(cpu_used=1))
    detail = rejected(request(addResources=[compute("a"), compute("b")]), inventory(cpu_used=1.5))
    assert "needs 4 vCPU, 2.5 free on VIM local" in detail


def test_cpu_shortage_names_the_numbers() -> None:
    detail = rejected(
        request(addResources=[compute("a"), compute("b")]), inventory(cpu_total=2, cpu_used=0.5)
    )
    assert detail.startswith("not enough CPU: needs 4 vCPU, 1.5 free on VIM local")
    assert "(2 vCPU, 0.5 allocated)" in detail


def test_memory_shortage_names_the_numbers() -> None:
    detail = rejected(
        request(addResources=[compute("a"), compute("b")]), inventory(mem_total=4096, mem_used=3000)
    )
    assert "not enough memory: needs 2048 MiB, 1096 MiB free on VIM local" in detail


def test_allocation_ratio_allows_cpu_overcommit() -> None:
    req = request(addResources=[compute(f"c{i}") for i in range(4)])
    assert "8 vCPU, 2 free" in rejected(req, inventory(cpu_total=2))
    run(req, inventory(cpu_total=2), CapacityPolicy(cpu_allocation_ratio=4.0))
    detail = rejected(
        req, inventory(cpu_total=2, cpu_used=1), CapacityPolicy(cpu_allocation_ratio=4.0)
    )
    assert "needs 8 vCPU, 7 free on VIM local (2 vCPU x allocation ratio 4, 1 allocated)" in detail


def test_an_overcommitted_vim_shows_nothing_free() -> None:
    detail = rejected(request(addResources=[compute("a")]), inventory(cpu_total=2, cpu_used=3))
    assert "needs 2 vCPU, 0 free" in detail


def test_instantiation_level_sizes_an_instantiate_without_add_resources() -> None:
    run(request(instantiationLevelId="small"), inventory(cpu_total=3))
    assert "needs 9 vCPU, 3 free" in rejected(
        request(instantiationLevelId="big"), inventory(cpu_total=3)
    )
    assert "'huge' is not a level" in rejected(request(instantiationLevelId="huge"), inventory())


def test_removed_compute_is_credited() -> None:
    # A heal: one fast-path replica goes, a new one comes; the VIM is full.
    heal = request(
        operation="HEAL",
        flavourId=None,
        addResources=[compute("new")],
        removeResources=[{**compute("old"), "resource": {"resourceId": "ns-1"}}],
    )
    grant = run(heal, inventory(cpu_total=4, cpu_used=4))
    assert [g["resourceDefinitionId"] for g in grant["removeResources"]] == ["old"]


def test_remove_only_is_always_granted() -> None:
    grant = run(
        request(
            operation="TERMINATE",
            flavourId=None,
            removeResources=[compute("x"), compute("y", "slow")],
        ),
        inventory(cpu_total=1, cpu_used=5),
    )
    assert len(grant["removeResources"]) == 2 and "addResources" not in grant


@pytest.mark.parametrize(
    ("resource", "says"),
    [
        (compute("c", "turbo"), "vduId 'turbo' is not a VDU of flavour 'default' of VNFD vnfd-1"),
        (
            {"id": "c", "type": "COMPUTE", "resourceTemplateId": "fast"},
            "COMPUTE resource needs a vduId",
        ),
        ({"id": "v", "type": "VL", "resourceTemplateId": "nope"}, "'nope' is not a virtual link"),
        (
            {"id": "s", "type": "STORAGE", "resourceTemplateId": "nope"},
            "'nope' is not a virtual storage",
        ),
        (
            {"id": "p", "type": "LINKPORT", "resourceTemplateId": "nope"},
            "'nope' is not a connection point",
        ),
        ({**compute("c"), "vnfdId": "other"}, "names vnfdId 'other'"),
    ],
)
def test_resources_the_vnfd_does_not_declare_are_rejected(
    resource: dict[str, Any], says: str
) -> None:
    assert says in rejected(request(addResources=[resource]), inventory())


def test_anti_affinity_on_a_single_host_needs_best_effort() -> None:
    constraint = {
        "affinityOrAntiAffinity": "ANTI_AFFINITY",
        "scope": "NFVI_NODE",
        "resource": [
            {"idType": "GRANT", "resourceId": "a"},
            {"idType": "GRANT", "resourceId": "b"},
        ],
    }
    adds = [compute("a"), compute("b")]
    detail = rejected(request(addResources=adds, placementConstraints=[constraint]), inventory())
    assert "ANTI_AFFINITY at scope NFVI_NODE between a, b cannot be honoured" in detail
    best_effort = {**constraint, "fallbackBestEffort": True}
    run(request(addResources=adds, placementConstraints=[best_effort]), inventory())
    affinity = {**constraint, "affinityOrAntiAffinity": "AFFINITY"}
    run(request(addResources=adds, placementConstraints=[affinity]), inventory())


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({}, "needs addResources or instantiationLevelId"),
        (
            {"operation": "SCALE", "instantiationLevelId": "small"},
            "only be given for operation INSTANTIATE",
        ),
        ({"addResources": [compute("a"), compute("a")]}, "'a' is used twice"),
        ({"addResources": [compute("a")], "surprise": 1}, "Extra inputs are not permitted"),
        ({"addResources": [compute("a")], "dstVnfdId": "x"}, "dstVnfdId is given if and only if"),
        (
            {
                "addResources": [compute("a")],
                "vimConstraints": [
                    {
                        "resource": [
                            {"idType": "GRANT", "resourceId": "a"},
                            {"idType": "GRANT", "resourceId": "z"},
                        ]
                    }
                ],
            },
            "names resource definition 'z'",
        ),
    ],
)
def test_malformed_requests_are_invalid(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        request(**fields)


def test_vnfd_resources_of_the_nat_sample() -> None:
    vnfd = parse_vnfd(NAT, "Definitions/nat_vnfd_top.yaml")
    default = vnfd_resources(vnfd, "default")
    assert default.vdus == {"nat_fastpath": VduSize(2.0, 1024), "nat_slowpath": VduSize(1.0, 512)}
    assert default.instantiation_levels["medium"] == {"nat_fastpath": 2, "nat_slowpath": 1}
    assert (
        "nat_punt_vl" in default.virtual_links
        and {"nat_inside", "nat_fastpath_punt"} <= default.cps
    )
    # Without a flavour a VDU is sized by the largest flavour that has it.
    assert vnfd_resources(vnfd, None).vdus["nat_fastpath"] == VduSize(4.0, 2048)
    with pytest.raises(
        GrantRejected, match=r"flavourId 'tiny' is not a flavour of VNFD .* default, large"
    ):
        vnfd_resources(vnfd, "tiny")


def test_vim_type_convention() -> None:
    assert VimChoice.for_inventory(inventory()).vim_type == "NFVMANO.LOCAL.V_1"
    k8s = inventory().model_copy(update={"vim_type": "kubernetes"})
    assert VimChoice.for_inventory(k8s, "k8s").vim_type == "ETSINFV.KUBERNETES.V_1"
