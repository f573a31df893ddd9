"""NS LCM benchmark (not a test): the sample NS edge-gateway, instantiated and terminated.

Starts, on loopback only, the NFVO API as its own process (`nfvctl serve`, OAuth on), the
LCM worker processes (Celery, solo pool; they run NS and VNF operations) and a private
redis-server as the broker, on one SQLite database in a temporary data directory, like
bench/lcm.py. It onboards and enables the real NAT package and the edge-gateway NSD
(descriptors/nsds/edge-gateway: the NAT between the NS virtual links inside_vl,
outside_vl and mgmt_vl), then runs `--runs` cycles of: create an NS instance,
instantiate it (POST to the first GET of the NS occurrence, polled every 10 ms, that
shows COMPLETED), terminate it the same way, delete it.

Each instantiate is broken down with the times the APIs report (startTime and
stateEnteredTime of the NS occurrence and of the VNF occurrences it caused, all taken on
this machine's clock by the NFVO and the workers):

* accept: POST instantiate to its 202;
* before the VNFs: the NS occurrence's start to the first VNF operation's start
  (resolving the VNF profiles, placement, the NS virtual links on the VIM, creating the
  VNF instances, granting);
* VNF instantiate: the VNF operations, first start to last end (the NAT's units up and
  healthy);
* after the VNFs: the last VNF operation's end to the NS occurrence's COMPLETED;
* polling: the rest, up to the GET that saw it.

Needs root (the local VIM); every namespace, bridge and process the run makes is
removed at the end, also on failure.

    sudo .venv/bin/python bench/ns.py [--runs 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.lcm import (  # noqa: E402
    OP_OCCS,
    POLL,
    Api,
    LcmError,
    Worker,
    machine,
    ms,
    private_redis,
    remove_vim_leftovers,
    start_nfvo,
)
from descriptors.build import build_csar  # noqa: E402
from nfvo.nsd.schemas import API_VERSION as NSD_VERSION  # noqa: E402
from nfvo.nslcm.schemas import API_VERSION as NSLCM_VERSION  # noqa: E402

NAT_PACKAGE = REPO / "descriptors" / "packages" / "nat"
EDGE_GATEWAY = REPO / "descriptors" / "nsds" / "edge-gateway"
NSDS = "/nsd/v2/ns_descriptors"
NS_INSTANCES = "/nslcm/v2/ns_instances"
NS_OP_OCCS = "/nslcm/v2/ns_lcm_op_occs"
NS_FINAL = {"COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"}
NS_TIMEOUT = 300.0
SCOPES = ["vnfpkgm:v2:all", "vnflcm:v2:all", "nsd:v2:all", "nslcm:v2:all"]


def _time(text: str) -> float:
    """An API timestamp (ISO 8601, UTC) as POSIX seconds."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Cycle:
    accept: float
    instantiate: float
    before_vnfs: float
    vnfs: float
    after_vnfs: float
    polling: float
    terminate: float
    vnf_count: int


class NsApi:
    """The NSD and NS LCM calls the bench makes (the VNF side is bench/lcm.py's Api)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.nsd = api.client()
        self.nsd.headers["Version"] = NSD_VERSION
        self.nslcm = api.client()
        self.nslcm.headers["Version"] = NSLCM_VERSION

    def close(self) -> None:
        self.nsd.close()
        self.nslcm.close()

    def onboard_nsd(self, archive: Path) -> str:
        created = self.nsd.post(NSDS, json={})
        created.raise_for_status()
        nsd_info_id = str(created.json()["id"])
        self.nsd.put(
            f"{NSDS}/{nsd_info_id}/nsd_content",
            content=archive.read_bytes(),
            headers={"Content-Type": "application/zip"},
        ).raise_for_status()
        deadline = time.monotonic() + 120
        while True:
            info = self.nsd.get(f"{NSDS}/{nsd_info_id}").json()
            if info["nsdOnboardingState"] == "ONBOARDED":
                self.nsd.patch(
                    f"{NSDS}/{nsd_info_id}",
                    json={"nsdOperationalState": "ENABLED"},
                    headers={"Content-Type": "application/merge-patch+json"},
                ).raise_for_status()
                return str(info["nsdId"])
            if info.get("onboardingFailureDetails"):
                raise LcmError(f"NSD onboarding failed: {info['onboardingFailureDetails']}")
            if time.monotonic() > deadline:
                raise LcmError(f"NSD still {info['nsdOnboardingState']} after 120 s")
            time.sleep(0.05)

    def create(self, nsd_id: str, name: str) -> str:
        resp = self.nslcm.post(
            NS_INSTANCES, json={"nsdId": nsd_id, "nsName": name, "nsDescription": "bench"}
        )
        if resp.status_code != 201:
            raise LcmError(f"create NS instance: {resp.status_code} {resp.text}")
        return str(resp.json()["id"])

    def delete(self, ns_id: str) -> None:
        self.nslcm.delete(f"{NS_INSTANCES}/{ns_id}").raise_for_status()

    def run(
        self, ns_id: str, task: str, body: dict[str, Any]
    ) -> tuple[float, float, dict[str, Any]]:
        """POST the task, poll its occurrence until final: (accept s, total s, occurrence)."""
        start = time.perf_counter()
        resp = self.nslcm.post(f"{NS_INSTANCES}/{ns_id}/{task}", json=body)
        accepted = time.perf_counter()
        if resp.status_code != 202:
            raise LcmError(f"{task} {ns_id}: {resp.status_code} {resp.text}")
        op_id = resp.headers["Location"].rstrip("/").rsplit("/", 1)[1]
        deadline = time.monotonic() + NS_TIMEOUT
        while True:
            occurrence: dict[str, Any] = self.nslcm.get(f"{NS_OP_OCCS}/{op_id}").json()
            if occurrence["operationState"] in NS_FINAL:
                done = time.perf_counter()
                break
            if time.monotonic() > deadline:
                self.api._fail(f"NS {task} {op_id} still {occurrence['operationState']}")
            time.sleep(POLL)
        if occurrence["operationState"] != "COMPLETED":
            self.api._fail(
                f"NS {task} {op_id} ended {occurrence['operationState']}: {occurrence.get('error')}"
            )
        return accepted - start, done - start, occurrence

    def vnf_instances(self, ns_id: str) -> list[str]:
        info = self.nslcm.get(f"{NS_INSTANCES}/{ns_id}").json()
        return [str(vnf["id"]) for vnf in info.get("vnfInstance", [])]

    def vnf_operations(self, vnf_ids: list[str], operation: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for vnf_id in vnf_ids:
            resp = self.api.http.get(
                OP_OCCS,
                params={"filter": f"(eq,vnfInstanceId,{vnf_id});(eq,operation,{operation})"},
            )
            resp.raise_for_status()
            found.extend(resp.json())
        return found


def cycle(ns: NsApi, nsd_id: str, index: int) -> Cycle:
    ns_id = ns.create(nsd_id, f"bench-{index}")
    accept, total, occurrence = ns.run(ns_id, "instantiate", {"nsFlavourId": "default"})
    wall_end = time.time()
    vnf_ids = ns.vnf_instances(ns_id)
    vnf_ops = ns.vnf_operations(vnf_ids, "INSTANTIATE")
    if not vnf_ops:
        raise LcmError(f"NS {ns_id} completed without VNF operations")
    ns_start = _time(occurrence["startTime"])
    # SOL005 names it both ways (stateEnteredTime in its properties, statusEnteredTime in
    # its required list).
    ns_end = _time(occurrence.get("stateEnteredTime") or occurrence["statusEnteredTime"])
    first_vnf = min(_time(op["startTime"]) for op in vnf_ops)
    last_vnf = max(_time(op["stateEnteredTime"]) for op in vnf_ops)
    _, terminate, _ = ns.run(ns_id, "terminate", {})
    ns.delete(ns_id)
    return Cycle(
        accept=accept,
        instantiate=total,
        before_vnfs=first_vnf - ns_start,
        vnfs=last_vnf - first_vnf,
        after_vnfs=ns_end - last_vnf,
        polling=wall_end - ns_end,
        terminate=terminate,
        vnf_count=len(vnf_ids),
    )


def report(cycles: list[Cycle], workers: int) -> None:
    def median(values: list[float]) -> str:
        return ms(statistics.median(values))

    def spread(values: list[float]) -> str:
        return f"{ms(min(values))}-{ms(max(values))}"

    print(f"\nNS LCM, sample NS edge-gateway (NAT VNF, 3 NS virtual links), {machine()}")
    print(f"{len(cycles)} runs, {workers} worker process(es), redis broker, SQLite\n")
    print("| phase | median | min-max |")
    print("|---|---:|---:|")
    rows = [
        ("instantiate, POST to COMPLETED", [c.instantiate for c in cycles]),
        ("  accept (POST to 202)", [c.accept for c in cycles]),
        (
            "  before the VNFs (plan, placement, NS VLs, VNF create)",
            [c.before_vnfs for c in cycles],
        ),
        ("  VNF instantiate (first start to last end)", [c.vnfs for c in cycles]),
        ("  after the VNFs (to NS COMPLETED)", [c.after_vnfs for c in cycles]),
        ("  polling and clocks (the rest)", [c.polling for c in cycles]),
        ("terminate, POST to COMPLETED", [c.terminate for c in cycles]),
    ]
    for label, values in rows:
        print(f"| {label} | {median(values)} | {spread(values)} |")
    print(f"\nVNF instances per NS: {sorted({c.vnf_count for c in cycles})}")


def _sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def stack_of_services(
    work: Path, prefix: str, workers: int
) -> Iterator[tuple[NsApi, list[Worker], list[str]]]:
    """The NFVO, its workers and a broker; on exit, everything stopped and the VIM swept."""
    vim_state = work / "vim"
    vim_state.mkdir()
    leftovers: list[str] = []
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: leftovers.extend(remove_vim_leftovers(vim_state, prefix)))
        broker_url = stack.enter_context(private_redis(work))
        api = start_nfvo(
            stack,
            work,
            prefix=prefix,
            broker_url=broker_url,
            scopes=SCOPES,
            workers=workers,
            worker_name="nsbench",
        )
        ns = NsApi(api)
        stack.callback(ns.close)
        yield ns, api.workers, leftovers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="instantiate/terminate cycles (5)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    args = parser.parse_args()
    if args.runs < 1 or args.workers < 1:
        parser.error("--runs and --workers must be at least 1")
    if os.geteuid() != 0:
        raise SystemExit("the local VIM needs root")
    signal.signal(signal.SIGTERM, _sigterm)

    prefix = "n" + secrets.token_hex(2)
    with tempfile.TemporaryDirectory(prefix="bench-ns-") as tmp:
        work = Path(tmp)
        with stack_of_services(work, prefix, args.workers) as (ns, _, leftovers):
            ns.api.onboard(build_csar(NAT_PACKAGE, work / "nat.csar"))
            nsd_id = ns.onboard_nsd(build_csar(EDGE_GATEWAY, work / "edge-gateway.zip"))
            cycle(ns, nsd_id, 0)  # warm-up: imports, caches, first namespaces
            cycles = [cycle(ns, nsd_id, i + 1) for i in range(args.runs)]
        if leftovers:
            raise SystemExit(f"removed leftovers of the run: {leftovers}")
    report(cycles, args.workers)


if __name__ == "__main__":
    main()
