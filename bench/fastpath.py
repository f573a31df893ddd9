"""VNF SDK fast-path benchmark (not a test): rule install rate, flow setup latency and
forwarding throughput of the tc-BPF fast path, with the real agent and slow path.

1. Install rate. A real agent (`python -m vnfs.sdk.agent`, BpfDriver) runs in
   its namespace; a separate process in the slow-path namespace
   (bench/fastpath_push.py) pushes pre-encoded INSTALL batches of each size
   over the rule-push TCP connection, up to max_inflight_batches unacknowledged
   like a slow path, `--rules` fresh keys per run, then removes them again.
   The same batches go through `BpfDriver.install_encoded` / `remove_encoded`
   in this process (no protocol, no second process) for reference.
2. Flow setup latency. Agent plus slow path (bench/fastpath_slowpath.py, a
   forwarding VNF). The client sends the first UDP datagram of a new flow (a
   new source port each, paced at `--flow-rate` per second) and, half a pacing
   interval later, a second one on the same flow (the hit path); a receiver
   process in the server namespace (bench/fastpath_sink.py) stamps arrivals.
   Both sides read CLOCK_MONOTONIC, so arrival - send is the one-way latency,
   wake-up of the receiving process included. A second datagram counts as a
   hit only if it left after the first arrived. The same probes through plain
   kernel routing, before any agent starts, give the baseline; the fast path
   is measured with the default flow table capacity (1M) and with the least
   capacity that holds the probe flows, whose per-heartbeat scan is short;
   the slow path sends each new flow's rules in an INSTALL datagram just
   ahead of its packet (the default). A last phase has it push them over the
   rule-push connection and wait for the ACK instead (the path a datapath
   without INSTALL datagrams takes).
3. Forwarding. Client -- middle -- server namespaces on veths, the middle one
   being a plain Linux bridge, plain kernel routing (no program), the fast path
   with the rules of the measured flows only (installed by the slow path on
   their first packet), and the fast path with `--rules` other rules loaded
   (pushed before the slow path starts, so it restores them from the agent's
   table, which is timed too). TCP: one iperf3 stream, veth offloads as
   created (TSO on). Small packets: trafgen sends 64-byte UDP frames (60 + FCS)
   of one flow from the client as fast as it can, with checksum offload, TSO
   and GRO off on every data veth; the rate is what arrives at the server's
   veth. Generator, forwarding and receiver share the machine's cores.

Runs as root; needs iperf3 and trafgen (Debian packages iperf3 and netsniff-ng)
for part 3. Everything lives in namespaces named bfp*, removed at the end, also
on failure or Ctrl-C.

    sudo .venv/bin/python bench/fastpath.py [--runs 3] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.fastpath_lab import (  # noqa: E402
    CLIENT,
    FP_PUNT,
    SERVER,
    Lab,
    Process,
    standalone_driver,
    wait_for,
)
from bench.fastpath_push import batches, encoded_rules  # noqa: E402
from bench.fastpath_sink import PROBE, READY  # noqa: E402
from vnfs.sdk.bpf import build  # noqa: E402
from vnfs.sdk.bpf.driver import BpfDriver  # noqa: E402

BENCH = Path(__file__).resolve().parent
BATCH_SIZES = (1000, 4000, 16384)
TABLE_SIZE = 1 << 20
"""the agent's default: holds 1M rules plus the bench's own flows"""
TOOLS = {"iperf3": "iperf3", "trafgen": "netsniff-ng"}
PROBE_PORT = 5001
IPERF_PORT = 5201
UDP_PORT = 5002
UDP_SPORT = 40001
PROBE_SPORTS = 20000
"""first client source port of the latency probes; one port per flow"""
WARMUP_FLOWS = 20
FIRST, SECOND = 0, 1
"""probe kinds: 2 x phase + packet (the first of a new flow, or the second one)"""
SMALL_TABLE = 4096
"""the least capacity of the small-table latency phase (it must hold every probe flow)"""
FRAME_TEMPLATE = """{{
  {dst_mac}, {src_mac}, 0x08, 0x00,
  0x45, 0x00, 0x00, 0x2e, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, csumip(14, 33),
  {src_ip}, {dst_ip},
  {sport}, {dport}, 0x00, 0x1a, 0x00, 0x00,
  fill(0x41, 18),
}}
"""
"""a 60-byte UDP frame (64 with FCS): 18 bytes of payload, UDP checksum 0 (none)"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@dataclass(frozen=True)
class Settings:
    runs: int
    rules: int
    flows: int
    flow_rate: float
    seconds: float
    sections: tuple[str, ...]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        if args.quick:
            return cls(
                runs=args.runs or 1,
                rules=args.rules or 100_000,
                flows=args.flows or 200,
                flow_rate=args.flow_rate,
                seconds=args.seconds or 2.0,
                sections=tuple(args.sections),
            )
        return cls(
            runs=args.runs or 3,
            rules=args.rules or 1_000_000,
            flows=args.flows or 1000,
            flow_rate=args.flow_rate,
            seconds=args.seconds or 5.0,
            sections=tuple(args.sections),
        )


# --- 1. install rate ------------------------------------------------------------------


def install_over_rulepush(tmp: Path, settings: Settings) -> dict[int, list[dict[str, Any]]]:
    """Per batch size, one result per run from the pusher process."""
    results: dict[int, list[dict[str, Any]]] = {}
    with Lab(tmp) as lab:
        agent = lab.start_agent(table_size=str(TABLE_SIZE))
        lab.wait_agent_up(agent)
        for index, size in enumerate(BATCH_SIZES):
            log(f"install over rule-push: batches of {size}, {settings.runs} x {settings.rules}")
            first = index * settings.runs * settings.rules
            output = lab.exec(
                "sp",
                sys.executable,
                str(BENCH / "fastpath_push.py"),
                "--host", FP_PUNT,
                "--rules", str(settings.rules),
                "--batch", str(size),
                "--runs", str(settings.runs),
                "--first", str(first),
                timeout=120 + 60 * settings.runs * settings.rules / 100_000,
            )  # fmt: skip
            runs = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
            for run in runs:
                if run["acked"] != settings.rules or run["table_entries"] != settings.rules:
                    raise RuntimeError(f"the agent did not install every rule: {run}")
            results[size] = runs
        if not agent.running():
            raise RuntimeError(f"the agent died:\n{agent.tail()}")
    return results


def install_in_process(settings: Settings) -> dict[int, list[dict[str, float]]]:
    """The same batches through BpfDriver.install_encoded / remove_encoded directly."""
    results: dict[int, list[dict[str, float]]] = {}
    with standalone_driver(TABLE_SIZE) as driver:
        for index, size in enumerate(BATCH_SIZES):
            log(f"install in process: batches of {size}, {settings.runs} x {settings.rules}")
            runs = []
            for run in range(settings.runs):
                first = (index * settings.runs + run) * settings.rules
                runs.append(_driver_run(driver, settings.rules, first, size))
            results[size] = runs
    return results


def _driver_run(driver: BpfDriver, count: int, first: int, size: int) -> dict[str, float]:
    keys, actions = encoded_rules(count, first)
    work = batches(keys, actions, count, size)
    started = time.perf_counter()
    installed = sum(driver.install_encoded(k, a, n) for k, a, n in work)
    install_seconds = time.perf_counter() - started
    entries = driver.table_entries()
    started = time.perf_counter()
    removed = sum(driver.remove_encoded(k, n) for k, _, n in work)
    remove_seconds = time.perf_counter() - started
    if installed != count or entries != count or removed != count:
        raise RuntimeError(
            f"in-process driver: installed {installed}, table {entries}, removed {removed} "
            f"of {count}"
        )
    return {"install_seconds": install_seconds, "remove_seconds": remove_seconds}


# --- 2. flow setup latency --------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    seq: int
    kind: int
    sent: int
    arrived: int

    @property
    def latency_us(self) -> float:
        return (self.arrived - self.sent) / 1000


def send_flows(lab: Lab, kinds: int, first_seq: int, count: int, rate: float) -> None:
    """`count` new flows at `rate` per second: each a first datagram (kind `kinds` +
    FIRST) and, half an interval later, a second one from the same source port."""
    interval = 1.0 / rate
    start = time.monotonic() + 0.05
    for n in range(count):
        seq = first_seq + n
        slot = start + n * interval
        with lab.socket("cli") as sock:
            sock.bind((CLIENT, PROBE_SPORTS + seq))
            _sleep_until(slot)
            sock.sendto(PROBE.pack(seq, kinds + FIRST, time.monotonic_ns()), (SERVER, PROBE_PORT))
            _sleep_until(slot + interval / 2)
            sock.sendto(PROBE.pack(seq, kinds + SECOND, time.monotonic_ns()), (SERVER, PROBE_PORT))
    _sleep_until(start + count * interval)


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def latency(tmp: Path, settings: Settings) -> dict[str, Any]:
    """Probes through plain kernel routing, then through the fast path with a big and a
    small flow table (a fresh agent and slow path for each)."""
    out = tmp / "probes.txt"
    flows = settings.flows
    per_phase = WARMUP_FLOWS + settings.runs * flows
    # The agent's per-heartbeat table scan walks every bucket, so its cost grows with
    # the capacity: the default one, and the least power of two that holds the phase's
    # rules (two per flow; they outlive the phase).
    small = max(SMALL_TABLE, 1 << (2 * per_phase - 1).bit_length())
    # (table capacity, rules in INSTALL datagrams ahead of the packet): the default path,
    # and for comparison the rule-push round trip through the agent.
    tables = ((TABLE_SIZE, True), (small, True), (small, False))
    phases = 1 + len(tables)
    if PROBE_SPORTS + phases * per_phase > 0xFFFF:
        raise SystemExit("too many latency flows: one client port each, from 20000 up")
    measured: list[list[range]] = []
    counters: list[dict[str, float]] = []
    with Lab(tmp) as lab:
        sink = lab.spawn(
            "srv",
            "sink",
            [sys.executable, str(BENCH / "fastpath_sink.py"), "--address", SERVER,
             "--port", str(PROBE_PORT), "--out", str(out)],
        )  # fmt: skip
        wait_for(lambda: READY in sink.tail(), 20, "the probe receiver")
        seq = 0
        for phase in range(phases):
            units: list[Process] = []
            if phase:
                table, datagrams = tables[phase - 1]
                units = [
                    lab.start_agent(table_size=str(table)),
                    lab.start_slowpath(datagram_installs=str(datagrams).lower()),
                ]
                lab.wait_connected(units[1])
            # The warm-up flows resolve neighbours and warm the caches.
            send_flows(lab, 2 * phase, seq, WARMUP_FLOWS, settings.flow_rate)
            seq += WARMUP_FLOWS
            log(f"latency: {_phase_label(phase, tables)}, {settings.runs} x {flows} flows")
            runs = []
            for _ in range(settings.runs):
                send_flows(lab, 2 * phase, seq, flows, settings.flow_rate)
                runs.append(range(seq, seq + flows))
                seq += flows
            measured.append(runs)
            time.sleep(0.5)  # the last probes' arrival
            if units:
                counters.append(lab.metrics("mid") | lab.metrics("sp"))
            for unit in units:
                if unit.stop() != 0:
                    raise RuntimeError(f"{unit.name} failed:\n{unit.tail()}")
        sink.stop()
    probes = {
        (p.seq, p.kind): p
        for p in (Probe(*map(int, line.split())) for line in out.read_text().splitlines())
    }
    result: dict[str, Any] = {
        "flows_per_run": flows,
        "runs": settings.runs,
        "flow_rate": settings.flow_rate,
        "phases": [],
    }
    for phase, runs in enumerate(measured):
        every = range(runs[0].start, runs[-1].stop)
        entry = {
            "label": _phase_label(phase, tables),
            "table_size": tables[phase - 1][0] if phase else None,
            "datagram_installs": tables[phase - 1][1] if phase else None,
            **_latencies(probes, every, 2 * phase),
            "runs": [_latencies(probes, run, 2 * phase) for run in runs],
        }
        if phase:
            metrics = counters[phase - 1]
            entry["agent_punted"] = metrics.get("vnf_fastpath_punted_total", 0.0)
            entry["agent_hits"] = metrics.get("vnf_fastpath_hits_total", 0.0)
            # The slow path's own histogram: rule batch pushed -> ACK received.
            pushes = metrics.get("vnf_slowpath_push_latency_seconds_count", 0.0)
            if pushes:
                seconds = metrics["vnf_slowpath_push_latency_seconds_sum"]
                entry["push_round_trip_mean_us"] = 1e6 * seconds / pushes
        result["phases"].append(entry)
    return result


def _phase_label(phase: int, tables: Sequence[tuple[int, bool]]) -> str:
    if phase == 0:
        return "kernel routing, no program"
    table, datagrams = tables[phase - 1]
    delivery = "" if datagrams else ", rules pushed (no INSTALL datagram)"
    return f"fast path, table of {_count(table)} rules{delivery}"


def _count(value: int) -> str:
    """1048576 -> '1M', 4096 -> '4k', 100000 -> '100k' (binary or decimal, whichever fits)."""
    for unit, suffix in ((1 << 20, "M"), (1_000_000, "M"), (1 << 10, "k"), (1000, "k")):
        if value >= unit and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)


def _latencies(probes: dict[tuple[int, int], Probe], seqs: range, kinds: int) -> dict[str, Any]:
    first: list[float] = []
    hit: list[float] = []
    for seq in seqs:
        opening = probes.get((seq, kinds + FIRST))
        second = probes.get((seq, kinds + SECOND))
        if opening is not None:
            first.append(opening.latency_us)
        # Only a second datagram sent after the first arrived met an installed rule.
        if opening is not None and second is not None and second.sent > opening.arrived:
            hit.append(second.latency_us)
    return {
        "flows": len(seqs),
        "first_lost": len(seqs) - len(first),
        "first_us": _summary(first),
        "hit_us": _summary(hit),
    }


def _summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "median": statistics.median(values),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


# --- 3. forwarding throughput ------------------------------------------------------------


@dataclass(frozen=True)
class Middle:
    key: str
    label: str
    bridged: bool = False
    fastpath: bool = False
    other_rules: int = 0


def throughput(tmp: Path, settings: Settings) -> dict[str, Any]:
    many = _count(settings.rules)
    middles = (
        Middle("bridge", "Linux bridge", bridged=True),
        Middle("kernel", "kernel routing, no program"),
        Middle("fastpath", "fast path, the flows' rules only", fastpath=True),
        Middle(
            "fastpath_loaded",
            f"fast path, + {many} other rules",
            fastpath=True,
            other_rules=settings.rules,
        ),
    )
    results: dict[str, Any] = {}
    for middle in middles:
        log(f"forwarding: {middle.label}")
        results[middle.key] = {"label": middle.label, **_forwarding(tmp, middle, settings)}
    return results


def _forwarding(tmp: Path, middle: Middle, settings: Settings) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    agent: Process | None = None
    with Lab(tmp, bridged=middle.bridged) as lab:
        if middle.fastpath:
            agent = lab.start_agent(table_size=str(TABLE_SIZE))
            lab.wait_agent_up(agent)
            if middle.other_rules:
                _preload(lab, middle.other_rules)
            started = time.monotonic()
            slowpath = lab.start_slowpath()
            lab.wait_connected(slowpath, timeout=120 + middle.other_rules / 10_000)
            facts["slowpath_sync_seconds"] = time.monotonic() - started
            facts["table_entries"] = lab.health("mid").get("tableEntries")
        iperf = lab.spawn("srv", "iperf3", ["iperf3", "-s", "-B", SERVER, "-p", str(IPERF_PORT)])
        wait_for(lambda: _listening(lab, IPERF_PORT), 20, "the iperf3 server")
        before = lab.metrics("mid") if middle.fastpath else {}
        cpu_before, started = (agent.cpu_seconds() if agent else 0.0), time.monotonic()
        tcp = [_iperf3(lab, settings.seconds) for _ in range(settings.runs)]
        iperf.stop()
        with _udp_sink(lab) as _sink:
            lab.set_offloads(False)
            frames = [_trafgen(lab, middle, tmp, settings.seconds) for _ in range(settings.runs)]
        if agent is not None:
            # Its heartbeat work (aging scans of the whole table) shares the CPUs.
            facts["agent_cpu_share"] = (agent.cpu_seconds() - cpu_before) / (
                time.monotonic() - started
            )
            time.sleep(1.5)  # the agent publishes its counters once per heartbeat
            after = lab.metrics("mid")
            facts["agent"] = {
                name: after.get(f"vnf_fastpath_{name}_total", 0.0)
                - before.get(f"vnf_fastpath_{name}_total", 0.0)
                for name in ("hits", "misses", "punted", "forward_errors", "dropped")
            }
            facts["table_entries_after"] = lab.health("mid").get("tableEntries")
            for unit in lab.processes:
                if unit.name in ("agent", "slowpath") and not unit.running():
                    raise RuntimeError(f"{unit.name} died:\n{unit.tail()}")
    return {
        "tcp_gbps": [r["gbps"] for r in tcp],
        "tcp_retransmits": [r["retransmits"] for r in tcp],
        "udp64_pps": [r["rx_pps"] for r in frames],
        "udp64_generated_pps": [r["tx_pps"] for r in frames],
        **facts,
    }


def _preload(lab: Lab, count: int) -> None:
    log(f"forwarding: pushing {count} other rules")
    output = lab.exec(
        "sp",
        sys.executable,
        str(BENCH / "fastpath_push.py"),
        "--host", FP_PUNT,
        "--rules", str(count),
        "--batch", str(max(BATCH_SIZES)),
        "--keep",
        timeout=120 + count / 10_000,
    )  # fmt: skip
    run = json.loads(output.splitlines()[-1])
    if run["table_entries"] != count:
        raise RuntimeError(f"preloading {count} rules: {run}")


def _listening(lab: Lab, port: int) -> bool:
    return bool(lab.exec("srv", "ss", "-Hltn", f"sport = :{port}").strip())


def _iperf3(lab: Lab, seconds: float) -> dict[str, float]:
    output = subprocess.run(
        ["ip", "netns", "exec", lab.ns("cli"), "iperf3", "-c", SERVER, "-p", str(IPERF_PORT),
         "-t", f"{seconds:g}", "-O", "1", "-J", "--connect-timeout", "5000"],
        capture_output=True, text=True, timeout=seconds + 40, check=False,
    )  # fmt: skip
    try:
        report = json.loads(output.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"iperf3: {output.stderr.strip() or output.stdout[:500]}") from None
    if "error" in report:
        raise RuntimeError(f"iperf3: {report['error']}")
    end = report["end"]
    return {
        "gbps": end["sum_received"]["bits_per_second"] / 1e9,
        "retransmits": end["sum_sent"].get("retransmits", 0),
    }


@contextmanager
def _udp_sink(lab: Lab) -> Iterator[socket.socket]:
    """A server socket for the small-packet flow that takes the flow's first datagram
    (through the fast path: the slow path installs its rules) and then is never read:
    later datagrams are dropped when its buffer is full, with no ICMP errors."""
    sink = lab.socket("srv")
    client = lab.socket("cli")
    try:
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sink.bind((SERVER, UDP_PORT))
        sink.settimeout(10)
        client.bind((CLIENT, UDP_SPORT))
        client.sendto(b"open", (SERVER, UDP_PORT))
        data, source = sink.recvfrom(2048)
        if (data, source) != (b"open", (CLIENT, UDP_SPORT)):
            raise RuntimeError(f"unexpected datagram {data!r} from {source}")
        yield sink
    finally:
        client.close()
        sink.close()


def _trafgen(lab: Lab, middle: Middle, tmp: Path, seconds: float) -> dict[str, float]:
    next_hop = ("srv", "s0") if middle.bridged else ("mid", "inside")
    config = tmp / f"{lab.prefix}-udp64.cfg"
    config.write_text(
        FRAME_TEMPLATE.format(
            dst_mac=_bytes(bytes.fromhex(lab.mac(*next_hop).replace(":", ""))),
            src_mac=_bytes(bytes.fromhex(lab.mac("cli", "c0").replace(":", ""))),
            src_ip=_bytes(IPv4Address(CLIENT).packed),
            dst_ip=_bytes(IPv4Address(SERVER).packed),
            sport=_bytes(UDP_SPORT.to_bytes(2, "big")),
            dport=_bytes(UDP_PORT.to_bytes(2, "big")),
        )
    )
    # Leave the host's socket memory limits and IRQ affinities alone (trafgen tunes
    # both by default; 0.6.8 knows these only by their long names).
    generator = lab.spawn(
        "cli",
        "trafgen",
        ["trafgen", "--dev", "c0", "--conf", str(config), "--cpus", "1",
         "--no-sock-mem", "--notouch-irq", "--no-cpu-stats"],
    )  # fmt: skip
    try:
        time.sleep(1.0)  # ramp-up
        if not generator.running():
            raise RuntimeError(f"trafgen exited:\n{generator.tail()}")
        rx0, tx0 = lab.packets("srv", "s0", "rx"), lab.packets("cli", "c0", "tx")
        started = time.monotonic()
        time.sleep(seconds)
        rx1, tx1 = lab.packets("srv", "s0", "rx"), lab.packets("cli", "c0", "tx")
        elapsed = time.monotonic() - started
    finally:
        generator.popen.send_signal(signal.SIGINT)
        generator.stop(timeout=10)
    return {"rx_pps": (rx1 - rx0) / elapsed, "tx_pps": (tx1 - tx0) / elapsed}


def _bytes(data: bytes) -> str:
    return ", ".join(f"0x{octet:02x}" for octet in data)


# --- report -------------------------------------------------------------------------------


def _rate(rules: int, seconds: Sequence[float]) -> tuple[float, float, float]:
    """Median, min and max rules/s over runs."""
    rates = [rules / s for s in seconds]
    return statistics.median(rates), min(rates), max(rates)


def report(results: dict[str, Any], settings: Settings) -> str:
    lines: list[str] = []
    add = lines.append
    env = results["environment"]
    add(
        f"fast path benchmark, {settings.runs} run(s); {env['cpus']} CPUs, kernel "
        f"{env['kernel']}, load average {env['load_before']} before, {env['load_after']} after"
    )
    if "install" in results:
        install = results["install"]
        rules = install["rules"]
        add("")
        add(f"Rule install, {rules} fresh keys per run (median rules/s, min-max):")
        add("| batch | rule-push to agent process | in-process install_encoded "
            "| rule-push REMOVE | in-process remove_encoded |")  # fmt: skip
        add("|---:|---:|---:|---:|---:|")
        for size in BATCH_SIZES:
            pushed = install["rulepush"][str(size)]
            local = install["in_process"][str(size)]
            cells = [
                _rate(rules, [r["install_seconds"] for r in pushed]),
                _rate(rules, [r["install_seconds"] for r in local]),
                _rate(rules, [r["remove_seconds"] for r in pushed]),
                _rate(rules, [r["remove_seconds"] for r in local]),
            ]
            add(f"| {size} | " + " | ".join(_krate(*cell) for cell in cells) + " |")
    if "latency" in results:
        lat = results["latency"]
        add("")
        add(
            f"Flow setup latency, UDP, {lat['runs']} x {lat['flows_per_run']} new flows "
            f"at {lat['flow_rate']:g}/s per phase, one-way client -> server (us):"
        )
        add("| path | packet | median | p99 | max | samples |")
        add("|---|---|---:|---:|---:|---:|")
        for phase in lat["phases"]:
            rows = [("first of a new flow", phase["first_us"])]
            if phase["table_size"] is not None:
                rows.append(("of an installed flow", phase["hit_us"]))
            for packet, summary in rows:
                if summary["count"]:
                    add(
                        f"| {phase['label']} | {packet} | {summary['median']:.0f} "
                        f"| {summary['p99']:.0f} | {summary['max']:.0f} | {summary['count']} |"
                    )
        for phase in lat["phases"][1:]:
            p99s = ", ".join(f"{run['first_us'].get('p99', 0.0):.0f}" for run in phase["runs"])
            push = phase.get("push_round_trip_mean_us")
            add(
                f"{phase['label']}: first packets lost {phase['first_lost']}, "
                f"first-packet p99 per run {p99s} us"
                + (f", rule push round trip {push:.0f} us on average" if push else "")
            )
    if "throughput" in results:
        put = results["throughput"]
        bridge_tcp = statistics.median(put["bridge"]["tcp_gbps"])
        bridge_pps = statistics.median(put["bridge"]["udp64_pps"])
        add("")
        add(
            f"Forwarding, client -> middle namespace -> server on veths, median of "
            f"{settings.runs} run(s) of {settings.seconds:g} s:"
        )
        add("| middle | TCP Gbit/s | vs bridge | UDP 64 B kpps | vs bridge |")
        add("|---|---:|---:|---:|---:|")
        for entry in put.values():
            tcp = statistics.median(entry["tcp_gbps"])
            pps = statistics.median(entry["udp64_pps"])
            add(
                f"| {entry['label']} | {tcp:.2f} | {tcp / bridge_tcp:.2f} "
                f"| {pps / 1000:.0f} | {pps / bridge_pps:.2f} |"
            )
        loaded = put.get("fastpath_loaded", {})
        for entry in put.values():
            if "agent" in entry:
                counts = entry["agent"]
                add(
                    f"{entry['label']}: agent CPU {100 * entry['agent_cpu_share']:.0f}% of a "
                    f"core during the runs; datapath hits {counts['hits']:.0f}, punted "
                    f"{counts['punted']:.0f}, forward errors {counts['forward_errors']:.0f}"
                )
        if "slowpath_sync_seconds" in loaded:
            add(
                f"slow path joining a fast path that holds {loaded['table_entries']} rules "
                f"(DUMP + restore): {loaded['slowpath_sync_seconds']:.1f} s"
            )
    return "\n".join(lines)


def _krate(median: float, low: float, high: float) -> str:
    return f"{median / 1000:.0f}k ({low / 1000:.0f}-{high / 1000:.0f}k)"


# --- main -------------------------------------------------------------------------------


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, help="runs per measurement (default 3, quick 1)")
    parser.add_argument("--quick", action="store_true", help="fewer rules, flows and seconds")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--rules", type=int, help="rules per install run and for the loaded "
                        "forwarding case (default 1000000, quick 100000)")  # fmt: skip
    parser.add_argument("--flows", type=int, help="latency flows per run (default 1000)")
    parser.add_argument("--flow-rate", type=float, default=200.0, help="new flows per second")
    parser.add_argument("--seconds", type=float, help="seconds per throughput run (default 5)")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=("install", "latency", "throughput"),
        default=["install", "latency", "throughput"],
    )
    args = parser.parse_args()
    settings = Settings.from_args(args)
    if os.geteuid() != 0:
        raise SystemExit("run as root: the bench makes network namespaces and loads BPF")
    if "throughput" in settings.sections and (missing := missing_tools()):
        packages = sorted({TOOLS[tool] for tool in missing})
        raise SystemExit(
            f"missing {', '.join(missing)}; install with: apt-get install -y {' '.join(packages)}"
        )
    build.build()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    results: dict[str, Any] = {
        "environment": {
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "load_before": " ".join(f"{load:.2f}" for load in os.getloadavg()),
        }
    }
    sections: dict[str, Callable[[Path], Any]] = {
        "install": lambda tmp: {
            "rules": settings.rules,
            "rulepush": {str(k): v for k, v in install_over_rulepush(tmp, settings).items()},
            "in_process": {str(k): v for k, v in install_in_process(settings).items()},
        },
        "latency": lambda tmp: latency(tmp, settings),
        "throughput": lambda tmp: throughput(tmp, settings),
    }
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fastpath-") as tmp:
            for name in settings.sections:
                results[name] = sections[name](Path(tmp))
    except KeyboardInterrupt:
        log("interrupted; the namespaces and processes of the bench are removed")
        raise SystemExit(130) from None
    results["environment"]["load_after"] = " ".join(f"{load:.2f}" for load in os.getloadavg())
    results["environment"]["seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(report(results, settings))


if __name__ == "__main__":
    main()
