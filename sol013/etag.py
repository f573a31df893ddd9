"""Entity tags and If-Match preconditions (ETSI GS NFV-SOL 013 clause 4.5 / IETF RFC 9110).

The ETag is derived from the representation itself, so it changes exactly when the
representation does and needs no stored revision counter.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from sol013.problem import ApiError

# An entity-tag (optionally weak), or a bare token from a client that forgot the quotes.
_TAG_RE = re.compile(r'\s*(?:(W/)?"([^"]*)"|([^",\s]+))\s*(?:,|$)')


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        # Sets have no order; sort so equal documents always hash alike.
        return sorted(value, key=str)
    raise TypeError(f"cannot compute an ETag over a {type(value).__name__}")


def etag_for(doc: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"')


def check_if_match(if_match: str | None, current_etag: str) -> None:
    """Passes when the client's If-Match names the current representation.

    Weak tags compare by their opaque part (RFC 9110 asks for strong comparison; being
    lenient costs nothing here because our tags are always strong).
    """
    if if_match is None:
        return
    if if_match.strip() == "*":
        return
    current = _opaque(current_etag)
    tags: list[str] = []
    pos = 0
    text = if_match.strip()
    while pos < len(text):
        match = _TAG_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise ApiError(412, f"ETag mismatch: malformed If-Match header {if_match!r}")
        tags.append(match.group(2) if match.group(2) is not None else match.group(3))
        pos = match.end()
    if not tags:
        raise ApiError(412, "ETag mismatch: the If-Match header is empty")
    if current not in tags:
        raise ApiError(
            412,
            f"ETag mismatch: If-Match {if_match.strip()} does not match the current ETag "
            f"{current_etag}; the resource has changed, read it again and retry",
        )
