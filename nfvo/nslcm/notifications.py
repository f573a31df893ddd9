"""Which subscriptions an NS LCM event reaches, and the notifications they get (SOL005 6.5.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from nfvo.nslcm.models import NsInstanceRow, NsLcmOpOccRow, NsLcmSubscriptionRow
from nfvo.nslcm.schemas import API_VERSION, LifecycleChangeNotificationsFilter, NotificationType
from nfvo.nslcm.views import api_root, ns_instance_href, op_occ_href
from sol013.subscriptions import notify_subscribers


@dataclass(frozen=True)
class NsFacts:
    """The NS instance attributes subscription filters look at, taken before a delete."""

    ns_instance_id: str
    name: str
    nsd_id: str
    vnfd_ids: tuple[str, ...]

    @classmethod
    def of(cls, row: NsInstanceRow) -> NsFacts:
        vnfd_ids = tuple(str(vnf["vnfdId"]) for vnf in row.vnf_instances or () if vnf.get("vnfdId"))
        return cls(row.id, row.name, row.nsd_id, vnfd_ids)


def filter_matches(
    flt: LifecycleChangeNotificationsFilter | None, kind: NotificationType, ns: NsFacts
) -> bool:
    """SOL005 filter semantics: every given attribute must match; within a list, any value.

    Only the attributes an identifier notification carries are looked at; the
    operation attributes (operationTypes, operationStates, ...) concern other
    notification types, so they narrow nothing here.
    """
    if flt is None:
        return True
    if flt.notificationTypes is not None and kind not in flt.notificationTypes:
        return False
    sub = flt.nsInstanceSubscriptionFilter
    if sub is None:
        return True
    checks: list[bool] = []
    if sub.nsdIds is not None:
        checks.append(ns.nsd_id in sub.nsdIds)
    if sub.vnfdIds is not None:
        checks.append(bool(set(sub.vnfdIds) & set(ns.vnfd_ids)))
    if sub.pnfdIds is not None:
        # No NS here contains PNFs.
        checks.append(False)
    if sub.nsInstanceIds is not None:
        checks.append(ns.ns_instance_id in sub.nsInstanceIds)
    if sub.nsInstanceNames is not None:
        checks.append(ns.name in sub.nsInstanceNames)
    return all(checks)


def op_matches(flt: LifecycleChangeNotificationsFilter | None, op: NsLcmOpOccRow) -> bool:
    """The operation attributes of a filter, for an NsLcmOperationOccurrenceNotification."""
    if flt is None:
        return True
    if flt.operationTypes is not None and op.operation not in flt.operationTypes:
        return False
    return flt.operationStates is None or op.operation_state in flt.operationStates


def _enqueue(
    session: Session,
    kind: NotificationType,
    ns: NsFacts,
    base_url: str,
    body: dict[str, Any],
    *,
    op: NsLcmOpOccRow | None = None,
    short: tuple[str, ...] = (),
) -> int:
    """Queue ``kind`` for every matching subscription.

    ``short``: the attributes a subscription with verbosity SHORT does not get.
    """

    def matches(sub: NsLcmSubscriptionRow) -> bool:
        flt = LifecycleChangeNotificationsFilter.model_validate(sub.filter) if sub.filter else None
        if not filter_matches(flt, kind, ns):
            return False
        return op is None or op_matches(flt, op)

    def links(sub: NsLcmSubscriptionRow) -> dict[str, Any]:
        found: dict[str, Any] = {
            "nsInstance": {"href": ns_instance_href(base_url, ns.ns_instance_id)},
            "subscription": {"href": f"{api_root(base_url)}/subscriptions/{sub.id}"},
        }
        if op is not None:
            found["nslcmOpOcc"] = {"href": op_occ_href(base_url, op.id)}
        return found

    content: dict[str, Any] = {"nsInstanceId": ns.ns_instance_id, **body}
    brief = {key: value for key, value in content.items() if key not in short}

    def content_for(sub: NsLcmSubscriptionRow) -> dict[str, Any]:
        return brief if sub.verbosity == "SHORT" else content

    return notify_subscribers(
        session,
        NsLcmSubscriptionRow,
        kind,
        api_version=API_VERSION,
        matches=matches,
        content=content_for,
        links=links,
    )


# The ResourceChanges attributes and their names in the notification (SOL005 6.5.2.5).
_AFFECTED = {
    "affectedVnfs": "affectedVnf",
    "affectedVls": "affectedVl",
}


def notify_op_occ(
    session: Session,
    op: NsLcmOpOccRow,
    ns: NsInstanceRow,
    base_url: str,
    notification_status: str,
) -> int:
    """NsLcmOperationOccurrenceNotification for ``op`` as it is now (its state just entered).

    The affected* attributes (cumulative, as the occurrence's resourceChanges) only with
    verbosity FULL; the error in FAILED_TEMP, FAILED and PARTIALLY_COMPLETED (SOL005: "shall
    be present if operationState is FAILED_TEMP or FAILED"; a partial completion says what
    was skipped).
    """
    body: dict[str, Any] = {
        "nsLcmOpOccId": op.id,
        "operation": op.operation,
        "notificationStatus": notification_status,
        "operationState": op.operation_state,
        "isAutomaticInvocation": op.is_automatic_invocation,
    }
    changes = op.resource_changes or {}
    for key, name in _AFFECTED.items():
        if changes.get(key):
            body[name] = changes[key]
    if op.error is not None and op.operation_state in (
        "FAILED_TEMP",
        "FAILED",
        "PARTIALLY_COMPLETED",
    ):
        body["error"] = op.error
    return _enqueue(
        session,
        "NsLcmOperationOccurrenceNotification",
        NsFacts.of(ns),
        base_url,
        body,
        op=op,
        short=tuple(_AFFECTED.values()),
    )


def notify_created(session: Session, row: NsInstanceRow, base_url: str) -> int:
    return _enqueue(session, "NsIdentifierCreationNotification", NsFacts.of(row), base_url, {})


def notify_deleted(session: Session, ns: NsFacts, base_url: str) -> int:
    return _enqueue(session, "NsIdentifierDeletionNotification", ns, base_url, {})
