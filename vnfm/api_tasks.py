"""The LCM operations of a VNF instance (SOL003 5.4.3.3.4, 5.4.4-5.4.9).

``POST /vnflcm/v2/vnf_instances/{id}/<task>`` and ``PATCH /vnflcm/v2/vnf_instances/{id}``
(MODIFY_INFO) each check what they can from the request and the instance (the body against
the SOL003 request type: 400 naming the field; the instance's state: 409), start an
operation occurrence in STARTING, and hand it to a worker (``app.state.dispatch``).

Checks that need the VNFD are the worker's (a refused plan fails the occurrence with a
ProblemDetails saying why), except where the answer to the request itself should say it:
the external CPs of change_ext_conn (422 naming the field) and the vnfdId of a PATCH
(409/422, `vnfm.modify_info`). Those are checked on the instance as read, and the
occurrence starts only if the instance has not changed since (else 409: read and retry).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel

from sol013.etag import check_if_match, etag_for
from sol013.listing import base_url
from sol013.merge_patch import require_merge_patch
from sol013.problem import ApiError
from vnfm import planner
from vnfm.api_instances import WRITE
from vnfm.api_instances import service as instances
from vnfm.models import VnfInstanceRow
from vnfm.modify_info import ModificationRefused, prepare
from vnfm.notifications import op_occ_href
from vnfm.occurrences import InstanceCheck, OccurrenceService, problem
from vnfm.opocc_states import Event
from vnfm.schemas import (
    ChangeExtVnfConnectivityRequest,
    HealVnfRequest,
    InstantiateVnfRequest,
    LcmOperationType,
    OperateVnfRequest,
    ScaleVnfRequest,
    ScaleVnfToLevelRequest,
    TerminateVnfRequest,
    VnfInfoModificationRequest,
)
from vnfm.views import etag_source

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


def _started(
    request: Request,
    instance_id: str,
    operation: LcmOperationType,
    params: dict[str, object],
    base: str,
    *,
    precondition: InstanceCheck | None = None,
    check: InstanceCheck | None = None,
) -> Response:
    row = occurrences(request).start(
        instance_id, operation.value, params, precondition=precondition, check=check
    )
    dispatch(request, row.id, "run")
    return Response(status_code=202, headers={"Location": op_occ_href(base, row.id)})


def _start(
    request: Request,
    instance_id: str,
    operation: LcmOperationType,
    body: BaseModel,
    base: str,
    *,
    check: InstanceCheck | None = None,
) -> Response:
    params = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    return _started(request, instance_id, operation, params, base, check=check)


def _read(request: Request, instance_id: str) -> VnfInstanceRow:
    svc = instances(request)
    with svc.sessions() as session:
        return svc.get(session, instance_id)


def _unchanged_since(seen: VnfInstanceRow) -> InstanceCheck:
    """Refuses to start if the instance changed after the request was checked against it."""
    revision = seen.revision

    def check(locked: VnfInstanceRow) -> None:
        if locked.revision != revision:
            raise ApiError(
                409,
                f"VNF instance {locked.id} changed while the request was being checked; "
                "read it again and retry",
            )

    return check


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


@router.post("/{vnfInstanceId}/operate", status_code=202, dependencies=[WRITE])
def operate(
    vnfInstanceId: str, body: OperateVnfRequest, request: Request, base: str = Depends(base_url)
) -> Response:
    return _start(request, vnfInstanceId, LcmOperationType.OPERATE, body, base)


def _check_ext_cps(
    request: Request, row: VnfInstanceRow, body: ChangeExtVnfConnectivityRequest
) -> None:
    """422 naming the field for an external CP the instance's flavour does not have."""
    if row.instantiation_state != "INSTANTIATED" or row.flavour_id is None:
        return  # starting refuses it with 409
    try:
        flavour = instances(request).nfvo.vnfd(row.vnfd_id).flavour(row.flavour_id)
    except KeyError:
        return  # the worker reports the missing VNFD or flavour
    known = planner.external_cp_ids(flavour)
    seen: dict[str, str] = {}
    for i, link in enumerate(body.extVirtualLinks):
        for j, cp in enumerate(link.extCps):
            field = f"extVirtualLinks[{i}].extCps[{j}].cpdId"
            if cp.cpdId not in known:
                raise ApiError(
                    422,
                    f"{field}: flavour {row.flavour_id} of VNFD {row.vnfd_id} has no external "
                    f"CP {cp.cpdId!r} (it has: {', '.join(known) or 'none'})",
                )
            earlier = seen.setdefault(cp.cpdId, link.id)
            if earlier != link.id:
                raise ApiError(
                    422,
                    f"{field}: external CP {cp.cpdId} is also given in link {earlier}; "
                    "a CP attaches to one external link",
                )


@router.post("/{vnfInstanceId}/change_ext_conn", status_code=202, dependencies=[WRITE])
def change_ext_conn(
    vnfInstanceId: str,
    body: ChangeExtVnfConnectivityRequest,
    request: Request,
    base: str = Depends(base_url),
) -> Response:
    row = _read(request, vnfInstanceId)
    _check_ext_cps(request, row, body)
    return _start(
        request,
        vnfInstanceId,
        LcmOperationType.CHANGE_EXT_CONN,
        body,
        base,
        check=_unchanged_since(row),
    )


@router.patch(
    "/{vnfInstanceId}", status_code=202, dependencies=[WRITE, Depends(require_merge_patch)]
)
def modify_info(
    vnfInstanceId: str,
    body: VnfInfoModificationRequest,
    request: Request,
    if_match: str | None = Header(default=None),
    base: str = Depends(base_url),
) -> Response:
    """MODIFY_INFO (SOL003 5.4.3.3.4): 202 and the occurrence that applies the patch."""
    row = _read(request, vnfInstanceId)
    check_if_match(if_match, etag_for(etag_source(row)))
    instantiated = row.instantiation_state == "INSTANTIATED"
    try:
        prepare(
            body,
            vnfd_id=row.vnfd_id,
            flavour_id=row.flavour_id if instantiated else None,
            scale_levels=dict(row.scale_levels or {}) if instantiated else {},
            nfvo=instances(request).nfvo,
        )
    except ModificationRefused as exc:
        raise ApiError(exc.status, exc.detail) from None

    def precondition(locked: VnfInstanceRow) -> None:
        check_if_match(if_match, etag_for(etag_source(locked)))

    # Explicit nulls stay: in a merge patch they remove what they name.
    params = body.model_dump(mode="json", exclude_unset=True)
    return _started(
        request,
        vnfInstanceId,
        LcmOperationType.MODIFY_INFO,
        params,
        base,
        precondition=precondition,
        check=_unchanged_since(row),
    )
