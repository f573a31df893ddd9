"""The slow-path runtime: punted packets in, the VNF's decisions out as rule pushes.

A VNF's slow-path module is a few lines:

    from vnfs.sdk.slowpath import run
    run(NatLogic, NatConfig)       # logic factory (called with the config), config model

What the runtime does, on one event loop thread (the logic is never called
concurrently):

* announces itself on the punt link every heartbeat and answers every
  REGISTER with a unicast ANNOUNCE (`vnfs.sdk.discovery`);
* keeps one rule-push connection per registered fast path
  (`vnfs.sdk.rulepush`). A fast path it has not seen since it started is
  DUMPed: `on_fastpath_joined`, then `restore(fp, rules)` if its table held
  rules (the slow path restarted). A known instance with a new epoch restarted
  with an empty table: `on_fastpath_joined`, then `live_rules(fp)` is pushed
  again. A fast path silent for `missed_heartbeats` intervals has left
  (`on_fastpath_left`). Punts from a fast path are dropped until this sync is
  done;
* reads punted packets into a bounded queue (full: dropped and counted), and
  for each calls `on_new_flow`. A fast path whose datapath takes INSTALL
  datagrams (the tc-BPF one) gets a new flow's rules in one, sent just before
  the packet is re-injected, both on the punt link, with no wait for an
  acknowledgement; if either is lost, the flow's next packet is punted and
  decided again. Otherwise (or with more rules than a datagram carries) the
  rules go into the fast path's current batch, pushed when it holds
  `push_batch` rules, when its oldest rule waited `push_delay` (checked as
  packets are handled), or when no punted packet is waiting and the fast path
  has no batch in flight (then as soon as that batch's ACK arrives): at low
  load every flow is pushed at once, under load batches grow to what a round
  trip accumulates. When the fast path ACKs a batch, its packets are
  re-injected (UDP to the fast path's re-inject port, punt kind REINJECT); a
  batch that fails drops them. No rules: the packet is dropped;
* a packet of a flow whose rules are still on their way joins their batch
  instead of asking the logic again. A packet punted before its flow's rules
  landed may still reach `on_new_flow` after they did: the logic must answer
  such repeats with the same rules (installing a rule again replaces it);
* EXPIRED reports go to `on_rules_expired`; the keys it returns are removed.
  They may name flows the logic no longer knows (reports the fast path kept
  while no slow path was connected);
* serves Prometheus metrics and /healthz on its mgmt address (port 9100).

The process (`run`) sets the garbage collector up for a big long-lived heap
(`vnfs.sdk.heap`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from vnfs.sdk import discovery
from vnfs.sdk.config import ConfigError, UnitConfig, UnitConfigT, fail, load_or_exit
from vnfs.sdk.encoding import (
    INSTALL_MAX_RULES,
    EncodingError,
    PuntKind,
    decode_punt,
    encode_action,
    encode_install,
    encode_key,
    encode_punt,
    iter_rules,
)
from vnfs.sdk.flow import ExpiredRule, FlowKey, FlowRule, RuleCounters
from vnfs.sdk.heap import tune_collector
from vnfs.sdk.metrics import (
    HealthReport,
    LoopWatch,
    MetricsServer,
    RateMeter,
    SnapshotCollector,
    counter,
    gauge,
)
from vnfs.sdk.packet import PacketError, parse_punted
from vnfs.sdk.rulepush import MAX_RECORDS, RemoteError, RulePushClient
from vnfs.sdk.signals import STOP_SIGNALS, run_until_signalled
from vnfs.sdk.vnf import FastPathInfo, VnfLogic

log = logging.getLogger("vnfs.slowpath")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PUNT_RECEIVE_BUFFER = 16 << 20
_SO_RCVBUFFORCE = 33
"""Linux's SO_RCVBUFFORCE (asm-generic/socket.h); the socket module of 3.11 lacks it"""
READ_BURST = 512
CONNECT_TIMEOUT = 5.0
"""datagrams read per wake-up before other work gets the loop"""
PUSH_LATENCY_BUCKETS = (
    50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 0.1, 0.25, 1.0,
)  # fmt: skip
_ERROR_LOG_INTERVAL = 10.0

P = ParamSpec("P")
R = TypeVar("R")
SyncMode = Literal["restore", "repush", "resume"]
DropReason = Literal[
    "queue_full",
    "malformed",
    "unknown_fastpath",
    "not_ready",
    "unparsable",
    "no_rules",
    "logic_error",
    "bad_rules",
    "push_failed",
    "reinject_failed",
]


@dataclass
class _Batch:
    keys: list[bytes] = field(default_factory=list)
    actions: list[bytes] = field(default_factory=list)
    rule_keys: list[FlowKey] = field(default_factory=list)
    packets: list[tuple[int, bytes]] = field(default_factory=list)
    """(ingress ifindex, IPv4 packet) to re-inject once the batch is acknowledged"""
    started: float = field(default_factory=time.perf_counter)


@dataclass(eq=False)
class FastPathState:
    """What the runtime knows about one registered fast path (one epoch of it)."""

    info: FastPathInfo
    registration: discovery.Register
    last_heard: float
    window: asyncio.Semaphore
    ifindex_of: dict[str, int] = field(default_factory=dict)
    interface_of: dict[int, str] = field(default_factory=dict)
    client: RulePushClient | None = None
    sync: asyncio.Task[None] | None = None
    sync_mode: SyncMode = "restore"
    """what the next connection must do: DUMP and restore, re-push, or just resume"""
    joined: bool = False
    ready: bool = False
    batch: _Batch | None = None
    inflight: int = 0
    """batches pushed and not acknowledged yet"""
    pending: dict[FlowKey, _Batch] = field(default_factory=dict)
    """rule keys of batches not acknowledged yet"""
    deferred_expired: list[tuple[bytes, bytes, int]] = field(default_factory=list)
    table_entries: int = 0

    datagram_installs: bool = False
    """new flows' rules go in INSTALL datagrams (the fast path takes them and the
    runtime's settings allow it), not in rule-push batches"""

    @property
    def address(self) -> tuple[str, int]:
        return str(self.registration.punt_address), self.registration.reinject_port

    def __post_init__(self) -> None:
        self.ifindex_of = {i.name: i.ifindex for i in self.info.interfaces}
        self.interface_of = {i.ifindex: i.name for i in self.info.interfaces}


SO_NO_CHECK = 11  # <asm-generic/socket.h>; the socket module does not export it


def _large_receive_buffer(sock: socket.socket, size: int) -> None:
    """A burst of first packets must not overflow the default 208 KiB buffer; with
    CAP_NET_ADMIN (units run as root) the net.core.rmem_max cap does not apply."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


class _ControlProtocol(asyncio.DatagramProtocol):
    def __init__(self, handle: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.handle = handle

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        self.handle(data, (str(addr[0]), int(addr[1])))


class SlowPath:
    """The slow path of one VNF instance. `run` serves until the stop event is set."""

    def __init__(
        self,
        config: UnitConfig,
        logic: VnfLogic,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config
        self.settings = config.sdk
        self.logic = logic
        self.slowpath_id = secrets.token_hex(8)
        self.punt_cp, self.punt_address = config.addressed_cp(self.settings.punt_cp)
        self.mgmt_cp = config.connection_points.get(self.settings.mgmt_cp)
        self.fastpaths: dict[int, FastPathState] = {}
        self.queue: deque[tuple[bytes, str]] = deque()
        self.counts: dict[str, int] = dict.fromkeys(
            ("punted", "new_flows", "rules_pushed", "rules_installed", "rules_sent_in_datagrams",
             "rules_removed", "rules_expired", "reinjected", "coalesced", "push_errors",
             "batches"),
            0,
        )  # fmt: skip
        self.drops: dict[str, int] = {}
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.collector = SnapshotCollector()
        self.registry.register(self.collector)
        self.push_latency = Histogram(
            "vnf_slowpath_push_latency_seconds",
            "time from pushing a rule batch to its acknowledgement",
            labelnames=["vnf_instance_id"],
            buckets=PUSH_LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(config.vnf_instance_id)
        self.watch = LoopWatch(max(5.0, 5 * self.settings.heartbeat_interval))
        self.metrics: MetricsServer | None = None
        self._rates = RateMeter()
        self._labels = {"vnf_instance_id": config.vnf_instance_id}
        self._punt_socket: socket.socket | None = None
        self._control: asyncio.DatagramTransport | None = None
        self._wakeup = asyncio.Event()
        self._batches = 0
        """fast paths with an unsent batch (spares the per-packet age check a scan)"""
        self._fastpath_states: dict[str, str] = {}
        """instance -> 'ready' or 'syncing', for /healthz (read from the metrics thread)"""
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_error_log: dict[str, float] = {}

    # lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        processor: asyncio.Task[None] | None = None
        try:
            await self._start()
            processor = asyncio.create_task(self._process_punts(), name="punts")
            await self._tick_until(stop)
        finally:
            if processor is not None:
                processor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await processor
            await self._shutdown()

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        punt_ip = str(self.punt_address.ip)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            _large_receive_buffer(sock, PUNT_RECEIVE_BUFFER)
            # Re-injected datagrams go out with a zero UDP checksum: the datapath strips
            # the outer headers, and checksum-offload metadata pointing into them would
            # corrupt the inner packet on a NIC that offloads.
            sock.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
            sock.bind((punt_ip, self.settings.punt_port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._punt_socket = sock
        loop.add_reader(sock.fileno(), self._read_punts)
        control, _ = await loop.create_datagram_endpoint(
            lambda: _ControlProtocol(self._on_control),
            local_addr=(punt_ip, self.settings.control_port),
            allow_broadcast=True,
        )
        self._control = control
        host = str(self.mgmt_cp.address.ip) if self.mgmt_cp and self.mgmt_cp.address else None
        if host is None:
            log.warning("no %s address: metrics only on 127.0.0.1", self.settings.mgmt_cp)
        metrics = MetricsServer(
            host or "127.0.0.1", self.settings.metrics_port, self.registry, self.health
        )
        metrics.start()
        self.metrics = metrics
        log.info(
            "slow path %s up on %s (punt port %d, control port %d)",
            self.slowpath_id,
            self.punt_address,
            self.settings.punt_port,
            self.settings.control_port,
        )

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for fp in list(self.fastpaths.values()):
            if fp.sync is not None:
                fp.sync.cancel()
            if fp.client is not None:
                await fp.client.close()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._punt_socket is not None:
            asyncio.get_running_loop().remove_reader(self._punt_socket.fileno())
            self._punt_socket.close()
            self._punt_socket = None
        if self._control is not None:
            self._control.close()
        if self.metrics is not None:
            self.metrics.close()
        log.info("slow path %s stopped", self.slowpath_id)

    async def _tick_until(self, stop: asyncio.Event) -> None:
        interval = self.settings.heartbeat_interval
        while not stop.is_set():
            self.watch.beat()
            self._announce()
            self._expire_silent()
            for fp in self.fastpaths.values():
                if fp.ready and fp.client is not None and not fp.client.closed:
                    self._spawn(self._poll_stats(fp))
            self._observe()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # discovery and fast-path membership

    def announcement(self) -> discovery.Announce:
        return discovery.Announce(
            vnf_instance_id=self.config.vnf_instance_id,
            slowpath_id=self.slowpath_id,
            punt_address=self.punt_address.ip,
            punt_port=self.settings.punt_port,
            control_port=self.settings.control_port,
        )

    def _announce(self) -> None:
        network = self.punt_address.network
        if self._control is None or network.prefixlen >= 31:
            return
        target = (str(network.broadcast_address), self.settings.discovery_port)
        self._control.sendto(discovery.encode(self.announcement()), target)

    def _on_control(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            message = discovery.decode(data)
        except discovery.DiscoveryError as exc:
            self._drop_note("control", f"ignoring a datagram from {source[0]}: {exc}")
            return
        if not isinstance(message, discovery.Register):
            return
        if message.vnf_instance_id != self.config.vnf_instance_id:
            return
        if message.byte_order != sys.byteorder:
            self._drop_note(
                "byteorder",
                f"fast path {message.instance} is {message.byte_order}-endian, "
                f"this slow path {sys.byteorder}-endian: ignoring it",
            )
            return
        if self._control is not None:
            self._control.sendto(discovery.encode(self.announcement()), source)
        self._on_register(message)

    def _on_register(self, registration: discovery.Register) -> None:
        now = time.monotonic()
        fp = self.fastpaths.get(registration.instance)
        if fp is not None and fp.registration.epoch == registration.epoch:
            fp.last_heard = now
            if fp.sync is None and (fp.client is None or fp.client.closed):
                self._start_sync(fp)
            return
        mode: SyncMode = "restore"
        if fp is not None:
            log.info(
                "fast path %d restarted (epoch %s -> %s): its rules will be pushed again",
                registration.instance,
                fp.registration.epoch,
                registration.epoch,
            )
            self._discard(fp)
            mode = "repush"
        else:
            log.info(
                "fast path %d registered (epoch %s)", registration.instance, registration.epoch
            )
        info = FastPathInfo(
            instance=registration.instance,
            epoch=registration.epoch,
            interfaces=tuple(i.to_interface() for i in registration.interfaces),
        )
        fp = FastPathState(
            info=info,
            registration=registration,
            last_heard=now,
            window=asyncio.Semaphore(self.settings.max_inflight_batches),
            sync_mode=mode,
            datagram_installs=registration.datagram_installs and self.settings.datagram_installs,
        )
        self.fastpaths[registration.instance] = fp
        self._start_sync(fp)

    def _start_sync(self, fp: FastPathState) -> None:
        """Connect, then do what `fp.sync_mode` says; a failed attempt is retried (same
        mode) at the fast path's next REGISTER."""
        fp.sync = asyncio.create_task(self._sync(fp), name=f"sync {fp.info.instance}")

    async def _sync(self, fp: FastPathState) -> None:
        registration, mode = fp.registration, fp.sync_mode
        try:
            client = await RulePushClient.connect(
                str(registration.punt_address),
                registration.rulepush_port,
                # Longer than a lost SYN's first retransmission (1 s).
                timeout=max(CONNECT_TIMEOUT, 2 * self.settings.heartbeat_interval),
                on_expired=lambda keys, actions, count: self._on_expired(fp, keys, actions, count),
                local_address=str(self.punt_address.ip),
            )
        except (OSError, TimeoutError) as exc:
            self._drop_note(
                f"connect{fp.info.instance}",
                f"cannot reach fast path {fp.info.instance}'s rule-push port: {exc}",
            )
            fp.sync = None
            return
        if self.fastpaths.get(fp.info.instance) is not fp:
            await client.close()
            return
        fp.client = client
        try:
            if mode != "resume":
                fp.ready = False
                if not fp.joined:
                    self._call("on_fastpath_joined", self.logic.on_fastpath_joined, fp.info)
                    fp.joined = True
                if mode == "restore":
                    await self._restore(fp, client)
                else:
                    await self._repush(fp, client)
            fp.ready = True
            fp.sync_mode = "resume"
            log.info("fast path %d ready (%s)", fp.info.instance, mode)
            deferred, fp.deferred_expired = fp.deferred_expired, []
            for keys, actions, count in deferred:
                self._on_expired(fp, keys, actions, count)
        except (ConnectionError, RemoteError) as exc:
            log.warning("fast path %d: sync failed: %s", fp.info.instance, exc)
            await client.close()
        finally:
            fp.sync = None

    async def _restore(self, fp: FastPathState, client: RulePushClient) -> None:
        chunks = await client.dump()
        rules: list[tuple[FlowRule, RuleCounters]] = []
        for keys, actions, _ in chunks:
            try:
                rules.extend(iter_rules(keys, actions, fp.interface_of))
            except EncodingError as exc:
                log.error("fast path %d: undecodable rule in its dump: %s", fp.info.instance, exc)
            await asyncio.sleep(0)  # a big table decodes in many slices
        if rules:
            log.info("fast path %d holds %d rules: restoring", fp.info.instance, len(rules))
            self._call("restore", self.logic.restore, fp.info, rules)

    async def _repush(self, fp: FastPathState, client: RulePushClient) -> None:
        rules = self._call("live_rules", self.logic.live_rules, fp.info) or ()
        futures: list[asyncio.Future[int]] = []
        size = min(self.settings.push_batch, MAX_RECORDS)
        for first in range(0, len(rules), size):
            keys, actions = [], []
            for rule in rules[first : first + size]:
                try:
                    actions.append(encode_action(rule, fp.ifindex_of))
                    keys.append(encode_key(rule.key))
                except EncodingError as exc:
                    self._drop("bad_rules")
                    self._drop_note("bad_rules", f"live rule not pushed: {exc}")
            if keys:
                futures.append(
                    await client.submit_install(b"".join(keys), b"".join(actions), len(keys))
                )
            await asyncio.sleep(0)
        applied = 0
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, BaseException):
                self.counts["push_errors"] += 1
                self._drop_note("repush", f"re-pushing to fast path {fp.info.instance}: {result}")
            else:
                applied += result
        self.counts["rules_installed"] += applied
        log.info("fast path %d: re-pushed %d of %d rules", fp.info.instance, applied, len(rules))

    def _expire_silent(self) -> None:
        deadline = time.monotonic() - self.settings.missed_heartbeats * (
            self.settings.heartbeat_interval
        )
        for fp in [fp for fp in self.fastpaths.values() if fp.last_heard < deadline]:
            log.warning(
                "fast path %d silent for %d heartbeats: it left",
                fp.info.instance,
                self.settings.missed_heartbeats,
            )
            del self.fastpaths[fp.info.instance]
            self._discard(fp)
            if fp.joined:
                self._call("on_fastpath_left", self.logic.on_fastpath_left, fp.info)

    def _discard(self, fp: FastPathState) -> None:
        """Forget one epoch of a fast path: its connection, sync and unsent batch."""
        fp.ready = False
        if fp.sync is not None:
            fp.sync.cancel()
            fp.sync = None
        if fp.batch is not None:
            self._drop("push_failed", len(fp.batch.packets))
            fp.batch = None
            self._batches -= 1
        if fp.client is not None:
            self._spawn(fp.client.close())
            fp.client = None

    async def _poll_stats(self, fp: FastPathState) -> None:
        client = fp.client
        if client is None:
            return
        with contextlib.suppress(ConnectionError, RemoteError, TimeoutError):
            stats = await asyncio.wait_for(client.stats(), self.settings.heartbeat_interval)
            fp.table_entries = stats.table_entries

    # punted packets

    def _read_punts(self) -> None:
        sock = self._punt_socket
        if sock is None:
            return
        limit = self.settings.punt_queue
        for _ in range(READ_BURST):
            try:
                data, (address, _port) = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._drop_note("recv", f"punt socket: {exc}")
                break
            if len(self.queue) >= limit:
                self._drop("queue_full")
                continue
            self.queue.append((data, address))
        if self.queue:
            self._wakeup.set()

    async def _process_punts(self) -> None:
        delay = self.settings.push_delay
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            handled = 0
            while self.queue:
                data, address = self.queue.popleft()
                await self._handle_punt(data, address)
                await self._flush_aged(delay)
                handled += 1
                if handled % READ_BURST == 0:
                    await asyncio.sleep(0)  # let the reader and the ACKs in
            await self._flush_idle()

    async def _handle_punt(self, data: bytes, address: str) -> None:
        self.counts["punted"] += 1
        try:
            kind, instance, ifindex, packet = decode_punt(data)
        except EncodingError:
            self._drop("malformed")
            return
        fp = self.fastpaths.get(instance)
        if kind != PuntKind.MISS or fp is None or address != fp.address[0]:
            self._drop("malformed" if kind != PuntKind.MISS else "unknown_fastpath")
            return
        if not fp.ready:
            self._drop("not_ready")
            return
        try:
            parsed = parse_punted(packet, fp.info, ifindex)
        except PacketError:
            self._drop("unparsable")
            return
        waiting = fp.pending.get(parsed.key)
        if waiting is not None:
            waiting.packets.append((ifindex, parsed.data))
            self.counts["coalesced"] += 1
            return
        rules = self._call("on_new_flow", self.logic.on_new_flow, parsed)
        if rules is None:
            self._drop("logic_error")
            return
        if not rules:
            self._drop("no_rules")
            return
        try:
            actions = [encode_action(rule, fp.ifindex_of) for rule in rules]
        except EncodingError as exc:
            self._drop("bad_rules")
            self._drop_note("bad_rules", f"rules for {parsed.key} not pushed: {exc}")
            return
        if len(rules) > MAX_RECORDS:
            self._drop("bad_rules")
            return
        self.counts["new_flows"] += 1
        if fp.datagram_installs and len(rules) <= INSTALL_MAX_RULES:
            keys = [encode_key(rule.key) for rule in rules]
            self._install_and_reinject(fp, keys, actions, ifindex, parsed.data)
            return
        batch = fp.batch
        if batch is not None and len(batch.keys) + len(rules) > MAX_RECORDS:
            await self._flush(fp)
            batch = None
        if batch is None:
            batch = fp.batch = _Batch()
            self._batches += 1
        for rule, action in zip(rules, actions, strict=True):
            batch.keys.append(encode_key(rule.key))
            batch.actions.append(action)
            batch.rule_keys.append(rule.key)
            fp.pending[rule.key] = batch
        batch.packets.append((ifindex, parsed.data))
        if len(batch.keys) >= self.settings.push_batch:
            await self._flush(fp)

    async def _flush_aged(self, max_age: float) -> None:
        if self._batches == 0:
            return
        now = time.perf_counter()
        for fp in list(self.fastpaths.values()):
            if fp.batch is not None and now - fp.batch.started >= max_age:
                await self._flush(fp)

    async def _flush_idle(self) -> None:
        """Nothing waits to be decided: push the batches of fast paths with none in flight.
        The others are pushed when their ACK comes (so batches grow with the load)."""
        if self._batches == 0:
            return
        for fp in list(self.fastpaths.values()):
            if fp.batch is not None and fp.inflight == 0:
                await self._flush(fp)

    async def _flush(self, fp: FastPathState) -> None:
        batch, fp.batch = fp.batch, None
        if batch is None:
            return
        self._batches -= 1
        if not batch.keys:
            return
        client = fp.client
        if client is None or client.closed:
            self._fail_batch(fp, batch, "no rule-push connection")
            return
        await fp.window.acquire()
        started = time.perf_counter()
        try:
            future = await client.submit_install(
                b"".join(batch.keys), b"".join(batch.actions), len(batch.keys)
            )
        except (ConnectionError, ValueError) as exc:
            fp.window.release()
            self._fail_batch(fp, batch, str(exc))
            return
        fp.inflight += 1
        self.counts["batches"] += 1
        self.counts["rules_pushed"] += len(batch.keys)
        future.add_done_callback(lambda done: self._pushed(fp, batch, started, done))

    def _pushed(
        self, fp: FastPathState, batch: _Batch, started: float, done: asyncio.Future[int]
    ) -> None:
        fp.window.release()
        fp.inflight -= 1
        if fp.batch is not None and fp.inflight == 0:
            self._wakeup.set()  # its next batch was waiting for this ACK
        if done.cancelled() or done.exception() is not None:
            self._fail_batch(fp, batch, str(done.exception() or "cancelled"))
            return
        self.push_latency.observe(time.perf_counter() - started)
        self.counts["rules_installed"] += done.result()
        self._settle_keys(fp, batch)
        self._reinject(fp, batch)

    def _install_and_reinject(
        self, fp: FastPathState, keys: list[bytes], actions: list[bytes], ifindex: int, data: bytes
    ) -> None:
        """The flow's rules in an INSTALL datagram, its packet right behind: both take the
        same path to the fast path, so the packet finds its rules. Unacknowledged: if the
        datagram is lost, the flow's next packet is punted again and decided again."""
        sock = self._punt_socket
        if sock is None:
            self._drop("reinject_failed")
            return
        try:
            sock.sendto(encode_install(fp.info.instance, keys, actions), fp.address)
        except OSError as exc:
            self._drop("push_failed")
            self._drop_note(
                f"install{fp.info.instance}", f"INSTALL to fast path {fp.info.instance}: {exc}"
            )
            return
        self.counts["rules_sent_in_datagrams"] += len(keys)
        self._send_reinject(sock, fp, ifindex, data)

    def _fail_batch(self, fp: FastPathState, batch: _Batch, reason: str) -> None:
        self.counts["push_errors"] += 1
        self._drop("push_failed", len(batch.packets))
        self._settle_keys(fp, batch)
        self._drop_note(
            f"push{fp.info.instance}", f"rule push to fast path {fp.info.instance}: {reason}"
        )

    def _settle_keys(self, fp: FastPathState, batch: _Batch) -> None:
        for key in batch.rule_keys:
            if fp.pending.get(key) is batch:
                del fp.pending[key]

    def _reinject(self, fp: FastPathState, batch: _Batch) -> None:
        sock = self._punt_socket
        if sock is None or self.fastpaths.get(fp.info.instance) is not fp:
            self._drop("reinject_failed", len(batch.packets))
            return
        for ifindex, data in batch.packets:
            self._send_reinject(sock, fp, ifindex, data)

    def _send_reinject(
        self, sock: socket.socket, fp: FastPathState, ifindex: int, data: bytes
    ) -> None:
        try:
            sock.sendto(encode_punt(PuntKind.REINJECT, fp.info.instance, ifindex, data), fp.address)
        except OSError:
            self._drop("reinject_failed")
            return
        self.counts["reinjected"] += 1

    # expiry

    def _on_expired(self, fp: FastPathState, keys: bytes, actions: bytes, count: int) -> None:
        if self.fastpaths.get(fp.info.instance) is not fp:
            return
        if not fp.ready:
            fp.deferred_expired.append((keys, actions, count))
            return
        try:
            expired = [
                ExpiredRule(rule, counters)
                for rule, counters in iter_rules(keys, actions, fp.interface_of)
            ]
        except EncodingError as exc:
            log.error("fast path %d: undecodable EXPIRED report: %s", fp.info.instance, exc)
            return
        self.counts["rules_expired"] += len(expired)
        more = self._call("on_rules_expired", self.logic.on_rules_expired, fp.info, expired)
        if more:
            self._spawn(self._remove(fp, list(more)))

    async def _remove(self, fp: FastPathState, keys: Sequence[FlowKey]) -> None:
        client = fp.client
        if client is None:
            return
        try:
            self.counts["rules_removed"] += await client.remove(keys)
        except (ConnectionError, RemoteError) as exc:
            self._drop_note("remove", f"removing rules from fast path {fp.info.instance}: {exc}")

    # bookkeeping

    def _call(self, name: str, hook: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R | None:
        """Call a logic hook; a failure is logged (rate-limited) and gives None."""
        try:
            return hook(*args, **kwargs)
        except Exception:
            now = time.monotonic()
            if now - self._last_error_log.get(name, -_ERROR_LOG_INTERVAL) >= _ERROR_LOG_INTERVAL:
                self._last_error_log[name] = now
                log.exception("the VNF logic's %s failed", name)
            return None

    def _drop(self, reason: DropReason, count: int = 1) -> None:
        if count:
            self.drops[reason] = self.drops.get(reason, 0) + count

    def _drop_note(self, topic: str, message: str) -> None:
        """Log a recurring problem at most once per interval."""
        now = time.monotonic()
        if now - self._last_error_log.get(topic, -_ERROR_LOG_INTERVAL) >= _ERROR_LOG_INTERVAL:
            self._last_error_log[topic] = now
            log.warning("%s", message)

    def _observe(self) -> None:
        counts = self.counts
        rates = self._rates.sample(
            {name: counts[name] for name in ("punted", "new_flows", "rules_installed")}
        )
        labels = self._labels
        families: list[Metric] = [
            counter(f"vnf_slowpath_{name}", help_text, counts[name], labels)
            for name, help_text in _COUNTER_HELP.items()
        ]
        dropped = CounterMetricFamily(
            "vnf_slowpath_dropped_packets",
            "punted packets not re-injected, by reason",
            labels=[*labels, "reason"],
        )
        for reason, value in sorted(self.drops.items()):
            dropped.add_metric([*labels.values(), reason], value)
        families.append(dropped)
        families += [
            gauge("vnf_slowpath_punted_packets_per_second", "punted packets per second",
                  rates.get("punted", 0.0), labels),
            gauge("vnf_slowpath_new_flows_per_second", "new flows decided per second",
                  rates.get("new_flows", 0.0), labels),
            gauge("vnf_slowpath_rules_installed_per_second", "rules installed per second",
                  rates.get("rules_installed", 0.0), labels),
            gauge("vnf_slowpath_punt_queue_depth", "punted packets waiting for the logic",
                  len(self.queue), labels),
            gauge("vnf_slowpath_fastpaths", "fast paths registered and in sync",
                  sum(1 for fp in self.fastpaths.values() if fp.ready), labels),
        ]  # fmt: skip
        flows = GaugeMetricFamily(
            "vnf_slowpath_active_flows",
            "rules in each fast path's table",
            labels=[*labels, "fastpath"],
        )
        for instance, fp in sorted(self.fastpaths.items()):
            flows.add_metric([*labels.values(), str(instance)], fp.table_entries)
        families.append(flows)
        families += self._call("metrics", lambda: list(self.logic.metrics())) or ()
        self.collector.publish(families)
        self._fastpath_states = {
            str(i): "ready" if fp.ready else "syncing" for i, fp in sorted(self.fastpaths.items())
        }

    def health(self) -> HealthReport:
        """For /healthz (called from the metrics thread: reads snapshots only)."""
        stalled = self.watch.stalled()
        detail = f"event loop silent for {self.watch.silence():.1f} s" if stalled else ""
        return HealthReport(
            not stalled and self._punt_socket is not None,
            detail,
            {
                "slowpathId": self.slowpath_id,
                "fastpaths": self._fastpath_states,
                "puntQueueDepth": len(self.queue),
            },
        )


_COUNTER_HELP = {
    "punted": "punted packets received",
    "new_flows": "new flows the logic decided rules for",
    "rules_pushed": "rules sent to fast paths",
    "rules_installed": "rules fast paths acknowledged",
    "rules_sent_in_datagrams": "rules sent in INSTALL datagrams, ahead of their flow's packet",
    "rules_removed": "rules removed after expiry reports",
    "rules_expired": "rules fast paths reported aged out",
    "reinjected": "packets re-injected after their rules were installed",
    "coalesced": "packets that joined their flow's pending rule batch",
    "push_errors": "rule batches that failed",
    "batches": "rule batches pushed",
}


async def serve(runtime: SlowPath, signals: Sequence[signal.Signals] = STOP_SIGNALS) -> None:
    """Run `runtime` until one of `signals` arrives."""
    await run_until_signalled(runtime.run, signals)


def run(
    logic_factory: Callable[[UnitConfigT], VnfLogic],
    config_model: type[UnitConfigT],
) -> None:
    """Entry point of a slow-path unit's process: load config, build the logic, serve."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    config = load_or_exit(config_model)
    try:
        logic = logic_factory(config)
        runtime = SlowPath(config, logic)
    except (ConfigError, ValueError) as exc:
        fail(str(exc))
    tune_collector()
    try:
        asyncio.run(serve(runtime))
    except OSError as exc:
        log.error("slow path failed: %s", exc)
        raise SystemExit(1) from None
