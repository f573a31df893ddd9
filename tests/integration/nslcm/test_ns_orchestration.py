"""NS orchestration with real LCM workers on a local VIM: a 2-VNF NS (``nat`` then
``nat_b``, which depends on it) whose second VNF cannot be instantiated.

- the occurrence goes FAILED_TEMP with the first VNF instantiated and the NS virtual links
  on the VIM; rollback removes all of it: nothing owned by the NS or its VNFs remains and
  the VIM has no leaks;
- after the cause is fixed, retry continues where it stopped (the first VNF is not created
  again) and completes; terminate then removes everything.

The cause: the second VNF's package is DISABLED, so the VNFM refuses to create its VNF
instance (SOL003: instances are created from ENABLED packages only); enabling it fixes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.celery_worker import NAT_VNFD_ID, LcmLab, lcm_lab, runnable_nat_csar
from tests.support.local_vim import leftovers, name_prefix
from tests.support.ns_lab import NsApi, onboard_nsd, set_package_state, two_nat_nsd

INSTANTIATE = {"nsFlavourId": "default", "nsInstantiationLevelId": "small"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LcmLab]:
    tmp = tmp_path_factory.mktemp("nslcm")
    prefix = name_prefix("hn")
    with lcm_lab(tmp, broker_url=None, vim_prefix=prefix) as made:
        # Two workers: NS operations run on threads, VNF operations on the solo pools.
        made.start_worker("w1")
        made.start_worker("w2")
        yield made
        assert made.vim.leaks() == []
    assert leftovers(prefix) == []


@pytest.fixture(scope="module")
def nat_b_vnfd(lab: LcmLab, tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("csars")
    lab.onboard(runnable_nat_csar(tmp / "a", vnfd_id=NAT_VNFD_ID))
    nat_b = str(uuid.uuid4())
    lab.onboard(runnable_nat_csar(tmp / "b", vnfd_id=nat_b))
    return nat_b


@pytest.fixture(scope="module")
def api(lab: LcmLab, nat_b_vnfd: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsApi]:
    nsd_id = onboard_nsd(lab, two_nat_nsd(tmp_path_factory.mktemp("nsd"), nat_b_vnfd))
    made = NsApi(lab, nsd_id)
    yield made
    made.close()


def _owned(lab: LcmLab, owner_id: str) -> list[str]:
    return [f"{r.kind} {r.name}" for r in lab.vim.list_owned(owner_id)]


def _vnf_instances(lab: LcmLab) -> list[dict[str, object]]:
    resp = lab.http.get("/vnflcm/v2/vnf_instances")
    assert resp.status_code == 200, resp.text
    listed: list[dict[str, object]] = resp.json()
    return listed


def test_failed_second_vnf_rolls_back_to_nothing(lab: LcmLab, api: NsApi, nat_b_vnfd: str) -> None:
    set_package_state(lab, nat_b_vnfd, "DISABLED")
    try:
        ns_id = api.create("hn-rollback")
        op_id = api.task(ns_id, "instantiate", INSTANTIATE)
        failed = api.wait(op_id, "FAILED_TEMP", "COMPLETED")
        assert failed["operationState"] == "FAILED_TEMP", failed
        assert "nat_b" in failed["error"]["detail"]
        # The first VNF exists (instantiated), the NS virtual links exist, owned by the NS.
        changes = failed["resourceChanges"]
        added = [v for v in changes["affectedVnfs"] if v["changeType"] == "INSTANTIATE"]
        assert [v["vnfProfileId"] for v in added] == ["nat"]
        first_vnf = str(added[0]["vnfInstanceId"])
        assert _owned(lab, first_vnf) != []
        assert {f"network ns-{ns_id[:8]}-vl{i}" for i in range(3)} <= set(_owned(lab, ns_id))

        api.op_task(op_id, "rollback")
        done = api.wait(op_id, "ROLLED_BACK", "FAILED_TEMP")
        assert done["operationState"] == "ROLLED_BACK", done
        assert _owned(lab, ns_id) == []
        assert _owned(lab, first_vnf) == []
        assert [
            v
            for v in _vnf_instances(lab)
            if str(v.get("vnfInstanceName", "")).startswith(f"ns-{ns_id}")
        ] == []
        assert lab.vim.leaks() == []
        assert api.ns(ns_id)["nsState"] == "NOT_INSTANTIATED"
    finally:
        set_package_state(lab, nat_b_vnfd, "ENABLED")


def test_retry_after_the_cause_is_fixed_completes(lab: LcmLab, api: NsApi, nat_b_vnfd: str) -> None:
    set_package_state(lab, nat_b_vnfd, "DISABLED")
    try:
        ns_id = api.create("hn-retry")
        op_id = api.task(ns_id, "instantiate", INSTANTIATE)
        failed = api.wait(op_id, "FAILED_TEMP", "COMPLETED")
        assert failed["operationState"] == "FAILED_TEMP", failed
    finally:
        set_package_state(lab, nat_b_vnfd, "ENABLED")
    mine = [
        v
        for v in _vnf_instances(lab)
        if str(v.get("vnfInstanceName", "")).startswith(f"ns-{ns_id}")
    ]
    assert len(mine) == 1
    api.op_task(op_id, "retry")
    done = api.wait(op_id, "COMPLETED", "FAILED_TEMP")
    assert done["operationState"] == "COMPLETED", done
    ns = api.ns(ns_id)
    assert ns["nsState"] == "INSTANTIATED"
    assert sorted(v["vnfProfileId"] for v in ns["vnfInstance"]) == ["nat", "nat_b"]
    # The first VNF was not created twice.
    mine = [
        v
        for v in _vnf_instances(lab)
        if str(v.get("vnfInstanceName", "")).startswith(f"ns-{ns_id}")
    ]
    assert len(mine) == 2
    assert {v["instantiationState"] for v in mine} == {"INSTANTIATED"}
    assert {vl["id"] for vl in ns["virtualLinkInfo"]} == {"inside_vl", "outside_vl", "mgmt_vl"}

    term = api.task(ns_id, "terminate", {})
    ended = api.wait(term, "COMPLETED", "FAILED_TEMP")
    assert ended["operationState"] == "COMPLETED", ended
    assert api.ns(ns_id)["nsState"] == "NOT_INSTANTIATED"
    assert _owned(lab, ns_id) == []
    for vnf in mine:
        assert _owned(lab, str(vnf["id"])) == []
    assert [
        v
        for v in _vnf_instances(lab)
        if str(v.get("vnfInstanceName", "")).startswith(f"ns-{ns_id}")
    ] == []
    assert lab.vim.leaks() == []


def test_continue_leaves_the_failed_vnf_out(lab: LcmLab, api: NsApi, nat_b_vnfd: str) -> None:
    set_package_state(lab, nat_b_vnfd, "DISABLED")
    try:
        ns_id = api.create("hn-continue")
        op_id = api.task(ns_id, "instantiate", INSTANTIATE)
        failed = api.wait(op_id, "FAILED_TEMP", "COMPLETED")
        assert failed["operationState"] == "FAILED_TEMP", failed
        api.op_task(op_id, "continue")
        done = api.wait(op_id, "PARTIALLY_COMPLETED", "FAILED_TEMP", "COMPLETED")
    finally:
        set_package_state(lab, nat_b_vnfd, "ENABLED")
    assert done["operationState"] == "PARTIALLY_COMPLETED", done
    # What was left out is said in the error.
    assert "nat_b" in done["error"]["detail"]
    ns = api.ns(ns_id)
    assert ns["nsState"] == "INSTANTIATED"
    assert [v["vnfProfileId"] for v in ns["vnfInstance"]] == ["nat"]
    term = api.task(ns_id, "terminate", {})
    assert api.wait(term, "COMPLETED", "FAILED_TEMP")["operationState"] == "COMPLETED"
    assert _owned(lab, ns_id) == []
    assert lab.vim.leaks() == []


def _fastpath_level(vnf: dict[str, object]) -> int:
    info = vnf["instantiatedVnfInfo"]
    assert isinstance(info, dict)
    return int(next(s["scaleLevel"] for s in info["scaleStatus"] if s["aspectId"] == "fastpath"))


def test_scale_and_heal_map_to_vnf_operations(lab: LcmLab, api: NsApi) -> None:
    ns_id = api.create("hn-scale")
    op_id = api.task(ns_id, "instantiate", INSTANTIATE)
    done = api.wait(op_id, "COMPLETED", "FAILED_TEMP")
    assert done["operationState"] == "COMPLETED", done.get("error")

    # SCALE_NS by one step of nat_capacity: both NAT profiles' fast paths to level 1.
    scale = {
        "scaleType": "SCALE_NS",
        "scaleNsData": {
            "scaleNsByStepsData": {"scalingDirection": "SCALE_OUT", "aspectId": "nat_capacity"}
        },
    }
    done = api.wait(api.task(ns_id, "scale", scale), "COMPLETED", "FAILED_TEMP")
    assert done["operationState"] == "COMPLETED", done.get("error")
    ns = api.ns(ns_id)
    assert ns["nsScaleStatus"] == [{"nsScalingAspectId": "nat_capacity", "nsScaleLevelId": "1"}]
    assert [_fastpath_level(v) for v in ns["vnfInstance"]] == [1, 1]

    # SCALE_VNF: the first NAT back in by one step; HEAL it.
    first = str(ns["vnfInstance"][0]["id"])
    scale_vnf = {
        "scaleType": "SCALE_VNF",
        "scaleVnfData": [
            {
                "vnfInstanceId": first,
                "scaleVnfType": "SCALE_IN",
                "scaleByStepData": {"aspectId": "fastpath"},
            }
        ],
    }
    done = api.wait(api.task(ns_id, "scale", scale_vnf), "COMPLETED", "FAILED_TEMP")
    assert done["operationState"] == "COMPLETED", done.get("error")
    levels = {str(v["id"]): _fastpath_level(v) for v in api.ns(ns_id)["vnfInstance"]}
    assert levels[first] == 0 and sorted(levels.values()) == [0, 1]

    # SCALE_NS to the NS instantiation level "large": every NAT fast path to level 3.
    to_level = {
        "scaleType": "SCALE_NS",
        "scaleNsData": {"scaleNsToLevelData": {"nsInstantiationLevel": "large"}},
    }
    done = api.wait(api.task(ns_id, "scale", to_level), "COMPLETED", "FAILED_TEMP")
    assert done["operationState"] == "COMPLETED", done.get("error")
    ns = api.ns(ns_id)
    assert ns["nsInstantiationLevelId"] == "large"
    assert [_fastpath_level(v) for v in ns["vnfInstance"]] == [3, 3]
    # NS level large deploys what nat_capacity level 3 does: scaling goes on from 3.
    assert ns["nsScaleStatus"] == [{"nsScalingAspectId": "nat_capacity", "nsScaleLevelId": "3"}]

    heal = {"healVnfData": [{"vnfInstanceId": first, "cause": "hn: operator request"}]}
    done = api.wait(api.task(ns_id, "heal", heal), "COMPLETED", "FAILED_TEMP")
    assert done["operationState"] == "COMPLETED", done.get("error")

    term = api.task(ns_id, "terminate", {})
    assert api.wait(term, "COMPLETED", "FAILED_TEMP")["operationState"] == "COMPLETED"
    assert _owned(lab, ns_id) == []
    assert lab.vim.leaks() == []


def test_cancel_stops_at_a_step_boundary_then_rollback(lab: LcmLab, api: NsApi) -> None:
    ns_id = api.create("hn-cancel")
    op_id = api.task(ns_id, "instantiate", INSTANTIATE)
    resp = api.http.post(
        f"/nslcm/v2/ns_lcm_op_occs/{op_id}/cancel", json={"cancelMode": "GRACEFUL"}
    )
    assert resp.status_code == 202, resp.text
    stopped = api.wait(op_id, "FAILED_TEMP", "COMPLETED")
    # Two VNFs one after the other: the cancellation takes effect before the second at most.
    assert stopped["operationState"] == "FAILED_TEMP", stopped
    assert stopped["isCancelPending"] is False
    assert "cancelled" in stopped["error"]["detail"]
    api.op_task(op_id, "rollback")
    done = api.wait(op_id, "ROLLED_BACK", "FAILED_TEMP")
    assert done["operationState"] == "ROLLED_BACK", done.get("error")
    assert _owned(lab, ns_id) == []
    assert [
        v
        for v in _vnf_instances(lab)
        if str(v.get("vnfInstanceName", "")).startswith(f"ns-{ns_id}")
    ] == []
    assert lab.vim.leaks() == []
