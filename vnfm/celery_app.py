"""The Celery application that runs VNF LCM operation occurrences.

Start a worker with::

    NFVO_DATA_DIR=... python -m celery -A vnfm.celery_app worker --pool solo --concurrency 1

(`--pool threads --concurrency N` runs N occurrences at once.) The worker reads the same
environment as the NFVO service (NFVO_DATA_DIR, NFVO_DATABASE_URL, NFVO_LOCAL_VIM_STATE_DIR,
...; see `nfvo.worker_main`), plus:

- NFVO_BROKER_URL: the broker; Redis in production (``redis://host:6379/0``), RabbitMQ
  works too (``amqp://...``). Default: the embedded broker, kombu's SQLAlchemy transport on
  the SQLite file ``<data dir>/broker.db`` (no server to install).
- NFVO_LCM_LEASE_SECONDS: how long an occurrence's lease lasts without renewal.

Delivery is at most once: tasks are acknowledged when the worker takes them (early acks,
one message prefetched at a time). A worker that dies mid-operation leaves its lease to
expire; recovery then moves the occurrence to FAILED_TEMP (docs/lcm.md, "Crashes"), from
where the API user retries or rolls it back. Redelivery would only race with that.

Recovery runs in every worker: when it is ready and then every lease/2 seconds from a
thread, so a lost worker's occurrence is settled within about 1.5 leases while any worker
runs.

The embedded broker is polled: kombu's virtual transports look for a message every
`polling_interval` seconds (1 s by default). The SQLAlchemy transport hands every transport
option to `create_engine`, so the interval cannot be set as an option there; a
``sqla+`` URL is therefore served by `SqlBrokerTransport`, kombu's transport with a 0.1 s
interval (one indexed SELECT per poll on a small table).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import Celery
from celery.signals import worker_init, worker_ready, worker_shutdown
from kombu.transport.sqlalchemy import Transport as _SqlTransport

from vnfm import worker

if TYPE_CHECKING:
    from vnfm.worker import WorkerServices

__all__ = [
    "ROLLBACK_TASK",
    "RUN_TASK",
    "SqlBrokerTransport",
    "app",
    "broker_url",
    "make_app",
    "rollback_operation_task",
    "run_operation_task",
    "services",
]

log = logging.getLogger(__name__)

RUN_TASK = "vnfm.run_operation"
ROLLBACK_TASK = "vnfm.rollback_operation"
SQL_PREFIX = "sqla+"
SQL_POLL_SECONDS = 0.1
SQLITE_BUSY_TIMEOUT = 30.0


class SqlBrokerTransport(_SqlTransport):
    """kombu's SQLAlchemy transport, polling every 0.1 s instead of every second."""

    polling_interval = SQL_POLL_SECONDS


def broker_url(data_dir: Path) -> str:
    """NFVO_BROKER_URL, else the embedded SQLite broker in the data directory."""
    configured = os.environ.get("NFVO_BROKER_URL", "").strip()
    if configured:
        return configured
    return f"{SQL_PREFIX}sqlite:///{data_dir / 'broker.db'}"


def _env_data_dir() -> Path:
    # The same rule as the NFVO's settings (nfvo.settings.Settings.from_env).
    return Path(os.environ.get("NFVO_DATA_DIR", os.environ.get("DATA_DIR", ".data"))).resolve()


def _sqlite_file(url: str) -> Path | None:
    for scheme in ("sqlite:///", f"{SQL_PREFIX}sqlite:///"):
        if url.startswith(scheme):
            return Path(url[len(scheme) :])
    return None


def prepare_broker(url: str) -> None:
    """Make the directory of an embedded broker's SQLite file (the API makes it too)."""
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def make_app(url: str, *, main: bool = False) -> Any:
    """A Celery app on broker `url`, configured for at-most-once delivery of occurrence ids."""
    celery = Celery("vnfm", set_as_current=main)
    conf: dict[str, Any] = {
        "broker_url": url,
        "broker_connection_retry_on_startup": True,
        "task_acks_late": False,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        "task_default_queue": "vnflcm",
    }
    if url.startswith(SQL_PREFIX):
        conf["broker_url"] = url[len(SQL_PREFIX) :]
        conf["broker_transport"] = f"{__name__}:SqlBrokerTransport"
        if _sqlite_file(url) is not None:
            # Passed to create_engine: wait for the file lock instead of failing at once.
            conf["broker_transport_options"] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}}
        # Remote control needs a broadcast channel, which a polled SQL table is not.
        conf["worker_enable_remote_control"] = False
    if url.startswith(("amqp://", "amqps://", "pyamqp://")):
        # A worker runs one long operation at a time on its main thread, which then
        # answers no AMQP heartbeats; RabbitMQ would drop the connection mid-operation.
        # Early acks already make a reconnect harmless; this avoids the noise.
        conf["broker_heartbeat"] = 0
    celery.conf.update(conf)
    return celery


# The worker's app (`celery -A vnfm.celery_app`): broker from the environment.
app: Any = make_app(broker_url(_env_data_dir()), main=True)

_services: WorkerServices | None = None
_services_lock = threading.Lock()


def services() -> WorkerServices:
    """This process's WorkerServices, built on first use from the environment."""
    global _services
    with _services_lock:
        if _services is None:
            # The composition root is the one module that knows both the NFVO and the VNFM.
            from nfvo.worker_main import build_services

            _services = build_services()
        return _services


def _run(op_id: str) -> None:
    worker.run_operation(op_id, services())


def _rollback(op_id: str) -> None:
    worker.rollback_operation(op_id, services())


run_operation_task: Any = app.task(name=RUN_TASK, ignore_result=True)(_run)
rollback_operation_task: Any = app.task(name=ROLLBACK_TASK, ignore_result=True)(_rollback)

# NS LCM operation occurrences (nfvo.nslcm): started on a thread of this process, since an
# NS operation waits for the VNF operations it starts (nfvo/nslcm/worker_main.py).
NS_RUN_TASK = "nfvo.nslcm.run_operation"
NS_ROLLBACK_TASK = "nfvo.nslcm.rollback_operation"


def _ns_run(op_id: str) -> None:
    from nfvo.nslcm.worker_main import start_in_background

    start_in_background(op_id, "run")


def _ns_rollback(op_id: str) -> None:
    from nfvo.nslcm.worker_main import start_in_background

    start_in_background(op_id, "rollback")


ns_run_operation_task: Any = app.task(name=NS_RUN_TASK, ignore_result=True)(_ns_run)
ns_rollback_operation_task: Any = app.task(name=NS_ROLLBACK_TASK, ignore_result=True)(_ns_rollback)


class _Recovery:
    """Settles occurrences of lost workers: at start, then every lease/2 seconds."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="lcm-recovery", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        interval = 5.0
        while True:
            try:
                current = services()
                interval = max(current.lease_seconds / 2, 0.5)
                settled = current.occurrences.recover()
                if settled:
                    log.warning("recovery: %d occurrence(s) of lost workers settled", settled)
                from nfvo.nslcm.worker_main import recover as recover_ns

                settled = recover_ns()
                if settled:
                    log.warning("recovery: %d NS occurrence(s) of lost workers settled", settled)
            except Exception:
                log.exception("recovery failed; trying again in %.1fs", interval)
            if self.stop.wait(interval):
                return

    def shutdown(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=10)


_recovery = _Recovery()


def _on_worker_init(**_: Any) -> None:
    prepare_broker(str(app.conf.broker_url))


def _on_worker_ready(**_: Any) -> None:
    _recovery.start()


def _on_worker_shutdown(**_: Any) -> None:
    _recovery.shutdown()


# Connected by call (the signals are untyped, so decorating would untype the handlers).
worker_init.connect(_on_worker_init, weak=False)
worker_ready.connect(_on_worker_ready, weak=False)
worker_shutdown.connect(_on_worker_shutdown, weak=False)
