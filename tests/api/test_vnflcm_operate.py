"""Operate VNF (SOL003 5.4.7) over real HTTP, run on a real local VIM (needs root).

Operations run through `LcmRunner` as in test_vnflcm_tasks.py: the worker's steps, including
the grant from the NFVO's own Grant service, on a thread of the test process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Nfvo
from tests.api.test_vnflcm_tasks import (
    INSTANCES,
    LCM_NOTIFICATION_DEFS,
    OP_OCCS,
    SMALL,
    TASK_LINKS,
    Lab,
    nat_lcm_lab,
)
from tests.support.callback_server import running_consumer
from tests.support.etsi_schema import validate
from vim_adapters.local import netns, processes
from vim_adapters.local.adapter import LocalVim
from vnfm import planner

STOP = {"changeStateTo": "STOPPED", "stopType": "GRACEFUL", "gracefulStopTimeout": 5}
START = {"changeStateTo": "STARTED"}


@pytest.fixture
def lab(nfvo: Nfvo, sample_csars: dict[str, Path], tmp_path: Path) -> Iterator[Lab]:
    with nat_lcm_lab(nfvo, sample_csars, tmp_path) as made:
        yield made


def _namespaces(vim: LocalVim, instance_id: str) -> list[str]:
    units = vim.store.load().units
    return [
        replica.netns
        for vdu in ("nat_fastpath", "nat_slowpath")
        for replica in units[planner.unit_name(instance_id, vdu)].replicas
    ]


def _states(instance: dict[str, Any]) -> tuple[str, set[str]]:
    info = instance["instantiatedVnfInfo"]
    return info["vnfState"], {v["vnfcState"] for v in info["vnfcInfo"]}


def test_stop_and_start(lab: Lab) -> None:
    lcm = lab.lcm
    instance_id = lab.create()
    early = lcm.post(f"{INSTANCES}/{instance_id}/operate", json=STOP)
    assert early.status_code == 409 and "NOT_INSTANTIATED" in early.json()["detail"]
    lab.run(instance_id, "instantiate", SMALL)
    assert _states(lab.instance(instance_id)) == ("STARTED", {"STARTED"})

    for body, says in (
        ({"changeStateTo": "PAUSED"}, "changeStateTo"),
        ({"changeStateTo": "STARTED", "stopType": "FORCEFUL"}, "stopType"),
        ({"changeStateTo": "STOPPED", "stopType": "GRACEFUL"}, "gracefulStopTimeout"),
        ({"changeStateTo": "STOPPED", "vnfcInstanceId": ["x"]}, "vnfcInstanceId"),
    ):
        refused = lcm.post(f"{INSTANCES}/{instance_id}/operate", json=body)
        assert refused.status_code == 400, body
        assert says in refused.json()["detail"], refused.json()

    with running_consumer() as consumer:
        sub = lcm.post(
            "/vnflcm/v2/subscriptions",
            json={
                "callbackUri": f"{consumer.url}/lcm",
                "filter": {
                    "notificationTypes": ["VnfLcmOperationOccurrenceNotification"],
                    "operationTypes": ["OPERATE"],
                },
            },
        )
        assert sub.status_code == 201, sub.text
        stopped = lab.run(instance_id, "operate", STOP)
        posts = consumer.wait_posts(3)
    assert stopped["operation"] == "OPERATE" and stopped["operationParams"] == STOP
    assert stopped["grantId"], "SOL003 grants OPERATE"
    assert set(stopped["_links"]) & TASK_LINKS == set()
    changes = stopped["resourceChanges"]["affectedVnfcs"]
    assert {v["changeType"] for v in changes} == {"MODIFIED"} and len(changes) == 2
    seen = set()
    for post in posts:
        validate(LCM_NOTIFICATION_DEFS, post.body["notificationType"], post.body)
        seen.add((post.body["operationState"], post.body["notificationStatus"]))
    assert seen == {("STARTING", "START"), ("PROCESSING", "START"), ("COMPLETED", "RESULT")}

    instance = lab.instance(instance_id)
    assert _states(instance) == ("STOPPED", {"STOPPED"})
    namespaces = _namespaces(lab.vim, instance_id)
    assert all(netns.exists(ns) and processes.processes_in_netns(ns) == [] for ns in namespaces)
    # A stopped VNF is not scaled: what a scale-out adds would run.
    scale = lcm.post(
        f"{INSTANCES}/{instance_id}/scale", json={"type": "SCALE_OUT", "aspectId": "fastpath"}
    )
    assert scale.status_code == 409 and "STOPPED" in scale.json()["detail"]

    started = lab.run(instance_id, "operate", START)
    assert started["operationParams"] == START
    assert _states(lab.instance(instance_id)) == ("STARTED", {"STARTED"})
    assert all(processes.processes_in_netns(ns) for ns in namespaces)
    ops = lcm.get(OP_OCCS, params={"filter": f"(eq,vnfInstanceId,{instance_id})"}).json()
    assert [o["operation"] for o in ops] == ["INSTANTIATE", "OPERATE", "OPERATE"]

    lab.run(instance_id, "terminate", {"terminationType": "FORCEFUL"})
    assert lab.vim.list_owned(instance_id) == []


def _break_fastpath(vim: LocalVim, instance_id: str) -> tuple[str, str]:
    """Remove the namespace of fast path replica 0: (its unit, its replica id)."""
    unit = planner.unit_name(instance_id, "nat_fastpath")
    record = vim.store.load().units[unit].replica(0)
    assert record is not None
    netns.delete(record.netns)
    return unit, f"{unit}-0"


def test_a_failed_operate_is_retried_or_failed_not_rolled_back(lab: Lab) -> None:
    lcm = lab.lcm
    instance_id = lab.create()
    lab.run(instance_id, "instantiate", SMALL)
    # A replica whose namespace is gone cannot be stopped: the operation fails on the VIM.
    unit, replica_id = _break_fastpath(lab.vim, instance_id)
    op_id = lab.task(instance_id, "operate", STOP)
    failed = lab.wait(op_id, "FAILED_TEMP", "COMPLETED", "ROLLED_BACK")
    assert failed["operationState"] == "FAILED_TEMP", failed
    assert replica_id in failed["error"]["detail"]
    assert set(failed["_links"]) & TASK_LINKS == {"retry", "fail"}
    refused = lcm.post(f"{OP_OCCS}/{op_id}/rollback")
    assert refused.status_code == 404 and "not supported" in refused.json()["detail"]
    # Busy while FAILED_TEMP: an operator repairs the replica on the VIM, then retries.
    assert lcm.post(f"{INSTANCES}/{instance_id}/heal", json={}).status_code == 409
    lab.vim.heal_replica(unit, replica_id)
    assert lcm.post(f"{OP_OCCS}/{op_id}/retry").status_code == 202
    retried = lab.wait(op_id, "COMPLETED", "FAILED_TEMP")
    assert retried["operationState"] == "COMPLETED", retried
    assert "error" not in retried
    assert _states(lab.instance(instance_id)) == ("STOPPED", {"STOPPED"})

    # Failed for good instead: the VNF stays as it was (STOPPED); HEAL works on a stopped
    # VNF (the VIM rebuilds the replica stopped), and a new operate starts it.
    _break_fastpath(lab.vim, instance_id)
    op_id = lab.task(instance_id, "operate", START)
    assert lab.wait(op_id, "FAILED_TEMP", "COMPLETED")["operationState"] == "FAILED_TEMP"
    given_up = lcm.post(f"{OP_OCCS}/{op_id}/fail")
    assert given_up.status_code == 200 and given_up.json()["operationState"] == "FAILED"
    healed = lab.run(instance_id, "heal", {"cause": "namespace lost"})
    assert [v["id"] for v in healed["resourceChanges"]["affectedVnfcs"]] == [replica_id]
    assert _states(lab.instance(instance_id)) == ("STOPPED", {"STOPPED"})
    lab.run(instance_id, "operate", START)
    assert _states(lab.instance(instance_id)) == ("STARTED", {"STARTED"})
    lab.run(instance_id, "terminate", {"terminationType": "FORCEFUL"})
