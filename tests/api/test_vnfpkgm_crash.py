"""A service killed with SIGKILL mid-upload leaves no package ONBOARDED and no stray files."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import update

from nfvo.admin import create_api_client
from nfvo.process import free_port, start_service, wait_ready
from nfvo.settings import Settings
from nfvo.vnfpkgm.models import VnfPackageRow
from store.base import make_engine, make_session_factory, transaction
from tests.api.conftest import PKGS, VERSION


@contextmanager
def _service(settings: Settings, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_service(settings, port, log)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _client(port: int, secret: str) -> httpx.Client:
    token = httpx.post(
        f"http://127.0.0.1:{port}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("crash", secret),
    ).json()["access_token"]
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}", "Version": VERSION},
        timeout=30,
    )


def _state(settings: Settings, pkg_id: str) -> str:
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            row = session.get(VnfPackageRow, pkg_id)
            assert row is not None
            return row.onboarding_state
    finally:
        engine.dispose()


def test_kill_during_upload_then_recover(
    database_url: str, tmp_path: Path, sample_csars: dict[str, Path]
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    secret = create_api_client("crash", ["vnfpkgm:v2:all"], settings=settings)
    port = free_port()
    content = sample_csars["nat"].read_bytes()
    half_sent = threading.Event()
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield content[: len(content) // 2]
        half_sent.set()
        release.wait(30)
        yield content[len(content) // 2 :]

    with _service(settings, port, tmp_path / "nfvo.log") as proc:
        http = _client(port, secret)
        pkg_id = http.post(PKGS, json={}).json()["id"]
        errors: list[BaseException] = []

        def upload() -> None:
            try:
                http.put(
                    f"{PKGS}/{pkg_id}/package_content",
                    content=slow_body(),
                    headers={"Content-Type": "application/zip"},
                )
            except httpx.HTTPError as exc:
                errors.append(exc)

        uploader = threading.Thread(target=upload)
        uploader.start()
        assert half_sent.wait(30)
        deadline = time.monotonic() + 30
        while _state(settings, pkg_id) != "UPLOADING":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        release.set()
        uploader.join(timeout=30)
        http.close()
    assert errors, "the upload should have failed with the service gone"
    staging = settings.content_dir / ".staging"
    assert any(staging.iterdir()), "the killed upload should have left a partial file"

    with _service(settings, port, tmp_path / "nfvo.log"):
        http = _client(port, secret)
        info = http.get(f"{PKGS}/{pkg_id}", params={"all_fields": ""}).json()
        assert info["onboardingState"] == "CREATED"
        assert "interrupted" in info["onboardingFailureDetails"]["title"].lower()
        assert not any(staging.iterdir())
        # The same package resource takes the content on a second try.
        resp = http.put(
            f"{PKGS}/{pkg_id}/package_content",
            content=content,
            headers={"Content-Type": "application/zip"},
        )
        assert resp.status_code == 202
        deadline = time.monotonic() + 60
        while http.get(f"{PKGS}/{pkg_id}").json()["onboardingState"] != "ONBOARDED":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        http.close()


def test_leftovers_of_a_crash_during_processing_are_removed(
    database_url: str, tmp_path: Path, sample_csars: dict[str, Path]
) -> None:
    """A crash after the files moved but before the database said ONBOARDED."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    secret = create_api_client("crash", ["vnfpkgm:v2:all"], settings=settings)
    port = free_port()
    with _service(settings, port, tmp_path / "nfvo.log") as proc:
        http = _client(port, secret)
        pkg_id = http.post(PKGS, json={}).json()["id"]
        http.close()
        proc.kill()
    engine = make_engine(settings.database_url)
    with transaction(make_session_factory(engine)) as session:
        session.execute(
            update(VnfPackageRow)
            .where(VnfPackageRow.id == pkg_id)
            .values(onboarding_state="PROCESSING")
        )
    engine.dispose()
    half_committed = settings.content_dir / pkg_id / "content"
    half_committed.mkdir(parents=True)
    (half_committed / "partial.yaml").write_text("x: 1\n")
    with _service(settings, port, tmp_path / "nfvo.log"):
        http = _client(port, secret)
        assert http.get(f"{PKGS}/{pkg_id}").json()["onboardingState"] == "CREATED"
        assert not (settings.content_dir / pkg_id).exists()
        http.close()
