"""Hostile packages: each is built here and must be refused with nothing left behind."""

from __future__ import annotations

import stat
import warnings
import zipfile
from pathlib import Path

import pytest

from descriptors.csar import CsarLimits, open_csar
from descriptors.errors import DescriptorError
from tests.unit.descriptors.csar_factory import (
    TOSCA_META,
    duplicate_central_entry,
    listing,
    manifest_for,
    meta_members,
    patch_bytes,
    set_central_flags,
    write_zip,
)

MIB = 1 << 20


def refused(
    zip_path: Path, tmp_path: Path, match: str, limits: CsarLimits | None = None
) -> DescriptorError:
    """Open `zip_path` expecting refusal; check nothing stayed in or around the destination."""
    before = set(tmp_path.iterdir())
    dest = tmp_path / "out"
    with pytest.raises(DescriptorError, match=match) as err:
        open_csar(zip_path, dest, limits=limits or CsarLimits())
    assert listing(dest) == []
    assert set(tmp_path.iterdir()) == before  # nothing new beside it either
    return err.value


def info(name: str, mode: int | None = None) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name)
    if mode is not None:
        zi.external_attr = mode << 16
        zi.create_system = 3
    return zi


def test_zip_slip(tmp_path: Path) -> None:
    zip_path = write_zip(tmp_path / "p.csar", meta_members(), raw=[("../evil.txt", b"owned")])
    error = refused(zip_path, tmp_path, r"climbs out of the package")
    assert error.location == "../evil.txt"
    assert not (tmp_path / "evil.txt").exists()


def test_zip_slip_deeper(tmp_path: Path) -> None:
    zip_path = write_zip(tmp_path / "p.csar", raw=[("Files/../../../evil.txt", b"owned")])
    refused(zip_path, tmp_path, "climbs out")
    assert not (tmp_path.parent / "evil.txt").exists()


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("/etc/evil", "absolute path"),
        ("C:/evil", "absolute path"),
        ("C:\\evil", "backslash"),
        ("Files\\..\\..\\evil", "backslash"),
        ("Files//x", "empty or '.'"),
        ("./Files/x", "empty or '.'"),
    ],
)
def test_bad_paths(tmp_path: Path, name: str, match: str) -> None:
    zip_path = write_zip(tmp_path / "p.csar", meta_members(), raw=[(name, b"x")])
    refused(zip_path, tmp_path, match)
    assert not Path("/etc/evil").exists()


def test_symlink_entry(tmp_path: Path) -> None:
    link = info("Files/passwd", stat.S_IFLNK | 0o777)
    zip_path = write_zip(tmp_path / "p.csar", meta_members(), raw=[(link, b"/etc/passwd")])
    refused(zip_path, tmp_path, "symbolic link")


@pytest.mark.parametrize(
    ("mode", "what"),
    [(stat.S_IFCHR | 0o666, "character device"), (stat.S_IFIFO | 0o644, "FIFO")],
)
def test_device_and_fifo_entries(tmp_path: Path, mode: int, what: str) -> None:
    zip_path = write_zip(tmp_path / "p.csar", meta_members(), raw=[(info("Files/dev", mode), b"")])
    refused(zip_path, tmp_path, what)


def test_total_size_bomb(tmp_path: Path) -> None:
    members = meta_members({f"Files/part{i}.bin": bytes(400_000) for i in range(3)})
    zip_path = write_zip(tmp_path / "p.csar", members)
    refused(zip_path, tmp_path, "uncompressed bytes", CsarLimits(max_uncompressed_bytes=MIB))


def test_ratio_bomb(tmp_path: Path) -> None:
    # 16 MiB of zeros deflates to about 16 KiB: a 1000:1 ratio.
    zip_path = write_zip(tmp_path / "p.csar", meta_members({"Files/zeros.img": bytes(16 * MIB)}))
    refused(zip_path, tmp_path, r"compression ratio .*zip bomb")


def test_per_file_limit(tmp_path: Path) -> None:
    zip_path = write_zip(tmp_path / "p.csar", meta_members({"Files/big.bin": bytes(2 * MIB)}))
    refused(zip_path, tmp_path, "per-file limit", CsarLimits(max_file_bytes=MIB))


def test_lying_header_size(tmp_path: Path) -> None:
    """Header claims 16 bytes; the stream holds 4 MiB. The reader must not believe the header."""
    zip_path = write_zip(tmp_path / "p.csar", meta_members({"Files/zeros.img": bytes(4 * MIB)}))
    data = bytearray(zip_path.read_bytes())
    import struct

    for sig, size_at, name_len_at, name_at in (
        (b"PK\x03\x04", 22, 26, 30),
        (b"PK\x01\x02", 24, 28, 46),
    ):
        pos = data.find(sig)
        while pos >= 0:
            (n,) = struct.unpack_from("<H", data, pos + name_len_at)
            if bytes(data[pos + name_at : pos + name_at + n]) == b"Files/zeros.img":
                struct.pack_into("<I", data, pos + size_at, 16)
            pos = data.find(sig, pos + 4)
    zip_path.write_bytes(bytes(data))
    refused(zip_path, tmp_path, "corrupt|zip bomb")


def test_overlapping_entries(tmp_path: Path) -> None:
    zip_path = write_zip(tmp_path / "p.csar", meta_members({"Files/zeros.img": bytes(MIB)}))
    duplicate_central_entry(zip_path, "Files/zeros.img", "Files/zeros.imh")
    refused(zip_path, tmp_path, "overlapping entries")


def test_too_many_entries(tmp_path: Path) -> None:
    members = meta_members({f"Files/f{i}.txt": b"x" for i in range(20)})
    zip_path = write_zip(tmp_path / "p.csar", members)
    refused(zip_path, tmp_path, "entries, over the limit of 10", CsarLimits(max_entries=10))


def test_encrypted_entry(tmp_path: Path) -> None:
    zip_path = write_zip(tmp_path / "p.csar", meta_members({"Files/secret.bin": b"data"}))
    set_central_flags(zip_path, "Files/secret.bin", 0x1)
    error = refused(zip_path, tmp_path, "encrypted")
    assert error.location == "Files/secret.bin"


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "p.csar"
    path.write_bytes(b"this is not a zip archive at all\n" * 10)
    refused(path, tmp_path, "not a valid zip")


def test_truncated_zip(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p.csar", meta_members())
    path.write_bytes(path.read_bytes()[:-30])
    refused(path, tmp_path, "not a valid zip")


def test_non_utf8_name(tmp_path: Path) -> None:
    zip_path = write_zip(tmp_path / "p.csar", meta_members(), raw=[("Files/bad_XX.txt", b"x")])
    patch_bytes(zip_path, b"bad_XX", b"bad_\xff\xfe")
    refused(zip_path, tmp_path, "not valid UTF-8")


def test_too_deep(tmp_path: Path) -> None:
    name = "d/" * 40 + "x.txt"
    zip_path = write_zip(tmp_path / "p.csar", meta_members(), raw=[(name, b"x")])
    refused(zip_path, tmp_path, "40 directories deep")


def test_duplicate_names(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zip_path = write_zip(
            tmp_path / "p.csar", meta_members(), raw=[("Definitions/vnfd.yaml", b"evil: 1\n")]
        )
    refused(zip_path, tmp_path, "duplicate entry name")


def test_case_duplicate_names(tmp_path: Path) -> None:
    zip_path = write_zip(tmp_path / "p.csar", meta_members(), raw=[("definitions/VNFD.yaml", b"x")])
    refused(zip_path, tmp_path, "differs only in case")


def test_file_and_directory_clash(tmp_path: Path) -> None:
    zip_path = write_zip(tmp_path / "p.csar", meta_members(), raw=[("Files/ChangeLog.txt/x", b"x")])
    refused(zip_path, tmp_path, "which is a file")


def test_digest_mismatch(tmp_path: Path) -> None:
    members = meta_members()
    members["Definitions/vnfd.yaml"] += b"# tampered\n"
    error = refused(write_zip(tmp_path / "p.csar", members), tmp_path, "digest mismatch")
    assert "Definitions/vnfd.yaml" in error.detail
    assert error.detail.count("SHA-256") == 1 and len(error.detail.split()) >= 8


def test_manifest_source_outside_package(tmp_path: Path) -> None:
    members = meta_members()
    members["vnfd.mf"] += (
        b"\nSource: ../../etc/passwd\nAlgorithm: SHA-256\nHash: " + b"0" * 64 + b"\n"
    )
    refused(write_zip(tmp_path / "p.csar", members), tmp_path, "points outside the package")


def test_unknown_hash_algorithm(tmp_path: Path) -> None:
    members = meta_members()
    members["vnfd.mf"] = manifest_for(members, exclude=["vnfd.mf"]).replace(b"SHA-256", b"MD5", 1)
    refused(write_zip(tmp_path / "p.csar", members), tmp_path, "unsupported hash algorithm 'MD5'")


def test_missing_entry_definitions(tmp_path: Path) -> None:
    members = meta_members()
    del members["Definitions/vnfd.yaml"]
    members["vnfd.mf"] = manifest_for(members, exclude=["vnfd.mf"])
    refused(write_zip(tmp_path / "p.csar", members), tmp_path, "Entry-Definitions file")


def test_no_entry_definitions_at_all(tmp_path: Path) -> None:
    zip_path = write_zip(tmp_path / "p.csar", {"Files/readme.txt": b"hi"})
    refused(zip_path, tmp_path, "exactly one YAML file")


def test_tosca_meta_missing_required_key(tmp_path: Path) -> None:
    members = meta_members()
    members["TOSCA-Metadata/TOSCA.meta"] = TOSCA_META.replace("Created-By: tests\n", "").encode()
    members["vnfd.mf"] = manifest_for(members, exclude=["vnfd.mf"])
    refused(write_zip(tmp_path / "p.csar", members), tmp_path, "lacks required key.*Created-By")


def test_tosca_meta_malformed(tmp_path: Path) -> None:
    members = meta_members()
    members["TOSCA-Metadata/TOSCA.meta"] = b"TOSCA-Meta-File-Version 1.0\n"
    refused(write_zip(tmp_path / "p.csar", members), tmp_path, "malformed TOSCA.meta line")


def test_tosca_meta_entry_outside_package(tmp_path: Path) -> None:
    members = meta_members()
    members["TOSCA-Metadata/TOSCA.meta"] = TOSCA_META.replace(
        "Definitions/vnfd.yaml", "../../etc/passwd"
    ).encode()
    refused(write_zip(tmp_path / "p.csar", members), tmp_path, "outside the package")


def test_oversized_zip_file(tmp_path: Path) -> None:
    zip_path = write_zip(tmp_path / "p.csar", meta_members())
    refused(zip_path, tmp_path, "over the limit of 100", CsarLimits(max_zip_bytes=100))


def test_yaml_alias_bomb_in_root_entry(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    members = {"bomb.yaml": ("\n".join(lines) + "\n").encode()}
    members["bomb.mf"] = manifest_for(members)
    refused(write_zip(tmp_path / "p.csar", members), tmp_path, "alias")


LENIENT = CsarLimits(max_uncompressed_bytes=1 << 40, max_file_bytes=1 << 40, max_ratio=1 << 30)


@pytest.mark.parametrize(
    ("limits", "match"),
    [
        (CsarLimits(max_file_bytes=MIB), "per-file limit"),
        (CsarLimits(max_uncompressed_bytes=MIB), "total limit"),
        (CsarLimits(), "compression ratio of 200:1"),
    ],
)
def test_limits_enforced_while_streaming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limits: CsarLimits, match: str
) -> None:
    """Header checks fed lenient limits, as if the headers lied: the byte count must refuse."""
    from descriptors import zipsafe

    open_zip = zipsafe._open_zip
    monkeypatch.setattr(zipsafe, "_open_zip", lambda path, _limits: open_zip(path, LENIENT))
    zip_path = write_zip(tmp_path / "p.csar", meta_members({"Files/zeros.img": bytes(4 * MIB)}))
    refused(zip_path, tmp_path, match, limits)
