"""JSON Merge Patch (RFC 7396), the body format SOL013 prescribes for PATCH."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from sol013.problem import ApiError

MEDIA_TYPE = "application/merge-patch+json"


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`target` with `patch` applied: null removes a key, objects merge, anything else replaces."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = value
    return result


def require_merge_patch(request: Request) -> None:
    """FastAPI dependency: a PATCH body must be JSON Merge Patch (plain JSON is accepted too)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in (MEDIA_TYPE, "application/json"):
        raise ApiError(415, f"PATCH needs Content-Type {MEDIA_TYPE}, got {media or 'none'!r}")
