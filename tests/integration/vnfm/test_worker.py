"""LCM operations run by a real Celery worker process, on a real broker and the local VIM.

The NFVO service runs in this process (over HTTP on loopback), the worker in another, both on
one SQLite database; the VNF is the NAT package with VDUs that run an HTTP server. Needs root.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.celery_worker import (
    INSTANCES,
    PKGM_VERSION,
    PKGS,
    LcmLab,
    lcm_lab,
    runnable_nat_csar,
)
from vim_adapters.local import processes
from vnfm import planner

FINAL = ("COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK")


@pytest.fixture(params=["redis", "embedded"])
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LcmLab]:
    """A lab on Redis (production broker) and on the embedded SQLite broker."""
    url = request.getfixturevalue("redis").url if request.param == "redis" else None
    with lcm_lab(tmp_path, broker_url=url) as made:
        yield made


def _units(lab: LcmLab, instance_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for vdu in ("nat_fastpath", "nat_slowpath"):
        unit = lab.vim.get_unit(planner.unit_name(instance_id, vdu))
        if unit is not None:
            assert unit.ready, unit.replicas
            counts[vdu] = len(unit.replicas)
    return counts


def test_instantiate_and_terminate(lab: LcmLab, tmp_path: Path) -> None:
    vnfd_id = str(uuid.uuid4())
    lab.onboard(runnable_nat_csar(tmp_path, vnfd_id=vnfd_id))
    worker = lab.start_worker("w1")
    instance_id = lab.create_instance(vnfd_id)

    op_id = lab.start(
        instance_id, "instantiate", {"flavourId": "default", "instantiationLevelId": "medium"}
    )
    op = lab.wait_op(op_id, "COMPLETED", "FAILED_TEMP", "ROLLED_BACK")
    assert op["operationState"] == "COMPLETED", op
    assert op["operation"] == "INSTANTIATE"
    assert op.get("grantId"), "the worker asked the NFVO for a grant"
    assert "error" not in op
    added = {v["id"] for v in op["resourceChanges"]["affectedVnfcs"]}
    assert len(added) == 3
    instance = lab.instance(instance_id)
    assert instance["instantiationState"] == "INSTANTIATED"
    info = instance["instantiatedVnfInfo"]
    assert {r["id"] for r in info["vnfcResourceInfo"]} == added
    assert _units(lab, instance_id) == {"nat_fastpath": 2, "nat_slowpath": 1}
    assert {r.owner.lcm_op_id for r in lab.vim.list_owned(instance_id)} == {op_id}
    assert lab.vim.leaks() == []

    op_id = lab.start(instance_id, "terminate", {"terminationType": "FORCEFUL"})
    op = lab.wait_op(op_id, "COMPLETED", "FAILED_TEMP")
    assert op["operationState"] == "COMPLETED", op
    assert lab.instance(instance_id)["instantiationState"] == "NOT_INSTANTIATED"
    assert lab.vim.list_owned(instance_id) == []
    assert lab.vim.leaks() == []
    assert worker.alive()


def test_failures_are_recorded(lab: LcmLab, tmp_path: Path) -> None:
    """A refused plan ends in STARTING (nothing touched); a failing step in FAILED_TEMP."""
    vnfd_id = str(uuid.uuid4())
    lab.onboard(runnable_nat_csar(tmp_path, vnfd_id=vnfd_id))
    lab.start_worker("w1")
    instance_id = lab.create_instance(vnfd_id)

    # No such flavour: the grant request cannot be built, so the operation never starts.
    op_id = lab.start(instance_id, "instantiate", {"flavourId": "no-such-flavour"})
    op = lab.wait_op(op_id, "ROLLED_BACK", "FAILED_TEMP", "COMPLETED")
    assert op["operationState"] == "ROLLED_BACK", op
    assert op["error"]["status"] == 422
    assert "no-such-flavour" in op["error"]["detail"]
    assert lab.vim.list_owned(instance_id) == []

    # Granted, then a step fails: the ext virtual link names a VIM network that is not there.
    body = {
        "flavourId": "default",
        "extVirtualLinks": [
            {
                "id": "outside",
                "resourceId": "no-such-network",
                "extCps": [{"cpdId": "nat_outside"}],
            }
        ],
    }
    op_id = lab.start(instance_id, "instantiate", body)
    op = lab.wait_op(op_id, "FAILED_TEMP", "COMPLETED", "ROLLED_BACK")
    assert op["operationState"] == "FAILED_TEMP", op
    assert op.get("grantId")
    assert op["error"]["status"] >= 400 and op["error"]["detail"], op["error"]
    # Rolling back removes whatever the failed attempt made.
    lab.op_task(op_id, "rollback")
    op = lab.wait_op(op_id, "ROLLED_BACK", "FAILED_TEMP")
    assert op["operationState"] == "ROLLED_BACK", op
    assert lab.vim.list_owned(instance_id) == []
    assert lab.vim.leaks() == []


def _usage(lab: LcmLab, vnfd_id: str) -> str:
    packages = lab.http.get(
        PKGS, params={"filter": f"(eq,vnfdId,{vnfd_id})"}, headers={"Version": PKGM_VERSION}
    ).json()
    return str(packages[0]["usageState"])


def test_operate_and_modify_info(lab: LcmLab, tmp_path: Path) -> None:
    """OPERATE is granted like any other task; MODIFY_INFO needs no grant (SOL003)."""
    vnfd_id, other_vnfd_id = str(uuid.uuid4()), str(uuid.uuid4())
    for made in (vnfd_id, other_vnfd_id):
        lab.onboard(runnable_nat_csar(tmp_path, vnfd_id=made))
    lab.start_worker("w1")
    instance_id = lab.create_instance(vnfd_id)
    op = lab.wait_op(lab.start(instance_id, "instantiate", {"flavourId": "default"}), *FINAL)
    assert op["operationState"] == "COMPLETED", op
    replicas = [
        record.netns
        for vdu in ("nat_fastpath", "nat_slowpath")
        for record in lab.vim.store.load().units[planner.unit_name(instance_id, vdu)].replicas
    ]

    op = lab.wait_op(lab.start(instance_id, "operate", {"changeStateTo": "STOPPED"}), *FINAL)
    assert op["operationState"] == "COMPLETED", op
    assert op.get("grantId")
    assert lab.instance(instance_id)["instantiatedVnfInfo"]["vnfState"] == "STOPPED"
    assert all(processes.processes_in_netns(ns) == [] for ns in replicas)

    resp = lab.http.patch(
        f"{INSTANCES}/{instance_id}",
        json={"vnfdId": other_vnfd_id, "vnfInstanceName": "moved"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 202, resp.text
    op = lab.wait_op(resp.headers["Location"].rsplit("/", 1)[1], *FINAL)
    assert op["operationState"] == "COMPLETED", op
    assert op["operation"] == "MODIFY_INFO" and "grantId" not in op
    assert op["changedInfo"] == {"vnfInstanceName": "moved", "vnfdId": other_vnfd_id}
    instance = lab.instance(instance_id)
    assert instance["vnfdId"] == other_vnfd_id and instance["vnfInstanceName"] == "moved"
    # The worker moved the instance's package usage along.
    assert _usage(lab, other_vnfd_id) == "IN_USE" and _usage(lab, vnfd_id) == "NOT_IN_USE"

    op = lab.wait_op(lab.start(instance_id, "operate", {"changeStateTo": "STARTED"}), *FINAL)
    assert op["operationState"] == "COMPLETED", op
    assert lab.instance(instance_id)["instantiatedVnfInfo"]["vnfState"] == "STARTED"
    assert all(processes.processes_in_netns(ns) for ns in replicas)
    assert _units(lab, instance_id) == {"nat_fastpath": 1, "nat_slowpath": 1}

    op = lab.wait_op(lab.start(instance_id, "terminate", {"terminationType": "FORCEFUL"}), *FINAL)
    assert op["operationState"] == "COMPLETED", op
    assert lab.vim.list_owned(instance_id) == []
