"""The contract every NFVO -> VNFM client passes: subclass `VnfmClientContract`.

Fixtures a subclass provides:
- `lab`: a running `tests.support.celery_worker.LcmLab` with authentication on, at least one
  LCM worker and a local VIM (the NFVO's notification endpoint is its app's);
- `client`: the `VnfmClient` under test, driving the VNFM of that lab;
- `vnfd_id`: an onboarded, ENABLED package with the NAT's structure and trivial units
  (`runnable_nat_csar`).

Everything asserted here is what the NS orchestration relies on, whichever implementation
(in process or HTTP) it is given.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from nfvo.vnfm_client import (
    BadRequest,
    Conflict,
    NotFound,
    OperationFailed,
    PollPolicy,
    Unprocessable,
    VnfmClient,
    WaitTimeout,
    require_completed,
)
from sol013.oauth2 import list_clients
from sol013.secrets import is_sealed
from tests.support.celery_worker import LcmLab
from vnfm.models import LccnSubscriptionRow
from vnfm.schemas import (
    ChangeExtVnfConnectivityRequest,
    InstantiateVnfRequest,
    InstantiationState,
    LcmOperationStateType,
    LifecycleChangeNotificationsFilter,
    ScaleVnfRequest,
    TerminateVnfRequest,
    VnfIdentifierCreationNotification,
    VnfIdentifierDeletionNotification,
    VnfInstance,
    VnfInstanceSubscriptionFilter,
)

OP_TIMEOUT = 120.0
NO_POLLING = PollPolicy(enabled=False)
DEFAULT_FLAVOUR = InstantiateVnfRequest(flavourId="default")
FORCEFUL = TerminateVnfRequest.model_validate({"terminationType": "FORCEFUL"})


def _fastpaths(instance: VnfInstance) -> int:
    info = instance.instantiatedVnfInfo
    assert info is not None and info.vnfcResourceInfo is not None
    return sum(1 for vnfc in info.vnfcResourceInfo if vnfc.vduId == "nat_fastpath")


def _wait_until(done: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class _Inbox:
    """What a `subscribe` callback was given (it runs on a server thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[Any] = []

    def __call__(self, notification: Any) -> None:
        with self.lock:
            self.items.append(notification)

    def wait(self, count: int) -> list[Any]:
        _wait_until(lambda: len(self.snapshot()) >= count, f"{count} notification(s)")
        return self.snapshot()

    def snapshot(self) -> list[Any]:
        with self.lock:
            return list(self.items)


class VnfmClientContract:
    """Behaviour the NS orchestration relies on, run against each client implementation."""

    def _terminate_and_delete(self, client: VnfmClient, lab: LcmLab, instance_id: str) -> None:
        op_id = client.terminate(instance_id, FORCEFUL)
        require_completed(client.wait_for_op(op_id, OP_TIMEOUT))
        client.delete_vnf_instance(instance_id)
        assert lab.vim.list_owned(instance_id) == []

    def test_lifecycle_of_one_vnf(self, client: VnfmClient, lab: LcmLab, vnfd_id: str) -> None:
        hub = lab.app.state.vnfm_notifications.hub
        created = client.create_vnf_instance(
            vnfd_id, name="contract", description="one VNF", metadata={"nsInstanceId": "ns-1"}
        )
        assert created.instantiationState is InstantiationState.NOT_INSTANTIATED
        assert (created.vnfdId, created.vnfInstanceName) == (vnfd_id, "contract")
        assert created.metadata == {"nsInstanceId": "ns-1"}
        assert client.get_vnf_instance(created.id) == created
        assert client.list_vnf_instances(f"(eq,id,{created.id})") == [created]
        assert created.id in {i.id for i in client.list_vnf_instances()}

        # Instantiate, waiting on notifications alone: the result must reach the NFVO's
        # endpoint over its socket.
        received = hub.received
        stats_before = (client.wait_stats.notified_reads, client.wait_stats.polled_reads)
        op_id = client.instantiate(created.id, DEFAULT_FLAVOUR)
        op = client.wait_for_op(op_id, OP_TIMEOUT, poll=NO_POLLING)
        assert op.operationState is LcmOperationStateType.COMPLETED, op.error
        assert (op.id, op.vnfInstanceId, op.operation.value) == (op_id, created.id, "INSTANTIATE")
        assert hub.received > received
        assert client.wait_stats.notified_reads > stats_before[0]
        assert client.wait_stats.polled_reads == stats_before[1]
        instance = client.get_vnf_instance(created.id)
        assert instance.instantiationState is InstantiationState.INSTANTIATED
        assert _fastpaths(instance) == 1
        assert {r.owner.lcm_op_id for r in lab.vim.list_owned(created.id)} == {op_id}

        scale_out = ScaleVnfRequest.model_validate({"type": "SCALE_OUT", "aspectId": "fastpath"})
        op = require_completed(client.wait_for_op(client.scale(created.id, scale_out), OP_TIMEOUT))
        assert op.operation.value == "SCALE"
        assert _fastpaths(client.get_vnf_instance(created.id)) == 2

        self._terminate_and_delete(client, lab, created.id)
        with pytest.raises(NotFound):
            client.get_vnf_instance(created.id)
        assert lab.vim.leaks() == []

    def test_refusals_are_typed(self, client: VnfmClient, lab: LcmLab, vnfd_id: str) -> None:
        unknown = str(uuid.uuid4())
        for call in (
            lambda: client.get_vnf_instance(unknown),
            lambda: client.instantiate(unknown, DEFAULT_FLAVOUR),
            lambda: client.delete_vnf_instance(unknown),
            lambda: client.get_op_occ(unknown),
            lambda: client.retry(unknown),
        ):
            with pytest.raises(NotFound) as missing:
                call()
            assert unknown in missing.value.detail and missing.value.status == 404
        with pytest.raises(Unprocessable) as no_package:
            client.create_vnf_instance("no-such-vnfd")
        assert "no-such-vnfd" in no_package.value.detail
        with pytest.raises(BadRequest):
            client.list_vnf_instances("(eq,noSuchAttribute,1)")

        instance = client.create_vnf_instance(vnfd_id)
        elsewhere = InstantiateVnfRequest.model_validate(
            {
                "flavourId": "default",
                "vimConnectionInfo": {"edge": {"vimId": "no-such-vim", "vimType": "X"}},
            }
        )
        with pytest.raises(Unprocessable) as no_vim:
            client.instantiate(instance.id, elsewhere)
        assert "vimConnectionInfo" in no_vim.value.detail and "no-such-vim" in no_vim.value.detail
        # An unknown flavour is found when the VNFM plans the operation: it ends ROLLED_BACK
        # with a 422 ProblemDetails, which require_completed types.
        bad = InstantiateVnfRequest(flavourId="no-such-flavour")
        op = client.wait_for_op(client.instantiate(instance.id, bad), OP_TIMEOUT)
        assert op.operationState is LcmOperationStateType.ROLLED_BACK
        with pytest.raises(OperationFailed) as failed:
            require_completed(op)
        assert isinstance(failed.value.cause, Unprocessable)
        assert "no-such-flavour" in failed.value.cause.detail

        # One operation at a time per instance.
        op_id = client.instantiate(instance.id, DEFAULT_FLAVOUR)
        with pytest.raises(Conflict) as busy:
            client.instantiate(instance.id, DEFAULT_FLAVOUR)
        assert op_id in busy.value.detail and "in progress" in busy.value.detail
        with pytest.raises(Conflict):
            client.delete_vnf_instance(instance.id)
        with pytest.raises(Conflict):
            client.retry(op_id)
        with pytest.raises(WaitTimeout) as slow:
            client.wait_for_op(op_id, 0.01)
        assert slow.value.retryable and slow.value.op is not None and slow.value.op.id == op_id
        require_completed(client.wait_for_op(op_id, OP_TIMEOUT))

        # Refused before an occurrence starts: 422 naming the field, 409 for the state.
        link = {"id": "x", "resourceId": "net", "extCps": [{"cpdId": "no_such_cp"}]}
        change = ChangeExtVnfConnectivityRequest.model_validate({"extVirtualLinks": [link]})
        with pytest.raises(Unprocessable) as no_cp:
            client.change_ext_conn(instance.id, change)
        assert "extVirtualLinks[0].extCps[0].cpdId" in no_cp.value.detail
        with pytest.raises(Conflict) as instantiated:
            client.instantiate(instance.id, DEFAULT_FLAVOUR)
        assert "INSTANTIATED" in instantiated.value.detail
        self._terminate_and_delete(client, lab, instance.id)

    def test_subscriptions_deliver_to_their_callback(
        self, client: VnfmClient, lab: LcmLab, vnfd_id: str
    ) -> None:
        flt = LifecycleChangeNotificationsFilter(
            notificationTypes=[
                "VnfIdentifierCreationNotification",
                "VnfIdentifierDeletionNotification",
            ],
            vnfInstanceSubscriptionFilter=VnfInstanceSubscriptionFilter(vnfdIds=[vnfd_id]),
        )
        first = _Inbox()
        subscription_id = client.subscribe(flt, first)
        instance = client.create_vnf_instance(vnfd_id)
        client.delete_vnf_instance(instance.id)
        created, deleted = first.wait(2)
        assert isinstance(created, VnfIdentifierCreationNotification)
        assert isinstance(deleted, VnfIdentifierDeletionNotification)
        assert created.vnfInstanceId == deleted.vnfInstanceId == instance.id
        assert created.subscriptionId == deleted.subscriptionId == subscription_id
        with lab.app.state.session_factory() as session:
            row = session.get(LccnSubscriptionRow, subscription_id)
            # The VNFM keeps the NFVO's credentials sealed, however the subscription was made.
            assert row is not None and is_sealed(row.authentication)

        client.unsubscribe(subscription_id)
        with lab.app.state.session_factory() as session:
            left = [
                c.client_id
                for c in list_clients(session)
                if c.client_id.startswith(f"vnfm-notify.{client.vnfm_id}.l-")
            ]
        assert left == [], "unsubscribing removes the subscription's credentials"
        # A later subscription gets the next events; the removed one gets nothing more
        # (it had no outbox entry: it was gone before the events).
        second = _Inbox()
        later = client.subscribe(flt, second)
        again = client.create_vnf_instance(vnfd_id)
        client.delete_vnf_instance(again.id)
        assert [n.vnfInstanceId for n in second.wait(2)] == [again.id, again.id]
        assert len(first.snapshot()) == 2
        client.unsubscribe(later)
        with pytest.raises(NotFound):
            client.unsubscribe(subscription_id)
