"""How fast paths and the slow path of one VNF instance find each other on the punt link.

Two datagrams, on their own UDP ports (not the punt port, whose hot loop then
never parses anything but punt headers):

* ANNOUNCE, slow path -> fast paths: sent every heartbeat (and at start) to
  the punt subnet's broadcast address on the fast paths' discovery port
  (RuntimeSettings.discovery_port, 7703), and unicast in answer to every
  REGISTER. It says where punted packets go (punt address and port) and where
  registrations go (control port).
* REGISTER, fast path -> slow path: sent to the slow path's control port
  (7702) when an ANNOUNCE arrives and then every heartbeat. It says who the
  fast path is (replica index and an epoch that changes whenever the agent
  starts with an empty table), its interfaces, where its rule-push server
  (TCP) and re-inject port listen, and whether its datapath takes INSTALL
  datagrams. The slow path connects to the rule-push
  port; a fast path whose REGISTERs stop has left.

A fast path configured with an explicit slow path address (VIMs without L2
broadcast) sends REGISTERs there without waiting, and learns the punt port
from the unicast ANNOUNCE answer.

Wire format: an 8-byte header, then a UTF-8 JSON object validated by the
pydantic models below (unknown fields are rejected, sizes are bounded):

    0 magic "VNFD" (4 bytes)   4 version u8 (1)   5 kind u8 (1 ANNOUNCE, 2 REGISTER)
    6 body length u16 (network order)

Both carry the VNF instance id, so units of another VNF instance sharing a
broadcast domain are ignored.
"""

from __future__ import annotations

import struct
import sys
from enum import IntEnum
from ipaddress import IPv4Address, IPv4Interface
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from vnfs.sdk.driver import Interface

MAGIC = b"VNFD"
VERSION = 1
HEADER = struct.Struct("!4sBBH")
MAX_DATAGRAM = 4096
"""an Ethernet-MTU datagram is enough for a handful of interfaces; 4 KiB leaves room"""
MAX_INTERFACES = 16

Port = Annotated[int, Field(ge=1, le=0xFFFF)]
_MAC = r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"
_TOKEN = r"^[A-Za-z0-9._-]{1,64}$"


class Kind(IntEnum):
    ANNOUNCE = 1
    REGISTER = 2


class DiscoveryError(ValueError):
    """A datagram that is not a valid ANNOUNCE or REGISTER; the message says why."""


class _Message(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class Announce(_Message):
    """The slow path of one VNF instance, and where it listens."""

    vnf_instance_id: str = Field(min_length=1, max_length=128)
    slowpath_id: str = Field(pattern=_TOKEN)
    """random per slow path start; a new value means the slow path restarted"""
    punt_address: IPv4Address
    punt_port: Port
    control_port: Port


class InterfaceInfo(_Message):
    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,15}$")
    ifindex: int = Field(ge=1, le=0x7FFFFFFF)
    mac: str = Field(pattern=_MAC)
    address: IPv4Interface | None = None
    role: str = Field(pattern=_TOKEN)
    vrf: int = Field(default=0, ge=0, le=0xFFFF)
    """the VRF the datapath keys this interface's flows with: punted packets' keys carry it"""

    @classmethod
    def of(cls, interface: Interface) -> InterfaceInfo:
        return cls(
            name=interface.name,
            ifindex=interface.ifindex,
            mac=interface.mac.lower(),
            address=IPv4Interface(interface.address) if interface.address else None,
            role=interface.role,
            vrf=interface.vrf,
        )

    def to_interface(self) -> Interface:
        return Interface(
            name=self.name,
            ifindex=self.ifindex,
            mac=self.mac,
            address=str(self.address) if self.address else None,
            role=self.role,
            vrf=self.vrf,
        )


class Register(_Message):
    """One fast-path instance, and where its agent listens."""

    vnf_instance_id: str = Field(min_length=1, max_length=128)
    instance: int = Field(ge=0, le=0xFFFF)
    epoch: str = Field(pattern=_TOKEN)
    punt_address: IPv4Address
    """the fast path's address on the punt link: rule pushes and re-injects go there"""
    rulepush_port: Port
    reinject_port: Port
    byte_order: Literal["little", "big"] = sys.byteorder
    """rule records are in host order (the BPF map's); both ends must agree"""
    datagram_installs: bool = False
    """the datapath takes INSTALL datagrams on the re-inject port (`vnfs.sdk.encoding`)"""
    interfaces: tuple[InterfaceInfo, ...] = Field(max_length=MAX_INTERFACES)


Message = Announce | Register


def encode(message: Message) -> bytes:
    kind = Kind.ANNOUNCE if isinstance(message, Announce) else Kind.REGISTER
    body = message.model_dump_json(by_alias=True, exclude_none=True).encode()
    datagram = HEADER.pack(MAGIC, VERSION, kind, len(body)) + body
    if len(datagram) > MAX_DATAGRAM:
        raise DiscoveryError(
            f"{kind.name} of {len(datagram)} bytes exceeds the {MAX_DATAGRAM}-byte limit"
        )
    return datagram


def decode(datagram: bytes) -> Message:
    """The ANNOUNCE or REGISTER in `datagram`; DiscoveryError if it is anything else."""
    if len(datagram) < HEADER.size:
        raise DiscoveryError(f"a datagram of {len(datagram)} bytes is too short")
    if len(datagram) > MAX_DATAGRAM:
        raise DiscoveryError(f"a datagram of {len(datagram)} bytes exceeds {MAX_DATAGRAM}")
    magic, version, kind, length = HEADER.unpack_from(datagram)
    if magic != MAGIC:
        raise DiscoveryError("not a discovery datagram (bad magic)")
    if version != VERSION:
        raise DiscoveryError(f"discovery version {version}, expected {VERSION}")
    if length != len(datagram) - HEADER.size:
        raise DiscoveryError(
            f"header says {length} body bytes, datagram carries {len(datagram) - HEADER.size}"
        )
    body = datagram[HEADER.size :]
    try:
        if kind == Kind.ANNOUNCE:
            return Announce.model_validate_json(body)
        if kind == Kind.REGISTER:
            return Register.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'body'}: {item['msg']}"
            for item in exc.errors(include_url=False)
        )
        raise DiscoveryError(f"invalid {Kind(kind).name}: {problems}") from None
    raise DiscoveryError(f"unknown discovery kind {kind}")
