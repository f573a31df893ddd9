"""The in-process NFVO side of Or-Vnfm: the VNFM's NfvoClient on the NFVO's own store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from descriptors.vnfd import Vnfd
from nfvo.grant.schemas import GrantRequest
from nfvo.grant.service import GrantService
from nfvo.vnfpkgm.models import VnfPackageRow
from sol013.problem import ApiError
from store.base import transaction
from vnfm.nfvo_client import GrantRefused, PackageInfo


class InProcessNfvo:
    """NfvoClient for a VNFM running in the same service as the NFVO."""

    def __init__(
        self, sessions: sessionmaker[Session], grants: GrantService, api_root: str
    ) -> None:
        self.sessions = sessions
        self.grants = grants
        # Where the Grant's links point: this service's own base URL.
        self.api_root = api_root

    def _row(self, session: Session, vnfd_id: str) -> VnfPackageRow | None:
        return session.scalar(
            select(VnfPackageRow).where(
                VnfPackageRow.vnfd_id == vnfd_id,
                VnfPackageRow.onboarding_state == "ONBOARDED",
            )
        )

    def package_for_vnfd(self, vnfd_id: str) -> PackageInfo | None:
        with self.sessions() as session:
            row = self._row(session, vnfd_id)
            if row is None:
                return None
            return PackageInfo(
                vnf_pkg_id=row.id,
                vnfd_id=vnfd_id,
                vnf_provider=row.vnf_provider or "",
                vnf_product_name=row.vnf_product_name or "",
                vnf_software_version=row.vnf_software_version or "",
                vnfd_version=row.vnfd_version or "",
                onboarding_state=row.onboarding_state,
                operational_state=row.operational_state,
            )

    def vnfd(self, vnfd_id: str) -> Vnfd:
        with self.sessions() as session:
            row = self._row(session, vnfd_id)
            if row is None or row.vnfd is None:
                raise KeyError(vnfd_id)
            return Vnfd.model_validate(row.vnfd)

    def request_grant(self, grant_request: dict[str, Any]) -> dict[str, Any]:
        try:
            grant = self.grants.grant_now(GrantRequest.model_validate(grant_request), self.api_root)
        except ApiError as exc:
            if exc.status == 403:
                raise GrantRefused(exc.detail) from None
            raise
        return grant.model_dump(mode="json", by_alias=True, exclude_none=True)

    def instances_changed(self, vnfd_id: str, count: int) -> None:
        with transaction(self.sessions) as session:
            row = self._row(session, vnfd_id)
            if row is None:
                return
            usage = "IN_USE" if count > 0 else "NOT_IN_USE"
            if row.usage_state != usage:
                row.usage_state = usage
                row.revision += 1
