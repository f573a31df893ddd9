"""Run VNF LCM operation occurrences in the test process, as a worker would.

This is a real execution path, not a mock: :class:`LcmRunner` is a ``Dispatch`` that runs
each occurrence on a thread through the same steps the Celery worker takes in its own
process: claim the lease (`OccurrenceService.claim`), ask for the grant
(`Executor.grant_request` + the NFVO's Grant API in process), then `Executor.run` (or
`Executor.rollback`) on a real local VIM, and report every outcome with
`OccurrenceService.apply`. The API under test cannot tell it from a worker.

It also lets a test hold operations back (:meth:`LcmRunner.hold`) so that "an operation is
running" is a state the test controls, not a race.
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from descriptors.vnfd import Vnfd
from nfvo.vnfm_link import InProcessNfvo
from vim_adapters.interface import VimAdapter
from vnfm.executor import Cancelled, ExecutionError, Executor
from vnfm.nfvo_client import GrantRefused, PackageInfo
from vnfm.occurrences import OccurrenceService, problem
from vnfm.opocc_states import Event, OpState

log = logging.getLogger(__name__)

SERVER_PORT = 8080


def runnable(vnfd: Vnfd) -> Vnfd:
    """``vnfd`` with every VDU running an HTTP server instead of its own command.

    The sample VNFDs' VDUs run ``python -m vnfs.<vnf>.fastpath`` / ``slowpath``, which do
    not exist yet; a unit whose process exits never becomes ready, so no operation could
    complete. Everything else (flavours, levels, aspects, links, CPs) is the package's own.
    """
    command = [sys.executable, "-m", "http.server", "--bind", "0.0.0.0", str(SERVER_PORT)]
    return vnfd.model_copy(
        update={
            "flavours": [
                flavour.model_copy(
                    update={
                        "vdus": [v.model_copy(update={"command": command}) for v in flavour.vdus]
                    }
                )
                for flavour in vnfd.flavours
            ]
        }
    )


class RunnableNfvo:
    """The in-process NfvoClient, serving VNFDs whose VDUs can run today (see `runnable`).

    Packages, grants and usage states are the NFVO's own (`InProcessNfvo`); only the VNFD
    handed to the executor differs, in the VDU commands.
    """

    def __init__(self, inner: InProcessNfvo) -> None:
        self.inner = inner

    def package_for_vnfd(self, vnfd_id: str) -> PackageInfo | None:
        return self.inner.package_for_vnfd(vnfd_id)

    def vnfd(self, vnfd_id: str) -> Vnfd:
        return runnable(self.inner.vnfd(vnfd_id))

    def request_grant(self, grant_request: dict[str, Any]) -> dict[str, Any]:
        return self.inner.request_grant(grant_request)

    def instances_changed(self, vnfd_id: str, count: int) -> None:
        self.inner.instances_changed(vnfd_id, count)


class LcmRunner:
    """A ``Dispatch`` running every occurrence handed to it on its own thread."""

    def __init__(
        self,
        occurrences: OccurrenceService,
        executor: Executor,
        nfvo: RunnableNfvo,
        *,
        api_root: str,
        lease_seconds: float = 300.0,
    ) -> None:
        self.occurrences = occurrences
        self.executor = executor
        self.nfvo = nfvo
        self.api_root = api_root
        self.lease_seconds = lease_seconds
        self.calls: list[tuple[str, str]] = []
        self._threads: list[threading.Thread] = []
        self._gate = threading.Event()
        self._gate.set()

    @classmethod
    def for_app(cls, app: Any, vim: VimAdapter, url: str) -> LcmRunner:
        """A runner on a started NFVO app (its store, its grants) and a VIM."""
        nfvo = RunnableNfvo(InProcessNfvo(app.state.session_factory, app.state.grants, url))
        executor = Executor(vim, nfvo, ready_timeout=60.0, api_root=url)
        return cls(app.state.occurrences, executor, nfvo, api_root=url)

    def __call__(self, op_id: str, kind: str) -> None:
        self.calls.append((op_id, kind))
        thread = threading.Thread(
            target=self._guarded, args=(op_id, kind), name=f"lcm-{op_id[:8]}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Operations dispatched inside the block start only when it ends."""
        self._gate.clear()
        try:
            yield
        finally:
            self._gate.set()

    def join(self, timeout: float = 120.0) -> None:
        for thread in self._threads:
            thread.join(timeout)
            assert not thread.is_alive(), f"{thread.name} is still running"

    def _guarded(self, op_id: str, kind: str) -> None:
        self._gate.wait()
        worker = f"test-runner-{uuid.uuid4()}"
        row = self.occurrences.claim(op_id, worker, self.lease_seconds)
        if row is None:
            log.info("op %s: not claimable", op_id)
            return
        try:
            if kind == "rollback":
                self._rollback(op_id)
            else:
                self._run(op_id, OpState(row.operation_state))
        except Exception:
            log.exception("op %s: the runner failed", op_id)
            raise
        finally:
            self.occurrences.release(op_id, worker)

    def _fail(self, op_id: str, event: Event, exc: ExecutionError) -> None:
        self.occurrences.apply(op_id, event, error=problem(exc.status, exc.detail))

    def _run(self, op_id: str, state: OpState) -> None:
        occurrences = self.occurrences
        ctx = occurrences.context(op_id)
        if state is OpState.STARTING:
            if occurrences.cancel_requested(op_id):
                occurrences.apply(op_id, Event.CANCEL)
                return
            if not self.executor.needs_grant(ctx):
                occurrences.apply(op_id, Event.GRANTED)
            else:
                try:
                    body = self.executor.grant_request(ctx, api_root=self.api_root)
                    grant = self.nfvo.request_grant(body)
                except GrantRefused as refused:
                    occurrences.apply(
                        op_id, Event.GRANT_REFUSED, error=problem(403, refused.detail)
                    )
                    return
                except ExecutionError as exc:
                    self._fail(op_id, Event.START_FAILED, exc)
                    return
                occurrences.apply(op_id, Event.GRANTED, grant_id=str(grant["id"]))
        try:
            result = self.executor.run(ctx)
        except Cancelled as exc:
            self._fail(op_id, Event.CANCEL, exc)
            return
        except ExecutionError as exc:
            self._fail(op_id, Event.FAILED_STEP, exc)
            return
        occurrences.apply(op_id, Event.SUCCEEDED, result=result)

    def _rollback(self, op_id: str) -> None:
        try:
            self.executor.rollback(self.occurrences.context(op_id))
        except ExecutionError as exc:
            self._fail(op_id, Event.ROLLBACK_FAILED, exc)
            return
        self.occurrences.apply(op_id, Event.ROLLBACK_SUCCEEDED)
