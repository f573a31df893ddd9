"""What a worker does with one LCM operation occurrence: claim it, drive it, release it.

A Celery task (`vnfm.celery_app`) calls `run_operation` or `rollback_operation` with the
occurrence id. The worker:

1. claims the occurrence, i.e. takes its lease (`OccurrenceService.claim`); if it cannot
   (final, FAILED_TEMP, or another live worker holds it) it returns quietly;
2. renews the lease from a heartbeat thread while it works; if a renewal is refused the
   worker has lost the occurrence (recovery gave it up) and stops at the executor's next
   cancellation check, without recording anything;
3. does what the occurrence's state asks for: STARTING -> grant (MODIFY_INFO needs none),
   then PROCESSING -> run the executor; ROLLING_BACK -> roll back; and records the outcome
   as an `Event`;
4. releases the lease.

The state stored in the database decides what is done, not the kind of task that carried
the id: a late or duplicated message can then never run the wrong step.

Nothing is ever left running: every exception the executor raises ends the occurrence in
FAILED_TEMP (or ROLLED_BACK in STARTING) with a ProblemDetails saying why. A worker killed
outright leaves its lease to expire, and recovery (`OccurrenceService.recover`) finishes the
job (docs/lcm.md, "Crashes").
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from sol013.opocc.workers import Lease, claimed
from vnfm.executor import Cancelled, ExecutionError, Executor, OperationContext, OperationResult
from vnfm.nfvo_client import GrantRefused, NfvoClient
from vnfm.occurrences import Dispatch, OccurrenceService, problem
from vnfm.opocc_states import Event, OpState

__all__ = [
    "HasDataDir",
    "WorkerServices",
    "dispatcher_for",
    "rollback_operation",
    "run_operation",
]

log = logging.getLogger(__name__)

TaskKind = Literal["run", "rollback"]


@dataclass
class WorkerServices:
    """Everything a worker needs to drive occurrences; built once per worker process."""

    occurrences: OccurrenceService
    executor: Executor
    nfvo: NfvoClient
    worker_id: str
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0


def _execution_problem(exc: ExecutionError, title: str) -> dict[str, Any]:
    return problem(exc.status, exc.detail, title)


def _internal_problem(exc: BaseException) -> dict[str, Any]:
    """An unexpected failure: the operation must end, never stay running."""
    return problem(500, f"internal error: {exc!r}", "Internal Server Error")


class _Driver:
    """Drives one claimed occurrence from the state it is in."""

    def __init__(self, op_id: str, services: WorkerServices, lease: Lease) -> None:
        self.op_id = op_id
        self.services = services
        self.lease = lease
        occurrences = services.occurrences

        def cancel_requested() -> bool:
            return lease.lost.is_set() or occurrences.cancel_requested(op_id)

        self.ctx: OperationContext = dataclasses.replace(
            occurrences.context(op_id), cancel_requested=cancel_requested
        )

    def apply(self, event: Event, **fields: Any) -> OpState | None:
        """Record `event`, unless the lease was lost (someone else decides now)."""
        if self.lease.lost.is_set():
            log.warning("op %s: not recording %s: the lease was lost", self.op_id, event.value)
            return None
        row = self.services.occurrences.apply(self.op_id, event, **fields)
        log.info("op %s: %s -> %s", self.op_id, event.value, row.operation_state)
        return OpState(row.operation_state)

    def drive(self, state: OpState) -> None:
        if state is OpState.STARTING:
            next_state = self.grant()
            if next_state is not OpState.PROCESSING:
                return
            state = next_state
        if state is OpState.PROCESSING:
            self.run()
        elif state is OpState.ROLLING_BACK:
            self.rollback()
        else:
            log.warning("op %s: claimed in %s, nothing to do", self.op_id, state.value)

    def grant(self) -> OpState | None:
        services = self.services
        try:
            if self.ctx.cancel_requested():
                raise Cancelled(f"{self.ctx.operation} cancelled before the grant")
            if not services.executor.needs_grant(self.ctx):
                return self.apply(Event.GRANTED)
            request = services.executor.grant_request(self.ctx)
            grant = services.nfvo.request_grant(request)
        except GrantRefused as exc:
            return self.apply(
                Event.GRANT_REFUSED, error=problem(403, title="Grant rejected", detail=exc.detail)
            )
        except Cancelled:
            return None if self.lease.lost.is_set() else self.apply(Event.CANCEL)
        except ExecutionError as exc:
            return self.apply(
                Event.START_FAILED, error=_execution_problem(exc, "Grant request failed")
            )
        except Exception as exc:
            log.exception("op %s: requesting the grant failed", self.op_id)
            return self.apply(
                Event.START_FAILED,
                error=problem(
                    500, title="Internal Server Error", detail=f"internal error: {exc!r}"
                ),
            )
        return self.apply(Event.GRANTED, grant_id=str(grant["id"]))

    def run(self) -> None:
        try:
            result = self.services.executor.run(self.ctx)
        except Cancelled as exc:
            if self.lease.lost.is_set():
                log.warning("op %s: stopped after losing the lease: %s", self.op_id, exc.detail)
                return
            self.apply(Event.CANCEL)
        except ExecutionError as exc:
            self.apply(
                Event.FAILED_STEP,
                error=_execution_problem(exc, f"{self.ctx.operation} failed"),
            )
        except Exception as exc:
            log.exception("op %s: %s crashed", self.op_id, self.ctx.operation)
            self.apply(
                Event.FAILED_STEP,
                error=problem(
                    500, title="Internal Server Error", detail=f"internal error: {exc!r}"
                ),
            )
        else:
            if self.apply(Event.SUCCEEDED, result=result) is not None:
                self._packages_changed(result)

    def _packages_changed(self, result: OperationResult) -> None:
        """After a vnfdId change, both packages' usageState follow their instance counts."""
        package = result.modifications.package if result.modifications else None
        if package is None or package["vnfdId"] == self.ctx.vnfd_id:
            return
        services = self.services
        for vnfd_id in (self.ctx.vnfd_id, package["vnfdId"]):
            try:
                services.nfvo.instances_changed(
                    vnfd_id, services.occurrences.instances_using(vnfd_id)
                )
            except Exception:
                # The operation is done; a stale usageState is corrected by the next change.
                log.exception("op %s: updating the usage of vnfdId %s failed", self.op_id, vnfd_id)

    def rollback(self) -> None:
        try:
            self.services.executor.rollback(self.ctx)
        except Cancelled as exc:
            if self.lease.lost.is_set():
                log.warning("op %s: rollback stopped, lease lost: %s", self.op_id, exc.detail)
                return
            self.apply(Event.CANCEL)
        except ExecutionError as exc:
            self.apply(Event.ROLLBACK_FAILED, error=_execution_problem(exc, "Rollback failed"))
        except Exception as exc:
            log.exception("op %s: rollback crashed", self.op_id)
            self.apply(
                Event.ROLLBACK_FAILED,
                error=problem(
                    500, title="Internal Server Error", detail=f"internal error: {exc!r}"
                ),
            )
        else:
            self.apply(Event.ROLLBACK_SUCCEEDED)


_FAILURE_EVENTS: dict[OpState, Event] = {
    OpState.STARTING: Event.START_FAILED,
    OpState.PROCESSING: Event.FAILED_STEP,
    OpState.ROLLING_BACK: Event.ROLLBACK_FAILED,
}


def _give_up(op_id: str, services: WorkerServices, state: OpState, exc: Exception) -> None:
    """End a claimed occurrence that cannot even be started (never leave it running)."""
    event = _FAILURE_EVENTS.get(state)
    if event is not None:
        services.occurrences.apply(
            op_id,
            event,
            error=_internal_problem(exc),
        )


def _handle(op_id: str, services: WorkerServices, kind: TaskKind) -> None:
    with claimed(op_id, services, log=log) as row:
        if row is None:
            return
        state = OpState(row.operation_state)
        expected = (
            (OpState.STARTING, OpState.PROCESSING) if kind == "run" else (OpState.ROLLING_BACK,)
        )
        if state not in expected:
            # The stored state wins over the message: it may be late or duplicated.
            log.warning(
                "op %s: %s task found the occurrence %s; doing what that state needs",
                op_id,
                kind,
                state.value,
            )
        with Lease(op_id, services, log=log) as lease:
            try:
                try:
                    driver = _Driver(op_id, services, lease)
                except Exception as exc:
                    log.exception("op %s: reading the occurrence failed", op_id)
                    _give_up(op_id, services, state, exc)
                    return
                driver.drive(state)
            except Exception:
                # Recording the outcome failed (database down, or the state moved under us):
                # the lease is released and recovery settles the occurrence if need be.
                log.exception("op %s: recording the outcome failed", op_id)


def run_operation(op_id: str, services: WorkerServices) -> None:
    """Start (grant) and run an occurrence, or run it again after a retry."""
    _handle(op_id, services, "run")


def rollback_operation(op_id: str, services: WorkerServices) -> None:
    """Roll back an occurrence the rollback task moved to ROLLING_BACK."""
    _handle(op_id, services, "rollback")


class HasDataDir(Protocol):
    """The part of the service settings the dispatcher needs (the default broker lives there)."""

    @property
    def data_dir(self) -> Path: ...


def dispatcher_for(settings: HasDataDir, tasks: Mapping[str, str] | None = None) -> Dispatch:
    """A Dispatch sending occurrence ids to the workers over the broker the settings name.

    The broker is NFVO_BROKER_URL if set, else the embedded SQLite broker in the data dir.
    ``tasks`` names the Celery task of each kind of work ("run", "rollback"); by default
    the VNF LCM ones.
    """
    from vnfm import celery_app

    producer = celery_app.make_app(celery_app.broker_url(settings.data_dir))
    names: dict[str, str] = (
        dict(tasks)
        if tasks is not None
        else {"run": celery_app.RUN_TASK, "rollback": celery_app.ROLLBACK_TASK}
    )

    def dispatch(op_id: str, kind: str) -> None:
        try:
            name = names[kind]
        except KeyError:
            raise ValueError(f"unknown task kind {kind!r} (run or rollback)") from None
        producer.send_task(name, args=(op_id,))

    return dispatch
