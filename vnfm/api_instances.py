"""/vnflcm/v2/vnf_instances: create, query and delete VNF instance resources."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from sol013.etag import etag_for
from sol013.listing import base_url, created_order_key, list_response
from sol013.oauth2 import require_scopes, scopes_for
from sol013.selectors import Selector, selector_dependency
from vnfm import lcm_requests
from vnfm.instances import InstanceService
from vnfm.schemas import API_MAJOR, API_NAME, CreateVnfRequest, VnfInstance
from vnfm.views import DEFAULT_EXCLUDED, etag_source, instance_href, instance_view

router = APIRouter(prefix="/vnflcm/v2/vnf_instances", tags=["VNF instances"])
READ = Depends(require_scopes(*scopes_for(API_NAME, API_MAJOR, write=False)))
WRITE = Depends(require_scopes(*scopes_for(API_NAME, API_MAJOR, write=True)))


def service(request: Request) -> InstanceService:
    svc: InstanceService = request.app.state.instances
    return svc


@router.post("", status_code=201, dependencies=[WRITE])
def create_instance(
    body: CreateVnfRequest,
    request: Request,
    svc: InstanceService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    row = lcm_requests.create_instance(svc, body, base, request.app.state.wake_notifications)
    return JSONResponse(
        instance_view(row, base),
        status_code=201,
        headers={"Location": instance_href(base, row.id), "ETag": etag_for(etag_source(row))},
    )


@router.get("", dependencies=[READ])
def list_instances(
    request: Request,
    filter: str | None = Query(default=None),
    nextpage_opaque_marker: str | None = Query(default=None),
    selector: Selector = Depends(selector_dependency),
    svc: InstanceService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    with svc.sessions() as session:
        rows = svc.list_all(session)
    return list_response(
        request,
        [(row, instance_view(row, base)) for row in rows],
        key=created_order_key,
        filter_expr=filter,
        model=VnfInstance,
        marker=nextpage_opaque_marker,
        page_size=request.app.state.settings.page_size,
        selector=selector,
        default_excluded=DEFAULT_EXCLUDED,
    )


@router.get("/{vnfInstanceId}", dependencies=[READ])
def read_instance(
    vnfInstanceId: str, svc: InstanceService = Depends(service), base: str = Depends(base_url)
) -> Response:
    with svc.sessions() as session:
        row = svc.get(session, vnfInstanceId)
    return JSONResponse(instance_view(row, base), headers={"ETag": etag_for(etag_source(row))})


@router.delete("/{vnfInstanceId}", status_code=204, dependencies=[WRITE])
def delete_instance(
    vnfInstanceId: str,
    request: Request,
    svc: InstanceService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    lcm_requests.delete_instance(svc, vnfInstanceId, base, request.app.state.wake_notifications)
    return Response(status_code=204)
