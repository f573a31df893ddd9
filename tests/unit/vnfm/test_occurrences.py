"""Stored operation occurrences: start, leases, state changes, tasks and crash recovery.

On the real schema (migrations), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from sol013.outbox import NotificationOutbox
from sol013.problem import ApiError
from store.base import make_engine, make_session_factory, transaction, utcnow
from store.migrate import upgrade
from vnfm.executor import OperationResult
from vnfm.models import LccnSubscriptionRow, LcmOpOccRow, VnfInstanceRow
from vnfm.occurrences import WORKER_LOST_DETAIL, OccurrenceService, problem
from vnfm.opocc_states import Event, TransitionRefused
from vnfm.opocc_views import op_occ_view
from vnfm.schemas import VnfLcmOpOcc

BASE = "http://mano.example:8080"
INFO = {"flavourId": "default", "vnfState": "STARTED", "extCpInfo": [{"id": "x", "cpdId": "x"}]}


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def wakes() -> list[int]:
    return []


@pytest.fixture
def svc(sessions: sessionmaker[Session], wakes: list[int]) -> OccurrenceService:
    return OccurrenceService(sessions, base_url=BASE, wake_notifications=lambda: wakes.append(1))


NewInstance = Callable[..., str]


@pytest.fixture
def new_instance(sessions: sessionmaker[Session]) -> NewInstance:
    def make(state: str = "NOT_INSTANTIATED", **fields: Any) -> str:
        row = VnfInstanceRow(
            id=str(uuid.uuid4()),
            vnfd_id="vnfd-nat",
            vnf_pkg_id=str(uuid.uuid4()),
            vnf_provider="Lab",
            vnf_product_name="NAT",
            vnf_software_version="1.0",
            vnfd_version="1.0",
            instantiation_state=state,
            **fields,
        )
        with transaction(sessions) as session:
            session.add(row)
        return row.id

    return make


def _instance(sessions: sessionmaker[Session], instance_id: str) -> VnfInstanceRow:
    with sessions() as session:
        row = session.get(VnfInstanceRow, instance_id)
        assert row is not None
        return row


def _op(svc: OccurrenceService, op_id: str) -> LcmOpOccRow:
    with svc.sessions() as session:
        return svc.get(session, op_id)


def _set(sessions: sessionmaker[Session], op_id: str, **values: Any) -> None:
    with transaction(sessions) as session:
        session.execute(update(LcmOpOccRow).where(LcmOpOccRow.id == op_id).values(**values))


def _valid(row: LcmOpOccRow) -> dict[str, Any]:
    view = op_occ_view(row, BASE)
    VnfLcmOpOcc.model_validate(view)
    return view


def _result(**fields: Any) -> OperationResult:
    values: dict[str, Any] = {
        "instantiation_state": "INSTANTIATED",
        "flavour_id": "default",
        "scale_levels": {"fastpath": 0},
        "vnf_state": "STARTED",
        "instantiated_info": INFO,
        "resource_changes": {"affectedVnfcs": []},
        "instantiation_level_id": "small",
    }
    values.update(fields)
    return OperationResult(**values)


def test_start_queues_the_start_notification(
    svc: OccurrenceService,
    sessions: sessionmaker[Session],
    new_instance: NewInstance,
    wakes: list[int],
) -> None:
    with transaction(sessions) as session:
        session.add(LccnSubscriptionRow(id=str(uuid.uuid4()), callback_uri="http://c.example/"))
    instance_id = new_instance()
    row = svc.start(instance_id, "INSTANTIATE", {"flavourId": "default"})
    assert row.operation_state == "STARTING" and row.active
    assert _valid(_op(svc, row.id))["_links"].keys() >= {"self", "vnfInstance", "cancel"}
    with sessions() as session:
        queued = list(session.scalars(select(NotificationOutbox)))
    assert len(queued) == 1 and wakes == [1]
    assert queued[0].payload["operationState"] == "STARTING"
    assert queued[0].payload["notificationStatus"] == "START"


def test_start_refusals(svc: OccurrenceService, new_instance: NewInstance) -> None:
    with pytest.raises(ApiError) as unknown:
        svc.start("nope", "INSTANTIATE", {})
    assert unknown.value.status == 404
    instantiated = new_instance("INSTANTIATED")
    with pytest.raises(ApiError) as twice:
        svc.start(instantiated, "INSTANTIATE", {})
    assert twice.value.status == 409 and "INSTANTIATED" in twice.value.detail
    fresh = new_instance()
    with pytest.raises(ApiError) as early:
        svc.start(fresh, "TERMINATE", {})
    assert early.value.status == 409 and "NOT_INSTANTIATED" in early.value.detail
    running = svc.start(instantiated, "HEAL", {})
    with pytest.raises(ApiError) as busy:
        svc.start(instantiated, "SCALE", {})
    assert busy.value.status == 409 and running.id in busy.value.detail


def test_concurrent_starts_one_wins(svc: OccurrenceService, new_instance: NewInstance) -> None:
    instance_id = new_instance("INSTANTIATED")
    barrier = threading.Barrier(4)
    won: list[str] = []
    refused: list[int] = []

    def start() -> None:
        barrier.wait()
        try:
            won.append(svc.start(instance_id, "HEAL", {}).id)
        except ApiError as exc:
            refused.append(exc.status)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and refused == [409, 409, 409]


def test_claim_renew_release(
    svc: OccurrenceService, sessions: sessionmaker[Session], new_instance: NewInstance
) -> None:
    op_id = svc.start(new_instance(), "INSTANTIATE", {}).id
    claimed = svc.claim(op_id, "w1", 30)
    assert claimed is not None and claimed.lease_owner == "w1"
    assert svc.claim(op_id, "w2", 30) is None
    assert svc.claim(op_id, "w1", 30) is not None  # re-entrant for its holder
    assert svc.renew(op_id, "w1", 30) and not svc.renew(op_id, "w2", 30)
    svc.release(op_id, "w2")  # not its lease: nothing happens
    assert _op(svc, op_id).lease_owner == "w1"

    # w1 stalls: once its lease expired, w2 takes over and w1 cannot renew any more.
    _set(sessions, op_id, lease_expires_at=utcnow() - timedelta(seconds=1))
    assert svc.claim(op_id, "w2", 30) is not None
    assert not svc.renew(op_id, "w1", 30)
    svc.release(op_id, "w2")
    row = _op(svc, op_id)
    assert row.lease_owner is None and row.lease_expires_at is None

    svc.apply(op_id, Event.GRANTED)
    svc.apply(op_id, Event.FAILED_STEP, error=problem(500, "boom"))
    assert svc.claim(op_id, "w1", 30) is None  # FAILED_TEMP waits for a task
    svc.request_task(op_id, "fail")
    assert svc.claim(op_id, "w1", 30) is None  # final


def test_claim_race_has_one_winner(svc: OccurrenceService, new_instance: NewInstance) -> None:
    op_id = svc.start(new_instance(), "INSTANTIATE", {}).id
    barrier = threading.Barrier(6)
    winners: list[str] = []

    def claim(worker: str) -> None:
        barrier.wait()
        if svc.claim(op_id, worker, 30) is not None:
            winners.append(worker)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert _op(svc, op_id).lease_owner == winners[0]


def test_apply_updates_the_instance(
    svc: OccurrenceService, sessions: sessionmaker[Session], new_instance: NewInstance
) -> None:
    instance_id = new_instance()
    op_id = svc.start(instance_id, "INSTANTIATE", {"flavourId": "default"}).id
    assert svc.claim(op_id, "w1", 30) is not None
    with pytest.raises(TransitionRefused):
        svc.apply(op_id, Event.SUCCEEDED)
    svc.apply(op_id, Event.GRANTED, grant_id="g-1")
    assert _op(svc, op_id).lease_owner == "w1"  # still running: the lease stays
    done = svc.apply(op_id, Event.SUCCEEDED, result=_result())
    assert done.operation_state == "COMPLETED" and not done.active
    assert done.lease_owner is None and done.resource_changes == {"affectedVnfcs": []}
    view = _valid(_op(svc, op_id))
    assert view["grantId"] == "g-1" and "grant" in view["_links"]
    instance = _instance(sessions, instance_id)
    assert instance.instantiation_state == "INSTANTIATED"
    assert instance.flavour_id == "default" and instance.scale_levels == {"fastpath": 0}
    assert instance.instantiated_info == INFO and instance.vnf_state == "STARTED"

    ctx = svc.context(svc.start(instance_id, "SCALE", {"aspectId": "fastpath"}).id)
    assert ctx.operation == "SCALE" and ctx.vnfd_id == "vnfd-nat"
    assert ctx.flavour_id == "default" and ctx.scale_levels == {"fastpath": 0}
    assert ctx.params == {"aspectId": "fastpath"} and not ctx.cancel_requested()
    assert svc.claim(ctx.op_id, "w2", 30) is not None
    svc.request_task(ctx.op_id, "cancel", cancel_mode="FORCEFUL")
    assert ctx.cancel_requested()


def test_failed_instantiate_leaves_the_instance_not_instantiated(
    svc: OccurrenceService, sessions: sessionmaker[Session], new_instance: NewInstance
) -> None:
    instance_id = new_instance()
    op_id = svc.start(instance_id, "INSTANTIATE", {}).id
    svc.apply(op_id, Event.GRANTED)
    failed = svc.apply(op_id, Event.FAILED_STEP, error=problem(500, "no such network"))
    assert _valid(failed)["error"]["detail"] == "no such network"
    assert failed.active  # FAILED_TEMP is not final
    row, kind = svc.request_task(op_id, "retry")
    assert (row.operation_state, kind) == ("PROCESSING", "run")
    assert _valid(row)["error"]["detail"] == "no such network"  # kept while retrying
    svc.apply(op_id, Event.FAILED_STEP, error=problem(500, "still no network"))
    row, kind = svc.request_task(op_id, "fail")
    assert (row.operation_state, kind, row.active) == ("FAILED", None, False)
    assert _instance(sessions, instance_id).instantiation_state == "NOT_INSTANTIATED"
    with pytest.raises(ApiError) as final:
        svc.request_task(op_id, "retry")
    assert final.value.status == 409 and "final" in final.value.detail


def test_terminate_completion_clears_the_instance(
    svc: OccurrenceService, sessions: sessionmaker[Session], new_instance: NewInstance
) -> None:
    instance_id = new_instance(
        "INSTANTIATED", flavour_id="default", instantiated_info=INFO, vnf_state="STARTED"
    )
    op_id = svc.start(instance_id, "TERMINATE", {"terminationType": "FORCEFUL"}).id
    svc.apply(op_id, Event.GRANTED)
    gone = _result(
        instantiation_state="NOT_INSTANTIATED",
        flavour_id=None,
        scale_levels={},
        vnf_state=None,
        instantiated_info=None,
    )
    svc.apply(op_id, Event.SUCCEEDED, result=gone)
    instance = _instance(sessions, instance_id)
    assert instance.instantiation_state == "NOT_INSTANTIATED"
    assert instance.instantiated_info is None and instance.flavour_id is None


def test_tasks(svc: OccurrenceService, new_instance: NewInstance) -> None:
    instantiate = svc.start(new_instance(), "INSTANTIATE", {}).id
    with pytest.raises(ApiError) as early:
        svc.request_task(instantiate, "retry")
    assert early.value.status == 409 and "FAILED_TEMP" in early.value.detail
    svc.apply(instantiate, Event.GRANTED)
    svc.apply(instantiate, Event.FAILED_STEP, error=problem(500, "x"))
    row, kind = svc.request_task(instantiate, "rollback")
    assert (row.operation_state, kind) == ("ROLLING_BACK", "rollback")
    svc.apply(instantiate, Event.ROLLBACK_SUCCEEDED)

    scale = svc.start(new_instance("INSTANTIATED"), "SCALE", {}).id
    svc.apply(scale, Event.GRANTED)
    svc.apply(scale, Event.FAILED_STEP, error=problem(500, "x"))
    with pytest.raises(ApiError) as unsupported:
        svc.request_task(scale, "rollback")
    assert unsupported.value.status == 404
    with pytest.raises(ApiError) as unknown:
        svc.request_task(scale, "pause")
    assert unknown.value.status == 404


def test_cancel(svc: OccurrenceService, new_instance: NewInstance) -> None:
    # STARTING and no worker holds it: rolled back at once.
    idle = svc.start(new_instance(), "INSTANTIATE", {}).id
    row, kind = svc.request_task(idle, "cancel", cancel_mode="GRACEFUL")
    assert (row.operation_state, kind, row.is_cancel_pending) == ("ROLLED_BACK", None, False)
    assert svc.claim(idle, "w1", 30) is None

    # A worker holds it: only flagged; the worker applies the cancellation when it stops.
    held = svc.start(new_instance(), "INSTANTIATE", {}).id
    assert svc.claim(held, "w1", 30) is not None
    row, _ = svc.request_task(held, "cancel", cancel_mode="FORCEFUL")
    assert row.operation_state == "STARTING"
    assert _valid(_op(svc, held))["cancelMode"] == "FORCEFUL"
    assert svc.cancel_requested(held)
    stopped = svc.apply(held, Event.CANCEL)
    assert stopped.operation_state == "ROLLED_BACK" and not stopped.is_cancel_pending


def test_recover(
    svc: OccurrenceService,
    sessions: sessionmaker[Session],
    new_instance: NewInstance,
) -> None:
    past = utcnow() - timedelta(minutes=5)
    # PROCESSING, its worker's lease expired -> FAILED_TEMP.
    processing = svc.start(new_instance(), "INSTANTIATE", {}).id
    svc.claim(processing, "w1", 30)
    svc.apply(processing, Event.GRANTED)
    _set(sessions, processing, lease_expires_at=past)
    # ROLLING_BACK, expired -> FAILED_TEMP.
    rolling = svc.start(new_instance(), "INSTANTIATE", {}).id
    svc.apply(rolling, Event.GRANTED)
    svc.apply(rolling, Event.FAILED_STEP, error=problem(500, "x"))
    svc.request_task(rolling, "rollback")
    svc.claim(rolling, "w2", 30)
    _set(sessions, rolling, lease_expires_at=past)
    # STARTING, never claimed, for longer than the grace period -> ROLLED_BACK.
    starting_instance = new_instance()
    unclaimed = svc.start(starting_instance, "INSTANTIATE", {}).id
    _set(sessions, unclaimed, state_entered_time=past)
    # Left alone: just started (not yet claimed), and a live lease.
    fresh = svc.start(new_instance(), "INSTANTIATE", {}).id
    live = svc.start(new_instance(), "INSTANTIATE", {}).id
    svc.claim(live, "w3", 300)
    _set(sessions, live, state_entered_time=past)

    assert svc.recover() == 3
    for op_id in (processing, rolling):
        row = _op(svc, op_id)
        assert row.operation_state == "FAILED_TEMP" and row.active
        assert row.error is not None and row.error["detail"] == WORKER_LOST_DETAIL
        assert row.lease_owner is None
        _valid(row)
    lost = _op(svc, unclaimed)
    assert lost.operation_state == "ROLLED_BACK" and not lost.active
    assert _instance(sessions, starting_instance).instantiation_state == "NOT_INSTANTIATED"
    assert _op(svc, fresh).operation_state == "STARTING"
    assert _op(svc, live).operation_state == "STARTING"
    assert not svc.renew(processing, "w1", 30)  # its worker, if it comes back, has lost it
    assert svc.recover() == 0
    # The retry hands it to a new worker.
    row, kind = svc.request_task(processing, "retry")
    assert (row.operation_state, kind) == ("PROCESSING", "run")
    assert svc.claim(processing, "w4", 30) is not None


def test_recover_does_not_steal_a_claim(
    svc: OccurrenceService, sessions: sessionmaker[Session], new_instance: NewInstance
) -> None:
    op_id = svc.start(new_instance(), "INSTANTIATE", {}).id
    _set(sessions, op_id, state_entered_time=utcnow() - timedelta(minutes=5))
    # A worker claims it just before recovery looks: the lease makes it live.
    assert svc.claim(op_id, "w1", 30) is not None
    assert svc.recover() == 0
    with sessions() as session:
        active = session.scalar(
            select(func.count()).select_from(LcmOpOccRow).where(LcmOpOccRow.active.is_(True))
        )
    assert active == 1
