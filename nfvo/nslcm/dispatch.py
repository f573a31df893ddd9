"""Handing NS LCM operation occurrences to the orchestration workers.

The workers are the VNF LCM Celery workers (vnfm/celery_app.py); an occurrence id travels
as the argument of the task `RUN_TASK` or `ROLLBACK_TASK`. What the worker does is decided
by the occurrence's stored state, not by the task name (a late or duplicated message
cannot run the wrong step).
"""

from __future__ import annotations

import logging

from nfvo.nslcm.occurrences import Dispatch, NsOccurrenceService, problem
from nfvo.nslcm.opocc_states import Event
from sol013.problem import ApiError
from vnfm.worker import HasDataDir

__all__ = ["ROLLBACK_TASK", "RUN_TASK", "dispatcher_for", "hand_over"]

log = logging.getLogger(__name__)

RUN_TASK = "nfvo.nslcm.run_operation"
ROLLBACK_TASK = "nfvo.nslcm.rollback_operation"
_NAMES = {"run": RUN_TASK, "rollback": ROLLBACK_TASK}


def dispatcher_for(settings: HasDataDir) -> Dispatch:
    """A Dispatch sending occurrence ids over the broker the settings name (as the VNFM's)."""
    from vnfm import celery_app

    producer = celery_app.make_app(celery_app.broker_url(settings.data_dir))

    def dispatch(op_id: str, kind: str) -> None:
        try:
            name = _NAMES[kind]
        except KeyError:
            raise ValueError(f"unknown task kind {kind!r} (run or rollback)") from None
        producer.send_task(name, args=(op_id,))

    return dispatch


def hand_over(occurrences: NsOccurrenceService, dispatch: Dispatch, op_id: str, kind: str) -> None:
    """Hand an occurrence to a worker; if that is impossible it goes FAILED_TEMP now (503)."""
    try:
        dispatch(op_id, kind)
    except Exception as exc:
        log.exception("ns op %s: could not be handed to a worker", op_id)
        detail = f"the operation could not be handed to a worker: {exc}"
        try:
            occurrences.apply(op_id, Event.WORKER_LOST, error=problem(503, detail))
        except Exception:
            log.exception("ns op %s: recovery will end it", op_id)
        raise ApiError(503, detail) from None
