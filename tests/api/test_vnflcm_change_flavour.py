"""Change VNF flavour (SOL003 5.4.7) over real HTTP, on a real local VIM (root).

Operations run through `LcmRunner` as in test_vnflcm_tasks.py, on SQLite and PostgreSQL.
The NAT package has flavours `default` and `large` (fast paths of 4 vCPU / 2 GiB).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Nfvo
from tests.api.test_vnflcm_tasks import INSTANCES, SMALL, Lab, nat_lcm_lab
from vnfm import planner

TO_LARGE = {"newFlavourId": "large"}


@pytest.fixture
def lab(nfvo: Nfvo, sample_csars: dict[str, Path], tmp_path: Path) -> Iterator[Lab]:
    with nat_lcm_lab(nfvo, sample_csars, tmp_path) as made:
        yield made


def _refused(lab: Lab, instance_id: str, body: dict[str, Any], status: int) -> str:
    before = len(lab.runner.calls)
    resp = lab.lcm.post(f"{INSTANCES}/{instance_id}/change_flavour", json=body)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert len(lab.runner.calls) == before, "a refused request must not reach a worker"
    return str(resp.json()["detail"])


def _fastpath(lab: Lab, instance_id: str) -> tuple[float, int, int]:
    unit = lab.vim.get_unit(planner.unit_name(instance_id, "nat_fastpath"))
    assert unit is not None and unit.ready
    return unit.spec.cpu, unit.spec.memory_mib, len(unit.replicas)


def test_refusals_name_the_field(lab: Lab) -> None:
    assert _refused(lab, "no-such-instance", TO_LARGE, 404)
    instance_id = lab.create()
    detail = _refused(lab, instance_id, TO_LARGE, 409)
    assert "NOT_INSTANTIATED" in detail
    links = lab.instance(instance_id)["_links"]
    assert "changeFlavour" not in links
    lab.run(instance_id, "instantiate", SMALL)
    href = lab.instance(instance_id)["_links"]["changeFlavour"]["href"]
    assert href == f"{lab.nfvo.url}{INSTANCES}/{instance_id}/change_flavour"

    assert "newFlavourId" in _refused(lab, instance_id, {}, 400)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"newFlavourId": "huge"}, "newFlavourId", "default, large"),
        ({"newFlavourId": "default"}, "newFlavourId", "already"),
        (
            {"newFlavourId": "large", "instantiationLevelId": "small"},
            "instantiationLevelId",
            "medium",
        ),
        (
            {
                "newFlavourId": "large",
                "extVirtualLinks": [
                    {"id": "x", "resourceId": "some-net", "extCps": [{"cpdId": "nat_nope"}]}
                ],
            },
            "extVirtualLinks[0].extCps[0].cpdId",
            "nat_mgmt",
        ),
        (
            {
                "newFlavourId": "large",
                "extVirtualLinks": [
                    {"id": "a", "resourceId": "net-a", "extCps": [{"cpdId": "nat_mgmt"}]},
                    {"id": "b", "resourceId": "net-b", "extCps": [{"cpdId": "nat_mgmt"}]},
                ],
            },
            "extVirtualLinks",
            "more than one link",
        ),
        (
            {
                "newFlavourId": "large",
                "extManagedVirtualLinks": [
                    {"id": "m", "vnfVirtualLinkDescId": "nat_punt_vl", "resourceId": "net-m"}
                ],
            },
            "extManagedVirtualLinks",
            "not supported",
        ),
    ]
    for body, field, words in cases:
        detail = _refused(lab, instance_id, body, 422)
        assert detail.startswith(f"{field}:") and words in detail, detail
    # The NAT's additional configurable properties are not writable while instantiated.
    props = {"additional_configurable_properties": {"flow_idle_timeout": "60 s"}}
    detail = _refused(lab, instance_id, {**TO_LARGE, "vnfConfigurableProperties": props}, 409)
    assert detail.startswith("vnfConfigurableProperties.additional_configurable_properties")

    # One operation at a time: a second change while the first runs is refused.
    with lab.runner.hold():
        first = lab.task(instance_id, "change_flavour", TO_LARGE)
        assert "in progress" in _refused(lab, instance_id, TO_LARGE, 409).lower()
    assert lab.wait(first, "COMPLETED", "FAILED_TEMP")["operationState"] == "COMPLETED"
    # Now it runs `large`: `default` is a change again, `large` is not.
    assert "already" in _refused(lab, instance_id, TO_LARGE, 422)
    lab.run(instance_id, "terminate", {"terminationType": "FORCEFUL"})


def test_change_to_large_and_back(lab: Lab) -> None:
    instance_id = lab.create()
    lab.run(instance_id, "instantiate", SMALL)
    assert _fastpath(lab, instance_id) == (2.0, 1024, 1)

    occ = lab.run(instance_id, "change_flavour", TO_LARGE)
    assert occ["operation"] == "CHANGE_FLAVOUR"
    assert occ["operationParams"] == TO_LARGE
    assert "grant" in occ["_links"]
    changes = {v["vduId"] + "/" + v["changeType"] for v in occ["resourceChanges"]["affectedVnfcs"]}
    assert changes == {"nat_fastpath/MODIFIED", "nat_fastpath/ADDED", "nat_slowpath/MODIFIED"}
    info = lab.instance(instance_id)["instantiatedVnfInfo"]
    assert info["flavourId"] == "large"
    assert info["scaleStatus"] == [{"aspectId": "fastpath", "scaleLevel": 1}]
    assert len(info["vnfcResourceInfo"]) == 3
    assert _fastpath(lab, instance_id) == (4.0, 2048, 2)

    back = {"newFlavourId": "default", "instantiationLevelId": "small"}
    occ = lab.run(instance_id, "change_flavour", back)
    info = lab.instance(instance_id)["instantiatedVnfInfo"]
    assert info["flavourId"] == "default"
    assert info["scaleStatus"] == [{"aspectId": "fastpath", "scaleLevel": 0}]
    assert _fastpath(lab, instance_id) == (2.0, 1024, 1)
    removed = [v for v in occ["resourceChanges"]["affectedVnfcs"] if v["changeType"] == "REMOVED"]
    assert [v["vduId"] for v in removed] == ["nat_fastpath"]

    lab.run(instance_id, "terminate", {"terminationType": "FORCEFUL"})
    assert lab.vim.list_owned(instance_id) == []
