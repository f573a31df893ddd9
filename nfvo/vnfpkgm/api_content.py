"""Package content routes: upload, download (with Range), VNFD, manifest, artifacts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from nfvo.content_responses import (
    ZIP,
    artifact_response,
    descriptor_response,
    manifest_response,
    media_type,
    zip_response,
)
from nfvo.content_store import UploadTooLarge
from nfvo.vnfpkgm.deps import READ, WRITE, base_url, service
from nfvo.vnfpkgm.fetch import FetchError, check_address
from nfvo.vnfpkgm.models import VnfPackageRow
from nfvo.vnfpkgm.ranges import file_response
from nfvo.vnfpkgm.schemas import UploadVnfPackageFromUriRequest
from nfvo.vnfpkgm.service import PackageService
from sol013.problem import ApiError

router = APIRouter(prefix="/vnfpkgm/v2/vnf_packages/{vnfPkgId}", tags=["VNF package content"])
UPLOAD_MEDIA = (ZIP, "application/octet-stream", "multipart/form-data")
# Room for the multipart envelope around the file itself.
MULTIPART_SLACK = 64 * 1024


@router.put("/package_content", status_code=202, dependencies=[WRITE])
async def upload_content(
    vnfPkgId: str,
    request: Request,
    svc: PackageService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    media = media_type(request)
    if media not in UPLOAD_MEDIA:
        raise ApiError(
            415, f"package content must be sent as {' or '.join(UPLOAD_MEDIA)}, got {media!r}"
        )
    limit = svc.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_SLACK:
        raise ApiError(413, f"package content of {declared} bytes exceeds the limit of {limit}")
    if media == "multipart/form-data" and declared is None:
        raise ApiError(411, "a multipart upload needs a Content-Length header")
    svc.begin_upload(vnfPkgId, "upload")
    try:
        if media == "multipart/form-data":
            staged = await _stage_multipart(request, svc, limit)
        else:
            staged = await svc.store.stage_stream(request.stream(), max_bytes=limit)
    except UploadTooLarge as exc:
        svc.fail_upload(vnfPkgId, 413, "Upload too large", str(exc))
        raise ApiError(413, str(exc)) from None
    except ApiError as exc:
        svc.fail_upload(vnfPkgId, exc.status, "Upload refused", exc.detail)
        raise
    except BaseException:
        svc.fail_upload(vnfPkgId, 400, "Upload interrupted", "the upload did not complete")
        raise
    svc.accept_upload(vnfPkgId, staged, base)
    return Response(status_code=202)


async def _stage_multipart(request: Request, svc: PackageService, limit: int) -> Any:
    form = await request.form(max_files=1, max_fields=4)
    try:
        parts = [value for _, value in form.multi_items() if not isinstance(value, str)]
        if len(parts) != 1:
            raise ApiError(400, "a multipart upload must carry exactly one file part")
        part = parts[0]

        async def chunks() -> Any:
            while chunk := await part.read(1 << 20):
                yield chunk

        return await svc.store.stage_stream(chunks(), max_bytes=limit)
    finally:
        await form.close()


@router.post("/package_content/upload_from_uri", status_code=202, dependencies=[WRITE])
def upload_from_uri(
    vnfPkgId: str,
    body: UploadVnfPackageFromUriRequest,
    svc: PackageService = Depends(service),
    base: str = Depends(base_url),
) -> Response:
    try:
        check_address(body.addressInformation, svc.settings.upload_file_roots)
    except FetchError as exc:
        raise ApiError(400, str(exc)) from None
    svc.upload_from_uri(vnfPkgId, body, base)
    return Response(status_code=202)


def _onboarded(svc: PackageService, pkg_id: str) -> VnfPackageRow:
    with svc.sessions() as session:
        return svc.onboarded(session, pkg_id)


@router.get("/package_content", dependencies=[READ])
def download_content(
    vnfPkgId: str,
    range_header: str | None = Header(default=None, alias="Range"),
    svc: PackageService = Depends(service),
) -> Response:
    _onboarded(svc, vnfPkgId)
    path = svc.store.package_zip(vnfPkgId)
    return file_response(path, ZIP, range_header, filename=f"{vnfPkgId}.zip")


def _layout(row: VnfPackageRow) -> dict[str, Any]:
    if row.layout is None:
        raise ApiError(409, f"VNF package {row.id} has no content layout")
    return row.layout


@router.get("/vnfd", dependencies=[READ])
def read_vnfd(
    vnfPkgId: str,
    accept: str | None = Header(default=None),
    include_signatures: str | None = Query(default=None),
    svc: PackageService = Depends(service),
) -> Response:
    row = _onboarded(svc, vnfPkgId)
    layout = _layout(row)
    return descriptor_response(
        svc.store.content_dir(vnfPkgId),
        layout,
        layout["vnfdFiles"],
        accept,
        include_signatures,
        what="VNFD",
        filename=f"{vnfPkgId}-vnfd.zip",
    )


@router.get("/manifest", dependencies=[READ])
def read_manifest(
    vnfPkgId: str,
    accept: str | None = Header(default=None),
    include_signatures: str | None = Query(default=None),
    svc: PackageService = Depends(service),
) -> Response:
    row = _onboarded(svc, vnfPkgId)
    layout = _layout(row)
    return manifest_response(
        svc.store.content_dir(vnfPkgId),
        layout,
        accept,
        include_signatures,
        owner=f"VNF package {vnfPkgId}",
        filename=f"{vnfPkgId}-manifest.zip",
    )


@router.get("/artifacts", dependencies=[READ])
def read_artifacts(
    vnfPkgId: str,
    exclude_all_mano_artifacts: str | None = Query(default=None),
    exclude_all_non_mano_artifacts: str | None = Query(default=None),
    select_non_mano_artifact_sets: str | None = Query(default=None),
    include_signatures: str | None = Query(default=None),
    svc: PackageService = Depends(service),
) -> Response:
    row = _onboarded(svc, vnfPkgId)
    layout = _layout(row)
    non_mano: dict[str, list[str]] = layout.get("nonManoArtifactSets", {})
    selected: list[str] = []
    if exclude_all_mano_artifacts is None:
        selected += layout.get("manoArtifacts", [])
    if exclude_all_non_mano_artifacts is None:
        sets = (
            [s for s in select_non_mano_artifact_sets.split(",") if s]
            if select_non_mano_artifact_sets
            else list(non_mano)
        )
        unknown = [s for s in sets if s not in non_mano]
        if unknown:
            raise ApiError(400, f"unknown non-MANO artifact set(s): {', '.join(unknown)}")
        for name in sets:
            selected += non_mano[name]
    if include_signatures is not None:
        selected += layout.get("signatures", [])
    if not selected:
        raise ApiError(404, "no artifact matches the request")
    root = svc.store.content_dir(vnfPkgId)
    return zip_response(root, selected, f"{vnfPkgId}-artifacts.zip")


@router.get("/artifacts/{artifactPath:path}", dependencies=[READ])
def read_artifact(
    vnfPkgId: str,
    artifactPath: str,
    range_header: str | None = Header(default=None, alias="Range"),
    include_signatures: str | None = Query(default=None),
    svc: PackageService = Depends(service),
) -> Response:
    row = _onboarded(svc, vnfPkgId)
    layout = _layout(row)
    artifacts = set(layout.get("manoArtifacts", []))
    for members in layout.get("nonManoArtifactSets", {}).values():
        artifacts.update(members)
    return artifact_response(
        svc.store.content_dir(vnfPkgId),
        layout,
        artifactPath,
        artifacts,
        range_header,
        include_signatures,
        owner=f"VNF package {vnfPkgId}",
    )
