"""/vnfpkgm/v2/subscriptions: subscribe to package notifications."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from nfvo.vnfpkgm.deps import READ, WRITE, base_url, service
from nfvo.vnfpkgm.models import PkgmSubscriptionRow
from nfvo.vnfpkgm.schemas import PkgmSubscription, PkgmSubscriptionRequest
from nfvo.vnfpkgm.service import PackageService
from nfvo.vnfpkgm.views import api_root
from sol013 import outbox
from sol013.listing import created_order_key, list_response
from sol013.notify import CallbackTestError, NotificationClient, SubscriptionAuthentication
from sol013.problem import ApiError
from store.base import transaction

router = APIRouter(prefix="/vnfpkgm/v2/subscriptions", tags=["VNF package subscriptions"])


def subscription_view(row: PkgmSubscriptionRow, base: str) -> dict[str, Any]:
    view: dict[str, Any] = {"id": row.id, "callbackUri": row.callback_uri}
    if row.filter:
        view["filter"] = row.filter
    view["_links"] = {"self": {"href": f"{api_root(base)}/subscriptions/{row.id}"}}
    return view


@router.post("", status_code=201, dependencies=[WRITE])
async def subscribe(
    body: PkgmSubscriptionRequest,
    request: Request,
    svc: PackageService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    auth: SubscriptionAuthentication | None = None
    if body.authentication is not None:
        try:
            auth = SubscriptionAuthentication.model_validate(body.authentication)
        except ValidationError as exc:
            problems = "; ".join(err["msg"] for err in exc.errors())
            raise ApiError(400, f"authentication: {problems}") from None
    flt = body.filter.model_dump(mode="json", exclude_none=True) if body.filter else None
    with svc.sessions() as session:
        for existing in session.scalars(
            select(PkgmSubscriptionRow).where(PkgmSubscriptionRow.callback_uri == body.callbackUri)
        ):
            if (existing.filter or None) == flt:
                # SOL005: no duplicate subscriptions; point the caller at the one that exists.
                href = f"{api_root(base)}/subscriptions/{existing.id}"
                return Response(status_code=303, headers={"Location": href})
    client: NotificationClient = request.app.state.notification_client
    try:
        await client.test_endpoint(body.callbackUri, auth)
    except CallbackTestError as exc:
        raise ApiError(422, f"callbackUri test failed: {exc}") from None
    row = PkgmSubscriptionRow(
        id=str(uuid.uuid4()),
        callback_uri=body.callbackUri,
        filter=flt,
        authentication=auth.model_dump(mode="json", exclude_none=True) if auth else None,
    )
    with transaction(svc.sessions) as session:
        session.add(row)
    view = subscription_view(row, base)
    return JSONResponse(view, status_code=201, headers={"Location": view["_links"]["self"]["href"]})


@router.get("", dependencies=[READ])
def list_subscriptions(
    request: Request,
    filter: str | None = Query(default=None),
    nextpage_opaque_marker: str | None = Query(default=None),
    svc: PackageService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    with svc.sessions() as session:
        rows = list(
            session.scalars(
                select(PkgmSubscriptionRow).order_by(
                    PkgmSubscriptionRow.created_at, PkgmSubscriptionRow.id
                )
            )
        )
    return list_response(
        request,
        [(row, subscription_view(row, base)) for row in rows],
        key=created_order_key,
        filter_expr=filter,
        model=PkgmSubscription,
        marker=nextpage_opaque_marker,
        page_size=svc.settings.page_size,
    )


def _get(svc: PackageService, subscription_id: str) -> PkgmSubscriptionRow:
    with svc.sessions() as session:
        row = session.get(PkgmSubscriptionRow, subscription_id)
    if row is None:
        raise ApiError(404, f"subscription {subscription_id} does not exist")
    return row


@router.get("/{subscriptionId}", dependencies=[READ])
def read_subscription(
    subscriptionId: str, svc: PackageService = Depends(service), base: str = Depends(base_url)
) -> Response:
    return JSONResponse(subscription_view(_get(svc, subscriptionId), base))


@router.delete("/{subscriptionId}", status_code=204, dependencies=[WRITE])
def unsubscribe(subscriptionId: str, svc: PackageService = Depends(service)) -> Response:
    with transaction(svc.sessions) as session:
        row = session.get(PkgmSubscriptionRow, subscriptionId)
        if row is None:
            raise ApiError(404, f"subscription {subscriptionId} does not exist")
        session.delete(row)
        # Nothing more goes to a subscriber that has left.
        outbox.cancel_pending(session, subscriptionId)
    return Response(status_code=204)
