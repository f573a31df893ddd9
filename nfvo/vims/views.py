"""VimInfo representations of registered VIMs: credentials shown as ``<redacted>``."""

from __future__ import annotations

from typing import Any

from nfvo.vims.models import VimRow
from nfvo.vims.schemas import API_MAJOR, API_NAME, REDACTED
from vim_adapters.registry import secret_fields

# Left out of a list unless asked for (SOL013 attribute selectors).
DEFAULT_EXCLUDED = ("interfaceInfo", "accessInfo")


def vim_href(base_url: str, vim_id: str) -> str:
    return f"{base_url.rstrip('/')}/{API_NAME}/{API_MAJOR}/vims/{vim_id}"


def redacted_access(row: VimRow) -> dict[str, Any]:
    """accessInfo with every credential's value replaced: its name stays, its value never shows."""
    secrets = secret_fields(row.vim_type)
    return {
        key: REDACTED if key in secrets else value for key, value in sorted(row.access_info.items())
    }


def vim_info(row: VimRow, base_url: str) -> dict[str, Any]:
    view: dict[str, Any] = {"id": row.id, "name": row.name}
    if row.description is not None:
        view["description"] = row.description
    view.update(
        {
            "vimType": row.vim_type,
            "interfaceInfo": dict(row.interface_info),
            "accessInfo": redacted_access(row),
            "extra": dict(row.extra),
            "isDefault": row.is_default,
            "_links": {"self": {"href": vim_href(base_url, row.id)}},
        }
    )
    return view


def etag_source(row: VimRow) -> dict[str, Any]:
    return {"id": row.id, "revision": row.revision}
