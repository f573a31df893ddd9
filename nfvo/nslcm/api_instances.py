"""/nslcm/v2/ns_instances and /ns_instances/{id}: create, query, delete."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from nfvo.nslcm.deps import READ, WRITE, base_url, service
from nfvo.nslcm.models import NsInstanceRow
from nfvo.nslcm.schemas import API_MAJOR, API_NAME, DEFAULT_EXCLUDED, CreateNsRequest, NsInstance
from nfvo.nslcm.service import NsInstanceService
from nfvo.nslcm.views import etag_source, ns_instance, ns_instance_href
from sol013.etag import check_if_match, etag_for
from sol013.listing import list_rows
from sol013.selectors import Selector, selector_dependency

router = APIRouter(prefix=f"/{API_NAME}/{API_MAJOR}", tags=["NS instances"])


@router.get("/ns_instances", dependencies=[READ])
def list_ns_instances(
    request: Request,
    filter: str | None = Query(default=None),
    nextpage_opaque_marker: str | None = Query(default=None),
    selector: Selector = Depends(selector_dependency),
    svc: NsInstanceService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    return list_rows(
        request,
        svc,
        lambda row: ns_instance(row, base),
        filter_expr=filter,
        model=NsInstance,
        marker=nextpage_opaque_marker,
        page_size=svc.nsds.settings.page_size,
        selector=selector,
        default_excluded=DEFAULT_EXCLUDED,
    )


@router.post("/ns_instances", status_code=201, dependencies=[WRITE])
def create_ns_instance(
    body: CreateNsRequest,
    svc: NsInstanceService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    row = svc.create(body, base_url=base)
    return JSONResponse(
        ns_instance(row, base),
        status_code=201,
        headers={"Location": ns_instance_href(base, row.id), "ETag": etag_for(etag_source(row))},
    )


@router.get("/ns_instances/{nsInstanceId}", dependencies=[READ])
def read_ns_instance(
    nsInstanceId: str, svc: NsInstanceService = Depends(service), base: str = Depends(base_url)
) -> Response:
    with svc.sessions() as session:
        row = svc.get(session, nsInstanceId)
    return JSONResponse(ns_instance(row, base), headers={"ETag": etag_for(etag_source(row))})


@router.delete("/ns_instances/{nsInstanceId}", status_code=204, dependencies=[WRITE])
def delete_ns_instance(
    nsInstanceId: str,
    if_match: str | None = Header(default=None),
    svc: NsInstanceService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    def check(row: NsInstanceRow) -> None:
        check_if_match(if_match, etag_for(etag_source(row)))

    svc.delete(nsInstanceId, check_etag=check, base_url=base)
    return Response(status_code=204)
