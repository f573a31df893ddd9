"""A worker killed (SIGKILL) in the middle of an LCM operation: recovery, retry, rollback.

docs/lcm.md, "Crashes": tasks are acknowledged early, so nothing redelivers the killed
worker's task; its lease expires and recovery (in any live worker) moves the occurrence to
FAILED_TEMP. A retry then converges on the VIM without duplicates, a rollback removes
exactly what the operation made, and `fail` leaves what is there for a terminate to remove.
INSTANTIATE, SCALE, HEAL and TERMINATE are each killed half way. Real Redis broker, real
worker processes, local VIM; root.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.celery_worker import CeleryWorker, LcmLab, kill_hard, lcm_lab, runnable_nat_csar
from tests.support.local_vim import name_prefix
from tests.support.redis_server import RedisServer
from vim_adapters.local import netns, processes
from vim_adapters.local.adapter import LocalVim
from vim_adapters.local.state import ReplicaRecord
from vnfm import planner
from vnfm.executor import HEAL_VNFC_PARAM

LEASE_SECONDS = 3.0
# Recovery runs every lease/2 in each worker: a lost lease is settled well within this.
RECOVERY_TIMEOUT = 6 * LEASE_SECONDS + 10


@contextmanager
def short_lease_lab(redis: RedisServer, tmp_path: Path, prefix: str) -> Iterator[LcmLab]:
    """A lab on Redis whose workers lose a lease within seconds of being killed."""
    with lcm_lab(
        tmp_path,
        broker_url=redis.url,
        lease_seconds=LEASE_SECONDS,
        ready_timeout=20,
        vim_prefix=name_prefix(prefix),
    ) as made:
        yield made


@pytest.fixture
def lab(redis: RedisServer, tmp_path: Path) -> Iterator[LcmLab]:
    with short_lease_lab(redis, tmp_path, "hb") as made:
        yield made


def _namespaces(lab: LcmLab) -> list[str]:
    return netns.list_names(f"{lab.vim.prefix}-")


def _replicas(lab: LcmLab, instance_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for vdu in ("nat_fastpath", "nat_slowpath"):
        unit = lab.vim.get_unit(planner.unit_name(instance_id, vdu))
        if unit is not None:
            assert unit.ready, unit.replicas
            counts[vdu] = len(unit.replicas)
    return counts


def _kill_when(
    lab: LcmLab, worker: CeleryWorker, op_id: str, ready: Callable[[], bool], timeout: float = 60
) -> None:
    """SIGKILL the worker once the occurrence is PROCESSING and `ready()` says it is mid-way."""
    deadline = time.monotonic() + timeout
    while True:
        state = lab.op(op_id)["operationState"]
        assert state in ("STARTING", "PROCESSING"), f"op {op_id} went {state} before the kill"
        if state == "PROCESSING" and ready():
            break
        assert time.monotonic() < deadline, "the operation never got mid-way"
        time.sleep(0.02)
    kill_hard(worker)
    assert not worker.alive()
    # Killed mid-way: nothing settled it.
    assert lab.op(op_id)["operationState"] == "PROCESSING"


def _recovered(lab: LcmLab, op_id: str) -> dict[str, object]:
    op = lab.wait_op(op_id, "FAILED_TEMP", "COMPLETED", "ROLLED_BACK", timeout=RECOVERY_TIMEOUT)
    assert op["operationState"] == "FAILED_TEMP", op
    error = op["error"]
    assert isinstance(error, dict)
    assert "worker" in error["detail"] and "lost" in error["detail"], error
    return op


def _onboarded(lab: LcmLab, tmp_path: Path, *, slow_stop: bool = False) -> str:
    vnfd_id = str(uuid.uuid4())
    lab.onboard(runnable_nat_csar(tmp_path, vnfd_id=vnfd_id, slow_stop=slow_stop))
    return vnfd_id


def _instantiated(lab: LcmLab, vnfd_id: str, level: str) -> str:
    instance_id = lab.create_instance(vnfd_id)
    body = {"flavourId": "default", "instantiationLevelId": level}
    op = lab.wait_op(lab.start(instance_id, "instantiate", body), "COMPLETED", "FAILED_TEMP")
    assert op["operationState"] == "COMPLETED", op
    return instance_id


def test_instantiate_and_terminate_killed_then_retried(lab: LcmLab, tmp_path: Path) -> None:
    # slow_stop: each replica takes the VIM's stop timeout, so a terminate lasts long enough.
    vnfd_id = _onboarded(lab, tmp_path, slow_stop=True)
    first = lab.start_worker("w1")

    nat = lab.create_instance(vnfd_id)
    body = {"flavourId": "default", "instantiationLevelId": "large"}
    op_id = lab.start(nat, "instantiate", body)
    _kill_when(lab, first, op_id, lambda: len(_namespaces(lab)) >= 1)
    made_before = {r.name for r in lab.vim.list_owned(nat)}
    assert made_before, "the killed worker had made something"

    second = lab.start_worker("w2")
    _recovered(lab, op_id)
    assert lab.instance(nat)["instantiationState"] == "NOT_INSTANTIATED"
    lab.op_task(op_id, "retry")
    op = lab.wait_op(op_id, "COMPLETED", "FAILED_TEMP")
    assert op["operationState"] == "COMPLETED", op
    assert "error" not in op
    assert _replicas(lab, nat) == {"nat_fastpath": 4, "nat_slowpath": 1}
    # No duplicates: one namespace per replica, everything owned by the one operation.
    assert len(_namespaces(lab)) == 5
    assert {r.owner.lcm_op_id for r in lab.vim.list_owned(nat)} == {op_id}
    assert made_before <= {r.name for r in lab.vim.list_owned(nat)}
    assert lab.vim.leaks() == []
    assert lab.instance(nat)["instantiationState"] == "INSTANTIATED"

    op_id = lab.start(nat, "terminate", {"terminationType": "FORCEFUL"})
    _kill_when(lab, second, op_id, lambda: len(_namespaces(lab)) <= 4)
    assert lab.vim.list_owned(nat), "the killed worker had not finished"
    lab.start_worker("w3")
    _recovered(lab, op_id)
    assert lab.instance(nat)["instantiationState"] == "INSTANTIATED"
    lab.op_task(op_id, "retry")
    op = lab.wait_op(op_id, "COMPLETED", "FAILED_TEMP", timeout=180)
    assert op["operationState"] == "COMPLETED", op
    assert lab.vim.list_owned(nat) == []
    assert _namespaces(lab) == []
    assert lab.vim.leaks() == []
    assert lab.instance(nat)["instantiationState"] == "NOT_INSTANTIATED"


def test_instantiate_killed_then_rolled_back(lab: LcmLab, tmp_path: Path) -> None:
    vnfd_id = _onboarded(lab, tmp_path)
    first = lab.start_worker("w1")
    kept = _instantiated(lab, vnfd_id, "small")
    kept_resources = lab.vim.list_owned(kept)
    assert len(_namespaces(lab)) == 2

    other = lab.create_instance(vnfd_id)
    body = {"flavourId": "default", "instantiationLevelId": "large"}
    op_id = lab.start(other, "instantiate", body)
    _kill_when(lab, first, op_id, lambda: len(_namespaces(lab)) >= 3)
    assert lab.vim.list_owned(other), "the killed worker had made something"
    lab.start_worker("w2")
    _recovered(lab, op_id)
    lab.op_task(op_id, "rollback")
    op = lab.wait_op(op_id, "ROLLED_BACK", "FAILED_TEMP")
    assert op["operationState"] == "ROLLED_BACK", op
    # Exactly what that operation made is gone; the other instance is untouched.
    assert lab.vim.list_owned(other) == []
    assert lab.vim.list_owned(kept) == kept_resources
    assert len(_namespaces(lab)) == 2
    assert lab.vim.leaks() == []
    assert lab.instance(other)["instantiationState"] == "NOT_INSTANTIATED"
    assert lab.instance(kept)["instantiationState"] == "INSTANTIATED"


def test_scale_killed_then_retried(lab: LcmLab, tmp_path: Path) -> None:
    vnfd_id = _onboarded(lab, tmp_path)
    first = lab.start_worker("w1")
    nat = _instantiated(lab, vnfd_id, "small")
    assert len(_namespaces(lab)) == 2

    body = {"type": "SCALE_OUT", "aspectId": "fastpath", "numberOfSteps": 3}
    op_id = lab.start(nat, "scale", body)
    _kill_when(lab, first, op_id, lambda: len(_namespaces(lab)) >= 3)
    lab.start_worker("w2")
    _recovered(lab, op_id)
    lab.op_task(op_id, "retry")
    op = lab.wait_op(op_id, "COMPLETED", "FAILED_TEMP")
    assert op["operationState"] == "COMPLETED", op.get("error")
    assert _replicas(lab, nat) == {"nat_fastpath": 4, "nat_slowpath": 1}
    assert len(_namespaces(lab)) == 5
    scale_status = lab.instance(nat)["instantiatedVnfInfo"]["scaleStatus"]
    assert [s["scaleLevel"] for s in scale_status if s["aspectId"] == "fastpath"] == [3]
    assert lab.vim.leaks() == []


# -- HEAL --------------------------------------------------------------------------------


def _record(lab: LcmLab, unit: str) -> ReplicaRecord:
    vim: LocalVim = lab.vim
    record = vim.store.load().units[unit].replica(0)
    assert record is not None, f"{unit} has no replica 0"
    return record


def _addresses(lab: LcmLab, instance_id: str) -> dict[str, list[tuple[str, str, str | None]]]:
    """Replica id -> (connection point, IP, MAC) of every replica of the instance."""
    found: dict[str, list[tuple[str, str, str | None]]] = {}
    for vdu in ("nat_fastpath", "nat_slowpath"):
        unit = lab.vim.get_unit(planner.unit_name(instance_id, vdu))
        assert unit is not None
        for replica in unit.replicas:
            found[replica.id] = [(a.connection_point, a.ip, a.mac) for a in replica.addresses]
    return found


def _heal_killed_midway(lab: LcmLab, tmp_path: Path) -> tuple[str, str, dict[str, object]]:
    """A small NAT, a heal of both its replicas, and the worker SIGKILLed between the two.

    The package's servers ignore SIGTERM (slow_stop), so the worker's VIM takes its stop
    timeout (5 s) to remove each old replica. The sync point is the first replica rebuilt
    (its old process gone, a new one started, the operation not yet waiting for it) while
    the second is being removed: a window of seconds, whatever the machine's load.
    Returns the instance, the occurrence (recovered to FAILED_TEMP by a new worker) and
    the instance's addresses before the heal.
    """
    vnfd_id = _onboarded(lab, tmp_path, slow_stop=True)
    first = lab.start_worker("w1")
    nat = _instantiated(lab, vnfd_id, "small")
    fast, slow = (planner.unit_name(nat, vdu) for vdu in ("nat_fastpath", "nat_slowpath"))
    before: dict[str, object] = {
        "addresses": _addresses(lab, nat),
        "owned": lab.vim.list_owned(nat),
    }
    (old_fast,) = _record(lab, fast).processes

    body = {"additionalParams": {HEAL_VNFC_PARAM: [f"{fast}-0", f"{slow}-0"]}}
    op_id = lab.start(nat, "heal", body)

    def first_rebuilt_second_going() -> bool:
        rebuilt, going = _record(lab, fast), _record(lab, slow)
        renewed = [p.pid for p in rebuilt.processes] not in ([], [old_fast.pid])
        return rebuilt.complete and renewed and not going.complete

    _kill_when(lab, first, op_id, first_rebuilt_second_going)
    assert not processes.is_alive(old_fast), "the first old replica was removed"
    assert not _record(lab, slow).complete, "the second replica was being replaced"
    assert len(_namespaces(lab)) == 2

    lab.start_worker("w2")
    _recovered(lab, op_id)
    return nat, op_id, before


def test_heal_killed_then_retried(lab: LcmLab, tmp_path: Path) -> None:
    nat, op_id, before = _heal_killed_midway(lab, tmp_path)
    lab.op_task(op_id, "retry")
    op = lab.wait_op(op_id, "COMPLETED", "FAILED_TEMP", timeout=180)
    assert op["operationState"] == "COMPLETED", op.get("error")
    assert _replicas(lab, nat) == {"nat_fastpath": 1, "nat_slowpath": 1}
    # Healed in place: the same replicas, namespaces and addresses (IP and MAC), no more.
    assert len(_namespaces(lab)) == 2
    assert _addresses(lab, nat) == before["addresses"]
    assert lab.vim.list_owned(nat) == before["owned"]
    assert lab.vim.leaks() == []
    assert lab.instance(nat)["instantiationState"] == "INSTANTIATED"

    op_id = lab.start(nat, "terminate", {"terminationType": "FORCEFUL"})
    op = lab.wait_op(op_id, "COMPLETED", "FAILED_TEMP", timeout=180)
    assert op["operationState"] == "COMPLETED", op.get("error")
    assert lab.vim.list_owned(nat) == []
    assert _namespaces(lab) == []
    assert lab.vim.leaks() == []


def test_heal_killed_then_failed(lab: LcmLab, tmp_path: Path) -> None:
    nat, op_id, _ = _heal_killed_midway(lab, tmp_path)
    failed = lab.op_fail(op_id)
    assert failed["operationState"] == "FAILED", failed
    assert lab.op(op_id)["operationState"] == "FAILED"
    # Nothing runs the operation any more: the half-replaced replica stays as it was.
    assert not _record(lab, planner.unit_name(nat, "nat_slowpath")).complete
    assert lab.vim.leaks() == []
    assert lab.instance(nat)["instantiationState"] == "INSTANTIATED"

    # Terminate removes everything, the half-replaced replica included.
    op_id = lab.start(nat, "terminate", {"terminationType": "FORCEFUL"})
    op = lab.wait_op(op_id, "COMPLETED", "FAILED_TEMP", timeout=180)
    assert op["operationState"] == "COMPLETED", op.get("error")
    assert lab.vim.list_owned(nat) == []
    assert _namespaces(lab) == []
    assert lab.vim.leaks() == []
    assert lab.instance(nat)["instantiationState"] == "NOT_INSTANTIATED"
