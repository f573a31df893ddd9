"""OAuth 2.0 client credentials (RFC 6749 section 4.4) for the NFVO's calls to a VNFM.

One token at a time, shared by the client's threads; it is fetched again a little before it
expires and whenever the VNFM answers 401 to it (revoked, keys rotated). The secret is a
`SecretStr` and is only ever sent to the token endpoint, as HTTP Basic client
authentication (RFC 6749 section 2.3.1).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from urllib.parse import quote_plus

import httpx
from pydantic import SecretStr

from nfvo.vnfm_client.errors import Forbidden, Unavailable, VnfmError, VnfmProtocolError
from sol013.problem import ProblemDetails

__all__ = ["ClientCredentials"]

# Used when the token response has no expires_in (RFC 6749 makes it optional).
_DEFAULT_LIFETIME = 300.0
_MAX_REFRESH_MARGIN = 30.0
_MAX_ERROR_TEXT = 300


class ClientCredentials:
    """Bearer tokens for one OAuth 2.0 client at one token endpoint."""

    def __init__(
        self,
        http: httpx.Client,
        token_url: str,
        client_id: str,
        secret: SecretStr,
        scopes: Sequence[str],
    ) -> None:
        self._http = http
        self.token_url = token_url
        self.client_id = client_id
        self._secret = secret
        self.scopes = tuple(scopes)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self.fetched = 0

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._refresh_at:
                self._token, lifetime = self._fetch()
                self._refresh_at = time.monotonic() + lifetime
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (the VNFM refused it); a newer one fetched meanwhile stays."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> tuple[str, float]:
        # RFC 6749 section 2.3.1: both parts are form-urlencoded before Basic encoding.
        auth = (quote_plus(self.client_id), quote_plus(self._secret.get_secret_value()))
        form = {"grant_type": "client_credentials"}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        try:
            response = self._http.post(
                self.token_url, data=form, auth=auth, headers={"Accept": "application/json"}
            )
        except httpx.TransportError as exc:
            raise _failure(
                Unavailable, 503, f"token endpoint {self.token_url} unreachable: {exc!r}"
            ) from None
        if response.status_code != 200:
            status = response.status_code
            kind: type[VnfmError] = Unavailable if status >= 500 or status == 429 else Forbidden
            text = response.text[:_MAX_ERROR_TEXT]
            raise _failure(
                kind,
                503 if kind is Unavailable else 401,
                f"token endpoint {self.token_url} refused client {self.client_id}: "
                f"HTTP {status} {text}",
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        kind_ok = isinstance(body, dict) and str(body.get("token_type", "")).lower() == "bearer"
        if not isinstance(token, str) or not token or not kind_ok:
            raise _failure(
                VnfmProtocolError, 502, f"token endpoint {self.token_url} sent no bearer token"
            )
        self.fetched += 1
        assert isinstance(body, dict)
        return token, _lifetime(body.get("expires_in"))


def _lifetime(raw: object) -> float:
    lifetime = _DEFAULT_LIFETIME
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        lifetime = float(raw)
    if not math.isfinite(lifetime) or lifetime <= 0:
        lifetime = _DEFAULT_LIFETIME
    # Refresh a little early so a token never expires in flight.
    return lifetime - min(_MAX_REFRESH_MARGIN, lifetime * 0.1)


def _failure(kind: type[VnfmError], status: int, detail: str) -> VnfmError:
    return kind(ProblemDetails(status=status, detail=detail))
