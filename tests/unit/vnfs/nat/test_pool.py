"""Port blocks: shard partitioning, allocation order, ports inside a block, restore claims."""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network, collapse_addresses

import pytest

from vnfs.nat.config import PublicPool
from vnfs.nat.pool import PortBlock, PortBlockPool
from vnfs.sdk.flow import Protocol

OWNER = IPv4Address("10.10.0.5")


def pool(cidr: str | list[str], shards: int = 8, **ports: int) -> PortBlockPool:
    return PortBlockPool(PublicPool.model_validate({"cidr": cidr, **ports}), shards)


def test_the_vnfd_pool_splits_into_one_prefix_per_fast_path() -> None:
    blocks = pool("203.0.113.0/26")
    assert blocks.addresses == 64
    assert blocks.blocks_per_address == 126  # (65535 - 1024 + 1) // 512
    assert [blocks.shard_prefixes(s) for s in range(8)] == [
        [IPv4Network(f"203.0.113.{8 * s}/29")] for s in range(8)
    ]
    assert all(blocks.total(s) == 8 * 126 for s in range(8))


def test_address_arithmetic_over_several_cidrs() -> None:
    blocks = pool(["198.51.100.16/30", "203.0.113.0/29", "192.0.2.255/32"], shards=3)
    assert blocks.addresses == 13
    addresses = [blocks.address_at(i) for i in range(13)]
    assert addresses[:5] == [IPv4Address(f"198.51.100.{n}") for n in (16, 17, 18, 19)] + [
        IPv4Address("203.0.113.0")
    ]
    assert addresses[-1] == IPv4Address("192.0.2.255")
    assert [blocks.address_index(a) for a in addresses] == list(range(13))
    for outside in ("198.51.100.15", "198.51.100.20", "203.0.113.8", "192.0.2.254", "10.0.0.1"):
        assert blocks.address_index(IPv4Address(outside)) is None
        assert IPv4Address(outside) not in blocks
    with pytest.raises(IndexError):
        blocks.address_at(13)


@pytest.mark.parametrize("seed", range(40))
def test_every_address_belongs_to_exactly_one_shard(seed: int) -> None:
    rng = random.Random(seed)
    networks = []
    base = int(IPv4Address("198.18.0.0"))
    for _ in range(rng.randint(1, 4)):
        prefix = rng.randint(24, 32)
        size = 1 << (32 - prefix)
        base = -(-base // size) * size  # aligned, after the previous network
        networks.append(str(IPv4Network((base, prefix))))
        base += size + rng.choice((0, 0, 256))  # sometimes a gap
    blocks = pool(networks, shards=1)
    shards = rng.randint(1, blocks.addresses)
    blocks = pool(networks, shards=shards)
    owned = [list(blocks.shard_addresses(s)) for s in range(shards)]
    flat = [a for addresses in owned for a in addresses]
    assert len(flat) == len(set(flat)) == blocks.addresses
    assert all(addresses for addresses in owned)
    sizes = [len(addresses) for addresses in owned]
    assert max(sizes) - min(sizes) <= 1  # as even as the count allows
    for shard, addresses in enumerate(owned):
        assert all(blocks.shard_of(a) == shard for a in addresses)
        # The prefixes route exactly the shard's addresses.
        assert list(collapse_addresses(blocks.shard_prefixes(shard))) == list(
            collapse_addresses(IPv4Network(a) for a in addresses)
        )


def live_blocks(blocks: PortBlockPool) -> list[tuple[IPv4Address, int]]:
    return [(b.address, b.first) for b in blocks.allocated()]


@pytest.mark.parametrize("seed", range(25))
def test_shards_never_hand_out_the_same_block(seed: int) -> None:
    """Random allocations and releases on 8 shards: a block is live at most once, always
    inside its shard's addresses, and the counts add up."""
    rng = random.Random(seed)
    blocks = pool("203.0.113.0/28", shards=8, port_block_size=4096, first_port=1024)
    held: list[PortBlock] = []
    for _ in range(600):
        if held and rng.random() < 0.4:
            block = held.pop(rng.randrange(len(held)))
            block.take(Protocol.UDP, 0)
            block.give_back(Protocol.UDP, block.first)
            blocks.release(block)
        else:
            shard = rng.randrange(8)
            owner = IPv4Address(f"10.10.{rng.randrange(4)}.{rng.randrange(256)}")
            new = blocks.allocate(shard, owner)
            if new is None:
                assert blocks.in_use(shard) == blocks.total(shard)
                continue
            assert new.shard == shard
            assert blocks.shard_of(new.address) == shard
            assert new.owner == owner
            held.append(new)
        live = live_blocks(blocks)
        assert len(live) == len(set(live)) == len(held)
        assert sum(blocks.in_use(s) for s in range(8)) == len(held)
    # Drain every shard: all of its blocks, each exactly once.
    for shard in range(8):
        while blocks.allocate(shard, OWNER) is not None:
            pass
        assert blocks.in_use(shard) == blocks.total(shard)
    live = live_blocks(blocks)
    assert len(live) == len(set(live)) == sum(blocks.total(s) for s in range(8))


def test_scaling_out_adds_shards_whose_blocks_are_disjoint() -> None:
    """Instances 0..7 joining one after the other each get blocks of their own shard only."""
    blocks = pool("203.0.113.0/26")
    seen: dict[tuple[IPv4Address, int], int] = {}
    for instance in range(8):
        for n in range(50):
            block = blocks.allocate(instance, IPv4Address(f"10.10.{instance}.{n}"))
            assert block is not None
            assert (block.address, block.first) not in seen
            seen[(block.address, block.first)] = instance
            assert block.address in blocks.shard_prefixes(instance)[0]


def test_a_subscriber_starts_on_a_stable_address_and_may_ask_for_one() -> None:
    blocks = pool("203.0.113.0/26")
    first = blocks.allocate(2, OWNER)
    assert first is not None
    assert first.address == blocks.address_at(blocks.preferred_index(2, OWNER))
    again = blocks.allocate(2, OWNER)
    assert again is not None and again.address == first.address  # until it is full
    paired = blocks.allocate(2, OWNER, first.address)
    assert paired is not None and paired.address == first.address
    with pytest.raises(ValueError, match="not an address of shard 3"):
        blocks.allocate(3, OWNER, first.address)
    # Different subscribers spread over the shard's addresses.
    starts = {
        blocks.address_at(blocks.preferred_index(2, IPv4Address(f"10.10.0.{n}"))) for n in range(64)
    }
    assert len(starts) == 8


def test_fresh_blocks_first_then_the_longest_released() -> None:
    blocks = pool("203.0.113.7/32", shards=1, first_port=60000, port_block_size=1000)
    assert blocks.blocks_per_address == 5
    taken = [blocks.allocate(0, OWNER) for _ in range(3)]
    assert [b.first for b in taken if b] == [60000, 61000, 62000]
    assert taken[1] is not None and taken[0] is not None
    blocks.release(taken[1])
    blocks.release(taken[0])
    order = [blocks.allocate(0, OWNER) for _ in range(4)]
    assert [b.first for b in order if b] == [63000, 64000, 61000, 60000]
    assert blocks.allocate(0, OWNER) is None
    assert blocks.in_use(0) == blocks.total(0) == 5


def test_ports_keep_parity_and_are_reused_last() -> None:
    blocks = pool("203.0.113.7/32", shards=1, port_block_size=64, first_port=1024)
    block = blocks.allocate(0, OWNER)
    assert block is not None
    assert block.take(Protocol.UDP, 5001) == 1025  # odd for an odd inside port
    assert block.take(Protocol.UDP, 5000) == 1024
    assert block.take(Protocol.TCP, 5000) == 1024  # each protocol has its own ports
    assert block.live == 3
    block.give_back(Protocol.UDP, 1024)
    evens = [block.take(Protocol.UDP, 0) for _ in range(32)]
    assert evens[-1] == 1024  # the freed port comes back only after every other even one
    odds = [block.take(Protocol.UDP, 0) for _ in range(31)]  # evens exhausted: odd ones
    assert all(p is not None and p % 2 == 1 for p in odds)
    assert block.take(Protocol.UDP, 0) is None
    used = block.used(Protocol.UDP)
    assert used == frozenset(range(1024, 1088))
    with pytest.raises(ValueError, match="not in use"):
        block.give_back(Protocol.ICMP, 1030)
    with pytest.raises(ValueError, match="still has live ports"):
        blocks.release(block)


def test_claims_rebuild_blocks_from_a_fast_path_table() -> None:
    blocks = pool("203.0.113.0/29", shards=2, port_block_size=1000, first_port=2000)
    address = IPv4Address("203.0.113.5")  # shard 1
    block = blocks.claim(address, 4321, OWNER)
    assert block is not None
    assert (block.first, block.last, block.shard) == (4000, 4999, 1)
    assert block.claim(Protocol.TCP, 4321)
    assert not block.claim(Protocol.TCP, 4321)  # already used
    assert blocks.claim(address, 4999, OWNER) is block
    assert blocks.claim(address, 4000, IPv4Address("10.10.0.6")) is None  # another's block
    assert blocks.holder(address, 4500) is block
    assert blocks.claim(address, 1999, OWNER) is None  # below first_port
    assert blocks.claim(IPv4Address("203.0.113.9"), 4321, OWNER) is None  # not in the pool
    # A claimed block is never allocated to anyone else; the ports around it still are.
    handed = []
    while (other := blocks.allocate(1, IPv4Address("10.10.0.9"), address)) is not None:
        handed.append(other)
    assert block not in handed
    assert sorted(b.first for b in handed) == sorted(
        set(range(2000, 2000 + 1000 * blocks.blocks_per_address, 1000)) - {4000}
    )
    # Its used ports stay out of the free lists built later.
    assert block.take(Protocol.TCP, 4321) not in (None, 4321)


def test_claiming_a_released_block() -> None:
    blocks = pool("203.0.113.7/32", shards=1, first_port=60000, port_block_size=1000)
    first = blocks.allocate(0, OWNER)
    second = blocks.allocate(0, OWNER)
    assert first is not None and second is not None
    blocks.release(first)
    claimed = blocks.claim(first.address, 60010, IPv4Address("10.10.0.8"))
    assert claimed is not None and claimed.first == 60000
    assert [b.first for b in iter(lambda: blocks.allocate(0, OWNER), None)] == [
        62000,
        63000,
        64000,
    ]
