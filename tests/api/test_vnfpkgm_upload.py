"""Uploading package content: direct, multipart, from URI, and every refusal."""

from __future__ import annotations

import base64
import http.server
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from descriptors.build import build_csar
from descriptors.lab_pki import make_pki
from tests.api.conftest import PKGS, SAMPLES, Nfvo, NfvoFactory
from tests.support.http_server import serving


def _new(http) -> str:
    return str(http.post(PKGS, json={}).json()["id"])


def test_multipart_upload(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    http = nfvo.client()
    pkg_id = _new(http)
    resp = http.put(
        f"{PKGS}/{pkg_id}/package_content",
        files={"file": ("cen.csar", sample_csars["cen"].read_bytes(), "application/zip")},
    )
    assert resp.status_code == 202, resp.text
    assert nfvo.wait_state(http, pkg_id, ("ONBOARDED",))["vnfProductName"] == "CEN"


def test_upload_refusals(nfvo_factory: NfvoFactory, sample_csars: dict[str, Path]) -> None:
    nfvo = nfvo_factory(max_upload_bytes=4096)
    http = nfvo.client()
    pkg_id = _new(http)
    url = f"{PKGS}/{pkg_id}/package_content"
    media = http.put(url, content=b"PK", headers={"Content-Type": "text/plain"})
    assert media.status_code == 415
    assert "application/zip" in media.json()["detail"]
    big = http.put(
        url, content=sample_csars["nat"].read_bytes(), headers={"Content-Type": "application/zip"}
    )
    assert big.status_code == 413
    # A chunked upload without Content-Length is cut off while streaming.
    chunks = iter([b"x" * 3000, b"x" * 3000])
    streamed = http.put(url, content=chunks, headers={"Content-Type": "application/zip"})
    assert streamed.status_code == 413
    info = nfvo.wait_state(http, pkg_id, ("CREATED",))
    assert info["onboardingFailureDetails"]["status"] == 413
    assert not any(nfvo.settings.content_dir.joinpath(".staging").iterdir())


def test_upload_only_in_created(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    http = nfvo.client()
    info = nfvo.onboard(http, sample_csars["vpn"])
    again = http.put(
        f"{PKGS}/{info['id']}/package_content",
        content=sample_csars["vpn"].read_bytes(),
        headers={"Content-Type": "application/zip"},
    )
    assert again.status_code == 409
    assert "ONBOARDED" in again.json()["detail"]


def test_invalid_package_returns_to_created_and_can_be_fixed(
    nfvo: Nfvo, sample_csars: dict[str, Path]
) -> None:
    http = nfvo.client()
    pkg_id, failure = nfvo.refused(http, b"not a zip at all")
    assert failure["status"] == 422
    assert "zip" in failure["detail"].lower()
    # Nothing was kept, and the same resource accepts a good package afterwards.
    assert not nfvo.settings.content_dir.joinpath(pkg_id).exists()
    nfvo.upload(http, sample_csars["nat"].read_bytes(), pkg_id)
    assert nfvo.wait_state(http, pkg_id, ("ONBOARDED",))["onboardingState"] == "ONBOARDED"
    assert (
        "onboardingFailureDetails"
        not in http.get(f"{PKGS}/{pkg_id}", params={"all_fields": ""}).json()
    )


def test_upload_from_file_uri(nfvo: Nfvo, sample_csars: dict[str, Path], tmp_path: Path) -> None:
    http = nfvo.client()
    allowed = nfvo.settings.upload_file_roots[0] / "slb.csar"
    allowed.write_bytes(sample_csars["slb"].read_bytes())
    pkg_id = _new(http)
    resp = http.post(
        f"{PKGS}/{pkg_id}/package_content/upload_from_uri",
        json={"addressInformation": allowed.as_uri()},
    )
    assert resp.status_code == 202, resp.text
    assert nfvo.wait_state(http, pkg_id, ("ONBOARDED",))["vnfProductName"] == "SLB"

    outside = _new(http)
    refused = http.post(
        f"{PKGS}/{outside}/package_content/upload_from_uri",
        json={"addressInformation": sample_csars["slb"].as_uri()},
    )
    assert refused.status_code == 400
    assert "outside" in refused.json()["detail"]
    scheme = http.post(
        f"{PKGS}/{outside}/package_content/upload_from_uri",
        json={"addressInformation": "ftp://example.invalid/x.zip"},
    )
    assert scheme.status_code == 400
    basic = http.post(
        f"{PKGS}/{outside}/package_content/upload_from_uri",
        json={"addressInformation": "http://127.0.0.1:9/x.zip", "authType": "BASIC"},
    )
    assert basic.status_code == 400
    assert "username" in basic.json()["detail"]


@contextmanager
def _package_server(files: dict[str, bytes], user: str, password: str) -> Iterator[str]:
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.end_headers()
                return
            body = files.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url


def test_upload_from_http_uri_with_basic_auth(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    http = nfvo.client()
    with _package_server({"/pkgs/cen.csar": sample_csars["cen"].read_bytes()}, "u", "p") as base:
        good = _new(http)
        http.post(
            f"{PKGS}/{good}/package_content/upload_from_uri",
            json={
                "addressInformation": f"{base}/pkgs/cen.csar",
                "authType": "BASIC",
                "username": "u",
                "password": "p",
            },
        )
        assert nfvo.wait_state(http, good, ("ONBOARDED",))["vnfProductName"] == "CEN"
        missing = _new(http)
        http.post(
            f"{PKGS}/{missing}/package_content/upload_from_uri",
            json={
                "addressInformation": f"{base}/pkgs/none.csar",
                "authType": "BASIC",
                "username": "u",
                "password": "p",
            },
        )
        info = nfvo.wait_state(http, missing, ("CREATED",))
        assert "404" in info["onboardingFailureDetails"]["detail"]


def _rewrite_zip(csar: Path, out: Path, changes: dict[str, Callable[[bytes], bytes]]) -> Path:
    """Copy a CSAR, changing some members after the manifest recorded their digests."""
    with zipfile.ZipFile(csar) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            change = changes.get(item.filename)
            dst.writestr(item, change(data) if change else data)
    return out


META_MISSING_ENTRY = (
    b"TOSCA-Meta-File-Version: 1.0\nCSAR-Version: 1.1\nCreated-By: t\n"
    b"Entry-Definitions: Definitions/missing.yaml\n"
)


@pytest.mark.parametrize(
    ("member", "change", "expected"),
    [
        ("ChangeLog.txt", lambda data: data + b"tampered\n", "ChangeLog.txt"),
        ("TOSCA-Metadata/TOSCA.meta", lambda data: META_MISSING_ENTRY, "missing.yaml"),
    ],
    ids=["digest-mismatch", "missing-entry-definitions"],
)
def test_broken_packages_report_where(
    nfvo: Nfvo,
    sample_csars: dict[str, Path],
    tmp_path: Path,
    member: str,
    change: Callable[[bytes], bytes],
    expected: str,
) -> None:
    csar = _rewrite_zip(sample_csars["nat"], tmp_path / "broken.csar", {member: change})
    _, failure = nfvo.refused(nfvo.client(), csar.read_bytes())
    assert expected in failure["detail"]
    assert failure["status"] == 422


def test_upload_from_uri_with_oauth2(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    """Fetch from an OAuth 2.0 protected server: this NFVO's own package_content."""
    http = nfvo.client()
    source = nfvo.onboard(http, sample_csars["nat"])
    address = f"{nfvo.url}{PKGS}/{source['id']}/package_content"

    def fetch(secret: str) -> dict[str, object]:
        pkg_id = _new(http)
        resp = http.post(
            f"{PKGS}/{pkg_id}/package_content/upload_from_uri",
            json={
                "addressInformation": address,
                "authType": "OAUTH2_CLIENT_CREDENTIALS",
                "paramsOauth2ClientCredentials": {
                    "clientId": "reader",
                    "clientPassword": secret,
                    "tokenEndpoint": f"{nfvo.url}/oauth2/token",
                },
            },
        )
        assert resp.status_code == 202
        return nfvo.wait_state(http, pkg_id, ("CREATED",))["onboardingFailureDetails"]  # type: ignore[no-any-return]

    # The download worked: what stops onboarding is the vnfdId, already onboarded.
    fetched = fetch(nfvo.secrets["reader"])
    assert fetched["status"] == 409 and source["vnfdId"] in str(fetched["detail"])
    refused = fetch("wrong-secret")
    assert "token endpoint" in str(refused["detail"]) and "401" in str(refused["detail"])


def test_signed_packages_with_a_trust_anchor(nfvo_factory: NfvoFactory, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    rogue = make_pki(tmp_path / "rogue", label="rogue")
    nfvo = nfvo_factory(trust_anchor=pki.ca_cert)
    http = nfvo.client()
    signed = build_csar(
        SAMPLES / "cen", tmp_path / "cen.csar", sign_with=(pki.signer_cert, pki.signer_key)
    )
    info = nfvo.onboard(http, signed)
    assert info["packageSecurityOption"] == "OPTION_1"
    assert info["signingCertificate"]

    forged = build_csar(
        SAMPLES / "slb", tmp_path / "slb.csar", sign_with=(rogue.signer_cert, rogue.signer_key)
    )
    _, failure = nfvo.refused(http, forged.read_bytes())
    assert failure["status"] == 422 and "signature" in failure["detail"].lower()


def test_unsigned_packages_when_signatures_are_required(
    nfvo_factory: NfvoFactory, tmp_path: Path
) -> None:
    lenient = nfvo_factory()
    unsigned = build_csar(SAMPLES / "vpn", tmp_path / "vpn.csar")
    info = lenient.onboard(lenient.client(), unsigned)
    # No security option can be claimed for an unsigned package (a documented deviation).
    assert "packageSecurityOption" not in info

    strict = nfvo_factory(
        require_signed_packages=True,
        data_dir=tmp_path / "strict",
        database_url=f"sqlite:///{tmp_path / 'strict.db'}",
    )
    _, failure = strict.refused(strict.client(), unsigned.read_bytes())
    assert "signature" in failure["detail"].lower()
