"""Namespace labs for bench/fastpath.py: the veth topology of one fast-path unit.

    client ns (cli)        middle ns (mid)                                server ns (srv)
    c0 10.71.1.2/24 ------ inside 10.71.1.1/24   outside 198.51.100.1/24 ------ s0 198.51.100.2/24
                           punt 10.71.9.1/24 (MTU 1600)
    slow-path ns (sp)      punt 10.71.9.2/24 (MTU 1600)

With `bridged=True` the middle namespace holds a plain Linux bridge br0 with
inside and outside as its ports and no addresses (and there is no slow-path
namespace): client and server reach each other's prefix on-link, so the same
packets cross the same veths, switched instead of routed.

The agent and the slow path run as processes (`python -m vnfs.sdk.agent`,
bench/fastpath_slowpath.py) with the environment the local VIM gives units:
interfaces named after their connection points, VNF_CP_* variables and a
vnf-config.json. With no mgmt connection point they serve /metrics and
/healthz on 127.0.0.1:9100 of their own namespace, which `health` and
`metrics` read from there.

Everything a lab makes (namespaces, links, processes) is removed by
`destroy`, which `with Lab(...)` calls also on errors and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vim_adapters.errors import VimError  # noqa: E402
from vim_adapters.local import netns as named  # noqa: E402
from vim_adapters.local import system  # noqa: E402
from vnfs.sdk.bpf import netdev, netns  # noqa: E402
from vnfs.sdk.bpf.driver import BpfDriver  # noqa: E402
from vnfs.sdk.config import RuntimeSettings  # noqa: E402
from vnfs.sdk.driver import Interface  # noqa: E402

PREFIX = "bfp"
CLIENT = "10.71.1.2"
CLIENT_CIDR = "10.71.1.0/24"
FP_INSIDE = "10.71.1.1"
FP_OUTSIDE = "198.51.100.1"
SERVER = "198.51.100.2"
SERVER_CIDR = "198.51.100.0/24"
FP_PUNT = "10.71.9.1"
SLOWPATH = "10.71.9.2"
PUNT_MTU = 1600
INSTANCE = 1
METRICS_PORT = RuntimeSettings().metrics_port
SLOWPATH_PROGRAM = Path(__file__).resolve().parent / "fastpath_slowpath.py"
DATA_LINKS = (("cli", "c0"), ("mid", "inside"), ("mid", "outside"), ("srv", "s0"))
"""every veth end the forwarded traffic crosses"""
STOP_TIMEOUT = 15.0


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    if not condition():
        raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


@dataclass
class Process:
    """A process the lab started in one of its namespaces, with its output in `log`."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (which units honour), then SIGKILL after `timeout`; the exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return int(self.popen.returncode)

    def cpu_seconds(self) -> float:
        """User + system CPU time the process used so far (kernel work it asked for,
        such as BPF program test runs, included)."""
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat(5); the split starts at field 3.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, lines: int = 20) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Lab:
    tmp: Path
    bridged: bool = False
    prefix: str = field(default_factory=lambda: PREFIX + secrets.token_hex(3))
    instance_id: str = field(default_factory=lambda: "bench-" + secrets.token_hex(4))
    processes: list[Process] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    @property
    def roles(self) -> tuple[str, ...]:
        return ("cli", "mid", "srv") if self.bridged else ("cli", "mid", "srv", "sp")

    def __enter__(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.destroy()

    # topology

    def _build(self) -> None:
        for role in self.roles:
            named.create(self.ns(role))
        self._veth("cli", "c0", "mid", "inside")
        self._veth("mid", "outside", "srv", "s0")
        addresses = [("cli", "c0", f"{CLIENT}/24"), ("srv", "s0", f"{SERVER}/24")]
        if self.bridged:
            self.ip("mid", "link", "add", "br0", "type", "bridge")
            for port in ("inside", "outside"):
                self.ip("mid", "link", "set", port, "master", "br0")
            self.ip("mid", "link", "set", "br0", "up")
        else:
            self._veth("mid", "punt", "sp", "punt", mtu=PUNT_MTU)
            addresses += [
                ("mid", "inside", f"{FP_INSIDE}/24"),
                ("mid", "outside", f"{FP_OUTSIDE}/24"),
                ("mid", "punt", f"{FP_PUNT}/24"),
                ("sp", "punt", f"{SLOWPATH}/24"),
            ]
        for role, device, cidr in addresses:
            self.ip(role, "address", "add", cidr, "dev", device)
        for role, device in [*DATA_LINKS, *([] if self.bridged else [("mid", "punt")])]:
            self.ip(role, "link", "set", device, "up")
        if not self.bridged:
            self.ip("sp", "link", "set", "punt", "up")
        if self.bridged:
            self.ip("cli", "route", "add", SERVER_CIDR, "dev", "c0")
            self.ip("srv", "route", "add", CLIENT_CIDR, "dev", "s0")
        else:
            # The agent switches forwarding on too; set here, plain kernel routing
            # works before any agent runs (the no-datapath baseline).
            self.exec("mid", "sysctl", "-qw", "net.ipv4.ip_forward=1")
            self.ip("cli", "route", "add", SERVER_CIDR, "via", FP_INSIDE)
            self.ip("srv", "route", "add", CLIENT_CIDR, "via", FP_OUTSIDE)

    def _veth(self, a: str, dev_a: str, b: str, dev_b: str, mtu: int = 1500) -> None:
        system.run(
            ["ip", "link", "add", dev_a, "netns", self.ns(a), "mtu", str(mtu), "type", "veth",
             "peer", "name", dev_b, "netns", self.ns(b), "mtu", str(mtu)]
        )  # fmt: skip

    def ip(self, role: str, *argv: str) -> str:
        return system.run(["ip", "-n", self.ns(role), *argv]).stdout.decode()

    def exec(self, role: str, *argv: str, timeout: float = 30.0) -> str:
        argv_in_ns = named.exec_argv(self.ns(role), argv)
        return system.run(argv_in_ns, timeout=timeout).stdout.decode()

    def destroy(self) -> None:
        """Stop every process, then remove every namespace (their links go with them)."""
        problems: list[str] = []
        for process in self.processes:
            try:
                process.stop()
            except (OSError, subprocess.SubprocessError) as exc:
                problems.append(f"{process.name}: {exc}")
        for name in named.list_names(self.prefix):
            try:
                named.delete(name)
            except VimError as exc:
                problems.append(str(exc))
        if problems:
            raise RuntimeError("cleaning up the lab: " + "; ".join(problems))

    # interfaces

    def mac(self, role: str, device: str) -> str:
        with netns.entered_named(self.ns(role)):
            return netdev.link_info(device).mac

    def packets(self, role: str, device: str, direction: str) -> int:
        """The device's rx or tx packet counter (as `ip -s link` shows it)."""
        output = self.ip(role, "-j", "-s", "link", "show", "dev", device)
        stats = json.loads(output)[0]["stats64"]
        return int(stats[direction]["packets"])

    def set_offloads(self, enabled: bool) -> None:
        """Transmit checksum (with it TSO) and GRO on every data veth end. Off gives
        stable packet-rate figures: every packet crosses each hop on its own."""
        for role, device in DATA_LINKS:
            with netns.entered_named(self.ns(role)):
                netdev.set_tx_checksum(device, enabled)
                netdev.set_gro(device, enabled)

    def socket(self, role: str, kind: int = socket.SOCK_DGRAM) -> socket.socket:
        """A socket in `role`'s namespace (made there, usable from anywhere)."""
        with netns.entered_named(self.ns(role)):
            return socket.socket(socket.AF_INET, kind)

    # processes

    def spawn(
        self, role: str, name: str, argv: list[str], env: Mapping[str, str] | None = None
    ) -> Process:
        """Start `argv` in `role`'s namespace, in its own session (Ctrl-C reaches only the
        bench, whose cleanup stops it with SIGTERM)."""
        log = self.tmp / f"{self.prefix}-{name}.log"
        with log.open("ab") as output:
            popen = subprocess.Popen(
                named.exec_argv(self.ns(role), argv),
                env={
                    "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                    **(env or {}),
                },
                cwd=REPO,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def _unit_env(
        self, unit: str, replica: int, cps: Mapping[str, tuple[str, str]]
    ) -> dict[str, str]:
        config_dir = self.tmp / f"{self.prefix}-{unit}-config"
        config_dir.mkdir(exist_ok=True)
        document = {
            "vnfInstanceId": self.instance_id,
            "flavourId": "default",
            "vdu": unit,
            "additionalParams": {},
            "configurableProperties": {},
        }
        (config_dir / "vnf-config.json").write_text(json.dumps(document))
        env = {
            "VNF_INSTANCE_ID": self.instance_id,
            "VNF_UNIT": unit,
            "VNF_VDU_ID": unit,
            "VNF_REPLICA_INDEX": str(replica),
            "VNF_CONFIG_DIR": str(config_dir),
        }
        for cp, (ifname, cidr) in cps.items():
            env[f"VNF_CP_{cp.upper()}_IFNAME"] = ifname
            env[f"VNF_CP_{cp.upper()}_ADDRESS"] = cidr
        return env

    def start_agent(self, **sdk: str) -> Process:
        """The fast-path agent (tc-BPF datapath) in the middle namespace; `sdk` are
        VNF_SDK_* settings (e.g. table_size="1048576")."""
        env = self._unit_env(
            "fastpath",
            INSTANCE,
            {
                "inside": ("inside", f"{FP_INSIDE}/24"),
                "outside": ("outside", f"{FP_OUTSIDE}/24"),
                "punt": ("punt", f"{FP_PUNT}/24"),
            },
        )
        env |= {f"VNF_SDK_{name.upper()}": value for name, value in sdk.items()}
        return self.spawn("mid", "agent", [sys.executable, "-m", "vnfs.sdk.agent"], env)

    def start_slowpath(self, **sdk: str) -> Process:
        """The bench's forwarding slow path in its namespace."""
        env = self._unit_env("slowpath", 0, {"punt": ("punt", f"{SLOWPATH}/24")})
        env |= {f"VNF_SDK_{name.upper()}": value for name, value in sdk.items()}
        return self.spawn("sp", "slowpath", [sys.executable, str(SLOWPATH_PROGRAM)], env)

    # observation

    def _get(self, role: str, path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{METRICS_PORT}{path}"
        with netns.entered_named(self.ns(role)):
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    return int(reply.status), bytes(reply.read())
            except urllib.error.HTTPError as error:
                return int(error.code), bytes(error.read())
            except OSError:
                return 0, b""

    def health(self, role: str) -> dict[str, Any]:
        """A unit's /healthz document ({} while it does not answer)."""
        status, body = self._get(role, "/healthz")
        if status == 0 or not body:
            return {}
        document = json.loads(body)
        return document if isinstance(document, dict) else {}

    def metrics(self, role: str) -> dict[str, float]:
        """A unit's /metrics samples, summed over label sets."""
        status, body = self._get(role, "/metrics")
        samples: dict[str, float] = {}
        if status != 200:
            return samples
        for line in body.decode().splitlines():
            if not line or line.startswith("#"):
                continue
            name_labels, _, value = line.rpartition(" ")
            name = name_labels.split("{", 1)[0]
            samples[name] = samples.get(name, 0.0) + float(value)
        return samples

    def wait_agent_up(self, agent: Process, timeout: float = 30.0) -> None:
        def up() -> bool:
            if not agent.running():
                raise RuntimeError(f"the agent exited:\n{agent.tail()}")
            return bool(self.health("mid").get("healthy"))

        wait_for(up, timeout, "the agent's datapath to be healthy")

    def wait_connected(self, slowpath: Process, timeout: float = 60.0) -> None:
        """Until the slow path holds the rule-push link, the punt path is programmed
        and the slow path calls the fast path ready (synced)."""

        def synced() -> bool:
            if not slowpath.running():
                raise RuntimeError(f"the slow path exited:\n{slowpath.tail()}")
            agent = self.health("mid")
            fastpaths = self.health("sp").get("fastpaths", {})
            return (
                bool(agent.get("slowpathConnected"))
                and bool(agent.get("puntProgrammed"))
                and fastpaths.get(str(INSTANCE)) == "ready"
            )

        wait_for(synced, timeout, "the slow path and the fast path to be in sync")


@contextmanager
def standalone_driver(table_size: int) -> Iterator[BpfDriver]:
    """A BpfDriver of the calling process, started (no punt target) on a veth pair in a
    namespace of its own: the in-process reference for the install rate."""
    name = f"{PREFIX}{secrets.token_hex(3)}-drv"
    named.create(name)
    driver: BpfDriver | None = None
    try:
        system.run(["ip", "-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1"])
        for device in ("d0", "d1"):
            system.run(["ip", "-n", name, "link", "set", device, "up"])
        # The driver warns that rules cannot forward without it; none needs to here.
        system.run(named.exec_argv(name, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))
        driver = BpfDriver(table_size=table_size)
        with netns.entered_named(name):
            links = [netdev.link_info(device) for device in ("d0", "d1")]
            driver.start(
                [
                    Interface(link.name, link.ifindex, link.mac, link.address, link.name)
                    for link in links
                ],
                None,
            )
        yield driver
    finally:
        if driver is not None:
            driver.close()
        named.delete(name)
