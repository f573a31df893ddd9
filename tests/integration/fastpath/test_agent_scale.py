"""The fast-path agent over the tc-BPF datapath: responsive while a big table ages out,
and the datapath's own counters on its /metrics.

The agent runs as its process (`python -m vnfs.sdk.agent`, the tc-BPF
datapath) in the lab's fast-path namespace; the test plays the slow path from
the slow-path namespace: it receives the agent's REGISTERs on the control port
and drives the table over a real rule-push connection.

It installs RULES rules that go idle at once, so that aging rounds remove
hundreds of thousands of rules (a round hands them over in slices of
AGE_SLICE, one EXPIRED frame each). As soon as a full slice arrives (so the
round has more to do), it pushes one more rule: the agent must acknowledge it
before that round's last EXPIRED frame, i.e. while the aging round is still
running. An agent that aged the table in one blocking call would answer only
after the whole round. The REGISTER heartbeats must also keep coming
(a generous bound on their gaps, not a speed check). Timings are printed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.fastpath.topology import (
    CLIENT,
    FP_PUNT,
    SERVER,
    SLOWPATH,
    Lab,
    namespaces_with,
)
from vnfs.sdk import discovery
from vnfs.sdk.agent import AGE_SLICE
from vnfs.sdk.bpf import layout, netns
from vnfs.sdk.encoding import ACTION_SIZE, KEY, KEY_SIZE, VRF, encode_action, encode_key
from vnfs.sdk.flow import FlowKey, FlowRule, Forward, Protocol
from vnfs.sdk.rulepush import MAX_RECORDS, RulePushClient

pytestmark = pytest.mark.timeout(300)

PREFIX = "hH"
ROOT = Path(__file__).resolve().parents[3]
RULES = 400_000
BATCH = 4096
HEARTBEAT = 2.0
CONTROL_PORT = 7702
RULEPUSH_PORT = 7704
INSTANCE = 1


@pytest.fixture
def lab(bpf_object: Path) -> Iterator[Lab]:
    current = Lab.create(PREFIX)
    try:
        yield current
    finally:
        current.destroy()
        assert namespaces_with(current.prefix) == [], "namespaces left behind"


@dataclass
class AgentProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return int(self.process.returncode)


@pytest.fixture
def agent(lab: Lab, tmp_path: Path) -> Iterator[AgentProcess]:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    document = {
        "vnfInstanceId": "vnf-scale",
        "flavourId": "default",
        "vdu": "fastpath",
        "additionalParams": {},
        "configurableProperties": {},
    }
    (config_dir / "vnf-config.json").write_text(json.dumps(document))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "VNF_INSTANCE_ID": "vnf-scale",
        "VNF_UNIT": "fastpath",
        "VNF_VDU_ID": "fastpath",
        "VNF_REPLICA_INDEX": str(INSTANCE),
        "VNF_CONFIG_DIR": str(config_dir),
        "VNF_CP_INSIDE_IFNAME": "in0",
        "VNF_CP_INSIDE_ADDRESS": "10.11.1.1/24",
        "VNF_CP_OUTSIDE_IFNAME": "out0",
        "VNF_CP_OUTSIDE_ADDRESS": "198.51.100.1/24",
        "VNF_CP_PUNT_IFNAME": "punt0",
        "VNF_CP_PUNT_ADDRESS": f"{FP_PUNT}/24",
        "VNF_SDK_HEARTBEAT_INTERVAL": str(HEARTBEAT),
        "VNF_SDK_TABLE_SIZE": str(1 << 19),
        "VNF_SDK_SLOWPATH_ADDRESS": SLOWPATH,
    }
    log = tmp_path / "agent.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            ["ip", "netns", "exec", lab.fastpath, sys.executable, "-m", "vnfs.sdk.agent"],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    made = AgentProcess(process, log)
    try:
        yield made
    finally:
        code = made.stop()
        assert code == 0, log.read_text(errors="replace")


class Registrations:
    """The agent's REGISTERs, with their arrival times, read by a thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.times: list[float] = []
        self.first = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="registrations", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if isinstance(discovery.decode(data), discovery.Register):
                self.times.append(time.monotonic())
                self.first.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@contextmanager
def registered(lab: Lab, agent: AgentProcess) -> Iterator[Registrations]:
    """The slow path's control port, once the agent has registered on it."""
    with netns.entered_named(lab.slowpath):
        control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    control.bind((SLOWPATH, CONTROL_PORT))
    registrations = Registrations(control)
    try:
        assert registrations.first.wait(30), agent.log.read_text(errors="replace")
        yield registrations
    finally:
        registrations.close()


def idle_rules(count: int) -> list[tuple[bytes, bytes, int]]:
    """INSTALL batches of `count` UDP rules with a 1 s idle timeout (distinct keys)."""
    action = encode_action(
        FlowRule(
            FlowKey(IPv4Address("10.11.1.2"), IPv4Address("198.51.100.2"), 1, 2, Protocol.UDP),
            (Forward(),),
            idle_timeout=1,
        )
    )
    vrf = VRF.pack(0)
    batches = []
    for first in range(0, count, BATCH):
        size = min(BATCH, count - first)
        keys = bytearray(size * KEY_SIZE)
        for index in range(size):
            n = first + index
            src = struct.pack("!I", 0x0A400000 | n)  # 10.64.0.0/10: distinct per rule
            KEY.pack_into(keys, index * KEY_SIZE, src, b"\xc6\x33\x64\x02", 4000, 53, 17)
            keys[index * KEY_SIZE + 14 : (index + 1) * KEY_SIZE] = vrf
        batches.append((bytes(keys), action * size, size))
    assert all(len(a) == n * ACTION_SIZE for _, a, n in batches)
    return batches


@dataclass
class Timeline:
    """What the slow-path side saw, in arrival order: ('expired', count) and ('ack', 1)."""

    events: list[tuple[str, int, float]] = field(default_factory=list)
    expired: int = 0
    trigger: int | None = None
    """index of the full-slice EXPIRED frame the probe push answered"""


def test_a_rule_push_is_answered_while_a_big_table_ages_out(lab: Lab, agent: AgentProcess) -> None:
    with registered(lab, agent) as registrations, netns.entered_named(lab.slowpath):
        timeline, probe_latency, entries = asyncio.run(_scenario())

    events = timeline.events
    assert timeline.expired == RULES, f"{timeline.expired} of {RULES} rules aged out"
    assert timeline.trigger is not None, "no aging round handed over a full slice"
    acks = [index for index, (kind, _, _) in enumerate(events) if kind == "ack"]
    assert len(acks) == 1
    # The end of the round the trigger frame belongs to: its first frame short of a slice.
    round_end = next(
        index
        for index in range(timeline.trigger, len(events))
        if events[index][0] == "expired" and events[index][1] < AGE_SLICE
    )
    assert timeline.trigger < acks[0] < round_end, (
        f"the push was answered at event {acks[0]}, the aging round ran from event "
        f"{timeline.trigger} to {round_end}: {[(k, n) for k, n, _ in events]}"
    )
    assert entries == 1, "the probe rule must be all that is left"
    # Heartbeats went on throughout (a generous bound: the interval is HEARTBEAT).
    times = registrations.times
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps and max(gaps) < 3 * HEARTBEAT, gaps

    first_expired = next(t for kind, _, t in events if kind == "expired")
    last_expired = max(t for kind, _, t in events if kind == "expired")
    print(
        f"\n{RULES} rules aged out in {len(events) - 1} EXPIRED frames over "
        f"{last_expired - first_expired:.2f} s; a push during the round was acknowledged "
        f"after {probe_latency * 1000:.1f} ms; REGISTER gaps {min(gaps):.2f}-{max(gaps):.2f} s"
    )


async def _scenario() -> tuple[Timeline, float, int]:
    timeline = Timeline()
    done = asyncio.Event()
    triggered = asyncio.Event()

    def on_expired(keys: bytes, actions: bytes, count: int) -> None:
        timeline.events.append(("expired", count, time.monotonic()))
        timeline.expired += count
        if count == AGE_SLICE and timeline.trigger is None:
            timeline.trigger = len(timeline.events) - 1
            triggered.set()
        if timeline.expired >= RULES:
            done.set()

    client = await RulePushClient.connect(FP_PUNT, RULEPUSH_PORT, timeout=10, on_expired=on_expired)
    try:
        assert AGE_SLICE <= MAX_RECORDS
        futures = [await client.submit_install(*batch) for batch in idle_rules(RULES)]
        assert sum(await asyncio.gather(*futures)) == RULES
        await asyncio.wait_for(triggered.wait(), 60)
        probe = FlowRule(
            FlowKey(IPv4Address("10.11.1.2"), IPv4Address("198.51.100.2"), 9, 9, Protocol.UDP),
            (Forward(),),
            idle_timeout=600,
        )
        sent = time.monotonic()
        acknowledged = await asyncio.wait_for(
            client.install(encode_key(probe.key), encode_action(probe), 1), 60
        )
        latency = time.monotonic() - sent
        timeline.events.append(("ack", acknowledged, time.monotonic()))
        await asyncio.wait_for(done.wait(), 120)
        entries = (await client.stats()).table_entries
    finally:
        await client.close()
    return timeline, latency, entries


def scrape(lab: Lab) -> dict[tuple[str, str], float]:
    """(family sample name, its `counter` label or '') -> value, from the agent's /metrics
    (without a mgmt connection point it serves on 127.0.0.1 of its namespace)."""
    with netns.entered_named(lab.fastpath):
        try:
            with urllib.request.urlopen("http://127.0.0.1:9100/metrics", timeout=2) as reply:
                text = reply.read().decode()
        except OSError:
            return {}
    return {
        (sample.name, sample.labels.get("counter", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_datapath_counters_are_on_the_agents_metrics(lab: Lab, agent: AgentProcess) -> None:
    with registered(lab, agent):
        pass
    rule = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), 40300, 5300, Protocol.UDP), (Forward(),)
    )

    async def install() -> int:
        client = await RulePushClient.connect(FP_PUNT, RULEPUSH_PORT, timeout=10)
        try:
            return await client.install(encode_key(rule.key), encode_action(rule), 1)
        finally:
            await client.close()

    with netns.entered_named(lab.slowpath):
        assert asyncio.run(install()) == 1
    # A packet of the flow with TTL 1 hits the rule and is dropped: ttl_exceeded, one of
    # the counters GlobalCounters does not carry.
    sender = lab.socket(lab.client)
    sender.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1)
    sender.bind((CLIENT, 40300))
    sender.sendto(b"short-lived", (SERVER, 5300))
    sender.close()

    family = "vnf_fastpath_datapath_counter_total"
    deadline = time.monotonic() + 20  # metrics are refreshed every heartbeat
    while scrape(lab).get((family, "ttl_exceeded"), 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    values = scrape(lab)
    assert values.get((family, "ttl_exceeded")) == 1, values
    # Every counter beyond GlobalCounters is in the family, and only those.
    assert {name for sample, name in values if sample == family} == set(layout.DETAIL_COUNTERS)
    assert values[("vnf_fastpath_hits_total", "")] >= 1
    assert values[("vnf_fastpath_reinject_errors_total", "")] == 0
