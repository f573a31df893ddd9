"""OAuth 2.0 client registry, token issuer and the client credentials token endpoint."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_plus

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from sol013.oauth2 import (
    TokenError,
    TokenExpiredError,
    TokenIssuer,
    authenticate_client,
    create_client,
    delete_client,
    list_clients,
    token_router,
)
from store.base import Base, make_engine, make_session_factory, transaction

KEY = b"k" * 32
SCOPES = ["vnfpkgm:v2:all", "vnfpkgm:v2:readonly", "nsd:v2:readonly"]


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'oauth.db'}")
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def secret(factory: sessionmaker[Session]) -> str:
    with transaction(factory) as session:
        return create_client(session, "ci-bot", SCOPES)


@pytest.fixture
def client(factory: sessionmaker[Session], secret: str) -> TestClient:
    app = FastAPI()
    app.state.session_factory = factory
    app.state.token_issuer = TokenIssuer(KEY)
    app.include_router(
        token_router(lambda: app.state.session_factory, lambda: app.state.token_issuer)
    )
    return TestClient(app)


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


# --- client registry ------------------------------------------------------------


def test_clients_are_stored_hashed_and_authenticate(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        generated = create_client(session, "a", ["x:v1:all"])
        create_client(session, "b", ["y:v1:readonly"], secret="given-secret", description="B")
    with transaction(factory) as session:
        assert authenticate_client(session, "a", generated) == frozenset({"x:v1:all"})
        assert authenticate_client(session, "b", "given-secret") == frozenset({"y:v1:readonly"})
        assert authenticate_client(session, "b", "wrong") is None
        assert authenticate_client(session, "nobody", "given-secret") is None
        listed = list_clients(session)
    assert [c.client_id for c in listed] == ["a", "b"]
    assert listed[1].description == "B" and listed[1].scopes == ("y:v1:readonly",)
    assert len(generated) >= 32
    with factory() as session:
        from sol013.oauth2 import OAuthClient

        stored = session.get(OAuthClient, "b")
        assert stored is not None and "given-secret" not in stored.secret_hash
        assert stored.secret_hash.startswith("scrypt$")


def test_duplicate_and_invalid_clients_are_refused(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        create_client(session, "a", ["x:v1:all"])
    with transaction(factory) as session, pytest.raises(ValueError, match="already exists"):
        create_client(session, "a", ["x:v1:all"])
    with transaction(factory) as session, pytest.raises(ValueError, match="invalid scope"):
        create_client(session, "c", ["has space"])
    with transaction(factory) as session, pytest.raises(ValueError, match="client id"):
        create_client(session, "", ["x:v1:all"])


def test_delete_client(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        secret = create_client(session, "a", ["x:v1:all"])
    with transaction(factory) as session:
        assert delete_client(session, "a") is True
        assert delete_client(session, "a") is False
    with transaction(factory) as session:
        assert authenticate_client(session, "a", secret) is None


# --- tokens ---------------------------------------------------------------------


def test_issued_token_verifies_with_claims() -> None:
    issuer = TokenIssuer(KEY, ttl_seconds=60)
    token, expires_in = issuer.issue("ci-bot", ["b", "a"])
    claims = issuer.verify(token)
    assert expires_in == 60
    assert claims.subject == "ci-bot" and claims.scopes == frozenset({"a", "b"})
    assert 50 <= claims.expires_at.timestamp() - time.time() <= 61
    decoded = jwt.decode(token, KEY, algorithms=["HS256"], issuer="nfv-mano")
    assert {"exp", "iat", "iss", "jti", "sub"} <= decoded.keys()


def test_token_verification_failures_are_typed() -> None:
    issuer = TokenIssuer(KEY)
    token, _ = issuer.issue("ci-bot", ["a"])
    with pytest.raises(TokenError):
        TokenIssuer(b"o" * 32).verify(token)  # other key
    with pytest.raises(TokenError):
        TokenIssuer(KEY, issuer="someone-else").verify(token)
    with pytest.raises(TokenError):
        issuer.verify("garbage")
    unsigned = jwt.encode({"sub": "x"}, "", algorithm="none")
    with pytest.raises(TokenError):
        issuer.verify(unsigned)
    now = int(time.time())
    expired = jwt.encode(
        {"iss": "nfv-mano", "sub": "x", "iat": now - 100, "exp": now - 50, "jti": "j"},
        KEY,
        algorithm="HS256",
    )
    with pytest.raises(TokenExpiredError):
        issuer.verify(expired)


def test_short_signing_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenIssuer(b"short")


# --- token endpoint -------------------------------------------------------------


def test_token_with_basic_auth_gets_all_scopes(client: TestClient, secret: str) -> None:
    resp = client.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=_basic("ci-bot", secret)
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"].split() == sorted(SCOPES)
    assert TokenIssuer(KEY).verify(body["access_token"]).scopes == frozenset(SCOPES)


def test_token_with_form_credentials_and_narrowed_scope(client: TestClient, secret: str) -> None:
    resp = client.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "ci-bot",
            "client_secret": secret,
            "scope": "vnfpkgm:v2:readonly",
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["scope"] == "vnfpkgm:v2:readonly"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + base64.b64encode(b"ci-bot:wrong").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"ghost:whatever").decode()},
        {"Authorization": "Basic !!notbase64"},
    ],
)
def test_token_invalid_client(client: TestClient, headers: dict[str, str]) -> None:
    resp = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"
    assert resp.headers["www-authenticate"].startswith("Basic")
    assert resp.headers["cache-control"] == "no-store"


def test_token_invalid_scope(client: TestClient, secret: str) -> None:
    resp = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "vnfpkgm:v2:readonly nslcm:v2:all"},
        headers=_basic("ci-bot", secret),
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_scope"
    assert "nslcm:v2:all" in resp.json()["error_description"]


def test_token_unsupported_grant_type(client: TestClient, secret: str) -> None:
    resp = client.post(
        "/oauth2/token",
        data={"grant_type": "password", "username": "u", "password": "p"},
        headers=_basic("ci-bot", secret),
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"data": {"scope": "vnfpkgm:v2:all"}}, "grant_type is required"),
        ({"json": {"grant_type": "client_credentials"}}, "x-www-form-urlencoded"),
        ({"content": "grant_type=client_credentials&grant_type=client_credentials"}, "repeated"),
    ],
)
def test_token_invalid_request(
    client: TestClient, secret: str, kwargs: dict[str, object], fragment: str
) -> None:
    headers = _basic("ci-bot", secret)
    if "content" in kwargs:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    resp = client.post("/oauth2/token", headers=headers, **kwargs)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request"
    assert fragment in resp.json()["error_description"]


def test_token_refuses_two_authentication_methods(client: TestClient, secret: str) -> None:
    resp = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "ci-bot", "client_secret": secret},
        headers=_basic("ci-bot", secret),
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request"
