"""Builders for the NAT logic tests: configs, fast paths and punted packets."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from vnfs.nat.audit import AuditLog
from vnfs.nat.config import NatConfig, merge
from vnfs.nat.logic import NatLogic
from vnfs.sdk.driver import Interface
from vnfs.sdk.flow import FlowKey, FlowRule, Protocol, Rewrite
from vnfs.sdk.vnf import FastPathInfo, Packet

POOL = "203.0.113.0/26"
"""the VNFD's pool: 64 addresses, 8 per shard with the default 8 shards"""
REMOTE = IPv4Address("198.51.100.7")
OTHER_REMOTE = IPv4Address("198.51.100.99")

INSIDE = Interface("inside", 2, "02:00:00:00:00:02", "10.10.0.1/24", "inside")
OUTSIDE = Interface("outside", 3, "02:00:00:00:00:03", "198.51.100.1/24", "outside")
PUNT = Interface("punt", 4, "02:00:00:00:00:04", "10.255.0.5/27", "punt")


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def config(**overrides: Any) -> NatConfig:
    base: dict[str, Any] = {"public_pool": {"cidr": POOL}}
    return NatConfig.model_validate(merge(base, overrides))


def logic(tmp_path: Path, *, per_mapping: bool = True, **overrides: Any) -> NatLogic:
    """A NatLogic writing its audit log to tmp_path/audit.jsonl."""
    audit = AuditLog(tmp_path / "audit.jsonl", per_mapping=per_mapping)
    return NatLogic(config(**overrides), audit=audit)


def fastpath(instance: int = 0, epoch: str = "epoch-1") -> FastPathInfo:
    return FastPathInfo(instance=instance, epoch=epoch, interfaces=(INSIDE, OUTSIDE, PUNT))


def packet(
    src: str | IPv4Address,
    dst: str | IPv4Address,
    sport: int,
    dport: int,
    proto: Protocol = Protocol.UDP,
    *,
    fp: FastPathInfo | None = None,
    ingress: Interface | None = INSIDE,
    icmp_type: int | None = None,
) -> Packet:
    key = FlowKey(IPv4Address(src), IPv4Address(dst), sport, dport, proto)
    if proto is Protocol.ICMP and icmp_type is None:
        icmp_type = 8 if ingress is INSIDE else 0
    return Packet(
        key=key,
        fastpath=fp or fastpath(),
        ingress=ingress,
        data=b"",
        tcp_flags=0x02 if proto is Protocol.TCP else 0,
        icmp_type=icmp_type,
        icmp_code=0 if proto is Protocol.ICMP else None,
    )


def outbound(
    nat: NatLogic,
    src: str,
    sport: int,
    dst: str | IPv4Address = REMOTE,
    dport: int = 53,
    proto: Protocol = Protocol.UDP,
    fp: FastPathInfo | None = None,
) -> tuple[FlowRule, FlowRule]:
    """The two rules of a new outbound flow (asserts there are two)."""
    rules = nat.on_new_flow(packet(src, dst, sport, dport, proto, fp=fp))
    assert len(rules) == 2, rules
    return rules[0], rules[1]


def public_of(rule: FlowRule) -> tuple[IPv4Address, int]:
    """The public endpoint an outbound rule rewrites the source to."""
    rewrite = rule.action(Rewrite)
    assert rewrite is not None and rewrite.src is not None and rewrite.sport is not None
    return rewrite.src, rewrite.sport
