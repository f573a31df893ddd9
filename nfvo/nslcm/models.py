"""Tables of the NS lifecycle management function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, utcnow


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
