"""Real Celery LCM workers as subprocesses (`celery -A vnfm.celery_app worker`).

`running_worker` starts one with the given environment, waits until it says it is ready,
and stops it at the end (SIGTERM, then SIGKILL of its process group); `kill_hard` is the
crash: SIGKILL of the worker's whole process group, with no chance to clean up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from nfvo.process import worker_argv

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


@dataclass
class CeleryWorker:
    proc: subprocess.Popen[bytes]
    log: Path
    name: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def start_worker(env: Mapping[str, str], log: Path, *, name: str) -> CeleryWorker:
    """Start a worker (solo pool) and wait until it consumes; its output goes to `log`."""
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            worker_argv(name),
            cwd=REPO,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = CeleryWorker(proc=proc, log=log, name=name)
    deadline = time.monotonic() + READY_TIMEOUT
    while " ready." not in worker.output():
        if proc.poll() is not None:
            raise RuntimeError(
                f"celery worker {name} exited ({proc.returncode}):\n{worker.output()[-4000:]}"
            )
        if time.monotonic() > deadline:
            stop_worker(worker)
            raise RuntimeError(f"celery worker {name} not ready:\n{worker.output()[-4000:]}")
        time.sleep(0.1)
    return worker


def stop_worker(worker: CeleryWorker) -> None:
    """Warm shutdown (SIGTERM), then SIGKILL of the group if it does not exit in time."""
    if worker.proc.poll() is None:
        _signal_group(worker.proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.proc.wait(timeout=STOP_TIMEOUT)
    kill_hard(worker)


def kill_hard(worker: CeleryWorker) -> None:
    """kill -9 the worker and everything in its process group (not the VNFs: own sessions)."""
    _signal_group(worker.proc, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        worker.proc.wait(timeout=STOP_TIMEOUT)


@contextmanager
def running_worker(env: Mapping[str, str], log: Path, *, name: str) -> Iterator[CeleryWorker]:
    worker = start_worker(env, log, name=name)
    try:
        yield worker
    finally:
        stop_worker(worker)


# -- an LCM lab: the real NFVO service, real workers, a LocalVim with a test prefix ---------

NAT_SOURCE = REPO / "descriptors" / "packages" / "nat"
NAT_VNFD_ID = "6f1b8a52-3c1e-4d7a-9f0e-2b5c8d4a1e01"
PKGS = "/vnfpkgm/v2/vnf_packages"
INSTANCES = "/vnflcm/v2/vnf_instances"
OP_OCCS = "/vnflcm/v2/vnf_lcm_op_occs"
SERVER_PORT = 8080
PKGM_VERSION = "2.4.0"
LCM_VERSION = "2.3.0"


def runnable_nat_csar(tmp: Path, *, vnfd_id: str, slow_stop: bool = False) -> Path:
    """The NAT package with VDUs that run an HTTP server, under another vnfdId, as a CSAR.

    For LCM tests that need the NAT's structure (VDUs, links, aspects) but units that do
    nothing else: the copy's VDUs run `python -m http.server` instead of the NAT's
    fast and slow paths; the rest of the package is the NAT's. The real package is
    deployed by tests/integration/vnfs/test_nat_deployed.py.
    With `slow_stop` the server ignores SIGTERM, so the VIM stops each replica only after its
    stop timeout (SIGKILL): a termination that takes seconds per replica.
    """
    from descriptors.build import build_csar

    tree = tmp / f"nat-{vnfd_id[:8]}"
    shutil.copytree(NAT_SOURCE, tree)
    server = f"{sys.executable} -m http.server --bind 0.0.0.0 {SERVER_PORT}"
    if slow_stop:
        command = json.dumps(["/bin/sh", "-c", f"trap '' TERM; exec {server}"])
    else:
        command = json.dumps(server.split())
    for flavour in sorted((tree / "Definitions").glob("nat_df_*.yaml")):
        text = flavour.read_text()
        for unit in ("fastpath", "slowpath"):
            old = f"command: [python, -m, vnfs.nat.{unit}]"
            assert old in text, f"{flavour.name} has no {old!r}"
            text = text.replace(old, f"command: {command}")
        flavour.write_text(text)
    types = tree / "Definitions" / "nat_types.yaml"
    assert types.read_text().count(NAT_VNFD_ID) == 2
    types.write_text(types.read_text().replace(NAT_VNFD_ID, vnfd_id))
    return build_csar(tree, tmp / f"nat-{vnfd_id[:8]}.csar")


@dataclass
class LcmLab:
    """The NFVO service (in this process, over HTTP) and LCM workers on one SQLite database."""

    url: str
    settings: Any
    vim: Any
    broker_url: str
    logs: Path
    http: httpx.Client
    lease_seconds: float = 30.0
    ready_timeout: float = 60.0
    workers: list[CeleryWorker] = field(default_factory=list)
    # The NFVO app in this process, and the secrets of its OAuth 2.0 clients (`auth_clients`).
    app: Any = None
    secrets: dict[str, str] = field(default_factory=dict)

    def worker_env(self) -> dict[str, str]:
        return {
            "NFVO_DATA_DIR": str(self.settings.data_dir),
            "NFVO_DATABASE_URL": self.settings.database_url,
            "NFVO_BROKER_URL": self.broker_url,
            "NFVO_LOCAL_VIM_STATE_DIR": str(self.settings.local_vim_state_dir),
            "NFVO_LOCAL_VIM_PREFIX": self.vim.prefix,
            "NFVO_LCM_LEASE_SECONDS": str(self.lease_seconds),
            "NFVO_LCM_READY_TIMEOUT": str(self.ready_timeout),
            "NFVO_PUBLIC_URL": self.url,
            "NFVO_AUTH": "off",
        }

    def start_worker(self, name: str) -> CeleryWorker:
        worker = start_worker(self.worker_env(), self.logs / f"{name}.log", name=name)
        self.workers.append(worker)
        return worker

    # -- the NFVO's APIs ---------------------------------------------------------------------

    def onboard(self, csar: Path) -> None:
        headers = {"Version": PKGM_VERSION}
        pkg_id = self.http.post(PKGS, json={}, headers=headers).json()["id"]
        resp = self.http.put(
            f"{PKGS}/{pkg_id}/package_content",
            content=csar.read_bytes(),
            headers={**headers, "Content-Type": "application/zip"},
        )
        assert resp.status_code == 202, resp.text
        deadline = time.monotonic() + 90
        while True:
            info = self.http.get(f"{PKGS}/{pkg_id}", headers=headers).json()
            if info["onboardingState"] == "ONBOARDED":
                break
            assert "onboardingFailureDetails" not in info, info["onboardingFailureDetails"]
            assert time.monotonic() < deadline, f"package stuck in {info['onboardingState']}"
            time.sleep(0.05)
        resp = self.http.patch(
            f"{PKGS}/{pkg_id}", json={"operationalState": "ENABLED"}, headers=headers
        )
        assert resp.status_code == 200, resp.text

    def create_instance(self, vnfd_id: str) -> str:
        resp = self.http.post(INSTANCES, json={"vnfdId": vnfd_id})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def instance(self, instance_id: str) -> dict[str, Any]:
        resp = self.http.get(f"{INSTANCES}/{instance_id}")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def start(self, instance_id: str, task: str, body: dict[str, Any]) -> str:
        """POST an LCM task of the instance; the new occurrence's id."""
        resp = self.http.post(f"{INSTANCES}/{instance_id}/{task}", json=body)
        assert resp.status_code == 202, resp.text
        return resp.headers["Location"].rstrip("/").rsplit("/", 1)[1]

    def op(self, op_id: str) -> dict[str, Any]:
        resp = self.http.get(f"{OP_OCCS}/{op_id}")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def op_task(self, op_id: str, task: str) -> None:
        resp = self.http.post(f"{OP_OCCS}/{op_id}/{task}")
        assert resp.status_code == 202, resp.text

    def op_fail(self, op_id: str) -> dict[str, Any]:
        """POST .../fail, which answers at once (200) with the occurrence, now FAILED."""
        resp = self.http.post(f"{OP_OCCS}/{op_id}/fail")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def wait_op(self, op_id: str, *states: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            op = self.op(op_id)
            if op["operationState"] in states:
                return op
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {w.name}\n{w.output()[-3000:]}" for w in self.workers)
                raise AssertionError(
                    f"op {op_id} still {op['operationState']} (wanted {states}): {op}\n{tails}"
                )
            time.sleep(0.1)


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _ensure_lcm_wiring(app: Any, settings: Any) -> None:
    """The task routes and the dispatcher, for as long as nfvo.app does not wire them itself."""
    from vnfm import api_opoccs, api_tasks
    from vnfm.occurrences import OccurrenceService
    from vnfm.worker import dispatcher_for

    paths = {getattr(route, "path", "") for route in app.routes}
    if f"{INSTANCES}/{{vnfInstanceId}}/instantiate" not in paths:
        app.include_router(api_tasks.router)
    if f"{OP_OCCS}/{{vnfLcmOpOccId}}" not in paths:
        app.include_router(api_opoccs.router)
    if not hasattr(app.state, "occurrences"):
        app.state.occurrences = OccurrenceService(
            app.state.session_factory,
            base_url=settings.public_url,
            wake_notifications=app.state.wake_notifications,
        )
    if not hasattr(app.state, "dispatch"):
        app.state.dispatch = dispatcher_for(settings)


# The lab's own client when authentication is on (`lcm_lab(auth_clients=...)`).
LAB_CLIENT = "lab"
LAB_SCOPES = ("vnfpkgm:v2:all", "vnflcm:v2:all")


def _lab_clients(app: Any, clients: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Create OAuth 2.0 clients (id -> scopes) in the lab's NFVO; their secrets."""
    from sol013.oauth2 import create_client
    from store.base import transaction

    with transaction(app.state.session_factory) as session:
        return {cid: create_client(session, cid, list(scopes)) for cid, scopes in clients.items()}


def lab_token(url: str, client_id: str, secret: str) -> str:
    """An access token of one of the lab's OAuth 2.0 clients."""
    resp = httpx.post(
        f"{url}/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


@contextmanager
def lcm_lab(
    tmp: Path,
    *,
    broker_url: str | None,
    lease_seconds: float = 30.0,
    ready_timeout: float = 60.0,
    vim_prefix: str | None = None,
    auth_clients: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[LcmLab]:
    """An NFVO with LCM workers on a LocalVim with a per-test prefix; all stopped at the end.

    `broker_url` None: the embedded broker (SQLite file in the data directory); any
    other Celery broker URL (redis://, amqp://) is handed to the API and the workers.
    `vim_prefix`: the local VIM's name prefix (default: a random one).
    `auth_clients`: OAuth 2.0 clients (id -> scopes) to create; given, the NFVO runs with
    authentication on (`lab.http` then has a token of its own client, `LAB_CLIENT`) and knows
    its real URL as its public URL (the callback URIs it hands out are reachable).
    """
    from nfvo.app import create_app
    from nfvo.settings import Settings
    from tests.support.live_server import loopback_socket, serve
    from tests.support.local_vim import local_vim
    from vnfm import celery_app

    logs = tmp / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    data_dir = tmp / "data"
    secured = auth_clients is not None
    sock = loopback_socket() if secured else None
    with local_vim(tmp / "vim", prefix=vim_prefix) as vim:
        extra: dict[str, Any] = {}
        if sock is not None:
            extra["public_url"] = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = Settings(
            data_dir=data_dir,
            database_url=f"sqlite:///{data_dir / 'nfvo.db'}",
            auth_enabled=secured,
            local_vim_state_dir=vim.state_dir,
            local_vim_prefix=vim.prefix,
            notification_poll_seconds=0.05,
            **extra,
        )
        broker = broker_url or celery_app.broker_url(data_dir)
        app = create_app(settings)
        with _env("NFVO_BROKER_URL", broker), serve(app, sock=sock) as url:
            _ensure_lcm_wiring(app, settings)
            headers = {"Version": LCM_VERSION}
            secrets: dict[str, str] = {}
            if auth_clients is not None:
                secrets = _lab_clients(app, {LAB_CLIENT: LAB_SCOPES, **auth_clients})
                token = lab_token(url, LAB_CLIENT, secrets[LAB_CLIENT])
                headers["Authorization"] = f"Bearer {token}"
            http = httpx.Client(base_url=url, headers=headers, timeout=60)
            lab = LcmLab(
                url=url,
                settings=settings,
                vim=vim,
                broker_url=broker,
                logs=logs,
                http=http,
                lease_seconds=lease_seconds,
                ready_timeout=ready_timeout,
                app=app,
                secrets=secrets,
            )
            try:
                yield lab
            finally:
                http.close()
                for worker in lab.workers:
                    stop_worker(worker)
