"""VNF LCM benchmark (not a test): instantiate and terminate latency on the local VIM.

Starts, on loopback only, the NFVO API as its own process (`nfvctl serve`, OAuth on), K
real Celery LCM worker processes (solo pool each) and, by default, a private redis-server
as the broker (ephemeral port, nothing on disk; `--broker embedded` uses the SQLite
transport instead), all on one SQLite database in a temporary data directory. It onboards
and enables the four sample packages (nat, slb, cen, vpn). The NAT is the real package: its
units run the VNF's own fast path (tc-BPF datapath + agent) and slow path. The SLB, CEN and
VPN VNFs are not written yet, so their packages run as variants whose VDU `command` is a
Python HTTP server (same units, links and aspects). Each package gets a fresh vnfdId.
Then it measures:

1. per package, `--runs` instantiate + terminate cycles of one instance: from the POST
   to the first GET of the occurrence (polled every 10 ms) that shows COMPLETED;
2. the accept latency of POST instantiate (time to the 202) over all those runs;
3. `--concurrent` NAT instances instantiated at once (one POST per thread), then
   terminated at once: wall time and per-instance time.

One solo worker runs one occurrence at a time, so concurrent operations queue behind each
other; `--workers K` starts K worker processes. Needs root (the local VIM); every
namespace, bridge and process the run makes is removed at the end, also on failure.

    sudo .venv/bin/python bench/lcm.py [--runs 5] [--workers 1] [--broker redis|embedded]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from descriptors.build import build_csar  # noqa: E402
from nfvo.admin import create_api_client  # noqa: E402
from nfvo.process import free_port, service_env, start_service, wait_ready  # noqa: E402
from nfvo.settings import Settings  # noqa: E402
from nfvo.vnfpkgm.schemas import API_VERSION as PKGM_VERSION  # noqa: E402
from vim_adapters.local import bridges, netns  # noqa: E402
from vim_adapters.local.adapter import LocalVim  # noqa: E402
from vnfm.celery_app import SQL_PREFIX  # noqa: E402
from vnfm.schemas import API_VERSION as LCM_VERSION  # noqa: E402

SAMPLES = REPO / "descriptors" / "packages"
PACKAGES = ("nat", "slb", "cen", "vpn")
PKGS = "/vnfpkgm/v2/vnf_packages"
INSTANCES = "/vnflcm/v2/vnf_instances"
OP_OCCS = "/vnflcm/v2/vnf_lcm_op_occs"
POLL = 0.010
SERVER_PORT = 8080
# The VNFs' own programs (python -m vnfs.<vnf>.fastpath/slowpath) do not exist yet.
VDU_COMMAND = re.compile(r"command: \[python, -m, vnfs\.\w+\.\w+\]")
FINAL_STATES = {"COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"}
OP_TIMEOUT = 180.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
HTTP_TIMEOUT = 60.0


# -- runnable packages -----------------------------------------------------------------------


def _descriptor_id(definitions: Path) -> str:
    """The vnfdId the package's VNF node type fixes (descriptor_id's default)."""
    for path in sorted(definitions.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for node_type in (doc.get("node_types") or {}).values():
            prop = (node_type.get("properties") or {}).get("descriptor_id")
            if isinstance(prop, dict) and "default" in prop:
                return str(prop["default"])
    raise SystemExit(f"no descriptor_id in {definitions}")


REAL_VNFS = frozenset({"nat"})
"""Packages whose VNF programs exist and are deployed as they are."""


def runnable_csar(name: str, work: Path, vnfd_id: str) -> Path:
    """Sample package `name` under vnfdId `vnfd_id`; VDUs of a VNF not in REAL_VNFS run an
    HTTP server instead of the VNF's programs.

    Builds from a copy of the source tree; build_csar regenerates the manifest's digests
    from the files present, so the manifest stays consistent with the edited files.
    """
    tree = work / f"{name}-runnable"
    shutil.copytree(SAMPLES / name, tree)
    definitions = tree / "Definitions"
    old_id = _descriptor_id(definitions)
    server = [sys.executable, "-m", "http.server", "--bind", "0.0.0.0", str(SERVER_PORT)]
    command = "command: [" + ", ".join(f"'{arg}'" for arg in server) + "]"
    commands = ids = 0
    for path in sorted(definitions.glob("*.yaml")):
        text = path.read_text()
        if name not in REAL_VNFS:
            text, n = VDU_COMMAND.subn(lambda _: command, text)
            commands += n
        ids += text.count(old_id)
        path.write_text(text.replace(old_id, vnfd_id))
    if (commands == 0 and name not in REAL_VNFS) or ids == 0:
        raise SystemExit(f"{name}: found {commands} VDU commands and {ids} vnfdIds to replace")
    return build_csar(tree, work / f"{name}-runnable.csar")


# -- processes -----------------------------------------------------------------------------


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it if it does not exit in time."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT)
    # Children left in the group (the group outlives its leader).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def private_redis(work: Path) -> Iterator[str]:
    """redis-server on 127.0.0.1, ephemeral port, no RDB/AOF; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (or use --broker embedded)")
    port = free_port()
    log = work / "redis.log"
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(work)]
    argv += ["--save", "", "--appendonly", "no", "--protected-mode", "yes"]
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _redis_answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"redis-server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(env: Mapping[str, str], log: Path, name: str) -> Worker:
    """A Celery LCM worker (solo pool), once it says it is ready."""
    argv = [sys.executable, "-m", "celery", "-A", "vnfm.celery_app", "worker"]
    argv += ["--pool", "solo", "--concurrency", "1", "--loglevel", "INFO"]
    argv += ["--hostname", f"{name}@%h", "--without-gossip", "--without-mingle"]
    argv += ["--without-heartbeat"]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(proc, log)
    deadline = time.monotonic() + START_TIMEOUT
    while " ready." not in worker.output():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise SystemExit(f"worker {name} did not start:\n{worker.output()[-4000:]}")
        time.sleep(0.1)
    return worker


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `values`, for start_service (which passes os.environ on)."""
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def remove_vim_leftovers(state_dir: Path, prefix: str) -> list[str]:
    """Delete what the local VIM still records, then anything with the prefix; what was left."""
    vim = LocalVim(state_dir, prefix=prefix, stop_timeout=2.0)
    state = vim.store.load()
    left = [f"unit {u}" for u in state.units] + [f"network {n}" for n in state.networks]
    try:
        for unit in list(state.units):
            vim.delete_unit(unit)
        for network in list(state.networks):
            vim.delete_network(network)
    finally:
        for name in netns.list_names(f"{prefix}-"):
            left.append(f"namespace {name}")
            netns.delete(name)
        for name in bridges.list_names(prefix):
            left.append(f"bridge {name}")
            bridges.delete(name)
    return left


# -- the APIs ------------------------------------------------------------------------------


class LcmError(Exception):
    """An operation did not complete."""


@dataclass
class Timed:
    accept: float  # POST to 202
    total: float  # POST to the first GET showing COMPLETED


def start_nfvo(
    stack: contextlib.ExitStack,
    work: Path,
    *,
    prefix: str,
    broker_url: str,
    scopes: list[str],
    workers: int,
    worker_name: str,
) -> Api:
    """The NFVO service and its LCM workers on ``work``, stopped by ``stack``.

    Returns an Api with a token of the "bench" client (``scopes``).
    """
    data = work / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The service process gets these settings (start_service passes them on); the
    # rest of its environment is what is not a setting.
    settings = Settings(
        data_dir=data,
        database_url=f"sqlite:///{data / 'nfvo.db'}",
        local_vim_state_dir=work / "vim",
        local_vim_prefix=prefix,
        public_url=url,
    )
    secret = create_api_client("bench", scopes, settings=settings)
    env = {"NFVO_BROKER_URL": broker_url, "NFVO_LCM_LEASE_SECONDS": "30"}
    with patched_environ(env):
        service = start_service(settings, port, work / "nfvo.log")
    stack.callback(_stop, service)
    try:
        wait_ready(url, service)
    except Exception:
        print((work / "nfvo.log").read_text()[-4000:], file=sys.stderr)
        raise
    running: list[Worker] = []
    for i in range(workers):
        worker = start_worker(
            {**service_env(settings), **env}, work / f"worker{i}.log", f"{worker_name}{i}"
        )
        running.append(worker)
        stack.callback(_stop, worker.proc)
    token = httpx.post(
        f"{url}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("bench", secret),
        timeout=HTTP_TIMEOUT,
    ).json()["access_token"]
    api = Api(url, token, running)
    stack.callback(api.close)
    return api


class Api:
    def __init__(self, url: str, token: str, workers: list[Worker]) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}", "Version": LCM_VERSION}
        self.http = httpx.Client(base_url=url, headers=self.headers, timeout=HTTP_TIMEOUT)
        self.workers = workers

    def client(self) -> httpx.Client:
        """Another client, for a thread of its own."""
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=HTTP_TIMEOUT)

    def onboard(self, csar: Path) -> None:
        headers = {"Version": PKGM_VERSION}
        resp = self.http.post(PKGS, json={}, headers=headers)
        resp.raise_for_status()
        pkg_id = resp.json()["id"]
        resp = self.http.put(
            f"{PKGS}/{pkg_id}/package_content",
            content=csar.read_bytes(),
            headers={**headers, "Content-Type": "application/zip"},
        )
        resp.raise_for_status()
        deadline = time.monotonic() + 120
        while True:
            info = self.http.get(f"{PKGS}/{pkg_id}", headers=headers).json()
            if info["onboardingState"] == "ONBOARDED":
                break
            if info.get("onboardingFailureDetails"):
                raise LcmError(f"{csar.name}: {info['onboardingFailureDetails']}")
            if time.monotonic() > deadline:
                raise LcmError(f"{csar.name}: stuck in {info['onboardingState']}")
            time.sleep(0.05)
        resp = self.http.patch(
            f"{PKGS}/{pkg_id}", json={"operationalState": "ENABLED"}, headers=headers
        )
        resp.raise_for_status()

    def create_instance(self, vnfd_id: str) -> str:
        resp = self.http.post(INSTANCES, json={"vnfdId": vnfd_id})
        resp.raise_for_status()
        return str(resp.json()["id"])

    def instance(self, instance_id: str) -> dict[str, Any]:
        resp = self.http.get(f"{INSTANCES}/{instance_id}")
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body

    def delete_instance(self, instance_id: str) -> None:
        self.http.delete(f"{INSTANCES}/{instance_id}").raise_for_status()

    def run(
        self, instance_id: str, task: str, body: dict[str, Any], http: httpx.Client | None = None
    ) -> Timed:
        """POST an LCM task and poll its occurrence every 10 ms until it is final."""
        http = http or self.http
        start = time.perf_counter()
        resp = http.post(f"{INSTANCES}/{instance_id}/{task}", json=body)
        accepted = time.perf_counter()
        if resp.status_code != 202:
            raise LcmError(f"{task} {instance_id}: {resp.status_code} {resp.text}")
        op_id = resp.headers["Location"].rstrip("/").rsplit("/", 1)[1]
        deadline = time.monotonic() + OP_TIMEOUT
        while True:
            op = http.get(f"{OP_OCCS}/{op_id}").json()
            if op["operationState"] in FINAL_STATES:
                done = time.perf_counter()
                break
            if time.monotonic() > deadline:
                self._fail(f"{task} {op_id} still {op['operationState']} after {OP_TIMEOUT}s")
            time.sleep(POLL)
        if op["operationState"] != "COMPLETED":
            self._fail(f"{task} {op_id} ended {op['operationState']}: {op.get('error')}")
        return Timed(accept=accepted - start, total=done - start)

    def _fail(self, message: str) -> NoReturn:
        tails = "\n".join(f"--- {w.log.name}\n{w.output()[-3000:]}" for w in self.workers)
        raise LcmError(f"{message}\n{tails}")

    def close(self) -> None:
        self.http.close()


def run_concurrently(
    api: Api, instance_ids: list[str], task: str, body: dict[str, Any]
) -> tuple[float, list[Timed]]:
    """The task on every instance at once (one thread each): wall time and per-instance times."""
    barrier = threading.Barrier(len(instance_ids))
    results: list[Timed | BaseException | None] = [None] * len(instance_ids)
    starts = [0.0] * len(instance_ids)
    ends = [0.0] * len(instance_ids)

    def one(index: int) -> None:
        with api.client() as http:
            try:
                barrier.wait(timeout=30)
                starts[index] = time.perf_counter()
                results[index] = api.run(instance_ids[index], task, body, http)
            except BaseException as exc:  # reported by the caller
                results[index] = exc
            ends[index] = time.perf_counter()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(instance_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=OP_TIMEOUT + 2 * HTTP_TIMEOUT)
    timed: list[Timed] = []
    for result in results:
        if not isinstance(result, Timed):
            raise LcmError(f"concurrent {task} failed: {result!r}")
        timed.append(result)
    return max(ends) - min(starts), timed


# -- the benchmark -------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile (with fewer than 20 values, the maximum)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return (
        f"nproc {os.cpu_count()}, {model or platform.machine()}, {mem_gib:.0f} GiB, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


@dataclass
class Results:
    per_package: dict[str, tuple[list[Timed], list[Timed], str]]
    concurrent: tuple[float, list[Timed], float, list[Timed]]


def measure(
    api: Api, vnfd_ids: dict[str, str], runs: int, concurrent: int, workers: int
) -> Results:
    instantiate = {"flavourId": "default"}
    terminate = {"terminationType": "FORCEFUL"}
    # Warm-up, not counted: each worker's first occurrence builds its services.
    warm = [api.create_instance(vnfd_ids["nat"]) for _ in range(workers)]
    run_concurrently(api, warm, "instantiate", instantiate)
    run_concurrently(api, warm, "terminate", terminate)
    for instance_id in warm:
        api.delete_instance(instance_id)

    per_package: dict[str, tuple[list[Timed], list[Timed], str]] = {}
    for name in PACKAGES:
        instance_id = api.create_instance(vnfd_ids[name])
        made: list[Timed] = []
        removed: list[Timed] = []
        shape = ""
        for _ in range(runs):
            made.append(api.run(instance_id, "instantiate", instantiate))
            if not shape:
                info = api.instance(instance_id).get("instantiatedVnfInfo") or {}
                vnfcs = len(info.get("vnfcResourceInfo") or [])
                links = len(info.get("vnfVirtualLinkResourceInfo") or [])
                shape = f"{vnfcs} VNFCs, {links} links"
            removed.append(api.run(instance_id, "terminate", terminate))
        api.delete_instance(instance_id)
        per_package[name] = (made, removed, shape)

    ids = [api.create_instance(vnfd_ids["nat"]) for _ in range(concurrent)]
    made_wall, made = run_concurrently(api, ids, "instantiate", instantiate)
    removed_wall, removed = run_concurrently(api, ids, "terminate", terminate)
    for instance_id in ids:
        api.delete_instance(instance_id)
    return Results(per_package, (made_wall, made, removed_wall, removed))


def report(args: argparse.Namespace, broker: str, results: Results) -> None:
    pool = (
        "1 Celery worker process, solo pool: one occurrence at a time, so concurrent "
        "operations queue"
        if args.workers == 1
        else f"{args.workers} Celery worker processes, solo pool each: "
        f"at most {args.workers} occurrences at a time"
    )
    print(f"VNF LCM on the local VIM, {datetime.date.today().isoformat()}; {machine()}")
    print(f"NFVO API: 1 process, SQLite; {pool}; broker: {broker}.")
    real = ", ".join(sorted(REAL_VNFS))
    variants = ", ".join(name for name in PACKAGES if name not in REAL_VNFS)
    print(
        f"Real packages ({real}): the VNF's own fast path (tc-BPF) and slow path. "
        f"Variants ({variants}): every VDU runs `python -m http.server` instead of the "
        "VNF's programs (not written yet)."
    )
    print(
        f"Default flavour and instantiation level; {args.runs} instantiate+terminate "
        "(FORCEFUL) cycles per package after a warm-up; POST to the first GET of the "
        f"occurrence (polled every {POLL * 1000:.0f} ms) that shows COMPLETED; "
        "p95 is nearest-rank (the maximum below 20 values)."
    )
    print()
    print("| package | resources | instantiate median | instantiate p95 | terminate median |")
    print("|---|---|---:|---:|---:|")
    accepts: list[float] = []
    for name, (made, removed, shape) in results.per_package.items():
        totals = [t.total for t in made]
        accepts += [t.accept for t in made]
        print(
            f"| {name} | {shape} | {ms(statistics.median(totals))} | {ms(p95(totals))} "
            f"| {ms(statistics.median([t.total for t in removed]))} |"
        )
    made_wall, made, removed_wall, removed = results.concurrent
    n = len(made)
    print()
    print("| measurement | median | p95 |")
    print("|---|---:|---:|")
    print(
        f"| POST instantiate to 202 (all {len(accepts)} runs above) "
        f"| {ms(statistics.median(accepts))} | {ms(p95(accepts))} |"
    )
    print()
    queue = "; they queue, `--workers K` runs K at a time" if args.workers == 1 else ""
    print(f"{n} NAT instances at once, one POST per thread ({pool.split(':')[0]}{queue}):")
    print()
    print("| measurement | time |")
    print("|---|---:|")
    print(f"| instantiate: first POST to last COMPLETED | {ms(made_wall)} |")
    print(f"| instantiate: per instance, median | {ms(statistics.median(t.total for t in made))} |")
    print(f"| instantiate: per instance, max | {ms(max(t.total for t in made))} |")
    print(f"| instantiate: POST to 202, median | {ms(statistics.median(t.accept for t in made))} |")
    print(f"| terminate all: first POST to last COMPLETED | {ms(removed_wall)} |")
    print(
        f"| terminate: per instance, median | {ms(statistics.median(t.total for t in removed))} |"
    )


def _sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="cycles per package (5)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (1)")
    parser.add_argument("--concurrent", type=int, default=10, help="NAT instances at once (10)")
    parser.add_argument("--broker", choices=("redis", "embedded"), default="redis")
    args = parser.parse_args()
    if args.runs < 1 or args.workers < 1 or args.concurrent < 1:
        parser.error("--runs, --workers and --concurrent must be at least 1")
    if os.geteuid() != 0:
        raise SystemExit("the local VIM needs root")
    signal.signal(signal.SIGTERM, _sigterm)

    prefix = "b" + secrets.token_hex(2)
    with tempfile.TemporaryDirectory(prefix="bench-lcm-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        data = work / "data"
        vim_state = work / "vim"
        vim_state.mkdir()
        # Last to run: whatever the workers left on the VIM (normally nothing).
        leftovers: list[str] = []
        stack.callback(lambda: leftovers.extend(remove_vim_leftovers(vim_state, prefix)))
        if args.broker == "redis":
            broker_url = stack.enter_context(private_redis(work))
            broker = "private redis-server on 127.0.0.1"
        else:
            broker_url = f"{SQL_PREFIX}sqlite:///{data / 'broker.db'}"
            broker = "embedded (kombu SQLAlchemy transport on SQLite, polled every 0.1 s)"

        vnfd_ids = {name: str(uuid.uuid4()) for name in PACKAGES}
        csars = {name: runnable_csar(name, work, vnfd_ids[name]) for name in PACKAGES}
        api = start_nfvo(
            stack,
            work,
            prefix=prefix,
            broker_url=broker_url,
            scopes=["vnfpkgm:v2:all", "vnflcm:v2:all"],
            workers=args.workers,
            worker_name="bench",
        )
        for csar in csars.values():
            api.onboard(csar)
        results = measure(api, vnfd_ids, args.runs, args.concurrent, args.workers)
        stack.close()
        if leftovers:
            raise SystemExit(f"removed leftovers of the run: {leftovers}")
    report(args, broker, results)


if __name__ == "__main__":
    main()
