"""Reading package content: the zip with Range, the VNFD, the manifest, artifacts."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import yaml

from descriptors.build import build_csar
from tests.api.conftest import PKGS, Nfvo


def test_package_content_and_ranges(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    http = nfvo.client()
    info = nfvo.onboard(http, sample_csars["nat"])
    url = f"{PKGS}/{info['id']}/package_content"
    original = sample_csars["nat"].read_bytes()
    whole = http.get(url)
    assert whole.status_code == 200
    assert whole.headers["Content-Type"] == "application/zip"
    assert whole.content == original
    assert whole.headers["Accept-Ranges"] == "bytes"

    first = http.get(url, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206
    assert first.content == original[:100]
    assert first.headers["Content-Range"] == f"bytes 0-99/{len(original)}"
    tail = http.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.content == original[-10:]
    rest = http.get(url, headers={"Range": f"bytes={len(original) - 5}-"})
    assert rest.content == original[-5:]

    bad = http.get(url, headers={"Range": f"bytes={len(original) + 10}-"})
    assert bad.status_code == 416
    assert bad.headers["Content-Range"] == f"bytes */{len(original)}"
    assert bad.json()["status"] == 416


def test_vnfd_manifest_and_artifacts(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    http = nfvo.client()
    info = nfvo.onboard(http, sample_csars["nat"])
    pkg = f"{PKGS}/{info['id']}"
    with zipfile.ZipFile(sample_csars["nat"]) as csar:
        members = set(csar.namelist())
        changelog = csar.read("ChangeLog.txt")

    vnfd = http.get(f"{pkg}/vnfd", headers={"Accept": "application/zip"})
    assert vnfd.status_code == 200
    assert vnfd.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(vnfd.content)) as archive:
        names = set(archive.namelist())
    assert names <= members
    assert any(name.startswith("Definitions/") for name in names)
    assert not any(name.endswith(".mf") for name in names)

    text_only = http.get(f"{pkg}/vnfd", headers={"Accept": "text/plain"})
    if len([n for n in names if n.startswith("Definitions/")]) > 1:
        assert text_only.status_code == 406
    else:
        assert text_only.status_code == 200

    manifest = http.get(f"{pkg}/manifest", headers={"Accept": "text/plain"})
    assert manifest.status_code == 200
    assert "vnf_provider_id" in manifest.text
    assert "Source: ChangeLog.txt" in manifest.text

    artifact = http.get(f"{pkg}/artifacts/ChangeLog.txt")
    assert artifact.status_code == 200
    assert artifact.content == changelog
    part = http.get(f"{pkg}/artifacts/ChangeLog.txt", headers={"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.content == changelog[:4]
    assert http.get(f"{pkg}/artifacts/nope.txt").status_code == 404
    assert http.get(f"{pkg}/artifacts/../../../etc/passwd").status_code == 404
    # The manifest and TOSCA.meta are package metadata, not artifacts.
    assert http.get(f"{pkg}/artifacts/TOSCA-Metadata/TOSCA.meta").status_code == 404

    everything = http.get(f"{pkg}/artifacts")
    assert everything.status_code == 200
    with zipfile.ZipFile(io.BytesIO(everything.content)) as archive:
        assert "ChangeLog.txt" in archive.namelist()


def _single_file_vpn(tree: Path) -> None:
    """Fold the VPN package's type files into its VNFD, leaving one definitions file."""
    definitions = tree / "Definitions"
    vnfd_path = definitions / "vpn_vnfd.yaml"
    vnfd = yaml.safe_load(vnfd_path.read_text())
    for name in ("nfv_mano_types.yaml", "vpn_types.yaml"):
        types = yaml.safe_load((definitions / name).read_text())
        for section in ("data_types", "node_types", "policy_types", "capability_types"):
            vnfd.setdefault(section, {}).update(types.get(section) or {})
        (definitions / name).unlink()
    vnfd["imports"] = [i for i in vnfd["imports"] if "://" in i]
    vnfd = {k: v for k, v in vnfd.items() if v != {}}
    vnfd_path.write_text(yaml.safe_dump(vnfd, sort_keys=False))


def test_one_file_vnfd_as_text(
    nfvo: Nfvo, package_tree: Callable[[str], Path], tmp_path: Path
) -> None:
    tree = package_tree("vpn")
    _single_file_vpn(tree)
    http = nfvo.client()
    info = nfvo.onboard(http, build_csar(tree, tmp_path / "vpn-one-file.csar"))
    url = f"{PKGS}/{info['id']}/vnfd"
    text = http.get(url, headers={"Accept": "text/plain"})
    assert text.status_code == 200
    assert text.headers["Content-Type"].startswith("text/plain")
    assert text.content == (tree / "Definitions" / "vpn_vnfd.yaml").read_bytes()
    # With no preference the NFVO picks text/plain for a one-file VNFD.
    assert http.get(url).headers["Content-Type"].startswith("text/plain")
    as_zip = http.get(url, headers={"Accept": "application/zip"})
    with zipfile.ZipFile(io.BytesIO(as_zip.content)) as archive:
        assert "Definitions/vpn_vnfd.yaml" in archive.namelist()
