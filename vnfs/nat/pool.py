"""Port blocks of the public pool, partitioned between fast-path shards.

The pool's addresses (all CIDRs, in the order given, every address used) are
numbered 0..N-1. Each address's ports first_port..last_port are cut into
blocks of port_block_size (a remainder too small for a block is not used).

Shard s (the fast-path instance with index s) owns the contiguous address
range [s*N//S, (s+1)*N//S): every block of an address belongs to the shard
that owns the address, so two instances never hand out the same block, and
the outside network can route each shard's prefixes (`shard_prefixes`) to
its instance with plain routes - return traffic reaches the instance that
holds the mapping without port-aware steering. Paired address pooling (RFC
4787 REQ-2) then holds per instance: the network in front of the inside
interfaces should hash on the source address only (Linux
fib_multipath_hash_policy=0), so one subscriber stays on one instance.

A block is allocated to one subscriber (inside address) at a time. Inside
a block ports are handed out per protocol, preferring the parity of the
inside port (RFC 4787 REQ-4), oldest-freed first so a port is reused as
late as possible. Blocks never handed out are used before released ones
for the same reason.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, summarize_address_range

from vnfs.nat.config import PublicPool
from vnfs.sdk.flow import Protocol

_GOLDEN = 0x9E3779B1  # 2**32 / phi: spreads consecutive subscriber addresses


class PortBlock:
    """One block while a subscriber holds it; the pool forgets it when released."""

    __slots__ = ("_free", "_used", "address", "first", "index", "last", "live", "owner", "shard")

    def __init__(
        self,
        *,
        index: int,
        address: IPv4Address,
        first: int,
        last: int,
        shard: int,
        owner: IPv4Address,
    ) -> None:
        self.index = index
        """position of the block in the whole pool (address index * blocks per address + n)"""
        self.address = address
        self.first = first
        self.last = last
        self.shard = shard
        self.owner = owner
        self.live = 0
        """ports in use, all protocols together"""
        self._used: dict[Protocol, set[int]] = {}
        # Per protocol: free even ports, free odd ports; built on first use so a
        # block restored from a fast path's table costs only its used ports.
        self._free: dict[Protocol, tuple[deque[int], deque[int]]] = {}

    def __repr__(self) -> str:
        return (
            f"PortBlock({self.address} {self.first}-{self.last}, shard {self.shard}, "
            f"owner {self.owner}, {self.live} live)"
        )

    def _queues(self, proto: Protocol) -> tuple[deque[int], deque[int]]:
        queues = self._free.get(proto)
        if queues is None:
            even = range(self.first + (self.first & 1), self.last + 1, 2)
            odd = range(self.first + 1 - (self.first & 1), self.last + 1, 2)
            used = self._used.get(proto)
            if used:
                queues = (
                    deque(p for p in even if p not in used),
                    deque(p for p in odd if p not in used),
                )
            else:  # a fresh block (the usual case): no filter to run per port
                queues = (deque(even), deque(odd))
            self._free[proto] = queues
        return queues

    def take(self, proto: Protocol, parity: int) -> int | None:
        """A free port of `proto`, of the parity (0 even, 1 odd) if one is left; None if full."""
        queues = self._queues(proto)
        queue = queues[parity & 1] or queues[1 - (parity & 1)]
        if not queue:
            return None
        port = queue.popleft()
        self._used.setdefault(proto, set()).add(port)
        self.live += 1
        return port

    def claim(self, proto: Protocol, port: int) -> bool:
        """Mark `port` used (rebuilding from a fast path's table); False if it already is."""
        if not self.first <= port <= self.last:
            raise ValueError(f"port {port} is outside block {self.first}-{self.last}")
        used = self._used.setdefault(proto, set())
        if port in used:
            return False
        used.add(port)
        queues = self._free.get(proto)
        if queues is not None:
            queues[port & 1].remove(port)
        self.live += 1
        return True

    def give_back(self, proto: Protocol, port: int) -> None:
        used = self._used.get(proto)
        if used is None or port not in used:
            raise ValueError(f"{proto.name} port {port} of {self!r} is not in use")
        used.remove(port)
        self.live -= 1
        queues = self._free.get(proto)
        if queues is not None:
            queues[port & 1].append(port)

    def used(self, proto: Protocol) -> frozenset[int]:
        return frozenset(self._used.get(proto, ()))


@dataclass(slots=True)
class _AddressBlocks:
    """Allocation state of one address's blocks."""

    next_fresh: int = 0
    """blocks below this were handed out at least once (or skipped while claimed)"""
    released: deque[int] = field(default_factory=deque)
    live: dict[int, PortBlock] = field(default_factory=dict)


class PortBlockPool:
    """Every block of the public pool and who holds it, per shard."""

    def __init__(self, pool: PublicPool, shards: int) -> None:
        if shards < 1:
            raise ValueError("a pool needs at least one shard")
        self.first_port = pool.first_port
        self.block_size = pool.port_block_size
        self.blocks_per_address = pool.blocks_per_address
        self.shards = shards
        starts: list[tuple[int, int, int]] = []  # (first address as int, size, first index)
        index = 0
        for network in pool.cidr:
            starts.append((int(network.network_address), network.num_addresses, index))
            index += network.num_addresses
        self.addresses = index
        if self.addresses < shards:
            raise ValueError(f"{self.addresses} addresses cannot be split into {shards} shards")
        self._by_index = starts  # in index order
        self._index_keys = [first for _, _, first in starts]
        self._by_address = sorted(starts)
        self._address_keys = [start for start, _, _ in self._by_address]
        self._bounds = [s * self.addresses // shards for s in range(shards + 1)]
        self._state: dict[int, _AddressBlocks] = {}
        self._in_use = [0] * shards

    # Address arithmetic ------------------------------------------------------

    def address_index(self, address: IPv4Address) -> int | None:
        """Position of `address` in the pool; None if it is not a pool address."""
        value = int(address)
        slot = bisect_right(self._address_keys, value) - 1
        if slot < 0:
            return None
        start, size, first = self._by_address[slot]
        return first + value - start if value < start + size else None

    def address_at(self, index: int) -> IPv4Address:
        if not 0 <= index < self.addresses:
            raise IndexError(f"address index {index} is outside the pool")
        start, _, first = self._by_index[bisect_right(self._index_keys, index) - 1]
        return IPv4Address(start + index - first)

    def __contains__(self, address: object) -> bool:
        return isinstance(address, IPv4Address) and self.address_index(address) is not None

    def shard_of_index(self, index: int) -> int:
        return bisect_right(self._bounds, index) - 1

    def shard_of(self, address: IPv4Address) -> int | None:
        index = self.address_index(address)
        return None if index is None else self.shard_of_index(index)

    def shard_range(self, shard: int) -> range:
        """Address indices shard `shard` owns."""
        self._check_shard(shard)
        return range(self._bounds[shard], self._bounds[shard + 1])

    def shard_addresses(self, shard: int) -> Iterator[IPv4Address]:
        return (self.address_at(i) for i in self.shard_range(shard))

    def shard_prefixes(self, shard: int) -> list[IPv4Network]:
        """The fewest prefixes covering exactly the shard's addresses (for return routes)."""
        prefixes: list[IPv4Network] = []
        indices = self.shard_range(shard)
        position = indices.start
        while position < indices.stop:
            start, size, first = self._by_index[bisect_right(self._index_keys, position) - 1]
            last = min(indices.stop, first + size) - 1
            prefixes.extend(
                summarize_address_range(
                    IPv4Address(start + position - first), IPv4Address(start + last - first)
                )
            )
            position = last + 1
        return prefixes

    def locate(self, address: IPv4Address, port: int) -> tuple[int, int] | None:
        """(address index, block number) of a public endpoint; None outside every block."""
        index = self.address_index(address)
        if index is None or port < self.first_port:
            return None
        number = (port - self.first_port) // self.block_size
        return (index, number) if number < self.blocks_per_address else None

    def _check_shard(self, shard: int) -> None:
        if not 0 <= shard < self.shards:
            raise ValueError(f"shard {shard} is outside 0..{self.shards - 1}")

    # Allocation -------------------------------------------------------------

    def _new_block(self, index: int, number: int, owner: IPv4Address) -> PortBlock:
        first = self.first_port + number * self.block_size
        block = PortBlock(
            index=index * self.blocks_per_address + number,
            address=self.address_at(index),
            first=first,
            last=first + self.block_size - 1,
            shard=self.shard_of_index(index),
            owner=owner,
        )
        self._state.setdefault(index, _AddressBlocks()).live[number] = block
        self._in_use[block.shard] += 1
        return block

    def _free_number(self, index: int) -> int | None:
        state = self._state.setdefault(index, _AddressBlocks())
        if len(state.live) >= self.blocks_per_address:
            return None
        while state.next_fresh < self.blocks_per_address and state.next_fresh in state.live:
            state.next_fresh += 1
        if state.next_fresh < self.blocks_per_address:
            number = state.next_fresh
            state.next_fresh += 1
            return number
        return state.released.popleft()

    def preferred_index(self, shard: int, owner: IPv4Address) -> int:
        """The address a subscriber starts at on `shard`: stable while the shard layout is."""
        indices = self.shard_range(shard)
        spread = ((int(owner) * _GOLDEN) & 0xFFFFFFFF) * len(indices) >> 32
        return indices.start + spread

    def allocate(
        self, shard: int, owner: IPv4Address, address: IPv4Address | None = None
    ) -> PortBlock | None:
        """A free block of `shard` for `owner`: on `address` if given (paired pooling),
        else on the subscriber's preferred address or the next one with room. None if
        there is none."""
        self._check_shard(shard)
        if address is not None:
            index = self.address_index(address)
            if index is None or self.shard_of_index(index) != shard:
                raise ValueError(f"{address} is not an address of shard {shard}")
            number = self._free_number(index)
            return None if number is None else self._new_block(index, number, owner)
        indices = self.shard_range(shard)
        if self._in_use[shard] >= len(indices) * self.blocks_per_address:
            return None
        start = self.preferred_index(shard, owner) - indices.start
        for step in range(len(indices)):
            index = indices.start + (start + step) % len(indices)
            number = self._free_number(index)
            if number is not None:
                return self._new_block(index, number, owner)
        return None  # unreachable while _in_use is right; kept for safety

    def claim(self, address: IPv4Address, port: int, owner: IPv4Address) -> PortBlock | None:
        """The block holding a public endpoint found in a fast path's table, allocated to
        `owner` if it was free. None if the endpoint is in no block or another
        subscriber holds that block."""
        located = self.locate(address, port)
        if located is None:
            return None
        index, number = located
        state = self._state.setdefault(index, _AddressBlocks())
        block = state.live.get(number)
        if block is not None:
            return block if block.owner == owner else None
        if number < state.next_fresh:
            state.released.remove(number)
        return self._new_block(index, number, owner)

    def release(self, block: PortBlock) -> None:
        """Give an empty block back to its shard."""
        if block.live:
            raise ValueError(f"{block!r} still has live ports")
        index, number = divmod(block.index, self.blocks_per_address)
        state = self._state.get(index)
        if state is None or state.live.get(number) is not block:
            raise ValueError(f"{block!r} is not allocated")
        del state.live[number]
        self._in_use[block.shard] -= 1
        if number < state.next_fresh:
            state.released.append(number)
        if not state.live and not state.released:
            del self._state[index]  # all its blocks are fresh again

    def holder(self, address: IPv4Address, port: int) -> PortBlock | None:
        """The allocated block holding this public endpoint, if any."""
        located = self.locate(address, port)
        if located is None:
            return None
        state = self._state.get(located[0])
        return None if state is None else state.live.get(located[1])

    # Accounting -------------------------------------------------------------

    def in_use(self, shard: int) -> int:
        self._check_shard(shard)
        return self._in_use[shard]

    def total(self, shard: int) -> int:
        return len(self.shard_range(shard)) * self.blocks_per_address

    def allocated(self) -> Iterator[PortBlock]:
        for state in self._state.values():
            yield from state.live.values()
