"""OAuth 2.0 authorization of API requests (SOL013 clause 8, RFC 6750 bearer tokens).

Routes declare what they need with ``Depends(require_scopes(*scopes_for(...)))``.
The app wires ``app.state.token_issuer`` (a TokenIssuer) and may set
``app.state.auth_enabled = False`` for embedded single-user use.

Scope convention: ``{api}:{major}:all`` allows everything on one major API
version, ``{api}:{major}:readonly`` allows reads only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sol013.oauth2_clients import (
    OAuthClient,
    OAuthClientInfo,
    authenticate_client,
    create_client,
    delete_client,
    list_clients,
)
from sol013.oauth2_endpoint import REALM, token_router
from sol013.oauth2_tokens import (
    ANONYMOUS,
    TokenClaims,
    TokenError,
    TokenExpiredError,
    TokenIssuer,
)
from sol013.problem import ApiError

__all__ = [
    "ANONYMOUS",
    "OAuthClient",
    "OAuthClientInfo",
    "TokenClaims",
    "TokenError",
    "TokenExpiredError",
    "TokenIssuer",
    "authenticate_client",
    "create_client",
    "delete_client",
    "list_clients",
    "require_scopes",
    "scopes_for",
    "token_router",
]

# Only makes the security scheme visible in the OpenAPI document; the header
# is parsed below so every failure gets the RFC 6750 challenge.
_bearer_doc = HTTPBearer(auto_error=False, scheme_name="OAuth2Bearer")


def scopes_for(api: str, major: str, *, write: bool) -> tuple[str, ...]:
    """Scopes of which any one allows a read (write=False) or a write on ``api``."""
    full = f"{api}:{major}:all"
    return (full,) if write else (full, f"{api}:{major}:readonly")


def _challenge(*params: str) -> dict[str, str]:
    return {"WWW-Authenticate": ", ".join((f'Bearer realm="{REALM}"', *params))}


def _bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        # RFC 6750 section 3.1: no error code when no credentials were sent.
        raise ApiError(401, "An OAuth 2.0 bearer token is required", headers=_challenge())
    token = token.strip()
    if not token:
        raise ApiError(
            401, "The bearer token is empty", headers=_challenge('error="invalid_token"')
        )
    return token


def _issuer(request: Request) -> TokenIssuer:
    issuer = getattr(request.app.state, "token_issuer", None)
    if not isinstance(issuer, TokenIssuer):
        raise RuntimeError("app.state.token_issuer is not configured while auth is enabled")
    return issuer


def require_scopes(*any_of: str) -> Callable[..., Awaitable[TokenClaims]]:
    """A dependency that admits callers holding at least one of ``any_of``.

    With no scopes given, any valid token is enough.
    """
    wanted = frozenset(any_of)

    async def dependency(
        request: Request,
        _documented: HTTPAuthorizationCredentials | None = Security(_bearer_doc),
    ) -> TokenClaims:
        if not getattr(request.app.state, "auth_enabled", True):
            return ANONYMOUS
        token = _bearer_token(request)
        try:
            claims = _issuer(request).verify(token)
        except TokenExpiredError as exc:
            raise ApiError(
                401,
                "The access token expired",
                headers=_challenge(
                    'error="invalid_token"', 'error_description="The access token expired"'
                ),
            ) from exc
        except TokenError as exc:
            raise ApiError(
                401, "The access token is invalid", headers=_challenge('error="invalid_token"')
            ) from exc
        if not claims.allows_any(wanted):
            needed = " ".join(sorted(wanted))
            raise ApiError(
                403,
                f"The access token lacks a required scope (one of: {needed})",
                headers=_challenge('error="insufficient_scope"', f'scope="{needed}"'),
            )
        return claims

    return dependency
