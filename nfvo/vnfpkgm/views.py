"""Turn stored package rows into the API's VnfPkgInfo representation."""

from __future__ import annotations

from typing import Any

from nfvo.vnfpkgm.models import VnfPackageRow
from nfvo.vnfpkgm.schemas import API_MAJOR, API_NAME


def api_root(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/{API_NAME}/{API_MAJOR}"


def package_href(base_url: str, pkg_id: str) -> str:
    return f"{api_root(base_url)}/vnf_packages/{pkg_id}"


def package_info(row: VnfPackageRow, base_url: str) -> dict[str, Any]:
    """The VnfPkgInfo of a row, as a JSON-ready dict with absent attributes left out."""
    href = package_href(base_url, row.id)
    info: dict[str, Any] = {
        "id": row.id,
        "onboardingState": row.onboarding_state,
        "operationalState": row.operational_state,
        "usageState": row.usage_state,
    }
    if row.onboarding_state == "ONBOARDED" and row.onboarded is not None:
        info.update(
            {
                "vnfdId": row.vnfd_id,
                "vnfProvider": row.vnf_provider,
                "vnfProductName": row.vnf_product_name,
                "vnfSoftwareVersion": row.vnf_software_version,
                "vnfdVersion": row.vnfd_version,
            }
        )
        # Everything else onboarding found, already in API shape.
        info.update(row.onboarded)
    if row.user_defined_data:
        info["userDefinedData"] = row.user_defined_data
    if row.onboarding_failure is not None:
        info["onboardingFailureDetails"] = row.onboarding_failure
    info["_links"] = {
        "self": {"href": href},
        "vnfd": {"href": f"{href}/vnfd"},
        "packageContent": {"href": f"{href}/package_content"},
    }
    return info
