"""OAuth 2.0 on the package API, versions and the Version header."""

from __future__ import annotations

import httpx

from tests.api.conftest import PKGS, Nfvo


def test_tokens_and_scopes(nfvo: Nfvo) -> None:
    anonymous = nfvo.client(None)
    missing = anonymous.get(PKGS)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["status"] == 401
    garbage = anonymous.get(PKGS, headers={"Authorization": "Bearer not.a.token"})
    assert garbage.status_code == 401

    reader = nfvo.client("reader")
    assert reader.get(PKGS).status_code == 200
    forbidden = reader.post(PKGS, json={})
    assert forbidden.status_code == 403
    assert forbidden.json()["status"] == 403
    stranger = nfvo.client("stranger")
    assert stranger.get(PKGS).status_code == 403

    bad_secret = httpx.post(
        f"{nfvo.url}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("admin", "wrong"),
    )
    assert bad_secret.status_code == 401
    assert bad_secret.json()["error"] == "invalid_client"


def test_api_versions_and_version_header(nfvo: Nfvo) -> None:
    anonymous = nfvo.client(None)
    for path in ("/vnfpkgm/api_versions", "/vnfpkgm/v2/api_versions"):
        resp = anonymous.get(path)
        assert resp.status_code == 200
        assert resp.json()["uriPrefix"] == "/vnfpkgm/v2"
        assert resp.json()["apiVersions"][0]["version"] == "2.4.0"
        assert resp.headers["Version"] == "2.4.0"
    http = nfvo.client()
    assert http.get(f"{PKGS}/00000000-0000-0000-0000-000000000000").headers["Version"] == "2.4.0"
    unsupported = http.get(PKGS, headers={"Version": "1.3.0"})
    assert unsupported.status_code == 406
