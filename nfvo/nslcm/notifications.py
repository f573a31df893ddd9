"""Which subscriptions an NS LCM event reaches, and the notifications they get (SOL005 6.5.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from nfvo.nslcm.models import NsInstanceRow, NsLcmSubscriptionRow
from nfvo.nslcm.schemas import API_VERSION, LifecycleChangeNotificationsFilter, NotificationType
from nfvo.nslcm.views import api_root, ns_instance_href
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


def _enqueue(
    session: Session, kind: NotificationType, ns: NsFacts, base_url: str, body: dict[str, Any]
) -> int:
    def matches(sub: NsLcmSubscriptionRow) -> bool:
        flt = LifecycleChangeNotificationsFilter.model_validate(sub.filter) if sub.filter else None
        return filter_matches(flt, kind, ns)

    def links(sub: NsLcmSubscriptionRow) -> dict[str, Any]:
        return {
            "nsInstance": {"href": ns_instance_href(base_url, ns.ns_instance_id)},
            "subscription": {"href": f"{api_root(base_url)}/subscriptions/{sub.id}"},
        }

    content: dict[str, Any] = {"nsInstanceId": ns.ns_instance_id, **body}
    return notify_subscribers(
        session,
        NsLcmSubscriptionRow,
        kind,
        api_version=API_VERSION,
        matches=matches,
        content=lambda sub: content,
        links=links,
    )


def notify_created(session: Session, row: NsInstanceRow, base_url: str) -> int:
    return _enqueue(session, "NsIdentifierCreationNotification", NsFacts.of(row), base_url, {})


def notify_deleted(session: Session, ns: NsFacts, base_url: str) -> int:
    return _enqueue(session, "NsIdentifierDeletionNotification", ns, base_url, {})
