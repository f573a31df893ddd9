"""VNF package resources: their state machine, storage and notifications.

State changes use conditional UPDATEs (`WHERE onboarding_state = ...`) so two
API replicas racing on one package cannot both win; onboarding itself runs on
a worker thread and is the only place a package becomes ONBOARDED, in the
same transaction that enqueues its notifications.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from descriptors.csar import CsarLimits
from descriptors.errors import DescriptorError
from nfvo.content_store import ContentStore, StagedUpload
from nfvo.settings import Settings
from nfvo.vnfpkgm import notifications
from nfvo.vnfpkgm.fetch import FetchError, fetch_to_staging
from nfvo.vnfpkgm.models import VnfPackageRow
from nfvo.vnfpkgm.onboarding import OnboardedPackage, inspect_package
from nfvo.vnfpkgm.schemas import UploadVnfPackageFromUriRequest, VnfPkgInfoModifications
from sol013.merge_patch import merge_patch
from sol013.problem import ApiError
from store.base import transaction

log = logging.getLogger(__name__)


def _problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"status": status, "title": title, "detail": detail}


class PackageService:
    """Every operation on VNF package resources, shared by the API and the CLI's server side."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        store: ContentStore,
        settings: Settings,
        *,
        on_notify: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessions = session_factory
        self.store = store
        self.settings = settings
        self._on_notify = on_notify
        self._executor = ThreadPoolExecutor(
            max_workers=settings.onboarding_workers, thread_name_prefix="onboarding"
        )

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)

    # -- reads ---------------------------------------------------------------------------

    def get(self, session: Session, pkg_id: str) -> VnfPackageRow:
        row = session.get(VnfPackageRow, pkg_id)
        if row is None:
            raise ApiError(404, f"VNF package {pkg_id} does not exist")
        return row

    def list_all(self, session: Session) -> list[VnfPackageRow]:
        query = select(VnfPackageRow).order_by(VnfPackageRow.created_at, VnfPackageRow.id)
        return list(session.scalars(query))

    def onboarded(self, session: Session, pkg_id: str) -> VnfPackageRow:
        row = self.get(session, pkg_id)
        if row.onboarding_state != "ONBOARDED":
            raise ApiError(
                409,
                f"VNF package {pkg_id} is not onboarded (onboardingState {row.onboarding_state})",
            )
        return row

    # -- create / modify / delete ----------------------------------------------------------

    def create(self, user_defined_data: dict[str, Any] | None) -> VnfPackageRow:
        row = VnfPackageRow(id=str(uuid.uuid4()), user_defined_data=user_defined_data or {})
        with transaction(self.sessions) as session:
            session.add(row)
        return row

    def modify(
        self,
        pkg_id: str,
        changes: VnfPkgInfoModifications,
        *,
        check_etag: Callable[[VnfPackageRow], None],
        base_url: str,
    ) -> VnfPackageRow:
        with transaction(self.sessions) as session:
            row = session.get(VnfPackageRow, pkg_id, with_for_update=True)
            if row is None:
                raise ApiError(404, f"VNF package {pkg_id} does not exist")
            check_etag(row)
            state_changed = False
            if changes.operationalState is not None:
                if row.onboarding_state != "ONBOARDED":
                    raise ApiError(
                        409,
                        "operationalState can only change once the package is ONBOARDED "
                        f"(onboardingState is {row.onboarding_state})",
                    )
                if row.operational_state == changes.operationalState:
                    raise ApiError(
                        409, f"VNF package {pkg_id} is already {changes.operationalState}"
                    )
                row.operational_state = changes.operationalState.value
                state_changed = True
            if changes.userDefinedData is not None:
                row.user_defined_data = merge_patch(row.user_defined_data, changes.userDefinedData)
            row.revision += 1
            if state_changed:
                sent = notifications.notify_changed(
                    session, notifications.PackageFacts.of(row), "OP_STATE_CHANGE", base_url
                )
        if state_changed and sent:
            self._on_notify()
        return row

    def delete(self, pkg_id: str, *, base_url: str) -> None:
        with transaction(self.sessions) as session:
            row = session.get(VnfPackageRow, pkg_id, with_for_update=True)
            if row is None:
                raise ApiError(404, f"VNF package {pkg_id} does not exist")
            if row.onboarding_state in ("UPLOADING", "PROCESSING"):
                raise ApiError(409, f"VNF package {pkg_id} is {row.onboarding_state}; try later")
            if row.operational_state != "DISABLED" or row.usage_state != "NOT_IN_USE":
                raise ApiError(
                    409,
                    f"VNF package {pkg_id} is {row.operational_state} and {row.usage_state}; "
                    "only a DISABLED package that is NOT_IN_USE can be deleted",
                )
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

    def _transition(self, pkg_id: str, frm: tuple[str, ...], to: str, **values: Any) -> bool:
        with transaction(self.sessions) as session:
            result = session.execute(
                update(VnfPackageRow)
                .where(VnfPackageRow.id == pkg_id, VnfPackageRow.onboarding_state.in_(frm))
                .values(onboarding_state=to, revision=VnfPackageRow.revision + 1, **values)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def begin_upload(self, pkg_id: str, source: str) -> None:
        """CREATED -> UPLOADING, or 409 if the package is not waiting for content."""
        if self._transition(
            pkg_id, ("CREATED",), "UPLOADING", onboarding_failure=None, upload_source=source
        ):
            return
        with self.sessions() as session:
            row = self.get(session, pkg_id)
            raise ApiError(
                409,
                f"VNF package {pkg_id} is {row.onboarding_state}; content can only be "
                "uploaded to a package in CREATED",
            )

    def fail_upload(self, pkg_id: str, status: int, title: str, detail: str) -> None:
        """Back to CREATED with the reason visible in onboardingFailureDetails."""
        self._transition(
            pkg_id,
            ("UPLOADING", "PROCESSING"),
            "CREATED",
            onboarding_failure=_problem(status, title, detail),
        )

    def accept_upload(self, pkg_id: str, staged: StagedUpload, base_url: str) -> Future[None]:
        """UPLOADING -> PROCESSING; onboarding continues on a worker thread."""
        if not self._transition(pkg_id, ("UPLOADING",), "PROCESSING"):
            self.store.discard(staged.path)
            raise ApiError(409, f"VNF package {pkg_id} left UPLOADING during the upload")
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
        except DescriptorError as exc:
            where = f" (at {exc.location})" if exc.location else ""
            failure = (422, "Invalid VNF package", f"{exc.detail}{where}")
        except ApiError as exc:
            failure = (exc.status, "VNF package refused", exc.detail)
        except Exception as exc:
            log.exception("onboarding package %s failed", pkg_id)
            failure = (500, "Onboarding failed", f"internal error: {exc}")
        # The package is not ONBOARDED, so none of its files may stay.
        self.store.discard(staged.path)
        self.store.discard(extracted)
        self.store.remove(pkg_id)
        self.fail_upload(pkg_id, *failure)

    def _commit(
        self, pkg_id: str, staged: StagedUpload, package: OnboardedPackage, base_url: str
    ) -> None:
        with transaction(self.sessions) as session:
            row = session.get(VnfPackageRow, pkg_id, with_for_update=True)
            if row is None or row.onboarding_state != "PROCESSING":
                raise ApiError(409, f"VNF package {pkg_id} was deleted or reset during onboarding")
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
        with transaction(self.sessions) as session:
            stuck = list(
                session.scalars(
                    select(VnfPackageRow).where(
                        VnfPackageRow.onboarding_state.in_(("UPLOADING", "PROCESSING"))
                    )
                )
            )
            for row in stuck:
                row.onboarding_state = "CREATED"
                row.onboarding_failure = _problem(
                    500, "Onboarding interrupted", "the service stopped during upload or processing"
                )
                row.revision += 1
            onboarded = set(
                session.scalars(
                    select(VnfPackageRow.id).where(VnfPackageRow.onboarding_state == "ONBOARDED")
                )
            )
        self.store.clear_staging()
        for pkg_dir in self.store.root.iterdir():
            if not pkg_dir.name.startswith(".") and pkg_dir.name not in onboarded:
                self.store.discard(pkg_dir)
        return len(stuck)
