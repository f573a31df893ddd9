"""NS descriptor resources: their state machine, storage and notifications.

Same shape as the VNF package service (`nfvo.vnfpkgm.service`): state
changes are conditional UPDATEs so two API replicas cannot both take one
upload; onboarding runs on a worker thread and is the only place an NSD
becomes ONBOARDED, in the transaction that queues its notifications; files
are staged and moved into place with rename (`nfvo.content_store`).

Unlike VNF packages, a failed upload or onboarding leaves the resource in
ERROR (SOL005 NsdOnboardingStateType) with onboardingFailureDetails, and
sends NsdOnboardingFailureNotification; a new upload is accepted in CREATED
and in ERROR (SOL005 clause 5.4.4.3.3: 409 "if nsdOnboardingState has a value
other than CREATED or ERROR").
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
from nfvo.nsd import notifications
from nfvo.nsd.constituents import resolve_vnf_packages
from nfvo.nsd.models import NsdRow
from nfvo.nsd.onboarding import OnboardedNsd, UploadFormat, inspect_nsd
from nfvo.nsd.schemas import NsdInfoModifications
from nfvo.settings import Settings
from sol013.merge_patch import merge_patch
from sol013.problem import ApiError
from store.base import transaction

log = logging.getLogger(__name__)

# Where an upload may start from.
UPLOADABLE = ("CREATED", "ERROR")


def _problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"status": status, "title": title, "detail": detail}


class NsdService:
    """Every operation on NS descriptor resources; NS LCM uses `onboarded` and `set_usage`."""

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
            max_workers=settings.onboarding_workers, thread_name_prefix="nsd-onboarding"
        )

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)

    # -- reads ---------------------------------------------------------------------------

    def get(self, session: Session, nsd_info_id: str) -> NsdRow:
        row = session.get(NsdRow, nsd_info_id)
        if row is None:
            raise ApiError(404, f"NS descriptor {nsd_info_id} does not exist")
        return row

    def list_all(self, session: Session) -> list[NsdRow]:
        query = select(NsdRow).order_by(NsdRow.created_at, NsdRow.id)
        return list(session.scalars(query))

    def onboarded(self, session: Session, nsd_info_id: str) -> NsdRow:
        row = self.get(session, nsd_info_id)
        if row.onboarding_state != "ONBOARDED":
            raise ApiError(
                409,
                f"NS descriptor {nsd_info_id} is not onboarded "
                f"(nsdOnboardingState {row.onboarding_state})",
            )
        return row

    # -- create / modify / delete / usage ----------------------------------------------------

    def create(self, user_defined_data: dict[str, Any] | None) -> NsdRow:
        row = NsdRow(id=str(uuid.uuid4()), user_defined_data=user_defined_data or {})
        with transaction(self.sessions) as session:
            session.add(row)
        return row

    def modify(
        self,
        nsd_info_id: str,
        changes: NsdInfoModifications,
        *,
        check_etag: Callable[[NsdRow], None],
        base_url: str,
    ) -> NsdRow:
        sent = 0
        with transaction(self.sessions) as session:
            row = session.get(NsdRow, nsd_info_id, with_for_update=True)
            if row is None:
                raise ApiError(404, f"NS descriptor {nsd_info_id} does not exist")
            check_etag(row)
            wanted = changes.nsdOperationalState
            if wanted is not None:
                if row.onboarding_state != "ONBOARDED":
                    raise ApiError(
                        409,
                        "nsdOperationalState can only change once the NSD is ONBOARDED "
                        f"(nsdOnboardingState is {row.onboarding_state})",
                    )
                if row.operational_state == wanted:
                    raise ApiError(409, f"NS descriptor {nsd_info_id} is already {wanted}")
                row.operational_state = wanted.value
            if changes.userDefinedData is not None:
                row.user_defined_data = merge_patch(row.user_defined_data, changes.userDefinedData)
            row.revision += 1
            if wanted is not None:
                sent = notifications.notify_changed(session, row, base_url)
        if sent:
            self._on_notify()
        return row

    def delete(self, nsd_info_id: str, *, base_url: str) -> None:
        with transaction(self.sessions) as session:
            row = session.get(NsdRow, nsd_info_id, with_for_update=True)
            if row is None:
                raise ApiError(404, f"NS descriptor {nsd_info_id} does not exist")
            if row.onboarding_state in ("UPLOADING", "PROCESSING"):
                raise ApiError(
                    409, f"NS descriptor {nsd_info_id} is {row.onboarding_state}; try later"
                )
            if row.operational_state != "DISABLED" or row.usage_state != "NOT_IN_USE":
                raise ApiError(
                    409,
                    f"NS descriptor {nsd_info_id} is {row.operational_state} and "
                    f"{row.usage_state}; only a DISABLED NSD that is NOT_IN_USE can be deleted",
                )
            was_onboarded = row.onboarding_state == "ONBOARDED"
            facts = notifications.NsdFacts.of(row)
            session.delete(row)
            sent = notifications.notify_deleted(session, facts, base_url) if was_onboarded else 0
        # Files go after the row: a crash in between leaves only orphan files,
        # which recovery removes, never a row pointing at missing content.
        self.store.remove(nsd_info_id)
        if sent:
            self._on_notify()

    def set_usage(self, nsd_info_id: str, in_use: bool, *, session: Session | None = None) -> None:
        """Set nsdUsageState: for NS lifecycle management as NS instances come and go.

        Given a session, the change joins the caller's transaction (e.g. the
        one that creates the NS instance), and the row stays locked until it
        ends, so a concurrent DELETE cannot slip in between. No notification:
        SOL005 does not report nsdUsageState changes.
        """
        if session is None:
            with transaction(self.sessions) as own:
                self.set_usage(nsd_info_id, in_use, session=own)
            return
        row = session.get(NsdRow, nsd_info_id, with_for_update=True)
        if row is None:
            raise ApiError(404, f"NS descriptor {nsd_info_id} does not exist")
        if row.onboarding_state != "ONBOARDED":
            raise ApiError(
                409,
                f"NS descriptor {nsd_info_id} is not onboarded "
                f"(nsdOnboardingState {row.onboarding_state}); it cannot be in use",
            )
        state = "IN_USE" if in_use else "NOT_IN_USE"
        if row.usage_state != state:
            row.usage_state = state
            row.revision += 1

    # -- upload and onboarding -----------------------------------------------------------------

    def _transition(self, nsd_info_id: str, frm: tuple[str, ...], to: str, **values: Any) -> bool:
        with transaction(self.sessions) as session:
            result = session.execute(
                update(NsdRow)
                .where(NsdRow.id == nsd_info_id, NsdRow.onboarding_state.in_(frm))
                .values(onboarding_state=to, revision=NsdRow.revision + 1, **values)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def begin_upload(self, nsd_info_id: str) -> None:
        """CREATED or ERROR -> UPLOADING, or 409 if the NSD is not waiting for content."""
        if self._transition(nsd_info_id, UPLOADABLE, "UPLOADING", onboarding_failure=None):
            return
        with self.sessions() as session:
            row = self.get(session, nsd_info_id)
            raise ApiError(
                409,
                f"NS descriptor {nsd_info_id} is {row.onboarding_state}; content can only be "
                "uploaded to an NSD in CREATED or ERROR",
            )

    def fail_upload(
        self,
        nsd_info_id: str,
        status: int,
        title: str,
        detail: str,
        *,
        base_url: str,
        nsd_id: str | None = None,
    ) -> None:
        """UPLOADING or PROCESSING -> ERROR, with the reason in onboardingFailureDetails."""
        failure = _problem(status, title, detail)
        with transaction(self.sessions) as session:
            row = session.get(NsdRow, nsd_info_id, with_for_update=True)
            if row is None or row.onboarding_state not in ("UPLOADING", "PROCESSING"):
                return
            row.onboarding_state = "ERROR"
            row.onboarding_failure = failure
            row.revision += 1
            sent = notifications.notify_onboarding_failed(session, row, failure, base_url, nsd_id)
        if sent:
            self._on_notify()

    def accept_upload(
        self, nsd_info_id: str, staged: StagedUpload, upload_format: UploadFormat, base_url: str
    ) -> Future[None]:
        """UPLOADING -> PROCESSING; onboarding continues on a worker thread."""
        if not self._transition(nsd_info_id, ("UPLOADING",), "PROCESSING"):
            self.store.discard(staged.path)
            raise ApiError(409, f"NS descriptor {nsd_info_id} left UPLOADING during the upload")
        return self._executor.submit(self._onboard, nsd_info_id, staged, upload_format, base_url)

    def _onboard(
        self, nsd_info_id: str, staged: StagedUpload, upload_format: UploadFormat, base_url: str
    ) -> None:
        extracted = self.store.new_staging_dir()
        nsd_id: str | None = None
        try:
            found = inspect_nsd(
                staged,
                extracted / "nsd",
                upload_format,
                limits=CsarLimits(require_signature=self.settings.require_signed_packages),
                trust_anchor=self.settings.trust_anchor,
            )
            nsd_id = found.nsd.nsd_id
            self._commit(nsd_info_id, staged, found, base_url)
            return
        except DescriptorError as exc:
            where = f" (at {exc.location})" if exc.location else ""
            failure = (422, "Invalid NSD", f"{exc.detail}{where}")
        except ApiError as exc:
            failure = (exc.status, "NSD refused", exc.detail)
        except Exception as exc:
            log.exception("onboarding NSD %s failed", nsd_info_id)
            failure = (500, "Onboarding failed", f"internal error: {exc}")
        # The NSD is not ONBOARDED, so none of its files may stay.
        self.store.discard(staged.path)
        self.store.discard(extracted)
        self.store.remove(nsd_info_id)
        self.fail_upload(nsd_info_id, *failure, base_url=base_url, nsd_id=nsd_id)

    def _commit(
        self, nsd_info_id: str, staged: StagedUpload, found: OnboardedNsd, base_url: str
    ) -> None:
        nsd = found.nsd
        with transaction(self.sessions) as session:
            row = session.get(NsdRow, nsd_info_id, with_for_update=True)
            if row is None or row.onboarding_state != "PROCESSING":
                raise ApiError(
                    409, f"NS descriptor {nsd_info_id} was deleted or reset during onboarding"
                )
            clash = session.scalar(
                select(NsdRow.id).where(NsdRow.nsd_id == nsd.nsd_id, NsdRow.id != nsd_info_id)
            )
            if clash is not None:
                raise ApiError(
                    409, f"nsdId {nsd.nsd_id} is already onboarded as NS descriptor {clash}"
                )
            vnf_pkg_ids = resolve_vnf_packages(session, nsd)
            self.store.commit(nsd_info_id, staged, found.root)
            row.onboarding_state = "ONBOARDED"
            row.onboarding_failure = None
            row.nsd_id = nsd.nsd_id
            row.nsd_name = nsd.name
            row.nsd_version = nsd.version
            row.nsd_designer = nsd.designer
            row.nsd_invariant_id = nsd.invariant_id
            row.vnf_pkg_ids = vnf_pkg_ids
            row.onboarded = found.info
            row.layout = found.layout
            row.nsd = nsd.model_dump(mode="json")
            row.revision += 1
            try:
                session.flush()
            except IntegrityError:
                self.store.remove(nsd_info_id)
                raise ApiError(409, f"nsdId {nsd.nsd_id} was onboarded concurrently") from None
            sent = notifications.notify_onboarded(session, row, base_url)
        if sent:
            self._on_notify()

    def recover(self, base_url: str) -> int:
        """After a crash: nothing stays UPLOADING/PROCESSING, no stray files remain."""
        with self.sessions() as session:
            stuck = list(
                session.scalars(
                    select(NsdRow.id).where(
                        NsdRow.onboarding_state.in_(("UPLOADING", "PROCESSING"))
                    )
                )
            )
        for nsd_info_id in stuck:
            self.fail_upload(
                nsd_info_id,
                500,
                "Onboarding interrupted",
                "the service stopped during upload or processing",
                base_url=base_url,
            )
        with self.sessions() as session:
            onboarded = set(
                session.scalars(select(NsdRow.id).where(NsdRow.onboarding_state == "ONBOARDED"))
            )
        self.store.clear_staging()
        for nsd_dir in self.store.root.iterdir():
            if not nsd_dir.name.startswith(".") and nsd_dir.name not in onboarded:
                self.store.discard(nsd_dir)
        return len(stuck)
