"""Stored operation occurrences: lookup, one-at-a-time per instance, leases, recovery.

:class:`OccurrenceStore` holds what the VNF and the NS occurrence services do alike; each
side subclasses it with its table, its state machine and what a state change does to its
instance (``_apply``, ``_worker_lost``).

Concurrency. Every change starts with a write to the row it is about (:func:`lock_row`): on
PostgreSQL that takes the row lock, on SQLite the database write lock, so the reads that
follow in the same transaction see the latest committed state and nobody else can change
it before the commit. Leases are taken with one conditional UPDATE (:meth:`claim`), which
is atomic on both databases.

Crashes: a worker killed mid-operation stops renewing its lease; :meth:`recover` settles
occurrences whose lease expired, or that no worker claimed within a grace period.
"""

from __future__ import annotations

import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar, cast

from sqlalchemy import Column, ColumnElement, and_, or_, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapper, Session, sessionmaker
from sqlalchemy.sql.base import ReadOnlyColumnCollection

from sol013.opocc.machine import StateMachine, TransitionRefused
from sol013.problem import ApiError, ProblemDetails, reason_phrase
from store.base import transaction, utcnow

__all__ = ["OccurrenceRow", "OccurrenceStore", "columns", "lock_row", "problem"]


class OccurrenceRow(Protocol):
    """What every operation occurrence row has."""

    id: str
    revision: int
    operation: str
    operation_state: str
    active: bool
    state_entered_time: datetime
    is_cancel_pending: bool
    cancel_mode: str | None
    error: dict[str, Any] | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    created_at: datetime


# Not bound to OccurrenceRow: mypy refuses a mapped class as the argument of a type variable
# bound to a protocol (it does not see through the Mapped descriptors there), while it
# accepts it as a value of the protocol type; `_occurrence` makes that step.
RowT = TypeVar("RowT")


def _occurrence(row: object) -> OccurrenceRow:
    return cast(OccurrenceRow, row)


def columns(table: type[object]) -> ReadOnlyColumnCollection[str, Column[Any]]:
    """The columns of a mapped class, for queries written once for several tables."""
    mapper: Mapper[Any] = sa_inspect(table)
    return mapper.columns


def problem(status: int, detail: str, title: str | None = None) -> dict[str, Any]:
    """A ProblemDetails as stored in an occurrence's ``error`` (and sent in notifications)."""
    body = ProblemDetails(title=title or reason_phrase(status), status=status, detail=detail)
    return body.model_dump(mode="json", exclude_none=True)


def lock_row(session: Session, table: type[object], row_id: str) -> bool:
    """Lock one row for the rest of the transaction by writing it unchanged; False if absent.

    ``table`` is a mapped class with ``id`` and ``revision`` columns. A no-op UPDATE rather
    than SELECT ... FOR UPDATE, which SQLite ignores: on SQLite the write takes the database
    write lock (waiting up to the busy timeout), so the reads after it are current; on
    PostgreSQL it takes the row lock. An ``updated_at`` column is written unchanged too, so
    its onupdate default does not take the lock for a change.
    """
    c = columns(table)
    values: dict[Any, Any] = {c.revision: c.revision}
    if "updated_at" in c:
        values[c.updated_at] = c.updated_at
    result = session.execute(
        update(table).where(c.id == row_id).values(values),
        execution_options={"synchronize_session": False},
    )
    return bool(getattr(result, "rowcount", 0))


class OccurrenceStore(ABC, Generic[RowT]):
    """The occurrences of one table: what does not depend on the interface they belong to.

    A subclass sets the class attributes below and implements ``_worker_lost``.
    """

    table: type[RowT]
    """The occurrence table."""
    instance_table: type[object]
    """The table of the instances occurrences change."""
    instance_key: str
    """The occurrence column naming its instance."""
    machine: StateMachine[Any, Any]
    """The occurrences' state machine."""
    noun: str
    """How an occurrence is named in problem details ("VNF LCM operation occurrence")."""
    instance_noun: str
    """How an instance is named in problem details ("VNF instance")."""
    log: logging.Logger
    """The logger of the subclass's module."""
    log_prefix: str = "op"
    """How log lines name an occurrence ("op", "ns op")."""

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

    @property
    def c(self) -> ReadOnlyColumnCollection[str, Column[Any]]:
        """The occurrence table's columns."""
        return columns(self.table)

    # -- reading ---------------------------------------------------------------------------

    def get(self, session: Session, op_id: str) -> RowT:
        row = session.get(self.table, op_id)
        if row is None:
            raise ApiError(404, f"{self.noun} {op_id} does not exist")
        return row

    def read(self, op_id: str) -> RowT:
        with self.sessions() as session:
            return self.get(session, op_id)

    def list_all(self, session: Session) -> list[RowT]:
        query = select(self.table).order_by(self.c.created_at, self.c.id)
        return list(session.scalars(query))

    def cancel_requested(self, op_id: str) -> bool:
        with self.sessions() as session:
            pending = session.scalar(select(self.c.is_cancel_pending).where(self.c.id == op_id))
        return bool(pending)

    def active_for(self, session: Session, instance_id: str) -> RowT | None:
        """The occurrence not yet final of an instance, if any."""
        query = select(self.table).where(
            self.c[self.instance_key] == instance_id, self.c.active.is_(True)
        )
        return session.scalars(query).first()

    # -- starting --------------------------------------------------------------------------

    def _refuse_if_busy(self, session: Session, instance_id: str) -> None:
        active = self.active_for(session, instance_id)
        if active is not None:
            running = _occurrence(active)
            raise ApiError(
                409,
                f"{self.instance_noun} {instance_id} has operation occurrence {running.id} "
                f"({running.operation}, {running.operation_state}) in progress; "
                "only one LCM operation at a time is allowed",
            )

    def _start(self, instance_id: str, create: Callable[[Session], RowT]) -> RowT:
        """Run ``create`` with the instance locked (404 if absent); notifications woken.

        The partial unique index on the active occurrences of an instance decides a race
        between two requests; the loser gets the same 409 as if it had come second.
        """
        try:
            with transaction(self.sessions) as session:
                if not lock_row(session, self.instance_table, instance_id):
                    raise ApiError(404, f"{self.instance_noun} {instance_id} does not exist")
                row = create(session)
        except IntegrityError:
            with self.sessions() as session:
                self._refuse_if_busy(session, instance_id)
            raise
        self.wake_notifications()
        return row

    # -- leases ----------------------------------------------------------------------------

    def _update_op(self, session: Session, op_id: str, *conditions: Any, **values: Any) -> bool:
        """One conditional UPDATE of an occurrence (atomic on every database); True if applied."""
        result = session.execute(
            update(self.table).where(self.c.id == op_id, *conditions).values(**values),
            execution_options={"synchronize_session": False},
        )
        return bool(getattr(result, "rowcount", 0))

    def _running(self) -> ColumnElement[bool]:
        return self.c.operation_state.in_([state.value for state in self.machine.running])

    def _lease_free(self, worker: str) -> ColumnElement[bool]:
        """No live lease on the occurrence, or only ``worker``'s."""
        now = utcnow()
        return or_(
            self.c.lease_owner.is_(None),
            self.c.lease_expires_at.is_(None),
            self.c.lease_expires_at < now,
            self.c.lease_owner == worker,
        )

    def claim(self, op_id: str, worker: str, lease_seconds: float) -> RowT | None:
        """Take the occurrence's lease for ``worker``; None if it is not there to take."""
        with transaction(self.sessions) as session:
            expires = utcnow() + timedelta(seconds=lease_seconds)
            conditions = (self._running(), self._lease_free(worker))
            if not self._update_op(
                session, op_id, *conditions, lease_owner=worker, lease_expires_at=expires
            ):
                return None
            return session.get(self.table, op_id)

    def renew(self, op_id: str, worker: str, lease_seconds: float) -> bool:
        """Extend ``worker``'s lease; False if it no longer holds it."""
        with transaction(self.sessions) as session:
            expires = utcnow() + timedelta(seconds=lease_seconds)
            holder = self.c.lease_owner == worker
            return self._update_op(
                session, op_id, holder, self._running(), lease_expires_at=expires
            )

    def release(self, op_id: str, worker: str) -> None:
        with transaction(self.sessions) as session:
            holder = self.c.lease_owner == worker
            self._update_op(session, op_id, holder, lease_owner=None, lease_expires_at=None)

    # -- state changes ---------------------------------------------------------------------

    def _locked(self, session: Session, op_id: str) -> RowT:
        if not lock_row(session, self.table, op_id):
            raise ApiError(404, f"{self.noun} {op_id} does not exist")
        return self.get(session, op_id)

    def _task_event(self, row: OccurrenceRow, task: str) -> Any:
        """The event of ``task`` on the locked occurrence; ApiError 404 or 409 if refused."""
        try:
            return self.machine.task_event(row.operation_state, task, row.operation)
        except TransitionRefused as exc:
            raise ApiError(exc.status, exc.detail) from None

    def _enter(self, row: OccurrenceRow, after: StrEnum, error: dict[str, Any] | None) -> None:
        """Record on the occurrence that it entered ``after``."""
        row.operation_state = after.value
        row.state_entered_time = utcnow()
        row.revision += 1
        if error is not None:
            row.error = error
        elif after == "COMPLETED":
            # An error of an earlier attempt stays while the operation is retried or rolled
            # back (VnfLcmOpOcc.error, NsLcmOpOcc.error); once it completed, it no longer
            # applies.
            row.error = None
        if after not in self.machine.running:
            row.lease_owner = None
            row.lease_expires_at = None
            # isCancelPending is only ever true while a worker holds the occurrence.
            row.is_cancel_pending = False
            row.cancel_mode = None
        if self.machine.is_final(after):
            row.active = False

    # -- recovery --------------------------------------------------------------------------

    @abstractmethod
    def _worker_lost(self, session: Session, row: RowT) -> None:
        """Settle an occurrence whose worker is gone (its lease is held by recovery)."""

    def recover(self) -> int:
        """Occurrences whose worker is gone, settled by ``_worker_lost``. Returns how many.

        Lost means: a lease that expired, or no lease at all for longer than the grace
        period (the hand-over to a worker never arrived).
        """
        c = self.c
        now = utcnow()
        unclaimed_since = now - timedelta(seconds=self.unclaimed_grace_seconds)
        lost = or_(
            and_(c.lease_expires_at.is_not(None), c.lease_expires_at < now),
            and_(c.lease_owner.is_(None), c.state_entered_time < unclaimed_since),
        )
        running = self._running()
        with self.sessions() as session:
            candidates = list(session.scalars(select(c.id).where(running, lost)))
        recovered = 0
        for op_id in candidates:
            # Take the lease as claim does, so a worker claiming it now cannot also run it.
            recoverer = f"recovery:{uuid.uuid4()}"
            with transaction(self.sessions) as session:
                expires = now + timedelta(seconds=30)
                if not self._update_op(
                    session, op_id, running, lost, lease_owner=recoverer, lease_expires_at=expires
                ):
                    continue
                row = self.get(session, op_id)
                state = _occurrence(row).operation_state
                self.log.warning("%s %s: worker lost in %s", self.log_prefix, op_id, state)
                self._worker_lost(session, row)
            recovered += 1
        if recovered:
            self.wake_notifications()
        return recovered
