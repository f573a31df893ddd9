"""NS LCM operation occurrences as stored: start, claim by a worker, record steps, move on.

The same design as the VNFM's occurrences (vnfm/occurrences.py, docs/lcm.md), with the
same locking, leases and recovery (:mod:`sol013.opocc.store`): the API starts occurrences
and asks for their tasks; an orchestration worker claims an occurrence with a lease,
renews it while it works, records its steps (:meth:`NsOccurrenceService.record`) and
reports the outcome as an :class:`~nfvo.nslcm.opocc_states.Event` through
:meth:`NsOccurrenceService.apply`. Every state change is validated by
:mod:`nfvo.nslcm.opocc_states`, stored together with the
NsLcmOperationOccurrenceNotification it causes, and reflected on the NS instance.

One operation per NS instance at a time is a database rule: a partial unique index on the
active occurrences of an instance (`NsLcmOpOccRow`); the check in :meth:`start` only turns
the common case into a readable 409.

Crashes: a worker killed mid-operation stops renewing its lease; :meth:`recover` (run by
every worker periodically and by the NFVO at start-up) moves occurrences whose lease
expired, or that no worker claimed within a grace period, to FAILED_TEMP. Since the
worker records each step before and after doing it, retry resumes from the record.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from nfvo.nslcm.models import NsInstanceRow, NsLcmOpOccRow
from nfvo.nslcm.notifications import notify_op_occ
from nfvo.nslcm.opocc_states import (
    MACHINE,
    RUNNING,
    TASKS,
    Event,
    OpState,
    notification_status,
    ns_state_after,
    transition,
)
from sol013.opocc.store import OccurrenceStore, problem
from sol013.opocc.workers import Dispatch
from sol013.problem import ApiError
from store.base import transaction, utcnow

__all__ = [
    "WORKER_LOST_DETAIL",
    "Dispatch",
    "NsCheck",
    "NsOccurrenceService",
    "NsUpdate",
    "problem",
]

log = logging.getLogger(__name__)

NsCheck = Callable[[NsInstanceRow], None]
"""Called with the locked NS instance when an occurrence starts; raises ApiError to refuse."""
NsUpdate = Callable[[NsInstanceRow], None]
"""Changes the NS instance in the transaction that records a step or a state change."""

WORKER_LOST_DETAIL = "the worker running this operation was lost; retry, rollback or fail it"
# The work a task hands to a worker (None: nothing to run).
_TASK_DISPATCH: dict[str, str | None] = {
    "retry": "run",
    "continue": "run",
    "rollback": "rollback",
    "fail": None,
}


def _refuse_state(ns: NsInstanceRow, operation: str) -> None:
    """409 unless the NS instance is in the state the operation starts from."""
    required = "NOT_INSTANTIATED" if operation == "INSTANTIATE" else "INSTANTIATED"
    if ns.ns_state != required:
        raise ApiError(
            409, f"NS instance {ns.id} is {ns.ns_state}; {operation} needs it {required}"
        )


class NsOccurrenceService(OccurrenceStore[NsLcmOpOccRow]):
    """The stored NS LCM operation occurrences and their state changes."""

    table = NsLcmOpOccRow
    instance_table = NsInstanceRow
    instance_key = "ns_instance_id"
    machine = MACHINE
    noun = "NS LCM operation occurrence"
    instance_noun = "NS instance"
    log = log
    log_prefix = "ns op"

    # -- starting --------------------------------------------------------------------------

    def start(
        self,
        ns_instance_id: str,
        operation: str,
        params: dict[str, Any],
        *,
        check: NsCheck | None = None,
    ) -> NsLcmOpOccRow:
        """A new occurrence of ``operation`` in PROCESSING, its START notification queued.

        With the NS instance locked: 404 if it does not exist, 409 if its state does not
        allow the operation or another operation is active, then ``check``.
        """

        def create(session: Session) -> NsLcmOpOccRow:
            ns = session.get(NsInstanceRow, ns_instance_id)
            assert ns is not None
            self._refuse_if_busy(session, ns_instance_id)
            _refuse_state(ns, operation)
            if check is not None:
                check(ns)
            now = utcnow()
            row = NsLcmOpOccRow(
                id=str(uuid.uuid4()),
                ns_instance_id=ns_instance_id,
                operation=operation,
                operation_state=OpState.PROCESSING.value,
                active=True,
                state_entered_time=now,
                start_time=now,
                created_at=now,
                is_automatic_invocation=False,
                operation_params=params,
                is_cancel_pending=False,
                progress={},
                revision=1,
            )
            session.add(row)
            session.flush()
            notify_op_occ(session, row, ns, self.base_url, "START")
            return row

        row = self._start(ns_instance_id, create)
        log.info("ns op %s: %s of NS instance %s started", row.id, operation, ns_instance_id)
        return row

    # -- steps -----------------------------------------------------------------------------

    def record(
        self,
        op_id: str,
        worker: str,
        *,
        progress: dict[str, Any] | None = None,
        resource_changes: dict[str, Any] | None = None,
        ns_update: NsUpdate | None = None,
    ) -> None:
        """Store a step's record (and its effect on the NS instance) in one transaction.

        Refused (ApiError 409) unless ``worker`` still holds the lease of a running
        occurrence: a worker that lost its lease must not write over what recovery or the
        next worker decided.
        """
        with transaction(self.sessions) as session:
            row = self._locked(session, op_id)
            if row.lease_owner != worker or OpState(row.operation_state) not in RUNNING:
                raise ApiError(
                    409, f"NS LCM operation occurrence {op_id} is no longer held by {worker}"
                )
            if progress is not None:
                row.progress = progress
            if resource_changes is not None:
                row.resource_changes = resource_changes
            row.revision += 1
            if ns_update is not None:
                ns = session.get(NsInstanceRow, row.ns_instance_id)
                if ns is None:
                    raise ApiError(404, f"NS instance {row.ns_instance_id} does not exist")
                ns_update(ns)
                ns.revision += 1

    # -- state changes ---------------------------------------------------------------------

    def apply(
        self,
        op_id: str,
        event: Event,
        *,
        error: dict[str, Any] | None = None,
        ns_update: NsUpdate | None = None,
    ) -> NsLcmOpOccRow:
        """Move the occurrence on by ``event``; TransitionRefused if its state does not allow it.

        ``ns_update`` changes the NS instance in the same transaction (what a completed
        operation made of it).
        """
        with transaction(self.sessions) as session:
            row = self._locked(session, op_id)
            self._apply(session, row, event, error=error, ns_update=ns_update)
        self.wake_notifications()
        return row

    def _apply(
        self,
        session: Session,
        row: NsLcmOpOccRow,
        event: Event,
        *,
        error: dict[str, Any] | None = None,
        ns_update: NsUpdate | None = None,
    ) -> OpState:
        before = OpState(row.operation_state)
        after = transition(before, event, operation=row.operation)
        self._enter(row, after, error)
        ns = session.get(NsInstanceRow, row.ns_instance_id)
        if ns is None:
            raise ApiError(404, f"NS instance {row.ns_instance_id} does not exist")
        changed = False
        if ns_update is not None:
            ns_update(ns)
            changed = True
        settled = ns_state_after(row.operation, after)
        if settled is not None and settled != ns.ns_state:
            ns.ns_state = settled
            changed = True
        if ns.ns_state == "INSTANTIATED" and ns.flavour_id is None:
            # What the InstantiateNsRequest chose, unless the worker recorded more.
            params = row.operation_params or {}
            ns.flavour_id = str(params.get("nsFlavourId"))
            level = params.get("nsInstantiationLevelId")
            ns.instantiation_level_id = level if isinstance(level, str) else None
        if ns.ns_state == "NOT_INSTANTIATED" and (
            ns.flavour_id is not None or ns.vnf_instances or ns.virtual_links
        ):
            ns.flavour_id = None
            ns.instantiation_level_id = None
            ns.vnf_instances = []
            ns.virtual_links = []
            ns.scale_status = []
            changed = True
        if changed:
            ns.revision += 1
        session.flush()
        notify_op_occ(session, row, ns, self.base_url, notification_status(after))
        log.info("ns op %s: %s -> %s (%s)", row.id, before.value, after.value, event.value)
        return after

    def request_task(
        self, op_id: str, task: str, *, cancel_mode: str | None = None
    ) -> tuple[NsLcmOpOccRow, str | None]:
        """The retry, rollback, continue, fail or cancel task; the work to dispatch, if any."""
        if task not in TASKS:
            raise ApiError(404, f"NS LCM operation occurrences have no task {task!r}")
        with transaction(self.sessions) as session:
            row = self._locked(session, op_id)
            event = self._task_event(row, task)
            if task == "cancel":
                row.is_cancel_pending = True
                row.cancel_mode = cancel_mode or "GRACEFUL"
                row.revision += 1
                return row, None
            if task == "continue":
                # The worker skips the step that failed (progress["failed"]) this time.
                row.progress = {**(row.progress or {}), "continue": True}
            elif task == "retry":
                row.progress = {**(row.progress or {}), "continue": False}
            self._apply(session, row, event)
        self.wake_notifications()
        return row, _TASK_DISPATCH[task]

    # -- recovery --------------------------------------------------------------------------

    def _worker_lost(self, session: Session, row: NsLcmOpOccRow) -> None:
        """FAILED_TEMP: the worker records each step, so a retry resumes from the record."""
        self._apply(session, row, Event.WORKER_LOST, error=problem(500, WORKER_LOST_DETAIL))
