"""`make demo`: run the NFVO on embedded defaults, onboard the project's VNF packages and
the sample NSD, and instantiate the sample network service (edge-gateway) on the local VIM.

Leaves the service and its LCM worker running in the background (pids and logs in the data
directory); `make stop` (this module with --stop) terminates and deletes the demo's
network service, then stops them. Running `make demo` again keeps what exists.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from rich.console import Console

from descriptors.build import build_csar
from descriptors.lab_pki import ensure_pki
from descriptors.nsd_build import build_nsd_archive
from nfvo.admin import create_api_client
from nfvo.cli import ns_api
from nfvo.cli.client import ApiClient, CliError
from nfvo.cli.config import CliConfig, save_config
from nfvo.cli.main import _packages_table
from nfvo.cli.ns import ns_table
from nfvo.process import (
    ServiceError,
    start_service,
    start_worker,
    wait_ready,
    wait_worker_ready,
)
from nfvo.settings import Settings
from sol013.oauth2 import delete_client
from store.base import make_engine, make_session_factory, transaction

PACKAGES = ("nat", "slb", "cen", "vpn")
SOURCE = Path(__file__).resolve().parent.parent / "descriptors" / "packages"
NSD_SOURCE = SOURCE.parent / "nsds" / "edge-gateway"
NSD_ORIGIN = {"source": "descriptors/nsds/edge-gateway"}
DEMO_NS = "edge-gateway-demo"
DEMO_CLIENT = "nfvctl-demo"
DEMO_SCOPES = ["vnfpkgm:v2:all", "vnflcm:v2:all", "nsd:v2:all", "nslcm:v2:all", "vims:v1:all"]
out = Console(width=None if sys.stdout.isatty() else 200)


# The demo's background processes: the REST service and one LCM worker.
PROCESSES = ("nfvo", "worker")


def _pid_file(settings: Settings, name: str) -> Path:
    return settings.data_dir / f"{name}.pid"


def _running_pid(settings: Settings, name: str) -> int | None:
    try:
        pid = int(_pid_file(settings, name).read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid


def _stop_one(settings: Settings, name: str) -> None:
    pid = _running_pid(settings, name)
    _pid_file(settings, name).unlink(missing_ok=True)
    if pid is None:
        out.print(f"the demo {name} is not running")
        return
    # Each was started in its own session: signal the whole group.
    os.killpg(pid, signal.SIGTERM)
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    out.print(f"stopped the demo {name} (pid {pid})")


def stop(settings: Settings) -> None:
    if _running_pid(settings, "nfvo") is not None and _running_pid(settings, "worker") is not None:
        try:
            _remove_demo_ns(settings)
        except (CliError, ValueError, OSError) as exc:
            out.print(f"[yellow]warning:[/yellow] the demo network service stays: {exc}")
    for name in reversed(PROCESSES):
        _stop_one(settings, name)


def _remove_demo_ns(settings: Settings) -> None:
    """Terminate and delete the demo's NS instance, so nothing is left on the local VIM."""
    config_file = settings.data_dir / "nfvctl.json"
    if not config_file.is_file():
        return
    config = CliConfig.model_validate_json(config_file.read_text())
    with ApiClient(config) as client:
        for instance in ns_api.list_ns(client):
            if instance.get("nsInstanceName") != DEMO_NS:
                continue
            if instance["nsState"] != "NOT_INSTANTIATED":
                op_id = ns_api.start_ns_task(client, instance["id"], "terminate", {})
                ns_api.wait_ns_op(client, op_id)
            ns_api.delete_ns(client, instance["id"])
            out.print(f"terminated and deleted the network service {DEMO_NS} ({instance['id']})")


def _fresh_client(settings: Settings) -> str:
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            delete_client(session, DEMO_CLIENT)
    except Exception:
        pass
    finally:
        engine.dispose()
    return create_api_client(DEMO_CLIENT, DEMO_SCOPES, settings=settings)


def _start(settings: Settings, port: int) -> int:
    proc = start_service(settings, port, settings.data_dir / "nfvo.log")
    _pid_file(settings, "nfvo").write_text(str(proc.pid))
    return proc.pid


def _start_worker(settings: Settings) -> int:
    log = settings.data_dir / "worker.log"
    log.touch()
    since = log.stat().st_size
    proc = start_worker(settings, log)
    _pid_file(settings, "worker").write_text(str(proc.pid))
    wait_worker_ready(log, proc, since=since)
    return proc.pid


def run(settings: Settings, port: int) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    secret = _fresh_client(settings)
    config = CliConfig(url=url, client_id=DEMO_CLIENT, client_secret=secret)
    save_config(config)
    save_config(config, settings.data_dir / "nfvctl.json")
    pki = ensure_pki(settings.data_dir / "pki")
    if settings.trust_anchor is None:
        settings.trust_anchor = pki.ca_cert
    csar_dir = settings.data_dir / "csars"
    csar_dir.mkdir(exist_ok=True)
    signer = (pki.signer_cert, pki.signer_key)
    csars = {
        name: build_csar(SOURCE / name, csar_dir / f"{name}.csar", sign_with=signer)
        for name in PACKAGES
    }
    if settings.local_vim_state_dir is None:
        settings.local_vim_state_dir = settings.data_dir / "local-vim"
    pid = _running_pid(settings, "nfvo")
    if pid is None:
        pid = _start(settings, port)
        out.print(f"started the NFVO (pid {pid}) on {url}; log: {settings.data_dir / 'nfvo.log'}")
    wait_ready(url)
    if _running_pid(settings, "worker") is None:
        worker = _start_worker(settings)
        out.print(f"started an LCM worker (pid {worker}); log: {settings.data_dir / 'worker.log'}")
    with ApiClient(config) as client:
        onboarded = {p.get("vnfProductName") for p in client.list_packages()}
        for name, csar in csars.items():
            if name.upper() in onboarded:
                continue
            pkg_id = client.create_package({"source": f"descriptors/packages/{name}"})["id"]
            client.upload_package(pkg_id, csar)
            client.wait_onboarded(pkg_id)
            client.set_operational_state(pkg_id, "ENABLED")
        out.print(_packages_table(client.list_packages()))
        nsd_archive = build_nsd_archive(NSD_SOURCE, csar_dir / "edge-gateway.zip", sign_with=signer)
        _run_demo_ns(client, nsd_archive)
    out.print(
        f"The NFVO keeps running on {url} (OpenAPI at {url}/docs). "
        "Try: .venv/bin/nfvctl ns list   .venv/bin/nfvctl package list   "
        "Stop it (terminating the network service) with: make stop"
    )


def _run_demo_ns(client: ApiClient, nsd_archive: Path) -> None:
    """The sample NSD onboarded and enabled, and the demo's NS instance of it INSTANTIATED."""
    listed = ns_api.list_nsds(client, all_fields=True)
    nsds = [n for n in listed if n.get("userDefinedData") == NSD_ORIGIN]
    onboarded = [n for n in nsds if n["nsdOnboardingState"] == "ONBOARDED"]
    if onboarded:
        nsd = onboarded[0]
    else:
        nsd = ns_api.onboard_nsd(client, nsd_archive, user_data=NSD_ORIGIN)
    if nsd["nsdOperationalState"] != "ENABLED":
        ns_api.set_nsd_state(client, nsd["id"], "ENABLED")
    instances = [i for i in ns_api.list_ns(client) if i.get("nsInstanceName") == DEMO_NS]
    if instances:
        instance = instances[0]
    else:
        instance = ns_api.create_ns(client, nsd["nsdId"], DEMO_NS, "make demo: edge-gateway")
    if instance["nsState"] == "NOT_INSTANTIATED":
        out.print(f"instantiating the network service {DEMO_NS} (its VNFs and virtual links)...")
        body = {"nsFlavourId": "default"}
        op_id = ns_api.start_ns_task(client, instance["id"], "instantiate", body)
        ns_api.wait_ns_op(client, op_id)
    out.print(ns_table(ns_api.list_ns(client, all_fields=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stop", action="store_true", help="stop the demo service")
    args = parser.parse_args()
    settings = Settings.from_env()
    if args.stop:
        stop(settings)
        return
    try:
        run(settings, int(os.environ.get("PORT", "8080")))
    except (CliError, ServiceError) as exc:
        out.print(f"[red]error:[/red] {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
