"""Columns every onboarded-content resource has (VNF packages and NSDs).

The two tables keep their own names, indexes and descriptor-specific columns;
this mixin only holds the state machine, failure, layout and bookkeeping
columns that `nfvo.content_service` works on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from store.base import utcnow


class ContentResource:
    """The columns the shared upload/onboarding state machine reads and writes."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    onboarding_state: Mapped[str] = mapped_column(String(16), default="CREATED")
    operational_state: Mapped[str] = mapped_column(String(16), default="DISABLED")
    usage_state: Mapped[str] = mapped_column(String(16), default="NOT_IN_USE")
    user_defined_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    onboarding_failure: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # archiveSecurityOption, signingCertificate and artifacts, already in API shape.
    onboarded: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Where things are in the content (entry definitions, descriptor files, manifest,
    # signatures, artifacts), for the content routes; never shown to API users as such.
    layout: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Bumped on every change; part of the ETag so concurrent PATCHes are detected.
    revision: Mapped[int] = mapped_column(Integer, default=1)
