"""The table of the VIM registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, utcnow


class VimRow(Base):
    """One registered VIM.

    ``access_info`` holds the accessInfo attributes that are not secret, in clear, with each
    secret attribute's value replaced by None (so its name stays visible);
    ``access_secrets`` holds the secret ones, as one token of the secret box
    (``sol013.secrets``), never in clear.
    """

    __tablename__ = "vims"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    vim_type: Mapped[str] = mapped_column(String(64))
    interface_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    access_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    access_secrets: Mapped[str | None] = mapped_column(Text, default=None)
    # Placement attributes and capacity overrides (VimExtra as JSON).
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The local VIM of the service's settings, registered at start-up.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    revision: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index("ux_vims_name", "name", unique=True),
        Index("ix_vims_created", "created_at", "id"),
    )
