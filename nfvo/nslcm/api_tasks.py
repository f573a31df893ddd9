"""The task resources of an NS instance: instantiate, terminate, scale, heal, update.

Each checks its request against the NS instance and its NSD with the instance locked
(404 unknown instance, 409 wrong nsState or another operation in progress, 422 naming the
field), starts an occurrence in PROCESSING and hands it to a worker; the answer is 202 with
the occurrence's URI in Location (SOL005 6.4.4-6.4.8).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from descriptors.vnfd import Vnfd
from nfvo.nslcm import checks
from nfvo.nslcm.deps import WRITE, base_url, occurrences
from nfvo.nslcm.dispatch import hand_over
from nfvo.nslcm.models import NsInstanceRow
from nfvo.nslcm.requests import (
    HealNsRequest,
    InstantiateNsRequest,
    ScaleNsRequest,
    TerminateNsRequest,
    UpdateNsRequest,
)
from nfvo.nslcm.schemas import API_MAJOR, API_NAME
from nfvo.nslcm.views import op_occ_href
from nfvo.vnfpkgm.models import VnfPackageRow

router = APIRouter(prefix=f"/{API_NAME}/{API_MAJOR}/ns_instances", tags=["NS LCM tasks"])

Check = Callable[[Session, NsInstanceRow], None]


def _session(ns: NsInstanceRow) -> Session:
    session = object_session(ns)
    assert session is not None  # `start` passes the row of its open transaction
    return session


def _start(
    request: Request, ns_instance_id: str, operation: str, body: BaseModel, check: Check
) -> Response:
    svc = occurrences(request)
    params = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    row = svc.start(ns_instance_id, operation, params, check=lambda ns: check(_session(ns), ns))
    hand_over(svc, request.app.state.ns_dispatch, row.id, "run")
    return Response(status_code=202, headers={"Location": op_occ_href(base_url(request), row.id)})


def _vim_exists(request: Request) -> Callable[[str], bool]:
    registry = request.app.state.vims.registry

    def exists(vim_id: str) -> bool:
        return registry.find(vim_id) is not None

    return exists


def _vnfd_of(session: Session) -> Callable[[str], Vnfd]:
    def vnfd(vnfd_id: str) -> Vnfd:
        row = session.scalar(
            select(VnfPackageRow).where(
                VnfPackageRow.vnfd_id == vnfd_id, VnfPackageRow.onboarding_state == "ONBOARDED"
            )
        )
        if row is None or row.vnfd is None:
            raise KeyError(vnfd_id)
        return Vnfd.model_validate(row.vnfd)

    return vnfd


@router.post("/{nsInstanceId}/instantiate", status_code=202, dependencies=[WRITE])
def instantiate(nsInstanceId: str, body: InstantiateNsRequest, request: Request) -> Response:
    vim_exists = _vim_exists(request)

    def check(session: Session, ns: NsInstanceRow) -> None:
        checks.check_instantiate(ns, checks.nsd_of(session, ns), body, vim_exists)

    return _start(request, nsInstanceId, "INSTANTIATE", body, check)


@router.post("/{nsInstanceId}/terminate", status_code=202, dependencies=[WRITE])
def terminate(nsInstanceId: str, body: TerminateNsRequest, request: Request) -> Response:
    return _start(
        request, nsInstanceId, "TERMINATE", body, lambda s, ns: checks.check_terminate(body)
    )


@router.post("/{nsInstanceId}/scale", status_code=202, dependencies=[WRITE])
def scale(nsInstanceId: str, body: ScaleNsRequest, request: Request) -> Response:
    def check(session: Session, ns: NsInstanceRow) -> None:
        checks.check_scale(ns, checks.nsd_of(session, ns), body)

    return _start(request, nsInstanceId, "SCALE", body, check)


@router.post("/{nsInstanceId}/heal", status_code=202, dependencies=[WRITE])
def heal(nsInstanceId: str, body: HealNsRequest, request: Request) -> Response:
    return _start(request, nsInstanceId, "HEAL", body, lambda s, ns: checks.check_heal(ns, body))


@router.post("/{nsInstanceId}/update", status_code=202, dependencies=[WRITE])
def update(nsInstanceId: str, body: UpdateNsRequest, request: Request) -> Response:
    def check(session: Session, ns: NsInstanceRow) -> None:
        checks.check_update(ns, checks.nsd_of(session, ns), body, _vnfd_of(session))

    return _start(request, nsInstanceId, "UPDATE", body, check)
