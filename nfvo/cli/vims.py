"""nfvctl vim: register, list, show, update and delete VIMs (the project's /vims/v1 API).

Attributes are given as KEY=VALUE (``--access stateDir=/srv/vim2``); ``true``/``false`` are
booleans, anything else a string; in ``update`` an empty value removes the attribute.
Credentials can come from a JSON file (``--access-file``), so they do not show up in the
process list or the shell history.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from nfvo.cli.client import ApiClient, CliError
from nfvo.vims.schemas import API_VERSION
from vim_adapters.registry import VIM_TYPE_OF_KIND

VIMS = "/vims/v1/vims"
HEADERS = {"Version": API_VERSION}

vim = typer.Typer(help="VIMs the NFVO places VNFs on (the VIM registry).", no_args_is_help=True)

Interface = Annotated[
    list[str] | None,
    typer.Option("--interface", metavar="KEY=VALUE", help="interfaceInfo attribute (repeatable)"),
]
Access = Annotated[
    list[str] | None,
    typer.Option("--access", metavar="KEY=VALUE", help="accessInfo attribute (repeatable)"),
]
Labels = Annotated[
    list[str] | None,
    typer.Option("--label", metavar="KEY=VALUE", help="placement label (repeatable)"),
]


def _vim_type(value: str) -> str:
    """A vimType, or its short name (local, kubernetes, openstack)."""
    return VIM_TYPE_OF_KIND.get(value.lower(), value)


def _value(text: str, *, removable: bool) -> Any:
    if text == "" and removable:
        return None
    return {"true": True, "false": False}.get(text, text)


def pairs(items: list[str] | None, what: str, *, removable: bool = False) -> dict[str, Any]:
    """KEY=VALUE options as a JSON object; ValueError naming the malformed one."""
    found: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} {item!r} is not KEY=VALUE")
        found[key] = _value(text, removable=removable)
    return found


def _json_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        loaded = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: must hold a JSON object")
    return loaded


def _extra(
    zone: str | None, labels: list[str] | None, vcpu: float | None, memory_mib: int | None
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if zone is not None:
        extra["zone"] = zone or None
    if labels:
        extra["labels"] = pairs(labels, "--label", removable=True)
    capacity = {
        key: value
        for key, value in (("vcpu", vcpu), ("memoryMib", memory_mib))
        if value is not None
    }
    if capacity:
        extra["capacity"] = capacity
    return extra


def _table(vims: list[dict[str, Any]]) -> Table:
    table = Table("name", "vimType", "zone", "labels", "default")
    table.add_column("id", no_wrap=True)
    for item in vims:
        extra = item.get("extra", {})
        labels = ",".join(f"{k}={v}" for k, v in sorted(extra.get("labels", {}).items()))
        table.add_row(
            item["name"],
            item["vimType"],
            extra.get("zone") or "-",
            labels or "-",
            "yes" if item.get("isDefault") else "",
            item["id"],
        )
    return table


# nfvo.cli.main imports this module to add the group, so its console and its API client
# context (one-line errors, exit status 1) are looked up when a command runs.


def _out() -> Console:
    from nfvo.cli.main import out

    return out


def _api() -> AbstractContextManager[ApiClient]:
    from nfvo.cli.main import api

    return api()


def _print_json(value: Any) -> None:
    _out().print_json(json.dumps(value))


@vim.command("register")
def register(
    name: str,
    vim_type: Annotated[
        str, typer.Option("--type", help="vimType, or local, kubernetes, openstack")
    ],
    description: Annotated[str | None, typer.Option(help="free text")] = None,
    interface: Interface = None,
    access: Access = None,
    access_file: Annotated[
        Path | None, typer.Option(help="JSON file with accessInfo attributes (credentials)")
    ] = None,
    zone: Annotated[str | None, typer.Option(help="placement zone")] = None,
    label: Labels = None,
    vcpu: Annotated[float | None, typer.Option(help="vCPU this NFVO may use")] = None,
    memory_mib: Annotated[int | None, typer.Option(help="memory (MiB) it may use")] = None,
) -> None:
    """Register a VIM; prints its id."""
    with _api() as client:
        body: dict[str, Any] = {
            "name": name,
            "vimType": _vim_type(vim_type),
            "interfaceInfo": pairs(interface, "--interface"),
            "accessInfo": {**_json_file(access_file), **pairs(access, "--access")},
        }
        if description is not None:
            body["description"] = description
        extra = _extra(zone, label, vcpu, memory_mib)
        if extra:
            body["extra"] = extra
        created = client.request("POST", VIMS, json=body, headers=HEADERS).json()
        _out().print(f"{created['id']} registered: {created['name']} ({created['vimType']})")


@vim.command("list")
def list_vims(
    filter_expr: Annotated[
        str | None, typer.Option("--filter", help="SOL013 filter, e.g. (eq,extra/zone,edge)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List registered VIMs."""
    with _api() as client:
        params: dict[str, str] = {"filter": filter_expr} if filter_expr else {}
        found: list[dict[str, Any]] = []
        url: str | None = VIMS
        while url:
            resp = client.request(
                "GET", url, params=params if url == VIMS else None, headers=HEADERS
            )
            found.extend(resp.json())
            url = resp.links.get("next", {}).get("url")
        if as_json:
            _print_json(found)
        else:
            _out().print(_table(found))


@vim.command("show")
def show(vim_id: str) -> None:
    """Show one VIM (credentials are never shown)."""
    with _api() as client:
        _print_json(client.request("GET", f"{VIMS}/{vim_id}", headers=HEADERS).json())


@vim.command("update")
def update(
    vim_id: str,
    name: Annotated[str | None, typer.Option(help="new name")] = None,
    description: Annotated[str | None, typer.Option(help="new description")] = None,
    interface: Interface = None,
    access: Access = None,
    access_file: Annotated[
        Path | None, typer.Option(help="JSON file with accessInfo attributes to change")
    ] = None,
    zone: Annotated[str | None, typer.Option(help="placement zone ('' removes it)")] = None,
    label: Labels = None,
    vcpu: Annotated[float | None, typer.Option(help="vCPU this NFVO may use")] = None,
    memory_mib: Annotated[int | None, typer.Option(help="memory (MiB) it may use")] = None,
) -> None:
    """Change a VIM (a JSON Merge Patch: KEY= removes an attribute)."""
    with _api() as client:
        patch: dict[str, Any] = {}
        if name is not None:
            patch["name"] = name
        if description is not None:
            patch["description"] = description or None
        if interface:
            patch["interfaceInfo"] = pairs(interface, "--interface", removable=True)
        changed_access = {**_json_file(access_file), **pairs(access, "--access", removable=True)}
        if changed_access:
            patch["accessInfo"] = changed_access
        extra = _extra(zone, label, vcpu, memory_mib)
        if extra:
            patch["extra"] = extra
        if not patch:
            raise CliError("nothing to change: give at least one option")
        client.request(
            "PATCH",
            f"{VIMS}/{vim_id}",
            json=patch,
            headers={**HEADERS, "Content-Type": "application/merge-patch+json"},
        )
        _out().print(f"{vim_id} updated")


@vim.command("delete")
def delete(vim_id: str) -> None:
    """Unregister a VIM (it must have no VNF resources left)."""
    with _api() as client:
        client.request("DELETE", f"{VIMS}/{vim_id}", headers=HEADERS)
        _out().print(f"{vim_id} deleted")
