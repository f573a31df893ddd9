"""UPDATE of an NS instance with real LCM workers on a local VIM: ADD_VNF takes an existing
VNF instance into the NS, REMOVE_VNF terminates and deletes one; both keep the VNF profile's
instance bounds (422 otherwise, with nothing started). CHANGE_VNF_DF moves the NAT to its
flavour `large` through the VNFM's ChangeVnfFlavour.

The NSD is the sample edge-gateway with its NAT profile allowing 1 to 2 instances; the NAT
package is the runnable variant (its VDUs are plain HTTP servers), since no traffic flows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.celery_worker import NAT_VNFD_ID, LcmLab
from tests.support.local_vim import name_prefix
from tests.support.ns_lab import NsApi, edge_gateway_variant, onboard_nsd, single_nat_lab
from vnfm import planner

INSTANTIATE = {"nsFlavourId": "default", "nsInstantiationLevelId": "small"}


def nat_up_to_two(tmp: Path) -> Path:
    """The edge-gateway NSD whose NAT profile allows a second instance."""
    return edge_gateway_variant(
        tmp, "edge-gateway-2", "max_number_of_instances: 1", "max_number_of_instances: 2"
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LcmLab]:
    with single_nat_lab(tmp_path_factory.mktemp("nsupdate"), name_prefix("hu")) as made:
        yield made


@pytest.fixture(scope="module")
def api(lab: LcmLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsApi]:
    made = NsApi(lab, onboard_nsd(lab, nat_up_to_two(tmp_path_factory.mktemp("nsd"))))
    yield made
    made.close()


def _standalone_nat(lab: LcmLab) -> str:
    vnf_id = lab.create_instance(NAT_VNFD_ID)
    op = lab.start(vnf_id, "instantiate", {"flavourId": "default"})
    assert lab.wait_op(op, "COMPLETED", "FAILED_TEMP")["operationState"] == "COMPLETED"
    return vnf_id


def _update(api: NsApi, ns_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return api.wait(api.task(ns_id, "update", body), "COMPLETED", "FAILED_TEMP")


def test_add_and_remove_vnf_instances_within_the_profile_bounds(lab: LcmLab, api: NsApi) -> None:
    ns_id = api.create("hu-update")
    done = api.wait(api.task(ns_id, "instantiate", INSTANTIATE), "COMPLETED", "FAILED_TEMP")
    assert done["operationState"] == "COMPLETED", done.get("error")
    (original,) = [str(v["id"]) for v in api.ns(ns_id)["vnfInstance"]]

    added = _standalone_nat(lab)
    add = {
        "updateType": "ADD_VNF",
        "addVnfInstance": [{"vnfInstanceId": added, "vnfProfileId": "nat"}],
    }
    done = _update(api, ns_id, add)
    assert done["operationState"] == "COMPLETED", done.get("error")
    members = {str(v["id"]): v for v in api.ns(ns_id)["vnfInstance"]}
    assert set(members) == {original, added}
    assert members[added]["vnfProfileId"] == "nat"

    # A third would exceed the profile's maximum: refused before anything starts.
    third = lab.create_instance(NAT_VNFD_ID)
    refused = api.http.post(
        f"/nslcm/v2/ns_instances/{ns_id}/update",
        json={
            "updateType": "ADD_VNF",
            "addVnfInstance": [{"vnfInstanceId": third, "vnfProfileId": "nat"}],
        },
    )
    assert refused.status_code == 422, refused.text
    assert "allows at most 2" in refused.json()["detail"]
    assert lab.http.delete(f"/vnflcm/v2/vnf_instances/{third}").status_code == 204

    # REMOVE_VNF terminates and deletes the VNF instance, and its resources go.
    done = _update(api, ns_id, {"updateType": "REMOVE_VNF", "removeVnfInstanceId": [added]})
    assert done["operationState"] == "COMPLETED", done.get("error")
    assert [str(v["id"]) for v in api.ns(ns_id)["vnfInstance"]] == [original]
    assert lab.http.get(f"/vnflcm/v2/vnf_instances/{added}").status_code == 404
    assert lab.vim.list_owned(added) == []

    # The last one cannot go: the profile needs at least one.
    refused = api.http.post(
        f"/nslcm/v2/ns_instances/{ns_id}/update",
        json={"updateType": "REMOVE_VNF", "removeVnfInstanceId": [original]},
    )
    assert refused.status_code == 422, refused.text
    assert "needs at least 1" in refused.json()["detail"]

    done = api.wait(api.task(ns_id, "terminate", {}), "COMPLETED", "FAILED_TEMP")
    assert done["operationState"] == "COMPLETED", done.get("error")
    assert lab.vim.list_owned(ns_id) == [] and lab.vim.list_owned(original) == []
    assert lab.vim.leaks() == []


def _fastpath(lab: LcmLab, vnf_id: str) -> tuple[float, int, int]:
    unit = lab.vim.get_unit(planner.unit_name(vnf_id, "nat_fastpath"))
    assert unit is not None and unit.ready, unit
    return unit.spec.cpu, unit.spec.memory_mib, len(unit.replicas)


def test_change_the_nat_to_flavour_large(lab: LcmLab, api: NsApi) -> None:
    ns_id = api.create("hu-change-df")
    done = api.wait(api.task(ns_id, "instantiate", INSTANTIATE), "COMPLETED", "FAILED_TEMP")
    assert done["operationState"] == "COMPLETED", done.get("error")
    (vnf,) = api.ns(ns_id)["vnfInstance"]
    nat = str(vnf["id"])
    assert vnf["instantiatedVnfInfo"]["flavourId"] == "default"
    assert _fastpath(lab, nat) == (2.0, 1024, 1)

    change = {
        "updateType": "CHANGE_VNF_DF",
        "changeVnfFlavourData": [{"vnfInstanceId": nat, "newFlavourId": "large"}],
    }
    done = _update(api, ns_id, change)
    assert done["operationState"] == "COMPLETED", done.get("error")
    (affected,) = done["resourceChanges"]["affectedVnfs"]
    assert (affected["vnfInstanceId"], affected["changeType"]) == (nat, "CHANGE_FLAVOUR")
    assert affected["vnfProfileId"] == "nat" and affected["changeResult"] == "COMPLETED"
    # The NS instance's record and the VNFM agree: flavour large at its default level.
    (vnf,) = api.ns(ns_id)["vnfInstance"]
    assert vnf["instantiatedVnfInfo"]["flavourId"] == "large"
    assert lab.instance(nat)["instantiatedVnfInfo"]["flavourId"] == "large"
    assert _fastpath(lab, nat) == (4.0, 2048, 2)
    ops = lab.http.get("/vnflcm/v2/vnf_lcm_op_occs", params={"filter": f"(eq,vnfInstanceId,{nat})"})
    assert "CHANGE_FLAVOUR" in {op["operation"] for op in ops.json()}

    # The same flavour again is refused before anything starts.
    refused = api.http.post(f"/nslcm/v2/ns_instances/{ns_id}/update", json=change)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith("changeVnfFlavourData[0].newFlavourId:")

    done = api.wait(api.task(ns_id, "terminate", {}), "COMPLETED", "FAILED_TEMP")
    assert done["operationState"] == "COMPLETED", done.get("error")
    assert lab.vim.list_owned(ns_id) == [] and lab.vim.list_owned(nat) == []
    assert lab.vim.leaks() == []
