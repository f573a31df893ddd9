"""Tables of the NSD management function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nfvo.content_rows import ContentResource
from store.base import Base, utcnow


class NsdRow(ContentResource, Base):
    """One "Individual NS descriptor" resource and what onboarding learnt about it."""

    __tablename__ = "ns_descriptors"

    # Set once the content is onboarded (the NsdInfo attributes copied from the NSD).
    nsd_id: Mapped[str | None] = mapped_column(String(255), default=None)
    nsd_name: Mapped[str | None] = mapped_column(Text, default=None)
    nsd_version: Mapped[str | None] = mapped_column(String(255), default=None)
    nsd_designer: Mapped[str | None] = mapped_column(Text, default=None)
    nsd_invariant_id: Mapped[str | None] = mapped_column(String(255), default=None)
    vnf_pkg_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # The typed NSD (descriptors.nsd.Nsd as JSON) that NS LCM consumes.
    nsd: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)

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
