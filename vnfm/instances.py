"""VNF instance resources: create from an enabled package, delete.

The lifecycle tasks (instantiate, scale, heal, terminate, ...) and the modification of an
instance (PATCH, MODIFY_INFO: `vnfm.modify_info`) are operation occurrences run by workers;
this module covers creating and deleting the resource itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sol013.problem import ApiError
from store.base import transaction
from vnfm.models import LcmOpOccRow, VnfInstanceRow
from vnfm.nfvo_client import NfvoClient


class InstanceService:
    """Operations on VNF instance resources."""

    def __init__(self, sessions: sessionmaker[Session], nfvo: NfvoClient) -> None:
        self.sessions = sessions
        self.nfvo = nfvo

    def get(self, session: Session, instance_id: str) -> VnfInstanceRow:
        row = session.get(VnfInstanceRow, instance_id)
        if row is None:
            raise ApiError(404, f"VNF instance {instance_id} does not exist")
        return row

    def list_all(self, session: Session) -> list[VnfInstanceRow]:
        query = select(VnfInstanceRow).order_by(VnfInstanceRow.created_at, VnfInstanceRow.id)
        return list(session.scalars(query))

    def _count_for_vnfd(self, session: Session, vnfd_id: str) -> int:
        count = session.scalar(
            select(func.count())
            .select_from(VnfInstanceRow)
            .where(VnfInstanceRow.vnfd_id == vnfd_id)
        )
        return int(count or 0)

    def create(
        self,
        *,
        vnfd_id: str,
        name: str | None,
        description: str | None,
        metadata: dict[str, Any] | None,
        on_created: Callable[[Session, VnfInstanceRow], None] = lambda s, r: None,
    ) -> VnfInstanceRow:
        package = self.nfvo.package_for_vnfd(vnfd_id)
        if package is None:
            raise ApiError(422, f"no onboarded VNF package has vnfdId {vnfd_id}")
        if package.operational_state != "ENABLED":
            raise ApiError(
                422,
                f"VNF package {package.vnf_pkg_id} (vnfdId {vnfd_id}) is "
                f"{package.operational_state}; instances can only be created from an "
                "ENABLED package",
            )
        vnfd = self.nfvo.vnfd(vnfd_id)
        row = VnfInstanceRow(
            id=str(uuid.uuid4()),
            vnf_instance_name=name,
            vnf_instance_description=description,
            vnfd_id=vnfd_id,
            vnf_pkg_id=package.vnf_pkg_id,
            vnf_provider=package.vnf_provider,
            vnf_product_name=package.vnf_product_name,
            vnf_software_version=package.vnf_software_version,
            vnfd_version=package.vnfd_version,
            # The VNFD's configurable properties are the instance's starting values.
            vnf_configurable_properties=dict(vnfd.configurable_properties),
            metadata_=metadata or {},
        )
        with transaction(self.sessions) as session:
            session.add(row)
            session.flush()
            on_created(session, row)
            count = self._count_for_vnfd(session, vnfd_id)
        self.nfvo.instances_changed(vnfd_id, count)
        return row

    def delete(
        self,
        instance_id: str,
        *,
        on_deleted: Callable[[Session, VnfInstanceRow], None] = lambda s, r: None,
    ) -> None:
        with transaction(self.sessions) as session:
            row = session.get(VnfInstanceRow, instance_id, with_for_update=True)
            if row is None:
                raise ApiError(404, f"VNF instance {instance_id} does not exist")
            if row.instantiation_state != "NOT_INSTANTIATED":
                raise ApiError(
                    409,
                    f"VNF instance {instance_id} is {row.instantiation_state}; "
                    "terminate it before deleting it",
                )
            busy = session.scalar(
                select(LcmOpOccRow.id).where(
                    LcmOpOccRow.vnf_instance_id == instance_id, LcmOpOccRow.active.is_(True)
                )
            )
            if busy is not None:
                raise ApiError(409, f"VNF instance {instance_id} has operation {busy} in progress")
            vnfd_id = row.vnfd_id
            on_deleted(session, row)
            session.delete(row)
            session.flush()
            count = self._count_for_vnfd(session, vnfd_id)
        self.nfvo.instances_changed(vnfd_id, count)
