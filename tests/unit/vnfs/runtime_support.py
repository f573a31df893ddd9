"""Helpers for the SDK runtime tests: a datapath test double, a trivial VNF logic,
loopback unit configs and a way to run an agent or slow path on its own loop thread.

`DriverDouble` stands in for the tc-BPF datapath only where a test is about
the protocol and runtime logic around it; it stores rules in the same binary
records as the BPF map and ages them by the same rule (idle since the last
hit, or since install). The real datapath is exercised by
tests/integration/fastpath/test_runtime.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Protocol

from prometheus_client.metrics_core import Metric

from vnfs.sdk.config import RuntimeSettings, UnitConfig
from vnfs.sdk.driver import (
    DriverError,
    FastPathDriver,
    GlobalCounters,
    Health,
    Interface,
    PuntTarget,
    TableFull,
)
from vnfs.sdk.encoding import (
    ACTION_SIZE,
    KEY_SIZE,
    LAST_SEEN_OFFSET,
    decode_action,
    decode_key,
    encode_action,
    encode_key,
)
from vnfs.sdk.flow import ExpiredRule, FlowKey, FlowRule, Forward, RuleCounters
from vnfs.sdk.metrics import gauge
from vnfs.sdk.vnf import FastPathInfo, Packet, VnfLogic

_COUNTERS_AT = 56


class DriverDouble(FastPathDriver):
    """Test double of a datapath: an in-memory flow table in the BPF map's record layout.

    Thread-safe, because tests read it from their own thread while the agent's
    loop thread drives it. `gate`, when set, holds every install until it opens
    (to keep a batch unacknowledged); `fail_next` makes the next install raise.
    """

    name = "double"

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.table: dict[bytes, bytearray] = {}
        self.starts: list[tuple[list[Interface], PuntTarget | None]] = []
        self.totals = GlobalCounters()
        self.details: dict[str, int] = {}
        """datapath counters beyond GlobalCounters (as BpfDriver.datapath_counters has)"""
        self.closed = False
        self.gate: threading.Event | None = None
        self.fail_next: DriverError | None = None
        self.install_calls = 0
        self._interfaces: list[Interface] = []
        self._lock = threading.Lock()

    # FastPathDriver

    def start(self, interfaces: Sequence[Interface], punt: PuntTarget | None) -> None:
        with self._lock:
            self._interfaces = list(interfaces)
            self.starts.append((list(interfaces), punt))

    def install(self, rules: Sequence[FlowRule]) -> int:
        ifindex_of = {i.name: i.ifindex for i in self._interfaces}
        keys = b"".join(encode_key(rule.key) for rule in rules)
        actions = b"".join(encode_action(rule, ifindex_of) for rule in rules)
        return self.install_encoded(keys, actions, len(rules))

    def install_encoded(self, keys: bytes, actions: bytes, count: int) -> int:
        if len(keys) != count * KEY_SIZE or len(actions) != count * ACTION_SIZE:
            raise DriverError(f"batch says {count} rules but carries other sizes")
        if self.gate is not None:
            self.gate.wait(10)
        now = time.monotonic_ns().to_bytes(8, "little")
        with self._lock:
            self.install_calls += 1
            if self.fail_next is not None:
                error, self.fail_next = self.fail_next, None
                raise error
            batch = {keys[i * KEY_SIZE : (i + 1) * KEY_SIZE] for i in range(count)}
            if len(self.table) + sum(key not in self.table for key in batch) > self.capacity:
                raise TableFull(f"the table holds {self.capacity} rules")
            for index in range(count):
                record = bytearray(actions[index * ACTION_SIZE : (index + 1) * ACTION_SIZE])
                record[LAST_SEEN_OFFSET : LAST_SEEN_OFFSET + 8] = now
                self.table[keys[index * KEY_SIZE : (index + 1) * KEY_SIZE]] = record
        return count

    def remove(self, keys: Sequence[FlowKey]) -> int:
        with self._lock:
            return sum(self.table.pop(encode_key(key), None) is not None for key in keys)

    def counters(self, keys: Sequence[FlowKey]) -> dict[FlowKey, RuleCounters]:
        found = {}
        for key in keys:
            with self._lock:
                record = self.table.get(encode_key(key))
            if record is not None:
                found[key] = decode_action(key, bytes(record))[1]
        return found

    def global_counters(self) -> GlobalCounters:
        return self.totals

    def datapath_counters(self) -> dict[str, int]:
        return super().datapath_counters() | self.details

    def dump(self) -> Iterator[tuple[FlowRule, RuleCounters]]:
        names = {i.ifindex: i.name for i in self._interfaces}
        with self._lock:
            items = [(key, bytes(record)) for key, record in self.table.items()]
        for key, record in items:
            yield decode_action(decode_key(key), record, names)

    def age_out(self, now_ns: int) -> list[ExpiredRule]:
        names = {i.ifindex: i.name for i in self._interfaces}
        expired = []
        with self._lock:
            for key, record in list(self.table.items()):
                idle = int.from_bytes(record[4:8], "little") * 1_000_000_000
                last = int.from_bytes(record[LAST_SEEN_OFFSET : LAST_SEEN_OFFSET + 8], "little")
                if now_ns - last >= idle:
                    del self.table[key]
                    rule, counters = decode_action(decode_key(key), bytes(record), names)
                    expired.append(ExpiredRule(rule, counters))
        return expired

    def health(self) -> Health:
        with self._lock:
            entries = len(self.table)
            names = {i.name: True for i in self._interfaces}
        return Health(True, "", entries, self.capacity, names)

    def interfaces(self) -> list[Interface]:
        return list(self._interfaces)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self.table.clear()

    # test controls

    def keys(self) -> set[FlowKey]:
        with self._lock:
            raw = list(self.table)
        return {decode_key(key) for key in raw}

    def hit(self, key: FlowKey, packets: int = 1, size: int = 100) -> None:
        """Count traffic on a rule as the datapath would (and refresh its idle time)."""
        with self._lock:
            record = self.table[encode_key(key)]
            old = int.from_bytes(record[_COUNTERS_AT : _COUNTERS_AT + 8], "little")
            old_bytes = int.from_bytes(record[_COUNTERS_AT + 8 : _COUNTERS_AT + 16], "little")
            record[_COUNTERS_AT : _COUNTERS_AT + 8] = (old + packets).to_bytes(8, "little")
            record[_COUNTERS_AT + 8 : _COUNTERS_AT + 16] = (old_bytes + size * packets).to_bytes(
                8, "little"
            )
            record[LAST_SEEN_OFFSET : LAST_SEEN_OFFSET + 8] = time.monotonic_ns().to_bytes(
                8, "little"
            )


@dataclass
class ForwardLogic(VnfLogic):
    """A trivial VNF for runtime tests: forward every new flow, both directions.

    It keeps which flows each fast path holds, so it can answer `live_rules`
    and rebuild from `restore`; every hook call is recorded in `events` (and
    appended as a JSON line to `event_file` when set, for a slow path that runs
    in another process). Packets to `drop_port` get no rules.
    """

    idle_timeout: int = 60
    idle_by_port: dict[int, int] = field(default_factory=dict)
    """idle timeouts of flows to these destination ports, instead of `idle_timeout`"""
    drop_port: int | None = None
    event_file: Path | None = None
    block: threading.Event | None = None
    """when set, on_new_flow waits for it (to hold the slow path's loop)"""
    events: list[tuple[str, Any]] = field(default_factory=list)
    flows: dict[int, dict[FlowKey, FlowRule]] = field(default_factory=dict)

    def _record(self, name: str, detail: Any) -> None:
        self.events.append((name, detail))
        if self.event_file is not None:
            with self.event_file.open("a") as handle:
                handle.write(json.dumps({"event": name, "detail": detail}, default=str) + "\n")

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def on_new_flow(self, packet: Packet) -> Sequence[FlowRule]:
        self._record("new_flow", str(packet.key))
        if self.block is not None:
            self.block.wait(10)
        if packet.key.dport == self.drop_port:
            return ()
        idle = self.idle_by_port.get(packet.key.dport, self.idle_timeout)
        rules = [
            FlowRule(key, (Forward(),), idle_timeout=idle)
            for key in (packet.key, packet.key.reversed())
        ]
        table = self.flows.setdefault(packet.fastpath.instance, {})
        for rule in rules:
            table[rule.key] = rule
        return rules

    def on_rules_expired(
        self, fastpath: FastPathInfo, expired: Sequence[ExpiredRule]
    ) -> Sequence[FlowKey]:
        self._record("expired", [str(item.rule.key) for item in expired])
        table = self.flows.get(fastpath.instance, {})
        others = []
        for item in expired:
            table.pop(item.rule.key, None)
            if table.pop(item.rule.key.reversed(), None) is not None:
                others.append(item.rule.key.reversed())
        return others

    def on_fastpath_joined(self, fastpath: FastPathInfo) -> None:
        self._record("joined", {"instance": fastpath.instance, "epoch": fastpath.epoch})

    def on_fastpath_left(self, fastpath: FastPathInfo) -> None:
        self._record("left", {"instance": fastpath.instance, "epoch": fastpath.epoch})
        self.flows.pop(fastpath.instance, None)

    def restore(
        self, fastpath: FastPathInfo, rules: Sequence[tuple[FlowRule, RuleCounters]]
    ) -> None:
        self._record(
            "restore",
            {
                "instance": fastpath.instance,
                "rules": sorted(str(rule.key) for rule, _ in rules),
                "packets": sum(counters.packets for _, counters in rules),
            },
        )
        table = self.flows.setdefault(fastpath.instance, {})
        for rule, _ in rules:
            table[rule.key] = rule

    def metrics(self) -> Iterable[Metric]:
        flows = sum(len(table) for table in self.flows.values())
        return [gauge("forward_logic_rules", "rules the logic knows", flows, {"vnf": "forward"})]

    def live_rules(self, fastpath: FastPathInfo) -> Sequence[FlowRule]:
        rules = list(self.flows.get(fastpath.instance, {}).values())
        self._record("live_rules", {"instance": fastpath.instance, "count": len(rules)})
        return rules


# --- loopback units ---------------------------------------------------------------


def loopback_subnet() -> str:
    """A random 127.a.b.0 prefix, so concurrent tests' sockets never meet."""
    return f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 1}"


def free_port(address: str, kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Ports:
    """One test's ports: on loopback every unit shares them, as units in
    separate namespaces would."""

    punt: int
    reinject: int
    control: int
    discovery: int
    rulepush: int

    @classmethod
    def pick(cls, address: str) -> Ports:
        udp = socket.SOCK_DGRAM
        return cls(
            punt=free_port(address, udp),
            reinject=free_port(address, udp),
            control=free_port(address, udp),
            discovery=free_port(address, udp),
            rulepush=free_port(address),
        )


def unit_config(
    *,
    instance_id: str,
    unit: str,
    replica: int,
    punt_address: str,
    ports: Ports,
    tmp: Path,
    heartbeat: float = 0.2,
    **sdk: Any,
) -> UnitConfig:
    """A fast- or slow-path unit on loopback: every connection point is `lo`."""
    cps = {
        name: {"name": name, "ifname": "lo", "address": f"{punt_address}/8"}
        for name in (
            ("inside", "outside", "punt", "mgmt") if unit == "fastpath" else ("punt", "mgmt")
        )
    }
    settings = RuntimeSettings(
        punt_port=ports.punt,
        reinject_port=ports.reinject,
        control_port=ports.control,
        discovery_port=ports.discovery,
        rulepush_port=ports.rulepush,
        metrics_port=0,
        heartbeat_interval=heartbeat,
        ip_forward=False,
        **sdk,
    )
    return UnitConfig(
        vnf_instance_id=instance_id,
        unit=unit,
        vdu_id=unit,
        replica_index=replica,
        config_dir=tmp,
        flavour_id="default",
        connection_points=cps,
        sdk=settings,
    )


# --- running components -------------------------------------------------------------


class Runnable(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


class InThread:
    """Runs an agent or slow path on its own event loop in a thread, like its own process."""

    def __init__(self, component: Runnable, name: str) -> None:
        self.component = component
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def _main(self) -> None:
        async def body() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self.component.run(self._stop)

        try:
            asyncio.run(body())
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()

    def __enter__(self) -> InThread:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def call(self, function: Callable[[], Any], timeout: float = 10) -> Any:
        """Run `function` on the component's loop thread and return its result."""
        assert self.loop is not None
        box: dict[str, Any] = {}
        finished = threading.Event()

        def invoke() -> None:
            try:
                box["value"] = function()
            except BaseException as exc:
                box["error"] = exc
            finished.set()

        self.loop.call_soon_threadsafe(invoke)
        assert finished.wait(timeout), "the component's loop did not answer"
        if "error" in box:
            raise box["error"]
        return box["value"]

    def stop(self, timeout: float = 10) -> None:
        if self.loop is not None and self._stop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the component did not stop"
        if self.error is not None:
            raise self.error


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")


def address_of(config: UnitConfig, cp: str = "punt") -> IPv4Address:
    point = config.connection_points[cp]
    assert point.address is not None
    return point.address.ip
