"""nfvctl against a running NFVO: build, validate, onboard, list, show, enable/disable, delete."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from descriptors.lab_pki import make_pki
from nfvo.cli.main import app
from tests.api.conftest import SAMPLES, Nfvo

runner = CliRunner()


@pytest.fixture
def cli_env(nfvo: Nfvo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Nfvo:
    monkeypatch.setenv("NFVCTL_CONFIG", str(tmp_path / "nfvctl.json"))
    monkeypatch.setenv("NFVCTL_URL", nfvo.url)
    monkeypatch.setenv("NFVCTL_CLIENT_ID", "admin")
    monkeypatch.setenv("NFVCTL_CLIENT_SECRET", nfvo.secrets["admin"])
    return nfvo


def nfvctl(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_build_validate_onboard_manage(cli_env: Nfvo, tmp_path: Path) -> None:
    csar = tmp_path / "slb.csar"
    code, out = nfvctl("package", "build", str(SAMPLES / "slb"), "-o", str(csar))
    assert code == 0, out
    with zipfile.ZipFile(csar) as archive:
        names = archive.namelist()
        manifest = archive.read("slb.mf").decode()
    assert "TOSCA-Metadata/TOSCA.meta" in names
    assert "Source: Definitions/slb_vnfd_top.yaml" in manifest
    assert "Algorithm: SHA-256" in manifest

    code, out = nfvctl("package", "validate", str(csar))
    assert code == 0 and "valid: " in out and "SLB" in out, out

    code, out = nfvctl("package", "onboard", str(csar))
    assert code == 0, out
    match = re.search(r"([0-9a-f-]{36}) ONBOARDED", out)
    assert match, out
    pkg_id = match.group(1)

    code, out = nfvctl("package", "list", "--json")
    listed = json.loads(out)
    assert [(p["id"], p["operationalState"]) for p in listed] == [(pkg_id, "ENABLED")]
    code, out = nfvctl("package", "show", pkg_id)
    assert json.loads(out)["vnfProductName"] == "SLB"

    code, out = nfvctl("package", "delete", pkg_id)
    assert code == 1
    assert out.count("\n") == 1 and "409" in out and "DISABLED" in out
    assert nfvctl("package", "disable", pkg_id)[0] == 0
    assert nfvctl("package", "delete", pkg_id)[0] == 0
    code, out = nfvctl("package", "show", pkg_id)
    assert code == 1 and "404" in out


def test_errors_are_one_line(
    cli_env: Nfvo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_zip = tmp_path / "bad.csar"
    not_zip.write_bytes(b"hello")
    code, out = nfvctl("package", "validate", str(not_zip))
    assert code == 1 and out.startswith("error:") and out.count("\n") == 1, out
    code, out = nfvctl("package", "build", str(tmp_path / "missing"))
    assert code == 1 and out.startswith("error:") and out.count("\n") == 1, out
    code, out = nfvctl("package", "onboard", str(not_zip))
    assert code == 1 and "onboarding failed" in out and out.count("\n") == 1, out
    monkeypatch.setenv("NFVCTL_CLIENT_SECRET", "wrong")
    code, out = nfvctl("package", "list")
    assert code == 1 and "invalid_client" in out, out


def test_signed_build_and_validate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other", label="other")
    csar = tmp_path / "nat-signed.csar"
    code, out = nfvctl(
        "package", "build", str(SAMPLES / "nat"), "-o", str(csar),
        "--sign-cert", str(pki.signer_cert), "--sign-key", str(pki.signer_key),
    )  # fmt: skip
    assert code == 0 and "(signed)" in out, out
    code, out = nfvctl("package", "validate", str(csar), "--trust-anchor", str(pki.ca_cert))
    assert code == 0 and "signature verified" in out, out
    code, out = nfvctl("package", "validate", str(csar), "--trust-anchor", str(other.ca_cert))
    assert code == 1 and out.startswith("error:") and "signature" in out.lower(), out
    code, out = nfvctl("package", "build", str(SAMPLES / "nat"), "--sign-cert", "x.pem")
    assert code == 1 and "go together" in out
