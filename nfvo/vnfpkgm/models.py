"""Tables of the VNF package management function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, utcnow


class VnfPackageRow(Base):
    """One "Individual VNF package" resource and what onboarding learnt about it."""

    __tablename__ = "vnf_packages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    onboarding_state: Mapped[str] = mapped_column(String(16), default="CREATED")
    operational_state: Mapped[str] = mapped_column(String(16), default="DISABLED")
    usage_state: Mapped[str] = mapped_column(String(16), default="NOT_IN_USE")
    user_defined_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    onboarding_failure: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Set once the content is onboarded (the VnfPkgInfo attributes copied from the package).
    vnfd_id: Mapped[str | None] = mapped_column(String(255), default=None)
    vnf_provider: Mapped[str | None] = mapped_column(String(255), default=None)
    vnf_product_name: Mapped[str | None] = mapped_column(String(255), default=None)
    vnf_software_version: Mapped[str | None] = mapped_column(String(255), default=None)
    vnfd_version: Mapped[str | None] = mapped_column(String(255), default=None)
    onboarded: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Where things are inside the package (entry definitions, VNFD files, manifest,
    # artifacts), for the content routes; never shown to API users as such.
    layout: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The typed VNFD (descriptors.vnfd.Vnfd as JSON) that LCM consumes later.
    vnfd: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    upload_source: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Bumped on every change; part of the ETag so concurrent PATCHes are detected.
    revision: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        # One onboarded package per vnfdId; NULLs (not yet onboarded) do not collide.
        Index("ux_vnf_packages_vnfd_id", "vnfd_id", unique=True),
        Index("ix_vnf_packages_created", "created_at", "id"),
    )


class PkgmSubscriptionRow(Base):
    """A subscription to VNF package management notifications."""

    __tablename__ = "vnfpkgm_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    callback_uri: Mapped[str] = mapped_column(Text)
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # SubscriptionAuthentication as given; never returned by the API.
    authentication: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
