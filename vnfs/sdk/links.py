"""What a unit's process learns about its own network namespace from /sys and /proc.

Read directly (no `ip` subprocess): the agent looks neighbours up every
heartbeat, and these files are the kernel's own view of the namespace the
process runs in.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator, Mapping
from ipaddress import IPv4Address
from pathlib import Path

SYS_NET = Path("/sys/class/net")
PROC_ARP = Path("/proc/net/arp")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
IFF_LOOPBACK = 0x8
IFF_NOARP = 0x80
ATF_COM = 0x02
"""the neighbour entry is complete (has a link-layer address)"""
NO_MAC = "00:00:00:00:00:00"

_IFINDEX_NAME = re.compile(r"^ifindex([0-9]+)$")


class LinkError(RuntimeError):
    """An interface the configuration names is missing or unusable."""


def ifindex(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise LinkError(f"interface {name} does not exist in this network namespace") from None


def mac(name: str) -> str:
    try:
        return (SYS_NET / name / "address").read_text().strip().lower()
    except OSError:
        raise LinkError(f"cannot read the MAC address of interface {name}") from None


def uses_arp(name: str) -> bool:
    """False for interfaces without neighbour resolution (loopback, some tunnels)."""
    try:
        flags = int((SYS_NET / name / "flags").read_text().strip(), 16)
    except (OSError, ValueError):
        raise LinkError(f"cannot read the flags of interface {name}") from None
    return not flags & (IFF_NOARP | IFF_LOOPBACK)


def neighbour_mac(address: IPv4Address, device: str, arp_table: Path = PROC_ARP) -> str | None:
    """The link-layer address the kernel resolved for `address` on `device`, if any."""
    if not uses_arp(device):
        return NO_MAC
    try:
        lines = arp_table.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # IP address, HW type, Flags, HW address, Mask, Device
        if len(fields) < 6 or fields[0] != str(address) or fields[5] != device:
            continue
        if int(fields[2], 16) & ATF_COM and fields[3] != NO_MAC:
            return fields[3].lower()
    return None


def enable_ip_forward(path: Path = IP_FORWARD) -> None:
    """Turn IPv4 forwarding on in this namespace (the datapath hands packets to routing)."""
    try:
        if path.read_text().strip() != "1":
            path.write_text("1\n")
    except OSError as exc:
        raise LinkError(f"cannot enable IPv4 forwarding ({path}): {exc.strerror}") from None


class IfindexMap(Mapping[str, int]):
    """Interface name -> ifindex, also accepting the 'ifindex<N>' names that decoding
    gives interfaces it does not know, so such rules encode back unchanged."""

    def __init__(self, known: Mapping[str, int]) -> None:
        self._known = dict(known)

    def __getitem__(self, name: str) -> int:
        if name in self._known:
            return self._known[name]
        match = _IFINDEX_NAME.match(name)
        if match is None:
            raise KeyError(name)
        return int(match[1])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (
            name in self._known or _IFINDEX_NAME.match(name) is not None
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)
