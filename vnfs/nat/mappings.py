"""Endpoint-independent mappings, their port blocks and their sessions.

A mapping binds an inside endpoint (address, port, protocol) on one fast-path
shard to a public endpoint, and is reused for every destination (RFC 4787
REQ-1, endpoint-independent mapping). All mappings of one subscriber on one
shard use the same public address (REQ-2, paired pooling). For ICMP echo the
"port" is the echo identifier.

Sessions (a destination talking to a mapping, i.e. one pair of flow rules)
are counted per mapping and per remote address: a mapping lives while any
of its sessions does, and its remote addresses are what address-dependent
filtering admits (REQ-8). When the last session ends the port goes back to
its block, and an empty block goes back to the pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address

from vnfs.nat.audit import AuditLog
from vnfs.nat.config import Filtering
from vnfs.nat.pool import PortBlock, PortBlockPool
from vnfs.sdk.flow import Protocol

MAPPING_ID_BITS = 40
"""mapping ids fit the cookie's low 40 bits (vnfs.nat.rules)"""


class Refusal(StrEnum):
    """Why a new mapping could not be made (port exhaustion)."""

    POOL_EXHAUSTED = "pool_exhausted"
    """a new subscriber found no free block on its shard"""
    ADDRESS_EXHAUSTED = "address_exhausted"
    """the subscriber needs another block, but its public address (paired pooling) has none"""
    SUBSCRIBER_LIMIT = "subscriber_limit"
    """the subscriber holds its maximum of blocks and all their ports of the protocol"""


@dataclass(eq=False, slots=True)
class Mapping:
    id: int
    shard: int
    proto: Protocol
    inside_ip: IPv4Address
    inside_port: int
    public_ip: IPv4Address
    public_port: int
    block: PortBlock
    sessions: int = 0
    remotes: dict[int, int] = field(default_factory=dict)
    """remote address (as int) -> sessions with it (what address-dependent filtering admits)"""

    def __str__(self) -> str:
        return (
            f"{self.proto.name} {self.inside_ip}:{self.inside_port} = "
            f"{self.public_ip}:{self.public_port} (shard {self.shard}, id {self.id})"
        )


@dataclass(eq=False, slots=True)
class Subscriber:
    """One inside address on one shard, with the blocks it holds."""

    shard: int
    address: IPv4Address
    public_ip: IPv4Address
    blocks: list[PortBlock] = field(default_factory=list)


class MappingTable:
    """Mappings of every shard, indexed by inside and by public endpoint."""

    def __init__(
        self,
        pool: PortBlockPool,
        *,
        filtering: Filtering,
        max_blocks_per_subscriber: int,
        audit: AuditLog | None = None,
    ) -> None:
        if max_blocks_per_subscriber < 1:
            raise ValueError("max_blocks_per_subscriber must be at least 1")
        self.pool = pool
        self.endpoint_independent_filtering = filtering == "endpoint-independent"
        self.max_blocks = max_blocks_per_subscriber
        self.audit = audit
        # Keys hold addresses as ints: IPv4Address hashes through hex() and this is
        # the per-flow path.
        self._inside: dict[tuple[int, int, int, int], Mapping] = {}
        self._public: dict[tuple[int, int, int], Mapping] = {}
        self._by_id: dict[int, Mapping] = {}
        self._subscribers: dict[tuple[int, int], Subscriber] = {}
        self._next_id = 1
        self.active: dict[Protocol, int] = dict.fromkeys(Protocol, 0)
        """live mappings per protocol"""

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Mapping]:
        return iter(list(self._by_id.values()))

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscriber(self, shard: int, address: IPv4Address) -> Subscriber | None:
        return self._subscribers.get((shard, int(address)))

    def find_inside(
        self, shard: int, address: IPv4Address, port: int, proto: Protocol
    ) -> Mapping | None:
        return self._inside.get((shard, int(address), port, proto))

    def find_public(self, address: IPv4Address, port: int, proto: Protocol) -> Mapping | None:
        return self._public.get((int(address), port, proto))

    def by_id(self, mapping_id: int) -> Mapping | None:
        return self._by_id.get(mapping_id)

    def admits(self, mapping: Mapping, remote: IPv4Address) -> bool:
        """Whether inbound traffic from `remote` may use `mapping` (the filtering behaviour)."""
        return self.endpoint_independent_filtering or int(remote) in mapping.remotes

    # Creating ---------------------------------------------------------------

    def obtain(
        self, shard: int, address: IPv4Address, port: int, proto: Protocol
    ) -> Mapping | Refusal:
        """The mapping of this inside endpoint, made if there is none yet."""
        mapping = self._inside.get((shard, int(address), port, proto))
        if mapping is not None:
            return mapping
        subscriber = self._subscribers.get((shard, int(address)))
        if subscriber is not None:
            for block in subscriber.blocks:
                public_port = block.take(proto, port)
                if public_port is not None:
                    return self._add(shard, proto, address, port, block, public_port)
            if len(subscriber.blocks) >= self.max_blocks:
                return Refusal.SUBSCRIBER_LIMIT
            if self.pool.shard_of(subscriber.public_ip) != shard:
                # Only after a restore under a changed pool layout.
                return Refusal.ADDRESS_EXHAUSTED
            block_or_none = self.pool.allocate(shard, address, subscriber.public_ip)
            if block_or_none is None:
                return Refusal.ADDRESS_EXHAUSTED
        else:
            block_or_none = self.pool.allocate(shard, address)
            if block_or_none is None:
                return Refusal.POOL_EXHAUSTED
            subscriber = Subscriber(shard, address, block_or_none.address)
            self._subscribers[(shard, int(address))] = subscriber
        block = block_or_none
        subscriber.blocks.append(block)
        self._block_event("block_allocated", block, shard)
        public_port = block.take(proto, port)
        assert public_port is not None, "a new block has every port free"
        return self._add(shard, proto, address, port, block, public_port)

    def _new_id(self, wanted: int = 0) -> int:
        if 0 < wanted < 1 << MAPPING_ID_BITS and wanted not in self._by_id:
            self._next_id = max(self._next_id, wanted + 1) % (1 << MAPPING_ID_BITS) or 1
            return wanted
        while self._next_id in self._by_id:
            self._next_id = (self._next_id + 1) % (1 << MAPPING_ID_BITS) or 1
        mapping_id = self._next_id
        self._next_id = (mapping_id + 1) % (1 << MAPPING_ID_BITS) or 1
        return mapping_id

    def _add(
        self,
        shard: int,
        proto: Protocol,
        address: IPv4Address,
        port: int,
        block: PortBlock,
        public_port: int,
        *,
        wanted_id: int = 0,
        event: str = "mapping_created",
    ) -> Mapping:
        mapping = Mapping(
            id=self._new_id(wanted_id),
            shard=shard,
            proto=proto,
            inside_ip=address,
            inside_port=port,
            public_ip=block.address,
            public_port=public_port,
            block=block,
        )
        self._inside[(shard, int(address), port, proto)] = mapping
        self._public[(int(block.address), public_port, proto)] = mapping
        self._by_id[mapping.id] = mapping
        self.active[proto] += 1
        self._mapping_event(event, mapping)
        return mapping

    def restore(
        self,
        shard: int,
        proto: Protocol,
        inside: tuple[IPv4Address, int],
        public: tuple[IPv4Address, int],
        mapping_id: int = 0,
    ) -> Mapping | str:
        """Re-create a mapping found in a fast path's table; a reason string if it
        cannot be, because it contradicts what is known already."""
        address, port = inside
        public_ip, public_port = public
        mapping = self._inside.get((shard, int(address), port, proto))
        if mapping is not None:
            if (mapping.public_ip, mapping.public_port) == public:
                return mapping
            return f"{address}:{port} is mapped to {mapping.public_ip}:{mapping.public_port}"
        other = self._public.get((int(public_ip), public_port, proto))
        if other is not None:
            return f"{public_ip}:{public_port} belongs to {other}"
        subscriber = self._subscribers.get((shard, int(address)))
        held = self.pool.holder(public_ip, public_port)
        if held is not None and (subscriber is None or held not in subscriber.blocks):
            return f"{public_ip}:{public_port} is in {held!r} of another subscriber"
        block = held or self.pool.claim(public_ip, public_port, address)
        if block is None:
            return f"{public_ip}:{public_port} is in no block of the public pool"
        if subscriber is None:
            subscriber = Subscriber(shard, address, block.address)
            self._subscribers[(shard, int(address))] = subscriber
        if held is None:
            subscriber.blocks.append(block)
            self._block_event("block_restored", block, shard)
        claimed = block.claim(proto, public_port)
        assert claimed, "every used port has a mapping in _public"
        return self._add(
            shard,
            proto,
            address,
            port,
            block,
            public_port,
            wanted_id=mapping_id,
            event="mapping_restored",
        )

    # Sessions ---------------------------------------------------------------

    def attach(self, mapping: Mapping, remote: IPv4Address) -> None:
        mapping.sessions += 1
        key = int(remote)
        mapping.remotes[key] = mapping.remotes.get(key, 0) + 1

    def detach(self, mapping: Mapping, remote: IPv4Address, reason: str = "idle") -> None:
        """One session of `mapping` with `remote` ended; the last one releases the mapping."""
        key = int(remote)
        left = mapping.remotes.get(key, 0) - 1
        if left < 0 or mapping.sessions < 1:
            raise ValueError(f"{mapping} has no session with {remote}")
        if left:
            mapping.remotes[key] = left
        else:
            del mapping.remotes[key]
        mapping.sessions -= 1
        if mapping.sessions == 0:
            self._release(mapping, reason)

    def discard_if_unused(self, mapping: Mapping) -> None:
        """Release a mapping made for a flow that was then refused."""
        if mapping.sessions == 0 and self._by_id.get(mapping.id) is mapping:
            self._release(mapping, "unused")

    def _release(self, mapping: Mapping, reason: str) -> None:
        del self._inside[
            (mapping.shard, int(mapping.inside_ip), mapping.inside_port, mapping.proto)
        ]
        del self._public[(int(mapping.public_ip), mapping.public_port, mapping.proto)]
        del self._by_id[mapping.id]
        self.active[mapping.proto] -= 1
        self._mapping_event("mapping_released", mapping, reason)
        block = mapping.block
        block.give_back(mapping.proto, mapping.public_port)
        if block.live:
            return
        subscriber = self._subscribers[(mapping.shard, int(mapping.inside_ip))]
        subscriber.blocks.remove(block)
        self.pool.release(block)
        self._block_event("block_released", block, mapping.shard, reason)
        if not subscriber.blocks:
            del self._subscribers[(mapping.shard, int(mapping.inside_ip))]

    # Audit ------------------------------------------------------------------

    def _block_event(
        self, event: str, block: PortBlock, shard: int, reason: str | None = None
    ) -> None:
        if self.audit is not None:
            self.audit.block(
                event,
                subscriber=block.owner,
                public_ip=block.address,
                port_first=block.first,
                port_last=block.last,
                fastpath=shard,
                reason=reason,
            )

    def _mapping_event(self, event: str, mapping: Mapping, reason: str | None = None) -> None:
        if self.audit is not None and self.audit.per_mapping:
            self.audit.mapping(
                event,
                subscriber=mapping.inside_ip,
                inside_port=mapping.inside_port,
                public_ip=mapping.public_ip,
                public_port=mapping.public_port,
                proto=mapping.proto.name.lower(),
                fastpath=mapping.shard,
                mapping_id=mapping.id,
                reason=reason,
            )
