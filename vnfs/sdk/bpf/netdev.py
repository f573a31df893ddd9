"""Network interface facts and offload switches through ioctl, in the caller's namespace.

ioctl on a socket answers for the namespace the socket was made in (the calling
thread's), unlike /sys/class/net, which shows the namespace sysfs was mounted in.
"""

from __future__ import annotations

import ctypes
import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass

from vnfs.sdk.driver import DriverError

SIOCGIFFLAGS = 0x8913
SIOCGIFADDR = 0x8915
SIOCGIFNETMASK = 0x891B
SIOCGIFMTU = 0x8921
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933
SIOCETHTOOL = 0x8946
IFF_UP = 0x1
IFF_RUNNING = 0x40
ETHTOOL_SRXCSUM = 0x15
ETHTOOL_GTXCSUM = 0x16
ETHTOOL_STXCSUM = 0x17
ETHTOOL_GTSO = 0x1E
ETHTOOL_STSO = 0x1F
ETHTOOL_GGRO = 0x2B
ETHTOOL_SGRO = 0x2C
IFNAMSIZ = 16
_IFREQ_SIZE = 40


@dataclass(frozen=True, slots=True)
class LinkInfo:
    name: str
    ifindex: int
    mac: str
    address: str | None
    """primary IPv4 address with prefix length, e.g. '10.0.0.1/24'"""
    mtu: int
    up: bool
    """administratively up and carrier present"""


class _EthtoolValue(ctypes.Structure):
    _fields_ = (("cmd", ctypes.c_uint32), ("data", ctypes.c_uint32))


def _ifreq(name: str, tail: bytes = b"") -> bytearray:
    encoded = name.encode()
    if not encoded or len(encoded) >= IFNAMSIZ:
        raise DriverError(f"{name!r} is not an interface name")
    request = bytearray(_IFREQ_SIZE)
    request[: len(encoded)] = encoded
    request[IFNAMSIZ : IFNAMSIZ + len(tail)] = tail
    return request


def _ioctl(sock: socket.socket, request: int, name: str, tail: bytes = b"") -> bytearray:
    buffer = _ifreq(name, tail)
    try:
        fcntl.ioctl(sock.fileno(), request, buffer)
    except OSError as exc:
        raise DriverError(f"interface {name}: {exc.strerror}") from None
    return buffer


def _socket() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def _ipv4(sock: socket.socket, request: int, name: str) -> str | None:
    buffer = _ifreq(name)
    try:
        fcntl.ioctl(sock.fileno(), request, buffer)
    except OSError:
        return None  # EADDRNOTAVAIL: no IPv4 address
    # struct sockaddr_in inside the ifreq union: family u16, port u16, address
    return socket.inet_ntoa(bytes(buffer[IFNAMSIZ + 4 : IFNAMSIZ + 8]))


def ifindex(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise DriverError(f"there is no interface {name!r} in this network namespace") from None


def link_info(name: str) -> LinkInfo:
    with _socket() as sock:
        index = struct.unpack_from("=i", _ioctl(sock, SIOCGIFINDEX, name), IFNAMSIZ)[0]
        hwaddr = _ioctl(sock, SIOCGIFHWADDR, name)[IFNAMSIZ + 2 : IFNAMSIZ + 8]
        flags = struct.unpack_from("=H", _ioctl(sock, SIOCGIFFLAGS, name), IFNAMSIZ)[0]
        mtu = struct.unpack_from("=i", _ioctl(sock, SIOCGIFMTU, name), IFNAMSIZ)[0]
        address = _ipv4(sock, SIOCGIFADDR, name)
        netmask = _ipv4(sock, SIOCGIFNETMASK, name)
    cidr = None
    if address is not None:
        prefix = ipaddress.IPv4Network(f"0.0.0.0/{netmask or '255.255.255.255'}").prefixlen
        cidr = f"{address}/{prefix}"
    return LinkInfo(
        name=name,
        ifindex=index,
        mac=":".join(f"{octet:02x}" for octet in hwaddr),
        address=cidr,
        mtu=mtu,
        up=bool(flags & IFF_UP) and bool(flags & IFF_RUNNING),
    )


def _ethtool(name: str, command: int, data: int = 0) -> int:
    value = _EthtoolValue(command, data)
    pointer = struct.pack("=Q", ctypes.addressof(value))
    with _socket() as sock:
        _ioctl(sock, SIOCETHTOOL, name, pointer)
    return int(value.data)


def tx_checksum(name: str) -> bool:
    return bool(_ethtool(name, ETHTOOL_GTXCSUM))


def set_tx_checksum(name: str, enabled: bool) -> None:
    """Switch transmit checksum offload (turning it off also turns TSO off)."""
    _ethtool(name, ETHTOOL_STXCSUM, int(enabled))


def set_rx_checksum(name: str, enabled: bool) -> None:
    """Switch receive checksum offload (a veth without it makes the stack verify)."""
    _ethtool(name, ETHTOOL_SRXCSUM, int(enabled))


def set_tso(name: str, enabled: bool) -> None:
    _ethtool(name, ETHTOOL_STSO, int(enabled))


def gro(name: str) -> bool:
    return bool(_ethtool(name, ETHTOOL_GGRO))


def set_gro(name: str, enabled: bool) -> None:
    _ethtool(name, ETHTOOL_SGRO, int(enabled))
