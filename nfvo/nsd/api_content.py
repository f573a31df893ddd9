"""NSD content routes: upload and download the archive, read the NSD, manifest and artifacts.

Uploads are a zip (an NSD archive, SOL007) or a single YAML file (SOL005
clause 5.4.4.3.3: "text/plain" for a YAML file; application/x-yaml,
application/yaml and text/yaml are taken as the same). Downloads negotiate
text/plain against application/zip as SOL005 clause 5.4.4a.3.2 says: a
single-file NSD may be sent as text, several files only as a zip.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from descriptors.tosca_imports import MAX_DEFINITIONS_BYTES

# The same negotiation, zip building and byte ranges as the VNF package content routes.
from nfvo.content_responses import (
    TEXT,
    ZIP,
    accepted,
    artifact_response,
    descriptor_response,
    manifest_response,
    media_type,
    zip_response,
)
from nfvo.content_store import UploadTooLarge
from nfvo.nsd.deps import READ, WRITE, base_url, service
from nfvo.nsd.models import NsdRow
from nfvo.nsd.onboarding import UploadFormat
from nfvo.nsd.schemas import API_MAJOR, API_NAME
from nfvo.nsd.service import NsdService
from nfvo.vnfpkgm.ranges import file_response
from sol013.problem import ApiError

router = APIRouter(
    prefix=f"/{API_NAME}/{API_MAJOR}/ns_descriptors/{{nsdInfoId}}", tags=["NSD content"]
)
UPLOAD_FORMATS: dict[str, UploadFormat] = {
    ZIP: "zip",
    TEXT: "yaml",
    "application/x-yaml": "yaml",
    "application/yaml": "yaml",
    "text/yaml": "yaml",
}


@router.put("/nsd_content", status_code=202, dependencies=[WRITE])
async def upload_content(
    nsdInfoId: str,
    request: Request,
    svc: NsdService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    media = media_type(request)
    upload_format = UPLOAD_FORMATS.get(media)
    if upload_format is None:
        raise ApiError(
            415,
            f"NSD content must be sent as {ZIP} (an NSD archive) or {TEXT} (a YAML file), "
            f"got {media or 'no Content-Type'!r}",
        )
    # A single-file NSD is parsed whole, so it gets the service template size limit.
    limit = svc.settings.max_upload_bytes if upload_format == "zip" else MAX_DEFINITIONS_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"NSD content of {declared} bytes exceeds the limit of {limit}")
    svc.begin_upload(nsdInfoId)
    try:
        staged = await svc.store.stage_stream(request.stream(), max_bytes=limit)
    except UploadTooLarge as exc:
        svc.fail_upload(nsdInfoId, 413, "Upload too large", str(exc), base_url=base)
        raise ApiError(413, str(exc)) from None
    except BaseException:
        svc.fail_upload(
            nsdInfoId, 400, "Upload interrupted", "the upload did not complete", base_url=base
        )
        raise
    svc.accept_upload(nsdInfoId, staged, upload_format, base)
    return Response(status_code=202)


def _onboarded(svc: NsdService, nsd_info_id: str) -> tuple[NsdRow, dict[str, Any]]:
    with svc.sessions() as session:
        row = svc.onboarded(session, nsd_info_id)
    if row.layout is None:
        raise ApiError(409, f"NS descriptor {nsd_info_id} has no content layout")
    return row, row.layout


@router.get("/nsd_content", dependencies=[READ])
def download_content(
    nsdInfoId: str,
    accept: str | None = Header(default=None),
    range_header: str | None = Header(default=None, alias="Range"),
    svc: NsdService = Depends(service),
) -> Response:
    _, layout = _onboarded(svc, nsdInfoId)
    wanted = accepted(accept)
    if layout["format"] == "zip":
        if ZIP not in wanted:
            raise ApiError(406, f"the NSD archive can only be sent as {ZIP}")
        path = svc.store.package_zip(nsdInfoId)
        return file_response(path, ZIP, range_header, filename=f"{nsdInfoId}.zip")
    # A single YAML file was uploaded: send it as is, or in a zip if only that is accepted.
    root = svc.store.content_dir(nsdInfoId)
    entry: str = layout["entryDefinitions"]
    if TEXT in wanted:
        return file_response(root / entry, f"{TEXT}; charset=utf-8", range_header)
    if ZIP in wanted:
        return zip_response(root, [entry], f"{nsdInfoId}.zip")
    raise ApiError(406, f"NSD content is available as {TEXT} or {ZIP}")


@router.get("/nsd", dependencies=[READ])
def read_nsd(
    nsdInfoId: str,
    accept: str | None = Header(default=None),
    include_signatures: str | None = Query(default=None),
    svc: NsdService = Depends(service),
) -> Response:
    _, layout = _onboarded(svc, nsdInfoId)
    return descriptor_response(
        svc.store.content_dir(nsdInfoId),
        layout,
        layout["nsdFiles"],
        accept,
        include_signatures,
        what="NSD",
        filename=f"{nsdInfoId}-nsd.zip",
    )


@router.get("/manifest", dependencies=[READ])
def read_manifest(
    nsdInfoId: str,
    accept: str | None = Header(default=None),
    include_signatures: str | None = Query(default=None),
    svc: NsdService = Depends(service),
) -> Response:
    _, layout = _onboarded(svc, nsdInfoId)
    return manifest_response(
        svc.store.content_dir(nsdInfoId),
        layout,
        accept,
        include_signatures,
        owner=f"NS descriptor {nsdInfoId}",
        filename=f"{nsdInfoId}-manifest.zip",
    )


@router.get("/artifacts/{artifactPath:path}", dependencies=[READ])
def read_artifact(
    nsdInfoId: str,
    artifactPath: str,
    range_header: str | None = Header(default=None, alias="Range"),
    include_signatures: str | None = Query(default=None),
    svc: NsdService = Depends(service),
) -> Response:
    _, layout = _onboarded(svc, nsdInfoId)
    return artifact_response(
        svc.store.content_dir(nsdInfoId),
        layout,
        artifactPath,
        set(layout.get("artifacts", [])),
        range_header,
        include_signatures,
        owner=f"NS descriptor {nsdInfoId}",
    )
