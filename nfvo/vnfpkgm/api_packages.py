"""/vnfpkgm/v2/vnf_packages and /vnf_packages/{id}: create, query, modify, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from nfvo.vnfpkgm.deps import READ, WRITE, base_url, service
from nfvo.vnfpkgm.models import VnfPackageRow
from nfvo.vnfpkgm.schemas import (
    DEFAULT_EXCLUDED,
    CreateVnfPkgInfoRequest,
    VnfPkgInfo,
    VnfPkgInfoModifications,
)
from nfvo.vnfpkgm.service import PackageService
from nfvo.vnfpkgm.views import etag_source, package_href, package_info
from sol013.etag import check_if_match, etag_for
from sol013.listing import created_order_key, list_response
from sol013.merge_patch import require_merge_patch
from sol013.selectors import Selector, selector_dependency

router = APIRouter(prefix="/vnfpkgm/v2", tags=["VNF packages"])


@router.get("/vnf_packages", dependencies=[READ])
def list_packages(
    request: Request,
    filter: str | None = Query(default=None),
    nextpage_opaque_marker: str | None = Query(default=None),
    selector: Selector = Depends(selector_dependency),
    svc: PackageService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    with svc.sessions() as session:
        rows = svc.list_all(session)
    return list_response(
        request,
        [(row, package_info(row, base)) for row in rows],
        key=created_order_key,
        filter_expr=filter,
        model=VnfPkgInfo,
        marker=nextpage_opaque_marker,
        page_size=svc.settings.page_size,
        selector=selector,
        default_excluded=DEFAULT_EXCLUDED,
    )


@router.post("/vnf_packages", status_code=201, dependencies=[WRITE])
def create_package(
    body: CreateVnfPkgInfoRequest,
    svc: PackageService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    row = svc.create(body.userDefinedData)
    info = package_info(row, base)
    return JSONResponse(
        info,
        status_code=201,
        headers={"Location": package_href(base, row.id), "ETag": etag_for(etag_source(row))},
    )


@router.get("/vnf_packages/{vnfPkgId}", dependencies=[READ])
def read_package(
    vnfPkgId: str, svc: PackageService = Depends(service), base: str = Depends(base_url)
) -> Response:
    with svc.sessions() as session:
        row = svc.get(session, vnfPkgId)
    return JSONResponse(package_info(row, base), headers={"ETag": etag_for(etag_source(row))})


@router.patch("/vnf_packages/{vnfPkgId}", dependencies=[WRITE, Depends(require_merge_patch)])
def modify_package(
    vnfPkgId: str,
    changes: VnfPkgInfoModifications,
    if_match: str | None = Header(default=None),
    svc: PackageService = Depends(service),
    base: str = Depends(base_url),
) -> Response:

    def check(row: VnfPackageRow) -> None:
        check_if_match(if_match, etag_for(etag_source(row)))

    row = svc.modify(vnfPkgId, changes, check_etag=check, base_url=base)
    body: dict[str, Any] = changes.model_dump(mode="json", exclude_none=True)
    return JSONResponse(body, headers={"ETag": etag_for(etag_source(row))})


@router.delete("/vnf_packages/{vnfPkgId}", status_code=204, dependencies=[WRITE])
def delete_package(
    vnfPkgId: str, svc: PackageService = Depends(service), base: str = Depends(base_url)
) -> Response:
    svc.delete(vnfPkgId, base_url=base)
    return Response(status_code=204)
