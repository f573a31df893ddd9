"""Serving package files with HTTP Range support (RFC 9110 clause 14).

One byte range is served as 206; several ranges, or a header we cannot parse,
are ignored and the whole file is sent (RFC 9110 allows ignoring Range); a
range that starts past the end is 416 with `Content-Range: bytes */size`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from fastapi.responses import Response, StreamingResponse

from sol013.problem import ApiError

CHUNK = 1 << 16
_SINGLE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte to send, None for the whole file."""
    if not header:
        return None
    match = _SINGLE.match(header)
    if match is None:
        return None
    first_s, last_s = match.groups()
    if not first_s and not last_s:
        return None
    if not first_s:
        suffix = int(last_s)
        if suffix == 0:
            raise _unsatisfiable(header, size)
        return max(0, size - suffix), size - 1
    first = int(first_s)
    if first >= size:
        raise _unsatisfiable(header, size)
    last = int(last_s) if last_s else size - 1
    if last < first:
        return None
    return first, min(last, size - 1)


def _unsatisfiable(header: str, size: int) -> ApiError:
    return ApiError(
        416,
        f"range {header.strip()!r} cannot be satisfied: the content is {size} bytes long",
        headers={"Content-Range": f"bytes */{size}"},
    )


def _read(path: Path, first: int, last: int) -> Iterator[bytes]:
    with path.open("rb") as source:
        source.seek(first)
        remaining = last - first + 1
        while remaining > 0:
            chunk = source.read(min(CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


def file_response(
    path: Path, media_type: str, range_header: str | None, *, filename: str | None = None
) -> Response:
    size = path.stat().st_size
    headers = {"Accept-Ranges": "bytes"}
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    wanted = parse_range(range_header, size)
    if wanted is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(_read(path, 0, size - 1), media_type=media_type, headers=headers)
    first, last = wanted
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(last - first + 1)
    return StreamingResponse(
        _read(path, first, last), status_code=206, media_type=media_type, headers=headers
    )
