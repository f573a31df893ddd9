"""require_scopes: bearer token checks on API routes (RFC 6750 challenges)."""

from __future__ import annotations

import time

import jwt
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from sol013.oauth2 import TokenClaims, TokenIssuer, require_scopes, scopes_for
from sol013.problem import install_problem_handlers

KEY = b"s" * 32
ISSUER = TokenIssuer(KEY)


def _app(*, auth_enabled: bool = True) -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.token_issuer = ISSUER
    app.state.auth_enabled = auth_enabled

    @app.get("/vnfpkgm/v2/vnf_packages")
    async def read(
        claims: TokenClaims = Depends(require_scopes(*scopes_for("vnfpkgm", "v2", write=False))),
    ) -> dict[str, str]:
        return {"subject": claims.subject}

    @app.post("/vnfpkgm/v2/vnf_packages")
    async def write(
        claims: TokenClaims = Depends(require_scopes(*scopes_for("vnfpkgm", "v2", write=True))),
    ) -> dict[str, str]:
        return {"subject": claims.subject}

    return TestClient(app)


def _bearer(*scopes: str) -> dict[str, str]:
    token, _ = ISSUER.issue("ci-bot", scopes)
    return {"Authorization": f"Bearer {token}"}


def test_scopes_for_convention() -> None:
    assert scopes_for("vnfpkgm", "v2", write=True) == ("vnfpkgm:v2:all",)
    assert scopes_for("nslcm", "v2", write=False) == ("nslcm:v2:all", "nslcm:v2:readonly")


def test_missing_token_is_401_with_plain_challenge() -> None:
    resp = _app().get("/vnfpkgm/v2/vnf_packages")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == 'Bearer realm="nfv-mano"'
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["status"] == 401


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer ", "Bearer a.b.c"])
def test_bad_token_is_401_invalid_token(header: str) -> None:
    resp = _app().get("/vnfpkgm/v2/vnf_packages", headers={"Authorization": header})
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]


def test_basic_credentials_instead_of_token_is_401() -> None:
    resp = _app().get("/vnfpkgm/v2/vnf_packages", headers={"Authorization": "Basic eDp5"})
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == 'Bearer realm="nfv-mano"'


def test_expired_token_is_401_invalid_token() -> None:
    now = int(time.time())
    claims = {"iss": "nfv-mano", "sub": "x", "iat": now - 100, "exp": now - 60, "jti": "j"}
    token = jwt.encode({**claims, "scope": "vnfpkgm:v2:all"}, KEY, algorithm="HS256")
    resp = _app().get("/vnfpkgm/v2/vnf_packages", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    challenge = resp.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge and "expired" in challenge


def test_wrong_scope_is_403_insufficient_scope() -> None:
    client = _app()
    resp = client.get("/vnfpkgm/v2/vnf_packages", headers=_bearer("nsd:v2:all"))
    assert resp.status_code == 403
    challenge = resp.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="vnfpkgm:v2:all vnfpkgm:v2:readonly"' in challenge
    resp = client.post("/vnfpkgm/v2/vnf_packages", headers=_bearer("vnfpkgm:v2:readonly"))
    assert resp.status_code == 403
    assert 'scope="vnfpkgm:v2:all"' in resp.headers["www-authenticate"]


def test_right_scope_is_admitted() -> None:
    client = _app()
    resp = client.get("/vnfpkgm/v2/vnf_packages", headers=_bearer("vnfpkgm:v2:readonly"))
    assert resp.status_code == 200 and resp.json() == {"subject": "ci-bot"}
    resp = client.post("/vnfpkgm/v2/vnf_packages", headers=_bearer("vnfpkgm:v2:all"))
    assert resp.status_code == 200


def test_auth_disabled_admits_anonymous() -> None:
    resp = _app(auth_enabled=False).post("/vnfpkgm/v2/vnf_packages")
    assert resp.status_code == 200 and resp.json() == {"subject": "anonymous"}


def test_bearer_scheme_is_documented_in_openapi() -> None:
    schema = _app().get("/openapi.json").json()
    assert "OAuth2Bearer" in schema["components"]["securitySchemes"]
