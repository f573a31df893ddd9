"""Which subscriptions an NSD event reaches, and the notifications they get (SOL005 5.5.2.9-12)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from nfvo.nsd.models import NsdmSubscriptionRow, NsdRow
from nfvo.nsd.schemas import API_VERSION, NotificationType, NsdmNotificationsFilter
from nfvo.nsd.views import api_root, nsd_href
from sol013.subscriptions import notify_subscribers


@dataclass(frozen=True)
class NsdFacts:
    """The NSD attributes subscription filters look at, taken before a delete."""

    nsd_info_id: str
    nsd_id: str | None
    name: str | None
    version: str | None
    designer: str | None
    invariant_id: str | None
    vnf_pkg_ids: tuple[str, ...]
    onboarding_state: str
    operational_state: str
    usage_state: str

    @classmethod
    def of(cls, row: NsdRow) -> NsdFacts:
        return cls(
            nsd_info_id=row.id,
            nsd_id=row.nsd_id,
            name=row.nsd_name,
            version=row.nsd_version,
            designer=row.nsd_designer,
            invariant_id=row.nsd_invariant_id,
            vnf_pkg_ids=tuple(row.vnf_pkg_ids or ()),
            onboarding_state=row.onboarding_state,
            operational_state=row.operational_state,
            usage_state=row.usage_state,
        )


def filter_matches(
    flt: NsdmNotificationsFilter | None, kind: NotificationType, nsd: NsdFacts
) -> bool:
    """SOL005 filter semantics: every given attribute must match; within a list, any value."""
    if flt is None:
        return True
    if flt.names_pnfds():
        # A PNFD attribute cannot match a notification about an NSD.
        return False
    checks: list[bool] = []
    if flt.notificationTypes is not None:
        checks.append(kind in flt.notificationTypes)
    pairs: tuple[tuple[list[Any] | None, Any], ...] = (
        (flt.nsdInfoId, nsd.nsd_info_id),
        (flt.nsdId, nsd.nsd_id),
        (flt.nsdName, nsd.name),
        (flt.nsdVersion, nsd.version),
        (flt.nsdDesigner, nsd.designer),
        (flt.nsdInvariantId, nsd.invariant_id),
        (flt.nsdOnboardingState, nsd.onboarding_state),
        (flt.nsdOperationalState, nsd.operational_state),
        (flt.nsdUsageState, nsd.usage_state),
    )
    for wanted, value in pairs:
        if wanted is not None:
            checks.append(value in wanted)
    if flt.vnfPkgIds is not None:
        checks.append(bool(set(flt.vnfPkgIds) & set(nsd.vnf_pkg_ids)))
    if flt.nestedNsdInfoIds is not None:
        # No NSD here has nested NSDs.
        checks.append(False)
    return all(checks)


def _enqueue(
    session: Session, kind: NotificationType, nsd: NsdFacts, base_url: str, body: dict[str, Any]
) -> int:
    def matches(sub: NsdmSubscriptionRow) -> bool:
        flt = NsdmNotificationsFilter.model_validate(sub.filter) if sub.filter else None
        return filter_matches(flt, kind, nsd)

    def links(sub: NsdmSubscriptionRow) -> dict[str, Any]:
        return {
            "nsdInfo": {"href": nsd_href(base_url, nsd.nsd_info_id)},
            "subscription": {"href": f"{api_root(base_url)}/subscriptions/{sub.id}"},
        }

    content: dict[str, Any] = {"nsdInfoId": nsd.nsd_info_id}
    if nsd.nsd_id is not None:
        content["nsdId"] = nsd.nsd_id
    content.update(body)
    return notify_subscribers(
        session,
        NsdmSubscriptionRow,
        kind,
        api_version=API_VERSION,
        matches=matches,
        content=lambda sub: content,
        links=links,
    )


def notify_onboarded(session: Session, row: NsdRow, base_url: str) -> int:
    return _enqueue(session, "NsdOnBoardingNotification", NsdFacts.of(row), base_url, {})


def notify_onboarding_failed(
    session: Session, row: NsdRow, failure: dict[str, Any], base_url: str, nsd_id: str | None
) -> int:
    """`nsd_id`: the nsdId, when onboarding got as far as reading it."""
    facts = NsdFacts.of(row)
    if nsd_id is not None:
        facts = dataclasses.replace(facts, nsd_id=nsd_id)
    body = {"onboardingFailureDetails": failure}
    return _enqueue(session, "NsdOnboardingFailureNotification", facts, base_url, body)


def notify_changed(session: Session, row: NsdRow, base_url: str) -> int:
    body = {"nsdOperationalState": row.operational_state}
    return _enqueue(session, "NsdChangeNotification", NsdFacts.of(row), base_url, body)


def notify_deleted(session: Session, nsd: NsdFacts, base_url: str) -> int:
    return _enqueue(session, "NsdDeletionNotification", nsd, base_url, {})
