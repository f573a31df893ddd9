"""Run the NFVO as a separate process (demo, benchmarks, crash tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from nfvo.settings import Settings

REPO = Path(__file__).resolve().parent.parent


class ServiceError(Exception):
    """The service process did not come up."""


def _service_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process use these settings."""
    env = {
        **os.environ,
        "NFVO_DATA_DIR": str(settings.data_dir),
        "NFVO_DATABASE_URL": settings.database_url,
    }
    if settings.trust_anchor is not None:
        env["NFVO_TRUST_ANCHOR"] = str(settings.trust_anchor)
    if settings.local_vim_state_dir is not None:
        env["NFVO_LOCAL_VIM_STATE_DIR"] = str(settings.local_vim_state_dir)
    return env


def start_service(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start `nfvctl serve` for these settings, output appended to `log`."""
    env = _service_env(settings)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "nfvo.cli.main", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def worker_argv(name: str = "worker") -> list[str]:
    """A Celery LCM worker: one operation at a time, no cluster chatter (the database
    and the broker are what workers share)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "vnfm.celery_app",
        "worker",
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--hostname",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def start_worker(
    settings: Settings,
    log: Path,
    *,
    name: str = "worker",
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start an LCM worker process for these settings, output appended to `log`."""
    env = {**_service_env(settings), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    with log.open("ab") as out:
        return subprocess.Popen(
            worker_argv(name),
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(
    url: str, proc: subprocess.Popen[bytes] | None = None, *, timeout: float = 60.0
) -> None:
    """Wait until the service answers on `url`; fail early if its process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"the NFVO exited during start-up (status {proc.returncode})")
        try:
            if httpx.get(f"{url}/vnfpkgm/api_versions", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise ServiceError(f"the NFVO did not answer on {url} within {timeout:.0f}s")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_worker_ready(
    log: Path, proc: subprocess.Popen[bytes], *, timeout: float = 60.0, since: int = 0
) -> None:
    """Wait until the worker logs that it consumes (Celery's "ready." line after `since`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"the LCM worker exited during start-up (see {log})")
        with log.open("rb") as out:
            out.seek(since)
            if b" ready." in out.read():
                return
        time.sleep(0.1)
    raise ServiceError(f"the LCM worker did not become ready within {timeout:.0f}s (see {log})")
