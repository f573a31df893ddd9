"""A worker killed (SIGKILL of its process group) in the middle of an NS instantiation:
after its lease expires the occurrence is FAILED_TEMP (recovery by the surviving worker),
and a retry on a restarted worker completes without creating any VNF twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from nfvo.nslcm.models import NsLcmOpOccRow
from tests.support.celery_worker import (
    NAT_VNFD_ID,
    CeleryWorker,
    LcmLab,
    kill_hard,
    lcm_lab,
    runnable_nat_csar,
)
from tests.support.local_vim import leftovers, name_prefix
from tests.support.ns_lab import NsApi, onboard_nsd, two_nat_nsd

LEASE_SECONDS = 4.0


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LcmLab]:
    tmp = tmp_path_factory.mktemp("nslcm-crash")
    prefix = name_prefix("hn")
    with lcm_lab(tmp, broker_url=None, vim_prefix=prefix, lease_seconds=LEASE_SECONDS) as made:
        made.start_worker("w1")
        made.start_worker("w2")
        yield made
        assert made.vim.leaks() == []
    assert leftovers(prefix) == []


def _holder(lab: LcmLab, op_id: str, timeout: float = 120.0) -> tuple[str, dict[str, object]]:
    """The lease owner of the NS occurrence once its first VNF's operation is under way."""
    deadline = time.monotonic() + timeout
    while True:
        with lab.app.state.session_factory() as session:
            row = session.get(NsLcmOpOccRow, op_id)
            assert row is not None
            vnfs = dict((row.progress or {}).get("vnfs", {}))
            first = dict(vnfs.get("nat-0", {}))
            if row.lease_owner and first.get("opId"):
                return row.lease_owner, first
            assert row.operation_state == "PROCESSING", row.error
        assert time.monotonic() < deadline, "the NS instantiation never reached its first VNF"
        time.sleep(0.05)


def _by_pid(lab: LcmLab, owner: str) -> CeleryWorker:
    pid = int(owner.split(":")[1])
    (worker,) = [w for w in lab.workers if w.proc.pid == pid]
    return worker


def test_killed_worker_then_retry(lab: LcmLab, tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("csars")
    lab.onboard(runnable_nat_csar(tmp / "a", vnfd_id=NAT_VNFD_ID))
    nat_b = str(uuid.uuid4())
    lab.onboard(runnable_nat_csar(tmp / "b", vnfd_id=nat_b))
    api = NsApi(lab, onboard_nsd(lab, two_nat_nsd(tmp_path_factory.mktemp("nsd"), nat_b)))
    try:
        ns_id = api.create("hn-crash")
        op_id = api.task(ns_id, "instantiate", {"nsFlavourId": "default"})
        owner, first = _holder(lab, op_id)
        victim = _by_pid(lab, owner)
        kill_hard(victim)
        lab.workers.remove(victim)
        failed = api.wait(op_id, "FAILED_TEMP", "COMPLETED", timeout=60)
        assert failed["operationState"] == "FAILED_TEMP", failed
        assert "worker" in failed["error"]["detail"]

        lab.start_worker("w3")
        api.op_task(op_id, "retry")
        done = api.wait(op_id, "COMPLETED", "FAILED_TEMP", timeout=240)
        assert done["operationState"] == "COMPLETED", done.get("error")
        ns = api.ns(ns_id)
        ids = sorted(str(v["id"]) for v in ns["vnfInstance"])
        assert len(ids) == 2 and str(first["vnfInstanceId"]) in ids
        mine = [
            v
            for v in lab.http.get("/vnflcm/v2/vnf_instances").json()
            if str(v.get("vnfInstanceName", "")).startswith(f"ns-{ns_id}")
        ]
        assert sorted(str(v["id"]) for v in mine) == ids  # no duplicate VNF instance

        term = api.task(ns_id, "terminate", {})
        assert api.wait(term, "COMPLETED", "FAILED_TEMP", timeout=240)["operationState"] == (
            "COMPLETED"
        )
        assert lab.vim.list_owned(ns_id) == []
    finally:
        api.close()
