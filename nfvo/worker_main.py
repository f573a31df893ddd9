"""Composition root of an LCM worker process: the NFVO's store and grants, the VNFM's executor.

The VNFM (`vnfm.worker`, `vnfm.celery_app`) knows the NFVO only through `NfvoClient`; this
module is the one place that builds both sides for a worker running in the single-service
deployment (in-process Or-Vnfm on the shared database).

Environment, on top of the NFVO's own (`nfvo.settings.Settings.from_env`):

- NFVO_LOCAL_VIM_STATE_DIR: the default (local) VIM's state; default ``<data dir>/local-vim``.
- NFVO_LOCAL_VIM_PREFIX: name prefix of the local VIM's namespaces and bridges (1-8 letters
  or digits, default ``nfv``), so two stacks on one host do not share names.
- NFVO_SECRET_KEY: the key of the stored VIM credentials, as the API's (or both use the data
  directory's ``secret.key``).

Each operation runs on the VIM its VNF instance names (the VIM registry, ``nfvo.vims``);
grants are checked against the same VIM.
- NFVO_LCM_LEASE_SECONDS: lease of an occurrence (default 30); renewed every lease/6, at
  most every 5 s.
- NFVO_LCM_READY_TIMEOUT: how long an operation waits for its units to be ready (120 s).
"""

from __future__ import annotations

import os
import socket
import uuid

from nfvo.grant.service import GrantService
from nfvo.settings import Settings
from nfvo.vims.startup import default_state_dir, open_vims
from nfvo.vnfm_link import InProcessNfvo
from store.base import make_engine, make_session_factory
from store.migrate import upgrade
from vnfm.executor import Executor
from vnfm.occurrences import OccurrenceService
from vnfm.worker import WorkerServices

DEFAULT_LEASE_SECONDS = 30.0
MAX_HEARTBEAT_SECONDS = 5.0
DEFAULT_READY_TIMEOUT = 120.0


def _positive(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {raw}")
    return value


def worker_settings(settings: Settings | None = None) -> Settings:
    """The service settings with the default VIM's state directory made explicit."""
    settings = settings or Settings.from_env()
    if settings.local_vim_state_dir is None:
        settings = settings.model_copy(update={"local_vim_state_dir": default_state_dir(settings)})
    return settings


def build_services(settings: Settings | None = None) -> WorkerServices:
    """Everything one worker process needs, on the NFVO's database and its VIM registry."""
    settings = worker_settings(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    # The API migrates at start too; a worker started first must not find the tables missing.
    upgrade(engine)
    sessions = make_session_factory(engine)
    vims = open_vims(sessions, settings)
    grants = GrantService.from_settings(sessions, settings, vims)
    nfvo = InProcessNfvo(sessions, grants, settings.public_url)
    lease = _positive("NFVO_LCM_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)
    executor = Executor(
        vims.adapter(vims.default_vim_id),
        nfvo,
        ready_timeout=_positive("NFVO_LCM_READY_TIMEOUT", DEFAULT_READY_TIMEOUT),
        api_root=settings.public_url,
        vims=vims,
    )
    return WorkerServices(
        occurrences=OccurrenceService(sessions, base_url=settings.public_url),
        executor=executor,
        nfvo=nfvo,
        worker_id=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        lease_seconds=lease,
        heartbeat_seconds=min(lease / 6, MAX_HEARTBEAT_SECONDS),
    )
