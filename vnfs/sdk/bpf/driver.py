"""`BpfDriver`: the tc-BPF datapath (flowtable.c) behind the FastPathDriver interface.

The driver loads the program once, attaches it to the ingress of every data
interface and of the punt interface, and keeps the flow table (a BPF hash map
whose records are exactly `vnfs.sdk.encoding`'s layout) in step with what the
agent asks.

It pins the network namespace of the thread that first calls start(): tc
hooks, interface queries and the forwarding check always act there, whichever thread calls
later (bpf_fib_lookup in the program uses the namespace of the interfaces, so
routing is the unit's own). IPv4 forwarding must be on in that namespace (the
agent switches it on): bpf_fib_lookup refuses to route for an interface that
does not forward, so every rule would fail to forward; health() says so.

The punt link must carry a data packet plus 36 bytes of outer headers: give it
an MTU at least 36 larger than the data interfaces' (misses that do not fit
are dropped and counted as punt_too_big). The driver switches transmit
checksum offload off on the punt interface, so a punted packet whose L4
checksum a local sender left to offload (CHECKSUM_PARTIAL, common on veth)
gets it filled in before it leaves; the original setting comes back on close().

Table maintenance may run on a second thread (`concurrent_maintenance`): BPF
map operations are safe from several threads at once, so installs and
removals go on while a scan walks a big table; the driver's own state takes
short locks (its interface records, the scan maps one scan uses at a time,
the cached table size).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

from vnfs.sdk.bpf import build, layout, netdev, netns
from vnfs.sdk.bpf.loader import BpfObject, TcFilter
from vnfs.sdk.bpf.syscall import Buffer, Map, possible_cpus, prog_id, test_run
from vnfs.sdk.driver import (
    DriverError,
    FastPathDriver,
    GlobalCounters,
    Health,
    Interface,
    PuntTarget,
)
from vnfs.sdk.encoding import (
    ACTION_SIZE,
    COUNTERS_OFFSET,
    KEY_SIZE,
    LAST_SEEN_OFFSET,
    EncodingError,
    encode_keys,
    encode_rules,
    iter_rules,
)
from vnfs.sdk.flow import ExpiredRule, FlowKey, FlowRule, RuleCounters

log = logging.getLogger(__name__)

MAX_TABLE_SIZE = 1 << 26
BATCH_CHUNK = 8192
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
PUNT_ROLE = "punt"

_COUNTERS = struct.Struct("=QQQI")
"""packets, bytes, last_seen_ns, tcp_flags_seen at COUNTERS_OFFSET of a flow_action"""
_ZERO_KEY = layout.IFINDEX.pack(0)


class BpfDriver(FastPathDriver):
    """The tc-BPF fast path of the namespace the agent runs in."""

    name = "bpf"
    concurrent_maintenance = True
    datagram_installs = True

    def __init__(self, table_size: int = 1 << 20, object_path: Path | None = None) -> None:
        if not 1 <= table_size <= MAX_TABLE_SIZE:
            raise DriverError(f"table_size {table_size} is outside 1..{MAX_TABLE_SIZE}")
        self.table_size = table_size
        self.object_path = object_path or build.OBJECT
        if not self.object_path.exists():
            raise DriverError(
                f"the datapath program {self.object_path} is not built: run make bpf "
                "(or python -m vnfs.sdk.bpf.build)"
            )
        if object_path is None and build.is_stale(self.object_path):
            log.warning("%s is older than its sources: run make bpf", self.object_path)
        self._netns: int | None = None
        self._object: BpfObject | None = None
        self._flows: Map | None = None
        self._iface_cfg: Map | None = None
        self._punt_cfg: Map | None = None
        self._counters: Map | None = None
        self._scan_state: Map | None = None
        self._scan_keys: Map | None = None
        self._scan_values: Map | None = None
        self._scan_fd = -1
        self._prog_fd = -1
        self.program_id = 0
        """the kernel's id of the loaded program (0 before start)"""
        self._cpus = possible_cpus()
        self._filters: dict[str, TcFilter] = {}
        self._interfaces: dict[str, Interface] = {}
        self._punt: PuntTarget | None = None
        self._punt_checksum: tuple[str, bool] | None = None
        self._warnings: list[str] = []
        self._state = threading.RLock()
        """held by start, close, health and interfaces (the interface records)"""
        self._scanning = threading.Lock()
        """one table scan at a time: they share the scan maps"""
        self._count = threading.Lock()
        self._entries: int | None = None
        self._entries_added = 0
        """the datapath's datagram_added counter when _entries was counted"""
        self._generation = 0
        """bumped by every install and removal: a scan's count is cached only if no
        change ran while it did"""

    # --- lifecycle --------------------------------------------------------------

    def start(self, interfaces: Sequence[Interface], punt: PuntTarget | None) -> None:
        with self._state:
            self._start(interfaces, punt)

    def _start(self, interfaces: Sequence[Interface], punt: PuntTarget | None) -> None:
        if self._netns is None:
            self._netns = netns.open_current()
        with netns.entered(self._netns):
            if self._object is None:
                self._load()
            for interface in interfaces:
                if not 0 <= interface.vrf <= 0xFFFF:
                    raise DriverError(f"{interface.name}: vrf {interface.vrf} is outside 0..65535")
            wanted = {interface.name: interface.role for interface in interfaces}
            vrfs = {interface.name: interface.vrf for interface in interfaces}
            if punt is not None and punt.interface not in wanted:
                wanted[punt.interface] = PUNT_ROLE
            links = {name: netdev.link_info(name) for name in wanted}
            self._warnings = []
            # Punt configuration first: the program tells the punt link by its ifindex.
            if punt is None:
                self._require(self._punt_cfg).update(_ZERO_KEY, layout.DISABLED_PUNT_CONFIG)
            else:
                self._configure_punt(punt, links)
            for name in [name for name in self._filters if name not in wanted]:
                self._filters.pop(name).detach()
                gone = self._interfaces.pop(name, None)
                if gone is not None:
                    self._require(self._iface_cfg).delete(layout.IFINDEX.pack(gone.ifindex))
            self._restore_punt_checksum(keep=punt.interface if punt else None)
            for name, link in links.items():
                vrf = vrfs.get(name, 0)
                self._interfaces[name] = Interface(
                    name, link.ifindex, link.mac, link.address, wanted[name], vrf
                )
                self._require(self._iface_cfg).update(
                    layout.IFINDEX.pack(link.ifindex), layout.IFACE_CONFIG.pack(vrf, 0, 0)
                )
                current = self._filters.get(name)
                if current is None or current.ifindex != link.ifindex:
                    if current is not None:
                        current.detach()
                    current = self._filters[name] = TcFilter(link.ifindex, name)
                current.attach(self._prog_fd)
            self._punt = punt
            if punt is not None:
                self._check_punt_mtu(punt, links)
            if not self._forwarding():
                warning = "IPv4 forwarding is off in this namespace: rules cannot forward"
                log.warning("%s", warning)
                self._warnings.append(warning)

    def _load(self) -> None:
        obj = BpfObject(self.object_path, {"flows": self.table_size})
        try:
            maps = {name: Map(obj.map_fd(name), name) for name in layout.MAPS}
            scan_fd = obj.program_fd(layout.SCAN_PROGRAM)
            prog_fd = obj.program_fd(layout.PROGRAM)
            program_id = prog_id(prog_fd)
            flows = maps["flows"]
            if flows.key_size != KEY_SIZE or flows.value_size != ACTION_SIZE:
                raise DriverError(
                    f"{self.object_path}: flow records are {flows.key_size} + "
                    f"{flows.value_size} bytes, vnfs.sdk.encoding says {KEY_SIZE} + "
                    f"{ACTION_SIZE}: rebuild it (make bpf)"
                )
        except BaseException:
            obj.close()
            raise
        self._flows, self._iface_cfg, self._punt_cfg = flows, maps["iface_cfg"], maps["punt_cfg"]
        self._counters, self._scan_state = maps["counters"], maps["scan_state"]
        self._scan_keys, self._scan_values = maps["scan_keys"], maps["scan_values"]
        self._scan_fd, self._prog_fd, self.program_id = scan_fd, prog_fd, program_id
        self._object = obj

    @staticmethod
    def _forwarding() -> bool:
        # /proc/sys/net answers for the calling thread's namespace.
        try:
            return IP_FORWARD.read_text().strip() == "1"
        except OSError:
            return False

    def _configure_punt(self, punt: PuntTarget, links: dict[str, netdev.LinkInfo]) -> None:
        link = links[punt.interface]
        try:
            record = layout.encode_punt_config(
                ifindex=link.ifindex,
                local_address=punt.local_address,
                local_port=punt.local_port,
                slowpath_address=punt.slowpath_address,
                slowpath_port=punt.slowpath_port,
                reinject_port=punt.reinject_port,
                instance=punt.instance,
                local_mac=link.mac,
                slowpath_mac=punt.slowpath_mac,
            )
        except ValueError as exc:
            raise DriverError(f"punt target {punt}: {exc}") from None
        if self._punt_checksum is None or self._punt_checksum[0] != punt.interface:
            self._restore_punt_checksum(keep=None)
            self._punt_checksum = (punt.interface, netdev.tx_checksum(punt.interface))
        netdev.set_tx_checksum(punt.interface, False)
        self._require(self._punt_cfg).update(_ZERO_KEY, record)

    def _restore_punt_checksum(self, keep: str | None) -> None:
        if self._punt_checksum is None or self._punt_checksum[0] == keep:
            return
        name, enabled = self._punt_checksum
        self._punt_checksum = None
        if enabled:
            try:
                netdev.set_tx_checksum(name, True)
            except DriverError as exc:  # the interface may be gone with its namespace
                log.debug("punt interface %s: %s", name, exc)

    def _check_punt_mtu(self, punt: PuntTarget, links: dict[str, netdev.LinkInfo]) -> None:
        data_mtu = max(
            (link.mtu for name, link in links.items() if name != punt.interface), default=0
        )
        punt_mtu = links[punt.interface].mtu
        if punt_mtu < data_mtu + layout.OUTER_LEN:
            warning = (
                f"punt interface {punt.interface} MTU {punt_mtu} < data MTU {data_mtu} + "
                f"{layout.OUTER_LEN}: full-size misses cannot be punted"
            )
            log.warning("%s", warning)
            self._warnings.append(warning)

    def close(self) -> None:
        with self._state, self._scanning:
            self._close()

    def _close(self) -> None:
        errors: list[str] = []
        if self._netns is not None:
            try:
                with netns.entered(self._netns):
                    for name in list(self._filters):
                        try:
                            self._filters.pop(name).detach()
                        except DriverError as exc:
                            errors.append(str(exc))
                    self._restore_punt_checksum(keep=None)
            except DriverError as exc:  # the namespace itself cannot be entered
                errors.append(str(exc))
            os.close(self._netns)
            self._netns = None
        self._filters.clear()
        self._interfaces.clear()
        if self._object is not None:
            self._object.close()
        self._object = None
        self._flows = self._iface_cfg = self._punt_cfg = self._counters = None
        self._scan_state = self._scan_keys = self._scan_values = None
        self._scan_fd = -1
        self._prog_fd = -1
        self.program_id = 0
        self._punt = None
        self._table_changed()
        if errors:
            raise DriverError("; ".join(errors))

    # --- rules ------------------------------------------------------------------

    def install(self, rules: Sequence[FlowRule]) -> int:
        with self._state:
            ifindex_of = {name: interface.ifindex for name, interface in self._interfaces.items()}
        try:
            keys, actions, count = encode_rules(rules, ifindex_of)
        except EncodingError as exc:
            raise DriverError(str(exc)) from None
        return self.install_encoded(keys, actions, count)

    def install_encoded(self, keys: Buffer, actions: Buffer, count: int) -> int:
        """Hand the records to the map as they are, stamping last_seen_ns = now so a
        rule that never sees a packet still ages out. A rule replaced this way starts
        its counters again from what the record carries (zero from an encoder)."""
        flows = self._require(self._flows)
        key_bytes, action_bytes = memoryview(keys).nbytes, memoryview(actions).nbytes
        if key_bytes != count * KEY_SIZE or action_bytes != count * ACTION_SIZE:
            raise DriverError(
                f"batch says {count} rules but carries {key_bytes} bytes of keys and "
                f"{action_bytes} bytes of actions"
            )
        if count == 0:
            return 0
        stamped = bytearray(actions)
        words = memoryview(stamped).cast("Q")
        stride = ACTION_SIZE // 8
        words[LAST_SEEN_OFFSET // 8 :: stride] = array("Q", [time.monotonic_ns()]) * count
        try:
            return flows.update_batch(keys, stamped, count, BATCH_CHUNK)
        finally:
            self._table_changed()

    def remove(self, keys: Sequence[FlowKey]) -> int:
        if not keys:
            return 0
        return self.remove_encoded(encode_keys(keys), len(keys))

    def remove_encoded(self, keys: Buffer, count: int) -> int:
        """Delete packed keys (absent ones are skipped); returns how many were deleted."""
        try:
            return self._require(self._flows).delete_batch(keys, count, BATCH_CHUNK)
        finally:
            self._table_changed()

    def counters(self, keys: Sequence[FlowKey]) -> dict[FlowKey, RuleCounters]:
        flows = self._require(self._flows)
        found: dict[FlowKey, RuleCounters] = {}
        for key in keys:
            value = flows.lookup(encode_keys([key]))
            if value is not None:
                found[key] = RuleCounters(*_COUNTERS.unpack_from(value, COUNTERS_OFFSET))
        return found

    def dump(self) -> Iterator[tuple[FlowRule, RuleCounters]]:
        for keys, values, count in self.dump_encoded():
            yield from self._decode(keys, values, count)

    def dump_encoded(self) -> Iterator[tuple[bytes, bytes, int]]:
        """The table as (keys, actions with their counters, count) chunks, undecoded:
        what a DUMP reply carries."""
        yield from self._require(self._flows).dump()

    def age_out(self, now_ns: int) -> list[ExpiredRule]:
        keys, values, count = self.age_out_encoded(now_ns)
        return [ExpiredRule(rule, counters) for rule, counters in self._decode(keys, values, count)]

    def age_out_encoded(self, now_ns: int, limit: int | None = None) -> tuple[bytes, bytes, int]:
        """Remove the rules idle past their timeout at `now_ns`; return their records
        (keys, actions with final counters, count) undecoded, as EXPIRED carries them.
        With `limit`, at most that many: the rest stay for the next call.

        The datapath's scan program (fp_scan) picks them in the kernel, so no record
        that stays is copied out; they are deleted in batches of SCAN_SLOTS. Every
        scan walks the whole table (a million entries take a few hundred ms)."""
        flows = self._require(self._flows)
        budget = flows.max_entries if limit is None else max(limit, 0)
        keys: list[bytes] = []
        values: list[bytes] = []
        taken = deleted = 0
        entries: int | None = None
        generation, known, added = self._known_entries()
        if known == 0:
            return b"", b"", 0  # known empty: an idle fast path does not walk its table
        with self._scanning:
            # Every round deletes what it hands over, so the loop is bounded.
            for _ in range(flows.max_entries // layout.SCAN_SLOTS + 2):
                wanted = min(layout.SCAN_SLOTS, budget - taken)
                present, expired, overflow = self._scan(now_ns, wanted)
                entries = present if entries is None else entries
                if not expired:
                    break
                keys.append(self._require(self._scan_keys).read_array(expired))
                values.append(self._require(self._scan_values).read_array(expired))
                deleted += flows.delete_batch(keys[-1], expired, BATCH_CHUNK)
                taken += expired
                if not overflow or taken >= budget:
                    break
        # The datapath never removes flows itself and counts the ones it adds (INSTALL
        # datagrams): the count stays exact until the next install or remove.
        if entries is not None:
            self._cache_entries(generation, entries - deleted, added)
        return b"".join(keys), b"".join(values), taken

    def _decode(
        self, keys: bytes, values: bytes, count: int
    ) -> Iterator[tuple[FlowRule, RuleCounters]]:
        names = self._names()
        for index in range(count):
            key = keys[index * KEY_SIZE : (index + 1) * KEY_SIZE]
            value = values[index * ACTION_SIZE : (index + 1) * ACTION_SIZE]
            try:
                yield from iter_rules(key, value, names)
            except EncodingError as exc:
                log.error("flow table record %s does not decode: %s", key.hex(), exc)

    def _scan(self, now_ns: int, max_out: int) -> tuple[int, int, int]:
        """Run fp_scan: (flows in the table, expired rules handed over, expired left over)."""
        state = self._require(self._scan_state)
        state.update(_ZERO_KEY, layout.SCAN_STATE.pack(max(now_ns, 0), max_out, 0, 0, 0))
        test_run(self._scan_fd, layout.SCAN_INPUT, "table scan")
        record = state.lookup(_ZERO_KEY)
        if record is None:
            raise DriverError("the table scan left no result")
        _, _, expired, entries, overflow = layout.SCAN_STATE.unpack(record)
        return entries, expired, overflow

    # --- state ------------------------------------------------------------------

    def datapath_counters(self) -> dict[str, int]:
        """Every datapath counter (GlobalCounters' and the details), summed over CPUs."""
        size = (layout.COUNTERS.size + 7) // 8 * 8
        per_cpu = self._require(self._counters).lookup(_ZERO_KEY, size * self._cpus)
        return layout.sum_counters(per_cpu or b"")

    def global_counters(self) -> GlobalCounters:
        totals = self.datapath_counters()
        return GlobalCounters(**{name: totals[name] for name in layout.GLOBAL_COUNTERS})

    def table_entries(self) -> int:
        """Flows in the table: counted by the datapath's scan (no records copied out),
        or known from the last scan if nothing was installed or removed through the
        driver since, plus the flows the datapath added from INSTALL datagrams (one
        added while a scan runs may be counted twice until the next scan)."""
        generation, known, added = self._known_entries()
        if known is not None:
            return known
        with self._scanning:
            entries = self._scan(0, 0)[0]
        self._cache_entries(generation, entries, added)
        return entries

    def _known_entries(self) -> tuple[int, int | None, int]:
        """(generation, flows in the table if known without a scan, datagram_added now)."""
        added = self.datapath_counters()["datagram_added"]
        with self._count:
            generation, cached, base = self._generation, self._entries, self._entries_added
        return generation, (None if cached is None else cached + added - base), added

    def _cache_entries(self, generation: int, entries: int, added: int) -> None:
        with self._count:
            if self._generation == generation:
                self._entries = entries
                self._entries_added = added

    def _table_changed(self) -> None:
        with self._count:
            self._generation += 1
            self._entries = None

    def health(self) -> Health:
        with self._state:
            if self._object is None or self._netns is None or self._flows is None:
                return Health(healthy=False, detail="not started", table_capacity=self.table_size)
            capacity = self._flows.max_entries
            problems, states, forwarding = self._link_health()
        entries = self.table_entries()
        return Health(
            healthy=all(states.values()) and bool(states) and forwarding,
            detail="; ".join(problems),
            table_entries=entries,
            table_capacity=capacity,
            interfaces=states,
        )

    def _link_health(self) -> tuple[list[str], dict[str, bool], bool]:
        assert self._netns is not None
        problems = [w for w in self._warnings if not w.startswith("IPv4 forwarding")]
        states: dict[str, bool] = {}
        with netns.entered(self._netns):
            forwarding = self._forwarding()
            if not forwarding:
                problems.append("IPv4 forwarding is off in this namespace: rules cannot forward")
            for name, tc_filter in self._filters.items():
                try:
                    up = netdev.link_info(name).up
                except DriverError:
                    up = False
                attached = tc_filter.query() == self.program_id
                states[name] = up and attached
                if not attached:
                    problems.append(f"{name}: program not attached")
                elif not up:
                    problems.append(f"{name}: link down")
        if self._punt is None:
            problems.append("no punt target: misses are dropped")
        return problems, states, forwarding

    def interfaces(self) -> list[Interface]:
        with self._state:
            return self._refreshed_interfaces()

    def _refreshed_interfaces(self) -> list[Interface]:
        if self._netns is None:
            return []
        refreshed: list[Interface] = []
        with netns.entered(self._netns):
            for interface in self._interfaces.values():
                try:
                    link = netdev.link_info(interface.name)
                except DriverError:
                    refreshed.append(interface)
                    continue
                refreshed.append(
                    Interface(
                        interface.name,
                        link.ifindex,
                        link.mac,
                        link.address,
                        interface.role,
                        interface.vrf,
                    )
                )
        return refreshed

    def _names(self) -> dict[int, str]:
        with self._state:
            return {interface.ifindex: name for name, interface in self._interfaces.items()}

    @staticmethod
    def _require(value: Map | None) -> Map:
        if value is None:
            raise DriverError("the bpf datapath is not started")
        return value
