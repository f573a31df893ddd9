"""API version signalling (ETSI GS NFV-SOL 013 clause 9).

Each API exposes ``GET /{apiName}/api_versions`` and ``GET /{apiName}/{major}/api_versions``,
every response under ``/{apiName}/`` carries a ``Version`` header, and a request that asks
for a version the producer does not serve is refused with 406.

Deliberate leniency: SOL013 makes the ``Version`` request header mandatory, but a request
without it is served with the current version, so that curl and browsers work unaided.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sol013.problem import call_catching_errors, problem_response

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-.+)?$")
_API_VERSIONS = "api_versions"


class ApiVersion(BaseModel):
    version: str
    isDeprecated: bool | None = None
    retirementDate: datetime | None = None


class ApiVersionInformation(BaseModel):
    uriPrefix: str
    apiVersions: list[ApiVersion]


@dataclass(frozen=True)
class ApiSpec:
    """One major version of one API, e.g. ``ApiSpec("vnfpkgm", "v2", ("2.4.0",))``."""

    name: str
    major: str
    versions: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.versions:
            raise ValueError(f"API {self.name}/{self.major} lists no versions")
        for version in self.versions:
            match = _VERSION_RE.match(version)
            if match is None or f"v{match.group(1)}" != self.major:
                raise ValueError(
                    f"version {version!r} of API {self.name} does not belong to {self.major}"
                )

    @property
    def uri_prefix(self) -> str:
        return f"/{self.name}/{self.major}"

    @property
    def current(self) -> str:
        return self.versions[-1]

    def info(self) -> ApiVersionInformation:
        return ApiVersionInformation(
            uriPrefix=self.uri_prefix,
            apiVersions=[ApiVersion(version=v) for v in self.versions],
        )


def api_versions_router(spec: ApiSpec) -> APIRouter:
    router = APIRouter(tags=[f"{spec.name} API versions"])

    async def get_api_versions() -> ApiVersionInformation:
        return spec.info()

    for path in (f"/{spec.name}/{_API_VERSIONS}", f"{spec.uri_prefix}/{_API_VERSIONS}"):
        router.add_api_route(
            path,
            get_api_versions,
            methods=["GET"],
            response_model=ApiVersionInformation,
            response_model_exclude_none=True,
            summary=f"Supported versions of the {spec.name} API",
        )
    return router


class VersionMiddleware:
    """Adds ``Version`` to every response of a known API and refuses unsupported versions."""

    def __init__(self, app: ASGIApp, specs: Sequence[ApiSpec]) -> None:
        self.app = app
        self.specs = tuple(specs)

    def _spec_for(self, path: str) -> tuple[ApiSpec, bool] | None:
        """The spec serving ``path``, and whether the path is inside its major version."""
        by_name = [s for s in self.specs if path.startswith(f"/{s.name}/")]
        for spec in by_name:
            if path == spec.uri_prefix or path.startswith(spec.uri_prefix + "/"):
                return spec, True
        # /{name}/api_versions (or an unknown major): answer with the newest major's version.
        return (by_name[-1], False) if by_name else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        found = self._spec_for(path)
        if found is None:
            await self.app(scope, receive, send)
            return
        spec, in_major = found
        version_header = {"Version": spec.current}

        requested = Headers(scope=scope).get("version")
        if (
            in_major
            and requested is not None
            and requested.strip() not in spec.versions
            and not path.endswith(f"/{_API_VERSIONS}")
        ):
            detail = (
                f"API version {requested!r} is not supported by {spec.uri_prefix}; "
                f"supported versions: {', '.join(spec.versions)}"
            )
            response = problem_response(406, detail, headers=version_header)
            await response(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Version"] = spec.current
            await send(message)

        # Catching here too keeps the Version header on 500s whatever order the lead installs
        # the two middlewares in.
        await call_catching_errors(self.app, scope, receive, send_with_version)


def install_version_headers(app: FastAPI, specs: Sequence[ApiSpec]) -> None:
    app.add_middleware(VersionMiddleware, specs=specs)
