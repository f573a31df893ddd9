"""Handing NS LCM operation occurrences to the orchestration workers.

The workers are the VNF LCM Celery workers (vnfm/celery_app.py); an occurrence id travels
as the argument of the task `RUN_TASK` or `ROLLBACK_TASK`. What the worker does is decided
by the occurrence's stored state, not by the task name (a late or duplicated message
cannot run the wrong step).
"""

from __future__ import annotations

import logging
from typing import Any

from nfvo.nslcm.models import NsLcmOpOccRow
from nfvo.nslcm.occurrences import Dispatch, NsOccurrenceService
from nfvo.nslcm.opocc_states import Event
from sol013.opocc import workers as opocc_workers
from vnfm.worker import HasDataDir
from vnfm.worker import dispatcher_for as vnfm_dispatcher_for

__all__ = ["ROLLBACK_TASK", "RUN_TASK", "dispatcher_for", "hand_over", "request_task"]

log = logging.getLogger(__name__)

RUN_TASK = "nfvo.nslcm.run_operation"
ROLLBACK_TASK = "nfvo.nslcm.rollback_operation"
_NAMES = {"run": RUN_TASK, "rollback": ROLLBACK_TASK}


def dispatcher_for(settings: HasDataDir) -> Dispatch:
    """A Dispatch sending occurrence ids over the broker the settings name (as the VNFM's)."""
    return vnfm_dispatcher_for(settings, _NAMES)


def hand_over(occurrences: NsOccurrenceService, dispatch: Dispatch, op_id: str, kind: str) -> None:
    """Hand an occurrence to a worker; if that is impossible it goes FAILED_TEMP now (503)."""

    def worker_lost(lost_id: str, error: dict[str, Any]) -> None:
        occurrences.apply(lost_id, Event.WORKER_LOST, error=error)

    opocc_workers.hand_over(
        dispatch, op_id, kind, worker_lost=worker_lost, log=log, log_prefix="ns op"
    )


def request_task(
    occurrences: NsOccurrenceService,
    dispatch: Dispatch,
    op_id: str,
    task: str,
    *,
    cancel_mode: str | None = None,
) -> NsLcmOpOccRow:
    """A task of an occurrence, and the work it hands over."""
    row, kind = occurrences.request_task(op_id, task, cancel_mode=cancel_mode)
    if kind is not None:
        hand_over(occurrences, dispatch, op_id, kind)
    return row
