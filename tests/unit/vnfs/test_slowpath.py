"""The slow-path runtime with real agents on loopback.

Each fast path is a real `Agent` over a `DriverDouble`; the test plays the
datapath's packet side with a UDP socket on the agent's punt address: it sends
MISS datagrams to the slow path and receives the REINJECTs the real datapath
would forward.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.unit.vnfs.packets import DST, SRC, icmp, ipv4, tcp, udp
from tests.unit.vnfs.runtime_support import (
    DriverDouble,
    ForwardLogic,
    InThread,
    Ports,
    loopback_subnet,
    unit_config,
    wait_until,
)
from vnfs.sdk import discovery
from vnfs.sdk.agent import Agent
from vnfs.sdk.driver import TableFull
from vnfs.sdk.encoding import (
    ACTION_SIZE,
    INSTALL_MAX_RULES,
    KEY_SIZE,
    PUNT_HEADER,
    PuntKind,
    decode_key,
    decode_punt,
    encode_punt,
)
from vnfs.sdk.flow import FlowKey, FlowRule, Forward, Protocol
from vnfs.sdk.slowpath import SlowPath
from vnfs.sdk.vnf import Packet

pytestmark = pytest.mark.timeout(90)
HEARTBEAT = 0.2


@dataclass
class FastPath:
    replica: int
    address: str
    driver: DriverDouble
    agent: Agent
    runner: InThread
    datapath: socket.socket
    """the datapath's packet side: sends MISS, receives REINJECT"""

    def stop(self) -> None:
        self.runner.stop()


@dataclass
class Lab:
    subnet: str
    ports: Ports
    instance_id: str
    tmp: Path
    slowpath: SlowPath | None = None
    runner: InThread | None = None
    logic: ForwardLogic | None = None
    fastpaths: dict[int, FastPath] = field(default_factory=dict)
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def slowpath_address(self) -> str:
        return f"{self.subnet}.1"

    def start_slowpath(self, logic: ForwardLogic | None = None, **sdk: Any) -> SlowPath:
        config = unit_config(
            instance_id=self.instance_id,
            unit="slowpath",
            replica=0,
            punt_address=self.slowpath_address,
            ports=self.ports,
            tmp=self.tmp,
            heartbeat=HEARTBEAT,
            **sdk,
        )
        self.logic = logic or ForwardLogic()
        self.slowpath = SlowPath(config, self.logic)
        self.runner = InThread(self.slowpath, "slowpath").__enter__()
        wait_until(lambda: self.slowpath is not None and self.slowpath.metrics is not None)
        return self.slowpath

    def stop_slowpath(self) -> None:
        assert self.runner is not None
        self.runner.stop()
        self.runner = None

    def start_fastpath(
        self, replica: int = 2, epoch: str | None = None, driver: DriverDouble | None = None
    ) -> FastPath:
        address = f"{self.subnet}.{10 + replica}"
        config = unit_config(
            instance_id=self.instance_id,
            unit="fastpath",
            replica=replica,
            punt_address=address,
            ports=self.ports,
            tmp=self.tmp,
            heartbeat=HEARTBEAT,
        )
        driver = driver or DriverDouble()
        agent = Agent(config, driver)
        if epoch is not None:
            agent.epoch = epoch
        runner = InThread(agent, f"agent{replica}").__enter__()
        old = self.fastpaths.get(replica)
        if old is not None:
            datapath = old.datapath
        else:
            datapath = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            datapath.bind((address, self.ports.reinject))
            datapath.settimeout(5)
            self.stack.callback(datapath.close)
        fastpath = FastPath(replica, address, driver, agent, runner, datapath)
        self.fastpaths[replica] = fastpath
        self.stack.callback(lambda: runner.stop() if runner._thread.is_alive() else None)
        return fastpath

    def on_loop(self, function: Any) -> Any:
        assert self.runner is not None
        return self.runner.call(function)

    def ready(self, replica: int = 2) -> bool:
        def check() -> bool:
            assert self.slowpath is not None
            fp = self.slowpath.fastpaths.get(replica)
            return fp is not None and fp.ready

        return bool(self.on_loop(check))

    def counts(self) -> dict[str, int]:
        assert self.slowpath is not None
        slowpath = self.slowpath
        return dict(self.on_loop(lambda: {**slowpath.counts, **slowpath.drops}))

    def punt(self, fastpath: FastPath, packet: bytes, ifindex: int = 1) -> None:
        datagram = encode_punt(PuntKind.MISS, fastpath.replica, ifindex, packet)
        fastpath.datapath.sendto(datagram, (self.slowpath_address, self.ports.punt))

    def reinjected(
        self, fastpath: FastPath, timeout: float = 5
    ) -> tuple[PuntKind, int, int, bytes]:
        fastpath.datapath.settimeout(timeout)
        data, source = fastpath.datapath.recvfrom(65535)
        assert source == (self.slowpath_address, self.ports.punt)
        kind, instance, ifindex, packet = decode_punt(data)
        return kind, instance, ifindex, bytes(packet)

    def nothing_reinjected(self, fastpath: FastPath, wait: float = 0.5) -> bool:
        fastpath.datapath.settimeout(wait)
        try:
            fastpath.datapath.recvfrom(65535)
        except TimeoutError:
            return True
        return False


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    subnet = loopback_subnet()
    made = Lab(subnet, Ports.pick(f"{subnet}.1"), "vnf-" + secrets.token_hex(4), tmp_path)
    with made.stack:
        try:
            yield made
        finally:
            if made.runner is not None:
                made.runner.stop()


def flow_packet(sport: int = 40000, dport: int = 53) -> bytes:
    return ipv4(17, udp(sport, dport))


def key_of(sport: int = 40000, dport: int = 53) -> FlowKey:
    return FlowKey(SRC, DST, sport, dport, Protocol.UDP)


def started(
    lab: Lab, logic: ForwardLogic | None = None, driver: DriverDouble | None = None, **sdk: Any
) -> FastPath:
    lab.start_slowpath(logic, **sdk)
    fastpath = lab.start_fastpath(driver=driver)
    wait_until(lambda: lab.ready(), what="the fast path to be in sync")
    return fastpath


class DatagramDriverDouble(DriverDouble):
    """A datapath that takes INSTALL datagrams (the test's socket receives them)."""

    datagram_installs = True


@dataclass
class ManyRulesLogic(ForwardLogic):
    """Forwards every new flow with INSTALL_MAX_RULES + 1 rules: more than one INSTALL
    datagram carries."""

    def on_new_flow(self, packet: Packet) -> Sequence[FlowRule]:
        rules = list(super().on_new_flow(packet))
        key = packet.key
        extra = [
            FlowRule(FlowKey(key.src, key.dst, key.sport, 1000 + n, key.proto), (Forward(),))
            for n in range(INSTALL_MAX_RULES - 1)
        ]
        return rules + extra


def received(fastpath: FastPath) -> tuple[int, int, int, bytes]:
    """The next datagram on the datapath's socket: (kind, instance, ifindex or count, rest)."""
    data = fastpath.datapath.recv(65535)
    kind, instance, word = data[1], int.from_bytes(data[2:4]), int.from_bytes(data[4:8])
    return kind, instance, word, data[PUNT_HEADER.size :]


def test_a_new_flows_rules_go_in_an_install_datagram_ahead_of_its_packet(lab: Lab) -> None:
    fastpath = started(lab, driver=DatagramDriverDouble())
    packet = flow_packet(40100)
    lab.punt(fastpath, packet, ifindex=1)
    kind, instance, count, records = received(fastpath)
    assert (kind, instance, count) == (PuntKind.INSTALL, 2, 2)
    record = KEY_SIZE + ACTION_SIZE
    keys = {decode_key(records[i * record : i * record + KEY_SIZE]) for i in range(count)}
    assert keys == {key_of(40100), key_of(40100).reversed()}
    assert lab.reinjected(fastpath) == (PuntKind.REINJECT, 2, 1, packet)
    counts = lab.counts()
    assert (counts["rules_sent_in_datagrams"], counts["rules_pushed"], counts["batches"]) == (
        2, 0, 0,
    )  # fmt: skip
    assert counts["reinjected"] == 1
    assert fastpath.driver.install_calls == 0, "nothing went over the rule-push connection"


def test_install_datagrams_can_be_turned_off(lab: Lab) -> None:
    fastpath = started(lab, driver=DatagramDriverDouble(), datagram_installs=False)
    lab.punt(fastpath, flow_packet(40101))
    assert lab.reinjected(fastpath)[0] == PuntKind.REINJECT
    assert fastpath.driver.keys() == {key_of(40101), key_of(40101).reversed()}
    assert lab.counts()["rules_sent_in_datagrams"] == 0


def test_more_rules_than_a_datagram_carries_are_pushed(lab: Lab) -> None:
    fastpath = started(lab, ManyRulesLogic(), driver=DatagramDriverDouble())
    lab.punt(fastpath, flow_packet(40102))
    assert lab.reinjected(fastpath)[0] == PuntKind.REINJECT  # no INSTALL came first
    assert len(fastpath.driver.keys()) == INSTALL_MAX_RULES + 1
    counts = lab.counts()
    assert (counts["rules_sent_in_datagrams"], counts["rules_installed"]) == (
        0, INSTALL_MAX_RULES + 1,
    )  # fmt: skip


def test_a_new_flow_is_decided_installed_and_reinjected(lab: Lab) -> None:
    fastpath = started(lab)
    assert lab.logic is not None
    assert lab.logic.names() == ["joined"]  # an empty table: nothing to restore
    packet = flow_packet()
    lab.punt(fastpath, packet, ifindex=1)
    kind, instance, ifindex, data = lab.reinjected(fastpath)
    assert (kind, instance, ifindex, data) == (PuntKind.REINJECT, 2, 1, packet)
    # The rules were in the table before the packet came back.
    assert fastpath.driver.keys() == {key_of(), key_of().reversed()}
    assert lab.logic.names() == ["joined", "new_flow"]
    counts = lab.counts()
    assert (counts["punted"], counts["new_flows"], counts["rules_installed"]) == (1, 1, 2)
    assert counts["reinjected"] == 1


def test_tcp_and_icmp_flows_are_keyed_like_the_datapath(lab: Lab) -> None:
    fastpath = started(lab)
    lab.punt(fastpath, ipv4(6, tcp(40001, 443, 0x02)))
    lab.punt(fastpath, ipv4(1, icmp(8, 0, 77)))
    lab.reinjected(fastpath)
    lab.reinjected(fastpath)
    keys = fastpath.driver.keys()
    assert FlowKey(SRC, DST, 40001, 443, Protocol.TCP) in keys
    assert FlowKey(SRC, DST, 77, 0, Protocol.ICMP) in keys


def test_packets_of_a_flow_in_flight_join_its_batch(lab: Lab) -> None:
    fastpath = started(lab)
    fastpath.driver.gate = threading.Event()  # the agent holds the install: no ACK yet
    for _ in range(3):
        lab.punt(fastpath, flow_packet())
    wait_until(lambda: lab.counts()["coalesced"] == 2, what="two packets to join the batch")
    assert lab.nothing_reinjected(fastpath, wait=0.2)
    fastpath.driver.gate.set()
    assert [lab.reinjected(fastpath)[3] for _ in range(3)] == [flow_packet()] * 3
    assert lab.logic is not None and lab.logic.names().count("new_flow") == 1


def test_a_flow_without_rules_is_dropped(lab: Lab) -> None:
    fastpath = started(lab, ForwardLogic(drop_port=9))
    lab.punt(fastpath, flow_packet(dport=9))
    assert lab.nothing_reinjected(fastpath)
    assert lab.counts()["no_rules"] == 1
    assert fastpath.driver.keys() == set()


def test_bad_punts_are_counted_not_fatal(lab: Lab) -> None:
    fastpath = started(lab)
    fastpath.datapath.sendto(b"junk", (lab.slowpath_address, lab.ports.punt))
    lab.punt(fastpath, b"\x60" + b"\0" * 39)  # IPv6
    other = lab.start_fastpath(replica=5)
    wait_until(lambda: lab.ready(5), what="a second fast path")
    # Punts claiming a registered fast path but sent from another one's address,
    # and from a fast path that never registered.
    for instance in (5, 9):
        datagram = encode_punt(PuntKind.MISS, instance, 1, flow_packet())
        fastpath.datapath.sendto(datagram, (lab.slowpath_address, lab.ports.punt))
    wait_until(lambda: lab.counts()["punted"] == 4)
    counts = lab.counts()
    assert (counts["malformed"], counts["unparsable"], counts["unknown_fastpath"]) == (1, 1, 2)
    lab.punt(fastpath, flow_packet())  # and it still works
    assert lab.reinjected(fastpath)[0] == PuntKind.REINJECT
    assert other.driver.keys() == set()


def test_a_failed_push_drops_its_packets(lab: Lab) -> None:
    fastpath = started(lab)
    fastpath.driver.fail_next = TableFull("no room")
    lab.punt(fastpath, flow_packet())
    assert lab.nothing_reinjected(fastpath)
    wait_until(lambda: lab.counts().get("push_failed") == 1)
    assert lab.counts()["push_errors"] == 1
    lab.punt(fastpath, flow_packet())  # the flow is not stuck as pending
    assert lab.reinjected(fastpath)[0] == PuntKind.REINJECT


def test_expiry_reaches_the_logic_and_its_removals_reach_the_table(lab: Lab) -> None:
    fastpath = started(lab, ForwardLogic(idle_timeout=1))
    lab.punt(fastpath, flow_packet())
    lab.reinjected(fastpath)
    stop = threading.Event()

    def keep_reply_alive() -> None:
        while not stop.is_set():
            with contextlib.suppress(KeyError):
                fastpath.driver.hit(key_of().reversed())
            stop.wait(0.05)

    keeper = threading.Thread(target=keep_reply_alive, daemon=True)
    keeper.start()
    try:
        wait_until(lambda: fastpath.driver.keys() == set(), timeout=10, what="both rules gone")
    finally:
        stop.set()
        keeper.join(5)
    assert lab.logic is not None
    expired = [detail for name, detail in lab.logic.events if name == "expired"]
    assert expired == [[str(key_of())]]  # the reply's rule went by removal, not by age
    wait_until(lambda: lab.counts()["rules_removed"] == 1)


def test_a_restarted_fast_path_gets_its_rules_pushed_again(lab: Lab) -> None:
    fastpath = started(lab)
    lab.punt(fastpath, flow_packet())
    lab.reinjected(fastpath)
    first_epoch = fastpath.agent.epoch
    fastpath.stop()
    assert fastpath.driver.keys() == set()  # closing the datapath empties its table
    restarted = lab.start_fastpath()
    assert restarted.agent.epoch != first_epoch
    wait_until(
        lambda: restarted.driver.keys() == {key_of(), key_of().reversed()},
        what="the rules to be pushed again",
    )
    assert lab.logic is not None
    assert lab.logic.names() == ["joined", "new_flow", "joined", "live_rules"]
    wait_until(lambda: lab.ready())
    lab.punt(restarted, flow_packet(sport=40002))
    assert lab.reinjected(restarted)[0] == PuntKind.REINJECT


def test_a_re_push_that_could_not_connect_is_retried_as_a_re_push(lab: Lab) -> None:
    fastpath = started(lab)
    lab.punt(fastpath, flow_packet())
    lab.reinjected(fastpath)
    registration = fastpath.agent.registration()
    fastpath.stop()
    # The restarted fast path registers before its rule-push port listens.
    early = registration.model_copy(update={"epoch": "second"})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(discovery.encode(early), (lab.slowpath_address, lab.ports.control))
    assert lab.slowpath is not None
    slowpath = lab.slowpath

    def attempt_failed() -> bool:
        fp = slowpath.fastpaths.get(2)
        return fp is not None and fp.registration.epoch == "second" and fp.sync is None

    wait_until(lambda: lab.on_loop(attempt_failed), what="the first attempt to fail")
    restarted = lab.start_fastpath(epoch="second")
    wait_until(
        lambda: restarted.driver.keys() == {key_of(), key_of().reversed()},
        what="the rules to be pushed on the next attempt",
    )
    assert lab.logic is not None
    assert lab.logic.names() == ["joined", "new_flow", "joined", "live_rules"]


def test_a_restarted_slow_path_restores_from_the_fast_paths_tables(lab: Lab) -> None:
    fastpath = started(lab)
    lab.punt(fastpath, flow_packet())
    lab.reinjected(fastpath)
    fastpath.driver.hit(key_of(), packets=7)
    lab.stop_slowpath()
    fresh = ForwardLogic()
    lab.start_slowpath(fresh)
    wait_until(lambda: lab.ready(), what="the fast path to be in sync again")
    assert fresh.names() == ["joined", "restore"]
    restored = fresh.events[1][1]
    assert restored["rules"] == sorted([str(key_of()), str(key_of().reversed())])
    assert restored["packets"] == 7
    assert set(fresh.flows[2]) == {key_of(), key_of().reversed()}
    assert fastpath.driver.keys() == {key_of(), key_of().reversed()}  # untouched


def test_a_silent_fast_path_leaves(lab: Lab) -> None:
    fastpath = started(lab)
    fastpath.stop()
    wait_until(lambda: lab.logic is not None and "left" in lab.logic.names(), timeout=10)
    assert lab.on_loop(lambda: dict(lab.slowpath.fastpaths)) == {}  # type: ignore[union-attr]


def test_the_punt_queue_is_bounded(lab: Lab) -> None:
    block = threading.Event()
    fastpath = started(lab, ForwardLogic(block=block), punt_queue=4)
    lab.punt(fastpath, flow_packet(sport=1))  # its on_new_flow holds the slow path's loop
    wait_until(lambda: lab.logic is not None and "new_flow" in lab.logic.names())
    for sport in range(2, 52):
        lab.punt(fastpath, flow_packet(sport=sport))
    block.set()
    for _ in range(5):  # the first packet and the 4 the queue held
        lab.reinjected(fastpath)
    assert lab.nothing_reinjected(fastpath, wait=0.3)
    assert lab.counts()["queue_full"] == 46


def test_metrics_and_health(lab: Lab) -> None:
    fastpath = started(lab)
    lab.punt(fastpath, flow_packet())
    lab.reinjected(fastpath)
    assert lab.slowpath is not None and lab.slowpath.metrics is not None
    base = f"http://{lab.slowpath_address}:{lab.slowpath.metrics.port}"
    labels = f'vnf_instance_id="{lab.instance_id}"'

    def scrape() -> str:
        with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
            return str(response.read().decode())

    wait_until(lambda: f"vnf_slowpath_punted_total{{{labels}}} 1.0" in scrape())
    text = scrape()
    assert f"vnf_slowpath_rules_installed_total{{{labels}}} 2.0" in text
    assert f"vnf_slowpath_punt_queue_depth{{{labels}}} 0.0" in text
    assert 'forward_logic_rules{vnf="forward"} 2.0' in text  # the VNF's own metrics
    assert f"vnf_slowpath_push_latency_seconds_count{{{labels}}} 1.0" in text
    wait_until(lambda: f'vnf_slowpath_active_flows{{fastpath="2",{labels}}} 2.0' in scrape())
    with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
        health = json.loads(response.read())
    assert health["healthy"] is True and health["fastpaths"] == {"2": "ready"}


def test_run_exits_2_on_a_config_error() -> None:
    code = (
        "from vnfs.sdk.slowpath import run\n"
        "from vnfs.sdk.config import UnitConfig\n"
        "run(lambda config: None, UnitConfig)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": os.environ.get("PATH", "/usr/bin")},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        "configuration error: environment variable VNF_INSTANCE_ID is not set"
    )
