"""Which subscriptions a package event reaches, and the notifications they get."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from nfvo.vnfpkgm.models import PkgmSubscriptionRow, VnfPackageRow
from nfvo.vnfpkgm.schemas import (
    API_VERSION,
    NotificationType,
    PkgmNotificationsFilter,
    VnfProductsFromProvider,
)
from nfvo.vnfpkgm.views import api_root, package_href
from sol013.subscriptions import ProductFacts, notify_subscribers, product_matches

ChangeType = Literal["OP_STATE_CHANGE", "PKG_DELETE"]


@dataclass(frozen=True)
class PackageFacts:
    """The package attributes subscription filters look at, taken before a delete."""

    pkg_id: str
    vnfd_id: str | None
    provider: str | None
    product: str | None
    software_version: str | None
    vnfd_version: str | None
    operational_state: str
    usage_state: str
    vnfm_info: tuple[str, ...]

    @classmethod
    def of(cls, row: VnfPackageRow) -> PackageFacts:
        vnfm_info = (row.onboarded or {}).get("vnfmInfo") or []
        return cls(
            pkg_id=row.id,
            vnfd_id=row.vnfd_id,
            provider=row.vnf_provider,
            product=row.vnf_product_name,
            software_version=row.vnf_software_version,
            vnfd_version=row.vnfd_version,
            operational_state=row.operational_state,
            usage_state=row.usage_state,
            vnfm_info=tuple(vnfm_info),
        )


def filter_matches(
    flt: PkgmNotificationsFilter | None, kind: NotificationType, pkg: PackageFacts
) -> bool:
    """SOL005 filter semantics: every given attribute must match; within a list, any value."""
    if flt is None:
        return True
    checks: list[bool] = []
    if flt.notificationTypes is not None:
        checks.append(kind in flt.notificationTypes)
    if flt.vnfdId is not None:
        checks.append(pkg.vnfd_id in flt.vnfdId)
    if flt.vnfPkgId is not None:
        checks.append(pkg.pkg_id in flt.vnfPkgId)
    if flt.operationalState is not None:
        checks.append(pkg.operational_state in flt.operationalState)
    if flt.usageState is not None:
        checks.append(pkg.usage_state in flt.usageState)
    if flt.vnfmInfo is not None:
        checks.append(bool(set(flt.vnfmInfo) & set(pkg.vnfm_info)))
    if flt.vnfProductsFromProviders is not None:
        checks.append(any(_provider_matches(p, pkg) for p in flt.vnfProductsFromProviders))
    return all(checks)


def _provider_matches(provider: VnfProductsFromProvider, pkg: PackageFacts) -> bool:
    facts = ProductFacts(pkg.provider, pkg.product, pkg.software_version, pkg.vnfd_version)
    return product_matches(provider.vnfProvider, provider.products(), facts)


def _enqueue_for_matching(
    session: Session,
    kind: NotificationType,
    pkg: PackageFacts,
    base_url: str,
    body: dict[str, Any],
) -> int:
    def matches(sub: PkgmSubscriptionRow) -> bool:
        flt = PkgmNotificationsFilter.model_validate(sub.filter) if sub.filter else None
        return filter_matches(flt, kind, pkg)

    def links(sub: PkgmSubscriptionRow) -> dict[str, Any]:
        return {
            "vnfPackage": {"href": package_href(base_url, pkg.pkg_id)},
            "subscription": {"href": f"{api_root(base_url)}/subscriptions/{sub.id}"},
        }

    content = {"vnfPkgId": pkg.pkg_id, "vnfdId": pkg.vnfd_id, **body}
    return notify_subscribers(
        session,
        PkgmSubscriptionRow,
        kind,
        api_version=API_VERSION,
        matches=matches,
        content=lambda sub: content,
        links=links,
    )


def notify_onboarded(session: Session, row: VnfPackageRow, base_url: str) -> int:
    pkg = PackageFacts.of(row)
    body = {"vnfmInfo": list(pkg.vnfm_info)}
    return _enqueue_for_matching(session, "VnfPackageOnboardingNotification", pkg, base_url, body)


def notify_changed(session: Session, pkg: PackageFacts, change: ChangeType, base_url: str) -> int:
    body: dict[str, Any] = {"changeType": change}
    if change == "OP_STATE_CHANGE":
        body["operationalState"] = pkg.operational_state
    return _enqueue_for_matching(session, "VnfPackageChangeNotification", pkg, base_url, body)
