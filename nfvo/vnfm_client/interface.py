"""How the NFVO drives a VNFM: the SOL003 VNF LCM interface (Or-Vnfm), as one Python ABC.

Two implementations: `nfvo.vnfm_client.in_process` (the NFVO's own VNFM in this process,
no HTTP) and `nfvo.vnfm_client.http` (any SOL003 VNFM over HTTP). Both take and return the
project's SOL003 models (`vnfm.schemas`), raise the same typed errors
(`nfvo.vnfm_client.errors`), and behave the same; `tests/contract/vnfm_client_contract.py`
holds them to it.

**Synchronous and thread-safe.** The NS orchestration runs in NFVO background threads and
Celery tasks, which are synchronous, as is everything it calls (SQLAlchemy, the executor);
every method blocks until the VNFM has answered. From a coroutine, call it through
``asyncio.to_thread``; never on the event loop's thread.

**Operations are asynchronous on the VNFM.** A task method (``instantiate``, ``scale``, ...)
returns the id of the new operation occurrence once the VNFM accepted it; `wait_for_op`
then blocks until the occurrence settles: COMPLETED, FAILED_TEMP (which waits for a
retry, rollback or fail), FAILED or ROLLED_BACK. It is woken by the VNFM's
VnfLcmOperationOccurrenceNotification as soon as the NFVO's notification endpoint receives
one (a per-VNFD subscription the client keeps, filtered on the VNFDs the NFVO uses and on
those states), and polls with exponential backoff meanwhile, in case a notification is lost
or the endpoint is in another process (the hub is per process). `require_completed` turns a
settled occurrence that did not complete into a typed `OperationFailed`.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

from pydantic import BaseModel

from nfvo.vnfm_client.callbacks import NotificationEndpoint, listener_ref, watch_ref
from nfvo.vnfm_client.errors import OperationFailed, VnfmError, WaitTimeout
from nfvo.vnfm_client.hub import NotificationCallback
from nfvo.vnfm_client.registry import NotificationAuth
from sol013.notify_auth import AuthType
from sol013.problem import ProblemDetails
from vnfm.schemas import (
    CancelModeType,
    ChangeExtVnfConnectivityRequest,
    ChangeVnfFlavourRequest,
    HealVnfRequest,
    InstantiateVnfRequest,
    LccnSubscriptionRequest,
    LcmOperationStateType,
    LcmOperationType,
    LcmOpOccNotificationVerbosityType,
    LifecycleChangeNotificationsFilter,
    OperateVnfRequest,
    ScaleVnfRequest,
    ScaleVnfToLevelRequest,
    TerminateVnfRequest,
    VnfInstance,
    VnfInstanceSubscriptionFilter,
    VnfLcmOpOcc,
)

__all__ = ["SETTLED", "OpTask", "PollPolicy", "VnfmClient", "WaitStats", "require_completed"]

log = logging.getLogger(__name__)

SETTLED: frozenset[LcmOperationStateType] = frozenset(
    {
        LcmOperationStateType.COMPLETED,
        LcmOperationStateType.FAILED_TEMP,
        LcmOperationStateType.FAILED,
        LcmOperationStateType.ROLLED_BACK,
    }
)
"""States in which an occurrence stays until somebody acts: where `wait_for_op` returns."""

OpTask = Literal["retry", "rollback", "fail", "cancel"]


@dataclass(frozen=True)
class PollPolicy:
    """How `wait_for_op` polls while no notification comes: every ``initial`` seconds at
    first, ``factor`` times longer after each poll, never longer than ``maximum``.
    ``enabled=False`` waits for notifications only (one read first, one per notification)."""

    enabled: bool = True
    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 5.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.maximum < self.initial:
            raise ValueError("need 0 < initial <= maximum and factor >= 1")


@dataclass
class WaitStats:
    """What ended `wait_for_op`'s waits so far: reads after a notification, reads by timer."""

    notified_reads: int = 0
    polled_reads: int = 0


def require_completed(op: VnfLcmOpOcc) -> VnfLcmOpOcc:
    """``op`` if it COMPLETED; else `OperationFailed` with its error as a typed ``cause``."""
    if op.operationState is not LcmOperationStateType.COMPLETED:
        raise OperationFailed(op)
    return op


class VnfmClient(ABC):
    """The NFVO's SOL003 client of one VNFM (see the module docstring)."""

    def __init__(
        self,
        vnfm_id: str,
        *,
        endpoint: NotificationEndpoint | None,
        notification_auth: NotificationAuth = AuthType.OAUTH2_CLIENT_CREDENTIALS,
        poll: PollPolicy | None = None,
    ) -> None:
        self.vnfm_id = vnfm_id
        self.endpoint = endpoint
        self.notification_auth = notification_auth
        self.poll = poll or PollPolicy()
        self.wait_stats = WaitStats()
        self._lock = threading.Lock()
        self._vnfd_of: dict[str, str] = {}
        self._watched: set[str] = set()
        self._listeners: dict[str, str] = {}

    # -- VNF instance resources ------------------------------------------------------------

    def create_vnf_instance(
        self,
        vnfd_id: str,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, object] | None = None,
    ) -> VnfInstance:
        """A new NOT_INSTANTIATED instance of an onboarded, enabled VNFD (422 otherwise)."""
        # Subscribed first, so no notification of the new instance's operations is missed.
        self._watch(vnfd_id)
        instance = self._create_instance(vnfd_id, name, description, metadata)
        self._remember(instance)
        return instance

    def get_vnf_instance(self, instance_id: str) -> VnfInstance:
        return self._remember(self._get_instance(instance_id))

    def list_vnf_instances(self, filter: str | None = None) -> list[VnfInstance]:
        """Every instance (full representations), optionally with a SOL013 filter expression."""
        return [self._remember(i) for i in self._list_instances(filter)]

    def delete_vnf_instance(self, instance_id: str) -> None:
        """Delete a NOT_INSTANTIATED instance with no operation in progress (409 otherwise)."""
        self._delete_instance(instance_id)
        with self._lock:
            self._vnfd_of.pop(instance_id, None)

    # -- LCM tasks: each returns the new operation occurrence's id --------------------------

    def instantiate(self, instance_id: str, request: InstantiateVnfRequest) -> str:
        return self._task(instance_id, LcmOperationType.INSTANTIATE, request)

    def scale(self, instance_id: str, request: ScaleVnfRequest) -> str:
        return self._task(instance_id, LcmOperationType.SCALE, request)

    def scale_to_level(self, instance_id: str, request: ScaleVnfToLevelRequest) -> str:
        return self._task(instance_id, LcmOperationType.SCALE_TO_LEVEL, request)

    def heal(self, instance_id: str, request: HealVnfRequest) -> str:
        return self._task(instance_id, LcmOperationType.HEAL, request)

    def terminate(self, instance_id: str, request: TerminateVnfRequest) -> str:
        return self._task(instance_id, LcmOperationType.TERMINATE, request)

    def operate(self, instance_id: str, request: OperateVnfRequest) -> str:
        return self._task(instance_id, LcmOperationType.OPERATE, request)

    def change_ext_conn(self, instance_id: str, request: ChangeExtVnfConnectivityRequest) -> str:
        return self._task(instance_id, LcmOperationType.CHANGE_EXT_CONN, request)

    def change_flavour(self, instance_id: str, request: ChangeVnfFlavourRequest) -> str:
        return self._task(instance_id, LcmOperationType.CHANGE_FLAVOUR, request)

    def _task(self, instance_id: str, operation: LcmOperationType, request: BaseModel) -> str:
        self._watch_instance(instance_id)
        return self._start(instance_id, operation, request)

    # -- operation occurrences -------------------------------------------------------------

    @abstractmethod
    def get_op_occ(self, op_id: str) -> VnfLcmOpOcc: ...

    def retry(self, op_id: str) -> None:
        """Retry a FAILED_TEMP occurrence (409 in any other state)."""
        self._op_task(op_id, "retry")

    def rollback(self, op_id: str) -> None:
        """Roll back a FAILED_TEMP occurrence (409 if the VNFM offers no rollback for it)."""
        self._op_task(op_id, "rollback")

    def fail(self, op_id: str) -> VnfLcmOpOcc:
        """Mark a FAILED_TEMP occurrence FAILED; the occurrence as it now is."""
        op = self._op_task(op_id, "fail")
        return op if op is not None else self.get_op_occ(op_id)

    def cancel(self, op_id: str, mode: CancelModeType = CancelModeType.GRACEFUL) -> None:
        """Ask a STARTING, PROCESSING or ROLLING_BACK occurrence to stop."""
        self._op_task(op_id, "cancel", mode)

    def wait_for_op(
        self, op_id: str, timeout: float, *, poll: PollPolicy | None = None
    ) -> VnfLcmOpOcc:
        """The occurrence once it is settled (`SETTLED`); `WaitTimeout` after ``timeout`` s."""
        policy = poll or self.poll
        hub = self.endpoint.hub if self.endpoint is not None else None
        if hub is None and not policy.enabled:
            raise ValueError("without a notification endpoint, wait_for_op has to poll")
        deadline = time.monotonic() + timeout
        seen = hub.sequence() if hub else 0
        op = self.get_op_occ(op_id)
        if op.operationState in SETTLED:
            return op
        if hub is not None and self._watch_instance(op.vnfInstanceId):
            # The subscription is new: what happened before it is only seen by reading again.
            seen = hub.sequence()
            op = self.get_op_occ(op_id)
        delay = policy.initial
        while op.operationState not in SETTLED:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                detail = f"operation occurrence {op_id} still {op.operationState.value} after "
                raise WaitTimeout(ProblemDetails(status=504, detail=f"{detail}{timeout:g} s"), op)
            pause = min(remaining, delay) if policy.enabled else remaining
            news = hub.wait(self.vnfm_id, op_id, seen, pause) if hub else None
            if hub is None:
                time.sleep(pause)
            if news is not None:
                seen = news.sequence
                op = self.get_op_occ(op_id)
                self.wait_stats.notified_reads += 1
            elif policy.enabled:
                seen = hub.sequence() if hub else seen
                op = self.get_op_occ(op_id)
                self.wait_stats.polled_reads += 1
                delay = min(delay * policy.factor, policy.maximum)
        return op

    # -- subscriptions ---------------------------------------------------------------------

    def subscribe(
        self, filter: LifecycleChangeNotificationsFilter | None, callback: NotificationCallback
    ) -> str:
        """A SOL003 subscription of the NFVO's endpoint whose notifications go to ``callback``.

        The VNFM applies ``filter``; ``callback`` runs in the NFVO process that serves the
        endpoint, on a server thread, and must return quickly. Returns the subscription id.
        """
        endpoint = self._require_endpoint()
        ref = listener_ref(self.vnfm_id)
        endpoint.hub.listen(ref, callback)
        try:
            subscription_id = self._subscribe_ref(ref, filter, verbosity=None)
        except BaseException:
            endpoint.hub.forget(ref)
            endpoint.revoke_ref(ref)
            raise
        with self._lock:
            self._listeners[subscription_id] = ref
        return subscription_id

    def unsubscribe(self, subscription_id: str) -> None:
        """Delete a subscription `subscribe` made, and its credentials."""
        with self._lock:
            ref = self._listeners.pop(subscription_id, None)
        try:
            self._delete_subscription(subscription_id)
        finally:
            if ref is not None and self.endpoint is not None:
                self.endpoint.hub.forget(ref)
                self.endpoint.revoke_ref(ref)

    def _require_endpoint(self) -> NotificationEndpoint:
        if self.endpoint is None:
            raise RuntimeError(f"the client of VNFM {self.vnfm_id} has no notification endpoint")
        return self.endpoint

    def _subscribe_ref(
        self,
        ref: str,
        filter: LifecycleChangeNotificationsFilter | None,
        verbosity: LcmOpOccNotificationVerbosityType | None,
    ) -> str:
        endpoint = self._require_endpoint()
        auth, client_id = endpoint.issue(ref, self.notification_auth)
        request = LccnSubscriptionRequest(
            filter=filter,
            callbackUri=endpoint.callback_uri(ref),
            authentication=auth,
            verbosity=verbosity,
        )
        try:
            subscription_id, created = self._create_subscription(request)
        except BaseException:
            endpoint.revoke(client_id)
            raise
        if not created:
            # A duplicate (303): the existing subscription keeps the credentials it has.
            endpoint.revoke(client_id)
        return subscription_id

    def _watch(self, vnfd_id: str) -> bool:
        """Keep a subscription for the settled states of this VNFD's instances' operations.

        True if it was made now. A failure is logged, not raised: waits then poll.
        """
        if self.endpoint is None:
            return False
        with self._lock:
            if vnfd_id in self._watched:
                return False
        flt = LifecycleChangeNotificationsFilter(
            vnfInstanceSubscriptionFilter=VnfInstanceSubscriptionFilter(vnfdIds=[vnfd_id]),
            notificationTypes=["VnfLcmOperationOccurrenceNotification"],
            operationStates=sorted(SETTLED),
        )
        try:
            self._subscribe_ref(
                watch_ref(self.vnfm_id, vnfd_id), flt, LcmOpOccNotificationVerbosityType.SHORT
            )
        except VnfmError as exc:
            log.warning(
                "VNFM %s: no notifications for VNFD %s (%s); waiting by polling",
                self.vnfm_id,
                vnfd_id,
                exc,
            )
            return False
        with self._lock:
            self._watched.add(vnfd_id)
        return True

    def _watch_instance(self, instance_id: str) -> bool:
        if self.endpoint is None:
            return False
        with self._lock:
            vnfd_id = self._vnfd_of.get(instance_id)
        if vnfd_id is None:
            vnfd_id = self.get_vnf_instance(instance_id).vnfdId
        return self._watch(vnfd_id)

    def _remember(self, instance: VnfInstance) -> VnfInstance:
        with self._lock:
            self._vnfd_of[instance.id] = instance.vnfdId
        return instance

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Remove the subscriptions `subscribe` made and release connections.

        The per-VNFD subscriptions stay: they are shared by every client of the VNFM in this
        NFVO (a new client finds them as duplicates).
        """
        with self._lock:
            pending = list(self._listeners)
        for subscription_id in pending:
            try:
                self.unsubscribe(subscription_id)
            except VnfmError as exc:
                log.warning(
                    "VNFM %s: subscription %s not removed: %s", self.vnfm_id, subscription_id, exc
                )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what an implementation provides ---------------------------------------------------

    @abstractmethod
    def _create_instance(
        self,
        vnfd_id: str,
        name: str | None,
        description: str | None,
        metadata: dict[str, object] | None,
    ) -> VnfInstance: ...

    @abstractmethod
    def _get_instance(self, instance_id: str) -> VnfInstance: ...

    @abstractmethod
    def _list_instances(self, filter: str | None) -> list[VnfInstance]: ...

    @abstractmethod
    def _delete_instance(self, instance_id: str) -> None: ...

    @abstractmethod
    def _start(self, instance_id: str, operation: LcmOperationType, request: BaseModel) -> str:
        """Start the task; the new occurrence's id."""

    @abstractmethod
    def _op_task(
        self, op_id: str, task: OpTask, mode: CancelModeType | None = None
    ) -> VnfLcmOpOcc | None:
        """Run a task of an occurrence; the occurrence if the VNFM returned it (fail)."""

    @abstractmethod
    def _create_subscription(self, request: LccnSubscriptionRequest) -> tuple[str, bool]:
        """The subscription's id, and False if it existed already (a duplicate, SOL013 303)."""

    @abstractmethod
    def _delete_subscription(self, subscription_id: str) -> None: ...
