"""VNF package resources: their state machine, storage and notifications.

The state machine is shared with NSDs (`nfvo.content_service`); onboarding is
the only place a package becomes ONBOARDED, in the same transaction that
enqueues its notifications. A failed upload or onboarding goes back to
CREATED with the reason in onboardingFailureDetails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from descriptors.csar import CsarLimits
from nfvo.content_service import BUSY, ContentService, onboarding_failure, problem
from nfvo.content_store import StagedUpload
from nfvo.vnfpkgm import notifications
from nfvo.vnfpkgm.fetch import FetchError, fetch_to_staging
from nfvo.vnfpkgm.models import VnfPackageRow
from nfvo.vnfpkgm.onboarding import OnboardedPackage, inspect_package
from nfvo.vnfpkgm.schemas import UploadVnfPackageFromUriRequest, VnfPkgInfoModifications
from sol013.problem import ApiError
from store.base import transaction

log = logging.getLogger(__name__)


class PackageService(ContentService[VnfPackageRow]):
    """Every operation on VNF package resources, shared by the API and the CLI's server side."""

    row_type = VnfPackageRow
    label = "VNF package"
    noun = "package"
    onboarding_attr = "onboardingState"
    thread_name_prefix = "onboarding"
    operational_attr = "operationalState"

    # -- modify / delete -------------------------------------------------------------------

    def modify(
        self,
        pkg_id: str,
        changes: VnfPkgInfoModifications,
        *,
        check_etag: Callable[[VnfPackageRow], None],
        base_url: str,
    ) -> VnfPackageRow:
        sent = 0
        wanted = changes.operationalState
        with transaction(self.sessions) as session:
            row = self._lookup(session, pkg_id, lock=True)
            check_etag(row)
            state = wanted.value if wanted is not None else None
            if self._apply_changes(row, state, changes.userDefinedData):
                sent = notifications.notify_changed(
                    session, notifications.PackageFacts.of(row), "OP_STATE_CHANGE", base_url
                )
        if sent:
            self._on_notify()
        return row

    def delete(self, pkg_id: str, *, base_url: str) -> None:
        with transaction(self.sessions) as session:
            row = self._deletable(session, pkg_id)
            was_onboarded = row.onboarding_state == "ONBOARDED"
            facts = notifications.PackageFacts.of(row)
            session.delete(row)
            sent = (
                notifications.notify_changed(session, facts, "PKG_DELETE", base_url)
                if was_onboarded
                else 0
            )
        # Files go after the row: a crash in between leaves only orphan files,
        # which recovery removes, never a row pointing at missing content.
        self.store.remove(pkg_id)
        if sent:
            self._on_notify()

    # -- upload and onboarding -----------------------------------------------------------------

    def begin_upload(self, pkg_id: str, source: str) -> None:
        """CREATED -> UPLOADING, or 409 if the package is not waiting for content."""
        if not self._transition(
            pkg_id, ("CREATED",), "UPLOADING", onboarding_failure=None, upload_source=source
        ):
            self._refuse_upload(pkg_id, "a package in CREATED")

    def fail_upload(self, pkg_id: str, status: int, title: str, detail: str) -> None:
        """Back to CREATED with the reason visible in onboardingFailureDetails."""
        self._transition(pkg_id, BUSY, "CREATED", onboarding_failure=problem(status, title, detail))

    def accept_upload(self, pkg_id: str, staged: StagedUpload, base_url: str) -> Future[None]:
        """UPLOADING -> PROCESSING; onboarding continues on a worker thread."""
        self._left_uploading(pkg_id, staged)
        return self._executor.submit(self._onboard, pkg_id, staged, base_url)

    def upload_from_uri(
        self, pkg_id: str, request: UploadVnfPackageFromUriRequest, base_url: str
    ) -> Future[None]:
        self.begin_upload(pkg_id, request.addressInformation)
        return self._executor.submit(self._fetch_and_onboard, pkg_id, request, base_url)

    def _fetch_and_onboard(
        self, pkg_id: str, request: UploadVnfPackageFromUriRequest, base_url: str
    ) -> None:
        try:
            staged = fetch_to_staging(
                request,
                self.store,
                max_bytes=self.settings.max_upload_bytes,
                file_roots=self.settings.upload_file_roots,
            )
        except FetchError as exc:
            self.fail_upload(pkg_id, 400, "Package download failed", str(exc))
            return
        except Exception as exc:
            log.exception("fetching package %s failed", pkg_id)
            self.fail_upload(pkg_id, 500, "Package download failed", f"internal error: {exc}")
            return
        if self._transition(pkg_id, ("UPLOADING",), "PROCESSING"):
            self._onboard(pkg_id, staged, base_url)
        else:
            self.store.discard(staged.path)

    def _onboard(self, pkg_id: str, staged: StagedUpload, base_url: str) -> None:
        extracted = self.store.new_staging_dir()
        try:
            package = inspect_package(
                staged,
                extracted / "pkg",
                limits=CsarLimits(require_signature=self.settings.require_signed_packages),
                trust_anchor=self.settings.trust_anchor,
            )
            self._commit(pkg_id, staged, package, base_url)
            return
        except Exception as exc:
            failure = onboarding_failure(
                exc,
                invalid="Invalid VNF package",
                refused="VNF package refused",
                what=f"package {pkg_id}",
            )
        self._discard_content(pkg_id, staged, extracted)
        self.fail_upload(pkg_id, *failure)

    def _commit(
        self, pkg_id: str, staged: StagedUpload, package: OnboardedPackage, base_url: str
    ) -> None:
        with transaction(self.sessions) as session:
            row = self._locked_processing(session, pkg_id)
            clash = session.scalar(
                select(VnfPackageRow.id).where(
                    VnfPackageRow.vnfd_id == package.vnfd_id, VnfPackageRow.id != pkg_id
                )
            )
            if clash is not None:
                raise ApiError(
                    409, f"vnfdId {package.vnfd_id} is already onboarded as VNF package {clash}"
                )
            self.store.commit(pkg_id, staged, package.root)
            row.onboarding_state = "ONBOARDED"
            row.onboarding_failure = None
            row.vnfd_id = package.vnfd_id
            row.vnf_provider = package.provider
            row.vnf_product_name = package.product_name
            row.vnf_software_version = package.software_version
            row.vnfd_version = package.vnfd_version
            row.onboarded = package.info
            row.vnfd = package.vnfd
            row.layout = package.layout
            row.revision += 1
            try:
                session.flush()
            except IntegrityError:
                self.store.remove(pkg_id)
                raise ApiError(
                    409, f"vnfdId {package.vnfd_id} was onboarded concurrently"
                ) from None
            sent = notifications.notify_onboarded(session, row, base_url)
        if sent:
            self._on_notify()

    def recover(self) -> int:
        """After a crash: nothing stays UPLOADING/PROCESSING, no stray files remain."""
        interrupted = problem(
            500, "Onboarding interrupted", "the service stopped during upload or processing"
        )
        with transaction(self.sessions) as session:
            stuck = self._stuck(session)
        for pkg_id in stuck:
            self._transition(pkg_id, BUSY, "CREATED", onboarding_failure=interrupted)
        self._remove_orphans()
        return len(stuck)
