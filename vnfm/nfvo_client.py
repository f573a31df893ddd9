"""What the VNFM needs from the NFVO (SOL003 reference point Or-Vnfm), as an interface.

Two implementations: in-process (`nfvo.vnfm_link`, the default single-service
deployment) and HTTP (SOL003 calls to a remote NFVO). The VNFM never imports
NFVO internals; it only sees this.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from descriptors.vnfd import Vnfd


class PackageInfo(BaseModel):
    """The onboarded package a VNFD belongs to, as the VNFM needs to know it."""

    model_config = ConfigDict(frozen=True)

    vnf_pkg_id: str
    vnfd_id: str
    vnf_provider: str
    vnf_product_name: str
    vnf_software_version: str
    vnfd_version: str
    onboarding_state: str
    operational_state: str


class GrantRefused(Exception):
    """The NFVO refused a grant; `detail` says why."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class NfvoClient(Protocol):
    """The VNFM's view of the NFVO."""

    def package_for_vnfd(self, vnfd_id: str) -> PackageInfo | None:
        """The onboarded package with this vnfdId, or None."""

    def vnfd(self, vnfd_id: str) -> Vnfd:
        """The typed VNFD; KeyError if no onboarded package has it."""

    def request_grant(self, grant_request: dict[str, Any]) -> dict[str, Any]:
        """A SOL003 Grant for the GrantRequest; GrantRefused if the NFVO says no."""

    def instances_changed(self, vnfd_id: str, count: int) -> None:
        """How many VNF instances now use the package (for its usageState)."""
