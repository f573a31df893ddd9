"""Mappings: endpoint independence, paired pooling, exhaustion, filtering, release, restore."""

from __future__ import annotations

import json
import random
from collections import Counter
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from vnfs.nat.audit import AuditLog
from vnfs.nat.config import Filtering, PublicPool
from vnfs.nat.mappings import Mapping, MappingTable, Refusal
from vnfs.nat.pool import PortBlockPool
from vnfs.sdk.flow import Protocol

A = IPv4Address("10.10.0.5")
B = IPv4Address("10.10.0.6")
REMOTE = IPv4Address("198.51.100.7")


def table(
    cidr: str = "203.0.113.0/29",
    *,
    shards: int = 1,
    block: int = 64,
    first_port: int = 1024,
    last_port: int = 65535,
    limit: int = 4,
    filtering: Filtering = "address-dependent",
    audit: AuditLog | None = None,
) -> MappingTable:
    pool = PublicPool(cidr=cidr, port_block_size=block, first_port=first_port, last_port=last_port)
    return MappingTable(
        PortBlockPool(pool, shards),
        filtering=filtering,
        max_blocks_per_subscriber=limit,
        audit=audit,
    )


def mapped(found: Mapping | Refusal) -> Mapping:
    assert isinstance(found, Mapping), found
    return found


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_one_mapping_per_inside_endpoint_reused_for_every_destination() -> None:
    mappings = table()
    first = mapped(mappings.obtain(0, A, 5000, Protocol.UDP))
    assert mappings.obtain(0, A, 5000, Protocol.UDP) is first
    assert mappings.find_inside(0, A, 5000, Protocol.UDP) is first
    assert mappings.find_public(first.public_ip, first.public_port, Protocol.UDP) is first
    assert mappings.by_id(first.id) is first
    # Another port of the same subscriber: another public port, same public address (REQ-2).
    second = mapped(mappings.obtain(0, A, 5001, Protocol.UDP))
    assert second.public_ip == first.public_ip
    assert second.public_port != first.public_port
    assert second.id != first.id
    # Protocols are separate spaces: the TCP endpoint is another mapping.
    tcp = mapped(mappings.obtain(0, A, 5000, Protocol.TCP))
    assert tcp is not first and tcp.public_ip == first.public_ip
    assert mappings.active == {Protocol.UDP: 2, Protocol.TCP: 1, Protocol.ICMP: 0}


def test_a_subscriber_keeps_its_address_across_blocks() -> None:
    mappings = table(block=64, limit=3)
    found = [mapped(mappings.obtain(0, A, 10000 + n, Protocol.UDP)) for n in range(150)]
    subscriber = mappings.subscriber(0, A)
    assert subscriber is not None and len(subscriber.blocks) == 3
    assert {m.public_ip for m in found} == {subscriber.public_ip}
    assert len({m.public_port for m in found}) == 150


def test_the_subscriber_limit_refuses_without_reusing_a_live_port() -> None:
    mappings = table(block=64, limit=2)
    live = [mapped(mappings.obtain(0, A, 20000 + n, Protocol.TCP)) for n in range(128)]
    assert len({(m.public_ip, m.public_port) for m in live}) == 128
    assert mappings.obtain(0, A, 30000, Protocol.TCP) is Refusal.SUBSCRIBER_LIMIT
    assert mappings.obtain(0, A, 30000, Protocol.TCP) is Refusal.SUBSCRIBER_LIMIT
    # Existing mappings are still answered, and UDP has its own ports.
    assert mappings.obtain(0, A, 20000, Protocol.TCP) is live[0]
    assert isinstance(mappings.obtain(0, A, 30000, Protocol.UDP), Mapping)
    # Freeing one port lets exactly one new mapping in, on exactly that port.
    freed = live.pop(17)
    mappings.attach(freed, REMOTE)
    mappings.detach(freed, REMOTE)
    newcomer = mapped(mappings.obtain(0, A, 30000, Protocol.TCP))
    assert (newcomer.public_ip, newcomer.public_port) == (freed.public_ip, freed.public_port)
    assert mappings.obtain(0, A, 30001, Protocol.TCP) is Refusal.SUBSCRIBER_LIMIT


def test_a_full_pool_refuses_new_subscribers() -> None:
    # One address, ports 65408..65535: two blocks of 64.
    mappings = table("203.0.113.9/32", first_port=65408, block=64)
    assert isinstance(mappings.obtain(0, A, 1, Protocol.UDP), Mapping)
    assert isinstance(mappings.obtain(0, B, 1, Protocol.UDP), Mapping)
    assert mappings.obtain(0, IPv4Address("10.10.0.7"), 1, Protocol.UDP) is (Refusal.POOL_EXHAUSTED)


def test_paired_pooling_refuses_rather_than_moving_to_another_address() -> None:
    # Two addresses with two blocks of 64 ports each.
    mappings = table("203.0.113.8/31", first_port=65408, block=64, limit=4)
    first = mapped(mappings.obtain(0, A, 1, Protocol.UDP))
    # Someone else whose preferred address is A's takes that address's other block.
    preferred = mappings.pool.address_index(first.public_ip)
    other = next(
        candidate
        for candidate in (IPv4Address(f"10.10.1.{n}") for n in range(1, 255))
        if mappings.pool.preferred_index(0, candidate) == preferred
    )
    assert mapped(mappings.obtain(0, other, 1, Protocol.UDP)).public_ip == first.public_ip
    for n in range(2, 65):  # A's block is full after 64 ports
        assert mapped(mappings.obtain(0, A, n, Protocol.UDP)).public_ip == first.public_ip
    assert mappings.obtain(0, A, 100, Protocol.UDP) is Refusal.ADDRESS_EXHAUSTED
    # The other address still has room for new subscribers.
    newcomer = mapped(mappings.obtain(0, B, 1, Protocol.UDP))
    assert newcomer.public_ip != first.public_ip


@pytest.mark.parametrize(
    ("filtering", "admitted"),
    [("endpoint-independent", True), ("address-dependent", False)],
)
def test_filtering(filtering: Filtering, admitted: bool) -> None:
    mappings = table(filtering=filtering)
    mapping = mapped(mappings.obtain(0, A, 5000, Protocol.UDP))
    mappings.attach(mapping, REMOTE)
    assert mappings.admits(mapping, REMOTE)
    assert mappings.admits(mapping, IPv4Address("198.51.100.8")) is admitted
    mappings.attach(mapping, REMOTE)
    mappings.detach(mapping, REMOTE)
    assert mappings.admits(mapping, REMOTE)  # one session with it is left
    assert mapping.remotes == {int(REMOTE): 1}


def test_the_last_session_releases_port_block_and_subscriber(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl", per_mapping=True)
    mappings = table(audit=audit)
    mapping = mapped(mappings.obtain(0, A, 5000, Protocol.UDP))
    other = IPv4Address("198.51.100.8")
    mappings.attach(mapping, REMOTE)
    mappings.attach(mapping, other)
    mappings.detach(mapping, REMOTE)
    assert mappings.find_inside(0, A, 5000, Protocol.UDP) is mapping  # still one session
    mappings.detach(mapping, other)
    assert mappings.find_inside(0, A, 5000, Protocol.UDP) is None
    assert mappings.find_public(mapping.public_ip, mapping.public_port, Protocol.UDP) is None
    assert mappings.subscriber(0, A) is None
    assert mappings.pool.in_use(0) == 0
    assert len(mappings) == 0
    with pytest.raises(ValueError, match="no session"):
        mappings.detach(mapping, other)
    events = [(r["event"], r["reason"]) for r in records(tmp_path / "audit.jsonl")]
    assert events == [
        ("block_allocated", None),
        ("mapping_created", None),
        ("mapping_released", "idle"),
        ("block_released", "idle"),
    ]


def test_an_unused_mapping_can_be_discarded() -> None:
    mappings = table()
    mapping = mapped(mappings.obtain(0, A, 5000, Protocol.UDP))
    mappings.attach(mapping, REMOTE)
    mappings.discard_if_unused(mapping)
    assert mappings.find_inside(0, A, 5000, Protocol.UDP) is mapping  # has a session
    fresh = mapped(mappings.obtain(0, A, 5001, Protocol.UDP))
    mappings.discard_if_unused(fresh)
    assert mappings.find_inside(0, A, 5001, Protocol.UDP) is None


def test_restore_rebuilds_and_refuses_contradictions() -> None:
    mappings = table("203.0.113.0/29", shards=2, block=1000, first_port=2000)
    public = (IPv4Address("203.0.113.5"), 4321)
    mapping = mappings.restore(1, Protocol.TCP, (A, 40000), public, mapping_id=77)
    assert isinstance(mapping, Mapping)
    assert (mapping.id, mapping.shard, mapping.block.first) == (77, 1, 4000)
    assert mappings.restore(1, Protocol.TCP, (A, 40000), public) is mapping  # same again
    assert "is mapped to" in str(
        mappings.restore(1, Protocol.TCP, (A, 40000), (IPv4Address("203.0.113.5"), 4322))
    )
    assert "belongs to" in str(mappings.restore(1, Protocol.TCP, (B, 1), public))
    assert "another subscriber" in str(
        mappings.restore(1, Protocol.UDP, (B, 1), (IPv4Address("203.0.113.5"), 4000))
    )
    assert "no block" in str(mappings.restore(1, Protocol.TCP, (B, 1), (REMOTE, 4000)))
    # The restored id is not handed out again; new mappings avoid the restored port.
    subscriber = mappings.subscriber(1, A)
    assert subscriber is not None and subscriber.public_ip == public[0]
    fresh = [mapped(mappings.obtain(1, A, 50000 + n, Protocol.TCP)) for n in range(999)]
    assert all(m.id != 77 for m in fresh)
    assert public[1] not in {m.public_port for m in fresh if m.public_ip == public[0]}
    assert mappings.subscriber(1, A) is subscriber
    assert len(subscriber.blocks) == 1  # the restored block took all 999 others


@pytest.mark.parametrize("seed", range(12))
def test_random_churn_never_shares_a_public_endpoint(seed: int) -> None:
    """Property: whatever the order of flows and expiries, no two live mappings share a
    public endpoint, every subscriber keeps one public address per shard, and blocks
    count exactly the ports in use - also while the pool runs out."""
    rng = random.Random(seed)
    # Per shard: 2 addresses x 8 blocks of 64 ports.
    mappings = table("203.0.113.0/30", shards=2, block=64, first_port=65024, limit=2)
    heavy = [IPv4Address(f"10.10.0.{n}") for n in (1, 2)]
    light = [IPv4Address(f"10.10.1.{n}") for n in range(1, 21)]
    sessions: list[tuple[Mapping, IPv4Address]] = []
    refused: Counter[Refusal] = Counter()
    for _ in range(3000):
        if sessions and rng.random() < 0.25:
            mapping, remote = sessions.pop(rng.randrange(len(sessions)))
            mappings.detach(mapping, remote)
            continue
        if rng.random() < 0.5:
            subscriber, port = rng.choice(heavy), rng.randrange(1024, 1600)
        else:
            subscriber, port = rng.choice(light), rng.randrange(1024, 1030)
        proto = rng.choice((Protocol.TCP, Protocol.UDP))
        found = mappings.obtain(rng.randrange(2), subscriber, port, proto)
        if isinstance(found, Refusal):
            refused[found] += 1
            continue
        remote = IPv4Address(f"198.51.100.{rng.randrange(1, 5)}")
        mappings.attach(found, remote)
        sessions.append((found, remote))
        if len(sessions) % 7:
            continue  # the full check is quadratic; every 7th new session is plenty
        live = list(mappings)
        endpoints = [(m.public_ip, m.public_port, m.proto) for m in live]
        assert len(endpoints) == len(set(endpoints))
        for m in live:
            assert m.block.first <= m.public_port <= m.block.last
            assert mappings.pool.shard_of(m.public_ip) == m.shard
            holder = mappings.subscriber(m.shard, m.inside_ip)
            assert holder is not None and m.block in holder.blocks
            assert m.public_ip == holder.public_ip
            assert len(holder.blocks) <= 2
        per_block = Counter(id(m.block) for m in live)
        assert all(m.block.live == per_block[id(m.block)] for m in live)
    assert refused.keys() == {Refusal.POOL_EXHAUSTED, Refusal.ADDRESS_EXHAUSTED}
    for mapping, remote in sessions:
        mappings.detach(mapping, remote)
    assert len(mappings) == 0 and mappings.subscribers == 0
    assert mappings.pool.in_use(0) == mappings.pool.in_use(1) == 0
