"""Which LCM subscriptions an event reaches, and the notifications they get (SOL003 5.5.2).

Every function queues its notifications in the caller's session, so they are committed (or
rolled back) with the change they report; wake the dispatcher after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from sqlalchemy.orm import Session

from sol013.subscriptions import ProductFacts, notify_subscribers, product_matches
from vnfm.models import LccnSubscriptionRow, LcmOpOccRow, VnfInstanceRow
from vnfm.schemas import (
    API_VERSION,
    LcmNotificationType,
    LcmOperationStateType,
    LcmOperationType,
    LcmOpOccNotificationVerbosityType,
    LifecycleChangeNotificationsFilter,
    VnfInstanceSubscriptionFilter,
)
from vnfm.views import API_ROOT, instance_href

NotificationStatus = Literal["START", "RESULT"]
OP_OCC_NOTIFICATION: LcmNotificationType = "VnfLcmOperationOccurrenceNotification"
# error is present exactly in these states (SOL003 table 5.5.2.17-1).
_ERROR_STATES = frozenset(
    {
        LcmOperationStateType.FAILED_TEMP,
        LcmOperationStateType.FAILED,
        LcmOperationStateType.ROLLED_BACK,
    }
)
# ResourceChanges attributes a FULL result notification repeats.
_AFFECTED = (
    "affectedVnfcs",
    "affectedVirtualLinks",
    "affectedExtLinkPorts",
    "affectedVirtualStorages",
)


def instance_matches(flt: VnfInstanceSubscriptionFilter | None, instance: VnfInstanceRow) -> bool:
    """VnfInstanceSubscriptionFilter: every given attribute must match; within a list, any value."""
    if flt is None:
        return True
    checks: list[bool] = []
    if flt.vnfdIds is not None:
        checks.append(instance.vnfd_id in flt.vnfdIds)
    if flt.vnfProductsFromProviders is not None:
        facts = ProductFacts(
            instance.vnf_provider,
            instance.vnf_product_name,
            instance.vnf_software_version,
            instance.vnfd_version,
        )
        checks.append(
            any(
                product_matches(entry.vnfProvider, entry.vnfProducts, facts)
                for entry in flt.vnfProductsFromProviders
            )
        )
    if flt.vnfInstanceIds is not None:
        checks.append(instance.id in flt.vnfInstanceIds)
    if flt.vnfInstanceNames is not None:
        checks.append(instance.vnf_instance_name in flt.vnfInstanceNames)
    return all(checks)


def filter_matches(
    flt: LifecycleChangeNotificationsFilter | None,
    kind: LcmNotificationType,
    instance: VnfInstanceRow,
    op_occ: LcmOpOccRow | None = None,
) -> bool:
    """LifecycleChangeNotificationsFilter semantics.

    ``operationTypes`` and ``operationStates`` select among operation occurrence
    notifications only (``op_occ`` is required for those); other types ignore them.
    """
    if flt is None:
        return True
    if flt.notificationTypes is not None and kind not in flt.notificationTypes:
        return False
    if kind == OP_OCC_NOTIFICATION:
        if op_occ is None:
            raise ValueError(f"{kind} needs the operation occurrence to match filters")
        if flt.operationTypes is not None and op_occ.operation not in flt.operationTypes:
            return False
        if flt.operationStates is not None and op_occ.operation_state not in flt.operationStates:
            return False
    return instance_matches(flt.vnfInstanceSubscriptionFilter, instance)


def _subscription_filter(sub: LccnSubscriptionRow) -> LifecycleChangeNotificationsFilter | None:
    return LifecycleChangeNotificationsFilter.model_validate(sub.filter) if sub.filter else None


def _subscription_href(base_url: str, subscription_id: str) -> str:
    return f"{base_url.rstrip('/')}{API_ROOT}/subscriptions/{subscription_id}"


def op_occ_href(base_url: str, op_occ_id: str) -> str:
    return f"{base_url.rstrip('/')}{API_ROOT}/vnf_lcm_op_occs/{op_occ_id}"


def _notify(
    session: Session,
    kind: LcmNotificationType,
    instance: VnfInstanceRow,
    base_url: str,
    content: Callable[[LccnSubscriptionRow], dict[str, Any]],
    op_occ: LcmOpOccRow | None = None,
) -> int:
    instance_link = {"href": instance_href(base_url, instance.id)}

    def links(sub: LccnSubscriptionRow) -> dict[str, Any]:
        result = {
            "vnfInstance": instance_link,
            "subscription": {"href": _subscription_href(base_url, sub.id)},
        }
        if op_occ is not None:
            result["vnfLcmOpOcc"] = {"href": op_occ_href(base_url, op_occ.id)}
        return result

    return notify_subscribers(
        session,
        LccnSubscriptionRow,
        kind,
        api_version=API_VERSION,
        matches=lambda sub: filter_matches(_subscription_filter(sub), kind, instance, op_occ),
        content=content,
        links=links,
    )


def notify_identifier_created(session: Session, row: VnfInstanceRow, base_url: str) -> None:
    """Queue VnfIdentifierCreationNotification for ``row`` (an ``on_created`` hook)."""
    content = {"vnfInstanceId": row.id}
    _notify(session, "VnfIdentifierCreationNotification", row, base_url, lambda sub: content)


def notify_identifier_deleted(session: Session, row: VnfInstanceRow, base_url: str) -> None:
    """Queue VnfIdentifierDeletionNotification for ``row`` (an ``on_deleted`` hook)."""
    content = {"vnfInstanceId": row.id}
    _notify(session, "VnfIdentifierDeletionNotification", row, base_url, lambda sub: content)


def op_occ_content(
    op_occ: LcmOpOccRow,
    verbosity: LcmOpOccNotificationVerbosityType,
    notification_status: NotificationStatus,
) -> dict[str, Any]:
    """The attributes of a VnfLcmOperationOccurrenceNotification besides the common ones.

    Change details (affected resources, changedInfo, changedExtConnectivity) are sent only in
    a RESULT notification to a FULL subscription; ``error`` follows the operation state
    whatever the verbosity, as SOL003 requires.
    """
    body: dict[str, Any] = {
        "notificationStatus": notification_status,
        "operationState": op_occ.operation_state,
        "vnfInstanceId": op_occ.vnf_instance_id,
        "operation": op_occ.operation,
        "isAutomaticInvocation": op_occ.is_automatic_invocation,
        "verbosity": verbosity.value,
        "vnfLcmOpOccId": op_occ.id,
    }
    full = verbosity is LcmOpOccNotificationVerbosityType.FULL
    if full and notification_status == "RESULT":
        changes = op_occ.resource_changes or {}
        for name in _AFFECTED:
            if changes.get(name):
                body[name] = changes[name]
        if op_occ.changed_info and op_occ.operation != LcmOperationType.CHANGE_VNFPKG:
            body["changedInfo"] = op_occ.changed_info
        if op_occ.changed_ext_connectivity:
            body["changedExtConnectivity"] = op_occ.changed_ext_connectivity
    if op_occ.operation_state in _ERROR_STATES and op_occ.error is not None:
        body["error"] = op_occ.error
    return body


def notify_op_occ(
    session: Session,
    op_occ_row: LcmOpOccRow,
    instance_row: VnfInstanceRow,
    base_url: str,
    *,
    notification_status: NotificationStatus,
) -> int:
    """Queue VnfLcmOperationOccurrenceNotification (START or RESULT) for an occurrence."""

    def content(sub: LccnSubscriptionRow) -> dict[str, Any]:
        verbosity = LcmOpOccNotificationVerbosityType(sub.verbosity)
        return op_occ_content(op_occ_row, verbosity, notification_status)

    return _notify(session, OP_OCC_NOTIFICATION, instance_row, base_url, content, op_occ=op_occ_row)
