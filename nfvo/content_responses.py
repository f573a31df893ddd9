"""Responses shared by the package-content APIs (VNF packages and NSDs): the media types a
client accepts, files as an on-the-fly zip, a manifest without its CMS signature, and the
descriptor, manifest and artifact reads both APIs serve alike."""

from __future__ import annotations

import io
import mimetypes
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from nfvo.vnfpkgm.ranges import file_response
from sol013.problem import ApiError

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


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower-cased ('' when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def descriptor_response(
    root: Path,
    layout: dict[str, Any],
    files: list[str],
    accept: str | None,
    include_signatures: str | None,
    *,
    what: str,
    filename: str,
) -> Response:
    """The descriptor's files: as text when it is one file without signatures, else a zip.

    `what` names the descriptor in the 406 (e.g. "VNFD").
    """
    wanted = accepted(accept)
    if TEXT in wanted and len(files) == 1 and include_signatures is None:
        return Response((root / files[0]).read_bytes(), media_type=f"{TEXT}; charset=utf-8")
    if ZIP not in wanted:
        why = "it consists of several files" if len(files) > 1 else "signatures were asked for"
        raise ApiError(406, f"the {what} can only be sent as {ZIP}: {why}")
    extra = list(layout.get("toscaMeta", []))
    if include_signatures is not None:
        extra += layout.get("signatures", [])
    return zip_response(root, [*files, *extra], filename)


def manifest_response(
    root: Path,
    layout: dict[str, Any],
    accept: str | None,
    include_signatures: str | None,
    *,
    owner: str,
    filename: str,
) -> Response:
    """The manifest: without its signature as text or zip, or with its signatures as a zip.

    `owner` names the resource in the 404 when there is no manifest.
    """
    manifest: str | None = layout.get("manifest")
    if manifest is None:
        raise ApiError(404, f"{owner} has no manifest")
    wanted = accepted(accept)
    if include_signatures is None:
        text = strip_cms((root / manifest).read_bytes())
        if TEXT in wanted:
            return Response(text, media_type=f"{TEXT}; charset=utf-8")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(manifest, text)
        return Response(buffer.getvalue(), media_type=ZIP)
    if ZIP not in wanted:
        raise ApiError(406, f"a manifest with signatures can only be sent as {ZIP}")
    return zip_response(root, [manifest, *layout.get("signatures", [])], filename)


def artifact_response(
    root: Path,
    layout: dict[str, Any],
    artifact: str,
    known: set[str],
    range_header: str | None,
    include_signatures: str | None,
    *,
    owner: str,
) -> Response:
    """One artifact (with Range), or a zip of it and the signatures when they are asked for."""
    # Only paths onboarding recorded are served, so no request can walk the file system.
    if artifact not in known:
        raise ApiError(404, f"{owner} has no artifact {artifact!r}")
    if include_signatures is not None:
        name = Path(artifact).name
        return zip_response(root, [artifact, *layout.get("signatures", [])], f"{name}.zip")
    media = mimetypes.guess_type(artifact)[0] or "application/octet-stream"
    return file_response(root / artifact, media, range_header)
