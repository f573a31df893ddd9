"""Composition root of NS orchestration in an LCM worker process.

NS LCM occurrences run on the VNF LCM Celery workers (`vnfm.celery_app` registers the
tasks), in the single-service deployment: the NFVO's store, its VIM registry and the
VNFM reached through the in-process SOL003 client, whose VNF operations go to the workers
over the broker like any other.

An NS operation waits for the VNF operations it starts, which other workers (or this
one) run; the worker pool is solo, so the Celery task only starts the NS operation on a
thread of its own (`start_in_background`) and returns: the worker stays free to take VNF
operations. The thread holds the occurrence's lease; if the process dies, the lease
expires and recovery moves the occurrence to FAILED_TEMP, as for a VNF operation.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable

from nfvo.grant.service import GrantService
from nfvo.nslcm.engine import Engine, EngineDeps
from nfvo.nslcm.occurrences import NsOccurrenceService
from nfvo.nslcm.worker import NsWorkerServices, rollback_operation, run_operation
from nfvo.settings import Settings
from nfvo.vims.placement import Placer
from nfvo.vims.startup import open_vims
from nfvo.vnfm_client.in_process import InProcessVnfmClient
from nfvo.vnfm_link import InProcessNfvo
from nfvo.worker_main import worker_settings
from store.base import make_engine, make_session_factory
from store.migrate import upgrade
from vnfm.instances import InstanceService
from vnfm.occurrences import OccurrenceService
from vnfm.worker import dispatcher_for

__all__ = ["build_ns_services", "start_in_background"]

_DEFAULT_LEASE = 30.0


def build_ns_services(
    settings: Settings | None = None, *, migrate: bool = True
) -> NsWorkerServices:
    """``migrate`` False: the schema is known to be current (alembic's upgrade is not
    thread-safe, and the VNF LCM services of this process already ran it)."""
    settings = worker_settings(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    sessions = make_session_factory(engine)
    vims = open_vims(sessions, settings)
    grants = GrantService.from_settings(sessions, settings, vims)
    vnfm = InProcessVnfmClient(
        InstanceService(sessions, InProcessNfvo(sessions, grants, settings.public_url)),
        OccurrenceService(sessions, base_url=settings.public_url),
        dispatcher_for(settings),
        base_url=settings.public_url,
        endpoint=None,
        vims=vims,
    )
    occurrences = NsOccurrenceService(sessions, base_url=settings.public_url)

    def vim_type_of(vim_id: str) -> str:
        row = vims.registry.find(vim_id)
        return row.vim_type if row is not None else "local"

    deps = EngineDeps(
        sessions=sessions,
        occurrences=occurrences,
        vnfm=vnfm,
        adapter_for=vims.adapter,
        placer=lambda: Placer.from_directory(vims, grants.policy),
        vim_type_of=vim_type_of,
        default_vim_id=vims.default_vim_id,
    )
    lease = float(os.environ.get("NFVO_LCM_LEASE_SECONDS", "") or _DEFAULT_LEASE)
    return NsWorkerServices(
        occurrences=occurrences,
        engine=Engine(deps),
        worker_id=f"{socket.gethostname()}:{os.getpid()}:ns:{uuid.uuid4().hex[:8]}",
        lease_seconds=lease,
        heartbeat_seconds=min(lease / 6, 5.0),
    )


_services: NsWorkerServices | None = None
_lock = threading.Lock()


def services() -> NsWorkerServices:
    """This worker process's NS services, built on first use after its VNF LCM ones."""
    global _services
    from vnfm import celery_app

    # Builds (and migrates) under its own lock first: never two migrations at once.
    celery_app.services()
    with _lock:
        if _services is None:
            _services = build_ns_services(migrate=False)
        return _services


def start_in_background(op_id: str, kind: str) -> threading.Thread:
    """Run (kind "run") or roll back ("rollback") an occurrence on its own thread."""
    target: Callable[[str, NsWorkerServices], None] = (
        rollback_operation if kind == "rollback" else run_operation
    )
    current = services()
    thread = threading.Thread(
        target=target, args=(op_id, current), name=f"ns-{kind}-{op_id[:8]}", daemon=True
    )
    thread.start()
    return thread


def recover() -> int:
    """Settle NS occurrences of lost workers (called by the workers' recovery loop)."""
    return services().occurrences.recover()
