from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sol013.problem import PROBLEM_JSON, install_problem_handlers
from sol013.versioning import (
    ApiSpec,
    ApiVersion,
    ApiVersionInformation,
    api_versions_router,
    install_version_headers,
)

PKGM = ApiSpec("vnfpkgm", "v2", ("2.3.0", "2.4.0"))
NSD = ApiSpec("nsd", "v2", ("2.8.0",))


def make_app(*, problems_first: bool = True) -> FastAPI:
    app = FastAPI()
    if problems_first:
        install_problem_handlers(app)
        install_version_headers(app, [PKGM, NSD])
    else:
        install_version_headers(app, [PKGM, NSD])
        install_problem_handlers(app)
    app.include_router(api_versions_router(PKGM))
    app.include_router(api_versions_router(NSD))

    @app.get("/vnfpkgm/v2/vnf_packages")
    def packages() -> list[str]:
        return []

    @app.get("/vnfpkgm/v2/crash")
    def crash() -> None:
        raise RuntimeError("boom")

    @app.get("/health")
    def health() -> str:
        return "ok"

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app())


def test_spec_properties() -> None:
    assert PKGM.uri_prefix == "/vnfpkgm/v2"
    assert PKGM.current == "2.4.0"


@pytest.mark.parametrize("versions", [(), ("3.0.0",), ("2.0",), ("v2",)])
def test_spec_rejects_versions_of_another_major_or_malformed(versions: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        ApiSpec("vnfpkgm", "v2", versions)


def test_models_serialise_per_sol013() -> None:
    info = ApiVersionInformation(
        uriPrefix="/x/v1",
        apiVersions=[
            ApiVersion(
                version="1.0.0", isDeprecated=True, retirementDate=datetime(2030, 1, 1, tzinfo=UTC)
            )
        ],
    )
    dumped = info.model_dump(mode="json", exclude_none=True)
    assert dumped["apiVersions"][0]["retirementDate"].startswith("2030-01-01T00:00:00")


@pytest.mark.parametrize("path", ["/vnfpkgm/api_versions", "/vnfpkgm/v2/api_versions"])
def test_api_versions_endpoints(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == {
        "uriPrefix": "/vnfpkgm/v2",
        "apiVersions": [{"version": "2.3.0"}, {"version": "2.4.0"}],
    }
    assert response.headers["Version"] == "2.4.0"
    ApiVersionInformation.model_validate(response.json())


def test_api_versions_ignores_requested_version(client: TestClient) -> None:
    # The consumer calls api_versions precisely because it does not know the versions yet.
    response = client.get("/vnfpkgm/v2/api_versions", headers={"Version": "9.9.9"})
    assert response.status_code == 200


def test_every_response_under_api_carries_version(client: TestClient) -> None:
    assert client.get("/vnfpkgm/v2/vnf_packages").headers["Version"] == "2.4.0"
    assert client.get("/nsd/v2/api_versions").headers["Version"] == "2.8.0"
    not_found = client.get("/vnfpkgm/v2/nope")
    assert not_found.status_code == 404
    assert not_found.headers["Version"] == "2.4.0"
    assert "Version" not in client.get("/health").headers


@pytest.mark.parametrize("problems_first", [True, False])
def test_500_carries_version_whatever_the_install_order(problems_first: bool) -> None:
    response = TestClient(make_app(problems_first=problems_first)).get("/vnfpkgm/v2/crash")
    assert response.status_code == 500
    assert response.json()["detail"] == "internal error"
    assert response.headers["Version"] == "2.4.0"


@pytest.mark.parametrize("version", ["2.4.0", "2.3.0", " 2.4.0"])
def test_supported_version_is_accepted(client: TestClient, version: str) -> None:
    response = client.get("/vnfpkgm/v2/vnf_packages", headers={"Version": version})
    assert response.status_code == 200


def test_missing_version_header_is_accepted(client: TestClient) -> None:
    assert client.get("/vnfpkgm/v2/vnf_packages").status_code == 200


@pytest.mark.parametrize("version", ["3.0.0", "2.5.0", "1.0.0", "garbage", ""])
def test_unsupported_version_is_406_naming_supported(client: TestClient, version: str) -> None:
    response = client.get("/vnfpkgm/v2/vnf_packages", headers={"Version": version})
    assert response.status_code == 406
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["Version"] == "2.4.0"
    body = response.json()
    assert body["status"] == 406
    assert f"API version {version!r} is not supported by /vnfpkgm/v2" in body["detail"]
    assert "supported versions: 2.3.0, 2.4.0" in body["detail"]


def test_other_majors_or_apis_are_not_checked(client: TestClient) -> None:
    # /vnfpkgm/v1 is not served at all: the router answers 404, not a version error.
    response = client.get("/vnfpkgm/v1/vnf_packages", headers={"Version": "1.0.0"})
    assert response.status_code == 404
    assert client.get("/health", headers={"Version": "0.0.1"}).status_code == 200


def test_prefix_must_match_a_whole_segment(client: TestClient) -> None:
    response = client.get("/vnfpkgmx/v2/vnf_packages", headers={"Version": "9.0.0"})
    assert response.status_code == 404
    assert "Version" not in response.headers
