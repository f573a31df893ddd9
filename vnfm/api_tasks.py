"""/vnflcm/v2/vnf_instances/{id}/<task>: the LCM operations of a VNF instance (SOL003 5.4.4-5.4.9).

Each task checks what it can from the request and the instance (the body against the SOL003
request type: 400 naming the field; the instance's state: 409), starts an operation
occurrence in STARTING, and hands it to a worker (``app.state.dispatch``). Checks that need
the VNFD (flavour, aspect, level ...) are the worker's: a refused plan fails the occurrence
with a ProblemDetails saying why.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel

from sol013.listing import base_url
from sol013.problem import ApiError
from vnfm.api_instances import WRITE
from vnfm.notifications import op_occ_href
from vnfm.occurrences import OccurrenceService, problem
from vnfm.opocc_states import Event
from vnfm.schemas import (
    HealVnfRequest,
    InstantiateVnfRequest,
    LcmOperationType,
    ScaleVnfRequest,
    ScaleVnfToLevelRequest,
    TerminateVnfRequest,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/vnflcm/v2/vnf_instances", tags=["VNF LCM tasks"])


def occurrences(request: Request) -> OccurrenceService:
    svc: OccurrenceService = request.app.state.occurrences
    return svc


def dispatch(request: Request, op_id: str, kind: str) -> None:
    """Hand an occurrence to a worker; if that is impossible, the occurrence ends now."""
    svc = occurrences(request)
    try:
        request.app.state.dispatch(op_id, kind)
    except Exception as exc:
        log.exception("op %s: could not be handed to a worker", op_id)
        detail = f"the operation could not be handed to a worker: {exc}"
        try:
            # STARTING -> ROLLED_BACK; after a retry or rollback task -> FAILED_TEMP.
            svc.apply(op_id, Event.WORKER_LOST, error=problem(503, detail))
        except Exception:
            log.exception("op %s: recovery will end it", op_id)
        raise ApiError(503, detail) from None


def _start(
    request: Request, instance_id: str, operation: LcmOperationType, body: BaseModel, base: str
) -> Response:
    params = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    row = occurrences(request).start(instance_id, operation.value, params)
    dispatch(request, row.id, "run")
    return Response(status_code=202, headers={"Location": op_occ_href(base, row.id)})


@router.post("/{vnfInstanceId}/instantiate", status_code=202, dependencies=[WRITE])
def instantiate(
    vnfInstanceId: str,
    body: InstantiateVnfRequest,
    request: Request,
    base: str = Depends(base_url),
) -> Response:
    return _start(request, vnfInstanceId, LcmOperationType.INSTANTIATE, body, base)


@router.post("/{vnfInstanceId}/scale", status_code=202, dependencies=[WRITE])
def scale(
    vnfInstanceId: str, body: ScaleVnfRequest, request: Request, base: str = Depends(base_url)
) -> Response:
    return _start(request, vnfInstanceId, LcmOperationType.SCALE, body, base)


@router.post("/{vnfInstanceId}/scale_to_level", status_code=202, dependencies=[WRITE])
def scale_to_level(
    vnfInstanceId: str,
    body: ScaleVnfToLevelRequest,
    request: Request,
    base: str = Depends(base_url),
) -> Response:
    return _start(request, vnfInstanceId, LcmOperationType.SCALE_TO_LEVEL, body, base)


@router.post("/{vnfInstanceId}/heal", status_code=202, dependencies=[WRITE])
def heal(
    vnfInstanceId: str, body: HealVnfRequest, request: Request, base: str = Depends(base_url)
) -> Response:
    return _start(request, vnfInstanceId, LcmOperationType.HEAL, body, base)


@router.post("/{vnfInstanceId}/terminate", status_code=202, dependencies=[WRITE])
def terminate(
    vnfInstanceId: str,
    body: TerminateVnfRequest,
    request: Request,
    base: str = Depends(base_url),
) -> Response:
    return _start(request, vnfInstanceId, LcmOperationType.TERMINATE, body, base)
