"""nfvctl nsd and nfvctl ns: network service descriptors and network service instances."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from descriptors.build import build_csar
from nfvo.cli import ns_api
from nfvo.cli.client import ApiClient

nsd = typer.Typer(help="Network service descriptors (SOL001 NSDs, SOL005).", no_args_is_help=True)
ns = typer.Typer(help="Network service instances (SOL005 NS lifecycle).", no_args_is_help=True)

Wait = Annotated[bool, typer.Option(help="wait until the operation is COMPLETED")]
Filter = Annotated[str | None, typer.Option("--filter", help="SOL013 filter expression")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


def _out() -> Console:
    from nfvo.cli.main import out

    return out


def _api() -> AbstractContextManager[ApiClient]:
    from nfvo.cli.main import api

    return api()


def _print_json(value: Any) -> None:
    _out().print_json(json.dumps(value))


# -- nsd ---------------------------------------------------------------------------------------


@nsd.command("onboard")
def nsd_onboard(
    source: Annotated[Path, typer.Argument(help="NSD archive (.zip), single YAML, or source tree")],
    enable: Annotated[bool, typer.Option(help="enable it once onboarded")] = True,
) -> None:
    """Upload an NSD and wait until it is ONBOARDED (a source tree is zipped first)."""
    with _api() as client:
        if source.is_dir():
            archive = build_csar(source, source.parent / f"{source.resolve().name}.zip")
        elif source.is_file():
            archive = source
        else:
            raise ValueError(f"{source} is neither a file nor a directory")
        info = ns_api.onboard_nsd(client, archive)
        if enable:
            ns_api.set_nsd_state(client, info["id"], "ENABLED")
        _out().print(
            f"{info['id']} ONBOARDED: {info.get('nsdName', '-')} {info.get('nsdVersion', '')} "
            f"(nsdId {info['nsdId']})",
            highlight=False,
        )


def _nsd_table(nsds: list[dict[str, Any]]) -> Table:
    table = Table("name", "version", "designer", "onboarding", "operational", "usage", "nsdId")
    table.add_column("id", no_wrap=True)
    for info in nsds:
        table.add_row(
            info.get("nsdName", "-"),
            info.get("nsdVersion", "-"),
            info.get("nsdDesigner", "-"),
            info["nsdOnboardingState"],
            info["nsdOperationalState"],
            info["nsdUsageState"],
            info.get("nsdId", "-"),
            info["id"],
        )
    return table


@nsd.command("list")
def nsd_list(filter_expr: Filter = None, as_json: AsJson = False) -> None:
    """List NSDs."""
    with _api() as client:
        found = ns_api.list_nsds(client, filter_expr)
        if as_json:
            _print_json(found)
        else:
            _out().print(_nsd_table(found))


@nsd.command("show")
def nsd_show(nsd_info_id: str) -> None:
    """Show one NSD resource."""
    with _api() as client:
        _print_json(ns_api.show_nsd(client, nsd_info_id))


@nsd.command("enable")
def nsd_enable(nsd_info_id: str) -> None:
    """Set an NSD's operational state to ENABLED."""
    with _api() as client:
        ns_api.set_nsd_state(client, nsd_info_id, "ENABLED")
        _out().print(f"{nsd_info_id} ENABLED")


@nsd.command("disable")
def nsd_disable(nsd_info_id: str) -> None:
    """Set an NSD's operational state to DISABLED (no new NS instances from it)."""
    with _api() as client:
        ns_api.set_nsd_state(client, nsd_info_id, "DISABLED")
        _out().print(f"{nsd_info_id} DISABLED")


@nsd.command("delete")
def nsd_delete(nsd_info_id: str) -> None:
    """Delete an NSD (it must be DISABLED and NOT_IN_USE)."""
    with _api() as client:
        ns_api.delete_nsd(client, nsd_info_id)
        _out().print(f"{nsd_info_id} deleted")


# -- ns ----------------------------------------------------------------------------------------


def ns_table(instances: list[dict[str, Any]]) -> Table:
    table = Table("name", "state", "nsdId", "VNF instances")
    table.add_column("id", no_wrap=True)
    for info in instances:
        table.add_row(
            info.get("nsInstanceName", "-"),
            info.get("nsState", "-"),
            info.get("nsdId", "-"),
            str(len(info.get("vnfInstance", []))),
            info["id"],
        )
    return table


@ns.command("create")
def ns_create(
    nsd_id: Annotated[str, typer.Argument(help="nsdId of an onboarded, enabled NSD")],
    name: Annotated[str, typer.Option(help="the instance's name")],
    description: Annotated[str, typer.Option(help="the instance's description")] = "",
) -> None:
    """Create an NS instance (NOT_INSTANTIATED)."""
    with _api() as client:
        created = ns_api.create_ns(client, nsd_id, name, description)
        _out().print(f"{created['id']} created: {name} (NOT_INSTANTIATED)", highlight=False)


@ns.command("list")
def ns_list(filter_expr: Filter = None, as_json: AsJson = False) -> None:
    """List NS instances."""
    with _api() as client:
        found = ns_api.list_ns(client, filter_expr, all_fields=not as_json)
        if as_json:
            _print_json(found)
        else:
            _out().print(ns_table(found))


@ns.command("show")
def ns_show(ns_id: str) -> None:
    """Show one NS instance."""
    with _api() as client:
        _print_json(ns_api.show_ns(client, ns_id))


def _run(client: ApiClient, ns_id: str, task: str, body: dict[str, Any], wait: bool) -> None:
    op_id = ns_api.start_ns_task(client, ns_id, task, body)
    if not wait:
        _out().print(f"{task} of {ns_id} started: occurrence {op_id}")
        return
    ns_api.wait_ns_op(client, op_id)
    _out().print(f"{task} of {ns_id} COMPLETED (occurrence {op_id})")


@ns.command("instantiate")
def ns_instantiate(
    ns_id: str,
    flavour: Annotated[str, typer.Option(help="NS deployment flavour")] = "default",
    level: Annotated[str | None, typer.Option(help="NS instantiation level")] = None,
    wait: Wait = True,
) -> None:
    """Instantiate an NS instance: its virtual links and VNFs, in dependency order."""
    body: dict[str, Any] = {"nsFlavourId": flavour}
    if level is not None:
        body["nsInstantiationLevelId"] = level
    with _api() as client:
        _run(client, ns_id, "instantiate", body, wait)


@ns.command("scale")
def ns_scale(
    ns_id: str,
    aspect: Annotated[str, typer.Option(help="NS scaling aspect")],
    direction: Annotated[str, typer.Option(help="SCALE_OUT or SCALE_IN")] = "SCALE_OUT",
    steps: Annotated[int, typer.Option(help="number of steps")] = 1,
    wait: Wait = True,
) -> None:
    """Scale an NS instance by steps of one of its NS scaling aspects."""
    body = {
        "scaleType": "SCALE_NS",
        "scaleNsData": {
            "scaleNsByStepsData": {
                "scalingDirection": direction.upper(),
                "aspectId": aspect,
                "numberOfSteps": steps,
            }
        },
    }
    with _api() as client:
        _run(client, ns_id, "scale", body, wait)


@ns.command("terminate")
def ns_terminate(ns_id: str, wait: Wait = True) -> None:
    """Terminate an NS instance: its VNFs in reverse dependency order, then its virtual links."""
    with _api() as client:
        _run(client, ns_id, "terminate", {}, wait)


@ns.command("delete")
def ns_delete(ns_id: str) -> None:
    """Delete an NS instance (it must be NOT_INSTANTIATED)."""
    with _api() as client:
        ns_api.delete_ns(client, ns_id)
        _out().print(f"{ns_id} deleted")
