"""SOL004 manifest (.mf) files: parsing, rendering and digest verification.

The manifest is not YAML (a non-MANO artifact set repeats the `Source` key),
so it is read line by line: a `metadata:` block, then one block per file
(`Source`, `Algorithm`, `Hash`, and optionally `Signature`/`Certificate`
for a per-artifact signature), an optional `non_mano_artifact_sets:` block,
and optionally a CMS signature between `-----BEGIN CMS-----` and
`-----END CMS-----` that covers every byte before it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import posixpath
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from descriptors.errors import DescriptorError
from descriptors.safe_yaml import decode_utf8

PackageKind = Literal["VNF", "NS", "PNF"]

# SOL004 names these three; hashlib names them differently.
HASH_ALGORITHMS: dict[str, str] = {"SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}

METADATA_KEYS: dict[PackageKind, tuple[str, ...]] = {
    "VNF": (
        "vnf_provider_id",
        "vnf_product_name",
        "vnf_release_date_time",
        "vnf_package_version",
    ),
    "NS": (
        "nsd_designer",
        "nsd_invariant_id",
        "nsd_name",
        "nsd_release_date_time",
        "nsd_file_structure_version",
    ),
    "PNF": ("pnfd_provider", "pnfd_name", "pnfd_release_date_time", "pnfd_archive_version"),
}

CMS_BEGIN = "-----BEGIN CMS-----"
CMS_END = "-----END CMS-----"
_ENTRY_KEYS = ("Source", "Algorithm", "Hash", "Signature", "Certificate")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_CHUNK = 1 << 20


class ManifestEntry(BaseModel):
    """One Source block. `external` sources are URIs: listed, never fetched or verified here."""

    model_config = ConfigDict(frozen=True)

    source: str
    algorithm: str | None = None
    hash: str | None = None
    external: bool = False
    signature: str | None = None
    certificate: str | None = None
    non_mano_artifact_set: str | None = None


class Manifest(BaseModel):
    """A parsed manifest; `cms_signature` is the PEM block, `signed_length` the bytes it covers."""

    model_config = ConfigDict(frozen=True)

    metadata: dict[str, str]
    package_kind: PackageKind
    entries: list[ManifestEntry]
    non_mano_artifact_sets: dict[str, list[str]]
    cms_signature: str | None = None
    signed_length: int | None = None

    def entry(self, source: str) -> ManifestEntry | None:
        return next((e for e in self.entries if e.source == source), None)


def normalize_package_path(path: str, *, what: str, location: str) -> str:
    """A path relative to the package root, refused if it could leave the package."""
    if not path or "\\" in path or "\x00" in path:
        raise DescriptorError(f"{what} {path!r} is not a valid package path", location=location)
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise DescriptorError(
            f"{what} {path!r} is an absolute path, outside the package", location=location
        )
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../") or norm == ".":
        raise DescriptorError(f"{what} {path!r} points outside the package", location=location)
    return norm


def split_signature(data: bytes) -> tuple[bytes, bytes | None]:
    """Split manifest bytes into (signed content, CMS PEM block or None)."""
    marker = data.find(CMS_BEGIN.encode())
    if marker < 0:
        return data, None
    # The block must start a line; anything else is manifest text that
    # happens to contain the marker and is left for the parser to refuse.
    if marker > 0 and data[marker - 1 : marker] != b"\n":
        return data, None
    return data[:marker], data[marker:]


def _kind(metadata: dict[str, str], location: str) -> PackageKind:
    for kind, keys in METADATA_KEYS.items():
        if any(k in metadata for k in keys):
            missing = [k for k in keys if not metadata.get(k)]
            if missing:
                raise DescriptorError(
                    f"manifest metadata lacks required {kind} package key(s): "
                    + ", ".join(missing),
                    location=location,
                )
            return kind
    raise DescriptorError(
        "manifest metadata has none of the VNF/NS/PNF package keys (e.g. vnf_provider_id)",
        location=location,
    )


def _key_value(line: str, where: str) -> tuple[str, str]:
    key, sep, value = line.strip().partition(":")
    if not sep or not key.strip():
        raise DescriptorError("expected 'key: value'", location=where)
    return key.strip(), value.strip()


class _Parser:
    def __init__(self, lines: list[str], source: str) -> None:
        self.lines = lines
        self.source = source
        self.pos = 0
        self.metadata: dict[str, str] = {}
        self.entries: list[dict[str, str]] = []
        self.sets: dict[str, list[str]] = {}

    def where(self) -> str:
        return f"{self.source}:{self.pos + 1}"

    def parse(self) -> None:
        self._skip_blank()
        if self.pos >= len(self.lines) or self.lines[self.pos].strip() != "metadata:":
            raise DescriptorError(
                "manifest must start with a 'metadata:' block", location=self.where()
            )
        self.pos += 1
        self._metadata()
        current: dict[str, str] | None = None
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            if not line.strip():
                current = None
                self.pos += 1
                continue
            if line.strip() == "non_mano_artifact_sets:" and not line[0].isspace():
                self.pos += 1
                self._non_mano_sets()
                current = None
                continue
            key, value = _key_value(line, self.where())
            if key not in _ENTRY_KEYS:
                raise DescriptorError(f"unknown manifest key {key!r}", location=self.where())
            if key == "Source":
                current = {"Source": value, "_line": self.where()}
                self.entries.append(current)
            elif current is None:
                raise DescriptorError(f"{key!r} outside a Source block", location=self.where())
            elif key in current:
                raise DescriptorError(
                    f"{key!r} repeated in one Source block", location=self.where()
                )
            else:
                current[key] = value
            self.pos += 1

    def _skip_blank(self) -> None:
        while self.pos < len(self.lines) and not self.lines[self.pos].strip():
            self.pos += 1

    def _metadata(self) -> None:
        # SOL004's examples write the metadata keys unindented, many tools indent them:
        # the block ends at a blank line or at the first key that belongs to what follows.
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            if not line.strip() or line.strip() == "non_mano_artifact_sets:":
                return
            key, value = _key_value(line, self.where())
            if not line[0].isspace() and key in _ENTRY_KEYS:
                return
            if key in self.metadata:
                raise DescriptorError(f"metadata key {key!r} repeated", location=self.where())
            self.metadata[key] = value
            self.pos += 1

    def _non_mano_sets(self) -> None:
        set_indent: int | None = None
        current: list[str] | None = None
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            if not line.strip():
                self.pos += 1
                continue
            indent = len(line) - len(line.lstrip())
            if indent == 0:
                return
            if set_indent is None:
                set_indent = indent
            stripped = line.strip()
            if indent == set_indent:
                if not stripped.endswith(":") or stripped == ":":
                    raise DescriptorError(
                        "expected a non-MANO artifact set name ending with ':'",
                        location=self.where(),
                    )
                name = stripped[:-1].strip()
                if name in self.sets:
                    raise DescriptorError(
                        f"non-MANO artifact set {name!r} repeated", location=self.where()
                    )
                current = self.sets[name] = []
            elif indent > set_indent and current is not None:
                key, value = _key_value(line, self.where())
                if key != "Source":
                    raise DescriptorError(
                        f"expected 'Source:' in a non-MANO artifact set, got {key!r}",
                        location=self.where(),
                    )
                current.append(value)
            else:
                raise DescriptorError(
                    "bad indentation in non_mano_artifact_sets", location=self.where()
                )
            self.pos += 1


def _check_hash(algorithm: str | None, digest: str | None, where: str) -> None:
    if algorithm is None or digest is None:
        raise DescriptorError("Source block needs both 'Algorithm' and 'Hash'", location=where)
    name = HASH_ALGORITHMS.get(algorithm)
    if name is None:
        raise DescriptorError(
            f"unsupported hash algorithm {algorithm!r} (use one of "
            + ", ".join(HASH_ALGORITHMS)
            + ")",
            location=where,
        )
    size = hashlib.new(name).digest_size * 2
    if len(digest) != size or not _HEX.match(digest):
        raise DescriptorError(
            f"'Hash' must be {size} hex digits for {algorithm}, got {digest!r}", location=where
        )


def _parse_signature_block(sig: bytes, source: str) -> str:
    text = decode_utf8(sig, source=source)
    end = text.find(CMS_END)
    if end < 0:
        raise DescriptorError(f"CMS signature has no {CMS_END!r} line", location=source)
    if text[end + len(CMS_END) :].strip():
        raise DescriptorError("text after the CMS signature block", location=source)
    return text[: end + len(CMS_END)] + "\n"


def parse_manifest(data: bytes, *, source: str) -> Manifest:
    """Parse manifest bytes; structure only, digests are checked by `verify_digests`."""
    body, sig = split_signature(data)
    text = decode_utf8(body, source=source)
    parser = _Parser(text.replace("\r\n", "\n").split("\n"), source)
    parser.parse()
    kind = _kind(parser.metadata, source)
    set_of: dict[str, str] = {}
    for set_name, paths in parser.sets.items():
        normalized = []
        for path in paths:
            norm = normalize_package_path(
                path, what=f"non-MANO artifact set {set_name!r} source", location=source
            )
            set_of.setdefault(norm, set_name)
            normalized.append(norm)
        parser.sets[set_name] = normalized
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    for raw in parser.entries:
        where = raw["_line"]
        src = raw["Source"]
        external = bool(_URI.match(src))
        if not external:
            src = normalize_package_path(src, what="manifest Source", location=where)
        if src in seen:
            raise DescriptorError(f"Source {src!r} listed twice", location=where)
        seen.add(src)
        algorithm, digest = raw.get("Algorithm"), raw.get("Hash")
        # An external artifact may come without a digest; when one is given
        # it must still be well-formed.
        if not external or algorithm is not None or digest is not None:
            _check_hash(algorithm, digest, where)
        entry_paths = {
            key: normalize_package_path(raw[key], what=f"manifest {key}", location=where)
            for key in ("Signature", "Certificate")
            if key in raw
        }
        entries.append(
            ManifestEntry(
                source=src,
                algorithm=algorithm,
                hash=digest.lower() if digest else None,
                external=external,
                signature=entry_paths.get("Signature"),
                certificate=entry_paths.get("Certificate"),
                non_mano_artifact_set=set_of.get(src),
            )
        )
    return Manifest(
        metadata=parser.metadata,
        package_kind=kind,
        entries=entries,
        non_mano_artifact_sets=parser.sets,
        cms_signature=_parse_signature_block(sig, source) if sig is not None else None,
        signed_length=len(body) if sig is not None else None,
    )


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, streamed, refusing to follow a symbolic link."""
    hasher = hashlib.new(HASH_ALGORITHMS[algorithm])
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def verify_digests(manifest: Manifest, root: Path, files: Iterable[str], *, source: str) -> None:
    """Check every in-package entry against the file under `root`."""
    present = set(files)
    for entry in manifest.entries:
        if entry.external:
            continue
        if entry.source not in present:
            raise DescriptorError(
                f"manifest lists {entry.source!r} but the package has no such file",
                location=source,
            )
        assert entry.algorithm is not None and entry.hash is not None
        actual = file_digest(root / entry.source, entry.algorithm)
        if not hmac.compare_digest(actual, entry.hash):
            raise DescriptorError(
                f"digest mismatch for {entry.source}: manifest says {entry.algorithm} "
                f"{entry.hash}, file has {actual}",
                location=entry.source,
            )


def render_manifest(
    metadata: dict[str, str],
    entries: Iterable[ManifestEntry],
    non_mano_artifact_sets: dict[str, list[str]],
) -> bytes:
    """Manifest text without a signature; the exact bytes a CMS signature covers."""
    lines = ["metadata:"]
    lines += [f"  {key}: {value}" for key, value in metadata.items()]
    for entry in entries:
        lines.append("")
        lines.append(f"Source: {entry.source}")
        if entry.algorithm is not None and entry.hash is not None:
            lines.append(f"Algorithm: {entry.algorithm}")
            lines.append(f"Hash: {entry.hash}")
        if entry.signature is not None:
            lines.append(f"Signature: {entry.signature}")
        if entry.certificate is not None:
            lines.append(f"Certificate: {entry.certificate}")
    if non_mano_artifact_sets:
        lines.append("")
        lines.append("non_mano_artifact_sets:")
        for name, paths in non_mano_artifact_sets.items():
            lines.append(f"  {name}:")
            lines += [f"    Source: {path}" for path in paths]
    return ("\n".join(lines) + "\n").encode("utf-8")
