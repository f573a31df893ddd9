"""Slow-path benchmark (not a test): new NAT flows per second through the logic and encoding.

What the slow-path runtime does per new flow, without sockets, on one core:

* `logic+encode`: NatLogic.on_new_flow for a punted packet whose key is
  parsed already, then both rules encoded as an INSTALL batch carries them
  (encode_action with the fast path's interface map, encode_key), joined
  per batch of 4096 rules;
* `parse+logic+encode`: the same, starting from the punted IPv4 packet
  (vnfs.sdk.packet.parse_punted builds the key);
* `expire`: the fast path reports every rule aged out (EXPIRED frames of
  4096 records, decoded with iter_rules) and the logic ends the sessions
  (on_rules_expired), releasing mappings and blocks: sessions per second.

Flows are UDP and TCP alternately, from `--subscribers` inside addresses
with the same number of source ports each, to 251 remote addresses; the pool
is 203.0.113.0/24 in 8 shards, every flow on shard 0, the audit log (blocks
only, the default) in a temporary directory. Each run starts with a new
NatLogic; the figures are the median of `--runs` runs. The garbage collector
runs with the slow-path process's settings (vnfs.sdk.heap), or CPython's
defaults with `--default-gc`.

    .venv/bin/python bench/slowpath.py [--flows 100000] [--runs 5] [--default-gc] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vnfs.nat.audit import AuditLog  # noqa: E402
from vnfs.nat.config import NatConfig  # noqa: E402
from vnfs.nat.logic import NatLogic  # noqa: E402
from vnfs.sdk.driver import Interface  # noqa: E402
from vnfs.sdk.encoding import (  # noqa: E402
    ACTION_SIZE,
    KEY_SIZE,
    encode_action,
    encode_key,
    iter_rules,
)
from vnfs.sdk.flow import ExpiredRule, FlowKey, Protocol  # noqa: E402
from vnfs.sdk.heap import tune_collector  # noqa: E402
from vnfs.sdk.packet import parse_punted  # noqa: E402
from vnfs.sdk.vnf import FastPathInfo, Packet  # noqa: E402

BATCH = 4096
T = TypeVar("T")
INSIDE = Interface("inside", 2, "02:00:00:00:00:02", "10.64.0.1/16", "inside")
OUTSIDE = Interface("outside", 3, "02:00:00:00:00:03", "198.51.100.1/24", "outside")
PUNT = Interface("punt", 4, "02:00:00:00:00:04", "10.255.0.5/27", "punt")
FASTPATH = FastPathInfo(instance=0, epoch="bench", interfaces=(INSIDE, OUTSIDE, PUNT))
IFINDEX_OF = {i.name: i.ifindex for i in FASTPATH.interfaces}
INTERFACE_OF = {i.ifindex: i.name for i in FASTPATH.interfaces}


def _checksum(data: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_packet(key: FlowKey) -> bytes:
    """A minimal first packet of `key`'s flow (TCP SYN or an empty UDP datagram)."""
    if key.proto is Protocol.TCP:
        l4 = struct.pack("!HHIIBBHHH", key.sport, key.dport, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    else:
        l4 = struct.pack("!HHHH", key.sport, key.dport, 8, 0)
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, key.proto, 0,
        key.src.packed, key.dst.packed,
    )  # fmt: skip
    header = header[:10] + _checksum(header).to_bytes(2, "big") + header[12:]
    return header + l4


def workload(flows: int, subscribers: int) -> list[FlowKey]:
    per_subscriber = -(-flows // subscribers)
    keys: list[FlowKey] = []
    for index in range(flows):
        subscriber, port = divmod(index, per_subscriber)
        src = IPv4Address(0x0A400000 + subscriber + 2)  # 10.64.0.2 ...
        dst = IPv4Address(0xC6336400 + index % 251 + 3)  # 198.51.100.3 ...
        proto = Protocol.UDP if index % 2 else Protocol.TCP
        keys.append(FlowKey(src, dst, 10000 + port, 443 if proto is Protocol.TCP else 53, proto))
    return keys


def packet_of(key: FlowKey) -> Packet:
    return Packet(
        key=key,
        fastpath=FASTPATH,
        ingress=INSIDE,
        data=b"",
        tcp_flags=0x02 if key.proto is Protocol.TCP else 0,
    )


def new_logic(audit_dir: Path) -> NatLogic:
    config = NatConfig.model_validate(
        {"public_pool": {"cidr": "203.0.113.0/24"}, "audit": {"path": str(audit_dir / "a")}}
    )
    return NatLogic(config, audit=AuditLog(audit_dir / "audit.jsonl", per_mapping=False))


Encoded = list[tuple[bytes, bytes, int]]


def decide_and_encode(nat: NatLogic, packets: Sequence[Packet]) -> Encoded:
    """What SlowPath._handle_punt does per packet, batched like its INSTALL frames."""
    batches: Encoded = []
    keys: list[bytes] = []
    actions: list[bytes] = []
    for packet in packets:
        rules = nat.on_new_flow(packet)
        encoded = [encode_action(rule, IFINDEX_OF) for rule in rules]
        for rule, action in zip(rules, encoded, strict=True):
            keys.append(encode_key(rule.key))
            actions.append(action)
        if len(keys) >= BATCH:
            batches.append((b"".join(keys), b"".join(actions), len(keys)))
            keys, actions = [], []
    if keys:
        batches.append((b"".join(keys), b"".join(actions), len(keys)))
    return batches


def parse_decide_and_encode(nat: NatLogic, datagrams: Sequence[bytes]) -> Encoded:
    ifindex = INSIDE.ifindex
    return decide_and_encode(nat, [parse_punted(data, FASTPATH, ifindex) for data in datagrams])


def expire(nat: NatLogic, batches: Encoded) -> int:
    """The fast path aged every rule out: EXPIRED frames decoded, sessions ended."""
    ended = 0
    for keys, actions, count in batches:
        for first in range(0, count, BATCH):
            last = min(first + BATCH, count)
            expired = [
                ExpiredRule(rule, counters)
                for rule, counters in iter_rules(
                    keys[first * KEY_SIZE : last * KEY_SIZE],
                    actions[first * ACTION_SIZE : last * ACTION_SIZE],
                    INTERFACE_OF,
                )
            ]
            nat.on_rules_expired(FASTPATH, expired)
            ended += len(expired)
    return ended // 2


def timed(function: Callable[[], T]) -> tuple[float, T]:
    gc.collect()
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


@dataclass(frozen=True)
class Workload:
    keys: list[FlowKey]
    packets: list[Packet]
    datagrams: list[bytes]

    @classmethod
    def make(cls, flows: int, subscribers: int) -> Workload:
        keys = workload(flows, subscribers)
        workload_ = cls(keys, [packet_of(key) for key in keys], [ipv4_packet(k) for k in keys])
        # The slow path sees one packet at a time: keep the prepared ones out of the
        # collector's way, as they would not be in its heap.
        gc.collect()
        gc.freeze()
        return workload_


def one_run(work: Workload, audit_dir: Path) -> dict[str, float]:
    rates = decide_then_expire(work, audit_dir)
    rates["parse+logic+encode"] = parse_and_decide(work, audit_dir)
    return rates


def decide_then_expire(work: Workload, audit_dir: Path) -> dict[str, float]:
    flows = len(work.keys)
    nat = new_logic(audit_dir)
    elapsed, batches = timed(lambda: decide_and_encode(nat, work.packets))
    installed = sum(count for _, _, count in batches)
    assert installed == 2 * flows, f"{installed} rules for {flows} flows: the pool ran out"
    decided = flows / elapsed
    elapsed, ended = timed(lambda: expire(nat, batches))
    assert ended == flows and len(nat.mappings) == 0, (ended, len(nat.mappings))
    nat.close()
    return {"logic+encode": decided, "expire": flows / elapsed}


def parse_and_decide(work: Workload, audit_dir: Path) -> float:
    nat = new_logic(audit_dir)
    elapsed, _ = timed(lambda: parse_decide_and_encode(nat, work.datagrams))
    nat.close()
    return len(work.keys) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one run instead")
    parser.add_argument(
        "--default-gc", action="store_true", help="CPython's collector settings, not the process's"
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-slowpath-") as directory:
        audit_dir = Path(directory)
        work = Workload.make(options.flows, options.subscribers)
        if not options.default_gc:
            tune_collector()
        if options.profile:
            profiler = cProfile.Profile()
            profiler.runcall(one_run, work, audit_dir)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            return
        runs = [one_run(work, audit_dir) for _ in range(options.runs)]
    collector = "CPython's default" if options.default_gc else "the slow path's"
    print(
        f"{options.flows} new flows per run ({options.subscribers} subscribers), "
        f"median of {options.runs} runs, Python {sys.version.split()[0]}, "
        f"{collector} collector settings:"
    )
    for stage in runs[0]:
        values = sorted(run[stage] for run in runs)
        print(
            f"  {stage:<20} {statistics.median(values):>9,.0f} flows/s"
            f"   (min {values[0]:,.0f}, max {values[-1]:,.0f})"
        )


if __name__ == "__main__":
    main()
