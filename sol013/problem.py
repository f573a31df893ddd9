"""ProblemDetails error responses (ETSI GS NFV-SOL 013 clause 6.3, IETF RFC 7807).

Every error a SOL API returns, including the framework's own (unknown route, wrong method,
invalid body, unexpected crash), is turned into an ``application/problem+json`` body whose
mandatory ``status`` and ``detail`` tell the API consumer what went wrong.
"""

from __future__ import annotations

import http
import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_JSON: str = "application/problem+json"

# A request with dozens of bad fields should still get a readable one-line detail.
_MAX_VALIDATION_ERRORS = 10

log = logging.getLogger(__name__)


class ProblemDetails(BaseModel):
    """SOL013 clause 6.3: ``status`` and ``detail`` are mandatory, extensions are allowed."""

    model_config = ConfigDict(extra="allow")

    type: str | None = None
    title: str | None = None
    status: int
    detail: str
    instance: str | None = None


class ApiError(Exception):
    """Raised anywhere below a route to end the request with a ProblemDetails response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.title = title
        self.type_ = type_
        self.headers = headers

    def to_problem(self) -> ProblemDetails:
        return ProblemDetails(
            type=self.type_,
            title=self.title or reason_phrase(self.status),
            status=self.status,
            detail=self.detail,
        )


def reason_phrase(status: int) -> str | None:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return None


def problem_json(problem: ProblemDetails, *, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=problem.status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    type_: str | None = None,
) -> JSONResponse:
    problem = ProblemDetails(
        type=type_, title=title or reason_phrase(status), status=status, detail=detail
    )
    return problem_json(problem, headers=headers)


def internal_error_response() -> JSONResponse:
    # The traceback goes to the log only: it can reveal paths, SQL or secrets.
    return problem_response(500, "internal error")


def format_validation_errors(errors: Sequence[Any]) -> str:
    """One line per bad field: where it is (``body.a.0.b``) and what is wrong with it."""
    parts = [_format_one_error(err) for err in errors[:_MAX_VALIDATION_ERRORS]]
    if len(errors) > _MAX_VALIDATION_ERRORS:
        parts.append(f"(+{len(errors) - _MAX_VALIDATION_ERRORS} more errors)")
    return "; ".join(parts) if parts else "invalid request"


def _format_one_error(err: Any) -> str:
    if not isinstance(err, dict):
        return str(err)
    loc = [str(part) for part in err.get("loc", ())]
    msg = str(err.get("msg", "invalid value"))
    if err.get("type") == "json_invalid":
        # FastAPI puts the character offset where a field name would be.
        position = f" at character {loc[1]}" if len(loc) > 1 else ""
        reason = (err.get("ctx") or {}).get("error", "")
        return f"body: invalid JSON{position}" + (f" ({reason})" if reason else "")
    return f"{'.'.join(loc)}: {msg}" if loc else msg


def _http_exception_detail(request: Request, exc: StarletteHTTPException) -> str:
    detail = exc.detail
    if not isinstance(detail, str):
        return json.dumps(detail, default=str)
    # Starlette's own 404/405 carry only the reason phrase; say which request failed.
    if detail == reason_phrase(exc.status_code):
        if exc.status_code == 404:
            return f"no resource at {request.url.path}"
        if exc.status_code == 405:
            return f"method {request.method} is not allowed on {request.url.path}"
    return detail or (reason_phrase(exc.status_code) or "error")


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem_json(exc.to_problem(), headers=exc.headers)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code in (204, 304):
        # These statuses must not carry a body.
        return Response(status_code=exc.status_code, headers=headers)
    return problem_response(exc.status_code, _http_exception_detail(request, exc), headers=headers)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem_response(400, format_validation_errors(exc.errors()))


async def call_catching_errors(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    headers: dict[str, str] | None = None,
) -> None:
    """Runs ``app``; an unhandled exception becomes a 500 ProblemDetails carrying ``headers``.

    Starlette's own ``Exception`` handler re-raises after responding, which makes servers log
    the error twice and test clients fail; catching in plain ASGI code avoids both.
    """
    started = False

    async def tracking_send(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, receive, tracking_send)
    except Exception:
        log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
        if started:
            # Headers are on the wire already; only the server can abort the response.
            raise
        response = internal_error_response()
        if headers:
            response.headers.update(headers)
        await response(scope, receive, send)


class CatchAllMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await call_catching_errors(self.app, scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_middleware(CatchAllMiddleware)
