"""Responses shared by the package-content APIs (VNF packages and NSDs): the media types a
client accepts, files as an on-the-fly zip, and a manifest without its CMS signature."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

from fastapi.responses import Response

ZIP = "application/zip"
TEXT = "text/plain"


def accepted(accept: str | None) -> set[str]:
    """Which of zip and plain text the Accept header allows (both when it is absent)."""
    if not accept:
        return {ZIP, TEXT}
    kinds = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if "*/*" in kinds or ("application/*" in kinds and "text/*" in kinds):
        return {ZIP, TEXT}
    found = set()
    if ZIP in kinds or "application/*" in kinds:
        found.add(ZIP)
    if TEXT in kinds or "text/*" in kinds:
        found.add(TEXT)
    return found


def zip_response(root: Path, paths: Iterable[str], filename: str) -> Response:
    """The files (relative to `root`) as a zip attachment."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in sorted(set(paths)):
            archive.write(root / rel, rel)
    return Response(
        buffer.getvalue(),
        media_type=ZIP,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def strip_cms(manifest: bytes) -> bytes:
    """The manifest without the CMS signature SOL004 option 1 appends to it."""
    start = manifest.find(b"-----BEGIN CMS-----")
    return manifest if start < 0 else manifest[:start].rstrip() + b"\n"
