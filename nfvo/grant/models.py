"""The table of the Granting interface: every grant request and the NFVO's decision on it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, utcnow


class GrantState(StrEnum):
    PENDING = "PENDING"  # asynchronous mode: accepted, not decided yet
    GRANTED = "GRANTED"  # decision is the Grant
    REJECTED = "REJECTED"  # decision is the ProblemDetails saying why


class GrantRow(Base):
    """One "Individual grant" resource: the GrantRequest as received and what was decided."""

    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    vnf_instance_id: Mapped[str] = mapped_column(String(255))
    vnf_lcm_op_occ_id: Mapped[str] = mapped_column(String(255))
    vnfd_id: Mapped[str] = mapped_column(String(255))
    operation: Mapped[str] = mapped_column(String(32))
    is_automatic_invocation: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16), default=GrantState.PENDING.value)
    # The GrantRequest as JSON (ETSI attribute names).
    request: Mapped[dict[str, Any]] = mapped_column()
    # The Grant, or the ProblemDetails of a rejection; NULL while pending.
    decision: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # {apiRoot} of the POST, for the Grant's links when it is decided later.
    api_root: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_grants_vnf_lcm_op_occ", "vnf_lcm_op_occ_id"),
        Index("ix_grants_state", "state"),
    )
