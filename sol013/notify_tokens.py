"""Access tokens the producer needs to call OAuth-protected notification endpoints.

Tokens are cached per (tokenEndpoint, clientId) so a burst of notifications
costs one token request, not one each.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import time
from dataclasses import dataclass
from urllib.parse import quote_plus

import httpx

from sol013.notify_auth import ParamsOauth2ClientCredentials

# Used when the token response omits expires_in (RFC 6749 makes it optional);
# a 401 from the endpoint forces a refresh anyway.
_DEFAULT_LIFETIME = 300.0
_MAX_REFRESH_MARGIN = 30.0
_MAX_ERROR_BODY = 300


class TokenFetchError(Exception):
    def __init__(self, detail: str, *, retryable: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class _CachedToken:
    value: str
    refresh_at: float


def _basic_client_auth(client_id: str, secret: str) -> str:
    # RFC 6749 section 2.3.1: form-urlencode both parts before Basic encoding.
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _lifetime(body: dict[str, object]) -> float:
    raw = body.get("expires_in")
    lifetime = _DEFAULT_LIFETIME
    if isinstance(raw, int | float | str) and not isinstance(raw, bool):
        with contextlib.suppress(ValueError):
            lifetime = float(raw)
    if not math.isfinite(lifetime) or lifetime <= 0:
        lifetime = _DEFAULT_LIFETIME
    # Refresh a little early so a token never expires in flight.
    return lifetime - min(_MAX_REFRESH_MARGIN, lifetime * 0.1)


class CallbackTokenCache:
    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], _CachedToken] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    @staticmethod
    def _key(params: ParamsOauth2ClientCredentials) -> tuple[str, str]:
        return (params.tokenEndpoint, params.clientId)

    def invalidate(self, params: ParamsOauth2ClientCredentials) -> None:
        self._tokens.pop(self._key(params), None)

    async def get(self, http: httpx.AsyncClient, params: ParamsOauth2ClientCredentials) -> str:
        key = self._key(params)
        cached = self._tokens.get(key)
        if cached is not None and cached.refresh_at > time.monotonic():
            return cached.value
        # One request per key at a time: concurrent deliveries wait for its token.
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.refresh_at > time.monotonic():
                return cached.value
            value, lifetime = await self._fetch(http, params)
            self._tokens[key] = _CachedToken(value, time.monotonic() + lifetime)
            return value

    @staticmethod
    async def _fetch(
        http: httpx.AsyncClient, params: ParamsOauth2ClientCredentials
    ) -> tuple[str, float]:
        endpoint = params.tokenEndpoint
        try:
            response = await http.post(
                endpoint,
                data={"grant_type": "client_credentials"},
                headers={
                    "Authorization": _basic_client_auth(params.clientId, params.clientPassword),
                    "Accept": "application/json",
                },
            )
        except httpx.TimeoutException as exc:
            raise TokenFetchError(f"token endpoint {endpoint} timed out", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise TokenFetchError(
                f"token endpoint {endpoint} unreachable: {type(exc).__name__}: {exc}",
                retryable=not isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL),
            ) from exc
        if response.status_code != 200:
            retryable = response.status_code >= 500 or response.status_code in (408, 429)
            raise TokenFetchError(
                f"token endpoint {endpoint} answered HTTP {response.status_code}: "
                f"{response.text[:_MAX_ERROR_BODY]}",
                retryable=retryable,
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise TokenFetchError(
                f"token endpoint {endpoint} returned no JSON", retryable=False
            ) from exc
        token = body.get("access_token") if isinstance(body, dict) else None
        token_type = body.get("token_type", "") if isinstance(body, dict) else ""
        if not isinstance(token, str) or not token or str(token_type).lower() != "bearer":
            raise TokenFetchError(
                f"token endpoint {endpoint} returned no bearer access_token", retryable=False
            )
        return token, _lifetime(body)
