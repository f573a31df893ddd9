"""Tables of the NS lifecycle management function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, utcnow

# An occurrence is "active" until it is final (COMPLETED, PARTIALLY_COMPLETED, FAILED,
# ROLLED_BACK).
_ACTIVE = text("active")


class NsInstanceRow(Base):
    """One "Individual NS instance" resource."""

    __tablename__ = "ns_instances"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    # nsdId copied from the NSD, and the NSD resource (nsdInfoId) it was created from.
    nsd_id: Mapped[str] = mapped_column(String(255))
    nsd_info_id: Mapped[str] = mapped_column(String(36))
    ns_state: Mapped[str] = mapped_column(String(16), default="NOT_INSTANTIATED")
    # Set by instantiation (NsDf and NsLevel ids of the NSD).
    flavour_id: Mapped[str | None] = mapped_column(String(255), default=None)
    instantiation_level_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # Constituents as orchestration records them: VNF instances (id, vnfProfileId,
    # VNFM-side facts), NS virtual links (id, virtualLinkDescId, VIM networks) and
    # the nsScaleStatus entries; already close to their API shapes.
    vnf_instances: Mapped[list[Any]] = mapped_column(JSON, default=list)
    virtual_links: Mapped[list[Any]] = mapped_column(JSON, default=list)
    scale_status: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Bumped on every change; part of the ETag.
    revision: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index("ix_ns_instances_created", "created_at", "id"),
        # Deleting an instance asks "does any other instance still use this NSD?".
        Index("ix_ns_instances_nsd_info", "nsd_info_id"),
    )


class NsLcmSubscriptionRow(Base):
    """A subscription to NS lifecycle change notifications."""

    __tablename__ = "nslcm_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    callback_uri: Mapped[str] = mapped_column(Text)
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    verbosity: Mapped[str] = mapped_column(String(10), default="FULL")
    # SubscriptionAuthentication as given, sealed; never returned by the API.
    authentication: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NsLcmOpOccRow(Base):
    """One NS LCM operation occurrence."""

    __tablename__ = "ns_lcm_op_occs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ns_instance_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ns_instances.id", ondelete="CASCADE")
    )
    operation: Mapped[str] = mapped_column(String(16))
    operation_state: Mapped[str] = mapped_column(String(20))
    # True until the occurrence is final; the partial unique index below makes
    # "one operation at a time per NS instance" a database rule.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    state_entered_time: Mapped[datetime] = mapped_column(default=utcnow)
    start_time: Mapped[datetime] = mapped_column(default=utcnow)
    is_automatic_invocation: Mapped[bool] = mapped_column(Boolean, default=False)
    operation_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_cancel_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # ResourceChanges (affectedVnfs, affectedVls) so far, in their API shape.
    resource_changes: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The orchestration's own record of its steps (what exists, what was done, what
    # failed), written before and after each step so a retry resumes and never repeats
    # a creation; never shown by the API.
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Which worker runs it and until when it is trusted to (crash detection).
    lease_owner: Mapped[str | None] = mapped_column(String(255), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revision: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index(
            "ux_ns_lcm_op_occs_one_active",
            "ns_instance_id",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        Index("ix_ns_lcm_op_occs_created", "created_at", "id"),
        Index("ix_ns_lcm_op_occs_state", "operation_state", "lease_expires_at"),
    )
