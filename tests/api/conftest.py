"""A real NFVO served over HTTP on loopback, on SQLite and on PostgreSQL."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from descriptors.build import build_csar
from descriptors.lab_pki import Pki, make_pki
from descriptors.nsd_build import build_nsd_archive
from nfvo.app import create_app
from nfvo.settings import Settings
from sol013.oauth2 import create_client
from store.base import transaction
from tests.support.live_server import serve

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "descriptors" / "packages"
SAMPLE_NAMES = ("nat", "slb", "cen", "vpn")
VERSION = "2.4.0"
PKGS = "/vnfpkgm/v2/vnf_packages"
CLIENTS = {
    "admin": ["vnfpkgm:v2:all"],
    "reader": ["vnfpkgm:v2:readonly"],
    "stranger": ["vnflcm:v2:all"],
    "granter": ["grant:v1:all"],
    "lcm": ["vnflcm:v2:all"],
    "lcm-reader": ["vnflcm:v2:readonly"],
    "vims": ["vims:v1:all"],
    "vims-reader": ["vims:v1:readonly"],
    "nsd": ["nsd:v2:all"],
    "nsd-reader": ["nsd:v2:readonly"],
    "nslcm": ["nslcm:v2:all"],
    "nslcm-reader": ["nslcm:v2:readonly"],
    "ns-operator": ["nsd:v2:all", "nslcm:v2:all"],
}


@dataclass
class Nfvo:
    """A running service and clients for it."""

    url: str
    app: FastAPI
    settings: Settings
    secrets: dict[str, str] = field(default_factory=dict)
    clients: list[httpx.Client] = field(default_factory=list)

    def token(self, client_id: str) -> str:
        resp = httpx.post(
            f"{self.url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, self.secrets[client_id]),
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["access_token"])

    def client(self, client_id: str | None = "admin", *, version: str = VERSION) -> httpx.Client:
        headers = {"Version": version}
        if client_id is not None:
            headers["Authorization"] = f"Bearer {self.token(client_id)}"
        http = httpx.Client(base_url=self.url, headers=headers, timeout=60)
        self.clients.append(http)
        return http

    def wait_state(
        self, http: httpx.Client, pkg_id: str, states: tuple[str, ...], timeout: float = 90
    ) -> dict[str, Any]:
        """Poll until onboardingState is one of `states` and no longer in flux."""
        deadline = time.monotonic() + timeout
        while True:
            info: dict[str, Any] = http.get(f"{PKGS}/{pkg_id}", params={"all_fields": ""}).json()
            settled = info["onboardingState"] in states and (
                info["onboardingState"] != "CREATED" or "onboardingFailureDetails" in info
            )
            if settled:
                return info
            assert time.monotonic() < deadline, f"package stuck in {info['onboardingState']}"
            time.sleep(0.05)

    def upload(self, http: httpx.Client, content: bytes, pkg_id: str | None = None) -> str:
        """PUT a CSAR to a package resource (a new one unless given); returns its id."""
        pkg_id = pkg_id or http.post(PKGS, json={}).json()["id"]
        resp = http.put(
            f"{PKGS}/{pkg_id}/package_content",
            content=content,
            headers={"Content-Type": "application/zip"},
        )
        assert resp.status_code == 202, resp.text
        return str(pkg_id)

    def onboard(self, http: httpx.Client, csar: Path) -> dict[str, Any]:
        info = self.wait_state(http, self.upload(http, csar.read_bytes()), ("ONBOARDED", "CREATED"))
        assert info["onboardingState"] == "ONBOARDED", info.get("onboardingFailureDetails")
        return info

    def refused(self, http: httpx.Client, content: bytes) -> tuple[str, dict[str, Any]]:
        """Upload a package that must fail onboarding: its id and onboardingFailureDetails."""
        pkg_id = self.upload(http, content)
        info = self.wait_state(http, pkg_id, ("CREATED",))
        return pkg_id, info["onboardingFailureDetails"]


NfvoFactory = Callable[..., Nfvo]


@pytest.fixture
def nfvo_factory(database_url: str, tmp_path: Path, package_pki: Pki) -> Iterator[NfvoFactory]:
    """Start services with custom settings; all are stopped at the end of the test."""
    stack: list[Any] = []
    # Per database: restarts on the same database reuse its clients.
    secrets_by_db: dict[str, dict[str, str]] = {}

    def start(**overrides: Any) -> Nfvo:
        uploads = tmp_path / "uploads"
        uploads.mkdir(exist_ok=True)
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "upload_file_roots": [uploads],
            "notification_base_delay": 0.05,
            "notification_poll_seconds": 0.05,
            "trust_anchor": package_pki.ca_cert,
        }
        values.update(overrides)
        settings = Settings(**values)
        app = create_app(settings)
        ctx = serve(app)
        url = ctx.__enter__()
        stack.append(ctx)
        secrets = secrets_by_db.setdefault(settings.database_url, {})
        service = Nfvo(url=url, app=app, settings=settings, secrets=secrets)
        if not secrets:
            with transaction(app.state.session_factory) as session:
                for client_id, scopes in CLIENTS.items():
                    secrets[client_id] = create_client(session, client_id, scopes)
        stack.append(service)
        return service

    try:
        yield start
    finally:
        for item in reversed(stack):
            if isinstance(item, Nfvo):
                for http in item.clients:
                    http.close()
            else:
                item.__exit__(None, None, None)


@pytest.fixture
def nfvo(nfvo_factory: NfvoFactory) -> Nfvo:
    return nfvo_factory()


@pytest.fixture(scope="session")
def package_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The CA the test NFVOs trust and the provider certificate that signs the samples."""
    return make_pki(tmp_path_factory.mktemp("pki"), "provider")


@pytest.fixture(scope="session")
def sample_csars(tmp_path_factory: pytest.TempPathFactory, package_pki: Pki) -> dict[str, Path]:
    """The four sample packages, signed (SOL004 security option 1) as a provider ships them."""
    out = tmp_path_factory.mktemp("csars")
    signer = (package_pki.signer_cert, package_pki.signer_key)
    return {
        name: build_csar(SAMPLES / name, out / f"{name}.csar", sign_with=signer)
        for name in SAMPLE_NAMES
    }


@pytest.fixture
def package_tree(tmp_path: Path) -> Callable[[str], Path]:
    """A writable copy of a sample package's source tree, to break on purpose."""

    def copy(name: str = "nat") -> Path:
        target = tmp_path / f"tree-{name}-{time.monotonic_ns()}"
        shutil.copytree(SAMPLES / name, target)
        return target

    return copy


# -- NSD management (/nsd/v2) ------------------------------------------------------------------

NSDS = "/nsd/v2/ns_descriptors"
NSD_VERSION = "2.3.0"
NSD_SAMPLES = REPO / "descriptors" / "nsds"
NSD_ENTRY = "Definitions/edge_gateway_nsd.yaml"


@dataclass
class NsdApi:
    """The /nsd/v2 API as one client sees it, with the waits asynchronous onboarding needs."""

    http: httpx.Client

    def upload(
        self, content: bytes, media: str = "application/zip", nsd_info_id: str | None = None
    ) -> str:
        """PUT NSD content to a resource (a new one unless given); returns its id."""
        nsd_info_id = nsd_info_id or self.http.post(NSDS, json={}).json()["id"]
        resp = self.http.put(
            f"{NSDS}/{nsd_info_id}/nsd_content", content=content, headers={"Content-Type": media}
        )
        assert resp.status_code == 202, resp.text
        return str(nsd_info_id)

    def wait(self, nsd_info_id: str, timeout: float = 90) -> dict[str, Any]:
        """Poll until onboarding has ended (ONBOARDED or ERROR)."""
        deadline = time.monotonic() + timeout
        while True:
            info: dict[str, Any] = self.http.get(f"{NSDS}/{nsd_info_id}").json()
            if info["nsdOnboardingState"] in ("ONBOARDED", "ERROR"):
                return info
            assert time.monotonic() < deadline, f"NSD stuck in {info['nsdOnboardingState']}"
            time.sleep(0.05)

    def onboard(self, content: bytes, media: str = "application/zip") -> dict[str, Any]:
        info = self.wait(self.upload(content, media))
        assert info["nsdOnboardingState"] == "ONBOARDED", info.get("onboardingFailureDetails")
        return info

    def refused(self, content: bytes, media: str = "application/zip") -> dict[str, Any]:
        """Upload NSD content that must fail onboarding; the NsdInfo it ends with."""
        info = self.wait(self.upload(content, media))
        assert info["nsdOnboardingState"] == "ERROR", info
        return info


@pytest.fixture
def nsd_api(nfvo: Nfvo) -> NsdApi:
    return NsdApi(nfvo.client("nsd", version=NSD_VERSION))


@pytest.fixture
def nat_package(nfvo: Nfvo, sample_csars: dict[str, Path]) -> dict[str, Any]:
    """The NAT VNF package, onboarded: the one VNF the sample NSD references."""
    return nfvo.onboard(nfvo.client(), sample_csars["nat"])


@pytest.fixture(scope="session")
def nsd_archives(tmp_path_factory: pytest.TempPathFactory, package_pki: Pki) -> dict[str, Path]:
    """The sample NSD archives, signed (SOL007 security option 1) as their designer ships them."""
    out = tmp_path_factory.mktemp("nsds")
    signer = (package_pki.signer_cert, package_pki.signer_key)
    return {
        tree.name: build_nsd_archive(tree, out / f"{tree.name}.zip", sign_with=signer)
        for tree in sorted(NSD_SAMPLES.iterdir())
        if tree.is_dir()
    }


@pytest.fixture
def nsd_tree(tmp_path: Path) -> Callable[[str], Path]:
    """A writable copy of a sample NSD's source tree, to change on purpose."""

    def copy(name: str = "edge-gateway") -> Path:
        target = tmp_path / f"nsd-{name}-{time.monotonic_ns()}"
        shutil.copytree(NSD_SAMPLES / name, target)
        return target

    return copy
