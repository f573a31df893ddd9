"""A worker killed (SIGKILL) in the middle of a CHANGE_FLAVOUR: recovery, retry, rollback.

As in test_crash.py: the killed worker's lease expires, recovery moves the occurrence to
FAILED_TEMP, and the instance still says the old flavour (it is rewritten only when the
change completes). A retry converges on the new flavour without duplicates; a rollback puts
the old one back. The NAT (runnable copy) goes from `default` to `large` at level `large`:
four fast paths, replaced one at a time, which is long enough to be killed half way.
Real Redis broker, real worker processes, local VIM; root.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.vnfm.test_crash import RECOVERY_TIMEOUT, short_lease_lab
from tests.support.celery_worker import CeleryWorker, LcmLab, kill_hard, runnable_nat_csar
from tests.support.redis_server import RedisServer
from vim_adapters.interface import ReplicaState
from vim_adapters.local import netns
from vnfm import planner

TO_LARGE = {"newFlavourId": "large", "instantiationLevelId": "large"}


@pytest.fixture
def lab(redis: RedisServer, tmp_path: Path) -> Iterator[LcmLab]:
    with short_lease_lab(redis, tmp_path, "hf") as made:
        yield made


def _namespaces(lab: LcmLab) -> list[str]:
    return netns.list_names(f"{lab.vim.prefix}-")


def _fastpath(lab: LcmLab, instance_id: str) -> tuple[float, int]:
    unit = lab.vim.get_unit(planner.unit_name(instance_id, "nat_fastpath"))
    assert unit is not None and unit.ready, unit
    return unit.spec.cpu, len(unit.replicas)


def _nat(lab: LcmLab, tmp_path: Path) -> str:
    vnfd_id = str(uuid.uuid4())
    lab.onboard(runnable_nat_csar(tmp_path, vnfd_id=vnfd_id))
    instance_id = lab.create_instance(vnfd_id)
    body = {"flavourId": "default", "instantiationLevelId": "large"}
    op = lab.wait_op(lab.start(instance_id, "instantiate", body), "COMPLETED", "FAILED_TEMP")
    assert op["operationState"] == "COMPLETED", op
    assert _fastpath(lab, instance_id) == (2.0, 4)
    return instance_id


def _waiting_for_a_replaced_replica(lab: LcmLab, nat: str, op_id: str) -> bool:
    """A replica the change replaced is built and running, not ready yet: the worker waits.

    The kill lands between two replacements (tests/integration/local_vim covers kills while
    replicas are made).
    """
    replaced = {
        r.name
        for r in lab.vim.list_owned(nat)
        if r.kind == "replica" and r.owner.lcm_op_id == op_id
    }
    unit = lab.vim.get_unit(planner.unit_name(nat, "nat_fastpath"))
    return unit is not None and any(
        r.id in replaced and r.state is ReplicaState.RUNNING for r in unit.replicas
    )


def _killed_half_way(lab: LcmLab, worker: CeleryWorker, nat: str) -> str:
    """Start the change; SIGKILL the worker half way through it; FAILED_TEMP after."""
    op_id = lab.start(nat, "change_flavour", TO_LARGE)
    deadline = time.monotonic() + 60
    while True:
        state = lab.op(op_id)["operationState"]
        assert state in ("STARTING", "PROCESSING"), f"op {op_id} went {state} before the kill"
        if state == "PROCESSING" and _waiting_for_a_replaced_replica(lab, nat, op_id):
            break
        assert time.monotonic() < deadline, "the change never got half way"
        time.sleep(0.02)
    kill_hard(worker)
    assert not worker.alive()
    assert lab.op(op_id)["operationState"] == "PROCESSING"
    lab.start_worker("w2")
    op = lab.wait_op(op_id, "FAILED_TEMP", "COMPLETED", "ROLLED_BACK", timeout=RECOVERY_TIMEOUT)
    assert op["operationState"] == "FAILED_TEMP", op
    assert "lost" in op["error"]["detail"]
    # Not completed: the instance is still on record with its old flavour.
    assert lab.instance(nat)["instantiatedVnfInfo"]["flavourId"] == "default"
    return op_id


def test_change_flavour_killed_then_retried(lab: LcmLab, tmp_path: Path) -> None:
    first = lab.start_worker("w1")
    nat = _nat(lab, tmp_path)
    op_id = _killed_half_way(lab, first, nat)
    lab.op_task(op_id, "retry")
    op = lab.wait_op(op_id, "COMPLETED", "FAILED_TEMP", timeout=180)
    assert op["operationState"] == "COMPLETED", op.get("error")
    info = lab.instance(nat)["instantiatedVnfInfo"]
    assert info["flavourId"] == "large"
    assert info["scaleStatus"] == [{"aspectId": "fastpath", "scaleLevel": 3}]
    assert _fastpath(lab, nat) == (4.0, 4)
    # No duplicates: one namespace per replica.
    assert len(_namespaces(lab)) == 5
    assert lab.vim.leaks() == []


def test_change_flavour_killed_then_rolled_back(lab: LcmLab, tmp_path: Path) -> None:
    first = lab.start_worker("w1")
    nat = _nat(lab, tmp_path)
    before = lab.instance(nat)["instantiatedVnfInfo"]
    op_id = _killed_half_way(lab, first, nat)
    lab.op_task(op_id, "rollback")
    op = lab.wait_op(op_id, "ROLLED_BACK", "FAILED_TEMP", timeout=180)
    assert op["operationState"] == "ROLLED_BACK", op.get("error")
    assert lab.instance(nat)["instantiatedVnfInfo"] == before
    assert _fastpath(lab, nat) == (2.0, 4)
    unit = lab.vim.get_unit(planner.unit_name(nat, "nat_fastpath"))
    assert unit is not None and unit.spec.memory_mib == 1024
    assert len(_namespaces(lab)) == 5
    assert lab.vim.leaks() == []
