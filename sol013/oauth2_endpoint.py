"""The token endpoint: client credentials grant (RFC 6749 sections 2.3.1, 4.4, 5)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from sol013.oauth2_clients import authenticate_client
from sol013.oauth2_tokens import TokenIssuer

REALM = "nfv-mano"
_GRANT_TYPE = "client_credentials"
_FORM_TYPE = "application/x-www-form-urlencoded"
# RFC 6749 section 5.1: token responses must never be cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_REQUEST_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            _FORM_TYPE: {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": [_GRANT_TYPE]},
                        "scope": {"type": "string"},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string"},
                    },
                }
            }
        },
    }
}


class _OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _error_response(err: _OAuthError) -> JSONResponse:
    headers = dict(_NO_STORE)
    if err.status == 401:
        headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
    return JSONResponse(
        {"error": err.error, "error_description": err.description},
        status_code=err.status,
        headers=headers,
    )


def _invalid_client(description: str) -> _OAuthError:
    return _OAuthError("invalid_client", description, 401)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _invalid_client("malformed HTTP Basic credentials") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise _invalid_client("malformed HTTP Basic credentials")
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    basic = _basic_credentials(request.headers.get("authorization", ""))
    in_form = "client_id" in form or "client_secret" in form
    if basic is not None and in_form:
        # RFC 6749 section 2.3: one authentication method per request.
        raise _OAuthError("invalid_request", "use either HTTP Basic or form client credentials")
    if basic is not None:
        return basic
    if in_form:
        return form.get("client_id", ""), form.get("client_secret", "")
    raise _invalid_client("client authentication required")


async def _read_form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != _FORM_TYPE:
        raise _OAuthError("invalid_request", f"the request body must be {_FORM_TYPE}")
    form = await request.form()
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise _OAuthError("invalid_request", f"parameter {key!r} must be a plain value")
        if key in values:
            raise _OAuthError("invalid_request", f"parameter {key!r} repeated")
        values[key] = value
    return values


def _granted_scopes(requested: str | None, allowed: frozenset[str]) -> frozenset[str]:
    if requested is None or not requested.strip():
        if not allowed:
            raise _OAuthError("invalid_scope", "the client has no scopes")
        return allowed
    wanted = frozenset(requested.split())
    unknown = wanted - allowed
    if unknown:
        raise _OAuthError("invalid_scope", f"scope not granted: {' '.join(sorted(unknown))}")
    return wanted


def token_router(
    session_factory_getter: Callable[[], sessionmaker[Session]],
    issuer_getter: Callable[[], TokenIssuer],
    path: str = "/oauth2/token",
) -> APIRouter:
    router = APIRouter(tags=["OAuth 2.0"])

    def authenticate(client_id: str, secret: str) -> frozenset[str] | None:
        with session_factory_getter()() as session:
            return authenticate_client(session, client_id, secret)

    @router.post(
        path,
        summary="Obtain an access token (client credentials grant)",
        openapi_extra=_REQUEST_BODY_DOC,
        response_model=None,
    )
    async def issue_token(request: Request) -> JSONResponse:
        try:
            form = await _read_form(request)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise _OAuthError("invalid_request", "grant_type is required")
            if grant_type != _GRANT_TYPE:
                raise _OAuthError("unsupported_grant_type", f"only {_GRANT_TYPE} is supported")
            client_id, secret = _client_credentials(request, form)
            # scrypt and the database are blocking; keep them off the event loop.
            allowed = await run_in_threadpool(authenticate, client_id, secret)
            if allowed is None:
                raise _invalid_client("client authentication failed")
            granted = _granted_scopes(form.get("scope"), allowed)
        except _OAuthError as err:
            return _error_response(err)
        token, expires_in = issuer_getter().issue(client_id, granted)
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": " ".join(sorted(granted)),
        }
        return JSONResponse(body, headers=_NO_STORE)

    return router
