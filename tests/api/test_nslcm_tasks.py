"""The task resources of /nslcm/v2/ns_instances/{id}: instantiate, terminate, scale, heal,
update. Each accepted request answers 202 with Location to its NS LCM operation occurrence;
each refusal is a ProblemDetails naming the offending field (SOL005 6.4.4-6.4.8).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Nfvo, NsdApi
from tests.support.nslcm_lab import (
    INSTANCES,
    NSLCM_VERSION,
    Dispatched,
    NsLab,
    nat_record,
    onboard_edge_nsd,
    problem_of,
)

STEP_OUT: dict[str, Any] = {
    "scaleType": "SCALE_NS",
    "scaleNsData": {
        "scaleNsByStepsData": {
            "scalingDirection": "SCALE_OUT",
            "aspectId": "nat_capacity",
            "numberOfSteps": 1,
        }
    },
}


@pytest.fixture
def lab(
    nfvo: Nfvo, nsd_api: NsdApi, nat_package: dict[str, Any], nsd_archives: dict[str, Path]
) -> Iterator[NsLab]:
    nsd = onboard_edge_nsd(nsd_api, nsd_archives["edge-gateway"])
    dispatched = Dispatched()
    nfvo.app.state.ns_dispatch = dispatched
    yield NsLab(nfvo, nfvo.client("nslcm", version=NSLCM_VERSION), str(nsd["nsdId"]), dispatched)


def _refused(lab: NsLab, ns_id: str, task: str, body: dict[str, Any], status: int) -> str:
    detail = problem_of(lab.lcm.post(f"{INSTANCES}/{ns_id}/{task}", json=body), status)["detail"]
    assert lab.dispatched.calls == [], "a refused request must not reach a worker"
    return str(detail)


def test_every_task_starts_its_operation(lab: NsLab) -> None:
    ns_id = lab.create()
    instantiate = {
        "nsFlavourId": "default",
        "nsInstantiationLevelId": "large",
        "additionalParamsForVnf": [
            {"vnfProfileId": "nat", "vnfInstanceName": "hn-nat", "additionalParams": {"a": 1}}
        ],
    }
    op_id = lab.task(ns_id, "instantiate", instantiate)
    occ = lab.occ(op_id)
    assert occ["lcmOperationType"] == "INSTANTIATE" and occ["operationParams"] == instantiate

    tasks: list[tuple[str, dict[str, Any], str]] = [
        ("scale", STEP_OUT, "SCALE"),
        (
            "scale",
            {
                "scaleType": "SCALE_VNF",
                "scaleVnfData": [
                    {
                        "vnfInstanceId": "hn-vnf-1",
                        "scaleVnfType": "SCALE_OUT",
                        "scaleByStepData": {"aspectId": "fastpath", "numberOfSteps": 2},
                    }
                ],
            },
            "SCALE",
        ),
        (
            "scale",
            {
                "scaleType": "SCALE_NS",
                "scaleNsData": {
                    "scaleNsToLevelData": {
                        "nsScaleInfo": [
                            {"nsScalingAspectId": "nat_capacity", "nsScaleLevelId": "3"}
                        ]
                    }
                },
            },
            "SCALE",
        ),
        ("heal", {"healVnfData": [{"vnfInstanceId": "hn-vnf-1", "cause": "hn"}]}, "HEAL"),
        ("update", {"updateType": "REMOVE_VNF", "removeVnfInstanceId": ["hn-vnf-2"]}, "UPDATE"),
        ("terminate", {}, "TERMINATE"),
    ]
    for task, body, operation in tasks:
        two_nats = [nat_record("hn-vnf-1"), nat_record("hn-vnf-2")]
        target = lab.instantiated(two_nats if task == "update" else None)
        occ = lab.occ(lab.task(target, task, body))
        assert occ["lcmOperationType"] == operation and occ["operationParams"] == body
        assert occ["operationState"] == "PROCESSING"


def test_instantiate_refusals(lab: NsLab) -> None:
    problem_of(
        lab.lcm.post(f"{INSTANCES}/hn-missing/instantiate", json={"nsFlavourId": "default"}), 404
    )
    ns_id = lab.create()
    # Malformed: a required attribute missing, an unknown attribute (400).
    assert "nsFlavourId" in _refused(lab, ns_id, "instantiate", {}, 400)
    assert "nsFlavourID" in _refused(
        lab, ns_id, "instantiate", {"nsFlavourId": "default", "nsFlavourID": "x"}, 400
    )
    cases: list[tuple[dict[str, Any], str]] = [
        ({"nsFlavourId": "huge"}, "nsFlavourId"),
        ({"nsFlavourId": "default", "nsInstantiationLevelId": "medium"}, "nsInstantiationLevelId"),
        (
            {"nsFlavourId": "default", "additionalParamsForVnf": [{"vnfProfileId": "slb"}]},
            "additionalParamsForVnf[0].vnfProfileId",
        ),
        (
            {
                "nsFlavourId": "default",
                "additionalParamsForVnf": [{"vnfProfileId": "nat"}, {"vnfProfileId": "nat"}],
            },
            "additionalParamsForVnf[1].vnfProfileId",
        ),
        (
            {"nsFlavourId": "default", "additionalParamsForNs": {"vimIds": {"nat": "hn-no-vim"}}},
            "additionalParamsForNs.vimIds.nat",
        ),
        (
            {"nsFlavourId": "default", "additionalParamsForNs": {"vimIds": {"slb": "x"}}},
            "additionalParamsForNs.vimIds.slb",
        ),
        (
            {"nsFlavourId": "default", "additionalParamsForNs": {"vimIds": ["x"]}},
            "additionalParamsForNs.vimIds",
        ),
        ({"nsFlavourId": "default", "sapData": [{"sapdId": "sap_inside"}]}, "sapData"),
    ]
    for body, field in cases:
        detail = _refused(lab, ns_id, "instantiate", body, 422)
        assert detail.startswith(f"{field}:"), detail
    # Instantiating an INSTANTIATED NS: 409.
    done = lab.instantiated()
    assert "NOT_INSTANTIATED" in _refused(lab, done, "instantiate", {"nsFlavourId": "default"}, 409)


def test_instantiate_with_a_registered_vim(lab: NsLab) -> None:
    ns_id = lab.create()
    vim_id = lab.nfvo.app.state.vims.default_vim_id
    body = {"nsFlavourId": "default", "additionalParamsForNs": {"vimIds": {"nat": vim_id}}}
    assert lab.occ(lab.task(ns_id, "instantiate", body))["operationParams"] == body


def test_terminate_scale_heal_refusals(lab: NsLab) -> None:
    fresh = lab.create()
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("terminate", {}),
        ("scale", STEP_OUT),
        ("heal", {"healVnfData": [{"vnfInstanceId": "hn-vnf-1"}]}),
        ("update", {"updateType": "REMOVE_VNF", "removeVnfInstanceId": ["hn-vnf-1"]}),
    ]
    for task, body in attempts:
        assert "INSTANTIATED" in _refused(lab, fresh, task, body, 409)
    ns_id = lab.instantiated()
    assert _refused(
        lab, ns_id, "terminate", {"terminationTime": "2030-01-01T00:00:00Z"}, 422
    ).startswith("terminationTime:")
    # Scale: the request's own shape (400), then its content against the NSD (422).
    _refused(lab, ns_id, "scale", {"scaleType": "SCALE_NS"}, 400)
    _refused(lab, ns_id, "scale", {"scaleType": "SCALE_NOW", "scaleNsData": {}}, 400)
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "scale",
            {
                "scaleType": "SCALE_NS",
                "scaleNsData": {
                    "scaleNsByStepsData": {"scalingDirection": "SCALE_OUT", "aspectId": "hn"}
                },
            },
            "scaleNsData.scaleNsByStepsData.aspectId",
        ),
        (
            "scale",
            {
                "scaleType": "SCALE_NS",
                "scaleNsData": {
                    "scaleNsByStepsData": {
                        "scalingDirection": "SCALE_IN",
                        "aspectId": "nat_capacity",
                    }
                },
            },
            "scaleNsData.scaleNsByStepsData.numberOfSteps",
        ),
        (
            "scale",
            {
                "scaleType": "SCALE_NS",
                "scaleNsData": {
                    "scaleNsByStepsData": {
                        "scalingDirection": "SCALE_OUT",
                        "aspectId": "nat_capacity",
                        "numberOfSteps": 8,
                    }
                },
            },
            "scaleNsData.scaleNsByStepsData.numberOfSteps",
        ),
        (
            "scale",
            {
                "scaleType": "SCALE_NS",
                "scaleNsData": {"scaleNsToLevelData": {"nsInstantiationLevel": "medium"}},
            },
            "scaleNsData.scaleNsToLevelData.nsInstantiationLevel",
        ),
        (
            "scale",
            {
                "scaleType": "SCALE_NS",
                "scaleNsData": {
                    "scaleNsToLevelData": {
                        "nsScaleInfo": [
                            {"nsScalingAspectId": "nat_capacity", "nsScaleLevelId": "9"}
                        ]
                    }
                },
            },
            "scaleNsData.scaleNsToLevelData.nsScaleInfo[0].nsScaleLevelId",
        ),
        (
            "scale",
            {
                "scaleType": "SCALE_VNF",
                "scaleVnfData": [
                    {
                        "vnfInstanceId": "hn-other",
                        "scaleVnfType": "SCALE_IN",
                        "scaleByStepData": {"aspectId": "fastpath"},
                    }
                ],
            },
            "scaleVnfData[0].vnfInstanceId",
        ),
        (
            "heal",
            {"healVnfData": [{"vnfInstanceId": "hn-vnf-1"}, {"vnfInstanceId": "hn-other"}]},
            "healVnfData[1].vnfInstanceId",
        ),
        ("heal", {"healNsData": {"degreeHealing": "FULL"}}, "healNsData"),
    ]
    for task, body, field in cases:
        detail = _refused(lab, ns_id, task, body, 422)
        assert detail.startswith(f"{field}:"), detail
    _refused(lab, ns_id, "heal", {}, 400)


def test_update_refusals(lab: NsLab) -> None:
    ns_id = lab.instantiated()
    detail = _refused(lab, ns_id, "update", {"updateType": "ADD_SAP", "addSap": [{}]}, 422)
    assert detail.startswith("updateType:") and "ADD_SAP" in detail
    assert "HN_TYPE" in _refused(lab, ns_id, "update", {"updateType": "HN_TYPE"}, 422)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"updateType": "ADD_VNF"}, "addVnfInstance"),
        (
            {
                "updateType": "ADD_VNF",
                "addVnfInstance": [{"vnfInstanceId": "hn-new", "vnfProfileId": "nat"}],
            },
            "addVnfInstance[0].vnfProfileId",  # max_number_of_instances 1
        ),
        (
            {
                "updateType": "ADD_VNF",
                "addVnfInstance": [{"vnfInstanceId": "hn-new", "vnfProfileId": "slb"}],
            },
            "addVnfInstance[0].vnfProfileId",
        ),
        (
            {
                "updateType": "ADD_VNF",
                "addVnfInstance": [{"vnfInstanceId": "hn-vnf-1", "vnfProfileId": "nat"}],
            },
            "addVnfInstance[0].vnfInstanceId",
        ),
        ({"updateType": "REMOVE_VNF"}, "removeVnfInstanceId"),
        (
            {"updateType": "REMOVE_VNF", "removeVnfInstanceId": ["hn-vnf-1"]},
            "removeVnfInstanceId[0]",  # min_number_of_instances 1
        ),
        (
            {"updateType": "REMOVE_VNF", "removeVnfInstanceId": ["hn-other"]},
            "removeVnfInstanceId[0]",
        ),
        ({"updateType": "CHANGE_VNF_DF"}, "changeVnfFlavourData"),
        (
            {
                "updateType": "CHANGE_VNF_DF",
                "changeVnfFlavourData": [{"vnfInstanceId": "hn-other", "newFlavourId": "default"}],
            },
            "changeVnfFlavourData[0].vnfInstanceId",
        ),
    ]
    for body, field in cases:
        detail = _refused(lab, ns_id, "update", body, 422)
        assert detail.startswith(f"{field}:"), detail


def test_change_vnf_flavour_checks_the_vnfd(lab: NsLab, nat_package: dict[str, Any]) -> None:
    record = {
        **nat_record("hn-vnf-1"),
        "vnfdId": nat_package["vnfdId"],
        "instantiatedVnfInfo": {"flavourId": "default", "vnfState": "STARTED"},
    }
    ns_id = lab.instantiated([record])
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"newFlavourId": "huge"}, "changeVnfFlavourData[0].newFlavourId", "default, large"),
        ({"newFlavourId": "default"}, "changeVnfFlavourData[0].newFlavourId", "already"),
        (
            {"newFlavourId": "large", "instantiationLevelId": "small"},
            "changeVnfFlavourData[0].instantiationLevelId",
            "medium",
        ),
    ]
    for change, field, words in cases:
        data = [{"vnfInstanceId": "hn-vnf-1", **change}]
        body = {"updateType": "CHANGE_VNF_DF", "changeVnfFlavourData": data}
        detail = _refused(lab, ns_id, "update", body, 422)
        assert detail.startswith(f"{field}:") and words in detail, detail
    twice = [{"vnfInstanceId": "hn-vnf-1", "newFlavourId": "large"}] * 2
    detail = _refused(
        lab, ns_id, "update", {"updateType": "CHANGE_VNF_DF", "changeVnfFlavourData": twice}, 422
    )
    assert detail.startswith("changeVnfFlavourData[1].vnfInstanceId:") and "twice" in detail

    # A valid change starts the NS operation (the VNFM's ChangeVnfFlavour carries it out).
    body = {
        "updateType": "CHANGE_VNF_DF",
        "changeVnfFlavourData": [{"vnfInstanceId": "hn-vnf-1", "newFlavourId": "large"}],
    }
    op_id = lab.task(ns_id, "update", body)
    occ = lab.occ(op_id)
    assert occ["lcmOperationType"] == "UPDATE" and occ["operationParams"] == body
    assert lab.dispatched.calls == [(op_id, "run")]
