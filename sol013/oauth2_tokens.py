"""Self-contained access tokens: HS256-signed JWTs (RFC 7519, profile after RFC 9068).

Signed tokens need no token table, so any API replica holding the shared key
can verify a token without a database round trip.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from store.base import utcnow

_ALGORITHM = "HS256"
# RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output.
_MIN_KEY_BYTES = 32
# Tolerates small clock differences between replicas.
_LEEWAY_SECONDS = 5


class TokenError(Exception):
    """The token is not acceptable (bad signature, malformed, wrong issuer...)."""


class TokenExpiredError(TokenError):
    """The token was valid but its lifetime is over."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    scopes: frozenset[str]
    expires_at: datetime
    # Set only for the anonymous caller when authorization is switched off.
    unrestricted: bool = False

    def allows_any(self, scopes: Iterable[str]) -> bool:
        wanted = frozenset(scopes)
        return self.unrestricted or not wanted or bool(self.scopes & wanted)


ANONYMOUS = TokenClaims(
    subject="anonymous",
    scopes=frozenset(),
    expires_at=datetime.max.replace(tzinfo=UTC),
    unrestricted=True,
)


class TokenIssuer:
    def __init__(
        self, secret_key: bytes, *, issuer: str = "nfv-mano", ttl_seconds: int = 3600
    ) -> None:
        if len(secret_key) < _MIN_KEY_BYTES:
            raise ValueError(f"token signing key must be at least {_MIN_KEY_BYTES} bytes")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._key = secret_key
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds

    def issue(self, client_id: str, scopes: Iterable[str]) -> tuple[str, int]:
        """A signed token and its lifetime in seconds (the RFC 6749 expires_in)."""
        now = utcnow().replace(microsecond=0)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": client_id,
            "client_id": client_id,
            "iat": now,
            "exp": now + timedelta(seconds=self.ttl_seconds),
            "jti": secrets.token_urlsafe(16),
            "scope": " ".join(sorted(set(scopes))),
        }
        token = jwt.encode(claims, self._key, algorithm=_ALGORITHM, headers={"typ": "at+jwt"})
        return token, self.ttl_seconds

    def verify(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                # Pinning the algorithm rejects "alg: none" and key-confusion tokens.
                algorithms=[_ALGORITHM],
                issuer=self.issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpiredError("the access token expired") from exc
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid access token: {exc}") from exc
        scope = claims.get("scope", "")
        subject = claims["sub"]
        if not isinstance(scope, str) or not isinstance(subject, str):
            raise TokenError("invalid access token: malformed claims")
        return TokenClaims(
            subject=subject,
            scopes=frozenset(scope.split()),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
