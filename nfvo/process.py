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


def start_service(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start `nfvctl serve` for these settings, output appended to `log`."""
    env = {
        **os.environ,
        "NFVO_DATA_DIR": str(settings.data_dir),
        "NFVO_DATABASE_URL": settings.database_url,
    }
    if settings.trust_anchor is not None:
        env["NFVO_TRUST_ANCHOR"] = str(settings.trust_anchor)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "nfvo.cli.main", "serve", "--port", str(port)],
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
