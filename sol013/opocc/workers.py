"""Handing occurrences to workers, and a worker's hold on one: what both LCM sides share.

:func:`hand_over` gives an occurrence to a worker (or ends it at once if that is
impossible); :class:`Lease` renews a claimed occurrence's lease from a thread while the
worker drives it, and says when the lease can no longer be trusted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from sol013.opocc.store import problem
from sol013.problem import ApiError

__all__ = ["Dispatch", "Lease", "LeaseTerms", "claimed", "hand_over"]

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

Dispatch = Callable[[str, str], None]
"""(op_id, kind) with kind "run" or "rollback": hand the occurrence to a worker."""


def hand_over(
    dispatch: Dispatch,
    op_id: str,
    kind: str,
    *,
    worker_lost: Callable[[str, dict[str, Any]], object],
    log: logging.Logger,
    log_prefix: str = "op",
) -> None:
    """Hand an occurrence to a worker; if that is impossible, it ends now (ApiError 503).

    ``worker_lost(op_id, error)`` applies the side's WORKER_LOST event with that error.
    """
    try:
        dispatch(op_id, kind)
    except Exception as exc:
        log.exception("%s %s: could not be handed to a worker", log_prefix, op_id)
        detail = f"the operation could not be handed to a worker: {exc}"
        try:
            worker_lost(op_id, problem(503, detail))
        except Exception:
            log.exception("%s %s: recovery will end it", log_prefix, op_id)
        raise ApiError(503, detail) from None


class _Leases(Protocol[R_co]):
    def claim(self, op_id: str, worker: str, lease_seconds: float) -> R_co | None: ...
    def renew(self, op_id: str, worker: str, lease_seconds: float) -> bool: ...
    def release(self, op_id: str, worker: str) -> None: ...


class LeaseTerms(Protocol[R_co]):
    """What a worker's services say about the leases it takes."""

    @property
    def occurrences(self) -> _Leases[R_co]: ...
    @property
    def worker_id(self) -> str: ...
    @property
    def lease_seconds(self) -> float: ...
    @property
    def heartbeat_seconds(self) -> float: ...


@contextmanager
def claimed(
    op_id: str, services: LeaseTerms[R], *, log: logging.Logger, log_prefix: str = "op"
) -> Iterator[R | None]:
    """Claim the occurrence; yield it (None if it was not claimed), then release it."""
    occurrences = services.occurrences
    row = occurrences.claim(op_id, services.worker_id, services.lease_seconds)
    if row is None:
        log.info(
            "%s %s: not runnable here (final, waiting for a task, or held by another)",
            log_prefix,
            op_id,
        )
        yield None
        return
    try:
        yield row
    finally:
        try:
            occurrences.release(op_id, services.worker_id)
        except Exception:
            # The lease then simply expires; recovery only touches occurrences still active.
            log.exception("%s %s: releasing the lease failed", log_prefix, op_id)


class Lease:
    """Renews an occurrence's lease from a thread; `lost` is set once it cannot be trusted."""

    def __init__(
        self,
        op_id: str,
        services: LeaseTerms[Any],
        *,
        log: logging.Logger,
        log_prefix: str = "op",
        thread_prefix: str = "lease",
    ) -> None:
        self.op_id = op_id
        self.services = services
        self.log = log
        self.log_prefix = log_prefix
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"{thread_prefix}-{op_id[:8]}", daemon=True
        )

    def _beat(self) -> None:
        services = self.services
        # The lease is trusted until it would expire, measured from the last renewal (or claim).
        valid_until = time.monotonic() + services.lease_seconds
        while not self._stop.wait(services.heartbeat_seconds):
            try:
                renewed = services.occurrences.renew(
                    self.op_id, services.worker_id, services.lease_seconds
                )
            except Exception:
                # A transient database error: try again at the next beat while the lease holds.
                self.log.exception("%s %s: renewing the lease failed", self.log_prefix, self.op_id)
                if time.monotonic() < valid_until:
                    continue
                renewed = False
            if not renewed:
                self.log.error(
                    "%s %s: lease lost by worker %s; stopping work on it",
                    self.log_prefix,
                    self.op_id,
                    services.worker_id,
                )
                self.lost.set()
                return
            valid_until = time.monotonic() + services.lease_seconds

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.services.heartbeat_seconds + 5.0)
