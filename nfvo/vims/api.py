"""/vims/v1/vims and /vims/v1/vims/{vimId}: the project's VIM registration API.

Not an ETSI API (ETSI defines none for this; see docs/design.md, "VIM registry"), but served
with the SOL013 conventions of the others: ProblemDetails, Version header and api_versions,
OAuth 2.0 scopes ``vims:v1:all`` / ``vims:v1:readonly``, attribute filters and selectors,
paging, ETag and If-Match, JSON Merge Patch.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from nfvo.vims.models import VimRow
from nfvo.vims.schemas import (
    API_MAJOR,
    API_NAME,
    API_VERSION,
    VimInfo,
    VimInfoModifications,
    VimRegistrationRequest,
)
from nfvo.vims.service import VimRegistry
from nfvo.vims.views import DEFAULT_EXCLUDED, etag_source, vim_href, vim_info
from sol013.etag import check_if_match, etag_for
from sol013.listing import base_url, list_rows
from sol013.merge_patch import require_merge_patch
from sol013.oauth2 import require_scopes, scopes_for
from sol013.selectors import Selector, selector_dependency
from sol013.versioning import ApiSpec

VIMS = ApiSpec(name=API_NAME, major=API_MAJOR, versions=(API_VERSION,))
READ = Depends(require_scopes(*scopes_for(API_NAME, API_MAJOR, write=False)))
WRITE = Depends(require_scopes(*scopes_for(API_NAME, API_MAJOR, write=True)))

router = APIRouter(prefix=f"/{API_NAME}/{API_MAJOR}/vims", tags=["VIM registry"])


def registry(request: Request) -> VimRegistry:
    svc: VimRegistry = request.app.state.vims.registry
    return svc


def _with_etag(row: VimRow, base: str, status: int = 200) -> JSONResponse:
    headers = {"ETag": etag_for(etag_source(row))}
    if status == 201:
        headers["Location"] = vim_href(base, row.id)
    return JSONResponse(vim_info(row, base), status_code=status, headers=headers)


@router.post("", status_code=201, dependencies=[WRITE], response_model=VimInfo)
def register_vim(
    body: VimRegistrationRequest,
    svc: VimRegistry = Depends(registry),
    base: str = Depends(base_url),
) -> Response:
    return _with_etag(svc.create(body), base, status=201)


@router.get("", dependencies=[READ], response_model=list[VimInfo])
def list_vims(
    request: Request,
    filter: str | None = Query(default=None),
    nextpage_opaque_marker: str | None = Query(default=None),
    selector: Selector = Depends(selector_dependency),
    svc: VimRegistry = Depends(registry),
    base: str = Depends(base_url),
) -> Response:
    return list_rows(
        request,
        svc,
        lambda row: vim_info(row, base),
        filter_expr=filter,
        model=VimInfo,
        marker=nextpage_opaque_marker,
        page_size=request.app.state.settings.page_size,
        selector=selector,
        default_excluded=DEFAULT_EXCLUDED,
    )


@router.get("/{vimId}", dependencies=[READ], response_model=VimInfo)
def read_vim(
    vimId: str, svc: VimRegistry = Depends(registry), base: str = Depends(base_url)
) -> Response:
    with svc.sessions() as session:
        row = svc.get(session, vimId)
    return _with_etag(row, base)


@router.patch(
    "/{vimId}",
    dependencies=[WRITE, Depends(require_merge_patch)],
    response_model=VimInfoModifications,
)
def modify_vim(
    vimId: str,
    body: VimInfoModifications,
    if_match: str | None = Header(default=None),
    svc: VimRegistry = Depends(registry),
) -> Response:
    """A JSON Merge Patch; the answer is the modifications as applied (credentials hidden)."""

    def check(row: VimRow) -> None:
        check_if_match(if_match, etag_for(etag_source(row)))

    row, applied = svc.modify(vimId, body, check)
    return JSONResponse(applied, headers={"ETag": etag_for(etag_source(row))})


@router.delete("/{vimId}", status_code=204, dependencies=[WRITE])
def delete_vim(vimId: str, svc: VimRegistry = Depends(registry)) -> Response:
    svc.delete(vimId)
    return Response(status_code=204)
