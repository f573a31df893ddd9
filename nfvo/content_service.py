"""What the VNF package and NSD services share: one upload/onboarding state machine.

State changes are conditional UPDATEs (`WHERE onboarding_state IN ...`) so two
API replicas racing on one resource cannot both win; onboarding runs on a
worker thread. Each service names its table and its wording (the messages
differ only in nouns and attribute names) and keeps what really differs:
where a failed upload goes, what onboarding copies, which notifications go out.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from descriptors.errors import DescriptorError
from nfvo.content_rows import ContentResource
from nfvo.content_store import ContentStore, StagedUpload
from nfvo.settings import Settings
from sol013.merge_patch import merge_patch
from sol013.problem import ApiError
from store.base import transaction

log = logging.getLogger(__name__)

RowT = TypeVar("RowT", bound=ContentResource)

# The states in which content is arriving or being checked.
BUSY = ("UPLOADING", "PROCESSING")


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    """An onboardingFailureDetails value (a ProblemDetails)."""
    return {"status": status, "title": title, "detail": detail}


def onboarding_failure(
    exc: Exception, *, invalid: str, refused: str, what: str
) -> tuple[int, str, str]:
    """Status, title and detail for an onboarding that raised `exc`; logs the unexpected."""
    if isinstance(exc, DescriptorError):
        where = f" (at {exc.location})" if exc.location else ""
        return 422, invalid, f"{exc.detail}{where}"
    if isinstance(exc, ApiError):
        return exc.status, refused, exc.detail
    log.exception("onboarding %s failed", what, exc_info=exc)
    return 500, "Onboarding failed", f"internal error: {exc}"


class ContentService(Generic[RowT]):
    """Storage, reads and state changes of one kind of onboarded-content resource."""

    row_type: ClassVar[type[ContentResource]]
    # "VNF package" / "NS descriptor": starts every message about one resource.
    label: ClassVar[str]
    # "package" / "NSD": the resource in the middle of a sentence.
    noun: ClassVar[str]
    # The API's attribute names: "onboardingState" / "nsdOnboardingState", ...
    onboarding_attr: ClassVar[str]
    operational_attr: ClassVar[str]
    # Names the onboarding worker threads.
    thread_name_prefix: ClassVar[str]

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
            max_workers=settings.onboarding_workers, thread_name_prefix=self.thread_name_prefix
        )

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)

    # -- reads ---------------------------------------------------------------------------

    def _lookup(self, session: Session, resource_id: str, *, lock: bool = False) -> RowT:
        row: RowT | None = session.get(self.row_type, resource_id, with_for_update=lock)  # type: ignore[assignment]
        if row is None:
            raise ApiError(404, f"{self.label} {resource_id} does not exist")
        return row

    def get(self, session: Session, resource_id: str) -> RowT:
        return self._lookup(session, resource_id)

    def list_all(self, session: Session) -> list[RowT]:
        model = self.row_type
        query = select(model).order_by(model.created_at, model.id)
        return list(session.scalars(query))

    def onboarded(self, session: Session, resource_id: str) -> RowT:
        row = self.get(session, resource_id)
        if row.onboarding_state != "ONBOARDED":
            raise ApiError(
                409,
                f"{self.label} {resource_id} is not onboarded "
                f"({self.onboarding_attr} {row.onboarding_state})",
            )
        return row

    # -- create / modify / delete ----------------------------------------------------------

    def create(self, user_defined_data: dict[str, Any] | None) -> RowT:
        row: RowT = self.row_type(  # type: ignore[assignment,call-arg]
            id=str(uuid.uuid4()), user_defined_data=user_defined_data or {}
        )
        with transaction(self.sessions) as session:
            session.add(row)
        return row

    def _apply_changes(
        self,
        row: RowT,
        operational_state: str | None,
        user_defined_data: dict[str, Any] | None,
    ) -> bool:
        """A PATCH on a locked row; True if the operational state changed."""
        if operational_state is not None:
            if row.onboarding_state != "ONBOARDED":
                raise ApiError(
                    409,
                    f"{self.operational_attr} can only change once the {self.noun} is ONBOARDED "
                    f"({self.onboarding_attr} is {row.onboarding_state})",
                )
            if row.operational_state == operational_state:
                raise ApiError(409, f"{self.label} {row.id} is already {operational_state}")
            row.operational_state = operational_state
        if user_defined_data is not None:
            row.user_defined_data = merge_patch(row.user_defined_data, user_defined_data)
        row.revision += 1
        return operational_state is not None

    def _deletable(self, session: Session, resource_id: str) -> RowT:
        """The locked row, or 404/409 when it may not be deleted now."""
        row = self._lookup(session, resource_id, lock=True)
        if row.onboarding_state in BUSY:
            raise ApiError(409, f"{self.label} {resource_id} is {row.onboarding_state}; try later")
        if row.operational_state != "DISABLED" or row.usage_state != "NOT_IN_USE":
            raise ApiError(
                409,
                f"{self.label} {resource_id} is {row.operational_state} and {row.usage_state}; "
                f"only a DISABLED {self.noun} that is NOT_IN_USE can be deleted",
            )
        return row

    # -- upload and onboarding -------------------------------------------------------------

    def _transition(self, resource_id: str, frm: tuple[str, ...], to: str, **values: Any) -> bool:
        model = self.row_type
        with transaction(self.sessions) as session:
            result = session.execute(
                update(model)
                .where(model.id == resource_id, model.onboarding_state.in_(frm))
                .values(onboarding_state=to, revision=model.revision + 1, **values)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def _refuse_upload(self, resource_id: str, allowed: str) -> None:
        """The 409 for an upload to a resource that is not waiting for content."""
        with self.sessions() as session:
            row = self.get(session, resource_id)
            raise ApiError(
                409,
                f"{self.label} {resource_id} is {row.onboarding_state}; content can only be "
                f"uploaded to {allowed}",
            )

    def _left_uploading(self, resource_id: str, staged: StagedUpload) -> None:
        """UPLOADING -> PROCESSING, or 409 (and the upload dropped) if it was reset meanwhile."""
        if not self._transition(resource_id, ("UPLOADING",), "PROCESSING"):
            self.store.discard(staged.path)
            raise ApiError(409, f"{self.label} {resource_id} left UPLOADING during the upload")

    def _discard_content(self, resource_id: str, staged: StagedUpload, extracted: Path) -> None:
        """A resource that is not ONBOARDED keeps none of its files."""
        self.store.discard(staged.path)
        self.store.discard(extracted)
        self.store.remove(resource_id)

    def _locked_processing(self, session: Session, resource_id: str) -> RowT:
        row: RowT | None = session.get(self.row_type, resource_id, with_for_update=True)  # type: ignore[assignment]
        if row is None or row.onboarding_state != "PROCESSING":
            raise ApiError(
                409, f"{self.label} {resource_id} was deleted or reset during onboarding"
            )
        return row

    def _stuck(self, session: Session) -> list[str]:
        model = self.row_type
        return list(session.scalars(select(model.id).where(model.onboarding_state.in_(BUSY))))

    def _remove_orphans(self) -> None:
        """Drop staging and every content folder whose resource is not ONBOARDED."""
        model = self.row_type
        with self.sessions() as session:
            onboarded = set(
                session.scalars(select(model.id).where(model.onboarding_state == "ONBOARDED"))
            )
        self.store.clear_staging()
        for content_dir in self.store.root.iterdir():
            if not content_dir.name.startswith(".") and content_dir.name not in onboarded:
                self.store.discard(content_dir)
