"""The NFVO's endpoint for SOL003 VNF LCM notifications from the VNFMs it drives.

``/nfvo/v1/vnflcm_notifications/{subscriptionRef}`` (the consumer's URI is the consumer's
choice in ETSI; the references are explained in `nfvo.vnfm_client.callbacks`):

- ``GET``: the SOL013 endpoint test a VNFM makes before it creates the subscription: 204.
- ``POST``: a VnfLcmOperationOccurrenceNotification, VnfIdentifierCreationNotification or
  VnfIdentifierDeletionNotification, validated as the SOL003 model (400 otherwise), handed
  to the process's `NotificationHub` (which wakes `wait_for_op` and calls `subscribe`
  callbacks): 204.

Both need the credentials the subscription carries, as SOL013 has the VNFM present them:
a bearer token from this NFVO's token endpoint (OAUTH2_CLIENT_CREDENTIALS) or HTTP Basic
(BASIC), of the OAuth 2.0 client issued for this very reference, with the scope
``vnflcm_notifications:v1:all`` (401 without valid credentials, 403 for another reference's).
A reference of no VNFM's form is 404. With the NFVO's authentication off, nothing is checked.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from nfvo.vnfm_client.callbacks import (
    ENDPOINT_PATH,
    NOTIFY_SCOPE,
    NotificationEndpoint,
    client_belongs_to,
    vnfm_of,
)
from nfvo.vnfm_client.hub import LcmNotification
from sol013.oauth2 import authenticate_client, require_scopes
from sol013.oauth2_endpoint import REALM
from sol013.problem import ApiError

__all__ = ["router"]

router = APIRouter(prefix=ENDPOINT_PATH, tags=["VNF LCM notifications (the NFVO as consumer)"])
_bearer = require_scopes(NOTIFY_SCOPE)


def _endpoint(request: Request) -> NotificationEndpoint:
    endpoint: NotificationEndpoint = request.app.state.vnfm_notifications
    return endpoint


def _basic_credentials(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise ApiError(
            401,
            "malformed HTTP Basic credentials",
            headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
        )
    return user, password


async def _authorized(subscriptionRef: str, request: Request) -> str:
    """The VNFM id of the reference, once the caller proved it may use it."""
    vnfm_id = vnfm_of(subscriptionRef)
    if vnfm_id is None:
        raise ApiError(404, f"{subscriptionRef!r} is not a subscription reference of this NFVO")
    if not getattr(request.app.state, "auth_enabled", True):
        return vnfm_id
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        client_id, secret = _basic_credentials(value)
        sessions: sessionmaker[Session] = request.app.state.session_factory

        def check() -> frozenset[str] | None:
            with sessions() as session:
                return authenticate_client(session, client_id, secret)

        # scrypt and the database are blocking: off the event loop.
        scopes = await run_in_threadpool(check)
        if scopes is None:
            raise ApiError(
                401,
                "the HTTP Basic credentials are not valid",
                headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
            )
        if NOTIFY_SCOPE not in scopes:
            raise ApiError(403, f"client {client_id} lacks the scope {NOTIFY_SCOPE}")
        subject = client_id
    else:
        subject = (await _bearer(request, None)).subject
    if not client_belongs_to(subject, subscriptionRef):
        raise ApiError(403, f"client {subject} may not notify subscription {subscriptionRef}")
    return vnfm_id


@router.get("/{subscriptionRef}", status_code=204)
def answer_test(vnfm_id: str = Depends(_authorized)) -> Response:
    return Response(status_code=204)


@router.post("/{subscriptionRef}", status_code=204)
def receive(
    subscriptionRef: str,
    notification: LcmNotification,
    request: Request,
    vnfm_id: str = Depends(_authorized),
) -> Response:
    _endpoint(request).hub.publish(vnfm_id, subscriptionRef, notification)
    return Response(status_code=204)
