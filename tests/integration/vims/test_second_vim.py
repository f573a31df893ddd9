"""A VNF on a second registered local VIM, chosen by vimConnectionInfo; placement over both.

The NFVO runs in this process, a real Celery worker in another (embedded broker); the
worker resolves each operation's VIM through the registry. The default VIM (the settings')
and VIM "b" are two local VIMs with their own state directories and name prefixes. Needs root.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nfvo.grant.placement import CapacityPolicy
from nfvo.vims.placement import Demand, PlacementRefused, PlacementRequest, Placer
from tests.support.celery_worker import INSTANCES, LcmLab, lcm_lab, runnable_nat_csar
from tests.support.etsi_schema import validate
from tests.support.local_vim import local_vim, name_prefix
from vim_adapters.local.adapter import LocalVim
from vnfm import planner

VIMS = "/vims/v1/vims"
VIMS_HEADERS = {"Version": "1.0.0"}
MERGE = {**VIMS_HEADERS, "Content-Type": "application/merge-patch+json"}
LOCAL = "NFVMANO.LOCAL.V_1"
LCM_DEFS = (
    "nfv-sol002-sol003/SOL003/VNFLifecycleManagement/definitions/"
    "SOL003VNFLifecycleManagement_def.yaml"
)
SMALL = {"flavourId": "default", "instantiationLevelId": "small"}
FINAL = ("COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK")


@dataclass
class TwoVims:
    lab: LcmLab
    vim_b: LocalVim
    vim_b_id: str
    vnfd_id: str

    def vims(self, method: str, path: str = "", **kwargs: Any) -> Any:
        headers = MERGE if method == "PATCH" else VIMS_HEADERS
        return self.lab.http.request(method, f"{VIMS}{path}", headers=headers, **kwargs)

    def run(self, instance_id: str, task: str, body: dict[str, Any]) -> dict[str, Any]:
        op = self.lab.wait_op(self.lab.start(instance_id, task, body), *FINAL)
        validate(LCM_DEFS, "VnfLcmOpOcc", op)
        return op

    def units_on(self, vim: LocalVim, instance_id: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for vdu in ("nat_fastpath", "nat_slowpath"):
            unit = vim.get_unit(planner.unit_name(instance_id, vdu))
            if unit is not None:
                assert unit.ready, unit.replicas
                found[vdu] = len(unit.replicas)
        return found


@pytest.fixture
def two(tmp_path: Path) -> Iterator[TwoVims]:
    prefix = name_prefix("b")
    with (
        lcm_lab(tmp_path / "lab", broker_url=None) as lab,
        local_vim(tmp_path / "vim-b", prefix=prefix) as vim_b,
    ):
        vnfd_id = str(uuid.uuid4())
        lab.onboard(runnable_nat_csar(tmp_path, vnfd_id=vnfd_id))
        resp = lab.http.post(
            VIMS,
            headers=VIMS_HEADERS,
            json={
                "name": "lab-b",
                "vimType": LOCAL,
                "accessInfo": {"stateDir": str(vim_b.state_dir), "prefix": prefix},
                # Room for nothing yet, so the grant is seen to be checked against this VIM.
                "extra": {"zone": "b", "capacity": {"vcpu": 1, "cpuAllocationRatio": 1}},
            },
        )
        assert resp.status_code == 201, resp.text
        lab.start_worker("w1")
        yield TwoVims(lab, vim_b, resp.json()["id"], vnfd_id)
        assert lab.vim.leaks() == [] and vim_b.leaks() == []


def test_a_vnf_on_the_vim_its_request_names(two: TwoVims) -> None:
    lab, vim_b, vim_b_id = two.lab, two.vim_b, two.vim_b_id
    instance_id = lab.create_instance(two.vnfd_id)
    on_b = {**SMALL, "vimConnectionInfo": {"vim-b": {"vimId": vim_b_id, "vimType": LOCAL}}}

    # What the registry can tell at once is answered by the task POST itself.
    for connections, says in (
        ({"x": {"vimId": "nope", "vimType": LOCAL}}, "vimConnectionInfo.x.vimId: no VIM"),
        ({"x": {"vimType": LOCAL}}, "vimConnectionInfo.x.vimId is required"),
        (
            {"x": {"vimId": vim_b_id, "vimType": "ETSINFV.KUBERNETES.V_1"}},
            "vimConnectionInfo.x.vimType",
        ),
        (
            {"x": {"vimId": vim_b_id, "vimType": LOCAL}, "y": {"vimId": "local", "vimType": LOCAL}},
            "names 2 VIMs",
        ),
    ):
        resp = lab.http.post(
            f"{INSTANCES}/{instance_id}/instantiate",
            json={**SMALL, "vimConnectionInfo": connections},
        )
        assert resp.status_code == 422, resp.text
        assert says in resp.json()["detail"]

    # The grant is decided on VIM b's capacity (1 vCPU), not on the default VIM's.
    op = two.run(instance_id, "instantiate", on_b)
    assert op["operationState"] == "ROLLED_BACK", op
    assert op["error"]["status"] == 403
    assert f"not enough CPU: needs 3 vCPU, 1 free on VIM {vim_b_id}" in op["error"]["detail"]
    assert vim_b.list_owned(instance_id) == [] and lab.vim.list_owned(instance_id) == []

    resp = two.vims("PATCH", f"/{vim_b_id}", json={"extra": {"capacity": {"vcpu": 16}}})
    assert resp.status_code == 200, resp.text
    op = two.run(instance_id, "instantiate", on_b)
    assert op["operationState"] == "COMPLETED", op
    assert op["changedInfo"] == {"vimConnectionInfo": on_b["vimConnectionInfo"]}
    assert two.units_on(vim_b, instance_id) == {"nat_fastpath": 1, "nat_slowpath": 1}
    assert two.units_on(lab.vim, instance_id) == {}
    instance = lab.instance(instance_id)
    assert instance["vimConnectionInfo"] == on_b["vimConnectionInfo"]
    info = instance["instantiatedVnfInfo"]
    handles = [v["computeResource"] for v in info["vnfcResourceInfo"]] + [
        v["networkResource"] for v in info.get("vnfVirtualLinkResourceInfo", [])
    ]
    assert handles and {h["vimConnectionId"] for h in handles} == {"vim-b"}
    grant = lab.http.get(f"/grant/v1/grants/{op['grantId']}", headers={"Version": "1.7.0"})
    assert grant.status_code == 200, grant.text
    assert grant.json()["vimConnectionInfo"] == on_b["vimConnectionInfo"]
    assert {g["vimConnectionId"] for g in grant.json()["addResources"]} == {"vim-b"}

    in_use = two.vims("DELETE", f"/{vim_b_id}")
    assert in_use.status_code == 409 and instance_id in in_use.json()["detail"]

    # Later operations find the VIM from the instance: scale out on b, nothing on the default.
    op = two.run(instance_id, "scale", {"type": "SCALE_OUT", "aspectId": "fastpath"})
    assert op["operationState"] == "COMPLETED", op
    assert two.units_on(vim_b, instance_id) == {"nat_fastpath": 2, "nat_slowpath": 1}
    assert lab.vim.list_owned(instance_id) == []

    # Placement sees VIM b's allocation (2 + 1 + 2 vCPU of its 16) and its zone.
    placer = Placer.from_directory(lab.app.state.vims, CapacityPolicy())
    fits = PlacementRequest(profile_id="nat-2", demand=Demand(11.0, 512), zone="b")
    assert placer.place(fits).vim.vim_id == vim_b_id
    with pytest.raises(PlacementRefused) as refused:
        placer.place(PlacementRequest(profile_id="nat-3", demand=Demand(1.0, 512), zone="b"))
    assert f"needs 1 vCPU, 0 free on VIM {vim_b_id}" in refused.value.reasons[vim_b_id]
    assert refused.value.reasons["local"] == "zone none is not b"

    op = two.run(instance_id, "terminate", {"terminationType": "FORCEFUL"})
    assert op["operationState"] == "COMPLETED", op
    assert vim_b.list_owned(instance_id) == [] and lab.vim.list_owned(instance_id) == []
    assert two.vims("DELETE", f"/{vim_b_id}").status_code == 204
    assert two.vims("GET", f"/{vim_b_id}").status_code == 404
