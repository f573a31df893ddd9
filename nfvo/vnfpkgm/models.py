"""Tables of the VNF package management function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nfvo.content_rows import ContentResource
from store.base import Base, utcnow


class VnfPackageRow(ContentResource, Base):
    """One "Individual VNF package" resource and what onboarding learnt about it."""

    __tablename__ = "vnf_packages"

    # Set once the content is onboarded (the VnfPkgInfo attributes copied from the package).
    vnfd_id: Mapped[str | None] = mapped_column(String(255), default=None)
    vnf_provider: Mapped[str | None] = mapped_column(String(255), default=None)
    vnf_product_name: Mapped[str | None] = mapped_column(String(255), default=None)
    vnf_software_version: Mapped[str | None] = mapped_column(String(255), default=None)
    vnfd_version: Mapped[str | None] = mapped_column(String(255), default=None)
    # The typed VNFD (descriptors.vnfd.Vnfd as JSON) that LCM consumes later.
    vnfd: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    upload_source: Mapped[str | None] = mapped_column(Text, default=None)

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
