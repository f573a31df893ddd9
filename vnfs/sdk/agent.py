"""The fast-path agent: the process of one fast-path replica, driving its datapath.

It runs in the replica's network namespace, where the VIM named the
interfaces after their connection points. It

* enables IPv4 forwarding and starts the datapath (`bpf` by default) on the
  data interfaces (every connection point but punt and mgmt, unless
  RuntimeSettings.data_cps says otherwise);
* finds the slow path (its broadcast ANNOUNCE on the punt link, or an
  explicit address), points the datapath's punt path at it once the kernel
  resolved its MAC, and REGISTERs with it every heartbeat
  (`vnfs.sdk.discovery`);
* serves the rule-push protocol on its punt address (`vnfs.sdk.rulepush`):
  installs go to the driver as received, without per-rule work;
* ages rules out every heartbeat and reports them to the slow path (EXPIRED)
  as the driver hands them over, encoded, never decoded here; aging runs in
  slices of AGE_SLICE rules, so a DUMP can come in between;
* serves Prometheus metrics and /healthz on its mgmt address (port 9100);
* on SIGTERM or SIGINT stops serving and closes the driver (detaching it).

Driver calls run in driver threads (`vnfs.sdk.lanes`), never on the event
loop: a scan of a million-entry table takes a noticeable time, and meanwhile
the loop keeps answering rule pushes (in a second thread, with a driver that
allows that), registering and serving metrics. Heartbeats (REGISTER), aging
and metrics refreshes each run on their own schedule, so a long one delays
none of the others. A VNF's fast-path module is `from vnfs.sdk.agent import
main; main()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import fields
from ipaddress import IPv4Address
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, Metric

from vnfs.sdk import discovery, links
from vnfs.sdk.config import ConfigError, ConnectionPoint, UnitConfig, fail, load_or_exit
from vnfs.sdk.driver import (
    DriverError,
    FastPathDriver,
    GlobalCounters,
    Health,
    Interface,
    PuntTarget,
)
from vnfs.sdk.encoding import encode_counters, encode_key, iter_keys
from vnfs.sdk.lanes import DriverLanes
from vnfs.sdk.metrics import (
    HealthReport,
    LoopWatch,
    MetricsServer,
    RateMeter,
    SnapshotCollector,
    counter,
    gauge,
)
from vnfs.sdk.rulepush import AsyncRuleTable, RulePushServer, TableStats
from vnfs.sdk.signals import STOP_SIGNALS, run_until_signalled

log = logging.getLogger("vnfs.agent")

EXIT_FAILURE = 1
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MAC_RETRY = 0.05
"""seconds between neighbour-table looks while the slow path's MAC resolves"""
AGE_SLICE = 65536
"""expired rules taken from the driver at once (one EXPIRED frame's worth at most)"""


_DATAPATH_COUNTERS = tuple(field.name for field in fields(GlobalCounters))
_COUNTER_HELP = {
    **{name: f"datapath {name.replace('_', ' ')}" for name in _DATAPATH_COUNTERS},
    "rules_installed": "rules installed by the slow path (pushed, or in INSTALL datagrams)",
    "rules_removed": "rules removed by the slow path",
    "rules_expired": "rules aged out",
    "expired_unreported": "aged-out rules dropped before a slow path could hear of them",
    "rulepush_requests": "rule-push requests served",
    "aging_rounds": "aging passes over the flow table",
}
_RATES = (
    # gauge name, counter it is the rate of, scale, help
    ("rx_packets_per_second", "rx_packets", 1, "received packets per second"),
    ("rx_bits_per_second", "rx_bytes", 8, "received bits per second"),
    ("tx_packets_per_second", "tx_packets", 1, "sent packets per second"),
    ("tx_bits_per_second", "tx_bytes", 8, "sent bits per second"),
    ("misses_per_second", "misses", 1, "flow table misses per second"),
    ("punts_per_second", "punted", 1, "packets punted to the slow path per second"),
    ("installs_per_second", "rules_installed", 1, "rules installed per second"),
    ("expirations_per_second", "rules_expired", 1, "rules aged out per second"),
)


def make_driver(config: UnitConfig, environ: Mapping[str, str] | None = None) -> FastPathDriver:
    """The datapath RuntimeSettings.datapath names (drivers are imported on demand: each
    loads code the others never need)."""
    kind = config.sdk.datapath
    if kind == "bpf":
        from vnfs.sdk.bpf.driver import BpfDriver

        return BpfDriver(table_size=config.sdk.table_size)
    if kind == "vpp":
        from vnfs.sdk.vpp.driver import VppDriver
        from vnfs.sdk.vpp.settings import load_settings

        return VppDriver(load_settings(os.environ if environ is None else environ))
    raise ConfigError(f"unknown datapath {kind!r} (known: bpf, vpp)")


class DriverTable(AsyncRuleTable):
    """The rule-push server's view of the driver: encoded records in, encoded records out,
    the driver's work done in its lanes (inline when none are given)."""

    def __init__(
        self,
        driver: FastPathDriver,
        ifindex_of: links.IfindexMap,
        lanes: DriverLanes | None = None,
    ) -> None:
        self.driver = driver
        self.ifindex_of = ifindex_of
        self.lanes = lanes or DriverLanes(driver, threaded=False)
        self.health = Health(healthy=False, detail="not started")
        """refreshed by the agent every heartbeat; STATS reports its table capacity"""

    async def install(self, keys: bytes, actions: bytes, count: int) -> int:
        return await self.lanes.change(lambda: self.driver.install_encoded(keys, actions, count))

    async def remove(self, keys: bytes, count: int) -> int:
        return await self.lanes.change(lambda: self.driver.remove_encoded(keys, count))

    async def dump(self) -> AsyncIterator[tuple[bytes, bytes, int]]:
        chunks = await self.lanes.scan(self.driver.dump_encoded)
        while (chunk := await self.lanes.scan(lambda: next(chunks, None))) is not None:
            yield chunk

    async def counters(self, keys: bytes, count: int) -> tuple[bytes, bytes, int]:
        found = await self.lanes.change(lambda: self.driver.counters(list(iter_keys(keys))))
        return (
            b"".join(encode_key(key) for key in found),
            b"".join(encode_counters(counters) for counters in found.values()),
            len(found),
        )

    async def stats(self) -> TableStats:
        def read() -> tuple[GlobalCounters, int]:
            return self.driver.global_counters(), self.driver.table_entries()

        counters, entries = await self.lanes.scan(read)
        return TableStats(counters, entries, self.health.table_capacity)


class _DiscoveryProtocol(asyncio.DatagramProtocol):
    def __init__(self, handle: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.handle = handle

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        self.handle(data, (str(addr[0]), int(addr[1])))


def _udp_socket(address: str, port: int, *, shared: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if shared:
            # Every agent on a broadcast domain listens on the same broadcast address.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind((address, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Agent:
    """One fast-path replica's agent. `run` serves until the stop event is set."""

    def __init__(
        self,
        config: UnitConfig,
        driver: FastPathDriver,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config
        self.settings = config.sdk
        self.driver = driver
        self.epoch = secrets.token_hex(8)
        self.punt_cp, self.punt_address = config.addressed_cp(self.settings.punt_cp)
        self.mgmt_cp = config.connection_points.get(self.settings.mgmt_cp)
        data_names = {cp.name for cp in config.data_cps()}
        if not data_names:
            raise ConfigError(f"unit {config.unit} has no data connection points")
        if unknown := sorted(set(self.settings.vrfs) - data_names):
            raise ConfigError(
                f"vrfs names {', '.join(unknown)}, not a data connection point of unit "
                f"{config.unit} (data connection points: {', '.join(sorted(data_names))})"
            )
        if self.settings.slowpath_address is None and self._broadcast_address() is None:
            raise ConfigError(
                f"the punt address {self.punt_address} has no broadcast address; "
                "set the slow path's address (sdk.slowpathAddress)"
            )
        self.interfaces = [
            _interface(cp, self.settings.vrfs.get(cp.name, 0))
            for _, cp in sorted(config.connection_points.items())
        ]
        self.data_interfaces = [i for i in self.interfaces if i.role in data_names]
        self.lanes = DriverLanes(driver)
        self.table = DriverTable(
            driver, links.IfindexMap({i.name: i.ifindex for i in self.interfaces}), self.lanes
        )
        self.table_lock = asyncio.Lock()
        self.server = RulePushServer(self.table, lock=self.table_lock)
        self.slowpath: discovery.Announce | None = None
        self.punt: PuntTarget | None = None
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.collector = SnapshotCollector()
        self.registry.register(self.collector)
        self.watch = LoopWatch(max(5.0, 5 * self.settings.heartbeat_interval))
        self.metrics: MetricsServer | None = None
        self.expired = 0
        self.aging_rounds = 0
        self.datapath: dict[str, int] = {}
        """the datapath's counters at the last metrics refresh"""
        self.invalid_datagrams = 0
        self.foreign_datagrams = 0
        self._rates = RateMeter()
        self._labels = {
            "vnf_instance_id": config.vnf_instance_id,
            "replica": str(config.replica_index),
        }
        self._unicast: asyncio.DatagramTransport | None = None
        self._broadcast: asyncio.DatagramTransport | None = None
        self._mac_retry: asyncio.TimerHandle | None = None
        self._arming: asyncio.Task[None] | None = None
        self._observing: asyncio.Task[None] | None = None
        self._started = False

    # lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._start()
            await self._tick_until(stop)
        finally:
            await self._shutdown()

    async def _start(self) -> None:
        if self.settings.ip_forward:
            links.enable_ip_forward()
        self._started = True  # from here on close() undoes whatever start() did
        await self.lanes.change(lambda: self.driver.start(self.data_interfaces, None))
        self.table.health = await self.lanes.scan(self.driver.health)
        punt_ip = str(self.punt_address.ip)
        await self.server.start(punt_ip, self.settings.rulepush_port)
        loop = asyncio.get_running_loop()
        unicast = _udp_socket(punt_ip, self.settings.discovery_port)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _DiscoveryProtocol(self._on_datagram), sock=unicast
        )
        self._unicast = transport
        broadcast = self._broadcast_address()
        if self.settings.slowpath_address is None and broadcast is not None:
            listener = _udp_socket(str(broadcast), self.settings.discovery_port, shared=True)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _DiscoveryProtocol(self._on_datagram), sock=listener
            )
            self._broadcast = transport
        host = str(self.mgmt_cp.address.ip) if self.mgmt_cp and self.mgmt_cp.address else None
        if host is None:
            log.warning("no %s address: metrics only on 127.0.0.1", self.settings.mgmt_cp)
        metrics = MetricsServer(
            host or "127.0.0.1", self.settings.metrics_port, self.registry, self.health
        )
        metrics.start()
        self.metrics = metrics
        await self._observe()
        log.info(
            "fast path %d (epoch %s) up: data %s, punt %s, rule-push port %d",
            self.config.replica_index,
            self.epoch,
            ", ".join(i.name for i in self.data_interfaces),
            self.punt_address,
            self.server.port,
        )

    async def _shutdown(self) -> None:
        if self._mac_retry is not None:
            self._mac_retry.cancel()
        for transport in (self._unicast, self._broadcast):
            if transport is not None:
                transport.close()
        await self.server.close()
        if self.metrics is not None:
            self.metrics.close()
        for task in (self._arming, self._observing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            if self._started:
                try:
                    await self.lanes.change(self.driver.close)
                except DriverError as exc:
                    log.error("closing the datapath: %s", exc)
                self._started = False
        finally:
            self.lanes.close()
        log.info("fast path %d stopped", self.config.replica_index)

    async def _tick_until(self, stop: asyncio.Event) -> None:
        aging = asyncio.create_task(self._age_until(stop), name="aging")
        try:
            await self._heartbeat_until(stop)
        finally:
            aging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await aging

    async def _heartbeat_until(self, stop: asyncio.Event) -> None:
        """REGISTER, the punt target and a metrics refresh every interval; none of them
        waits for the driver (a refresh still running when the next is due is skipped)."""
        interval = self.settings.heartbeat_interval
        while not stop.is_set():
            self.watch.beat()
            self._register()
            self._program_punt()
            if self._observing is None or self._observing.done():
                self._observing = self._spawn(self._observe(), "observe")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def _age_until(self, stop: asyncio.Event) -> None:
        interval = self.settings.heartbeat_interval
        while not stop.is_set():
            try:
                await self._age()
            except DriverError as exc:
                log.error("datapath: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    @staticmethod
    def _spawn(work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run `work` on its own; a failure is logged (the next heartbeat tries again)."""

        async def logged() -> None:
            try:
                await work
            except DriverError as exc:
                log.error("datapath: %s", exc)
            except Exception:  # a bug must not silence the heartbeat's later attempts
                log.exception("fast path %s failed", name)

        return asyncio.create_task(logged(), name=name)

    # discovery

    def _broadcast_address(self) -> IPv4Address | None:
        network = self.punt_address.network
        if network.prefixlen >= 31:
            return None
        return network.broadcast_address

    def registration(self) -> discovery.Register:
        return discovery.Register(
            vnf_instance_id=self.config.vnf_instance_id,
            instance=self.config.replica_index,
            epoch=self.epoch,
            punt_address=self.punt_address.ip,
            rulepush_port=self.server.port,
            reinject_port=self.settings.reinject_port,
            datagram_installs=self.driver.datagram_installs,
            interfaces=tuple(discovery.InterfaceInfo.of(i) for i in self.interfaces),
        )

    def _slowpath_control(self) -> tuple[str, int] | None:
        if self.slowpath is not None:
            return str(self.slowpath.punt_address), self.slowpath.control_port
        if self.settings.slowpath_address is not None:
            return str(self.settings.slowpath_address), self.settings.control_port
        return None

    def _register(self) -> None:
        target = self._slowpath_control()
        if target is None or self._unicast is None:
            return
        self._unicast.sendto(discovery.encode(self.registration()), target)

    def _on_datagram(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            message = discovery.decode(data)
        except discovery.DiscoveryError as exc:
            self.invalid_datagrams += 1
            log.debug("ignoring a datagram from %s:%d: %s", *source, exc)
            return
        if not isinstance(message, discovery.Announce):
            return  # another agent's REGISTER seen on the broadcast address
        if message.vnf_instance_id != self.config.vnf_instance_id:
            self.foreign_datagrams += 1
            return
        explicit = self.settings.slowpath_address
        if explicit is not None and message.punt_address != explicit:
            self.foreign_datagrams += 1
            return
        if message == self.slowpath:
            return
        log.info(
            "slow path %s at %s (punt port %d, control port %d)",
            message.slowpath_id,
            message.punt_address,
            message.punt_port,
            message.control_port,
        )
        self.slowpath = message
        self._register()
        self._program_punt()

    def _program_punt(self) -> None:
        """Point the datapath at the slow path once its MAC is known (in a task: the
        driver's start runs in its lane); a failure is tried again next heartbeat."""
        announce = self.slowpath
        if announce is None or (self._arming is not None and not self._arming.done()):
            return
        mac = links.neighbour_mac(announce.punt_address, self.punt_cp.ifname)
        if mac is None:
            # Our REGISTER makes the kernel resolve it; look again shortly.
            if self._mac_retry is None:
                self._mac_retry = asyncio.get_running_loop().call_later(
                    _MAC_RETRY, self._retry_punt
                )
            return
        target = PuntTarget(
            interface=self.punt_cp.ifname,
            local_address=str(self.punt_address.ip),
            local_port=self.settings.reinject_port,
            slowpath_address=str(announce.punt_address),
            slowpath_port=announce.punt_port,
            slowpath_mac=mac,
            reinject_port=self.settings.reinject_port,
            instance=self.config.replica_index,
        )
        if target == self.punt:
            return
        self._arming = self._spawn(self._arm_punt(target), "punt")

    async def _arm_punt(self, target: PuntTarget) -> None:
        await self.lanes.change(lambda: self.driver.start(self.data_interfaces, target))
        self.punt = target
        log.info(
            "punting misses to %s:%d (%s)",
            target.slowpath_address,
            target.slowpath_port,
            target.slowpath_mac,
        )

    def _retry_punt(self) -> None:
        self._mac_retry = None
        self._program_punt()

    # aging and observation

    async def _age(self) -> None:
        """Age the table out in slices: the lock (which DUMP holds) is taken per slice,
        and the records go to the slow path as the driver encoded them."""
        now = time.monotonic_ns()
        self.aging_rounds += 1
        capacity = max(self.table.health.table_capacity, 1)
        for _ in range(capacity // AGE_SLICE + 2):  # each slice removes what it returns
            async with self.table_lock:
                keys, actions, count = await self.lanes.scan(
                    lambda: self.driver.age_out_encoded(now, AGE_SLICE)
                )
            if count:
                self.expired += count
                self.server.send_expired(keys, actions, count)
            if count < AGE_SLICE:
                return

    def _read_datapath(self) -> tuple[Health, dict[str, int]]:
        """In the scan lane: health (with the table size) and every datapath counter."""
        return self.driver.health(), self.driver.datapath_counters()

    async def _observe(self) -> None:
        health, datapath = await self.lanes.scan(self._read_datapath)
        self.table.health = health
        self.datapath = datapath
        counts = {name: datapath.get(name, 0) for name in _DATAPATH_COUNTERS}
        counts |= {
            "rules_installed": self.server.installed + datapath.get("datagram_rules", 0),
            "rules_removed": self.server.removed,
            "rules_expired": self.expired,
            "expired_unreported": self.server.expired_dropped,
            "rulepush_requests": self.server.requests,
            "aging_rounds": self.aging_rounds,
        }
        rates = self._rates.sample({name: counts[name] for _, name, _, _ in _RATES})
        labels = self._labels
        families: list[Metric] = [
            counter(f"vnf_fastpath_{name}", help_text, counts[name], labels)
            for name, help_text in _COUNTER_HELP.items()
        ]
        details = CounterMetricFamily(
            "vnf_fastpath_datapath_counter",
            "datapath counters beyond the vnf_fastpath_* ones (e.g. no_neighbour, "
            "ttl_exceeded, punt_too_big), by name",
            labels=[*labels, "counter"],
        )
        for name, total in sorted(datapath.items()):
            if name not in _COUNTER_HELP:
                details.add_metric([*labels.values(), name], total)
        families.append(details)
        families += [
            gauge(f"vnf_fastpath_{name}", help_text, scale * rates.get(source, 0.0), labels)
            for name, source, scale, help_text in _RATES
        ]
        occupancy = health.table_entries / health.table_capacity if health.table_capacity else 0.0
        for name, help_text, value in (
            ("active_flows", "rules in the flow table", health.table_entries),
            ("table_capacity", "flow table capacity in rules", health.table_capacity),
            ("table_occupancy_ratio", "share of the flow table in use", occupancy),
            ("slowpath_connected", "1 while a slow path holds the rule-push link",
             float(self.server.connected)),
            ("healthy", "1 while the datapath reports healthy", float(health.healthy)),
        ):  # fmt: skip
            families.append(gauge(f"vnf_fastpath_{name}", help_text, value, labels))
        self.collector.publish(families)

    def health(self) -> HealthReport:
        """For /healthz (called from the metrics thread: reads snapshots only)."""
        health = self.table.health
        healthy = health.healthy and not self.watch.stalled()
        detail = health.detail
        if self.watch.stalled():
            detail = f"event loop silent for {self.watch.silence():.1f} s"
        return HealthReport(
            healthy,
            detail,
            {
                "instance": self.config.replica_index,
                "epoch": self.epoch,
                "tableEntries": health.table_entries,
                "tableCapacity": health.table_capacity,
                "interfaces": dict(health.interfaces),
                "slowpathConnected": self.server.connected,
                "puntProgrammed": self.punt is not None,
            },
        )


def _interface(cp: ConnectionPoint, vrf: int) -> Interface:
    return Interface(
        name=cp.ifname,
        ifindex=links.ifindex(cp.ifname),
        mac=links.mac(cp.ifname),
        address=str(cp.address) if cp.address else None,
        role=cp.name,
        vrf=vrf,
    )


async def serve(agent: Agent, signals: Sequence[signal.Signals] = STOP_SIGNALS) -> None:
    """Run `agent` until one of `signals` arrives."""
    await run_until_signalled(agent.run, signals)


def main(config_model: type[UnitConfig] = UnitConfig) -> None:
    """Entry point of a fast-path unit's process."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = load_or_exit(config_model)
    try:
        driver = make_driver(config)
        agent = Agent(config, driver)
    except ConfigError as exc:
        fail(str(exc))
    except (DriverError, links.LinkError, ImportError) as exc:
        log.error("cannot start the fast path: %s", exc)
        raise SystemExit(EXIT_FAILURE) from None
    try:
        asyncio.run(serve(agent))
    except ConfigError as exc:
        fail(str(exc))
    except (DriverError, links.LinkError, OSError) as exc:
        log.error("fast path failed: %s", exc)
        raise SystemExit(EXIT_FAILURE) from None


if __name__ == "__main__":
    main()
