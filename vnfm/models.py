"""Tables of the VNF lifecycle management function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, utcnow

# An occurrence is "active" until it reaches COMPLETED, FAILED or ROLLED_BACK.
_ACTIVE = text("active")


class VnfInstanceRow(Base):
    """One "Individual VNF instance" resource."""

    __tablename__ = "vnf_instances"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    vnf_instance_name: Mapped[str | None] = mapped_column(Text, default=None)
    vnf_instance_description: Mapped[str | None] = mapped_column(Text, default=None)
    vnfd_id: Mapped[str] = mapped_column(String(255))
    vnf_pkg_id: Mapped[str] = mapped_column(String(36))
    vnf_provider: Mapped[str] = mapped_column(String(255))
    vnf_product_name: Mapped[str] = mapped_column(String(255))
    vnf_software_version: Mapped[str] = mapped_column(String(255))
    vnfd_version: Mapped[str] = mapped_column(String(255))
    instantiation_state: Mapped[str] = mapped_column(String(20), default="NOT_INSTANTIATED")
    # Set while instantiated: what was chosen and where the instance stands.
    flavour_id: Mapped[str | None] = mapped_column(String(255), default=None)
    vnf_state: Mapped[str | None] = mapped_column(String(10), default=None)
    scale_levels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The instantiatedVnfInfo last observed on the VIM (resources, addresses, links).
    instantiated_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    vim_connection_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    vnf_configurable_properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    extensions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    revision: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_vnf_instances_created", "created_at", "id"),)


class LcmOpOccRow(Base):
    """One VNF LCM operation occurrence."""

    __tablename__ = "vnf_lcm_op_occs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    vnf_instance_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("vnf_instances.id", ondelete="CASCADE")
    )
    operation: Mapped[str] = mapped_column(String(32))
    operation_state: Mapped[str] = mapped_column(String(16))
    # True until the occurrence is final; the partial unique index below makes
    # "one operation at a time per instance" a database rule.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    state_entered_time: Mapped[datetime] = mapped_column(default=utcnow)
    start_time: Mapped[datetime] = mapped_column(default=utcnow)
    is_automatic_invocation: Mapped[bool] = mapped_column(Boolean, default=False)
    operation_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_cancel_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    resource_changes: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    changed_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    changed_ext_connectivity: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    grant_id: Mapped[str | None] = mapped_column(String(36), default=None)
    # Which worker runs it and until when it is trusted to (crash detection).
    lease_owner: Mapped[str | None] = mapped_column(String(255), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revision: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index(
            "ux_vnf_lcm_op_occs_one_active",
            "vnf_instance_id",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        Index("ix_vnf_lcm_op_occs_created", "created_at", "id"),
        Index("ix_vnf_lcm_op_occs_state", "operation_state", "lease_expires_at"),
    )


class LccnSubscriptionRow(Base):
    """A subscription to VNF lifecycle change notifications."""

    __tablename__ = "vnflcm_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    callback_uri: Mapped[str] = mapped_column(Text)
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    verbosity: Mapped[str] = mapped_column(String(10), default="FULL")
    authentication: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
