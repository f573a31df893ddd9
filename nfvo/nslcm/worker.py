"""What an orchestration worker does with one NS LCM operation occurrence.

The same contract as the VNFM's worker (vnfm/worker.py): claim the occurrence (its lease),
renew the lease from a heartbeat thread while the engine works, do what the stored state
asks for (PROCESSING -> run, ROLLING_BACK -> roll back), record the outcome as an `Event`,
release the lease. A worker that loses its lease stops at the engine's next step boundary
without recording anything; a worker killed outright leaves the lease to expire and
`NsOccurrenceService.recover` moves the occurrence to FAILED_TEMP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from nfvo.nslcm.engine import Engine, StepContext
from nfvo.nslcm.models import NsLcmOpOccRow
from nfvo.nslcm.occurrences import NsOccurrenceService, problem
from nfvo.nslcm.opocc_states import Event, OpState
from sol013.opocc.workers import Lease, claimed
from vnfm.operation import Cancelled, ExecutionError

__all__ = ["NsWorkerServices", "rollback_operation", "run_operation"]

log = logging.getLogger(__name__)


@dataclass
class NsWorkerServices:
    occurrences: NsOccurrenceService
    engine: Engine
    worker_id: str
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0


def _problem(exc: BaseException, title: str) -> dict[str, Any]:
    if isinstance(exc, ExecutionError):
        return problem(exc.status, exc.detail, title)
    return problem(500, f"internal error: {exc!r}", "Internal Server Error")


def _handle(op_id: str, services: NsWorkerServices) -> None:
    with claimed(op_id, services, log=log, log_prefix="ns op") as row:
        if row is not None:
            _drive(op_id, services, row)


def _drive(op_id: str, services: NsWorkerServices, row: NsLcmOpOccRow) -> None:
    """Do what the claimed occurrence's stored state asks for, renewing its lease meanwhile."""
    svc = services.occurrences
    state = OpState(row.operation_state)
    try:
        with Lease(op_id, services, log=log, log_prefix="ns op", thread_prefix="ns-lease") as lease:

            def cancel_requested() -> bool:
                return lease.lost.is_set() or svc.cancel_requested(op_id)

            ctx = StepContext(op_id, services.worker_id, cancel_requested)

            def apply(event: Event, **fields: Any) -> None:
                if lease.lost.is_set():
                    log.warning("ns op %s: not recording %s: lease lost", op_id, event.value)
                    return
                svc.apply(op_id, event, **fields)

            if state is OpState.PROCESSING:
                try:
                    complete = services.engine.run(ctx)
                except Cancelled as exc:
                    # FAILED_TEMP "shall" have an error (SOL005 NsLcmOpOcc.error): the cancel.
                    apply(Event.CANCEL, error=_problem(exc, f"{row.operation} cancelled"))
                except Exception as exc:
                    if not isinstance(exc, ExecutionError):
                        log.exception("ns op %s: %s crashed", op_id, row.operation)
                    apply(Event.FAILED_STEP, error=_problem(exc, f"{row.operation} failed"))
                else:
                    partial = bool(svc.read(op_id).progress.get("skipped"))
                    event = Event.SUCCEEDED_PARTIALLY if partial else Event.SUCCEEDED
                    apply(event, ns_update=complete)
            elif state is OpState.ROLLING_BACK:
                try:
                    services.engine.rollback(ctx)
                except Cancelled as exc:
                    apply(Event.CANCEL, error=_problem(exc, "Rollback cancelled"))
                except Exception as exc:
                    if not isinstance(exc, ExecutionError):
                        log.exception("ns op %s: rollback crashed", op_id)
                    apply(Event.ROLLBACK_FAILED, error=_problem(exc, "Rollback failed"))
                else:
                    apply(Event.ROLLBACK_SUCCEEDED)
    except Exception:
        # Recording the outcome failed: the lease expires and recovery settles it.
        log.exception("ns op %s: recording the outcome failed", op_id)


def run_operation(op_id: str, services: NsWorkerServices) -> None:
    """Run an occurrence (new, retried or continued); the stored state decides."""
    _handle(op_id, services)


def rollback_operation(op_id: str, services: NsWorkerServices) -> None:
    """Roll back an occurrence the rollback task moved to ROLLING_BACK."""
    _handle(op_id, services)
