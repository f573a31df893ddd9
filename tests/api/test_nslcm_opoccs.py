"""/nslcm/v2/ns_lcm_op_occs: query, the retry/rollback/continue/fail/cancel tasks, the SOL005
state machine, one operation per NS instance, crash recovery, and the
NsLcmOperationOccurrenceNotification.

A `TestWorker` drives the occurrences through the real occurrence service, as an
orchestration worker does; bodies are validated against the ETSI SOL005 definitions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from nfvo.nslcm.models import NsLcmOpOccRow
from nfvo.nslcm.opocc_states import Event
from store.base import transaction, utcnow
from tests.api.conftest import Nfvo, NsdApi
from tests.support.callback_server import running_consumer
from tests.support.etsi_schema import NSLCM_NOTIFICATION_DEFS, validate
from tests.support.nslcm_lab import (
    INSTANCES,
    NSLCM_VERSION,
    OP_OCCS,
    SUBS,
    Dispatched,
    NsLab,
    TestWorker,
    onboard_edge_nsd,
    problem_of,
)

INSTANTIATE = {"nsFlavourId": "default", "nsInstantiationLevelId": "small"}


@pytest.fixture
def lab(
    nfvo: Nfvo, nsd_api: NsdApi, nat_package: dict[str, Any], nsd_archives: dict[str, Path]
) -> Iterator[NsLab]:
    nsd = onboard_edge_nsd(nsd_api, nsd_archives["edge-gateway"])
    dispatched = Dispatched()
    nfvo.app.state.ns_dispatch = dispatched
    yield NsLab(nfvo, nfvo.client("nslcm", version=NSLCM_VERSION), str(nsd["nsdId"]), dispatched)


@pytest.fixture
def worker(lab: NsLab) -> TestWorker:
    return TestWorker(lab.occurrences)


def test_instantiate_creates_a_processing_occurrence(lab: NsLab) -> None:
    ns_id = lab.create()
    op_id = lab.task(ns_id, "instantiate", INSTANTIATE)
    assert lab.dispatched.calls == [(op_id, "run")]
    occ = lab.occ(op_id)
    assert occ["operationState"] == "PROCESSING"
    assert occ["lcmOperationType"] == "INSTANTIATE"
    assert occ["nsInstanceId"] == ns_id
    assert occ["operationParams"] == INSTANTIATE
    assert occ["isCancelPending"] is False and occ["isAutomaticInvocation"] is False
    assert occ["_links"]["nsInstance"]["href"].endswith(f"{INSTANCES}/{ns_id}")
    assert occ["_links"]["self"]["href"].endswith(f"{OP_OCCS}/{op_id}")
    # PROCESSING offers cancel only.
    assert set(occ["_links"]) == {"self", "nsInstance", "cancel"}
    # The NS instance is not INSTANTIATED before the operation completes.
    assert lab.ns(ns_id)["nsState"] == "NOT_INSTANTIATED"


def test_one_operation_per_ns_instance(lab: NsLab, worker: TestWorker) -> None:
    ns_id = lab.create()
    op_id = lab.task(ns_id, "instantiate", INSTANTIATE)
    refused = problem_of(lab.lcm.post(f"{INSTANCES}/{ns_id}/instantiate", json=INSTANTIATE), 409)
    assert op_id in refused["detail"]
    # Also while the occurrence waits in FAILED_TEMP; and the NS cannot be deleted then.
    worker.fail(op_id)
    problem_of(lab.lcm.post(f"{INSTANCES}/{ns_id}/instantiate", json=INSTANTIATE), 409)
    assert op_id in problem_of(lab.lcm.delete(f"{INSTANCES}/{ns_id}"), 409)["detail"]
    # The database itself refuses a second active occurrence.
    sessions = lab.nfvo.app.state.session_factory
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        now = utcnow()
        session.add(
            NsLcmOpOccRow(
                id="hn-second",
                ns_instance_id=ns_id,
                operation="INSTANTIATE",
                operation_state="PROCESSING",
                active=True,
                state_entered_time=now,
                start_time=now,
                created_at=now,
            )
        )
    # Once it is final, another operation may start.
    assert lab.lcm.post(f"{OP_OCCS}/{op_id}/fail").status_code == 200
    lab.task(ns_id, "instantiate", INSTANTIATE)


def test_failed_temp_retry_rollback(lab: NsLab, worker: TestWorker) -> None:
    ns_id = lab.create()
    op_id = lab.task(ns_id, "instantiate", INSTANTIATE)
    problem_of(lab.lcm.post(f"{OP_OCCS}/{op_id}/retry"), 409)
    worker.fail(op_id)
    occ = lab.occ(op_id)
    assert occ["operationState"] == "FAILED_TEMP"
    assert occ["error"]["status"] == 500 and "nat" in occ["error"]["detail"]
    assert set(occ["_links"]) == {"self", "nsInstance", "retry", "rollback", "continue", "fail"}
    refused = problem_of(
        lab.lcm.post(f"{OP_OCCS}/{op_id}/cancel", json={"cancelMode": "GRACEFUL"}), 409
    )
    assert "PROCESSING or ROLLING_BACK" in refused["detail"]

    assert lab.lcm.post(f"{OP_OCCS}/{op_id}/retry").status_code == 202
    assert lab.dispatched.calls[-1] == (op_id, "run")
    retried = lab.occ(op_id)
    # The error of the failed attempt stays while it is retried (SOL005 NsLcmOpOcc.error).
    assert retried["operationState"] == "PROCESSING" and "error" in retried

    worker.fail(op_id, "hn: failed again")
    assert lab.lcm.post(f"{OP_OCCS}/{op_id}/rollback").status_code == 202
    assert lab.dispatched.calls[-1] == (op_id, "rollback")
    occ = lab.occ(op_id)
    assert occ["operationState"] == "ROLLING_BACK"
    assert set(occ["_links"]) == {"self", "nsInstance", "cancel"}
    worker.finish(op_id, Event.ROLLBACK_SUCCEEDED)
    occ = lab.occ(op_id)
    assert occ["operationState"] == "ROLLED_BACK"
    assert set(occ["_links"]) == {"self", "nsInstance"}
    assert lab.ns(ns_id)["nsState"] == "NOT_INSTANTIATED"
    for task in ("retry", "rollback", "continue", "fail"):
        final = problem_of(lab.lcm.post(f"{OP_OCCS}/{op_id}/{task}"), 409)
        assert "final" in final["detail"]
    # Final: the NS instance can go.
    assert lab.lcm.delete(f"{INSTANCES}/{ns_id}").status_code == 204


def test_fail_and_continue(lab: NsLab, worker: TestWorker) -> None:
    failed_ns = lab.create("hn-a")
    op_id = lab.task(failed_ns, "instantiate", INSTANTIATE)
    worker.fail(op_id)
    resp = lab.lcm.post(f"{OP_OCCS}/{op_id}/fail")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["operationState"] == "FAILED" and body["error"]["status"] == 500
    assert lab.occ(op_id)["operationState"] == "FAILED"
    assert lab.ns(failed_ns)["nsState"] == "NOT_INSTANTIATED"

    continued_ns = lab.create("hn-b")
    op_id = lab.task(continued_ns, "instantiate", INSTANTIATE)
    worker.fail(op_id)
    assert lab.lcm.post(f"{OP_OCCS}/{op_id}/continue").status_code == 202
    assert lab.dispatched.calls[-1] == (op_id, "run")
    with lab.nfvo.app.state.session_factory() as session:
        row = session.get(NsLcmOpOccRow, op_id)
        assert row is not None and row.progress["continue"] is True
    worker.finish(op_id, Event.SUCCEEDED_PARTIALLY)
    occ = lab.occ(op_id)
    assert occ["operationState"] == "PARTIALLY_COMPLETED"
    assert lab.ns(continued_ns)["nsState"] == "INSTANTIATED"


def test_tasks_the_operation_does_not_support(lab: NsLab, worker: TestWorker) -> None:
    ns_id = lab.instantiated()
    op_id = lab.task(
        ns_id,
        "scale",
        {
            "scaleType": "SCALE_NS",
            "scaleNsData": {
                "scaleNsByStepsData": {"scalingDirection": "SCALE_OUT", "aspectId": "nat_capacity"}
            },
        },
    )
    worker.fail(op_id)
    occ = lab.occ(op_id)
    # SCALE: no rollback (only INSTANTIATE), no continue (one decision over several VNFs).
    assert set(occ["_links"]) == {"self", "nsInstance", "retry", "fail"}
    assert "INSTANTIATE" in problem_of(lab.lcm.post(f"{OP_OCCS}/{op_id}/rollback"), 404)["detail"]
    problem_of(lab.lcm.post(f"{OP_OCCS}/{op_id}/continue"), 404)
    problem_of(lab.lcm.post(f"{OP_OCCS}/{op_id}/nonsense"), 404)
    problem_of(lab.lcm.get(f"{OP_OCCS}/hn-missing"), 404)
    problem_of(lab.lcm.post(f"{OP_OCCS}/hn-missing/retry"), 404)


def test_cancel(lab: NsLab, worker: TestWorker) -> None:
    ns_id = lab.create()
    op_id = lab.task(ns_id, "instantiate", INSTANTIATE)
    problem_of(lab.lcm.post(f"{OP_OCCS}/{op_id}/cancel", json={"cancelMode": "SOMETIMES"}), 400)
    resp = lab.lcm.post(f"{OP_OCCS}/{op_id}/cancel", json={"cancelMode": "FORCEFUL"})
    assert resp.status_code == 202, resp.text
    occ = lab.occ(op_id)
    assert occ["operationState"] == "PROCESSING"
    assert occ["isCancelPending"] is True and occ["cancelMode"] == "FORCEFUL"
    assert lab.occurrences.cancel_requested(op_id)
    # The worker stops at its next step boundary and records the cancellation.
    worker.finish(op_id, Event.CANCEL)
    occ = lab.occ(op_id)
    assert occ["operationState"] == "FAILED_TEMP"
    assert occ["isCancelPending"] is False and "cancelMode" not in occ


def test_lost_worker_goes_failed_temp(
    nfvo: Nfvo, lab: NsLab, nfvo_factory: Any, worker: TestWorker
) -> None:
    ns_id = lab.create()
    op_id = lab.task(ns_id, "instantiate", INSTANTIATE)
    # A worker claims it with a short lease and dies (never renews).
    worker.claim(op_id, lease=0.2)
    assert lab.occurrences.recover() == 0 or lab.occ(op_id)["operationState"] == "FAILED_TEMP"
    time.sleep(0.4)
    assert lab.occurrences.recover() == 1
    occ = lab.occ(op_id)
    assert occ["operationState"] == "FAILED_TEMP"
    assert "worker" in occ["error"]["detail"]
    # The worker that lost its lease can no longer record anything.
    with pytest.raises(Exception, match="no longer held"):
        lab.occurrences.record(op_id, worker.name, progress={"hn": 1})
    # A retry that no worker ever picks up is settled by the NFVO's start-up recovery.
    assert lab.lcm.post(f"{OP_OCCS}/{op_id}/retry").status_code == 202
    restarted = nfvo_factory(database_url=nfvo.settings.database_url)
    restarted.app.state.ns_occurrences.unclaimed_grace_seconds = 0.0
    assert restarted.app.state.ns_occurrences.recover() == 1
    assert lab.occ(op_id)["operationState"] == "FAILED_TEMP"


def test_dispatch_failure_is_503_and_failed_temp(lab: NsLab) -> None:
    ns_id = lab.create()
    lab.dispatched.broken = True
    resp = lab.lcm.post(f"{INSTANCES}/{ns_id}/instantiate", json=INSTANTIATE)
    problem_of(resp, 503)
    occs = lab.lcm.get(OP_OCCS, params={"filter": f"(eq,nsInstanceId,{ns_id})"}).json()
    assert [occ["operationState"] for occ in occs] == ["FAILED_TEMP"]


def test_query_filters_selectors_paging(
    nfvo: Nfvo, nfvo_factory: Any, lab: NsLab, worker: TestWorker
) -> None:
    ops = []
    for n in range(3):
        ns_id = lab.create(f"hn-{n}")
        ops.append(lab.task(ns_id, "instantiate", INSTANTIATE))
    worker.fail(ops[1])
    listed = lab.lcm.get(OP_OCCS)
    assert listed.status_code == 200
    body = listed.json()
    assert [occ["id"] for occ in body] == ops
    for occ in body:
        # Complex attributes are left out of a query by default.
        assert "operationParams" not in occ and "error" not in occ
    failed = lab.lcm.get(OP_OCCS, params={"filter": "(eq,operationState,FAILED_TEMP)"}).json()
    assert [occ["id"] for occ in failed] == [ops[1]]
    with_error = lab.lcm.get(
        OP_OCCS, params={"filter": "(eq,operationState,FAILED_TEMP)", "fields": "error"}
    ).json()
    assert with_error[0]["error"]["status"] == 500
    everything = lab.lcm.get(OP_OCCS, params={"all_fields": ""}).json()
    assert all(occ["operationParams"] == INSTANTIATE for occ in everything)
    problem_of(lab.lcm.get(OP_OCCS, params={"filter": "(eq,noSuchAttribute,1)"}), 400)
    # Paging: a service with a page size of 2.
    small = nfvo_factory(database_url=nfvo.settings.database_url, page_size=2)
    http = small.client("nslcm", version=NSLCM_VERSION)
    first = http.get(OP_OCCS)
    assert [occ["id"] for occ in first.json()] == ops[:2]
    assert 'rel="next"' in first.headers["Link"]
    next_url = first.headers["Link"].split(";")[0].strip("<>")
    assert [occ["id"] for occ in http.get(next_url).json()] == ops[2:]


def test_scopes(nfvo: Nfvo, lab: NsLab) -> None:
    ns_id = lab.create()
    op_id = lab.task(ns_id, "instantiate", INSTANTIATE)
    reader = nfvo.client("nslcm-reader", version=NSLCM_VERSION)
    assert reader.get(OP_OCCS).status_code == 200
    assert reader.get(f"{OP_OCCS}/{op_id}").status_code == 200
    problem_of(reader.post(f"{OP_OCCS}/{op_id}/cancel", json={"cancelMode": "GRACEFUL"}), 403)
    problem_of(reader.post(f"{INSTANCES}/{ns_id}/terminate", json={}), 403)


def test_operation_occurrence_notifications(lab: NsLab, worker: TestWorker) -> None:
    with running_consumer() as consumer:
        everything = lab.lcm.post(SUBS, json={"callbackUri": f"{consumer.url}/all"})
        assert everything.status_code == 201, everything.text
        results = lab.lcm.post(
            SUBS,
            json={
                "callbackUri": f"{consumer.url}/failed",
                "verbosity": "SHORT",
                "filter": {
                    "notificationTypes": ["NsLcmOperationOccurrenceNotification"],
                    "operationTypes": ["INSTANTIATE"],
                    "operationStates": ["FAILED_TEMP"],
                },
            },
        )
        assert results.status_code == 201, results.text
        ns_id = lab.create()
        op_id = lab.task(ns_id, "instantiate", INSTANTIATE)
        worker.fail(op_id)
        # /all: created, START (PROCESSING), RESULT (FAILED_TEMP); /failed: the RESULT.
        posts = consumer.wait_posts(4)
        for post in posts:
            validate(NSLCM_NOTIFICATION_DEFS, post.body["notificationType"], post.body)
        ops = [
            p for p in posts if p.body["notificationType"] == "NsLcmOperationOccurrenceNotification"
        ]
        seen = sorted((p.path, p.body["notificationStatus"], p.body["operationState"]) for p in ops)
        assert seen == [
            ("/all", "RESULT", "FAILED_TEMP"),
            ("/all", "START", "PROCESSING"),
            ("/failed", "RESULT", "FAILED_TEMP"),
        ]
        for post in ops:
            body = post.body
            assert body["nsLcmOpOccId"] == op_id and body["nsInstanceId"] == ns_id
            assert body["operation"] == "INSTANTIATE"
            assert body["_links"]["nslcmOpOcc"]["href"].endswith(f"{OP_OCCS}/{op_id}")
            if body["operationState"] == "FAILED_TEMP":
                assert body["error"]["status"] == 500
            else:
                assert "error" not in body
