"""Tables of the NSD management function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, utcnow


class NsdRow(Base):
    """One "Individual NS descriptor" resource and what onboarding learnt about it."""

    __tablename__ = "ns_descriptors"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    onboarding_state: Mapped[str] = mapped_column(String(16), default="CREATED")
    operational_state: Mapped[str] = mapped_column(String(16), default="DISABLED")
    usage_state: Mapped[str] = mapped_column(String(16), default="NOT_IN_USE")
    user_defined_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    onboarding_failure: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Set once the content is onboarded (the NsdInfo attributes copied from the NSD).
    nsd_id: Mapped[str | None] = mapped_column(String(255), default=None)
    nsd_name: Mapped[str | None] = mapped_column(Text, default=None)
    nsd_version: Mapped[str | None] = mapped_column(String(255), default=None)
    nsd_designer: Mapped[str | None] = mapped_column(Text, default=None)
    nsd_invariant_id: Mapped[str | None] = mapped_column(String(255), default=None)
    vnf_pkg_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # archiveSecurityOption, signingCertificate and artifacts, already in API shape.
    onboarded: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Where things are in the archive (format, entry definitions, NSD files,
    # manifest, signatures, artifacts), for the content routes.
    layout: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The typed NSD (descriptors.nsd.Nsd as JSON) that NS LCM consumes.
    nsd: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Bumped on every change; part of the ETag so concurrent PATCHes are detected.
    revision: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        # One onboarded NSD per nsdId (NS LCM creates NS instances by nsdId);
        # NULLs (not yet onboarded) do not collide.
        Index("ux_ns_descriptors_nsd_id", "nsd_id", unique=True),
        Index("ix_ns_descriptors_created", "created_at", "id"),
    )


class NsdmSubscriptionRow(Base):
    """A subscription to NSD management notifications."""

    __tablename__ = "nsdm_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    callback_uri: Mapped[str] = mapped_column(Text)
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # SubscriptionAuthentication as given; never returned by the API.
    authentication: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
