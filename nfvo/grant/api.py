"""/grant/v1/grants and /grant/v1/grants/{grantId} (SOL003 clause 9.4)."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Request
from fastapi.responses import JSONResponse, Response

from nfvo.grant.models import GrantState
from nfvo.grant.schemas import API_MAJOR, API_NAME, API_VERSION, Grant, GrantRequest
from nfvo.grant.service import GrantService, grant_href
from sol013.listing import base_url
from sol013.oauth2 import require_scopes, scopes_for
from sol013.versioning import ApiSpec

GRANT = ApiSpec(name=API_NAME, major=API_MAJOR, versions=(API_VERSION,))
READ = Depends(require_scopes(*scopes_for(API_NAME, API_MAJOR, write=False)))
WRITE = Depends(require_scopes(*scopes_for(API_NAME, API_MAJOR, write=True)))
RESPOND_ASYNC = "respond-async"

router = APIRouter(prefix=f"/{API_NAME}/{API_MAJOR}", tags=["Grants"])


def service(request: Request) -> GrantService:
    svc: GrantService = request.app.state.grants
    return svc


def prefers_async(prefer: str | None) -> bool:
    """Whether a ``Prefer`` header (RFC 7240) holds the ``respond-async`` preference."""
    if not prefer:
        return False
    for preference in prefer.split(","):
        token = preference.split(";")[0].split("=")[0].strip().lower()
        if token == RESPOND_ASYNC:
            return True
    return False


@router.post(
    "/grants",
    status_code=201,
    dependencies=[WRITE],
    response_model=Grant,
    response_model_by_alias=True,
    responses={
        202: {"description": "Accepted; the decision is made asynchronously (poll Location)"},
        403: {"description": "The grant is rejected; ProblemDetails says why"},
    },
)
def request_grant(
    body: GrantRequest,
    background: BackgroundTasks,
    prefer: str | None = Header(default=None),
    svc: GrantService = Depends(service),
    root: str = Depends(base_url),
) -> Response:
    if svc.asynchronous or prefers_async(prefer):
        row = svc.accept(body, root)
        background.add_task(svc.decide, row.id)
        headers = {"Location": grant_href(root, row.id)}
        if prefers_async(prefer):
            headers["Preference-Applied"] = RESPOND_ASYNC
        return Response(status_code=202, headers=headers)
    grant = svc.grant_now(body, root)
    return JSONResponse(
        grant.to_json(), status_code=201, headers={"Location": grant_href(root, grant.id)}
    )


@router.get(
    "/grants/{grantId}",
    dependencies=[READ],
    response_model=Grant,
    response_model_by_alias=True,
    responses={
        202: {"description": "The decision is still being made"},
        403: {"description": "The grant was rejected; ProblemDetails says why"},
    },
)
def read_grant(grantId: str, svc: GrantService = Depends(service)) -> Response:
    row = svc.get(grantId)
    if row.state == GrantState.PENDING.value:
        return Response(status_code=202)
    # A rejected grant raises ApiError 403 with the stored ProblemDetails' detail.
    return JSONResponse(svc.result(row).to_json())
