"""Hostile packages through the API: refused with a useful detail, nothing kept or leaked.

Each case builds its bad package itself, from the real NAT package: either
by adding a hostile zip member (caught before any digest check), or by
breaking a source file and rebuilding, so the manifest digests are right and
the descriptor checks are what must catch it.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from descriptors.build import build_csar
from tests.api.conftest import PKGS, Nfvo

ESCAPE_NAME = "nfvmano-zip-slip-probe.txt"


def _with_member(csar: Path, out: Path, info: zipfile.ZipInfo, data: bytes) -> Path:
    with zipfile.ZipFile(csar) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr(info, data)
    return out


def _zip_slip(csar: Path, out: Path) -> Path:
    return _with_member(csar, out, zipfile.ZipInfo(f"../../../../tmp/{ESCAPE_NAME}"), b"x")


def _absolute(csar: Path, out: Path) -> Path:
    return _with_member(csar, out, zipfile.ZipInfo(f"/tmp/{ESCAPE_NAME}"), b"x")


def _symlink(csar: Path, out: Path) -> Path:
    info = zipfile.ZipInfo("Files/passwd")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _with_member(csar, out, info, b"/etc/passwd")


def _bomb(csar: Path, out: Path) -> Path:
    info = zipfile.ZipInfo("Files/zeros.bin")
    info.compress_type = zipfile.ZIP_DEFLATED
    # 64 MiB of zeros deflate to ~64 KiB: a ratio far above the 200:1 limit.
    return _with_member(csar, out, info, bytes(64 << 20))


def _vnfd_file(tree: Path) -> Path:
    return next((tree / "Definitions").glob("*_df_default.yaml"))


def _yaml_bomb(tree: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    path = _vnfd_file(tree)
    path.write_text(
        path.read_text()
        + "\n# bomb\nbomb_holder:\n"
        + "\n".join("  " + line for line in lines)
        + "\n"
    )


def _non_utf8(tree: Path) -> None:
    path = _vnfd_file(tree)
    path.write_bytes(path.read_bytes().replace(b"description:", b"description: \xff\xfe", 1))


def _unknown_import(tree: Path) -> None:
    path = _vnfd_file(tree)
    text = path.read_text()
    path.write_text(
        text.replace("imports:\n", "imports:\n- https://example.invalid/evil_types.yaml\n", 1)
    )


def _unknown_node_type(tree: Path) -> None:
    path = _vnfd_file(tree)
    path.write_text(
        path.read_text().replace("type: mano.nodes.nfv.Vdu.Compute", "type: no.such.Type", 1)
    )


ZIP_CASES = {
    "zip-slip": (_zip_slip, ".."),
    "absolute-path": (_absolute, "absolute"),
    "symlink": (_symlink, "symbolic link"),
    "zip-bomb": (_bomb, "ratio"),
}
TREE_CASES = {
    "yaml-alias-bomb": (_yaml_bomb, "alias"),
    "non-utf8": (_non_utf8, "UTF-8"),
    "unknown-import": (_unknown_import, "evil_types.yaml"),
    "unknown-node-type": (_unknown_node_type, "no.such.Type"),
}


def _submit_and_check(nfvo: Nfvo, csar: Path, expected: str) -> None:
    http = nfvo.client()
    pkg_id, failure = nfvo.refused(http, csar.read_bytes())
    assert failure["status"] == 422
    assert expected.lower() in failure["detail"].lower(), failure["detail"]
    assert not (nfvo.settings.content_dir / pkg_id).exists()
    assert not any((nfvo.settings.content_dir / ".staging").iterdir())
    assert not Path("/tmp", ESCAPE_NAME).exists()
    assert http.get(f"{PKGS}/{pkg_id}/package_content").status_code == 409


@pytest.mark.parametrize("case", sorted(ZIP_CASES))
def test_hostile_archives(
    nfvo: Nfvo, sample_csars: dict[str, Path], tmp_path: Path, case: str
) -> None:
    make, expected = ZIP_CASES[case]
    _submit_and_check(nfvo, make(sample_csars["nat"], tmp_path / f"{case}.csar"), expected)


@pytest.mark.parametrize("case", sorted(TREE_CASES))
def test_hostile_descriptors(
    nfvo: Nfvo, package_tree: Callable[[str], Path], tmp_path: Path, case: str
) -> None:
    change, expected = TREE_CASES[case]
    tree = package_tree("nat")
    change(tree)
    _submit_and_check(nfvo, build_csar(tree, tmp_path / f"{case}.csar"), expected)
