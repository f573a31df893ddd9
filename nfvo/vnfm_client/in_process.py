"""The NFVO's own VNFM, driven in this process: the VNFM's services, no HTTP.

Requests go through the same functions as the `/vnflcm/v2` routes (`vnfm.lcm_requests`,
`vnfm.instances`, `vnfm.occurrences`), so they are checked, refused and handed to the LCM
workers exactly as over HTTP; a refusal (`ApiError`) becomes the typed error of the same
status. Representations are the API's own views, validated as the SOL003 models.

Subscriptions are rows of the VNFM's subscription table, made as `POST /subscriptions`
makes them (the callback is tested with a GET first, the credentials are sealed at rest, a
duplicate is not made twice); the VNFM's notification dispatcher delivers to the NFVO's
endpoint like to any subscriber.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import select

from nfvo.vnfm_client.callbacks import NotificationEndpoint
from nfvo.vnfm_client.errors import Unprocessable, error_for
from nfvo.vnfm_client.interface import OpTask, PollPolicy, VnfmClient
from nfvo.vnfm_client.registry import NotificationAuth
from sol013 import outbox
from sol013.filters import parse_filter
from sol013.notify import CallbackTestError, NotificationClient
from sol013.notify_auth import AuthType, SubscriptionAuthentication
from sol013.problem import ApiError, ProblemDetails
from sol013.secrets import SecretBox
from sol013.subscriptions import filter_as_json
from store.base import transaction
from vim_adapters.registry import VimResolver
from vnfm import lcm_requests
from vnfm.api_subscriptions import SUBSCRIPTIONS
from vnfm.instances import InstanceService
from vnfm.models import LccnSubscriptionRow
from vnfm.occurrences import Dispatch, OccurrenceService
from vnfm.opocc_views import op_occ_view
from vnfm.schemas import (
    CancelModeType,
    ChangeExtVnfConnectivityRequest,
    ChangeVnfFlavourRequest,
    CreateVnfRequest,
    InstantiateVnfRequest,
    LccnSubscriptionRequest,
    LcmOperationType,
    VnfInstance,
    VnfLcmOpOcc,
)
from vnfm.views import instance_view

__all__ = ["InProcessVnfmClient"]

T = TypeVar("T")
# Polling here is a read of the shared database, so it can be frequent: an NS operation
# waiting in a worker process is not woken by the notifications the API process receives,
# so the poll interval is what it adds to each VNF operation it waits for
# (bench/ns.py: "after the VNFs" was 0.9 s with a 1 s cap).
IN_PROCESS_POLL = PollPolicy(initial=0.05, factor=1.5, maximum=0.2)


@contextmanager
def _as_vnfm_errors() -> Iterator[None]:
    try:
        yield
    except ApiError as exc:
        raise error_for(exc.status, exc.detail) from None


def _run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even on a thread with a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _test_callback(uri: str, auth: SubscriptionAuthentication | None) -> None:
    async with NotificationClient() as client:
        await client.test_endpoint(uri, auth)


class InProcessVnfmClient(VnfmClient):
    """`VnfmClient` on the VNFM's services in this process."""

    def __init__(
        self,
        instances: InstanceService,
        occurrences: OccurrenceService,
        dispatch: Dispatch,
        *,
        base_url: str,
        wake_notifications: Callable[[], None] = lambda: None,
        vnfm_id: str = "local",
        endpoint: NotificationEndpoint | None = None,
        notification_auth: NotificationAuth = AuthType.OAUTH2_CLIENT_CREDENTIALS,
        poll: PollPolicy | None = None,
        secret_box: SecretBox | None = None,
        vims: VimResolver | None = None,
    ) -> None:
        """``dispatch`` hands occurrences to the LCM workers (`vnfm.worker.dispatcher_for`);
        ``base_url`` is the service's public URL, for the links in representations;
        ``secret_box`` seals subscription credentials at rest, as the API stores them;
        ``vims``: the VIM registry an InstantiateVnfRequest's VIM is checked against."""
        super().__init__(
            vnfm_id,
            endpoint=endpoint,
            notification_auth=notification_auth,
            poll=poll or IN_PROCESS_POLL,
        )
        self.instances = instances
        self.occurrences = occurrences
        self.dispatch = dispatch
        self.base_url = base_url.rstrip("/")
        self.wake_notifications = wake_notifications
        self.secret_box = secret_box
        self.vims = vims

    @classmethod
    def for_app(
        cls,
        app: FastAPI,
        *,
        vnfm_id: str = "local",
        endpoint: NotificationEndpoint | None = None,
        notification_auth: NotificationAuth = AuthType.OAUTH2_CLIENT_CREDENTIALS,
        poll: PollPolicy | None = None,
    ) -> InProcessVnfmClient:
        """The client of the VNFM a started NFVO app (`nfvo.app`) serves."""
        state = app.state

        def dispatch(op_id: str, kind: str) -> None:
            # Looked up at each call: tests and the worker integration replace it.
            state.dispatch(op_id, kind)

        return cls(
            state.instances,
            state.occurrences,
            dispatch,
            base_url=state.settings.public_url,
            wake_notifications=lambda: state.wake_notifications(),
            vnfm_id=vnfm_id,
            endpoint=endpoint if endpoint is not None else state.vnfm_notifications,
            notification_auth=notification_auth,
            poll=poll,
            secret_box=getattr(state, "secret_box", None),
            vims=getattr(state, "vims", None),
        )

    # -- instances -------------------------------------------------------------------------

    def _create_instance(
        self,
        vnfd_id: str,
        name: str | None,
        description: str | None,
        metadata: dict[str, object] | None,
    ) -> VnfInstance:
        body = CreateVnfRequest(
            vnfdId=vnfd_id,
            vnfInstanceName=name,
            vnfInstanceDescription=description,
            metadata=metadata,
        )
        with _as_vnfm_errors():
            row = lcm_requests.create_instance(
                self.instances, body, self.base_url, self.wake_notifications
            )
        return VnfInstance.model_validate(instance_view(row, self.base_url))

    def _get_instance(self, instance_id: str) -> VnfInstance:
        with _as_vnfm_errors():
            row = lcm_requests.read_instance(self.instances, instance_id)
        return VnfInstance.model_validate(instance_view(row, self.base_url))

    def _list_instances(self, filter: str | None) -> list[VnfInstance]:
        with _as_vnfm_errors():
            wanted = parse_filter(filter, model=VnfInstance) if filter else None
            with self.instances.sessions() as session:
                views = [
                    instance_view(row, self.base_url) for row in self.instances.list_all(session)
                ]
        return [VnfInstance.model_validate(v) for v in views if wanted is None or wanted.matches(v)]

    def _delete_instance(self, instance_id: str) -> None:
        with _as_vnfm_errors():
            lcm_requests.delete_instance(
                self.instances, instance_id, self.base_url, self.wake_notifications
            )

    # -- operations ------------------------------------------------------------------------

    def _start(self, instance_id: str, operation: LcmOperationType, request: BaseModel) -> str:
        with _as_vnfm_errors():
            if isinstance(request, InstantiateVnfRequest):
                lcm_requests.check_vim(self.instances, self.vims, instance_id, request)
            if isinstance(request, ChangeExtVnfConnectivityRequest):
                row = lcm_requests.start_change_ext_conn(
                    self.instances, self.occurrences, self.dispatch, instance_id, request
                )
            elif isinstance(request, ChangeVnfFlavourRequest):
                row = lcm_requests.start_change_flavour(
                    self.instances, self.occurrences, self.dispatch, instance_id, request
                )
            else:
                row = lcm_requests.start_operation(
                    self.occurrences,
                    self.dispatch,
                    instance_id,
                    operation,
                    lcm_requests.request_params(request),
                )
        return row.id

    def get_op_occ(self, op_id: str) -> VnfLcmOpOcc:
        with _as_vnfm_errors(), self.occurrences.sessions() as session:
            view = op_occ_view(self.occurrences.get(session, op_id), self.base_url)
        return VnfLcmOpOcc.model_validate(view)

    def _op_task(
        self, op_id: str, task: OpTask, mode: CancelModeType | None = None
    ) -> VnfLcmOpOcc | None:
        with _as_vnfm_errors():
            row = lcm_requests.request_task(
                self.occurrences,
                self.dispatch,
                op_id,
                task,
                cancel_mode=mode.value if mode is not None else None,
            )
        if task != "fail":
            return None
        return VnfLcmOpOcc.model_validate(op_occ_view(row, self.base_url))

    # -- subscriptions ---------------------------------------------------------------------

    def _create_subscription(self, request: LccnSubscriptionRequest) -> tuple[str, bool]:
        flt = filter_as_json(request)
        extra = SUBSCRIPTIONS.extra_columns(request)
        sessions = self.instances.sessions
        with sessions() as session:
            query = select(LccnSubscriptionRow).where(
                LccnSubscriptionRow.callback_uri == request.callbackUri
            )
            for existing in session.scalars(query):
                same = all(getattr(existing, k) == v for k, v in extra.items())
                if same and (existing.filter or None) == flt:
                    return existing.id, False
        auth = request.authentication
        try:
            _run_coroutine(_test_callback(request.callbackUri, auth))
        except CallbackTestError as exc:
            problem = ProblemDetails(status=422, detail=f"callbackUri test failed: {exc}")
            raise Unprocessable(problem) from None
        stored: dict[str, Any] | None = None
        if auth is not None:
            stored = auth.model_dump(mode="json", exclude_none=True)
            if self.secret_box is not None:
                stored = self.secret_box.seal_json(stored)
        row = LccnSubscriptionRow(
            id=str(uuid.uuid4()),
            callback_uri=request.callbackUri,
            filter=flt,
            authentication=stored,
            **extra,
        )
        with transaction(sessions) as session:
            session.add(row)
        return row.id, True

    def _delete_subscription(self, subscription_id: str) -> None:
        with _as_vnfm_errors(), transaction(self.instances.sessions) as session:
            row = session.get(LccnSubscriptionRow, subscription_id)
            if row is None:
                raise ApiError(404, f"subscription {subscription_id} does not exist")
            session.delete(row)
            # Nothing more goes to a subscriber that has left.
            outbox.cancel_pending(session, subscription_id)
