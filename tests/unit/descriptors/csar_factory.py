"""Builders for CSAR test inputs: valid source trees, raw zips, CA and signer certificates."""

from __future__ import annotations

import hashlib
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path

VNF_METADATA = {
    "vnf_provider_id": "Example",
    "vnf_product_name": "tiny",
    "vnf_release_date_time": "2024-01-01T10:00:00+00:00",
    "vnf_package_version": "1.0",
}

TOSCA_META = (
    "TOSCA-Meta-File-Version: 1.0\n"
    "CSAR-Version: 1.1\n"
    "Created-By: tests\n"
    "Entry-Definitions: Definitions/vnfd.yaml\n"
    "ETSI-Entry-Manifest: vnfd.mf\n"
    "ETSI-Entry-Change-Log: Files/ChangeLog.txt\n"
)

VNFD = (
    "tosca_definitions_version: tosca_simple_yaml_1_3\n"
    "metadata:\n"
    "  template_name: tiny\n"
    "  template_author: Example\n"
    "  template_version: '1.0'\n"
    "topology_template: {}\n"
)


def metadata_block(metadata: dict[str, str] | None = None) -> str:
    items = (metadata or VNF_METADATA).items()
    return "metadata:\n" + "".join(f"  {k}: {v}\n" for k, v in items)


def manifest_for(
    members: dict[str, bytes],
    *,
    exclude: Iterable[str] = (),
    algorithm: str = "SHA-256",
    extra_text: str = "",
) -> bytes:
    """A manifest listing every member (except `exclude`) with a correct digest."""
    skip = set(exclude)
    blocks = [metadata_block()]
    hasher = {"SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}[algorithm]
    for name in sorted(members):
        if name in skip:
            continue
        digest = hashlib.new(hasher, members[name]).hexdigest()
        blocks.append(f"Source: {name}\nAlgorithm: {algorithm}\nHash: {digest}\n")
    return ("\n".join(blocks) + extra_text).encode()


def meta_members(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Members of a valid TOSCA-Metadata layout package, manifest included."""
    members = {
        "TOSCA-Metadata/TOSCA.meta": TOSCA_META.encode(),
        "Definitions/vnfd.yaml": VNFD.encode(),
        "Files/ChangeLog.txt": b"1.0: first release\n",
        **(extra or {}),
    }
    members["vnfd.mf"] = manifest_for(members)
    return members


def nometa_members() -> dict[str, bytes]:
    """Members of a valid no-TOSCA-Metadata layout package."""
    members = {"tiny.yaml": VNFD.encode(), "Files/readme.txt": b"hello\n"}
    members["tiny.mf"] = manifest_for(members)
    return members


def write_tree(root: Path, members: dict[str, bytes]) -> Path:
    for name, data in members.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def source_tree(root: Path, *, stale_manifest: bool = True) -> Path:
    """A TOSCA-Metadata source tree whose manifest has only metadata (plus a stale block)."""
    members = meta_members()
    stale = "\nSource: Gone/old.bin\nAlgorithm: SHA-256\nHash: " + "0" * 64 + "\n"
    members["vnfd.mf"] = (metadata_block() + (stale if stale_manifest else "")).encode()
    members["Files/images/blob.bin"] = bytes(range(256)) * 16
    return write_tree(root, members)


def write_zip(
    path: Path,
    members: dict[str, bytes] | None = None,
    raw: Iterable[tuple[zipfile.ZipInfo | str, bytes]] = (),
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in (members or {}).items():
            zf.writestr(name, data)
        for info, data in raw:
            zf.writestr(info, data)
    return path


def patch_bytes(path: Path, old: bytes, new: bytes) -> None:
    """Replace every occurrence of `old` (e.g. a name in both headers) with same-length `new`."""
    assert len(old) == len(new)
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new))


def set_central_flags(path: Path, name: str, flags: int) -> None:
    """OR `flags` into the general-purpose bits of `name`'s local and central headers."""
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    for sig, flag_at, name_len_at, name_at in (
        (b"PK\x03\x04", 6, 26, 30),
        (b"PK\x01\x02", 8, 28, 46),
    ):
        pos = data.find(sig)
        while pos >= 0:
            (length,) = struct.unpack_from("<H", data, pos + name_len_at)
            if bytes(data[pos + name_at : pos + name_at + length]) == encoded:
                (current,) = struct.unpack_from("<H", data, pos + flag_at)
                struct.pack_into("<H", data, pos + flag_at, current | flags)
            pos = data.find(sig, pos + 4)
    path.write_bytes(bytes(data))


def duplicate_central_entry(path: Path, name: str, alias: str) -> None:
    """Add a second central-directory record pointing at `name`'s data (overlapping entries)."""
    assert len(alias) == len(name)
    data = path.read_bytes()
    eocd = data.rfind(b"PK\x05\x06")
    count, cd_size, cd_offset = struct.unpack_from("<HII", data, eocd + 10)
    cd = data[cd_offset : cd_offset + cd_size]
    pos = cd.find(b"PK\x01\x02")
    record = b""
    while pos >= 0:
        n, e, c = struct.unpack_from("<HHH", cd, pos + 28)
        end = pos + 46 + n + e + c
        if cd[pos + 46 : pos + 46 + n] == name.encode():
            record = cd[pos:end].replace(name.encode(), alias.encode())
        pos = cd.find(b"PK\x01\x02", end)
    assert record
    new_cd = cd + record
    tail = bytearray(data[eocd:])
    struct.pack_into("<HHII", tail, 8, count + 1, count + 1, len(new_cd), cd_offset)
    path.write_bytes(data[:cd_offset] + new_cd + bytes(tail))


def listing(directory: Path) -> list[str]:
    """Everything under `directory` (empty if it does not exist)."""
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))
