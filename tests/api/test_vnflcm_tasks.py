"""VNF LCM tasks and operation occurrences over real HTTP, on a real local VIM (needs root).

Operations run through `tests.support.lcm_runner.LcmRunner`: the worker's steps (claim,
grant, execute, report) on a thread of the test process instead of a Celery worker.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import PKGS, Nfvo
from tests.support.callback_server import running_consumer
from tests.support.etsi_schema import validate
from tests.support.lcm_runner import LcmRunner
from tests.support.local_vim import local_vim
from vim_adapters.interface import ReplicaState
from vim_adapters.local.adapter import LocalVim
from vnfm import planner
from vnfm.schemas import API_VERSION, VnfInstance, VnfLcmOpOcc

INSTANCES = "/vnflcm/v2/vnf_instances"
OP_OCCS = "/vnflcm/v2/vnf_lcm_op_occs"
SOL003 = "nfv-sol002-sol003/SOL003"
LCM_DEFS = f"{SOL003}/VNFLifecycleManagement/definitions/SOL003VNFLifecycleManagement_def.yaml"
LCM_NOTIFICATION_DEFS = (
    f"{SOL003}/VNFLifecycleManagementNotification/definitions/"
    "SOL003VNFLifecycleManagementNotification_def.yaml"
)
SMALL = {"flavourId": "default", "instantiationLevelId": "small"}
TASK_LINKS = {"retry", "rollback", "fail", "cancel"}


@pytest.fixture(scope="module", autouse=True)
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the LCM task tests drive the local VIM: run them as root", pytrace=False)


@dataclass
class Lab:
    """A running NFVO whose LCM operations run on a local VIM, and an LCM client."""

    nfvo: Nfvo
    vim: LocalVim
    runner: LcmRunner
    lcm: httpx.Client
    vnfd_id: str

    def create(self) -> str:
        resp = self.lcm.post(INSTANCES, json={"vnfdId": self.vnfd_id})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def task(self, instance_id: str, task: str, body: dict[str, Any]) -> str:
        """POST a task; the new occurrence's id (from Location)."""
        resp = self.lcm.post(f"{INSTANCES}/{instance_id}/{task}", json=body)
        assert resp.status_code == 202, resp.text
        assert resp.content == b""
        location = resp.headers["Location"]
        assert location.startswith(f"{self.nfvo.url}{OP_OCCS}/")
        return location.rsplit("/", 1)[1]

    def op_occ(self, op_id: str) -> dict[str, Any]:
        resp = self.lcm.get(f"{OP_OCCS}/{op_id}")
        assert resp.status_code == 200, resp.text
        return checked(resp.json())

    def wait(self, op_id: str, *states: str, timeout: float = 120.0) -> dict[str, Any]:
        """Poll the occurrence until it is in one of ``states``."""
        deadline = time.monotonic() + timeout
        while True:
            occ = self.op_occ(op_id)
            if occ["operationState"] in states:
                return occ
            assert time.monotonic() < deadline, f"{op_id} stuck in {occ['operationState']}"
            time.sleep(0.1)

    def run(self, instance_id: str, task: str, body: dict[str, Any]) -> dict[str, Any]:
        """A task that must complete; its final occurrence."""
        occ = self.wait(
            self.task(instance_id, task, body), "COMPLETED", "FAILED_TEMP", "ROLLED_BACK"
        )
        assert occ["operationState"] == "COMPLETED", occ.get("error")
        return occ

    def instance(self, instance_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.lcm.get(f"{INSTANCES}/{instance_id}").json()
        VnfInstance.model_validate(body)
        validate(LCM_DEFS, "VnfInstance", body)
        return body


def checked(occ: dict[str, Any]) -> dict[str, Any]:
    """Valid as the project's VnfLcmOpOcc and as the ETSI schema says."""
    VnfLcmOpOcc.model_validate(occ)
    validate(LCM_DEFS, "VnfLcmOpOcc", occ)
    return occ


@contextmanager
def nat_lcm_lab(nfvo: Nfvo, sample_csars: dict[str, Path], tmp_path: Path) -> Iterator[Lab]:
    """The NAT package ENABLED, a local VIM, operations run in process; no leaks after."""
    admin = nfvo.client()
    info = nfvo.onboard(admin, sample_csars["nat"])
    admin.patch(f"{PKGS}/{info['id']}", json={"operationalState": "ENABLED"})
    with local_vim(tmp_path / "vim") as vim:
        runner = LcmRunner.for_app(nfvo.app, vim, nfvo.url)
        nfvo.app.state.dispatch = runner
        yield Lab(nfvo, vim, runner, nfvo.client("lcm", version=API_VERSION), str(info["vnfdId"]))
        runner.join()
        assert vim.leaks() == []


@pytest.fixture
def lab(nfvo: Nfvo, sample_csars: dict[str, Path], tmp_path: Path) -> Iterator[Lab]:
    with nat_lcm_lab(nfvo, sample_csars, tmp_path) as made:
        yield made


def _scale_level(instance: dict[str, Any]) -> int:
    status = instance["instantiatedVnfInfo"]["scaleStatus"]
    return int(next(s["scaleLevel"] for s in status if s["aspectId"] == "fastpath"))


def _kill_fastpath(vim: LocalVim, instance_id: str) -> str:
    """SIGKILL the process of fast path replica 0; its replica id once the VIM sees it failed."""
    name = planner.unit_name(instance_id, "nat_fastpath")
    record = vim.store.load().units[name].replica(0)
    assert record is not None
    os.kill(record.processes[0].pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        unit = vim.get_unit(name)
        assert unit is not None
        replica = next(r for r in unit.replicas if r.index == 0)
        if replica.state is ReplicaState.FAILED:
            return replica.id
        assert time.monotonic() < deadline, f"{replica.id} still {replica.state}"
        time.sleep(0.1)


def test_nat_lifecycle(lab: Lab) -> None:
    lcm = lab.lcm
    with running_consumer() as consumer:
        sub = lcm.post(
            "/vnflcm/v2/subscriptions",
            json={
                "callbackUri": f"{consumer.url}/lcm",
                "filter": {
                    "notificationTypes": ["VnfLcmOperationOccurrenceNotification"],
                    "operationTypes": ["INSTANTIATE"],
                },
            },
        )
        assert sub.status_code == 201, sub.text
        instance_id = lab.create()

        # While the instantiation is held back, the instance is busy: a second task gets 409.
        with lab.runner.hold():
            op_id = lab.task(instance_id, "instantiate", SMALL)
            starting = lab.op_occ(op_id)
            assert starting["operationState"] == "STARTING"
            assert starting["operation"] == "INSTANTIATE"
            assert starting["operationParams"] == SMALL
            assert set(starting["_links"]) & TASK_LINKS == {"cancel"}
            again = lcm.post(f"{INSTANCES}/{instance_id}/instantiate", json=SMALL)
            assert again.status_code == 409
            assert op_id in again.json()["detail"]
            scale = lcm.post(
                f"{INSTANCES}/{instance_id}/scale",
                json={"type": "SCALE_OUT", "aspectId": "fastpath"},
            )
            assert scale.status_code == 409 and "NOT_INSTANTIATED" in scale.json()["detail"]
            busy = lcm.delete(f"{INSTANCES}/{instance_id}")
            assert busy.status_code == 409
        done = lab.wait(op_id, "COMPLETED", "FAILED_TEMP", "ROLLED_BACK")
        assert done["operationState"] == "COMPLETED", done.get("error")
        assert done["grantId"] and done["_links"]["grant"]["href"].endswith(done["grantId"])
        assert set(done["_links"]) & TASK_LINKS == set()
        assert "error" not in done
        vnfcs = {v["vduId"]: v["changeType"] for v in done["resourceChanges"]["affectedVnfcs"]}
        assert vnfcs == {"nat_fastpath": "ADDED", "nat_slowpath": "ADDED"}

        instance = lab.instance(instance_id)
        assert instance["instantiationState"] == "INSTANTIATED"
        info = instance["instantiatedVnfInfo"]
        assert info["flavourId"] == "default" and info["vnfState"] == "STARTED"
        assert _scale_level(instance) == 0
        assert "terminate" in instance["_links"] and "instantiate" not in instance["_links"]

        posts = consumer.wait_posts(3)
        seen = set()
        for post in posts:
            body = post.body
            validate(LCM_NOTIFICATION_DEFS, body["notificationType"], body)
            assert body["vnfLcmOpOccId"] == op_id
            seen.add((body["operationState"], body["notificationStatus"]))
        assert seen == {("STARTING", "START"), ("PROCESSING", "START"), ("COMPLETED", "RESULT")}

    retried = lcm.post(f"{OP_OCCS}/{op_id}/retry")
    assert retried.status_code == 409
    assert "COMPLETED" in retried.json()["detail"] and "final" in retried.json()["detail"]

    out = lab.run(instance_id, "scale", {"type": "SCALE_OUT", "aspectId": "fastpath"})
    assert _scale_level(lab.instance(instance_id)) == 1
    added = out["resourceChanges"]["affectedVnfcs"]
    assert [(v["vduId"], v["changeType"]) for v in added] == [("nat_fastpath", "ADDED")]
    lab.run(instance_id, "scale", {"type": "SCALE_IN", "aspectId": "fastpath"})
    assert _scale_level(lab.instance(instance_id)) == 0
    lab.run(instance_id, "scale_to_level", {"instantiationLevelId": "large"})
    assert _scale_level(lab.instance(instance_id)) == 3

    killed = _kill_fastpath(lab.vim, instance_id)
    healed = lab.run(instance_id, "heal", {"cause": "fast path died"})
    assert [(v["id"], v["changeType"]) for v in healed["resourceChanges"]["affectedVnfcs"]] == [
        (killed, "MODIFIED")
    ]
    states = {v["vnfcState"] for v in lab.instance(instance_id)["instantiatedVnfInfo"]["vnfcInfo"]}
    assert states == {"STARTED"}

    listed = lcm.get(OP_OCCS, params={"filter": f"(eq,vnfInstanceId,{instance_id})"})
    assert listed.status_code == 200
    ops = [checked(occ) for occ in listed.json()]
    assert [o["operation"] for o in ops] == [
        "INSTANTIATE",
        "SCALE",
        "SCALE",
        "SCALE_TO_LEVEL",
        "HEAL",
    ]
    assert all("operationParams" not in o and "resourceChanges" not in o for o in ops)
    full = lcm.get(OP_OCCS, params={"filter": "(eq,operation,HEAL)", "all_fields": ""}).json()
    assert [o["id"] for o in full] == [healed["id"]] and "resourceChanges" in full[0]
    assert lcm.get(OP_OCCS, params={"filter": "(eq,nope,1)"}).status_code == 400

    lab.run(
        instance_id, "terminate", {"terminationType": "GRACEFUL", "gracefulTerminationTimeout": 5}
    )
    instance = lab.instance(instance_id)
    assert instance["instantiationState"] == "NOT_INSTANTIATED"
    assert "instantiatedVnfInfo" not in instance
    assert lab.vim.list_owned(instance_id) == []
    assert lcm.delete(f"{INSTANCES}/{instance_id}").status_code == 204


def test_failures_rollback_and_fail(lab: Lab) -> None:
    lcm = lab.lcm
    instance_id = lab.create()
    missing = {"id": "ext-mgmt", "resourceId": "no-such-network", "extCps": [{"cpdId": "nat_mgmt"}]}
    broken = {**SMALL, "extVirtualLinks": [missing]}

    op_id = lab.task(instance_id, "instantiate", broken)
    failed = lab.wait(op_id, "FAILED_TEMP", "COMPLETED", "ROLLED_BACK")
    assert failed["operationState"] == "FAILED_TEMP"
    assert "no-such-network" in failed["error"]["detail"]
    assert set(failed["_links"]) & TASK_LINKS == {"retry", "rollback", "fail"}
    assert lab.vim.list_owned(instance_id), "networks made before the unit failed"
    # Still busy: a FAILED_TEMP occurrence is not final.
    assert lcm.post(f"{INSTANCES}/{instance_id}/instantiate", json=SMALL).status_code == 409

    assert lcm.post(f"{OP_OCCS}/{op_id}/rollback").status_code == 202
    rolled = lab.wait(op_id, "ROLLED_BACK", "FAILED_TEMP")
    assert rolled["operationState"] == "ROLLED_BACK"
    assert set(rolled["_links"]) & TASK_LINKS == set()
    assert lab.vim.list_owned(instance_id) == []
    assert lab.instance(instance_id)["instantiationState"] == "NOT_INSTANTIATED"

    # Another failed one, failed for good: 200 with the occurrence.
    op_id = lab.task(instance_id, "instantiate", broken)
    lab.wait(op_id, "FAILED_TEMP")
    given_up = lcm.post(f"{OP_OCCS}/{op_id}/fail")
    assert given_up.status_code == 200, given_up.text
    final = checked(given_up.json())
    assert final["operationState"] == "FAILED" and "no-such-network" in final["error"]["detail"]
    assert lab.op_occ(op_id)["operationState"] == "FAILED"
    assert lcm.post(f"{OP_OCCS}/{op_id}/fail").status_code == 409
    assert lab.instance(instance_id)["instantiationState"] == "NOT_INSTANTIATED"

    # A new instantiation clears what the failed one left.
    lab.run(instance_id, "instantiate", SMALL)

    # A scale that fails while processing (its unit is gone from the VIM): no rollback task.
    lab.vim.delete_unit(planner.unit_name(instance_id, "nat_fastpath"))
    op_id = lab.task(instance_id, "scale", {"type": "SCALE_OUT", "aspectId": "fastpath"})
    failed = lab.wait(op_id, "FAILED_TEMP", "COMPLETED", "ROLLED_BACK")
    assert failed["operationState"] == "FAILED_TEMP", failed
    assert set(failed["_links"]) & TASK_LINKS == {"retry", "fail"}
    refused = lcm.post(f"{OP_OCCS}/{op_id}/rollback")
    assert refused.status_code == 404 and "not supported" in refused.json()["detail"]
    assert lcm.post(f"{OP_OCCS}/{op_id}/fail").status_code == 200
    assert lab.instance(instance_id)["instantiationState"] == "INSTANTIATED"

    lab.run(instance_id, "terminate", {"terminationType": "FORCEFUL"})
    assert lab.vim.list_owned(instance_id) == []


def test_cancel_before_a_worker_starts(lab: Lab) -> None:
    lcm = lab.lcm
    instance_id = lab.create()
    with lab.runner.hold():
        op_id = lab.task(instance_id, "instantiate", SMALL)
        bad = lcm.post(f"{OP_OCCS}/{op_id}/cancel", json={"cancelMode": "SOON"})
        assert bad.status_code == 400
        assert (
            lcm.post(f"{OP_OCCS}/{op_id}/cancel", json={"cancelMode": "FORCEFUL"}).status_code
            == 202
        )
        cancelled = lab.op_occ(op_id)
        assert cancelled["operationState"] == "ROLLED_BACK"
        assert cancelled["isCancelPending"] is False and "cancelMode" not in cancelled
    lab.runner.join()
    # The worker found nothing to do; the instance is free again.
    assert lab.op_occ(op_id)["operationState"] == "ROLLED_BACK"
    assert lab.vim.list_owned(instance_id) == []
    assert lcm.post(f"{OP_OCCS}/{op_id}/cancel", json={"cancelMode": "FORCEFUL"}).status_code == 409
    assert lcm.delete(f"{INSTANCES}/{instance_id}").status_code == 204


def test_refused_requests(lab: Lab) -> None:
    lcm = lab.lcm
    instance_id = lab.create()
    typo = lcm.post(f"{INSTANCES}/{instance_id}/instantiate", json={"flavourID": "default"})
    assert typo.status_code == 400 and "flavourI" in typo.json()["detail"]
    steps = lcm.post(
        f"{INSTANCES}/{instance_id}/scale",
        json={"type": "SCALE_OUT", "aspectId": "fastpath", "numberOfSteps": 0},
    )
    assert steps.status_code == 400 and "numberOfSteps" in steps.json()["detail"]
    for task, body in (
        ("terminate", {"terminationType": "FORCEFUL"}),
        ("heal", {}),
        ("scale_to_level", {"instantiationLevelId": "large"}),
        ("operate", {"changeStateTo": "STARTED"}),
        ("change_ext_conn", {"extVirtualLinks": []}),
    ):
        refused = lcm.post(f"{INSTANCES}/{instance_id}/{task}", json=body)
        assert refused.status_code == 409, task
        assert "NOT_INSTANTIATED" in refused.json()["detail"]
    unknown = lcm.post(f"{INSTANCES}/no-such-instance/instantiate", json=SMALL)
    assert unknown.status_code == 404
    missing = lcm.post(f"{INSTANCES}/{instance_id}/operate", json={})
    assert missing.status_code == 400 and "changeStateTo" in missing.json()["detail"]
    change = lcm.post(f"{INSTANCES}/{instance_id}/change_flavour", json={"newFlavourId": "large"})
    assert change.status_code == 409 and "NOT_INSTANTIATED" in change.json()["detail"]
    assert lcm.get(f"{OP_OCCS}/no-such-op").status_code == 404
    assert lcm.post(f"{OP_OCCS}/no-such-op/retry").status_code == 404
    reader = lab.nfvo.client("lcm-reader", version=API_VERSION)
    assert reader.post(f"{INSTANCES}/{instance_id}/instantiate", json=SMALL).status_code == 403
    assert reader.get(OP_OCCS).status_code == 200
    assert lab.runner.calls == []
