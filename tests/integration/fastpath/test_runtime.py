"""The SDK runtime end to end: a real agent with the tc-BPF datapath and a real slow path.

    client ns            fast-path ns (agent)                        server ns
    c0 10.12.1.2/24 ---- inside 10.12.1.1/24   outside 198.51.100.1/24 ---- s0 198.51.100.2/24
                         punt 10.12.9.1/24 (MTU 1600)
                         mgmt 10.12.8.1/30 ----- m1 10.12.8.2/30  mgmt ns (scrapes metrics)
    slow-path ns         punt 10.12.9.2/24 (MTU 1600)             m2 10.12.8.5/30
                         mgmt 10.12.8.6/30 --------------------------+

Both units run as processes (`python -m vnfs.sdk.agent`, and `vnfs.sdk.slowpath.run`
with a trivial forwarding VNF) with the environment the local VIM gives them:
interfaces named after their connection points, VNF_CP_* variables and a
vnf-config.json. They find each other by the slow path's broadcast announcements.
The slow path's logic writes every hook call to a JSON-lines file the test reads.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vnfs.sdk.bpf import build, netns

pytestmark = pytest.mark.timeout(180)

PREFIX = "hD"
ROOT = Path(__file__).resolve().parents[3]
CLIENT, SERVER = "10.12.1.2", "198.51.100.2"
FP_MGMT, SP_MGMT = "10.12.8.1", "10.12.8.6"
METRICS_PORT = 9100
INSTANCE = 3
HEARTBEAT = "0.25"
SHORT_PORT, SHORT_IDLE = 5002, 2
SLOWPATH_PROGRAM = f"""
import os
from pathlib import Path
from tests.unit.vnfs.runtime_support import ForwardLogic
from vnfs.sdk.config import UnitConfig
from vnfs.sdk.slowpath import run

run(
    lambda config: ForwardLogic(
        idle_timeout=300,
        idle_by_port={{{SHORT_PORT}: {SHORT_IDLE}}},
        event_file=Path(os.environ["HD_EVENTS"]),
    ),
    UnitConfig,
)
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if check and completed.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {completed.stderr.strip()}")
    return completed


def namespaces(prefix: str) -> list[str]:
    return sorted(n for n in sh("ip", "netns", "list").stdout.split() if n.startswith(prefix))


def wait_for(condition: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")


@dataclass
class Unit:
    """One unit process; stopped with SIGTERM like the local VIM stops it."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
                log = self.log_text()
                raise AssertionError(f"{self.name} ignored SIGTERM; log:\n{log}") from None
        return int(self.process.returncode)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Lab:
    prefix: str
    tmp: Path
    instance_id: str = field(default_factory=lambda: "vnf-" + secrets.token_hex(4))
    units: list[Unit] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    # topology

    def build(self) -> None:
        for role in ("cli", "fp", "srv", "sp", "mg"):
            sh("ip", "netns", "add", self.ns(role))
            sh("ip", "-n", self.ns(role), "link", "set", "lo", "up")
        self._veth("cli", "c0", "fp", "inside")
        self._veth("fp", "outside", "srv", "s0")
        self._veth("fp", "punt", "sp", "punt", mtu=1600)
        self._veth("fp", "mgmt", "mg", "m1")
        self._veth("sp", "mgmt", "mg", "m2")
        for role, device, cidr in (
            ("cli", "c0", f"{CLIENT}/24"),
            ("fp", "inside", "10.12.1.1/24"),
            ("fp", "outside", "198.51.100.1/24"),
            ("srv", "s0", f"{SERVER}/24"),
            ("fp", "punt", "10.12.9.1/24"),
            ("sp", "punt", "10.12.9.2/24"),
            ("fp", "mgmt", f"{FP_MGMT}/30"),
            ("mg", "m1", "10.12.8.2/30"),
            ("mg", "m2", "10.12.8.5/30"),
            ("sp", "mgmt", f"{SP_MGMT}/30"),
        ):
            sh("ip", "-n", self.ns(role), "address", "add", cidr, "dev", device)
            sh("ip", "-n", self.ns(role), "link", "set", device, "up")
        sh("ip", "-n", self.ns("cli"), "route", "add", "default", "via", "10.12.1.1")
        sh("ip", "-n", self.ns("srv"), "route", "add", "10.12.0.0/16", "via", "198.51.100.1")

    def _veth(self, a: str, dev_a: str, b: str, dev_b: str, mtu: int = 1500) -> None:
        sh(
            "ip", "link", "add", dev_a, "netns", self.ns(a), "mtu", str(mtu), "type", "veth",
            "peer", "name", dev_b, "netns", self.ns(b), "mtu", str(mtu),
        )  # fmt: skip

    def destroy(self) -> None:
        for unit in self.units:
            if unit.process.poll() is None:
                unit.process.kill()
                unit.process.wait(5)
        for name in namespaces(self.prefix):
            sh("ip", "netns", "delete", name, check=False)

    # units

    def _config_dir(self, name: str, vdu: str) -> Path:
        directory = self.tmp / name
        directory.mkdir(exist_ok=True)
        document = {
            "vnfInstanceId": self.instance_id,
            "flavourId": "default",
            "vdu": vdu,
            "additionalParams": {},
            "configurableProperties": {},
        }
        (directory / "vnf-config.json").write_text(json.dumps(document))
        return directory

    def _start(self, name: str, role: str, argv: list[str], env: dict[str, str]) -> Unit:
        log = self.tmp / f"{name}.log"
        with log.open("ab") as output:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(role), *argv],
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        unit = Unit(name, process, log)
        self.units.append(unit)
        return unit

    def start_agent(self, name: str = "agent", **sdk: str) -> Unit:
        """The agent; `sdk` are VNF_SDK_* settings (e.g. vrfs="inside=7")."""
        env = {
            "VNF_INSTANCE_ID": self.instance_id,
            "VNF_UNIT": "fastpath",
            "VNF_VDU_ID": "fastpath",
            "VNF_REPLICA_INDEX": str(INSTANCE),
            "VNF_CONFIG_DIR": str(self._config_dir(name, "fastpath")),
            "VNF_CP_INSIDE_IFNAME": "inside",
            "VNF_CP_INSIDE_ADDRESS": "10.12.1.1/24",
            "VNF_CP_OUTSIDE_IFNAME": "outside",
            "VNF_CP_OUTSIDE_ADDRESS": "198.51.100.1/24",
            "VNF_CP_PUNT_IFNAME": "punt",
            "VNF_CP_PUNT_ADDRESS": "10.12.9.1/24",
            "VNF_CP_MGMT_IFNAME": "mgmt",
            "VNF_CP_MGMT_ADDRESS": f"{FP_MGMT}/30",
            "VNF_SDK_HEARTBEAT_INTERVAL": HEARTBEAT,
            "VNF_SDK_TABLE_SIZE": "4096",
        } | {f"VNF_SDK_{setting.upper()}": value for setting, value in sdk.items()}
        return self._start(name, "fp", [sys.executable, "-m", "vnfs.sdk.agent"], env)

    def start_slowpath(self, name: str, events: Path, *, datagram_installs: bool = True) -> Unit:
        env = {
            "VNF_SDK_DATAGRAM_INSTALLS": "true" if datagram_installs else "false",
            "VNF_INSTANCE_ID": self.instance_id,
            "VNF_UNIT": "slowpath",
            "VNF_VDU_ID": "slowpath",
            "VNF_REPLICA_INDEX": "0",
            "VNF_CONFIG_DIR": str(self._config_dir(name, "slowpath")),
            "VNF_CP_PUNT_IFNAME": "punt",
            "VNF_CP_PUNT_ADDRESS": "10.12.9.2/24",
            "VNF_CP_MGMT_IFNAME": "mgmt",
            "VNF_CP_MGMT_ADDRESS": f"{SP_MGMT}/30",
            "VNF_SDK_HEARTBEAT_INTERVAL": HEARTBEAT,
            # A fast path restart (loading the BPF program included) fits well within.
            "VNF_SDK_MISSED_HEARTBEATS": "40",
            "HD_EVENTS": str(events),
        }
        return self._start(name, "sp", [sys.executable, "-c", SLOWPATH_PROGRAM], env)

    # observation

    def metrics(self, address: str) -> dict[str, float]:
        """Samples of a unit's /metrics, summed over label sets, scraped from the mgmt ns."""
        with netns.entered_named(self.ns("mg")):
            url = f"http://{address}:{METRICS_PORT}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    text = response.read().decode()
            except OSError:
                return {}
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name_labels, _, value = line.rpartition(" ")
            name = name_labels.split("{", 1)[0]
            samples[name] = samples.get(name, 0.0) + float(value)
        return samples

    def health(self, address: str) -> tuple[int, dict[str, Any]]:
        url = f"http://{address}:{METRICS_PORT}/healthz"
        with netns.entered_named(self.ns("mg")):
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    return reply.status, json.loads(reply.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read() or b"{}")

    def socket(self, role: str, address: str, port: int) -> socket.socket:
        with netns.entered_named(self.ns(role)):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, port))
        sock.settimeout(5)
        return sock

    def filters(self, device: str) -> str:
        return sh("tc", "-n", self.ns("fp"), "filter", "show", "dev", device, "ingress").stdout


def events(path: Path) -> list[tuple[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [(entry["event"], entry["detail"]) for entry in map(json.loads, lines) if entry]


def names(path: Path) -> list[str]:
    return [name for name, _ in events(path)]


def flow_key(cport: int, sport: int) -> str:
    return f"UDP {CLIENT}:{cport} -> {SERVER}:{sport}"


def reply_key(cport: int, sport: int) -> str:
    return f"UDP {SERVER}:{sport} -> {CLIENT}:{cport}"


@pytest.fixture(scope="module")
def bpf_object() -> Path:
    """The datapath program the agent loads, compiled if missing or stale."""
    return build.build()


@pytest.fixture
def lab(tmp_path: Path, bpf_object: Path) -> Iterator[Lab]:
    current = Lab(prefix=PREFIX + secrets.token_hex(2), tmp=tmp_path)
    try:
        current.build()
        yield current
    finally:
        current.destroy()
        assert namespaces(current.prefix) == [], "namespaces left behind"


@dataclass
class Flow:
    """A UDP conversation between the client and the server namespaces."""

    client: socket.socket
    server: socket.socket
    cport: int
    sport: int

    def exchange(self, payload: bytes) -> None:
        """Client -> server, then the server answers; both must arrive."""
        self.client.sendto(payload, (SERVER, self.sport))
        data, source = self.server.recvfrom(4096)
        assert (data, source) == (payload, (CLIENT, self.cport))
        self.server.sendto(b"re:" + payload, source)
        data, source = self.client.recvfrom(4096)
        assert (data, source) == (b"re:" + payload, (SERVER, self.sport))

    def close(self) -> None:
        self.client.close()
        self.server.close()


@pytest.fixture
def open_flow(lab: Lab) -> Iterator[Callable[[int, int], Flow]]:
    made: list[Flow] = []

    def make(cport: int, sport: int) -> Flow:
        flow = Flow(
            lab.socket("cli", CLIENT, cport), lab.socket("srv", SERVER, sport), cport, sport
        )
        made.append(flow)
        return flow

    try:
        yield make
    finally:
        for flow in made:
            flow.close()


def connected(lab: Lab) -> None:
    wait_for(
        lambda: lab.metrics(FP_MGMT).get("vnf_fastpath_slowpath_connected") == 1.0,
        what="the agent to find the slow path and be connected",
    )
    # Connected is not in sync yet: until its DUMP (or re-push) is done, the slow path
    # drops punts (not_ready), and a TCP retransmission on the fresh link can delay it.
    wait_for(
        lambda: lab.health(SP_MGMT)[1].get("fastpaths", {}).get(str(INSTANCE)) == "ready",
        what="the slow path to be in sync with the fast path",
    )


@pytest.mark.parametrize("delivery", ["datagram", "rule-push"])
def test_a_flow_is_punted_once_then_forwarded_by_its_rules_until_it_expires(
    lab: Lab, open_flow: Callable[[int, int], Flow], delivery: str
) -> None:
    """New flows' rules reach the tc-BPF datapath in INSTALL datagrams ahead of their
    packet by default, or over the rule-push connection when the slow path is told so."""
    log = lab.tmp / "events.jsonl"
    slowpath = lab.start_slowpath("slowpath", log, datagram_installs=delivery == "datagram")
    agent = lab.start_agent()
    connected(lab)
    assert ("joined", {"instance": INSTANCE, "epoch": events(log)[0][1]["epoch"]}) in events(log)
    # Links may report no carrier for a moment after they come up; health follows.
    wait_for(lambda: lab.health(FP_MGMT)[0] == 200, what="a healthy fast path")
    status, health = lab.health(FP_MGMT)
    assert status == 200 and health["puntProgrammed"] is True

    # The first packet is punted, decided, its rules pushed, and it is re-injected:
    # it arrives, and so does the answer (by the reply direction's rule).
    flow = open_flow(40000, 5001)
    flow.exchange(b"first")
    for n in range(10):
        flow.exchange(b"more %d" % n)
    # Metrics are published once per heartbeat: wait for a snapshot after the traffic.
    wait_for(lambda: lab.metrics(FP_MGMT).get("vnf_fastpath_hits_total", 0) >= 21.0)
    fastpath = lab.metrics(FP_MGMT)
    assert fastpath["vnf_fastpath_punted_total"] == 1.0
    assert fastpath["vnf_fastpath_reinjected_total"] == 1.0
    assert fastpath["vnf_fastpath_rules_installed_total"] == 2.0
    assert names(log).count("new_flow") == 1
    wait_for(lambda: lab.metrics(SP_MGMT).get("vnf_slowpath_reinjected_total") == 1.0)
    slow = lab.metrics(SP_MGMT)
    by_datagram = 2.0 if delivery == "datagram" else 0.0
    assert slow["vnf_slowpath_rules_sent_in_datagrams_total"] == by_datagram
    assert slow["vnf_slowpath_rules_pushed_total"] == 2.0 - by_datagram

    # A flow whose rules idle out: the fast path reports them, the logic forgets it.
    short = open_flow(40001, SHORT_PORT)
    short.exchange(b"short-lived")
    wait_for(
        lambda: any(
            name == "expired" and flow_key(40001, SHORT_PORT) in detail
            for name, detail in events(log)
        ),
        timeout=SHORT_IDLE + 10,
        what="the short flow's expiry report",
    )
    wait_for(lambda: lab.metrics(FP_MGMT).get("vnf_fastpath_active_flows") == 2.0)
    assert lab.metrics(FP_MGMT)["vnf_fastpath_rules_expired_total"] >= 1.0
    hits = lab.metrics(FP_MGMT)["vnf_fastpath_hits_total"]
    flow.exchange(b"still forwarded")
    wait_for(lambda: lab.metrics(FP_MGMT)["vnf_fastpath_hits_total"] >= hits + 2)
    assert lab.metrics(FP_MGMT)["vnf_fastpath_punted_total"] == 2.0  # the short flow's first

    for device in ("inside", "outside", "punt"):
        assert "bpf" in lab.filters(device), f"no program on {device}"
    assert agent.stop() == 0, agent.log_text()
    for device in ("inside", "outside", "punt"):
        assert "bpf" not in lab.filters(device), f"the program stayed on {device}"
    assert slowpath.stop() == 0, slowpath.log_text()


def test_flows_entering_in_a_vrf_are_decided_and_forwarded_in_it(
    lab: Lab, open_flow: Callable[[int, int], Flow]
) -> None:
    """The agent keys both data interfaces' flows in VRF 7 (one VPC: the test VNF keys
    the reply direction in its request's VRF); REGISTER tells the slow path, which keys
    punted packets the same way, so the rules it returns match."""
    log = lab.tmp / "events.jsonl"
    slowpath = lab.start_slowpath("slowpath", log)
    agent = lab.start_agent(vrfs="inside=7,outside=7")
    connected(lab)
    flow = open_flow(40050, 5001)
    for n in range(5):
        flow.exchange(b"in vrf 7, %d" % n)
    assert [detail for name, detail in events(log) if name == "new_flow"] == [
        f"{flow_key(40050, 5001)} vrf 7"
    ]
    wait_for(lambda: lab.metrics(FP_MGMT).get("vnf_fastpath_hits_total", 0) >= 9.0)
    assert lab.metrics(FP_MGMT)["vnf_fastpath_punted_total"] == 1.0
    assert agent.stop() == 0, agent.log_text()
    assert slowpath.stop() == 0, slowpath.log_text()


def test_a_restarted_slow_path_rebuilds_its_state_from_the_fast_path(
    lab: Lab, open_flow: Callable[[int, int], Flow]
) -> None:
    first_log, second_log = lab.tmp / "first.jsonl", lab.tmp / "second.jsonl"
    first = lab.start_slowpath("slowpath1", first_log)
    lab.start_agent()
    connected(lab)
    flow = open_flow(40000, 5001)
    flow.exchange(b"before")
    assert first.stop() == 0, first.log_text()

    flow.exchange(b"while the slow path is away")  # the fast path needs no slow path
    second = lab.start_slowpath("slowpath2", second_log)
    wait_for(lambda: "restore" in names(second_log), what="the new slow path to restore")
    assert names(second_log)[:2] == ["joined", "restore"]
    restored = dict(events(second_log))["restore"]
    assert restored["instance"] == INSTANCE
    assert restored["rules"] == sorted([flow_key(40000, 5001), reply_key(40000, 5001)])
    assert restored["packets"] == 0  # the rules carry no Count action

    flow.exchange(b"after")
    fresh = open_flow(40002, 5003)
    fresh.exchange(b"a new flow")
    assert [d for n, d in events(second_log) if n == "new_flow"] == [flow_key(40002, 5003)]
    assert second.stop() == 0, second.log_text()


def test_a_restarted_fast_path_gets_its_rules_pushed_again(
    lab: Lab, open_flow: Callable[[int, int], Flow]
) -> None:
    log = lab.tmp / "events.jsonl"
    slowpath = lab.start_slowpath("slowpath", log)
    agent = lab.start_agent("agent1")
    connected(lab)
    flow = open_flow(40000, 5001)
    flow.exchange(b"before")
    assert agent.stop() == 0, agent.log_text()

    lab.start_agent("agent2")
    wait_for(
        lambda: (
            [n for n in names(log) if n in ("joined", "live_rules")]
            == ["joined", "joined", "live_rules"]
        ),
        what="the new epoch to be joined and re-pushed",
    )
    first_epoch, second_epoch = (d["epoch"] for n, d in events(log) if n == "joined")
    assert first_epoch != second_epoch
    assert dict(events(log))["live_rules"] == {"instance": INSTANCE, "count": 2}
    wait_for(lambda: lab.metrics(FP_MGMT).get("vnf_fastpath_active_flows") == 2.0)
    connected(lab)

    flow.exchange(b"after the restart")
    wait_for(lambda: lab.metrics(FP_MGMT).get("vnf_fastpath_hits_total", 0) >= 2.0)
    assert lab.metrics(FP_MGMT)["vnf_fastpath_punted_total"] == 0.0  # the re-pushed rules hit
    assert names(log).count("new_flow") == 1
    assert slowpath.stop() == 0, slowpath.log_text()
