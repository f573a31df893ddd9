"""VNF LCM operation occurrences as stored: start, claim by a worker, move through states.

The API side starts occurrences (the task resources of a VNF instance) and asks for the
tasks of an occurrence (retry, rollback, fail, cancel); the worker side claims an occurrence
with a lease, renews the lease while it works, and reports what happened as
:class:`~vnfm.opocc_states.Event` values through :meth:`OccurrenceService.apply`. Both sides
use this one service, so every state change is validated by :mod:`vnfm.opocc_states`,
persisted together with the notification it causes, and reflected on the VNF instance.

Locking, leases and crash recovery are those of every operation occurrence
(:mod:`sol013.opocc.store`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sol013.opocc.store import OccurrenceStore, problem
from sol013.opocc.workers import Dispatch
from sol013.problem import ApiError
from store.base import transaction, utcnow
from vnfm.instantiated_info import resources_connection
from vnfm.models import LcmOpOccRow, VnfInstanceRow
from vnfm.modify_info import apply_modifications
from vnfm.notifications import notify_op_occ
from vnfm.operation import OperationContext, OperationResult
from vnfm.opocc_states import (
    MACHINE,
    RUNNING,
    TASKS,
    Event,
    OpState,
    instance_state_after,
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


WORKER_LOST_DETAIL = "the worker running this operation was lost; retry, rollback or fail it"
_WORKER_LOST_STARTING = (
    "the worker running this operation was lost before the operation was granted; "
    "nothing was changed on the VIM and the operation was rolled back"
)
NEEDS_STARTED: frozenset[str] = frozenset({"SCALE", "SCALE_TO_LEVEL", "CHANGE_FLAVOUR"})
"""Operations refused while the VNF is STOPPED (see `_refuse_state`)."""
InstanceCheck = Callable[[VnfInstanceRow], None]
"""Called with the locked instance when an occurrence starts; raises ApiError to refuse."""
# The kind of work a task hands to a worker.
_TASK_DISPATCH: dict[str, str | None] = {"retry": "run", "rollback": "rollback", "fail": None}


def _refuse_state(instance: VnfInstanceRow, operation: str) -> None:
    """409 unless the instance is in a state the operation can start from.

    INSTANTIATE needs NOT_INSTANTIATED, MODIFY_INFO any state, every other operation
    INSTANTIATED. A STOPPED VNF is not scaled, nor its flavour changed: the replicas they add
    would run while the VNF is meant to be stopped; it is started (OPERATE) first. (Healing is
    fine: the VIM
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


class OccurrenceService(OccurrenceStore[LcmOpOccRow]):
    """The stored VNF LCM operation occurrences and their state changes."""

    table = LcmOpOccRow
    instance_table = VnfInstanceRow
    instance_key = "vnf_instance_id"
    machine = MACHINE
    noun = "VNF LCM operation occurrence"
    instance_noun = "VNF instance"
    log = log

    # -- reading ---------------------------------------------------------------------------

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
                instantiated_info=dict(instance.instantiated_info or {}) if instantiated else {},
                additional_params=dict(made_by.get("additionalParams") or {}),
            )

    @staticmethod
    def _instantiate_params(session: Session, instance: VnfInstanceRow) -> dict[str, Any]:
        """The request that set the instance's flavour: its completed INSTANTIATE's, or its
        last completed CHANGE_FLAVOUR's (both name instantiationLevelId, additionalParams and
        extVirtualLinks alike).

        The instance table has no column for its instantiation level; the request that made
        the instance says it (absent when the VNFD's default level was used).
        """
        params = session.scalar(
            select(LcmOpOccRow.operation_params)
            .where(
                LcmOpOccRow.vnf_instance_id == instance.id,
                LcmOpOccRow.operation.in_(("INSTANTIATE", "CHANGE_FLAVOUR")),
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

        def create(session: Session) -> LcmOpOccRow:
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
            self._notify(session, row, instance)
            return row

        row = self._start(instance_id, create)
        log.info("op %s: %s of VNF instance %s started", row.id, operation, instance_id)
        return row

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
        if grant_id is not None:
            row.grant_id = grant_id
        self._enter(row, after, error)
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
        self._notify(session, row, instance)
        log.info("op %s: %s -> %s (%s)", row.id, before.value, after.value, event.value)
        return after

    def _notify(self, session: Session, row: LcmOpOccRow, instance: VnfInstanceRow) -> None:
        """Queue the notification of the state the occurrence just entered."""
        status = notification_status(OpState(row.operation_state))
        notify_op_occ(session, row, instance, self.base_url, notification_status=status)

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
            event = self._task_event(row, task)
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

    def _worker_lost(self, session: Session, row: LcmOpOccRow) -> None:
        """FAILED_TEMP, or ROLLED_BACK from STARTING (nothing was done on the VIM yet)."""
        starting = OpState(row.operation_state) is OpState.STARTING
        detail = _WORKER_LOST_STARTING if starting else WORKER_LOST_DETAIL
        self._apply(session, row, Event.WORKER_LOST, error=problem(500, detail))
