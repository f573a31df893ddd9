"""A small SOL005 client for nfvctl: OAuth2 token handling and error reporting."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from nfvo.cli.config import CliConfig

PKG = "/vnfpkgm/v2/vnf_packages"
VERSION = "2.4.0"


class CliError(Exception):
    """A failure to report to the user in one line."""


def _problem_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("detail"):
        return f"{resp.status_code} {body.get('title') or resp.reason_phrase}: {body['detail']}"
    if isinstance(body, dict) and body.get("error"):
        return f"{resp.status_code} {body['error']}: {body.get('error_description', '')}".strip()
    return f"{resp.status_code} {resp.reason_phrase}"


class ApiClient:
    """Calls the NFVO with a bearer token obtained by client credentials."""

    def __init__(self, config: CliConfig, *, timeout: float = 60.0) -> None:
        self.config = config
        self._http = httpx.Client(base_url=config.url, timeout=timeout)
        self._token: str | None = None
        self._token_expiry = 0.0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _bearer(self) -> dict[str, str]:
        if not self.config.client_id or not self.config.client_secret:
            return {}
        if self._token is None or time.monotonic() > self._token_expiry:
            resp = self._send(
                "POST",
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(self.config.client_id, self.config.client_secret),
            )
            body = resp.json()
            self._token = body["access_token"]
            self._token_expiry = time.monotonic() + int(body.get("expires_in", 300)) - 30
        return {"Authorization": f"Bearer {self._token}"}

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {self.config.url}: {exc}") from None
        if resp.status_code >= 400:
            raise CliError(_problem_text(resp))
        return resp

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Version": VERSION, **self._bearer(), **kwargs.pop("headers", {})}
        return self._send(method, path, headers=headers, **kwargs)

    # -- VNF packages ---------------------------------------------------------------

    def list_packages(
        self, filter_expr: str | None = None, *, all_fields: bool = False
    ) -> list[Any]:
        params: dict[str, str] = {}
        if filter_expr:
            params["filter"] = filter_expr
        if all_fields:
            params["all_fields"] = ""
        found: list[Any] = []
        url: str | None = PKG
        while url:
            resp = self.request("GET", url, params=params if url == PKG else None)
            found.extend(resp.json())
            url = resp.links.get("next", {}).get("url")
        return found

    def show_package(self, pkg_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.request(
            "GET", f"{PKG}/{pkg_id}", params={"all_fields": ""}
        ).json()
        return body

    def create_package(self, user_data: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = self.request(
            "POST", PKG, json={"userDefinedData": user_data} if user_data else {}
        ).json()
        return body

    def upload_package(self, pkg_id: str, csar: Path) -> None:
        with csar.open("rb") as content:
            self.request(
                "PUT",
                f"{PKG}/{pkg_id}/package_content",
                content=content,
                headers={"Content-Type": "application/zip"},
            )

    def wait_onboarded(self, pkg_id: str, *, timeout: float = 300.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            info = self.show_package(pkg_id)
            state = info["onboardingState"]
            if state == "ONBOARDED":
                return info
            if state in ("CREATED", "ERROR") and info.get("onboardingFailureDetails"):
                failure = info["onboardingFailureDetails"]
                raise CliError(f"onboarding failed: {failure.get('detail', failure)}")
            if time.monotonic() > deadline:
                raise CliError(f"package {pkg_id} still {state} after {timeout:.0f}s")
            time.sleep(0.2)

    def set_operational_state(self, pkg_id: str, state: str) -> None:
        self.request(
            "PATCH",
            f"{PKG}/{pkg_id}",
            json={"operationalState": state},
            headers={"Content-Type": "application/merge-patch+json"},
        )

    def delete_package(self, pkg_id: str) -> None:
        self.request("DELETE", f"{PKG}/{pkg_id}")
