"""Hostile NSD uploads: refused with a useful detail, nothing kept or leaked.

The same protections as VNF packages (descriptors.zipsafe, descriptors.csar,
descriptors.safe_yaml, offline imports), reached through /nsd/v2. Each case
builds its bad upload from the real edge-gateway NSD: by adding a hostile zip
member (caught before any digest check), by breaking a source file and
rebuilding (so the digests are right and the descriptor checks must catch
it), or as a single YAML file.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from descriptors.nsd_build import build_nsd_archive
from tests.api.conftest import NSD_ENTRY, NSDS, Nfvo, NsdApi

ESCAPE_NAME = "nfvmano-nsd-zip-slip-probe.txt"


def _with_member(archive: Path, out: Path, info: zipfile.ZipInfo, data: bytes) -> Path:
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr(info, data)
    return out


def _replaced(archive: Path, out: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, data if item.filename == name else src.read(item))
    return out


def _zip_slip(archive: Path, out: Path) -> Path:
    return _with_member(archive, out, zipfile.ZipInfo(f"../../../../tmp/{ESCAPE_NAME}"), b"x")


def _absolute(archive: Path, out: Path) -> Path:
    return _with_member(archive, out, zipfile.ZipInfo(f"/tmp/{ESCAPE_NAME}"), b"x")


def _symlink(archive: Path, out: Path) -> Path:
    info = zipfile.ZipInfo("Files/passwd")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _with_member(archive, out, info, b"/etc/passwd")


def _bomb(archive: Path, out: Path) -> Path:
    info = zipfile.ZipInfo("Files/zeros.bin")
    info.compress_type = zipfile.ZIP_DEFLATED
    # 64 MiB of zeros deflate to ~64 KiB: a ratio far above the 200:1 limit.
    return _with_member(archive, out, info, bytes(64 << 20))


def _unlisted(archive: Path, out: Path) -> Path:
    return _with_member(archive, out, zipfile.ZipInfo("Files/extra.txt"), b"not in the manifest")


def _tampered(archive: Path, out: Path) -> Path:
    return _replaced(archive, out, "ChangeLog.txt", b"changed after signing\n")


def _vnf_package(_: Path, out: Path, nat_csar: Path) -> Path:
    out.write_bytes(nat_csar.read_bytes())
    return out


def _yaml_bomb(tree: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    path = tree / NSD_ENTRY
    path.write_text(
        path.read_text() + "\nbomb_holder:\n" + "\n".join("  " + line for line in lines) + "\n"
    )


def _non_utf8(tree: Path) -> None:
    path = tree / NSD_ENTRY
    path.write_bytes(path.read_bytes().replace(b"description:", b"description: \xff\xfe", 1))


def _remote_import(tree: Path) -> None:
    path = tree / NSD_ENTRY
    path.write_text(
        path.read_text().replace(
            "imports:\n", "imports:\n- https://example.invalid/evil_nsd_types.yaml\n", 1
        )
    )


def _escaping_import(tree: Path) -> None:
    path = tree / NSD_ENTRY
    path.write_text(path.read_text().replace("imports:\n", "imports:\n- ../../../etc/passwd\n", 1))


def _unknown_node_type(tree: Path) -> None:
    path = tree / NSD_ENTRY
    path.write_text(path.read_text().replace("type: tosca.nodes.nfv.Sap", "type: no.such.Sap", 1))


def _foreign_manifest(tree: Path) -> None:
    manifest = tree / "edge_gateway.mf"
    manifest.write_text(
        "metadata:\nnsd_designer: someone else\nnsd_invariant_id: "
        "862c982e-5908-48fc-b864-36ef31dd174a\nnsd_name: edge-gateway\n"
        "nsd_release_date_time: 2025-06-01T00:00:00+00:00\nnsd_file_structure_version: 0.1.0\n"
    )


ZIP_CASES: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "zip-slip": (_zip_slip, ".."),
    "absolute-path": (_absolute, "absolute"),
    "symlink": (_symlink, "symbolic link"),
    "zip-bomb": (_bomb, "ratio"),
    "unlisted-file": (_unlisted, "not listed in the manifest"),
    "digest-mismatch": (_tampered, "ChangeLog.txt"),
}
TREE_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "yaml-alias-bomb": (_yaml_bomb, "alias"),
    "non-utf8": (_non_utf8, "UTF-8"),
    "remote-import": (_remote_import, "evil_nsd_types.yaml"),
    "escaping-import": (_escaping_import, "outside the package"),
    "unknown-node-type": (_unknown_node_type, "no.such.Sap"),
    "manifest-mismatch": (_foreign_manifest, "nsd_designer 'someone else'"),
}


def _check_refused(nfvo: Nfvo, nsd_api: NsdApi, content: bytes, expected: str, media: str) -> None:
    info = nsd_api.refused(content, media)
    failure = info["onboardingFailureDetails"]
    assert failure["status"] == 422, failure
    assert expected.lower() in failure["detail"].lower(), failure["detail"]
    assert not (nfvo.settings.nsd_content_dir / info["id"]).exists()
    assert not any((nfvo.settings.nsd_content_dir / ".staging").iterdir())
    assert not Path("/tmp", ESCAPE_NAME).exists()
    assert nsd_api.http.get(f"{NSDS}/{info['id']}/nsd_content").status_code == 409


@pytest.mark.parametrize("case", sorted(ZIP_CASES))
def test_hostile_archives(
    nfvo: Nfvo, nsd_api: NsdApi, nsd_archives: dict[str, Path], tmp_path: Path, case: str
) -> None:
    make, expected = ZIP_CASES[case]
    bad = make(nsd_archives["edge-gateway"], tmp_path / f"{case}.zip")
    _check_refused(nfvo, nsd_api, bad.read_bytes(), expected, "application/zip")


@pytest.mark.parametrize("case", sorted(TREE_CASES))
def test_hostile_descriptors(
    nfvo: Nfvo,
    nsd_api: NsdApi,
    nsd_tree: Callable[[str], Path],
    tmp_path: Path,
    case: str,
) -> None:
    change, expected = TREE_CASES[case]
    tree = nsd_tree("edge-gateway")
    change(tree)
    archive = build_nsd_archive(tree, tmp_path / f"{case}.zip")
    _check_refused(nfvo, nsd_api, archive.read_bytes(), expected, "application/zip")


def test_other_content_refused(
    nfvo: Nfvo,
    nsd_api: NsdApi,
    nsd_tree: Callable[[str], Path],
    sample_csars: dict[str, Path],
) -> None:
    # A VNF package is not an NSD archive.
    nat = sample_csars["nat"].read_bytes()
    expected = "describes a VNF package, not an NSD archive"
    _check_refused(nfvo, nsd_api, nat, expected, "application/zip")
    _check_refused(nfvo, nsd_api, b"this is not a zip archive", "zip", "application/zip")
    # A single YAML file may import nothing but the ETSI type files.
    entry = (nsd_tree("edge-gateway") / NSD_ENTRY).read_bytes()
    _check_refused(nfvo, nsd_api, entry, "no file 'nfv_mano_nsd_types.yaml'", "text/plain")
    bomb_tree = nsd_tree("edge-gateway")
    _yaml_bomb(bomb_tree)
    _check_refused(nfvo, nsd_api, (bomb_tree / NSD_ENTRY).read_bytes(), "alias", "text/plain")
    _check_refused(nfvo, nsd_api, b"- a YAML list, not a template\n", "mapping", "text/plain")
