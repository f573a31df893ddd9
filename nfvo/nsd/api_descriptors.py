"""/nsd/v2/ns_descriptors and /ns_descriptors/{id}: create, query, modify, delete."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from nfvo.content_routes import created_response, etag_check, info_response, modified_response
from nfvo.nsd.deps import READ, WRITE, base_url, service
from nfvo.nsd.schemas import (
    API_MAJOR,
    API_NAME,
    DEFAULT_EXCLUDED,
    CreateNsdInfoRequest,
    NsdInfo,
    NsdInfoModifications,
)
from nfvo.nsd.service import NsdService
from nfvo.nsd.views import nsd_href, nsd_info
from sol013.listing import list_rows
from sol013.merge_patch import require_merge_patch
from sol013.selectors import Selector, selector_dependency

router = APIRouter(prefix=f"/{API_NAME}/{API_MAJOR}", tags=["NS descriptors"])


@router.get("/ns_descriptors", dependencies=[READ])
def list_nsds(
    request: Request,
    filter: str | None = Query(default=None),
    nextpage_opaque_marker: str | None = Query(default=None),
    selector: Selector = Depends(selector_dependency),
    svc: NsdService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    return list_rows(
        request,
        svc,
        lambda row: nsd_info(row, base),
        filter_expr=filter,
        model=NsdInfo,
        marker=nextpage_opaque_marker,
        page_size=svc.settings.page_size,
        selector=selector,
        default_excluded=DEFAULT_EXCLUDED,
    )


@router.post("/ns_descriptors", status_code=201, dependencies=[WRITE])
def create_nsd(
    body: CreateNsdInfoRequest,
    svc: NsdService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    row = svc.create(body.userDefinedData)
    return created_response(nsd_info(row, base), nsd_href(base, row.id), row)


@router.get("/ns_descriptors/{nsdInfoId}", dependencies=[READ])
def read_nsd_info(
    nsdInfoId: str, svc: NsdService = Depends(service), base: str = Depends(base_url)
) -> Response:
    with svc.sessions() as session:
        row = svc.get(session, nsdInfoId)
    return info_response(nsd_info(row, base), row)


@router.patch("/ns_descriptors/{nsdInfoId}", dependencies=[WRITE, Depends(require_merge_patch)])
def modify_nsd(
    nsdInfoId: str,
    changes: NsdInfoModifications,
    if_match: str | None = Header(default=None),
    svc: NsdService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    row = svc.modify(nsdInfoId, changes, check_etag=etag_check(if_match), base_url=base)
    return modified_response(changes, row)


@router.delete("/ns_descriptors/{nsdInfoId}", status_code=204, dependencies=[WRITE])
def delete_nsd(
    nsdInfoId: str, svc: NsdService = Depends(service), base: str = Depends(base_url)
) -> Response:
    svc.delete(nsdInfoId, base_url=base)
    return Response(status_code=204)
