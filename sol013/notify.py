"""Calling subscribers' notification endpoints (SOL013 clauses 5.9 and 8).

The client tests an endpoint before a subscription is created (GET, expect
204) and POSTs notifications, authenticating as the subscription asks:

- OAUTH2_CLIENT_CREDENTIALS: a bearer token from the subscriber's token
  endpoint (cached; refreshed once when the endpoint answers 401);
- BASIC: HTTP Basic with paramsBasic;
- TLS_CERT: mutual TLS with the one client certificate configured for this
  service (``client_cert``); subscriptions carry no certificate of their own.

When several types are listed, OAuth 2.0 is preferred over Basic; the client
certificate, if configured, is presented on every https connection anyway.

A client owns an httpx connection pool: create it inside the event loop that
uses it and ``aclose()`` it (or use ``async with``).
"""

from __future__ import annotations

import base64
import json
import random
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from sol013.notify_auth import (
    AuthType,
    ParamsBasic,
    ParamsOauth2ClientCredentials,
    SubscriptionAuthentication,
)
from sol013.notify_tokens import CallbackTokenCache, TokenFetchError

__all__ = [
    "AuthType",
    "CallbackTestError",
    "DeliveryResult",
    "NotificationClient",
    "ParamsBasic",
    "ParamsOauth2ClientCredentials",
    "RetryPolicy",
    "SubscriptionAuthentication",
]

# Enough of an error body to explain a failure, without trusting the
# endpoint to send a small one.
_MAX_BODY_BYTES = 2048
_MAX_ERROR_TEXT = 300
_RETRYABLE_4XX = frozenset({408, 429})


class CallbackTestError(Exception):
    """The notification endpoint failed the SOL013 GET test."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _AuthConfigError(Exception):
    """The subscription asks for an authentication this service cannot perform."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    ok: bool
    status: int | None
    error: str | None
    retryable: bool
    # Seconds the endpoint asked us to wait (Retry-After on 429/503).
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 300.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        Exponential, capped at max_delay, then spread by +-jitter so many
        notifications failing together don't retry in lockstep.
        """
        exponent = min(max(attempt, 1) - 1, 60)
        nominal = min(self.max_delay, self.base_delay * 2.0**exponent)
        spread = random.uniform(1 - self.jitter, 1 + self.jitter)
        return min(self.max_delay, nominal * spread)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _basic_header(params: ParamsBasic) -> str:
    raw = f"{params.userName}:{params.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _mechanism(auth: SubscriptionAuthentication | None) -> AuthType | None:
    if auth is None:
        return None
    for preferred in (AuthType.OAUTH2_CLIENT_CREDENTIALS, AuthType.BASIC, AuthType.TLS_CERT):
        if preferred in auth.authType:
            return preferred
    return None


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: httpx.Headers
    text: str


class NotificationClient:
    def __init__(
        self,
        *,
        timeout: float = 5.0,
        client_cert: tuple[str, str] | None = None,
        ca_file: str | None = None,
    ) -> None:
        """``client_cert`` is (certificate file, key file) for mutual TLS (TLS_CERT)."""
        tls = ssl.create_default_context(cafile=ca_file)
        if client_cert is not None:
            tls.load_cert_chain(certfile=client_cert[0], keyfile=client_cert[1])
        self.has_client_cert = client_cert is not None
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), verify=tls, follow_redirects=False
        )
        self._tokens = CallbackTokenCache()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def test_endpoint(
        self,
        callback_uri: str,
        auth: SubscriptionAuthentication | None,
        *,
        version: str | None = None,
    ) -> None:
        """SOL013 clause 5.9.3: the endpoint must answer GET with 204 before subscribing."""
        try:
            answer = await self._send("GET", callback_uri, auth, None, version)
        except _AuthConfigError as exc:
            raise CallbackTestError(str(exc)) from exc
        except TokenFetchError as exc:
            raise CallbackTestError(f"cannot authenticate to {callback_uri}: {exc.detail}") from exc
        except httpx.TimeoutException as exc:
            raise CallbackTestError(f"notification endpoint {callback_uri} timed out") from exc
        except httpx.HTTPError as exc:
            raise CallbackTestError(
                f"cannot reach notification endpoint {callback_uri}: {type(exc).__name__}: {exc}"
            ) from exc
        if answer.status != 204:
            raise CallbackTestError(
                f"notification endpoint {callback_uri} answered the GET test with "
                f"HTTP {answer.status}, expected 204"
            )

    async def deliver(
        self,
        callback_uri: str,
        auth: SubscriptionAuthentication | None,
        payload: Mapping[str, Any],
        *,
        version: str | None = None,
    ) -> DeliveryResult:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        try:
            answer = await self._send("POST", callback_uri, auth, body, version)
        except _AuthConfigError as exc:
            return DeliveryResult(False, None, str(exc), retryable=False)
        except TokenFetchError as exc:
            return DeliveryResult(False, None, exc.detail, retryable=exc.retryable)
        except httpx.TimeoutException as exc:
            return DeliveryResult(False, None, f"timed out: {type(exc).__name__}", retryable=True)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            return DeliveryResult(False, None, f"bad callback URI: {exc}", retryable=False)
        except httpx.HTTPError as exc:
            return DeliveryResult(
                False, None, f"connection failed: {type(exc).__name__}: {exc}", retryable=True
            )
        status = answer.status
        if 200 <= status < 300:
            return DeliveryResult(True, status, None, retryable=False)
        error = f"HTTP {status}"
        if answer.text:
            error += f": {answer.text[:_MAX_ERROR_TEXT]}"
        retryable = status >= 500 or status in _RETRYABLE_4XX
        retry_after = _retry_after(answer.headers.get("retry-after")) if retryable else None
        return DeliveryResult(False, status, error, retryable=retryable, retry_after=retry_after)

    async def _send(
        self,
        method: str,
        uri: str,
        auth: SubscriptionAuthentication | None,
        body: bytes | None,
        version: str | None,
    ) -> _Answer:
        mechanism = _mechanism(auth)
        if mechanism is AuthType.TLS_CERT:
            self._check_mutual_tls(uri)
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if version is not None:
            # SOL013 clause 9.1: every request, notifications included, names the API version.
            headers["Version"] = version
        if auth is not None and mechanism is AuthType.BASIC and auth.paramsBasic is not None:
            headers["Authorization"] = _basic_header(auth.paramsBasic)
        oauth = auth.paramsOauth2ClientCredentials if auth is not None else None
        if mechanism is not AuthType.OAUTH2_CLIENT_CREDENTIALS or oauth is None:
            return await self._exchange(method, uri, headers, body)
        headers["Authorization"] = "Bearer " + await self._tokens.get(self._http, oauth)
        answer = await self._exchange(method, uri, headers, body)
        if answer.status != 401:
            return answer
        # The token may have been revoked or the endpoint's keys rotated: one fresh try.
        self._tokens.invalidate(oauth)
        headers["Authorization"] = "Bearer " + await self._tokens.get(self._http, oauth)
        return await self._exchange(method, uri, headers, body)

    def _check_mutual_tls(self, uri: str) -> None:
        if not self.has_client_cert:
            raise _AuthConfigError("TLS_CERT requested but no client certificate is configured")
        if urlsplit(uri).scheme != "https":
            raise _AuthConfigError("TLS_CERT requires an https callback URI")

    async def _exchange(
        self, method: str, uri: str, headers: dict[str, str], body: bytes | None
    ) -> _Answer:
        async with self._http.stream(method, uri, headers=headers, content=body) as response:
            received = bytearray()
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) >= _MAX_BODY_BYTES:
                    break
            text = bytes(received[:_MAX_BODY_BYTES]).decode("utf-8", "replace")
            return _Answer(response.status_code, response.headers, text.strip())
