"""OAuth 2.0 client registry for the client credentials grant (SOL013 clause 8).

Only a salted scrypt hash of each client secret is stored, so a leaked
database does not hand out API access.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from store.base import Base, utcnow

# scrypt cost: ~16 MiB and tens of milliseconds per check, which is cheap for
# one token request but expensive for offline guessing.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_DKLEN = 32
_SALT_BYTES = 16
_HASH_SCHEME = "scrypt"


class OAuthClient(Base):
    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[Any]]
    description: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True, slots=True)
class OAuthClientInfo:
    """A client as shown to operators: everything except the secret hash."""

    client_id: str
    scopes: tuple[str, ...]
    description: str | None
    created_at: datetime


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=64 * 1024 * 1024
    )


def hash_secret(secret: str) -> str:
    """Self-describing hash so the cost parameters can be raised later."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(secret, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_DKLEN)
    return f"{_HASH_SCHEME}${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != _HASH_SCHEME:
            return False
        expected = _unb64(digest)
        actual = _scrypt(secret, _unb64(salt), int(n), int(r), int(p), len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# Checked against when the client id is unknown, so response time does not
# reveal which client ids exist.
_DUMMY_HASH = hash_secret(secrets.token_urlsafe(16))


def _validate_scopes(scopes: Sequence[str]) -> list[str]:
    if isinstance(scopes, str):
        raise TypeError("scopes must be a sequence of scope names, not one string")
    cleaned: list[str] = []
    for scope in scopes:
        # RFC 6749 section 3.3: scope tokens are printable ASCII without space, '"' or '\'.
        if not scope or any(c in ' "\\' or not 0x21 <= ord(c) <= 0x7E for c in scope):
            raise ValueError(f"invalid scope name {scope!r}")
        if scope not in cleaned:
            cleaned.append(scope)
    return cleaned


def create_client(
    session: Session,
    client_id: str,
    scopes: Sequence[str],
    *,
    secret: str | None = None,
    description: str | None = None,
) -> str:
    """Register a client and return its plaintext secret (shown once, never stored)."""
    if not client_id or any(not 0x20 <= ord(c) <= 0x7E for c in client_id):
        raise ValueError(f"invalid client id {client_id!r}: use printable ASCII")
    if secret is not None and not secret:
        raise ValueError("client secret must not be empty")
    scope_list = _validate_scopes(scopes)
    if session.get(OAuthClient, client_id) is not None:
        raise ValueError(f"OAuth client {client_id!r} already exists")
    plaintext = secret if secret is not None else secrets.token_urlsafe(32)
    session.add(
        OAuthClient(
            client_id=client_id,
            secret_hash=hash_secret(plaintext),
            scopes=scope_list,
            description=description,
            created_at=utcnow(),
        )
    )
    session.flush()
    return plaintext


def delete_client(session: Session, client_id: str) -> bool:
    client = session.get(OAuthClient, client_id)
    if client is None:
        return False
    session.delete(client)
    session.flush()
    return True


def list_clients(session: Session) -> list[OAuthClientInfo]:
    rows = session.scalars(select(OAuthClient).order_by(OAuthClient.client_id))
    return [
        OAuthClientInfo(
            client_id=row.client_id,
            scopes=tuple(str(s) for s in row.scopes),
            description=row.description,
            created_at=row.created_at,
        )
        for row in rows
    ]


def authenticate_client(session: Session, client_id: str, secret: str) -> frozenset[str] | None:
    """The client's scopes if the secret matches, else None."""
    client = session.get(OAuthClient, client_id)
    if client is None:
        verify_secret(secret, _DUMMY_HASH)
        return None
    if not verify_secret(secret, client.secret_hash):
        return None
    return frozenset(str(s) for s in client.scopes)
