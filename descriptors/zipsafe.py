"""Extraction of untrusted zip archives, refusing what a hostile archive can do.

A package upload is attacker-controlled: names may climb out of the target
directory, entries may be symlinks or devices, sizes in the headers may lie,
entries may overlap so a small file expands to gigabytes, and names may not
decode. Everything is checked from the central directory before the first
byte is written, and sizes are enforced again while streaming because only
the decompressor knows the truth. Files are created relative to an open
directory descriptor with O_EXCL|O_NOFOLLOW, so nothing can be written
outside the destination even if the tree changes under us.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from descriptors.errors import DescriptorError

_CHUNK = 1 << 16
_MIB = 1 << 20
_GIB = 1 << 30

# Methods zipfile decodes itself; anything else is refused rather than
# half-supported.
_ALLOWED_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
_FLAG_ENCRYPTED = 0x1
_FLAG_STRONG_ENCRYPTION = 0x40
_FLAG_UTF8 = 0x800
_LOCAL_HEADER_MIN = 30
_EOCD_SIGNATURE = b"PK\x05\x06"
_EOCD_SIZE = 22
_MAX_COMMENT = 0xFFFF
_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_COMPONENT_BYTES = 255
_MAX_NAME_BYTES = 4096


@dataclass(frozen=True)
class CsarLimits:
    """Resource limits and policy for reading one package.

    The ratio limit only applies to entries above `ratio_min_bytes`
    uncompressed: small text files (YAML, manifests) legitimately compress
    far better than 200:1 and cannot hurt anyone at that size.
    """

    max_zip_bytes: int = 1 * _GIB
    max_uncompressed_bytes: int = 2 * _GIB
    max_file_bytes: int = 1 * _GIB
    max_entries: int = 10_000
    max_ratio: int = 200
    ratio_min_bytes: int = 1 * _MIB
    max_depth: int = 32
    # SOL004 makes the manifest mandatory; relaxing this accepts plain TOSCA CSARs.
    require_manifest: bool = True
    # An unlisted file is content no digest or signature vouches for.
    require_complete_manifest: bool = True
    require_signature: bool = False


class CsarFile(BaseModel):
    """One regular file of an extracted package."""

    model_config = ConfigDict(frozen=True)

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    name: str
    is_dir: bool


def _fail(detail: str, name: str | None = None) -> DescriptorError:
    return DescriptorError(detail, location=name)


def _entry_count_from_eocd(path: Path, size: int) -> int | None:
    """Read the entry count from the end-of-central-directory record.

    Done before zipfile parses the central directory, which it holds in
    memory entry by entry: a 1 GiB archive of empty entries would otherwise
    cost gigabytes before the count could be checked. Returns None when the
    record is zip64 (the count is then checked after zipfile reads it).
    """
    tail_len = min(size, _EOCD_SIZE + _MAX_COMMENT)
    with path.open("rb") as f:
        f.seek(size - tail_len)
        tail = f.read(tail_len)
    pos = tail.rfind(_EOCD_SIGNATURE)
    if pos < 0 or len(tail) - pos < _EOCD_SIZE:
        return None
    total = int(struct.unpack("<H", tail[pos + 10 : pos + 12])[0])
    return None if total == 0xFFFF else total


def _decode_name(info: zipfile.ZipInfo) -> str:
    """The entry name as the archiver wrote it, strictly UTF-8.

    zipfile decodes names without the UTF-8 flag as cp437, which accepts any
    byte string, and silently cuts names at a NUL; `orig_filename` keeps the
    text before the cut, so the raw bytes can be recovered and re-checked.
    """
    raw_text = info.orig_filename
    if info.flag_bits & _FLAG_UTF8:
        name = raw_text
    else:
        try:
            raw = raw_text.encode("cp437")
        except UnicodeEncodeError:
            raise _fail("entry name cannot be decoded", repr(raw_text)) from None
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(
                f"entry name is not valid UTF-8: {raw!r}", raw.decode("utf-8", "replace")
            ) from None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise _fail("entry name contains control characters", repr(name))
    return name


def _check_name(name: str, is_dir: bool, limits: CsarLimits) -> None:
    if "\\" in name:
        raise _fail("entry name contains a backslash (Windows path separator)", name)
    if name.startswith("/") or _DRIVE.match(name):
        raise _fail("entry name is an absolute path", name)
    if len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        raise _fail("entry name is too long", name[:80] + "...")
    parts = name.rstrip("/").split("/") if is_dir else name.split("/")
    for part in parts:
        if part == "..":
            raise _fail("entry name climbs out of the package ('..' path, zip slip)", name)
        if part in ("", "."):
            raise _fail("entry name has an empty or '.' path component", name)
        if len(part.encode("utf-8")) > _MAX_COMPONENT_BYTES:
            raise _fail("entry name has a path component over 255 bytes", name)
    depth = len(parts) if is_dir else len(parts) - 1
    if depth > limits.max_depth:
        raise _fail(f"entry is nested {depth} directories deep (limit {limits.max_depth})", name)


def _check_type(info: zipfile.ZipInfo, name: str) -> None:
    mode = info.external_attr >> 16
    # Mode bits are meaningful only from Unix archivers, but a link smuggled
    # in with another create_system is still refused: type 0 means "plain".
    kind = stat.S_IFMT(mode)
    if kind == 0 or stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    if stat.S_ISLNK(mode):
        raise _fail("entry is a symbolic link", name)
    what = {
        stat.S_IFCHR: "character device",
        stat.S_IFBLK: "block device",
        stat.S_IFIFO: "FIFO",
        stat.S_IFSOCK: "socket",
    }.get(kind, f"file of unknown type 0o{kind:o}")
    raise _fail(f"entry is a {what}, not a regular file", name)


def _check_member(info: zipfile.ZipInfo, limits: CsarLimits) -> _Member:
    name = _decode_name(info)
    is_dir = name.endswith("/")
    _check_name(name, is_dir, limits)
    _check_type(info, name)
    if info.flag_bits & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        raise _fail("entry is encrypted", name)
    if info.compress_type not in _ALLOWED_METHODS:
        raise _fail(f"entry uses unsupported compression method {info.compress_type}", name)
    if is_dir:
        return _Member(info, name, True)
    if info.file_size > limits.max_file_bytes:
        raise _fail(
            f"entry declares {info.file_size} bytes, over the per-file limit of "
            f"{limits.max_file_bytes}",
            name,
        )
    if info.file_size > limits.ratio_min_bytes and info.file_size > limits.max_ratio * max(
        info.compress_size, 1
    ):
        raise _fail(
            f"entry compression ratio {info.file_size // max(info.compress_size, 1)}:1 is over "
            f"the limit of {limits.max_ratio}:1 (zip bomb?)",
            name,
        )
    return _Member(info, name, False)


def _check_layout(zf: zipfile.ZipFile, members: list[_Member]) -> None:
    """Refuse entries whose data overlaps another's or the central directory.

    Overlapping entries let many headers point at one compressed stream, the
    trick behind non-recursive zip bombs; zipfile before 3.12 does not notice.
    """
    start_dir: int = getattr(zf, "start_dir", 0) or 0
    ordered = sorted(members, key=lambda m: m.info.header_offset)
    for current, following in zip(ordered, [*ordered[1:], None], strict=True):
        end = current.info.header_offset + _LOCAL_HEADER_MIN + current.info.compress_size
        limit = following.info.header_offset if following else start_dir
        if following and following.info.header_offset == current.info.header_offset:
            raise _fail("two entries share one local header (overlapping entries)", current.name)
        if limit and end > limit:
            raise _fail("entry data overlaps another entry (zip bomb?)", current.name)


def _check_names_unique(members: list[_Member]) -> None:
    seen: dict[str, str] = {}
    files = {m.name for m in members if not m.is_dir}
    for member in members:
        key = member.name.rstrip("/").casefold()
        if key in seen:
            how = "" if seen[key] == member.name else f" (differs only in case from {seen[key]})"
            raise _fail(f"duplicate entry name{how}", member.name)
        seen[key] = member.name
        parts = member.name.rstrip("/").split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in files:
                raise _fail(f"entry lives under {parent!r}, which is a file", member.name)


def inspect_zip(zip_path: Path, limits: CsarLimits) -> list[str]:
    """Names of the regular files in an archive, after every structural check.

    Used to decide how to treat an archive (e.g. a SOL004 option 2 wrapper)
    before extracting it; raises DescriptorError like `extract_zip`.
    """
    with _open_zip(zip_path, limits) as (_, members):
        return [m.name for m in members if not m.is_dir]


@contextlib.contextmanager
def _open_zip(
    zip_path: Path, limits: CsarLimits
) -> Iterator[tuple[zipfile.ZipFile, list[_Member]]]:
    where = zip_path.name
    try:
        st = os.stat(zip_path)
    except OSError as exc:
        raise _fail(f"cannot read package: {exc.strerror}", where) from None
    if not stat.S_ISREG(st.st_mode):
        raise _fail("package is not a regular file", where)
    if st.st_size > limits.max_zip_bytes:
        raise _fail(
            f"package is {st.st_size} bytes, over the limit of {limits.max_zip_bytes}", where
        )
    declared = _entry_count_from_eocd(zip_path, st.st_size)
    if declared is not None and declared > limits.max_entries:
        raise _fail(f"archive has {declared} entries, over the limit of {limits.max_entries}")
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise _fail(f"package is not a valid zip archive ({exc})", where) from None
    except UnicodeDecodeError:
        raise _fail("entry name is not valid UTF-8 despite the UTF-8 flag", where) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise _fail(f"archive has {len(infos)} entries, over the limit of {limits.max_entries}")
        members = [_check_member(info, limits) for info in infos]
        _check_names_unique(members)
        _check_layout(zf, members)
        declared_total = sum(m.info.file_size for m in members if not m.is_dir)
        if declared_total > limits.max_uncompressed_bytes:
            raise _fail(
                f"archive declares {declared_total} uncompressed bytes, over the limit of "
                f"{limits.max_uncompressed_bytes}"
            )
        yield zf, members


def _open_dir(parent_fd: int, name: str, *, create: bool) -> int:
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent_fd)
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)


def _open_parent(root_fd: int, parts: list[str]) -> int:
    """Descend from root_fd through `parts`, creating directories, never following links."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            child = _open_dir(fd, part, create=True)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


class _Budget:
    def __init__(self, limits: CsarLimits) -> None:
        self.limits = limits
        self.total = 0

    def take(self, member: _Member, written: int, amount: int) -> None:
        limits = self.limits
        self.total += amount
        written += amount
        if written > limits.max_file_bytes:
            raise _fail(
                f"entry expands past the per-file limit of {limits.max_file_bytes} bytes",
                member.name,
            )
        if self.total > limits.max_uncompressed_bytes:
            raise _fail(
                f"archive expands past the total limit of {limits.max_uncompressed_bytes} bytes "
                "(zip bomb?)",
                member.name,
            )
        compressed = max(member.info.compress_size, 1)
        if written > limits.ratio_min_bytes and written > limits.max_ratio * compressed:
            raise _fail(
                f"entry expands past a compression ratio of {limits.max_ratio}:1 (zip bomb?)",
                member.name,
            )


def _extract_member(
    zf: zipfile.ZipFile, member: _Member, root_fd: int, budget: _Budget
) -> CsarFile:
    parts = member.name.split("/")
    parent_fd = _open_parent(root_fd, parts[:-1])
    digest = hashlib.sha256()
    written = 0
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        out_fd = os.open(parts[-1], flags, 0o644, dir_fd=parent_fd)
        with os.fdopen(out_fd, "wb") as out, zf.open(member.info) as src:
            while True:
                # Bounded reads: the decompressor honours the size cap, so a
                # lying header costs at most one chunk past a limit.
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                budget.take(member, written, len(chunk))
                written += len(chunk)
                digest.update(chunk)
                out.write(chunk)
    finally:
        os.close(parent_fd)
    return CsarFile(path=member.name, size=written, sha256=digest.hexdigest())


def extract_zip(zip_path: Path, dest_dir: Path, limits: CsarLimits) -> list[CsarFile]:
    """Extract every entry of `zip_path` into the existing, empty `dest_dir`.

    Returns the regular files sorted by path. On error, raises
    DescriptorError and may leave partial output: the caller owns `dest_dir`
    and clears it (see `clear_directory`).
    """
    with _open_zip(zip_path, limits) as (zf, members):
        root_fd = os.open(dest_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        budget = _Budget(limits)
        files: list[CsarFile] = []
        try:
            for member in members:
                try:
                    if member.is_dir:
                        os.close(_open_parent(root_fd, member.name.rstrip("/").split("/")))
                    else:
                        files.append(_extract_member(zf, member, root_fd, budget))
                except DescriptorError:
                    raise
                except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
                    raise _fail(f"corrupt archive entry ({exc})", member.name) from None
                except (NotImplementedError, RuntimeError) as exc:
                    raise _fail(f"cannot decompress entry ({exc})", member.name) from None
                except OSError as exc:
                    raise _fail(
                        f"cannot extract entry: {exc.strerror or exc}", member.name
                    ) from None
                except Exception as exc:  # zlib/lzma/bz2 raise their own error types
                    raise _fail(
                        f"cannot decompress entry ({type(exc).__name__}: {exc})", member.name
                    ) from None
        finally:
            os.close(root_fd)
    return sorted(files, key=lambda f: f.path)


def clear_directory(path: Path) -> None:
    """Remove everything inside `path` without following symbolic links."""
    if not path.is_dir() or path.is_symlink():
        return
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                child.unlink()
