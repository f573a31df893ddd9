"""Package files on disk, written so that a crash never leaves a half package.

Layout under the store root: `<pkg-id>/package.zip` (the uploaded CSAR as
received) and `<pkg-id>/content/` (the verified, extracted package). Both are
first written under `<root>/.staging/` and moved into place with rename, which
is atomic on one file system; the database marks a package ONBOARDED only
after that move, and start-up recovery deletes whatever a crash left behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


class UploadTooLarge(Exception):
    """The upload went over the configured size limit."""


@dataclass(frozen=True)
class StagedUpload:
    """An uploaded file in the staging area, not yet part of any package."""

    path: Path
    size: int
    sha256: str


class ContentStore:
    """Owns every file of every package under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging = root / ".staging"
        self.staging.mkdir(parents=True, exist_ok=True)

    def package_dir(self, pkg_id: str) -> Path:
        # Ids are server-made UUIDs; refusing anything else keeps paths inside the root.
        return self.root / str(uuid.UUID(pkg_id))

    def package_zip(self, pkg_id: str) -> Path:
        return self.package_dir(pkg_id) / "package.zip"

    def content_dir(self, pkg_id: str) -> Path:
        return self.package_dir(pkg_id) / "content"

    def new_staging_dir(self) -> Path:
        path = self.staging / f"dir-{uuid.uuid4().hex}"
        path.mkdir()
        return path

    def open_upload(self, *, max_bytes: int) -> StagingWriter:
        """Start writing an upload into staging; use as a context manager."""
        path = self.staging / f"upload-{uuid.uuid4().hex}.zip"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
        return StagingWriter(path, os.fdopen(fd, "wb"), max_bytes)

    def stage_chunks(self, chunks: Iterable[bytes], *, max_bytes: int) -> StagedUpload:
        with self.open_upload(max_bytes=max_bytes) as writer:
            for chunk in chunks:
                writer.write(chunk)
        return writer.result()

    async def stage_stream(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StagedUpload:
        with self.open_upload(max_bytes=max_bytes) as writer:
            async for chunk in chunks:
                writer.write(chunk)
        return writer.result()

    def commit(self, pkg_id: str, upload: StagedUpload, extracted: Path) -> None:
        """Move a verified upload and its extracted tree into the package's place."""
        final = self.package_dir(pkg_id)
        if final.exists():
            shutil.rmtree(final)
        assembled = self.new_staging_dir()
        os.replace(upload.path, assembled / "package.zip")
        os.replace(extracted, assembled / "content")
        os.replace(assembled, final)
        _fsync_dir(self.root)

    def remove(self, pkg_id: str) -> None:
        shutil.rmtree(self.package_dir(pkg_id), ignore_errors=True)

    def discard(self, path: Path) -> None:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def clear_staging(self) -> None:
        """Drop everything a crashed upload or onboarding left in staging."""
        for leftover in self.staging.iterdir():
            self.discard(leftover)


class StagingWriter:
    """Writes one upload, hashing and counting; removes the file on any error."""

    def __init__(self, path: Path, out: BinaryIO, max_bytes: int) -> None:
        self.path = path
        self._out = out
        self._max_bytes = max_bytes
        self._digest = hashlib.sha256()
        self._size = 0
        self._done: StagedUpload | None = None

    def write(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._max_bytes:
            raise UploadTooLarge(f"upload exceeds the limit of {self._max_bytes} bytes")
        self._digest.update(chunk)
        self._out.write(chunk)

    def __enter__(self) -> StagingWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self._out.flush()
                os.fsync(self._out.fileno())
        finally:
            self._out.close()
        if exc_type is None:
            self._done = StagedUpload(self.path, self._size, self._digest.hexdigest())
        else:
            self.path.unlink(missing_ok=True)

    def result(self) -> StagedUpload:
        if self._done is None:
            raise RuntimeError("upload not finished")
        return self._done


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
