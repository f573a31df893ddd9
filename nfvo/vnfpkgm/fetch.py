"""Fetch package content for upload_from_uri: file:// inside allowed roots, or http(s)://."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from nfvo.content_store import ContentStore, StagedUpload
from nfvo.vnfpkgm.schemas import UploadVnfPackageFromUriRequest

CHUNK = 1 << 20
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class FetchError(Exception):
    """The package could not be fetched; the message says why."""


def check_address(address: str, file_roots: list[Path]) -> None:
    """Refuse an address up front, so the API can answer 400 instead of failing later."""
    parts = urlsplit(address)
    if parts.scheme == "file":
        _allowed_file(address, file_roots)
    elif parts.scheme not in ("http", "https") or not parts.netloc:
        raise FetchError(
            f"addressInformation must be an http://, https:// or file:// URI, got {address!r}"
        )


def _allowed_file(address: str, file_roots: list[Path]) -> Path:
    parts = urlsplit(address)
    if parts.netloc not in ("", "localhost"):
        raise FetchError(f"file:// URI with a remote host is not supported: {address!r}")
    path = Path(unquote(parts.path)).resolve()
    if not any(path.is_relative_to(root) for root in file_roots):
        allowed = ", ".join(str(r) for r in file_roots) or "none configured"
        raise FetchError(
            f"{path} is outside the directories allowed for file:// uploads ({allowed})"
        )
    return path


def _oauth_token(request: UploadVnfPackageFromUriRequest, client: httpx.Client) -> str:
    params = request.paramsOauth2ClientCredentials
    assert params is not None  # checked by the request model
    resp = client.post(
        params.tokenEndpoint,
        data={"grant_type": "client_credentials"},
        auth=(params.clientId, params.clientPassword),
    )
    if resp.status_code != 200:
        raise FetchError(f"token endpoint {params.tokenEndpoint} answered {resp.status_code}")
    token = resp.json().get("access_token")
    if not isinstance(token, str):
        raise FetchError(f"token endpoint {params.tokenEndpoint} returned no access_token")
    return token


def fetch_to_staging(
    request: UploadVnfPackageFromUriRequest,
    store: ContentStore,
    *,
    max_bytes: int,
    file_roots: list[Path],
) -> StagedUpload:
    address = request.addressInformation
    check_address(address, file_roots)
    if urlsplit(address).scheme == "file":
        path = _allowed_file(address, file_roots)
        try:
            with path.open("rb") as source:
                return store.stage_chunks(
                    iter(lambda: source.read(CHUNK), b""), max_bytes=max_bytes
                )
        except OSError as exc:
            raise FetchError(f"cannot read {path}: {exc.strerror}") from None
    with httpx.Client(timeout=TIMEOUT, follow_redirects=True, max_redirects=5) as client:
        headers: dict[str, str] = {"Accept": "application/zip, application/octet-stream"}
        auth: tuple[str, str] | None = None
        if request.authType == "BASIC":
            auth = (request.username or "", request.password or "")
        elif request.authType == "OAUTH2_CLIENT_CREDENTIALS":
            headers["Authorization"] = f"Bearer {_oauth_token(request, client)}"
        try:
            with client.stream("GET", address, headers=headers, auth=auth) as resp:
                if resp.status_code != 200:
                    raise FetchError(f"GET {address} answered HTTP {resp.status_code}")
                return store.stage_chunks(resp.iter_bytes(CHUNK), max_bytes=max_bytes)
        except httpx.HTTPError as exc:
            raise FetchError(f"GET {address} failed: {exc}") from None
