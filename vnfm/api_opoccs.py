"""/vnflcm/v2/vnf_lcm_op_occs: query operation occurrences, run their tasks (SOL003 5.4.12-17)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from sol013.listing import base_url, list_rows
from sol013.selectors import Selector, selector_dependency
from vnfm import lcm_requests
from vnfm.api_instances import READ, WRITE
from vnfm.api_tasks import occurrences
from vnfm.occurrences import OccurrenceService
from vnfm.opocc_views import DEFAULT_EXCLUDED, op_occ_view
from vnfm.schemas import CancelMode, VnfLcmOpOcc

router = APIRouter(prefix="/vnflcm/v2/vnf_lcm_op_occs", tags=["VNF LCM operation occurrences"])


@router.get("", dependencies=[READ])
def list_op_occs(
    request: Request,
    filter: str | None = Query(default=None),
    nextpage_opaque_marker: str | None = Query(default=None),
    selector: Selector = Depends(selector_dependency),
    svc: OccurrenceService = Depends(occurrences),
    base: str = Depends(base_url),
) -> Response:
    return list_rows(
        request,
        svc,
        lambda row: op_occ_view(row, base),
        filter_expr=filter,
        model=VnfLcmOpOcc,
        marker=nextpage_opaque_marker,
        page_size=request.app.state.settings.page_size,
        selector=selector,
        default_excluded=DEFAULT_EXCLUDED,
    )


@router.get("/{vnfLcmOpOccId}", dependencies=[READ])
def read_op_occ(
    vnfLcmOpOccId: str,
    svc: OccurrenceService = Depends(occurrences),
    base: str = Depends(base_url),
) -> Response:
    return JSONResponse(op_occ_view(svc.read(vnfLcmOpOccId), base))


def _hand_over(request: Request, op_id: str, task: str) -> Response:
    lcm_requests.request_task(occurrences(request), request.app.state.dispatch, op_id, task)
    return Response(status_code=202)


@router.post("/{vnfLcmOpOccId}/retry", status_code=202, dependencies=[WRITE])
def retry(vnfLcmOpOccId: str, request: Request) -> Response:
    return _hand_over(request, vnfLcmOpOccId, "retry")


@router.post("/{vnfLcmOpOccId}/rollback", status_code=202, dependencies=[WRITE])
def rollback(vnfLcmOpOccId: str, request: Request) -> Response:
    return _hand_over(request, vnfLcmOpOccId, "rollback")


@router.post("/{vnfLcmOpOccId}/fail", dependencies=[WRITE])
def fail(
    vnfLcmOpOccId: str,
    svc: OccurrenceService = Depends(occurrences),
    base: str = Depends(base_url),
) -> Response:
    row, _ = svc.request_task(vnfLcmOpOccId, "fail")
    return JSONResponse(op_occ_view(row, base))


@router.post("/{vnfLcmOpOccId}/cancel", status_code=202, dependencies=[WRITE])
def cancel(vnfLcmOpOccId: str, body: CancelMode, request: Request) -> Response:
    occurrences(request).request_task(vnfLcmOpOccId, "cancel", cancel_mode=body.cancelMode.value)
    return Response(status_code=202)
