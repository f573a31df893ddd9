"""/nslcm/v2/ns_lcm_op_occs: query NS LCM operation occurrences, run their tasks.

SOL005 clauses 6.4.9 to 6.4.15.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from nfvo.nslcm.deps import READ, WRITE, base_url, occurrences
from nfvo.nslcm.dispatch import request_task
from nfvo.nslcm.occurrences import NsOccurrenceService
from nfvo.nslcm.requests import OP_OCC_DEFAULT_EXCLUDED, CancelMode, NsLcmOpOcc
from nfvo.nslcm.schemas import API_MAJOR, API_NAME
from nfvo.nslcm.views import op_occ
from sol013.listing import list_rows
from sol013.selectors import Selector, selector_dependency

router = APIRouter(
    prefix=f"/{API_NAME}/{API_MAJOR}/ns_lcm_op_occs", tags=["NS LCM operation occurrences"]
)


@router.get("", dependencies=[READ])
def list_op_occs(
    request: Request,
    filter: str | None = Query(default=None),
    nextpage_opaque_marker: str | None = Query(default=None),
    selector: Selector = Depends(selector_dependency),
    svc: NsOccurrenceService = Depends(occurrences),
    base: str = Depends(base_url),
) -> Response:
    return list_rows(
        request,
        svc,
        lambda row: op_occ(row, base),
        filter_expr=filter,
        model=NsLcmOpOcc,
        marker=nextpage_opaque_marker,
        page_size=request.app.state.settings.page_size,
        selector=selector,
        default_excluded=OP_OCC_DEFAULT_EXCLUDED,
    )


@router.get("/{nsLcmOpOccId}", dependencies=[READ])
def read_op_occ(
    nsLcmOpOccId: str,
    svc: NsOccurrenceService = Depends(occurrences),
    base: str = Depends(base_url),
) -> Response:
    return JSONResponse(op_occ(svc.read(nsLcmOpOccId), base))


def _hand_over(request: Request, op_id: str, task: str) -> Response:
    request_task(occurrences(request), request.app.state.ns_dispatch, op_id, task)
    return Response(status_code=202)


@router.post("/{nsLcmOpOccId}/retry", status_code=202, dependencies=[WRITE])
def retry(nsLcmOpOccId: str, request: Request) -> Response:
    return _hand_over(request, nsLcmOpOccId, "retry")


@router.post("/{nsLcmOpOccId}/rollback", status_code=202, dependencies=[WRITE])
def rollback(nsLcmOpOccId: str, request: Request) -> Response:
    return _hand_over(request, nsLcmOpOccId, "rollback")


@router.post("/{nsLcmOpOccId}/continue", status_code=202, dependencies=[WRITE])
def continue_(nsLcmOpOccId: str, request: Request) -> Response:
    return _hand_over(request, nsLcmOpOccId, "continue")


@router.post("/{nsLcmOpOccId}/fail", dependencies=[WRITE])
def fail(
    nsLcmOpOccId: str,
    svc: NsOccurrenceService = Depends(occurrences),
    base: str = Depends(base_url),
) -> Response:
    row, _ = svc.request_task(nsLcmOpOccId, "fail")
    return JSONResponse(op_occ(row, base))


@router.post("/{nsLcmOpOccId}/cancel", status_code=202, dependencies=[WRITE])
def cancel(nsLcmOpOccId: str, body: CancelMode, request: Request) -> Response:
    occurrences(request).request_task(nsLcmOpOccId, "cancel", cancel_mode=body.cancelMode.value)
    return Response(status_code=202)
