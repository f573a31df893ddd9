"""Where the NFVO's notification endpoint hands VNF LCM notifications to the clients waiting.

One hub per NFVO process: the endpoint (`nfvo.vnflcm_notifications`) publishes every valid
notification it receives; `VnfmClient.wait_for_op` waits on it for an operation occurrence's
state to change, and `VnfmClient.subscribe` callbacks are called from it. It is thread-safe:
the endpoint runs on the server's threads, waiters on the orchestrator's.

Waiting is by sequence number: a waiter takes `sequence()` before it reads the occurrence,
then waits for a notification published after that, so none can slip between the read and
the wait, and an old one is never taken for news.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from vnfm.schemas import (
    LcmOperationStateType,
    VnfIdentifierCreationNotification,
    VnfIdentifierDeletionNotification,
    VnfLcmOperationOccurrenceNotification,
)

__all__ = ["LcmNotification", "NotificationCallback", "NotificationHub", "OpNews"]

log = logging.getLogger(__name__)

LcmNotification = Annotated[
    VnfLcmOperationOccurrenceNotification
    | VnfIdentifierCreationNotification
    | VnfIdentifierDeletionNotification,
    Field(discriminator="notificationType"),
]
"""Any notification of the SOL003 VNF LCM notification interface."""

NotificationCallback = Callable[
    [
        VnfLcmOperationOccurrenceNotification
        | VnfIdentifierCreationNotification
        | VnfIdentifierDeletionNotification
    ],
    None,
]
"""Called with each notification of a subscription (on an endpoint thread: keep it short)."""

# Occurrences whose last notified state is remembered; older ones fall back to polling.
_MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class OpNews:
    """The latest state a notification reported for an occurrence, and when (sequence)."""

    sequence: int
    state: LcmOperationStateType


class NotificationHub:
    """Notifications received by this NFVO process, for waiters and subscribers in it."""

    def __init__(self, *, max_remembered: int = _MAX_REMEMBERED) -> None:
        self._changed = threading.Condition()
        self._sequence = 0
        self._ops: OrderedDict[tuple[str, str], OpNews] = OrderedDict()
        self._callbacks: dict[str, NotificationCallback] = {}
        self._max_remembered = max_remembered
        self.received = 0

    def sequence(self) -> int:
        with self._changed:
            return self._sequence

    def listen(self, ref: str, callback: NotificationCallback) -> None:
        """Call ``callback`` with what arrives for the subscription reference ``ref``."""
        with self._changed:
            self._callbacks[ref] = callback

    def forget(self, ref: str) -> None:
        with self._changed:
            self._callbacks.pop(ref, None)

    def publish(
        self,
        vnfm_id: str,
        ref: str,
        notification: VnfLcmOperationOccurrenceNotification
        | VnfIdentifierCreationNotification
        | VnfIdentifierDeletionNotification,
    ) -> None:
        """A notification arrived for subscription reference ``ref`` of VNFM ``vnfm_id``."""
        with self._changed:
            self._sequence += 1
            self.received += 1
            if isinstance(notification, VnfLcmOperationOccurrenceNotification):
                key = (vnfm_id, notification.vnfLcmOpOccId)
                self._ops[key] = OpNews(self._sequence, notification.operationState)
                self._ops.move_to_end(key)
                while len(self._ops) > self._max_remembered:
                    self._ops.popitem(last=False)
            callback = self._callbacks.get(ref)
            self._changed.notify_all()
        if callback is not None:
            try:
                callback(notification)
            except Exception:
                # A subscriber's bug must not make the VNFM redeliver to everybody.
                log.exception("notification callback of subscription %s failed", ref)

    def wait(self, vnfm_id: str, op_id: str, after: int, timeout: float) -> OpNews | None:
        """News of the occurrence published after sequence ``after``; None after ``timeout``."""
        deadline = time.monotonic() + max(timeout, 0.0)
        key = (vnfm_id, op_id)
        with self._changed:
            while True:
                news = self._ops.get(key)
                if news is not None and news.sequence > after:
                    return news
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)
