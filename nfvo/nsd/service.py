"""NS descriptor resources: their state machine, storage and notifications.

The state machine is the one VNF packages use (`nfvo.content_service`):
state changes are conditional UPDATEs so two API replicas cannot both take
one upload; onboarding runs on a worker thread and is the only place an NSD
becomes ONBOARDED, in the transaction that queues its notifications; files
are staged and moved into place with rename (`nfvo.content_store`).

Unlike VNF packages, a failed upload or onboarding leaves the resource in
ERROR (SOL005 NsdOnboardingStateType) with onboardingFailureDetails, and
sends NsdOnboardingFailureNotification; a new upload is accepted in CREATED
and in ERROR (SOL005 clause 5.4.4.3.3: 409 "if nsdOnboardingState has a value
other than CREATED or ERROR").
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from descriptors.csar import CsarLimits
from nfvo.content_service import BUSY, ContentService, onboarding_failure, problem
from nfvo.content_store import StagedUpload
from nfvo.nsd import notifications
from nfvo.nsd.constituents import resolve_vnf_packages
from nfvo.nsd.models import NsdRow
from nfvo.nsd.onboarding import OnboardedNsd, UploadFormat, inspect_nsd
from nfvo.nsd.schemas import NsdInfoModifications
from sol013.problem import ApiError
from store.base import transaction

# Where an upload may start from.
UPLOADABLE = ("CREATED", "ERROR")


class NsdService(ContentService[NsdRow]):
    """Every operation on NS descriptor resources; NS LCM uses `onboarded` and `set_usage`."""

    row_type = NsdRow
    label = "NS descriptor"
    noun = "NSD"
    onboarding_attr = "nsdOnboardingState"
    thread_name_prefix = "nsd-onboarding"
    operational_attr = "nsdOperationalState"

    # -- modify / delete / usage -------------------------------------------------------------

    def modify(
        self,
        nsd_info_id: str,
        changes: NsdInfoModifications,
        *,
        check_etag: Callable[[NsdRow], None],
        base_url: str,
    ) -> NsdRow:
        sent = 0
        wanted = changes.nsdOperationalState
        with transaction(self.sessions) as session:
            row = self._lookup(session, nsd_info_id, lock=True)
            check_etag(row)
            state = wanted.value if wanted is not None else None
            if self._apply_changes(row, state, changes.userDefinedData):
                sent = notifications.notify_changed(session, row, base_url)
        if sent:
            self._on_notify()
        return row

    def delete(self, nsd_info_id: str, *, base_url: str) -> None:
        with transaction(self.sessions) as session:
            row = self._deletable(session, nsd_info_id)
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
        row = self._lookup(session, nsd_info_id, lock=True)
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

    def begin_upload(self, nsd_info_id: str) -> None:
        """CREATED or ERROR -> UPLOADING, or 409 if the NSD is not waiting for content."""
        if not self._transition(nsd_info_id, UPLOADABLE, "UPLOADING", onboarding_failure=None):
            self._refuse_upload(nsd_info_id, "an NSD in CREATED or ERROR")

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
        failure = problem(status, title, detail)
        with transaction(self.sessions) as session:
            row = session.get(NsdRow, nsd_info_id, with_for_update=True)
            if row is None or row.onboarding_state not in BUSY:
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
        self._left_uploading(nsd_info_id, staged)
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
        except Exception as exc:
            failure = onboarding_failure(
                exc, invalid="Invalid NSD", refused="NSD refused", what=f"NSD {nsd_info_id}"
            )
        self._discard_content(nsd_info_id, staged, extracted)
        self.fail_upload(nsd_info_id, *failure, base_url=base_url, nsd_id=nsd_id)

    def _commit(
        self, nsd_info_id: str, staged: StagedUpload, found: OnboardedNsd, base_url: str
    ) -> None:
        nsd = found.nsd
        with transaction(self.sessions) as session:
            row = self._locked_processing(session, nsd_info_id)
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
            stuck = self._stuck(session)
        for nsd_info_id in stuck:
            self.fail_upload(
                nsd_info_id,
                500,
                "Onboarding interrupted",
                "the service stopped during upload or processing",
                base_url=base_url,
            )
        self._remove_orphans()
        return len(stuck)
