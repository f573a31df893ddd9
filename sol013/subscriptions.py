"""Subscription resources and notification fan-out shared by every API (SOL013).

Each API (VNF package management, VNF LCM, ...) keeps its own subscription table, request and
representation models and filter semantics; this module holds what they all do the same way:

- ``SubscriptionApi.router()``: ``POST`` (callback tested with a GET first, 422 if it fails;
  303 to an existing subscription with the same callback, filter and extra settings), ``GET``
  list (SOL013 filter and paging), ``GET`` one, ``DELETE`` (pending notifications cancelled).
- ``notify_subscribers``: queue one notification to every matching subscription of a table, in
  the caller's transaction, with one notification id per event.
- ``product_matches``: the ``vnfProductsFromProviders`` filter entry test both SOL003 and SOL005
  filters use.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from fastapi import APIRouter, Depends, Query, Request, params
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import FromClause, select
from sqlalchemy.orm import Session, sessionmaker

from sol013 import outbox
from sol013.listing import base_url, created_order_key, list_response
from sol013.notify import CallbackTestError, NotificationClient
from sol013.notify_auth import SubscriptionAuthentication
from sol013.problem import ApiError
from sol013.secrets import SecretBox
from store.base import transaction, utcnow


class SubscriptionRecord(Protocol):
    """The columns every subscription table has (an ORM model of the shared Base)."""

    __table__: ClassVar[FromClause]
    id: str
    callback_uri: str
    filter: dict[str, Any] | None
    # SubscriptionAuthentication as given, sealed (sol013.secrets); never returned by the API.
    authentication: dict[str, Any] | None
    created_at: datetime

    def __init__(self, **kwargs: Any) -> None: ...


class SubscriptionRequest(Protocol):
    """The attributes of a subscription request body this module reads."""

    @property
    def callbackUri(self) -> str: ...

    @property
    def filter(self) -> BaseModel | None: ...

    @property
    def authentication(self) -> SubscriptionAuthentication | dict[str, Any] | None: ...


RowT = TypeVar("RowT", bound=SubscriptionRecord)
Json = dict[str, Any]


def filter_as_json(body: SubscriptionRequest) -> Json | None:
    """The request's filter as stored: JSON, absent attributes left out."""
    flt = body.filter
    return flt.model_dump(mode="json", by_alias=True, exclude_none=True) if flt else None


def _no_extras(_: Any) -> Json:
    return {}


def app_sessions(request: Request) -> sessionmaker[Session]:
    """The service's session factory (``app.state.session_factory``)."""
    sessions: sessionmaker[Session] = request.app.state.session_factory
    return sessions


def app_page_size(request: Request) -> int:
    """The service's page size for lists (``app.state.settings.page_size``)."""
    return int(request.app.state.settings.page_size)


def _authentication(
    value: SubscriptionAuthentication | Json | None,
) -> SubscriptionAuthentication | None:
    """The request's SubscriptionAuthentication; 400 saying what is wrong with it."""
    if value is None or isinstance(value, SubscriptionAuthentication):
        return value
    try:
        return SubscriptionAuthentication.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(err["msg"] for err in exc.errors())
        raise ApiError(400, f"authentication: {problems}") from None


def _sealed(request: Request, auth: SubscriptionAuthentication | None) -> Json | None:
    """The credentials as stored: sealed with the service's box (``app.state.secret_box``)."""
    if auth is None:
        return None
    box: SecretBox = request.app.state.secret_box
    return box.seal_json(auth.model_dump(mode="json", exclude_none=True))


@dataclass(frozen=True)
class SubscriptionApi(Generic[RowT]):
    """The ``.../subscriptions`` resources of one API.

    ``prefix`` is the collection path (``/vnflcm/v2/subscriptions``); ``read`` and ``write``
    are the scope dependencies. ``extra_columns`` maps a request to the table's other columns
    (e.g. ``verbosity``), which also tell duplicates apart; ``extra_view`` adds attributes of
    a row to its representation (``id``, ``filter``, ``callbackUri`` and ``_links`` are
    always there).
    """

    table: type[RowT]
    request_model: type[BaseModel]
    representation_model: type[BaseModel]
    prefix: str
    read: params.Depends
    write: params.Depends
    tags: list[str]
    filter_json: Callable[[Any], Json | None] = filter_as_json
    extra_columns: Callable[[Any], Json] = _no_extras
    extra_view: Callable[[RowT], Json] = _no_extras
    sessions: Callable[[Request], sessionmaker[Session]] = app_sessions
    page_size: Callable[[Request], int] = app_page_size

    @property
    def _columns(self) -> Any:
        return self.table.__table__.c

    def href(self, base: str, subscription_id: str) -> str:
        """URI of an individual subscription, as ``_links.self`` and notifications give it."""
        return f"{base.rstrip('/')}{self.prefix}/{subscription_id}"

    def view(self, row: RowT, base: str) -> Json:
        """The representation of a subscription (never its credentials)."""
        view: Json = {"id": row.id, "callbackUri": row.callback_uri}
        if row.filter:
            view["filter"] = row.filter
        view.update(self.extra_view(row))
        view["_links"] = {"self": {"href": self.href(base, row.id)}}
        return view

    def _find_duplicate(
        self, session: Session, callback_uri: str, flt: Json | None, extra: Json
    ) -> RowT | None:
        query = select(self.table).where(self._columns.callback_uri == callback_uri)
        for existing in session.scalars(query):
            same_extras = all(getattr(existing, name) == value for name, value in extra.items())
            if (existing.filter or None) == flt and same_extras:
                return existing
        return None

    def _get(self, request: Request, subscription_id: str) -> RowT:
        with self.sessions(request)() as session:
            row = session.get(self.table, subscription_id)
        if row is None:
            raise ApiError(404, f"subscription {subscription_id} does not exist")
        return row

    async def _subscribe(self, body: Any, request: Request, base: str) -> Response:
        auth = _authentication(body.authentication)
        flt = self.filter_json(body)
        extra = self.extra_columns(body)
        with self.sessions(request)() as session:
            existing = self._find_duplicate(session, body.callbackUri, flt, extra)
            if existing is not None:
                # SOL013: no duplicate subscriptions; point the caller at the one that exists.
                return Response(status_code=303, headers={"Location": self.href(base, existing.id)})
        client: NotificationClient = request.app.state.notification_client
        try:
            await client.test_endpoint(body.callbackUri, auth)
        except CallbackTestError as exc:
            raise ApiError(422, f"callbackUri test failed: {exc}") from None
        row = self.table(
            id=str(uuid.uuid4()),
            callback_uri=body.callbackUri,
            filter=flt,
            authentication=_sealed(request, auth),
            **extra,
        )
        with transaction(self.sessions(request)) as session:
            session.add(row)
        view = self.view(row, base)
        return JSONResponse(
            view, status_code=201, headers={"Location": view["_links"]["self"]["href"]}
        )

    def _list(
        self, request: Request, filter_expr: str | None, marker: str | None, base: str
    ) -> Response:
        order = (self._columns.created_at, self._columns.id)
        with self.sessions(request)() as session:
            rows = list(session.scalars(select(self.table).order_by(*order)))
        return list_response(
            request,
            [(row, self.view(row, base)) for row in rows],
            key=created_order_key,
            filter_expr=filter_expr,
            model=self.representation_model,
            marker=marker,
            page_size=self.page_size(request),
        )

    def _delete(self, request: Request, subscription_id: str) -> Response:
        with transaction(self.sessions(request)) as session:
            row = session.get(self.table, subscription_id)
            if row is None:
                raise ApiError(404, f"subscription {subscription_id} does not exist")
            session.delete(row)
            # Nothing more goes to a subscriber that has left.
            outbox.cancel_pending(session, subscription_id)
        return Response(status_code=204)

    def router(self) -> APIRouter:
        """The routes of the subscriptions collection and its individual resources."""
        router = APIRouter(prefix=self.prefix, tags=list(self.tags))

        async def subscribe(body: Any, request: Request, base: str = Depends(base_url)) -> Response:
            return await self._subscribe(body, request, base)

        # FastAPI reads the body model from the annotation; it is only known here.
        subscribe.__annotations__["body"] = self.request_model

        def list_subscriptions(
            request: Request,
            filter: str | None = Query(default=None),
            nextpage_opaque_marker: str | None = Query(default=None),
            base: str = Depends(base_url),
        ) -> Response:
            return self._list(request, filter, nextpage_opaque_marker, base)

        def read_subscription(
            subscriptionId: str, request: Request, base: str = Depends(base_url)
        ) -> Response:
            return JSONResponse(self.view(self._get(request, subscriptionId), base))

        def unsubscribe(subscriptionId: str, request: Request) -> Response:
            return self._delete(request, subscriptionId)

        router.add_api_route(
            "", subscribe, methods=["POST"], status_code=201, dependencies=[self.write]
        )
        router.add_api_route("", list_subscriptions, methods=["GET"], dependencies=[self.read])
        router.add_api_route(
            "/{subscriptionId}", read_subscription, methods=["GET"], dependencies=[self.read]
        )
        router.add_api_route(
            "/{subscriptionId}",
            unsubscribe,
            methods=["DELETE"],
            status_code=204,
            dependencies=[self.write],
        )
        return router


def notify_subscribers(
    session: Session,
    table: type[RowT],
    notification_type: str,
    *,
    api_version: str,
    matches: Callable[[RowT], bool],
    content: Callable[[RowT], Json],
    links: Callable[[RowT], Json],
) -> int:
    """Queue one notification per matching subscription in ``session``; returns how many.

    Every copy has the same ``id`` and ``timeStamp`` (SOL013: one id per event, whatever the
    number of subscribers), its own ``subscriptionId``, then ``content(sub)`` and
    ``_links = links(sub)``.
    """
    notification_id = str(uuid.uuid4())
    time_stamp = utcnow().isoformat().replace("+00:00", "Z")
    sent = 0
    for sub in session.scalars(select(table).order_by(table.__table__.c.id)):
        if not matches(sub):
            continue
        payload: Json = {
            "id": notification_id,
            "notificationType": notification_type,
            "subscriptionId": sub.id,
            "timeStamp": time_stamp,
            **content(sub),
            "_links": links(sub),
        }
        outbox.enqueue(
            session,
            subscription_id=sub.id,
            callback_uri=sub.callback_uri,
            authentication=sub.authentication,
            payload=payload,
            api_version=api_version,
        )
        sent += 1
    return sent


class VersionCriterion(Protocol):
    @property
    def vnfSoftwareVersion(self) -> str: ...

    @property
    def vnfdVersions(self) -> Sequence[str] | None: ...


class ProductCriterion(Protocol):
    @property
    def vnfProductName(self) -> str: ...

    @property
    def versions(self) -> Sequence[VersionCriterion] | None: ...


@dataclass(frozen=True)
class ProductFacts:
    """What a ``vnfProductsFromProviders`` filter entry is matched against."""

    provider: str | None
    product: str | None
    software_version: str | None
    vnfd_version: str | None


def product_matches(
    provider: str, products: Sequence[ProductCriterion] | None, facts: ProductFacts
) -> bool:
    """One ``vnfProductsFromProviders`` entry: the provider, then any product and version."""
    if provider != facts.provider:
        return False
    if products is None:
        return True
    for product in products:
        if product.vnfProductName != facts.product:
            continue
        if product.versions is None:
            return True
        for version in product.versions:
            if version.vnfSoftwareVersion == facts.software_version and (
                version.vnfdVersions is None or facts.vnfd_version in version.vnfdVersions
            ):
                return True
    return False
