"""/vnfpkgm/v2/vnf_packages and /vnf_packages/{id}: create, query, modify, delete."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from nfvo.content_routes import created_response, etag_check, info_response, modified_response
from nfvo.vnfpkgm.deps import READ, WRITE, base_url, service
from nfvo.vnfpkgm.schemas import (
    DEFAULT_EXCLUDED,
    CreateVnfPkgInfoRequest,
    VnfPkgInfo,
    VnfPkgInfoModifications,
)
from nfvo.vnfpkgm.service import PackageService
from nfvo.vnfpkgm.views import package_href, package_info
from sol013.listing import list_rows
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
    return list_rows(
        request,
        svc,
        lambda row: package_info(row, base),
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
    return created_response(package_info(row, base), package_href(base, row.id), row)


@router.get("/vnf_packages/{vnfPkgId}", dependencies=[READ])
def read_package(
    vnfPkgId: str, svc: PackageService = Depends(service), base: str = Depends(base_url)
) -> Response:
    with svc.sessions() as session:
        row = svc.get(session, vnfPkgId)
    return info_response(package_info(row, base), row)


@router.patch("/vnf_packages/{vnfPkgId}", dependencies=[WRITE, Depends(require_merge_patch)])
def modify_package(
    vnfPkgId: str,
    changes: VnfPkgInfoModifications,
    if_match: str | None = Header(default=None),
    svc: PackageService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    row = svc.modify(vnfPkgId, changes, check_etag=etag_check(if_match), base_url=base)
    return modified_response(changes, row)


@router.delete("/vnf_packages/{vnfPkgId}", status_code=204, dependencies=[WRITE])
def delete_package(
    vnfPkgId: str, svc: PackageService = Depends(service), base: str = Depends(base_url)
) -> Response:
    svc.delete(vnfPkgId, base_url=base)
    return Response(status_code=204)
