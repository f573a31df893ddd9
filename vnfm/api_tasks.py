"""The LCM operations of a VNF instance (SOL003 5.4.3.3.4, 5.4.4-5.4.9).

``POST /vnflcm/v2/vnf_instances/{id}/<task>`` and ``PATCH /vnflcm/v2/vnf_instances/{id}``
(MODIFY_INFO) each check what they can from the request and the instance (the body against
the SOL003 request type: 400 naming the field; the instance's state: 409), start an
operation occurrence in STARTING, and hand it to a worker (``app.state.dispatch``).

Checks that need the VNFD are the worker's (a refused plan fails the occurrence with a
ProblemDetails saying why), except where the answer to the request itself should say it:
the external CPs of change_ext_conn and what change_flavour asks of the VNFD (422 naming
the field, `vnfm.change_flavour`) and the vnfdId of a PATCH
(409/422, `vnfm.modify_info`). Those are checked on the instance as read, and the
occurrence starts only if the instance has not changed since (else 409: read and retry).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel

from sol013.etag import check_if_match, etag_for
from sol013.listing import base_url
from sol013.merge_patch import require_merge_patch
from sol013.problem import ApiError
from vnfm import lcm_requests
from vnfm.api_instances import WRITE
from vnfm.api_instances import service as instances
from vnfm.models import VnfInstanceRow
from vnfm.modify_info import ModificationRefused, prepare
from vnfm.notifications import op_occ_href
from vnfm.occurrences import InstanceCheck, OccurrenceService
from vnfm.schemas import (
    ChangeExtVnfConnectivityRequest,
    ChangeVnfFlavourRequest,
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

router = APIRouter(prefix="/vnflcm/v2/vnf_instances", tags=["VNF LCM tasks"])


def occurrences(request: Request) -> OccurrenceService:
    svc: OccurrenceService = request.app.state.occurrences
    return svc


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
    row = lcm_requests.start_operation(
        occurrences(request),
        request.app.state.dispatch,
        instance_id,
        operation,
        params,
        precondition=precondition,
        check=check,
    )
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
    return _started(
        request, instance_id, operation, lcm_requests.request_params(body), base, check=check
    )


def _read(request: Request, instance_id: str) -> VnfInstanceRow:
    return lcm_requests.read_instance(instances(request), instance_id)


@router.post("/{vnfInstanceId}/instantiate", status_code=202, dependencies=[WRITE])
def instantiate(
    vnfInstanceId: str,
    body: InstantiateVnfRequest,
    request: Request,
    base: str = Depends(base_url),
) -> Response:
    vims = getattr(request.app.state, "vims", None)
    lcm_requests.check_vim(instances(request), vims, vnfInstanceId, body)
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


@router.post("/{vnfInstanceId}/change_ext_conn", status_code=202, dependencies=[WRITE])
def change_ext_conn(
    vnfInstanceId: str,
    body: ChangeExtVnfConnectivityRequest,
    request: Request,
    base: str = Depends(base_url),
) -> Response:
    row = lcm_requests.start_change_ext_conn(
        instances(request), occurrences(request), request.app.state.dispatch, vnfInstanceId, body
    )
    return Response(status_code=202, headers={"Location": op_occ_href(base, row.id)})


@router.post("/{vnfInstanceId}/change_flavour", status_code=202, dependencies=[WRITE])
def change_flavour(
    vnfInstanceId: str,
    body: ChangeVnfFlavourRequest,
    request: Request,
    base: str = Depends(base_url),
) -> Response:
    row = lcm_requests.start_change_flavour(
        instances(request), occurrences(request), request.app.state.dispatch, vnfInstanceId, body
    )
    return Response(status_code=202, headers={"Location": op_occ_href(base, row.id)})


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
        check=lcm_requests.unchanged_since(row),
    )
