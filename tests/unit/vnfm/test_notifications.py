"""LCM subscription filters and the notifications queued for them (SOL003 clause 5.5.2)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sol013.outbox import NotificationOutbox
from store.base import Base, make_engine, make_session_factory, transaction
from tests.support.etsi_schema import validate
from vnfm.models import LccnSubscriptionRow, LcmOpOccRow, VnfInstanceRow
from vnfm.notifications import (
    NotificationStatus,
    filter_matches,
    notify_identifier_created,
    notify_identifier_deleted,
    notify_op_occ,
)
from vnfm.schemas import (
    LcmNotificationType,
    LifecycleChangeNotificationsFilter,
    VnfIdentifierCreationNotification,
    VnfIdentifierDeletionNotification,
    VnfLcmOperationOccurrenceNotification,
)

BASE = "http://mano.example:8080"
NOTIFICATION_DEFS = (
    "nfv-sol002-sol003/SOL003/VNFLifecycleManagementNotification/definitions/"
    "SOL003VNFLifecycleManagementNotification_def.yaml"
)
MODELS: dict[str, type[BaseModel]] = {
    "VnfIdentifierCreationNotification": VnfIdentifierCreationNotification,
    "VnfIdentifierDeletionNotification": VnfIdentifierDeletionNotification,
    "VnfLcmOperationOccurrenceNotification": VnfLcmOperationOccurrenceNotification,
}
RESOURCE_CHANGES = {
    "affectedVnfcs": [
        {
            "id": "vnfc-1",
            "vduId": "fastpath",
            "changeType": "ADDED",
            "computeResource": {"resourceId": "ns-fastpath-0"},
        }
    ],
    "affectedVirtualLinks": [
        {
            "id": "vl-1",
            "vnfVirtualLinkDescId": "internal",
            "changeType": "ADDED",
            "networkResource": {"resourceId": "br-internal"},
        }
    ],
}


def _instance(**overrides: Any) -> VnfInstanceRow:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "vnf_instance_name": "edge-nat",
        "vnfd_id": "vnfd-nat",
        "vnf_pkg_id": str(uuid.uuid4()),
        "vnf_provider": "Lab",
        "vnf_product_name": "NAT",
        "vnf_software_version": "1.0",
        "vnfd_version": "1.1",
    }
    values.update(overrides)
    return VnfInstanceRow(**values)


def _op_occ(instance: VnfInstanceRow, **overrides: Any) -> LcmOpOccRow:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "vnf_instance_id": instance.id,
        "operation": "INSTANTIATE",
        "operation_state": "COMPLETED",
        "active": False,
        "is_automatic_invocation": False,
        "resource_changes": RESOURCE_CHANGES,
        "changed_info": {"vnfInstanceName": "edge-nat-renamed"},
    }
    values.update(overrides)
    return LcmOpOccRow(**values)


def _flt(**given: Any) -> LifecycleChangeNotificationsFilter:
    return LifecycleChangeNotificationsFilter.model_validate(given)


def _products(*products: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"vnfProvider": "Lab"}
    if products:
        entry["vnfProducts"] = list(products)
    return {"vnfInstanceSubscriptionFilter": {"vnfProductsFromProviders": [entry]}}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, True),
        ({"notificationTypes": ["VnfIdentifierCreationNotification"]}, True),
        ({"notificationTypes": ["VnfIdentifierDeletionNotification"]}, False),
        ({"vnfInstanceSubscriptionFilter": {"vnfdIds": ["other", "vnfd-nat"]}}, True),
        ({"vnfInstanceSubscriptionFilter": {"vnfdIds": ["other"]}}, False),
        ({"vnfInstanceSubscriptionFilter": {"vnfInstanceNames": ["edge-nat"]}}, True),
        ({"vnfInstanceSubscriptionFilter": {"vnfInstanceNames": ["core-nat"]}}, False),
        ({"vnfInstanceSubscriptionFilter": {"vnfInstanceIds": ["i-1"]}}, False),
        (_products(), True),
        (_products({"vnfProductName": "NAT"}), True),
        (_products({"vnfProductName": "SLB"}), False),
        (_products({"vnfProductName": "NAT", "versions": [{"vnfSoftwareVersion": "1.0"}]}), True),
        (_products({"vnfProductName": "NAT", "versions": [{"vnfSoftwareVersion": "2.0"}]}), False),
        (
            _products(
                {
                    "vnfProductName": "NAT",
                    "versions": [{"vnfSoftwareVersion": "1.0", "vnfdVersions": ["1.0", "1.1"]}],
                }
            ),
            True,
        ),
        (
            _products(
                {
                    "vnfProductName": "NAT",
                    "versions": [{"vnfSoftwareVersion": "1.0", "vnfdVersions": ["1.0"]}],
                }
            ),
            False,
        ),
        # Every given attribute must match.
        (
            {
                "notificationTypes": ["VnfIdentifierCreationNotification"],
                "vnfInstanceSubscriptionFilter": {
                    "vnfdIds": ["vnfd-nat"],
                    "vnfInstanceNames": ["core-nat"],
                },
            },
            False,
        ),
        # Operation criteria only select operation occurrence notifications.
        ({"operationTypes": ["SCALE"], "operationStates": ["FAILED"]}, True),
    ],
)
def test_identifier_filter(given: dict[str, Any], expected: bool) -> None:
    assert (
        filter_matches(_flt(**given), "VnfIdentifierCreationNotification", _instance()) is expected
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"notificationTypes": ["VnfLcmOperationOccurrenceNotification"]}, True),
        ({"notificationTypes": ["VnfIdentifierCreationNotification"]}, False),
        ({"operationTypes": ["INSTANTIATE", "SCALE"]}, True),
        ({"operationTypes": ["TERMINATE"]}, False),
        ({"operationStates": ["COMPLETED"]}, True),
        ({"operationStates": ["FAILED_TEMP", "FAILED"]}, False),
        ({"operationTypes": ["INSTANTIATE"], "operationStates": ["PROCESSING"]}, False),
        (
            {
                "operationTypes": ["INSTANTIATE"],
                "vnfInstanceSubscriptionFilter": {"vnfdIds": ["vnfd-slb"]},
            },
            False,
        ),
    ],
)
def test_op_occ_filter(given: dict[str, Any], expected: bool) -> None:
    instance = _instance()
    kind: LcmNotificationType = "VnfLcmOperationOccurrenceNotification"
    assert filter_matches(_flt(**given), kind, instance, _op_occ(instance)) is expected


def test_op_occ_filter_needs_the_occurrence() -> None:
    with pytest.raises(ValueError, match="operation occurrence"):
        filter_matches(_flt(), "VnfLcmOperationOccurrenceNotification", _instance())


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'lcm.db'}")
    Base.metadata.create_all(engine)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def _subscribe(
    session: Session, verbosity: str = "FULL", flt: dict[str, Any] | None = None
) -> LccnSubscriptionRow:
    row = LccnSubscriptionRow(
        id=str(uuid.uuid4()),
        callback_uri=f"http://consumer.example/{verbosity.lower()}",
        filter=flt,
        verbosity=verbosity,
    )
    session.add(row)
    return row


def _queued(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """Queued payloads, each checked against the ETSI schema and the project's model."""
    with sessions() as session:
        rows = session.scalars(select(NotificationOutbox).order_by(NotificationOutbox.id))
        payloads = [row.payload for row in rows]
    for payload in payloads:
        kind = payload["notificationType"]
        validate(NOTIFICATION_DEFS, kind, payload)
        MODELS[kind].model_validate(payload)
    return payloads


def test_identifier_notifications(sessions: sessionmaker[Session]) -> None:
    instance = _instance()
    with transaction(sessions) as session:
        everything = _subscribe(session)
        _subscribe(session, "SHORT", {"vnfInstanceSubscriptionFilter": {"vnfdIds": ["other"]}})
        session.add(instance)
        session.flush()
        notify_identifier_created(session, instance, BASE)
        notify_identifier_deleted(session, instance, BASE + "/")
    created, deleted = _queued(sessions)
    assert created["notificationType"] == "VnfIdentifierCreationNotification"
    assert deleted["notificationType"] == "VnfIdentifierDeletionNotification"
    for payload in (created, deleted):
        assert payload["subscriptionId"] == everything.id
        assert payload["vnfInstanceId"] == instance.id
        assert payload["_links"] == {
            "vnfInstance": {"href": f"{BASE}/vnflcm/v2/vnf_instances/{instance.id}"},
            "subscription": {"href": f"{BASE}/vnflcm/v2/subscriptions/{everything.id}"},
        }


def _op_occ_payloads(
    sessions: sessionmaker[Session], status: NotificationStatus, **overrides: Any
) -> dict[str, dict[str, Any]]:
    instance = _instance()
    occ = _op_occ(instance, **overrides)
    with transaction(sessions) as session:
        _subscribe(session, "FULL")
        _subscribe(session, "SHORT")
        _subscribe(session, "FULL", {"notificationTypes": ["VnfIdentifierCreationNotification"]})
        session.add(instance)
        session.flush()
        session.add(occ)
        session.flush()
        sent = notify_op_occ(session, occ, instance, BASE, notification_status=status)
    assert sent == 2
    payloads = _queued(sessions)
    assert len({p["id"] for p in payloads}) == 1
    for payload in payloads:
        assert payload["vnfLcmOpOccId"] == occ.id
        assert payload["vnfInstanceId"] == instance.id
        assert payload["notificationStatus"] == status
        assert (
            payload["_links"]["vnfLcmOpOcc"]["href"] == f"{BASE}/vnflcm/v2/vnf_lcm_op_occs/{occ.id}"
        )
    return {p["verbosity"]: p for p in payloads}


def test_op_occ_result_full_and_short(sessions: sessionmaker[Session]) -> None:
    by_verbosity = _op_occ_payloads(sessions, "RESULT")
    full, short = by_verbosity["FULL"], by_verbosity["SHORT"]
    assert full["operation"] == "INSTANTIATE" and full["operationState"] == "COMPLETED"
    assert full["isAutomaticInvocation"] is False
    assert full["affectedVnfcs"] == RESOURCE_CHANGES["affectedVnfcs"]
    assert full["affectedVirtualLinks"] == RESOURCE_CHANGES["affectedVirtualLinks"]
    assert full["changedInfo"] == {"vnfInstanceName": "edge-nat-renamed"}
    assert "error" not in full
    details = {"affectedVnfcs", "affectedVirtualLinks", "changedInfo", "error"}
    assert not details & short.keys()
    assert short["operationState"] == "COMPLETED"


def test_op_occ_start_has_no_change_details(sessions: sessionmaker[Session]) -> None:
    by_verbosity = _op_occ_payloads(
        sessions, "START", operation_state="STARTING", resource_changes=None, changed_info=None
    )
    assert not {"affectedVnfcs", "changedInfo", "error"} & by_verbosity["FULL"].keys()


def test_op_occ_failure_carries_the_error(sessions: sessionmaker[Session]) -> None:
    error = {"status": 500, "detail": "the local VIM refused the unit"}
    by_verbosity = _op_occ_payloads(
        sessions, "RESULT", operation_state="FAILED_TEMP", error=error, changed_info=None
    )
    assert by_verbosity["FULL"]["error"] == error
    assert "affectedVnfcs" in by_verbosity["FULL"]
    # SOL003: error is present whenever the state is FAILED_TEMP, FAILED or ROLLED_BACK.
    assert by_verbosity["SHORT"]["error"] == error
    assert "affectedVnfcs" not in by_verbosity["SHORT"]
