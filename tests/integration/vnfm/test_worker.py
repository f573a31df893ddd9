"""LCM operations run by a real Celery worker process, on a real broker and the local VIM.

The NFVO service runs in this process (over HTTP on loopback), the worker in another, both on
one SQLite database; the VNF is the NAT package with VDUs that run an HTTP server. Needs root.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.celery_worker import LcmLab, lcm_lab, runnable_nat_csar
from vnfm import planner


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
