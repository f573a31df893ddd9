"""Paging of query results with Link headers (ETSI GS NFV-SOL 013 clause 5.4.2).

The ``nextpage_opaque_marker`` encodes the sort key of the last item already returned, so
a page is "the first ``page_size`` items whose key is greater than the marker's". Items
created or deleted between two requests therefore neither shift nor repeat others, and any
API replica can serve the next page without shared state.

Marker layout (URL-safe base64, no padding): one version byte, the UTF-8 key, and an 8-byte
keyed BLAKE2b digest of both. The digest rejects truncated or edited markers; pass a
deployment ``secret`` to also make them unforgeable (a forged marker can only move the
starting point of a listing, which the caller may query anyway).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from sol013.problem import ApiError

T = TypeVar("T")

MARKER_PARAM = "nextpage_opaque_marker"
_MARKER_VERSION = b"\x01"
_DIGEST_SIZE = 8


def _digest(payload: bytes, secret: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_DIGEST_SIZE, key=secret[:64]).digest()


def encode_marker(key: str, *, secret: bytes = b"") -> str:
    payload = _MARKER_VERSION + key.encode()
    raw = payload + _digest(payload, secret)
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_marker(marker: str, *, secret: bytes = b"") -> str:
    invalid = ApiError(400, "invalid nextpage_opaque_marker")
    try:
        raw = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4))
    except (binascii.Error, ValueError):
        raise invalid from None
    payload, digest = raw[:-_DIGEST_SIZE], raw[-_DIGEST_SIZE:]
    if (
        len(raw) <= _DIGEST_SIZE
        or not payload.startswith(_MARKER_VERSION)
        or not hmac.compare_digest(digest, _digest(payload, secret))
    ):
        raise invalid
    try:
        return payload[len(_MARKER_VERSION) :].decode()
    except UnicodeDecodeError:
        raise invalid from None


def next_page_url(request_url: str, marker: str) -> str:
    """``request_url`` with its marker replaced; other parameters keep their exact encoding."""
    parts = urlsplit(request_url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and unquote_plus(pair.split("=", 1)[0]) != MARKER_PARAM
    ]
    kept.append(f"{MARKER_PARAM}={quote(marker, safe='')}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))


def paginate(
    items: Sequence[T],
    *,
    key: Callable[[T], str],
    marker: str | None,
    page_size: int,
    request_url: str,
    secret: bytes = b"",
) -> tuple[list[T], str | None]:
    """The page after ``marker`` from ``items`` (sorted by ``key``) and its Link header."""
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    start = 0
    if marker is not None:
        after = decode_marker(marker, secret=secret)
        start = _first_index_after(items, key, after)
    page = list(items[start : start + page_size])
    if start + page_size >= len(items):
        return page, None
    next_marker = encode_marker(key(page[-1]), secret=secret)
    return page, f'<{next_page_url(request_url, next_marker)}>; rel="next"'


def _first_index_after(items: Sequence[T], key: Callable[[T], str], after: str) -> int:
    low, high = 0, len(items)
    while low < high:
        mid = (low + high) // 2
        if key(items[mid]) <= after:
            low = mid + 1
        else:
            high = mid
    return low
