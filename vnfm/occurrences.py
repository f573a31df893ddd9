"""VNF LCM operation occurrences as stored: start, claim by a worker, move through states.

The API side starts occurrences (the task resources of a VNF instance) and asks for the
tasks of an occurrence (retry, rollback, fail, cancel); the worker side claims an occurrence
with a lease, renews the lease while it works, and reports what happened as
:class:`~vnfm.opocc_states.Event` values through :meth:`OccurrenceService.apply`. Both sides
use this one service, so every state change is validated by :mod:`vnfm.opocc_states`,
persisted together with the notification it causes, and reflected on the VNF instance.

Concurrency. Every change starts with a write to the row it is about (:func:`_lock`): on
PostgreSQL that takes the row lock, on SQLite the database write lock, so the reads that
follow in the same transaction see the latest committed state and nobody else can change
it before the commit. Leases are taken with one conditional UPDATE (:meth:`claim`), which
is atomic on both databases.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sol013.problem import ApiError, ProblemDetails, reason_phrase
from store.base import transaction, utcnow
from vnfm.instantiated_info import resources_connection
from vnfm.models import LcmOpOccRow, VnfInstanceRow
from vnfm.modify_info import apply_modifications
from vnfm.notifications import notify_op_occ
from vnfm.operation import OperationContext, OperationResult
from vnfm.opocc_states import (
    TASK_EVENTS,
    TASKS,
    Event,
    OpState,
    TransitionRefused,
    allowed_tasks,
    instance_state_after,
    is_final,
    notification_status,
    transition,
)

__all__ = [
    "NEEDS_STARTED",
    "RUNNING",
    "WORKER_LOST_DETAIL",
    "Dispatch",
    "InstanceCheck",
    "OccurrenceService",
    "problem",
]

log = logging.getLogger(__name__)

Dispatch = Callable[[str, str], None]
"""(op_id, kind) with kind "run" or "rollback": hand the occurrence to a worker."""

RUNNING: frozenset[OpState] = frozenset(
    {OpState.STARTING, OpState.PROCESSING, OpState.ROLLING_BACK}
)
"""States in which a worker holds (or is about to hold) the occurrence."""

WORKER_LOST_DETAIL = "the worker running this operation was lost; retry, rollback or fail it"
_WORKER_LOST_STARTING = (
    "the worker running this operation was lost before the operation was granted; "
    "nothing was changed on the VIM and the operation was rolled back"
)
NEEDS_STARTED: frozenset[str] = frozenset({"SCALE", "SCALE_TO_LEVEL"})
"""Operations refused while the VNF is STOPPED (see `_refuse_state`)."""
InstanceCheck = Callable[[VnfInstanceRow], None]
"""Called with the locked instance when an occurrence starts; raises ApiError to refuse."""
# The kind of work a task hands to a worker.
_TASK_DISPATCH: dict[str, str | None] = {"retry": "run", "rollback": "rollback", "fail": None}


def problem(status: int, detail: str, title: str | None = None) -> dict[str, Any]:
    """A ProblemDetails as stored in an occurrence's ``error`` (and sent in notifications)."""
    body = ProblemDetails(title=title or reason_phrase(status), status=status, detail=detail)
    return body.model_dump(mode="json", exclude_none=True)


def _lock(session: Session, table: type[LcmOpOccRow] | type[VnfInstanceRow], row_id: str) -> bool:
    """Lock one row for the rest of the transaction by writing it unchanged; False if absent.

    A no-op UPDATE rather than SELECT ... FOR UPDATE, which SQLite ignores: on SQLite the
    write takes the database write lock (waiting up to the busy timeout), so the reads after
    it are current; on PostgreSQL it takes the row lock.
    """
    values: dict[Any, Any] = {table.revision: table.revision}
    if table is VnfInstanceRow:
        values[VnfInstanceRow.updated_at] = VnfInstanceRow.updated_at  # not "updated"
    result = session.execute(
        update(table).where(table.id == row_id).values(values),
        execution_options={"synchronize_session": False},
    )
    return bool(getattr(result, "rowcount", 0))


def _update_op(
    session: Session, op_id: str, *conditions: ColumnElement[bool], **values: Any
) -> bool:
    """One conditional UPDATE of an occurrence (atomic on every database); True if it applied."""
    result = session.execute(
        update(LcmOpOccRow).where(LcmOpOccRow.id == op_id, *conditions).values(**values),
        execution_options={"synchronize_session": False},
    )
    return bool(getattr(result, "rowcount", 0))


def _refuse_state(instance: VnfInstanceRow, operation: str) -> None:
    """409 unless the instance is in a state the operation can start from.

    INSTANTIATE needs NOT_INSTANTIATED, MODIFY_INFO any state, every other operation
    INSTANTIATED. A STOPPED VNF is not scaled: the replicas a scale-out adds would run while
    the VNF is meant to be stopped; it is started (OPERATE) first. (Healing is fine: the VIM
    replaces a stopped replica by a stopped one.)
    """
    state = instance.instantiation_state
    if operation != "MODIFY_INFO":
        required = "NOT_INSTANTIATED" if operation == "INSTANTIATE" else "INSTANTIATED"
        if state != required:
            raise ApiError(
                409, f"VNF instance {instance.id} is {state}; {operation} needs it {required}"
            )
    if operation in NEEDS_STARTED and instance.vnf_state == "STOPPED":
        raise ApiError(
            409,
            f"VNF instance {instance.id} is STOPPED; {operation} needs it STARTED "
            "(start it with the operate task first)",
        )


def _running() -> ColumnElement[bool]:
    return LcmOpOccRow.operation_state.in_([s.value for s in RUNNING])


def _lease_free(worker: str | None = None) -> ColumnElement[bool]:
    """No live lease on the occurrence (or, with ``worker``, only that worker's)."""
    now = utcnow()
    free = or_(
        LcmOpOccRow.lease_owner.is_(None),
        LcmOpOccRow.lease_expires_at.is_(None),
        LcmOpOccRow.lease_expires_at < now,
    )
    return free if worker is None else or_(free, LcmOpOccRow.lease_owner == worker)


class OccurrenceService:
    """The stored VNF LCM operation occurrences and their state changes."""

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

    def get(self, session: Session, op_id: str) -> LcmOpOccRow:
        row = session.get(LcmOpOccRow, op_id)
        if row is None:
            raise ApiError(404, f"VNF LCM operation occurrence {op_id} does not exist")
        return row

    def list_all(self, session: Session) -> list[LcmOpOccRow]:
        query = select(LcmOpOccRow).order_by(LcmOpOccRow.created_at, LcmOpOccRow.id)
        return list(session.scalars(query))

    def cancel_requested(self, op_id: str) -> bool:
        with self.sessions() as session:
            pending = session.scalar(
                select(LcmOpOccRow.is_cancel_pending).where(LcmOpOccRow.id == op_id)
            )
        return bool(pending)

    def context(self, op_id: str) -> OperationContext:
        """The executor's view of the occurrence and of its instance as they are now."""
        with self.sessions() as session:
            row = self.get(session, op_id)
            instance = session.get(VnfInstanceRow, row.vnf_instance_id)
            if instance is None:
                raise ApiError(404, f"VNF instance {row.vnf_instance_id} does not exist")
            instantiated = instance.instantiation_state == "INSTANTIATED"
            made_by = self._instantiate_params(session, instance) if instantiated else {}
            level = made_by.get("instantiationLevelId")
            return OperationContext(
                op_id=row.id,
                operation=row.operation,
                vnf_instance_id=instance.id,
                vnfd_id=instance.vnfd_id,
                params=dict(row.operation_params or {}),
                flavour_id=instance.flavour_id,
                scale_levels={k: int(v) for k, v in (instance.scale_levels or {}).items()},
                instantiation_level_id=level if isinstance(level, str) else None,
                cancel_requested=lambda: self.cancel_requested(op_id),
                vnf_state=instance.vnf_state if instantiated else None,
                ext_virtual_links=self._ext_virtual_links(instance, made_by),
                vim_connection_info=dict(instance.vim_connection_info or {}),
                vim_connection_id=(
                    resources_connection(instance.instantiated_info) if instantiated else None
                ),
            )

    @staticmethod
    def _instantiate_params(session: Session, instance: VnfInstanceRow) -> dict[str, Any]:
        """The InstantiateVnfRequest of the instance's completed INSTANTIATE.

        The instance table has no column for its instantiation level; the request that made
        the instance says it (absent when the VNFD's default level was used).
        """
        params = session.scalar(
            select(LcmOpOccRow.operation_params)
            .where(
                LcmOpOccRow.vnf_instance_id == instance.id,
                LcmOpOccRow.operation == "INSTANTIATE",
                LcmOpOccRow.operation_state == OpState.COMPLETED.value,
            )
            .order_by(LcmOpOccRow.created_at.desc())
            .limit(1)
        )
        return dict(params or {})

    @staticmethod
    def _ext_virtual_links(
        instance: VnfInstanceRow, made_by: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The instance's ExtVirtualLinkInfo entries (JSON) as stored.

        An instance instantiated before the VNFM kept them has none in its
        instantiatedVnfInfo; its InstantiateVnfRequest's extVirtualLinks still describe them.
        """
        info = instance.instantiated_info or {}
        if "extVirtualLinkInfo" in info:
            return [dict(link) for link in info["extVirtualLinkInfo"]]
        return [
            {
                "id": link["id"],
                "resourceHandle": {
                    key: link[key]
                    for key in ("vimConnectionId", "resourceProviderId", "resourceId")
                    if key in link
                },
                "currentVnfExtCpData": link.get("extCps", []),
            }
            for link in made_by.get("extVirtualLinks") or ()
            if link.get("extCps")
        ]

    # -- starting --------------------------------------------------------------------------

    def start(
        self,
        instance_id: str,
        operation: str,
        params: dict[str, Any],
        *,
        precondition: InstanceCheck | None = None,
        check: InstanceCheck | None = None,
    ) -> LcmOpOccRow:
        """A new occurrence of ``operation`` in STARTING, its START notification queued.

        With the instance locked: ``precondition`` (e.g. If-Match, 412) runs first, then the
        instance's state is checked (409, see `_refuse_state`), then ``check``.
        """
        try:
            with transaction(self.sessions) as session:
                if not _lock(session, VnfInstanceRow, instance_id):
                    raise ApiError(404, f"VNF instance {instance_id} does not exist")
                instance = session.get(VnfInstanceRow, instance_id)
                assert instance is not None
                if precondition is not None:
                    precondition(instance)
                _refuse_state(instance, operation)
                self._refuse_if_busy(session, instance_id)
                if check is not None:
                    check(instance)
                now = utcnow()
                row = LcmOpOccRow(
                    id=str(uuid.uuid4()),
                    vnf_instance_id=instance_id,
                    operation=operation,
                    operation_state=OpState.STARTING.value,
                    active=True,
                    state_entered_time=now,
                    start_time=now,
                    created_at=now,
                    operation_params=params,
                )
                session.add(row)
                session.flush()
                notify_op_occ(
                    session,
                    row,
                    instance,
                    self.base_url,
                    notification_status=notification_status(OpState.STARTING),
                )
        except IntegrityError:
            # Another request won the race the unique index decides.
            with self.sessions() as session:
                self._refuse_if_busy(session, instance_id)
            raise
        self.wake_notifications()
        log.info("op %s: %s of VNF instance %s started", row.id, operation, instance_id)
        return row

    @staticmethod
    def _refuse_if_busy(session: Session, instance_id: str) -> None:
        running = session.scalars(
            select(LcmOpOccRow).where(
                LcmOpOccRow.vnf_instance_id == instance_id, LcmOpOccRow.active.is_(True)
            )
        ).first()
        if running is not None:
            raise ApiError(
                409,
                f"VNF instance {instance_id} has operation occurrence {running.id} "
                f"({running.operation}, {running.operation_state}) in progress; "
                "only one LCM operation at a time is allowed",
            )

    # -- leases ----------------------------------------------------------------------------

    def claim(self, op_id: str, worker: str, lease_seconds: float) -> LcmOpOccRow | None:
        """Take the occurrence's lease for ``worker``; None if it is not there to take."""
        with transaction(self.sessions) as session:
            expires = utcnow() + timedelta(seconds=lease_seconds)
            conditions = (_running(), _lease_free(worker))
            if not _update_op(
                session, op_id, *conditions, lease_owner=worker, lease_expires_at=expires
            ):
                return None
            return session.get(LcmOpOccRow, op_id)

    def renew(self, op_id: str, worker: str, lease_seconds: float) -> bool:
        """Extend ``worker``'s lease; False if it no longer holds it."""
        with transaction(self.sessions) as session:
            expires = utcnow() + timedelta(seconds=lease_seconds)
            holder = LcmOpOccRow.lease_owner == worker
            return _update_op(session, op_id, holder, _running(), lease_expires_at=expires)

    def release(self, op_id: str, worker: str) -> None:
        with transaction(self.sessions) as session:
            holder = LcmOpOccRow.lease_owner == worker
            _update_op(session, op_id, holder, lease_owner=None, lease_expires_at=None)

    # -- state changes ---------------------------------------------------------------------

    def apply(
        self,
        op_id: str,
        event: Event,
        *,
        error: dict[str, Any] | None = None,
        result: OperationResult | None = None,
        grant_id: str | None = None,
    ) -> LcmOpOccRow:
        """Move the occurrence on by ``event``; TransitionRefused if the state does not allow it."""
        with transaction(self.sessions) as session:
            row = self._locked(session, op_id)
            self._apply(session, row, event, error=error, result=result, grant_id=grant_id)
        self.wake_notifications()
        return row

    def _locked(self, session: Session, op_id: str) -> LcmOpOccRow:
        if not _lock(session, LcmOpOccRow, op_id):
            raise ApiError(404, f"VNF LCM operation occurrence {op_id} does not exist")
        return self.get(session, op_id)

    def _apply(
        self,
        session: Session,
        row: LcmOpOccRow,
        event: Event,
        *,
        error: dict[str, Any] | None = None,
        result: OperationResult | None = None,
        grant_id: str | None = None,
    ) -> OpState:
        before = OpState(row.operation_state)
        after = transition(before, event, operation=row.operation)
        row.operation_state = after.value
        row.state_entered_time = utcnow()
        row.revision += 1
        if grant_id is not None:
            row.grant_id = grant_id
        if error is not None:
            row.error = error
        elif after is OpState.COMPLETED:
            # An error of an earlier attempt stays while the operation is retried or rolled
            # back (SOL003 VnfLcmOpOcc.error); once it completed, it is no longer relevant.
            row.error = None
        if after not in RUNNING:
            row.lease_owner = None
            row.lease_expires_at = None
            # isCancelPending is only ever true in STARTING, PROCESSING and ROLLING_BACK.
            row.is_cancel_pending = False
            row.cancel_mode = None
        if is_final(after):
            row.active = False
        instance = session.get(VnfInstanceRow, row.vnf_instance_id)
        if instance is None:
            raise ApiError(404, f"VNF instance {row.vnf_instance_id} does not exist")
        if after is OpState.COMPLETED and result is not None:
            self._complete(row, instance, result)
        settled = instance_state_after(row.operation, after)
        if settled is not None and settled != instance.instantiation_state:
            instance.instantiation_state = settled
            instance.revision += 1
        if instance.instantiation_state == "NOT_INSTANTIATED" and (
            instance.instantiated_info is not None or instance.flavour_id is not None
        ):
            instance.instantiated_info = None
            instance.flavour_id = None
            instance.vnf_state = None
            instance.scale_levels = {}
        session.flush()
        notify_op_occ(
            session,
            row,
            instance,
            self.base_url,
            notification_status=notification_status(after),
        )
        log.info("op %s: %s -> %s (%s)", row.id, before.value, after.value, event.value)
        return after

    @staticmethod
    def _complete(row: LcmOpOccRow, instance: VnfInstanceRow, result: OperationResult) -> None:
        """Store a completed operation's result on the occurrence and the instance."""
        row.resource_changes = result.resource_changes
        row.changed_info = result.changed_info
        row.changed_ext_connectivity = result.changed_ext_connectivity
        if result.instantiation_state is not None:
            instance.instantiation_state = result.instantiation_state
            instance.flavour_id = result.flavour_id
            instance.scale_levels = dict(result.scale_levels)
            instance.instantiated_info = result.instantiated_info
            instance.vnf_state = result.vnf_state
            instance.revision += 1
        if result.modifications is not None:
            # What the patch actually changed, read against the instance as it is now
            # (MODIFY_INFO; the vimConnectionInfo of CHANGE_EXT_CONN).
            row.changed_info = apply_modifications(instance, result.modifications) or None

    def instances_using(self, vnfd_id: str) -> int:
        """How many VNF instances are based on the VNFD (for its package's usageState)."""
        with self.sessions() as session:
            count = session.scalar(
                select(func.count())
                .select_from(VnfInstanceRow)
                .where(VnfInstanceRow.vnfd_id == vnfd_id)
            )
        return int(count or 0)

    def request_task(
        self, op_id: str, task: str, *, cancel_mode: str | None = None
    ) -> tuple[LcmOpOccRow, str | None]:
        """The retry, rollback, fail or cancel task; the work to dispatch ("run", "rollback")."""
        if task not in TASKS:
            raise ApiError(404, f"operation occurrences have no task {task!r}")
        cancel_now = False
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
            if task != "cancel":
                self._apply(session, row, event)
                kind = _TASK_DISPATCH[task]
            else:
                row.is_cancel_pending = True
                row.cancel_mode = cancel_mode or "GRACEFUL"
                row.revision += 1
                cancel_now = state is OpState.STARTING
                kind = None
        if task != "cancel":
            self.wake_notifications()
            return row, kind
        if cancel_now:
            row = self._cancel_unclaimed(op_id) or row
        return row, None

    def _cancel_unclaimed(self, op_id: str) -> LcmOpOccRow | None:
        """Roll back a STARTING occurrence no worker holds; None if a worker has it.

        The lease is taken first (atomically) so a worker cannot claim it meanwhile; a worker
        that holds it sees ``isCancelPending`` and applies the cancellation itself.
        """
        canceller = f"cancel:{uuid.uuid4()}"
        claimed = self.claim(op_id, canceller, 30.0)
        if claimed is None:
            return None
        if OpState(claimed.operation_state) is not OpState.STARTING:
            self.release(op_id, canceller)
            return None
        return self.apply(op_id, Event.CANCEL)

    # -- recovery --------------------------------------------------------------------------

    def recover(self) -> int:
        """Occurrences whose worker is gone: FAILED_TEMP (or ROLLED_BACK from STARTING).

        Lost means: a lease that expired, or no lease at all for longer than the grace
        period (the hand-over to a worker never arrived). Returns how many were recovered.
        """
        now = utcnow()
        unclaimed_since = now - timedelta(seconds=self.unclaimed_grace_seconds)
        lost = or_(
            and_(
                LcmOpOccRow.lease_expires_at.is_not(None),
                LcmOpOccRow.lease_expires_at < now,
            ),
            and_(
                LcmOpOccRow.lease_owner.is_(None),
                LcmOpOccRow.state_entered_time < unclaimed_since,
            ),
        )
        running = _running()
        with self.sessions() as session:
            candidates = list(session.scalars(select(LcmOpOccRow.id).where(running, lost)))
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
                starting = OpState(row.operation_state) is OpState.STARTING
                detail = _WORKER_LOST_STARTING if starting else WORKER_LOST_DETAIL
                log.warning("op %s: worker lost in %s", op_id, row.operation_state)
                self._apply(session, row, Event.WORKER_LOST, error=problem(500, detail))
            recovered += 1
        if recovered:
            self.wake_notifications()
        return recovered
