"""Turn stored NSD rows into the API's NsdInfo representation."""

from __future__ import annotations

from typing import Any

from nfvo.nsd.models import NsdRow
from nfvo.nsd.schemas import API_MAJOR, API_NAME


def api_root(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/{API_NAME}/{API_MAJOR}"


def nsd_href(base_url: str, nsd_info_id: str) -> str:
    return f"{api_root(base_url)}/ns_descriptors/{nsd_info_id}"


def nsd_info(row: NsdRow, base_url: str) -> dict[str, Any]:
    """The NsdInfo of a row, as a JSON-ready dict with absent attributes left out."""
    href = nsd_href(base_url, row.id)
    info: dict[str, Any] = {"id": row.id}
    if row.onboarding_state == "ONBOARDED":
        info.update(
            {
                "nsdId": row.nsd_id,
                "nsdName": row.nsd_name,
                "nsdVersion": row.nsd_version,
                "nsdDesigner": row.nsd_designer,
                "nsdInvariantId": row.nsd_invariant_id,
                "vnfPkgIds": list(row.vnf_pkg_ids),
                # No PNFDs or nested NSDs yet: onboarding refuses NSDs naming them.
                "pnfdInfoIds": [],
                "nestedNsdInfoIds": [],
            }
        )
        # archiveSecurityOption, signingCertificate, artifacts: already in API shape.
        info.update(row.onboarded or {})
    info["nsdOnboardingState"] = row.onboarding_state
    if row.onboarding_failure is not None:
        info["onboardingFailureDetails"] = row.onboarding_failure
    info["nsdOperationalState"] = row.operational_state
    info["nsdUsageState"] = row.usage_state
    if row.user_defined_data:
        info["userDefinedData"] = row.user_defined_data
    info["_links"] = {"self": {"href": href}, "nsd_content": {"href": f"{href}/nsd_content"}}
    return info
