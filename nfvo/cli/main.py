"""nfvctl: build, validate and manage VNF packages and NSDs, run network services, and run and
administer the NFVO."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from descriptors.build import build_csar
from descriptors.csar import open_csar
from descriptors.errors import DescriptorError
from descriptors.tosca import parse_vnfd
from nfvo.cli.client import ApiClient, CliError
from nfvo.cli.config import CliConfig, load_config, save_config
from nfvo.cli.ns import ns, nsd
from nfvo.cli.vims import vim

app = typer.Typer(help="Manage the nfv-mano NFVO.", no_args_is_help=True)
package = typer.Typer(help="VNF packages (SOL004 CSARs).", no_args_is_help=True)
client_admin = typer.Typer(
    help="OAuth 2.0 API clients (run on the server host).", no_args_is_help=True
)
app.add_typer(package, name="package")
app.add_typer(client_admin, name="client")
app.add_typer(vim, name="vim")
app.add_typer(nsd, name="nsd")
app.add_typer(ns, name="ns")
# Piped output has no terminal width; keep ids whole for scripts and logs.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)


@contextmanager
def failures() -> Iterator[None]:
    """Turn expected failures into one line on stderr and exit status 1."""
    try:
        yield
    except DescriptorError as exc:
        where = f" ({exc.location})" if exc.location else ""
        err.print(f"[red]error:[/red] {exc.detail}{where}", highlight=False)
        raise typer.Exit(1) from None
    except (CliError, ValueError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


@contextmanager
def api() -> Iterator[ApiClient]:
    with failures(), ApiClient(load_config()) as client:
        yield client


# -- packages --------------------------------------------------------------------------


@package.command("build")
def package_build(
    source: Annotated[Path, typer.Argument(help="package source tree")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="CSAR file to write")
    ] = None,
    sign_cert: Annotated[
        Path | None,
        typer.Option(help="PEM certificate to sign the manifest with (SOL004 option 1)"),
    ] = None,
    sign_key: Annotated[Path | None, typer.Option(help="PEM private key of --sign-cert")] = None,
) -> None:
    """Build a CSAR zip (TOSCA.meta, manifest with digests) from a source tree."""
    with failures():
        if not source.is_dir():
            raise ValueError(f"{source} is not a directory")
        if (sign_cert is None) != (sign_key is None):
            raise ValueError("--sign-cert and --sign-key go together")
        target = output or Path(f"{source.resolve().name}.csar")
        signer = (sign_cert, sign_key) if sign_cert and sign_key else None
        built = build_csar(source, target, sign_with=signer)
        out.print(f"built {built}" + (" (signed)" if signer else ""))


@package.command("validate")
def package_validate(
    csar: Annotated[Path, typer.Argument(help="CSAR file")],
    trust_anchor: Annotated[
        Path | None, typer.Option(help="PEM CA certificate signatures must chain to")
    ] = None,
) -> None:
    """Check a CSAR offline: structure, digests, signatures and the SOL001 VNFD."""
    with failures(), tempfile.TemporaryDirectory(prefix="nfvctl-") as tmp:
        opened = open_csar(csar, Path(tmp) / "pkg", trust_anchor=trust_anchor)
        vnfd = parse_vnfd(opened.root, opened.entry_definitions)
        out.print(
            f"valid: {vnfd.vnf_provider} {vnfd.vnf_product_name} {vnfd.vnf_software_version} "
            f"(vnfdId {vnfd.vnfd_id}, {len(opened.files)} files"
            + (", signature verified)" if opened.signed else ")"),
            highlight=False,
        )


@package.command("onboard")
def package_onboard(
    csar: Annotated[Path, typer.Argument(help="CSAR file")],
    wait: Annotated[bool, typer.Option(help="wait until ONBOARDED")] = True,
    enable: Annotated[bool, typer.Option(help="enable it once onboarded")] = True,
) -> None:
    """Create a package resource, upload the CSAR and wait for onboarding."""
    with api() as client:
        if not csar.is_file():
            raise ValueError(f"{csar} is not a file")
        pkg_id = client.create_package()["id"]
        client.upload_package(pkg_id, csar)
        if not wait:
            out.print(pkg_id)
            return
        info = client.wait_onboarded(pkg_id)
        if enable:
            client.set_operational_state(pkg_id, "ENABLED")
        out.print(
            f"{pkg_id} ONBOARDED: {info['vnfProductName']} {info['vnfSoftwareVersion']} "
            f"(vnfdId {info['vnfdId']})",
            highlight=False,
        )


def _packages_table(packages: list[dict[str, Any]]) -> Table:
    table = Table("product", "version", "provider", "onboarding", "operational", "usage")
    table.add_column("id", no_wrap=True)
    for pkg in packages:
        table.add_row(
            pkg.get("vnfProductName", "-"),
            pkg.get("vnfSoftwareVersion", "-"),
            pkg.get("vnfProvider", "-"),
            pkg["onboardingState"],
            pkg["operationalState"],
            pkg["usageState"],
            pkg["id"],
        )
    return table


@package.command("list")
def package_list(
    filter_expr: Annotated[
        str | None, typer.Option("--filter", help="SOL013 filter, e.g. (eq,vnfProductName,NAT)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List VNF packages."""
    with api() as client:
        packages = client.list_packages(filter_expr, all_fields=as_json)
        if as_json:
            out.print_json(json.dumps(packages))
        else:
            out.print(_packages_table(packages))


@package.command("show")
def package_show(pkg_id: str) -> None:
    """Show one VNF package with all its attributes."""
    with api() as client:
        out.print_json(json.dumps(client.show_package(pkg_id)))


@package.command("enable")
def package_enable(pkg_id: str) -> None:
    """Set a package's operational state to ENABLED."""
    with api() as client:
        client.set_operational_state(pkg_id, "ENABLED")
        out.print(f"{pkg_id} ENABLED")


@package.command("disable")
def package_disable(pkg_id: str) -> None:
    """Set a package's operational state to DISABLED."""
    with api() as client:
        client.set_operational_state(pkg_id, "DISABLED")
        out.print(f"{pkg_id} DISABLED")


@package.command("delete")
def package_delete(pkg_id: str) -> None:
    """Delete a package (it must be DISABLED and NOT_IN_USE)."""
    with api() as client:
        client.delete_package(pkg_id)
        out.print(f"{pkg_id} deleted")


# -- connection and server administration --------------------------------------------------


@app.command("login")
def login(
    url: Annotated[str, typer.Option(help="NFVO base URL")],
    client_id: Annotated[str, typer.Option(help="OAuth 2.0 client id")],
    client_secret: Annotated[str, typer.Option(prompt=True, hide_input=True)],
) -> None:
    """Save the service URL and client credentials for later commands."""
    with failures():
        config = CliConfig(url=url, client_id=client_id, client_secret=client_secret)
        with ApiClient(config) as client:
            client.list_packages()
        out.print(f"saved {save_config(config)}")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8080,
) -> None:
    """Run the NFVO REST service (settings from NFVO_* environment variables)."""
    import uvicorn

    from nfvo.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info")


@client_admin.command("create")
def client_create(
    client_id: str,
    scope: Annotated[list[str], typer.Option(help="scope to grant (repeatable)")] = [  # noqa: B006
        "vnfpkgm:v2:all"
    ],
) -> None:
    """Create an API client in the service's database and print its secret once."""
    from nfvo.admin import create_api_client

    with failures():
        secret = create_api_client(client_id, scope)
        out.print(json.dumps({"client_id": client_id, "client_secret": secret}))


if __name__ == "__main__":
    app()
