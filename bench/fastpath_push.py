"""The slow-path side of bench/fastpath.py's install rate: pushes pre-encoded rules.

A process of its own, in the slow-path namespace, that connects to a fast-path
agent's rule-push port like a slow path does, then for each run:

1. installs `--rules` rules with fresh keys in INSTALL batches of `--batch`,
   at most `--window` batches unacknowledged (a slow path's max_inflight_batches);
   timed from the first send to the last ACK;
2. checks the ACKs add up and the agent's STATS shows them in its table;
3. removes them again (REMOVE batches of the same size), timed the same way, so
   the next run's keys are fresh too.

The records are encoded before the clock starts, as a slow path has them
encoded when it pushes. Prints one JSON object per run on stdout.

    python bench/fastpath_push.py --host 10.71.9.1 --rules 1000000 --batch 4000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import deque
from ipaddress import IPv4Address
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vnfs.sdk.config import RuntimeSettings  # noqa: E402
from vnfs.sdk.encoding import KEY, KEY_SIZE, VRF, encode_action  # noqa: E402
from vnfs.sdk.flow import FlowKey, FlowRule, Forward, Protocol  # noqa: E402
from vnfs.sdk.rulepush import MAX_RECORDS, RulePushClient  # noqa: E402

KEY_SOURCES = IPv4Address("10.128.0.0")
SOURCE_BITS = 23
"""bench keys come from 10.128.0.0/9 (2**23 sources), then from the next source port"""
KEY_SPACE = 16 << SOURCE_BITS
KEY_DESTINATION = IPv4Address("198.51.100.200")
KEY_PORTS = (40000, 80)
RULE_IDLE_TIMEOUT = 3600
STATS_TIMEOUT = 10.0
Batch = tuple[bytes, bytes, int]


def encoded_rules(count: int, first: int) -> tuple[bytes, bytes]:
    """(keys, actions) of `count` forwarding rules with distinct keys, numbered from
    `first`: rule n is UDP from 10.128.0.0 + n % 2**23, port 40000 + n // 2**23,
    to 198.51.100.200 port 80."""
    if first < 0 or first + count > KEY_SPACE:
        raise ValueError(f"rules {first}..{first + count} are outside the {KEY_SPACE} bench keys")
    base = int(KEY_SOURCES)
    mask = (1 << SOURCE_BITS) - 1
    destination = KEY_DESTINATION.packed
    sport, dport = KEY_PORTS
    tail = VRF.pack(0)
    pack = KEY.pack
    keys = b"".join(
        pack(
            (base + (n & mask)).to_bytes(4, "big"),
            destination,
            sport + (n >> SOURCE_BITS),
            dport,
            Protocol.UDP,
        )
        + tail
        for n in range(first, first + count)
    )
    sample = FlowKey(KEY_SOURCES, KEY_DESTINATION, sport, dport, Protocol.UDP)
    action = encode_action(FlowRule(sample, (Forward(),), idle_timeout=RULE_IDLE_TIMEOUT))
    return keys, action * count


def batches(keys: bytes, actions: bytes, count: int, size: int) -> list[Batch]:
    """The records cut into batches of `size` rules (the last may be smaller)."""
    if not 1 <= size <= MAX_RECORDS:
        raise ValueError(f"a batch holds 1..{MAX_RECORDS} rules, not {size}")
    action_size = len(actions) // count
    cut: list[Batch] = []
    for first in range(0, count, size):
        last = min(first + size, count)
        cut.append(
            (
                keys[first * KEY_SIZE : last * KEY_SIZE],
                actions[first * action_size : last * action_size],
                last - first,
            )
        )
    return cut


async def _pipelined(
    client: RulePushClient, requests: list[Batch], window: int, install: bool
) -> int:
    """Send every batch, keeping at most `window` unacknowledged; the rules applied."""
    pending: deque[asyncio.Future[int]] = deque()
    done = 0
    for keys, actions, count in requests:
        if len(pending) >= window:
            done += await pending.popleft()
        if install:
            pending.append(await client.submit_install(keys, actions, count))
        else:
            pending.append(await client.submit_remove(keys))
    while pending:
        done += await pending.popleft()
    return done


async def _table_entries(client: RulePushClient, expected: int) -> int:
    """The agent's table size once it shows `expected` (it refreshes it every heartbeat)."""
    deadline = time.monotonic() + STATS_TIMEOUT
    entries = (await client.stats()).table_entries
    while entries != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        entries = (await client.stats()).table_entries
    return entries


async def push(args: argparse.Namespace) -> None:
    client = await RulePushClient.connect(args.host, args.port, timeout=10)
    try:
        baseline = (await client.stats()).table_entries
        for run in range(args.runs):
            keys, actions = encoded_rules(args.rules, args.first + run * args.rules)
            installs = batches(keys, actions, args.rules, args.batch)
            removes = [(k, b"", n) for k, _, n in installs]
            started = time.perf_counter()
            acked = await _pipelined(client, installs, args.window, install=True)
            installed = time.perf_counter() - started
            entries = await _table_entries(client, baseline + args.rules)
            removed, remove_seconds = 0, 0.0
            if not args.keep:
                started = time.perf_counter()
                removed = await _pipelined(client, removes, args.window, install=False)
                remove_seconds = time.perf_counter() - started
                await _table_entries(client, baseline)
            result = {
                "run": run,
                "batch": args.batch,
                "rules": args.rules,
                "acked": acked,
                "install_seconds": installed,
                "table_entries": entries - baseline,
                "removed": removed,
                "remove_seconds": remove_seconds,
            }
            print(json.dumps(result), flush=True)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=RuntimeSettings().rulepush_port)
    parser.add_argument("--rules", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--first", type=int, default=0, help="number of the first key")
    parser.add_argument("--window", type=int, default=RuntimeSettings().max_inflight_batches)
    parser.add_argument("--keep", action="store_true", help="leave the rules installed")
    asyncio.run(push(parser.parse_args()))


if __name__ == "__main__":
    main()
