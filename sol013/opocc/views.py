"""Pieces of an operation occurrence's representation that VnfLcmOpOcc and NsLcmOpOcc share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

__all__ = ["add_cancel_and_outcome", "occurrence_links", "timestamp"]


class _Outcome(Protocol):
    is_cancel_pending: bool
    cancel_mode: str | None
    error: dict[str, Any] | None
    resource_changes: dict[str, Any] | None


def timestamp(value: datetime) -> str:
    """A DateTime as the APIs write it (RFC 3339, UTC as "Z")."""
    return value.isoformat().replace("+00:00", "Z")


def add_cancel_and_outcome(view: dict[str, Any], row: _Outcome) -> None:
    """Add cancelMode (while a cancel is pending), error and resourceChanges, where present."""
    if row.is_cancel_pending and row.cancel_mode is not None:
        view["cancelMode"] = row.cancel_mode
    if row.error is not None:
        view["error"] = row.error
    if row.resource_changes:
        view["resourceChanges"] = row.resource_changes


def occurrence_links(
    href: str,
    instance: tuple[str, str],
    tasks: Iterable[str],
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``_links`` of an occurrence at ``href``.

    ``instance`` is (link name, href) of the instance it changes; ``extra`` names further
    links (e.g. the grant); each task the occurrence offers now links to its task resource.
    """
    name, instance_href = instance
    links: dict[str, Any] = {"self": {"href": href}, name: {"href": instance_href}}
    for key, target in (extra or {}).items():
        links[key] = {"href": target}
    for task in sorted(tasks):
        links[task] = {"href": f"{href}/{task}"}
    return links
