"""Responses the VNF package and NSD resource routes build alike.

Both resources carry their ETag as the SHA of {id, revision}, return the info
document on create and read, and answer a PATCH with the modifications applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from nfvo.content_rows import ContentResource
from sol013.etag import check_if_match, etag_for


def resource_etag(row: ContentResource) -> str:
    """The ETag: the resource's identity and its revision counter."""
    return etag_for({"id": row.id, "revision": row.revision})


def created_response(info: dict[str, Any], href: str, row: ContentResource) -> JSONResponse:
    return JSONResponse(
        info, status_code=201, headers={"Location": href, "ETag": resource_etag(row)}
    )


def info_response(info: dict[str, Any], row: ContentResource) -> JSONResponse:
    return JSONResponse(info, headers={"ETag": resource_etag(row)})


def etag_check(if_match: str | None) -> Callable[[ContentResource], None]:
    """The If-Match check a service runs on the locked row before changing it."""

    def check(row: ContentResource) -> None:
        check_if_match(if_match, resource_etag(row))

    return check


def modified_response(changes: BaseModel, row: ContentResource) -> JSONResponse:
    """SOL005: a successful PATCH returns the modifications as applied."""
    body: dict[str, Any] = changes.model_dump(mode="json", exclude_none=True)
    return JSONResponse(body, headers={"ETag": resource_etag(row)})
