"""NS instance resources: create, query, delete, and the NSD usage state they drive.

An NS instance holds its NSD IN_USE from creation to deletion (SOL005 5.5.2.2
nsdUsageState), so the NSD cannot be deleted under it. The usage change joins
the transaction that creates or deletes the instance, with the NSD row locked
(`NsdService.set_usage`), so a concurrent create and delete of instances of
one NSD cannot leave it NOT_IN_USE while an instance exists.

Error codes: an nsdId that names no onboarded NSD is 422 (the body refers to
nothing; SOL013 6.4); an NSD that exists but is not ENABLED is 409 (a state
conflict, which SOL005 declares for POST /ns_instances); DELETE of an
instance that is not NOT_INSTANTIATED, or that has an operation occurrence not yet
final, is 409 (SOL005 6.4.3.3.5).

NsIdentifierCreationNotification and NsIdentifierDeletionNotification are
queued in the outbox in the same transaction as the change they report.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nfvo.nsd.models import NsdRow
from nfvo.nsd.service import NsdService
from nfvo.nslcm import notifications
from nfvo.nslcm.models import NsInstanceRow, NsLcmOpOccRow
from nfvo.nslcm.schemas import CreateNsRequest
from sol013.problem import ApiError
from store.base import transaction


class NsInstanceService:
    """Every operation on NS instance resources outside the LCM operations themselves."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        nsds: NsdService,
        *,
        on_notify: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessions = session_factory
        self.nsds = nsds
        self._on_notify = on_notify

    # -- reads ---------------------------------------------------------------------------

    def get(self, session: Session, ns_instance_id: str) -> NsInstanceRow:
        row = session.get(NsInstanceRow, ns_instance_id)
        if row is None:
            raise ApiError(404, f"NS instance {ns_instance_id} does not exist")
        return row

    def list_all(self, session: Session) -> list[NsInstanceRow]:
        query = select(NsInstanceRow).order_by(NsInstanceRow.created_at, NsInstanceRow.id)
        return list(session.scalars(query))

    # -- create / delete -------------------------------------------------------------------

    def create(self, request: CreateNsRequest, *, base_url: str) -> NsInstanceRow:
        with transaction(self.sessions) as session:
            nsd = session.scalar(
                select(NsdRow).where(NsdRow.nsd_id == request.nsdId).with_for_update()
            )
            if nsd is None or nsd.onboarding_state != "ONBOARDED":
                raise ApiError(422, f"nsdId {request.nsdId} names no onboarded NSD")
            if nsd.operational_state != "ENABLED":
                raise ApiError(
                    409,
                    f"the NSD with nsdId {request.nsdId} (NS descriptor {nsd.id}) is "
                    f"{nsd.operational_state}; NS instances are created from ENABLED NSDs only",
                )
            row = NsInstanceRow(
                id=str(uuid.uuid4()),
                name=request.nsName,
                description=request.nsDescription,
                nsd_id=request.nsdId,
                nsd_info_id=nsd.id,
                ns_state="NOT_INSTANTIATED",
                vnf_instances=[],
                virtual_links=[],
                scale_status=[],
            )
            session.add(row)
            self.nsds.set_usage(nsd.id, True, session=session)
            sent = notifications.notify_created(session, row, base_url)
        if sent:
            self._on_notify()
        return row

    def delete(
        self,
        ns_instance_id: str,
        *,
        check_etag: Callable[[NsInstanceRow], None],
        base_url: str,
    ) -> None:
        with transaction(self.sessions) as session:
            found = self.get(session, ns_instance_id)
            # The NSD row first, as create takes it: one lock order, and the count below
            # cannot miss an instance another transaction is creating.
            session.get(NsdRow, found.nsd_info_id, with_for_update=True)
            # Re-read under the lock: `found` may predate a concurrent change of state.
            row = session.get(
                NsInstanceRow, ns_instance_id, with_for_update=True, populate_existing=True
            )
            if row is None:
                raise ApiError(404, f"NS instance {ns_instance_id} does not exist")
            check_etag(row)
            if row.ns_state != "NOT_INSTANTIATED":
                raise ApiError(
                    409,
                    f"NS instance {ns_instance_id} is {row.ns_state}; only a NOT_INSTANTIATED "
                    "NS instance can be deleted (terminate it first)",
                )
            active = session.scalars(
                select(NsLcmOpOccRow.id).where(
                    NsLcmOpOccRow.ns_instance_id == ns_instance_id,
                    NsLcmOpOccRow.active.is_(True),
                )
            ).first()
            if active is not None:
                # E.g. an INSTANTIATE in FAILED_TEMP: what it created is still to be rolled
                # back or failed; deleting the instance would lose the record of it.
                raise ApiError(
                    409,
                    f"NS instance {ns_instance_id} has operation occurrence {active} in "
                    "progress; roll it back or fail it first",
                )
            facts = notifications.NsFacts.of(row)
            session.delete(row)
            session.flush()
            others = session.scalar(
                select(func.count())
                .select_from(NsInstanceRow)
                .where(NsInstanceRow.nsd_info_id == row.nsd_info_id)
            )
            if not others:
                self.nsds.set_usage(row.nsd_info_id, False, session=session)
            sent = notifications.notify_deleted(session, facts, base_url)
        if sent:
            self._on_notify()
