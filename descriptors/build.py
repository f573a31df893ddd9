"""Building SOL004 CSAR packages from a source tree.

The source tree is laid out as the package will be (either SOL004 layout)
and carries a manifest with at least its `metadata:` block. The builder
regenerates every Source/Algorithm/Hash block from the files actually
present, so stale or missing digests in the source manifest do not matter,
and optionally signs the manifest (SOL004 security option 1).

Output is reproducible: entries in a fixed order, fixed timestamps and
permissions, no directory entries and no extra fields, so the same tree
builds to the same bytes and a package digest can be compared across builds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import stat
import tempfile
import zipfile
from pathlib import Path

from descriptors.csar import TOSCA_META, Layout, detect_layout
from descriptors.errors import DescriptorError
from descriptors.manifest import (
    HASH_ALGORITHMS,
    ManifestEntry,
    parse_manifest,
    render_manifest,
)
from descriptors.signature import sign_detached

# The earliest timestamp a zip can hold; any fixed value gives determinism.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644
_UNIX = 3
_CHUNK = 1 << 20
_ZIP64_THRESHOLD = (1 << 31) - 1


def _walk(source_dir: Path) -> list[str]:
    """Every regular file under `source_dir` as a sorted relative POSIX path."""
    found: list[str] = []
    stack = [(source_dir, "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as it:
            for item in it:
                rel = f"{prefix}{item.name}"
                try:
                    rel.encode("utf-8")
                except UnicodeEncodeError:
                    raise DescriptorError(
                        "file name is not valid UTF-8",
                        location=rel.encode("utf-8", "replace").decode("utf-8"),
                    ) from None
                if "\\" in item.name:
                    raise DescriptorError("file name contains a backslash", location=rel)
                if item.is_symlink():
                    raise DescriptorError(
                        "symbolic links are not allowed in a package source tree", location=rel
                    )
                if item.is_dir(follow_symlinks=False):
                    stack.append((Path(item.path), rel + "/"))
                elif item.is_file(follow_symlinks=False):
                    found.append(rel)
                else:
                    raise DescriptorError("not a regular file or directory", location=rel)
    return sorted(found)


def _digest(data: bytes | Path, algorithm: str) -> str:
    hasher = hashlib.new(HASH_ALGORITHMS[algorithm])
    if isinstance(data, bytes):
        hasher.update(data)
        return hasher.hexdigest()
    fd = os.open(data, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _add_meta_key(meta_bytes: bytes, key: str, value: str) -> bytes:
    """TOSCA.meta with `key: value` appended to block 0 (which ends at the first blank line)."""
    lines = meta_bytes.decode("utf-8").replace("\r\n", "\n").rstrip("\n").split("\n")
    end = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
    lines.insert(end, f"{key}: {value}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.create_system = _UNIX
    info.external_attr = (stat.S_IFREG | _FILE_MODE) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _write_zip(
    out_path: Path,
    source_dir: Path,
    order: list[str],
    generated: dict[str, bytes],
    expected: dict[str, str],
) -> None:
    """Write entries atomically; `expected` SHA-256s catch files changed since hashing."""
    fd, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name in order:
                    info = _zip_info(name)
                    if name in generated:
                        zf.writestr(info, generated[name])
                        continue
                    src_path = source_dir / name
                    info.file_size = src_path.stat().st_size
                    hasher = hashlib.sha256()
                    src_fd = os.open(src_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                    with (
                        os.fdopen(src_fd, "rb") as src,
                        zf.open(info, "w", force_zip64=info.file_size > _ZIP64_THRESHOLD) as dst,
                    ):
                        while chunk := src.read(_CHUNK):
                            hasher.update(chunk)
                            dst.write(chunk)
                    if hasher.hexdigest() != expected[name]:
                        raise DescriptorError(
                            "file changed while the package was built", location=name
                        )
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, out_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _certificate_path(layout: Layout, manifest_path: str) -> str:
    if layout.certificate_path is not None:
        return layout.certificate_path
    stem = posixpath.splitext(posixpath.basename(manifest_path))[0]
    if layout.tosca_meta:
        return f"Files/Certificates/{stem}.cert"
    return f"{posixpath.splitext(layout.entry_definitions)[0]}.cert"


def build_csar(
    source_dir: Path,
    out_path: Path,
    *,
    algorithm: str = "SHA-256",
    sign_with: tuple[Path, Path] | None = None,
) -> Path:
    """Build a CSAR zip from `source_dir` at `out_path` and return `out_path`.

    The written manifest keeps the source manifest's metadata, external
    (URI) entries, per-artifact Signature/Certificate keys and non-MANO
    artifact sets, and gets one Source/Algorithm/Hash block for every file
    except itself and the certificate. `sign_with` = (certificate PEM,
    unencrypted private key PEM) appends a detached CMS signature of the
    manifest and ships the certificate as ETSI-Entry-Certificate (adding
    that key to TOSCA.meta in the package if the source lacks it).
    """
    if algorithm not in HASH_ALGORITHMS:
        raise DescriptorError(
            f"unsupported hash algorithm {algorithm!r} (use one of {', '.join(HASH_ALGORITHMS)})"
        )
    if not source_dir.is_dir():
        raise DescriptorError(f"package source {source_dir} is not a directory")
    out_abs = out_path.absolute()
    if out_abs.parent.resolve().is_relative_to(source_dir.resolve()):
        raise DescriptorError("the output file must not be inside the package source tree")
    files = _walk(source_dir)
    layout = detect_layout(source_dir, set(files), check_certificate=sign_with is None)
    manifest_path = layout.manifest_path
    if manifest_path is None:
        raise DescriptorError(
            "package source has no manifest (ETSI-Entry-Manifest in TOSCA.meta, or "
            "<entry-definitions-name>.mf at the root) to take the metadata from"
        )
    source_manifest = parse_manifest(
        (source_dir / manifest_path).read_bytes(), source=manifest_path
    )

    generated: dict[str, bytes] = {}
    cert_path = layout.certificate_path
    if sign_with is not None:
        cert_path = _certificate_path(layout, manifest_path)
        if layout.tosca_meta and layout.certificate_path is None:
            generated[TOSCA_META] = _add_meta_key(
                (source_dir / TOSCA_META).read_bytes(), "ETSI-Entry-Certificate", cert_path
            )
        generated[cert_path] = sign_with[0].read_bytes()

    all_files = sorted(set(files) | set(generated))
    for set_name, paths in source_manifest.non_mano_artifact_sets.items():
        for path in paths:
            if path not in all_files:
                raise DescriptorError(
                    f"non-MANO artifact set {set_name!r} lists {path!r}, which is not in the tree",
                    location=manifest_path,
                )
    unlisted = {manifest_path, cert_path}
    entries: list[ManifestEntry] = []
    expected: dict[str, str] = {}
    for name in all_files:
        if name not in generated:
            expected[name] = _digest(source_dir / name, "SHA-256")
        if name in unlisted:
            continue
        content: bytes | Path = generated.get(name, source_dir / name)
        digest = (
            expected[name]
            if algorithm == "SHA-256" and name in expected
            else _digest(content, algorithm)
        )
        old = source_manifest.entry(name)
        entries.append(
            ManifestEntry(
                source=name,
                algorithm=algorithm,
                hash=digest,
                signature=old.signature if old else None,
                certificate=old.certificate if old else None,
            )
        )
    entries += [e for e in source_manifest.entries if e.external]

    body = render_manifest(
        source_manifest.metadata, entries, source_manifest.non_mano_artifact_sets
    )
    if sign_with is not None:
        body += sign_detached(body, sign_with[0], sign_with[1]).encode("ascii")
    generated[manifest_path] = body

    # TOSCA.meta first, as readers that stream the archive expect it early.
    order = sorted(all_files, key=lambda n: (n != TOSCA_META, n))
    _write_zip(out_abs, source_dir, order, generated, expected)
    return out_path
