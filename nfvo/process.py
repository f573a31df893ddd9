"""Run the NFVO as a separate process (demo, benchmarks, crash tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from nfvo.settings import Settings
from nfvo.vnfm_client.registry import VnfmRecord

REPO = Path(__file__).resolve().parent.parent


class ServiceError(Exception):
    """The service process did not come up."""


_VNFM_VARIABLES = (
    "NFVO_VNFM_API_ROOT",
    "NFVO_VNFM_ID",
    "NFVO_VNFM_CLIENT_ID",
    "NFVO_VNFM_CLIENT_SECRET",
    "NFVO_VNFM_TOKEN_URL",
    "NFVO_VNFM_VERIFY_TLS",
    "NFVO_VNFM_CA_FILE",
)


def _flag(value: bool) -> str:
    return "on" if value else "off"


def _optional(value: Path | str | None) -> str | None:
    return None if value is None else str(value)


def _vnfm_env(vnfm: VnfmRecord) -> dict[str, str | None]:
    """The NFVO_VNFM_* variables `VnfmRecord.from_env` reads back as `vnfm`."""
    if vnfm.kind == "in-process":
        return dict.fromkeys(_VNFM_VARIABLES)
    secret = vnfm.client_secret
    return {
        "NFVO_VNFM_API_ROOT": vnfm.api_root,
        "NFVO_VNFM_ID": vnfm.id,
        "NFVO_VNFM_CLIENT_ID": vnfm.client_id,
        "NFVO_VNFM_CLIENT_SECRET": secret.get_secret_value() if secret is not None else None,
        "NFVO_VNFM_TOKEN_URL": vnfm.token_url,
        "NFVO_VNFM_VERIFY_TLS": _flag(vnfm.verify_tls),
        "NFVO_VNFM_CA_FILE": _optional(vnfm.ca_file),
    }


def settings_env(settings: Settings) -> dict[str, str | None]:
    """Every variable `Settings.from_env` reads, with the value that reads back as `settings`
    (None: unset, so the child takes the default).

    Settings that `from_env` does not read (page size, notification timing, token TTL,
    onboarding workers; the default VNFM's scopes, timeout, notification auth, and its id when
    in process) cannot be passed this way: a child has their defaults.
    """
    secret = settings.secret_key
    return {
        "NFVO_DATA_DIR": str(settings.data_dir),
        "NFVO_DATABASE_URL": settings.database_url,
        "NFVO_AUTH": _flag(settings.auth_enabled),
        "NFVO_MAX_UPLOAD_BYTES": str(settings.max_upload_bytes),
        "NFVO_UPLOAD_FILE_ROOTS": os.pathsep.join(str(p) for p in settings.upload_file_roots),
        "NFVO_TRUST_ANCHOR": _optional(settings.trust_anchor),
        "NFVO_PUBLIC_URL": settings.public_url,
        "NFVO_REQUIRE_SIGNED_PACKAGES": _flag(settings.require_signed_packages),
        "NFVO_LOCAL_VIM_STATE_DIR": _optional(settings.local_vim_state_dir),
        "NFVO_LOCAL_VIM_PREFIX": settings.local_vim_prefix,
        "NFVO_SECRET_KEY": secret.get_secret_value() if secret is not None else None,
        "NFVO_GRANT_ASYNC": _flag(settings.grant_async),
        "NFVO_GRANT_CPU_RATIO": repr(settings.grant_cpu_allocation_ratio),
        "NFVO_GRANT_MEMORY_RATIO": repr(settings.grant_memory_allocation_ratio),
        **_vnfm_env(settings.default_vnfm),
    }


def service_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process (API, worker) use these settings.

    The settings win over this process's environment: a variable they leave unset is removed,
    so the child does not pick up a value these settings do not have. Variables that are not
    settings (NFVO_BROKER_URL, NFVO_LCM_*, NFVO_TOKEN_SECRET) are passed on as they are.
    """
    env = dict(os.environ)
    for name, value in settings_env(settings).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def start_service(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start `nfvctl serve` for these settings, output appended to `log`."""
    env = service_env(settings)
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
    env = {**service_env(settings), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
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
