"""NS LCM operation occurrences as stored: start, claim by a worker, record steps, move on.

The same design as the VNFM's occurrences (vnfm/occurrences.py, docs/lcm.md): the API
starts occurrences and asks for their tasks; an orchestration worker claims an occurrence
with a lease (one conditional UPDATE, atomic on SQLite and PostgreSQL), renews it while it
works, records its steps (:meth:`NsOccurrenceService.record`) and reports the outcome as an
:class:`~nfvo.nslcm.opocc_states.Event` through :meth:`NsOccurrenceService.apply`. Every
state change is validated by :mod:`nfvo.nslcm.opocc_states`, stored together with the
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
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from nfvo.nslcm.models import NsInstanceRow, NsLcmOpOccRow
from nfvo.nslcm.notifications import notify_op_occ
from nfvo.nslcm.opocc_states import (
    RUNNING,
    TASK_EVENTS,
    TASKS,
    Event,
    OpState,
    TransitionRefused,
    allowed_tasks,
    is_final,
    notification_status,
    ns_state_after,
    transition,
)
from sol013.problem import ApiError, ProblemDetails, reason_phrase
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

Dispatch = Callable[[str, str], None]
"""(op_id, kind) with kind "run" or "rollback": hand the occurrence to a worker."""
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


def problem(status: int, detail: str, title: str | None = None) -> dict[str, Any]:
    """A ProblemDetails as stored in an occurrence's ``error``."""
    body = ProblemDetails(title=title or reason_phrase(status), status=status, detail=detail)
    return body.model_dump(mode="json", exclude_none=True)


def _lock(session: Session, table: type[NsLcmOpOccRow] | type[NsInstanceRow], row_id: str) -> bool:
    """Lock one row for the transaction by writing it unchanged; False if absent.

    A no-op UPDATE rather than SELECT ... FOR UPDATE, which SQLite ignores: there the write
    takes the database write lock, on PostgreSQL the row lock; the reads after it are current.
    """
    values: dict[Any, Any] = {table.revision: table.revision}
    if table is NsInstanceRow:
        values[NsInstanceRow.updated_at] = NsInstanceRow.updated_at
    result = session.execute(
        update(table).where(table.id == row_id).values(values),
        execution_options={"synchronize_session": False},
    )
    return bool(getattr(result, "rowcount", 0))


def _update_op(
    session: Session, op_id: str, *conditions: ColumnElement[bool], **values: Any
) -> bool:
    """One conditional UPDATE of an occurrence; True if it applied."""
    result = session.execute(
        update(NsLcmOpOccRow).where(NsLcmOpOccRow.id == op_id, *conditions).values(**values),
        execution_options={"synchronize_session": False},
    )
    return bool(getattr(result, "rowcount", 0))


def _running() -> ColumnElement[bool]:
    return NsLcmOpOccRow.operation_state.in_([s.value for s in RUNNING])


def _lease_free(worker: str) -> ColumnElement[bool]:
    now = utcnow()
    return or_(
        NsLcmOpOccRow.lease_owner.is_(None),
        NsLcmOpOccRow.lease_expires_at.is_(None),
        NsLcmOpOccRow.lease_expires_at < now,
        NsLcmOpOccRow.lease_owner == worker,
    )


def _refuse_state(ns: NsInstanceRow, operation: str) -> None:
    """409 unless the NS instance is in the state the operation starts from."""
    required = "NOT_INSTANTIATED" if operation == "INSTANTIATE" else "INSTANTIATED"
    if ns.ns_state != required:
        raise ApiError(
            409, f"NS instance {ns.id} is {ns.ns_state}; {operation} needs it {required}"
        )


class NsOccurrenceService:
    """The stored NS LCM operation occurrences and their state changes."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        base_url: str,
        wake_notifications: Callable[[], None] = lambda: None,
        unclaimed_grace_seconds: float = 60.0,
    ) -> None:
        self.sessions = sessions
        self.base_url = base_url.rstrip("/")
        self.wake_notifications = wake_notifications
        # How long a started (or retried) occurrence may wait for a worker before recovery
        # decides that the hand-over was lost.
        self.unclaimed_grace_seconds = unclaimed_grace_seconds

    # -- reading ---------------------------------------------------------------------------

    def get(self, session: Session, op_id: str) -> NsLcmOpOccRow:
        row = session.get(NsLcmOpOccRow, op_id)
        if row is None:
            raise ApiError(404, f"NS LCM operation occurrence {op_id} does not exist")
        return row

    def read(self, op_id: str) -> NsLcmOpOccRow:
        with self.sessions() as session:
            return self.get(session, op_id)

    def list_all(self, session: Session) -> list[NsLcmOpOccRow]:
        query = select(NsLcmOpOccRow).order_by(NsLcmOpOccRow.created_at, NsLcmOpOccRow.id)
        return list(session.scalars(query))

    def cancel_requested(self, op_id: str) -> bool:
        with self.sessions() as session:
            pending = session.scalar(
                select(NsLcmOpOccRow.is_cancel_pending).where(NsLcmOpOccRow.id == op_id)
            )
        return bool(pending)

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
        try:
            with transaction(self.sessions) as session:
                if not _lock(session, NsInstanceRow, ns_instance_id):
                    raise ApiError(404, f"NS instance {ns_instance_id} does not exist")
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
        except IntegrityError:
            # Another request won the race the unique index decides.
            with self.sessions() as session:
                self._refuse_if_busy(session, ns_instance_id)
            raise
        self.wake_notifications()
        log.info("ns op %s: %s of NS instance %s started", row.id, operation, ns_instance_id)
        return row

    @staticmethod
    def _refuse_if_busy(session: Session, ns_instance_id: str) -> None:
        running = session.scalars(
            select(NsLcmOpOccRow).where(
                NsLcmOpOccRow.ns_instance_id == ns_instance_id, NsLcmOpOccRow.active.is_(True)
            )
        ).first()
        if running is not None:
            raise ApiError(
                409,
                f"NS instance {ns_instance_id} has operation occurrence {running.id} "
                f"({running.operation}, {running.operation_state}) in progress; "
                "only one LCM operation at a time is allowed",
            )

    def active_for(self, session: Session, ns_instance_id: str) -> NsLcmOpOccRow | None:
        """The occurrence not yet final of an NS instance, if any."""
        query = select(NsLcmOpOccRow).where(
            NsLcmOpOccRow.ns_instance_id == ns_instance_id, NsLcmOpOccRow.active.is_(True)
        )
        return session.scalars(query).first()

    # -- leases ----------------------------------------------------------------------------

    def claim(self, op_id: str, worker: str, lease_seconds: float) -> NsLcmOpOccRow | None:
        """Take the occurrence's lease for ``worker``; None if it is not there to take."""
        with transaction(self.sessions) as session:
            expires = utcnow() + timedelta(seconds=lease_seconds)
            if not _update_op(
                session,
                op_id,
                _running(),
                _lease_free(worker),
                lease_owner=worker,
                lease_expires_at=expires,
            ):
                return None
            return session.get(NsLcmOpOccRow, op_id)

    def renew(self, op_id: str, worker: str, lease_seconds: float) -> bool:
        """Extend ``worker``'s lease; False if it no longer holds it."""
        with transaction(self.sessions) as session:
            expires = utcnow() + timedelta(seconds=lease_seconds)
            holder = NsLcmOpOccRow.lease_owner == worker
            return _update_op(session, op_id, holder, _running(), lease_expires_at=expires)

    def release(self, op_id: str, worker: str) -> None:
        with transaction(self.sessions) as session:
            holder = NsLcmOpOccRow.lease_owner == worker
            _update_op(session, op_id, holder, lease_owner=None, lease_expires_at=None)

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

    def _locked(self, session: Session, op_id: str) -> NsLcmOpOccRow:
        if not _lock(session, NsLcmOpOccRow, op_id):
            raise ApiError(404, f"NS LCM operation occurrence {op_id} does not exist")
        return self.get(session, op_id)

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
        row.operation_state = after.value
        row.state_entered_time = utcnow()
        row.revision += 1
        if error is not None:
            row.error = error
        elif after is OpState.COMPLETED:
            # An earlier attempt's error stays while the operation is retried or rolled
            # back (SOL005 NsLcmOpOcc.error); once it completed, it no longer applies.
            row.error = None
        if after not in RUNNING:
            row.lease_owner = None
            row.lease_expires_at = None
            row.is_cancel_pending = False
            row.cancel_mode = None
        if is_final(after):
            row.active = False
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
            state = OpState(row.operation_state)
            event = TASK_EVENTS[task]
            if task not in allowed_tasks(state, row.operation):
                try:
                    transition(state, event, operation=row.operation)
                except TransitionRefused as exc:
                    raise ApiError(exc.status, exc.detail) from None
                raise ApiError(409, f"{task} is not possible now")  # pragma: no cover
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

    def recover(self) -> int:
        """Occurrences whose worker is gone: FAILED_TEMP. Returns how many.

        Lost means: a lease that expired, or no lease at all for longer than the grace
        period (the hand-over to a worker never arrived).
        """
        now = utcnow()
        unclaimed_since = now - timedelta(seconds=self.unclaimed_grace_seconds)
        lost = or_(
            and_(
                NsLcmOpOccRow.lease_expires_at.is_not(None),
                NsLcmOpOccRow.lease_expires_at < now,
            ),
            and_(
                NsLcmOpOccRow.lease_owner.is_(None),
                NsLcmOpOccRow.state_entered_time < unclaimed_since,
            ),
        )
        running = _running()
        with self.sessions() as session:
            candidates = list(session.scalars(select(NsLcmOpOccRow.id).where(running, lost)))
        recovered = 0
        for op_id in candidates:
            # Take the lease as claim does, so a worker claiming it now cannot also run it.
            recoverer = f"recovery:{uuid.uuid4()}"
            with transaction(self.sessions) as session:
                expires = now + timedelta(seconds=30)
                if not _update_op(
                    session, op_id, running, lost, lease_owner=recoverer, lease_expires_at=expires
                ):
                    continue
                row = self.get(session, op_id)
                log.warning("ns op %s: worker lost in %s", op_id, row.operation_state)
                self._apply(session, row, Event.WORKER_LOST, error=problem(500, WORKER_LOST_DETAIL))
            recovered += 1
        if recovered:
            self.wake_notifications()
        return recovered
