"""Reading and verifying SOL004 CSAR packages.

`open_csar` extracts a package (see `descriptors.zipsafe` for the hostile
archive checks), finds its entry definitions in either SOL004 layout, checks
every manifest digest and, given a trust anchor, every CMS signature. It
does not interpret TOSCA; `descriptors.tosca.parse_vnfd(csar.root,
csar.entry_definitions)` does that. Building packages is `descriptors.build`.

Layouts (SOL004 clause 4.1):
- with `TOSCA-Metadata/TOSCA.meta`, whose block 0 names the entry
  definitions, manifest, change log, licenses and certificate;
- without it: exactly one YAML file at the root, carrying a `metadata:`
  block, with the manifest and certificate next to it under the same stem.

Security options (SOL004 clause 5.1): option 1 signs the manifest (a CMS
block at its end, optionally per-artifact signatures too); option 2 wraps
the CSAR in an outer zip holding `<name>.csar`, `<name>.cms` (a detached
signature of the CSAR bytes) and optionally `<name>.cert`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import posixpath
import re
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from descriptors.errors import DescriptorError
from descriptors.manifest import (
    Manifest,
    ManifestEntry,
    normalize_package_path,
    parse_manifest,
    verify_digests,
)
from descriptors.safe_yaml import decode_utf8, load_yaml
from descriptors.signature import verify_detached, verify_detached_bytes
from descriptors.zipsafe import CsarFile, CsarLimits, clear_directory, extract_zip, inspect_zip

__all__ = [
    "TOSCA_META",
    "Csar",
    "CsarFile",
    "CsarLimits",
    "Layout",
    "Manifest",
    "ManifestEntry",
    "SecurityOption",
    "detect_layout",
    "open_csar",
    "parse_tosca_meta",
    "validate_csar",
]

SecurityOption = Literal["OPTION_1", "OPTION_2"]

TOSCA_META = "TOSCA-Metadata/TOSCA.meta"
REQUIRED_META_KEYS = ("TOSCA-Meta-File-Version", "CSAR-Version", "Created-By", "Entry-Definitions")
# SOL004 key first, then the spelling of earlier SOL004 versions.
_META_ALIASES: dict[str, tuple[str, str]] = {
    "manifest": ("ETSI-Entry-Manifest", "Entry-Manifest"),
    "change_log": ("ETSI-Entry-Change-Log", "Entry-Change-Log"),
    "licenses": ("ETSI-Entry-Licenses", "Entry-Licenses"),
    "certificate": ("ETSI-Entry-Certificate", "Entry-Certificate"),
}
_META_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TEMPLATE_KEYS = ("template_name", "template_author", "template_version")
# Small text files read whole; anything larger is not a plausible one.
_MAX_META_BYTES = 1 << 20
_MAX_MANIFEST_BYTES = 64 << 20
_MAX_ROOT_YAML_BYTES = 32 << 20
_MAX_SIGNATURE_BYTES = 1 << 20
_CHUNK = 1 << 20


class Csar(BaseModel):
    """What `open_csar` read and verified.

    `signed` is True only when a package-level signature (option 1 manifest
    CMS or option 2 wrapper) was present *and* verified against a trust
    anchor; `security_option` says which kind was present, verified or not.
    `checksum` is (algorithm, hex) of the uploaded zip, as VnfPkgInfo wants.
    """

    model_config = ConfigDict(frozen=True)

    root: Path
    entry_definitions: str
    tosca_meta: dict[str, str]
    manifest_path: str | None
    manifest: Manifest | None
    change_log_path: str | None
    licenses_path: str | None
    certificate_path: str | None
    non_mano_artifact_sets: dict[str, list[str]]
    files: list[CsarFile]
    signed: bool
    security_option: SecurityOption | None
    checksum: tuple[str, str]


@dataclass(frozen=True)
class Layout:
    """Where the well-known files of a package are, relative to its root."""

    tosca_meta: dict[str, str]
    entry_definitions: str
    manifest_path: str | None
    change_log_path: str | None
    licenses_path: str | None
    certificate_path: str | None


def parse_tosca_meta(data: bytes, *, source: str = TOSCA_META) -> dict[str, str]:
    """Block 0 of a TOSCA.meta file as a dict; later (per-file) blocks are syntax-checked only."""
    if len(data) > _MAX_META_BYTES:
        raise DescriptorError("TOSCA.meta is implausibly large", location=source)
    text = decode_utf8(data, source=source)
    blocks: list[dict[str, str]] = [{}]
    last_key: str | None = None
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        where = f"{source}:{number}"
        if not raw.strip():
            if blocks[-1]:
                blocks.append({})
            last_key = None
            continue
        if raw.startswith(" ") and last_key is not None:
            # Manifest-style continuation line: the value goes on.
            blocks[-1][last_key] += raw[1:].rstrip()
            continue
        key, sep, value = raw.partition(":")
        key = key.strip()
        if not sep or not _META_KEY.match(key):
            raise DescriptorError(f"malformed TOSCA.meta line {raw.strip()[:80]!r}", location=where)
        if key in blocks[-1]:
            raise DescriptorError(f"TOSCA.meta key {key!r} repeated", location=where)
        blocks[-1][key] = value.strip()
        last_key = key
    meta = blocks[0]
    missing = [k for k in REQUIRED_META_KEYS if not meta.get(k)]
    if missing:
        raise DescriptorError(
            "TOSCA.meta lacks required key(s): " + ", ".join(missing), location=source
        )
    return meta


def _meta_path(meta: dict[str, str], role: str) -> str | None:
    new, old = _META_ALIASES[role]
    values = {meta[k] for k in (new, old) if meta.get(k)}
    if len(values) > 1:
        raise DescriptorError(f"TOSCA.meta gives different {new} and {old}", location=TOSCA_META)
    if not values:
        return None
    return normalize_package_path(values.pop(), what=new, location=TOSCA_META)


def _require(path: str, files: Collection[str], what: str, location: str) -> None:
    if path not in files:
        raise DescriptorError(f"{what} {path!r} is not in the package", location=location)


def _metadata_layout(root: Path, files: Collection[str], check_certificate: bool) -> Layout:
    meta = parse_tosca_meta(_read_small(root / TOSCA_META, _MAX_META_BYTES, TOSCA_META))
    entry = normalize_package_path(
        meta["Entry-Definitions"], what="Entry-Definitions", location=TOSCA_META
    )
    _require(entry, files, "Entry-Definitions file", TOSCA_META)
    manifest = _meta_path(meta, "manifest")
    change_log = _meta_path(meta, "change_log")
    licenses = _meta_path(meta, "licenses")
    certificate = _meta_path(meta, "certificate")
    if manifest is not None:
        _require(manifest, files, "manifest", TOSCA_META)
    if change_log is not None:
        _require(change_log, files, "change log", TOSCA_META)
    # SOL004 lets the licenses entry name a directory of license files.
    if (
        licenses is not None
        and licenses not in files
        and not any(f.startswith(licenses + "/") for f in files)
    ):
        raise DescriptorError(f"licenses {licenses!r} is not in the package", location=TOSCA_META)
    if certificate is not None and check_certificate:
        _require(certificate, files, "certificate", TOSCA_META)
    return Layout(meta, entry, manifest, change_log, licenses, certificate)


def _no_metadata_layout(root: Path, files: Collection[str]) -> Layout:
    at_root = sorted(f for f in files if "/" not in f)
    yamls = [f for f in at_root if f.lower().endswith((".yaml", ".yml"))]
    if len(yamls) != 1:
        found = ", ".join(yamls) if yamls else "none"
        raise DescriptorError(
            "without TOSCA-Metadata/TOSCA.meta the package needs exactly one YAML file at "
            f"its root as entry definitions (found: {found})"
        )
    entry = yamls[0]
    doc: Any = load_yaml(_read_small(root / entry, _MAX_ROOT_YAML_BYTES, entry), source=entry)
    metadata = doc.get("metadata") if isinstance(doc, dict) else None
    if not isinstance(metadata, dict):
        raise DescriptorError(
            "entry definitions need a 'metadata:' block in the no-TOSCA-Metadata layout",
            location=entry,
        )
    missing = [k for k in _TEMPLATE_KEYS if metadata.get(k) in (None, "")]
    if missing:
        raise DescriptorError(
            "entry definitions 'metadata:' lacks " + ", ".join(missing), location=entry
        )
    stem = posixpath.splitext(entry)[0]
    manifest = f"{stem}.mf"
    others = [f for f in at_root if f.lower().endswith(".mf") and f != manifest]
    if others:
        raise DescriptorError(
            f"manifest {others[0]!r} must be named {manifest!r} after the entry definitions",
            location=others[0],
        )
    certificate = f"{stem}.cert"
    return Layout(
        tosca_meta={},
        entry_definitions=entry,
        manifest_path=manifest if manifest in files else None,
        change_log_path=None,
        licenses_path=None,
        certificate_path=certificate if certificate in files else None,
    )


def detect_layout(root: Path, files: Collection[str], *, check_certificate: bool = True) -> Layout:
    """Locate entry definitions, manifest, change log, licenses and certificate."""
    if TOSCA_META in files:
        return _metadata_layout(root, files, check_certificate)
    if any(f.startswith("TOSCA-Metadata/") for f in files):
        raise DescriptorError(
            "package has a TOSCA-Metadata directory but no TOSCA.meta", location="TOSCA-Metadata"
        )
    return _no_metadata_layout(root, files)


def _read_small(path: Path, limit: int, location: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise DescriptorError(f"file is larger than {limit} bytes", location=location)
    return data


def _cms_pem(data: bytes, location: str) -> str:
    """A signature file as PEM; SOL004 does not fix PEM or DER, so accept both."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return decode_utf8(data, source=location)
    body = base64.encodebytes(data).decode("ascii")
    return f"-----BEGIN CMS-----\n{body}-----END CMS-----\n"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _wrapper_stem(names: list[str]) -> str | None:
    """The `<name>` of an option 2 wrapper (`<name>.csar` + `<name>.cms` [+ `.cert`]), or None."""
    if any("/" in n for n in names):
        return None
    csars = [n for n in names if n.lower().endswith(".csar")]
    if len(csars) != 1:
        return None
    stem = csars[0][: -len(".csar")]
    expected = {csars[0], f"{stem}.cms"}
    if f"{stem}.cms" not in names:
        return None
    return stem if set(names) - expected <= {f"{stem}.cert"} else None


def _verify_artifact_signatures(
    manifest: Manifest,
    root: Path,
    files: Collection[str],
    trust_anchor: Path | None,
    default_cert: str | None,
) -> bool:
    """Check per-artifact signatures; True if any was present."""
    present = False
    for entry in manifest.entries:
        if entry.signature is None:
            continue
        present = True
        _require(entry.signature, files, "artifact signature", entry.source)
        cert = entry.certificate or default_cert
        if cert is not None:
            _require(cert, files, "artifact certificate", entry.source)
        if trust_anchor is None or entry.external:
            continue
        verify_detached(
            root / entry.source,
            _cms_pem(
                _read_small(root / entry.signature, _MAX_SIGNATURE_BYTES, entry.signature),
                entry.signature,
            ),
            trust_anchor,
            extra_certs=root / cert if cert else None,
            location=entry.source,
        )
    return present


def _check_complete(manifest: Manifest, files: list[CsarFile], layout: Layout) -> None:
    exempt = {layout.manifest_path, layout.certificate_path}
    for entry in manifest.entries:
        exempt.update((entry.signature, entry.certificate))
    listed = {e.source for e in manifest.entries if not e.external}
    for f in files:
        if f.path not in listed and f.path not in exempt:
            raise DescriptorError(
                "file is not listed in the manifest, so no digest covers it", location=f.path
            )


def _open_plain(
    zip_path: Path,
    dest_dir: Path,
    limits: CsarLimits,
    trust_anchor: Path | None,
    wrapper_verified: bool,
    wrapped: bool,
) -> Csar:
    files = extract_zip(zip_path, dest_dir, limits)
    paths = {f.path for f in files}
    layout = detect_layout(dest_dir, paths)
    manifest: Manifest | None = None
    manifest_signed = False
    artifact_signatures = False
    if layout.manifest_path is None:
        if limits.require_manifest:
            raise DescriptorError(
                "package has no manifest (SOL004 requires one: ETSI-Entry-Manifest in "
                "TOSCA.meta, or <entry-definitions-name>.mf at the root)"
            )
    else:
        source = layout.manifest_path
        raw = _read_small(dest_dir / source, _MAX_MANIFEST_BYTES, source)
        manifest = parse_manifest(raw, source=source)
        verify_digests(manifest, dest_dir, paths, source=source)
        for set_name, set_paths in manifest.non_mano_artifact_sets.items():
            for path in set_paths:
                _require(path, paths, f"non-MANO artifact set {set_name!r} source", source)
        if limits.require_complete_manifest:
            _check_complete(manifest, files, layout)
        cert = dest_dir / layout.certificate_path if layout.certificate_path else None
        if manifest.cms_signature is not None and trust_anchor is not None:
            assert manifest.signed_length is not None
            verify_detached_bytes(
                raw[: manifest.signed_length],
                manifest.cms_signature,
                trust_anchor,
                extra_certs=cert,
                location=source,
            )
            manifest_signed = True
        artifact_signatures = _verify_artifact_signatures(
            manifest, dest_dir, paths, trust_anchor, layout.certificate_path
        )
    option: SecurityOption | None = None
    if wrapped:
        option = "OPTION_2"
    elif manifest is not None and (manifest.cms_signature is not None or artifact_signatures):
        option = "OPTION_1"
    signed = wrapper_verified or manifest_signed
    if limits.require_signature and not signed:
        if trust_anchor is None:
            raise DescriptorError("a signed package is required but no trust anchor is configured")
        raise DescriptorError(
            "package is not signed (SOL004 option 1 manifest CMS signature or option 2 "
            "signed wrapper required)"
        )
    return Csar(
        root=dest_dir,
        entry_definitions=layout.entry_definitions,
        tosca_meta=layout.tosca_meta,
        manifest_path=layout.manifest_path,
        manifest=manifest,
        change_log_path=layout.change_log_path,
        licenses_path=layout.licenses_path,
        certificate_path=layout.certificate_path,
        non_mano_artifact_sets=manifest.non_mano_artifact_sets if manifest else {},
        files=files,
        signed=signed,
        security_option=option,
        checksum=("SHA-256", ""),
    )


def _open_wrapper(
    zip_path: Path, stem: str, dest_dir: Path, limits: CsarLimits, trust_anchor: Path | None
) -> Csar:
    # The inner CSAR has to exist as a file for openssl and for extraction;
    # it is staged in a private temporary directory, removed on return.
    with tempfile.TemporaryDirectory(prefix="csar-wrapper-") as tmp:
        staging = Path(tmp)
        extract_zip(zip_path, staging, limits)
        inner = staging / f"{stem}.csar"
        cert = staging / f"{stem}.cert"
        verified = False
        if trust_anchor is not None:
            sig = _read_small(staging / f"{stem}.cms", _MAX_SIGNATURE_BYTES, f"{stem}.cms")
            verify_detached(
                inner,
                _cms_pem(sig, f"{stem}.cms"),
                trust_anchor,
                extra_certs=cert if cert.exists() else None,
                location=f"{stem}.cms",
            )
            verified = True
        return _open_plain(
            inner, dest_dir, limits, trust_anchor, wrapper_verified=verified, wrapped=True
        )


def _prepare_dest(dest_dir: Path) -> bool:
    """Make sure `dest_dir` is an empty real directory; True if we created it."""
    if dest_dir.is_symlink():
        raise DescriptorError(f"destination {dest_dir} is a symbolic link")
    if dest_dir.exists():
        if not dest_dir.is_dir():
            raise DescriptorError(f"destination {dest_dir} is not a directory")
        if any(dest_dir.iterdir()):
            raise DescriptorError(f"destination {dest_dir} is not empty")
        return False
    dest_dir.mkdir(mode=0o755, parents=True)
    return True


def open_csar(
    zip_path: Path,
    dest_dir: Path,
    *,
    limits: CsarLimits = CsarLimits(),
    trust_anchor: Path | None = None,
) -> Csar:
    """Extract and verify the CSAR at `zip_path` into `dest_dir`.

    `dest_dir` must be empty or absent (it is then created). On any error
    everything extracted is removed (and `dest_dir` too if this call made
    it) before DescriptorError is raised. With `trust_anchor` (a PEM CA
    certificate) every signature present must verify against it; with
    `limits.require_signature` one must be present.
    """
    created = _prepare_dest(dest_dir)
    try:
        names = inspect_zip(zip_path, limits)
        stem = _wrapper_stem(names)
        if stem is not None:
            csar = _open_wrapper(zip_path, stem, dest_dir, limits, trust_anchor)
        else:
            csar = _open_plain(
                zip_path, dest_dir, limits, trust_anchor, wrapper_verified=False, wrapped=False
            )
        return csar.model_copy(update={"checksum": ("SHA-256", _sha256_file(zip_path))})
    except BaseException as exc:
        clear_directory(dest_dir)
        if created:
            with contextlib.suppress(OSError):
                dest_dir.rmdir()
        if isinstance(exc, OSError):
            raise DescriptorError(f"cannot read package: {exc}") from exc
        raise


def validate_csar(
    zip_path: Path,
    *,
    limits: CsarLimits = CsarLimits(),
    trust_anchor: Path | None = None,
) -> Csar:
    """Run every `open_csar` check in a temporary directory, then remove it.

    Returns the same metadata as `open_csar` (layout, TOSCA.meta, manifest,
    file list with sizes and SHA-256, signature status, zip checksum) except
    that, as nothing stays extracted, `root` is `zip_path` itself. To parse
    the VNFD as well, call `open_csar` on a directory you own instead.
    """
    with tempfile.TemporaryDirectory(prefix="csar-validate-") as tmp:
        csar = open_csar(zip_path, Path(tmp) / "package", limits=limits, trust_anchor=trust_anchor)
    return csar.model_copy(update={"root": zip_path})
