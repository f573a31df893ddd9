"""The content store writes uploads atomically and cleans up after failures."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nfvo.content_store import ContentStore, UploadTooLarge


def test_staged_upload_is_hashed_and_committed(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    data = [b"a" * 1000, b"b" * 10]
    staged = store.stage_chunks(iter(data), max_bytes=2000)
    assert staged.size == 1010
    assert staged.sha256 == hashlib.sha256(b"".join(data)).hexdigest()
    extracted = store.new_staging_dir()
    (extracted / "file.txt").write_text("x")
    pkg_id = str(uuid.uuid4())
    store.commit(pkg_id, staged, extracted)
    assert store.package_zip(pkg_id).read_bytes() == b"".join(data)
    assert (store.content_dir(pkg_id) / "file.txt").read_text() == "x"
    assert list(store.staging.iterdir()) == []


def test_oversized_and_failed_uploads_leave_nothing(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    with pytest.raises(UploadTooLarge):
        store.stage_chunks(iter([b"x" * 600, b"x" * 600]), max_bytes=1000)

    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.stage_chunks(broken(), max_bytes=1000)
    assert list(store.staging.iterdir()) == []


def test_package_paths_only_for_uuids(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    with pytest.raises(ValueError):
        store.package_dir("../../etc")
