"""The punt path of a VPP fast path: VPP's punt socket <-> the SDK's punt datagrams.

VPP cannot prepend the SDK's 8-byte punt header itself (that needs a VPP
plugin), so the driver relays: VPP hands each miss to this process over its
punt socket (`punt_socket_register`, a Unix datagram socket; each datagram
is VPP's `punt_packetdesc_t {u32 sw_if_index; u32 action}` in host order,
then the frame from its Ethernet header), and the relay sends the IPv4
packet on as the same UDP datagram the tc-BPF datapath sends: from
local_address:local_port to the slow path, `encode_punt(MISS, instance,
ifindex, packet)`, where ifindex is the one the agent reported for the VPP
interface the packet came in on.

Re-injection goes the other way: a REINJECT datagram from the slow path is
written to VPP's punt server socket with action PUNT_IP4_ROUTED, which puts
the packet into ip4-lookup of the ingress interface's table. That skips the
features of the input arc (ABF, NAT44-ED), so the relay asks the driver
(`Reinjector`) to apply the packet's new rule first: rewritten for a NAT
rule, unchanged for a FIB-routed one; a rule VPP could only apply in its
input features (next hop, interface, tunnel) is not re-injected and counted
as a re-inject error — the flow's next packet takes the rule in VPP.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vnfs.sdk.driver import PuntTarget
from vnfs.sdk.encoding import EncodingError, PuntKind, decode_punt, encode_punt

log = logging.getLogger("vnfs.vpp.punt")

PUNT_DESC = struct.Struct("=II")
"""VPP's punt_packetdesc_t (version 1): sw_if_index, action; host byte order"""
PUNT_HEADER_VERSION = 1
PUNT_L2 = 0
PUNT_IP4_ROUTED = 1
ETHERNET_HEADER = 14
ETH_P_IP = 0x0800
VLAN_TYPES = (0x8100, 0x88A8)
MAX_DATAGRAM = 65535
POLL_SECONDS = 0.2
"""how long the relay thread waits for a datagram before it looks at its stop flag"""


class PuntFormatError(ValueError):
    """A datagram from VPP that is not an IPv4 frame behind a punt descriptor."""


def ipv4_from_vpp(datagram: bytes | memoryview) -> tuple[int, memoryview]:
    """(sw_if_index, IPv4 packet) of one datagram VPP's punt socket sent."""
    view = memoryview(datagram)
    if len(view) < PUNT_DESC.size + ETHERNET_HEADER:
        raise PuntFormatError(f"a punted datagram of {len(view)} bytes is too short")
    sw_if_index, _action = PUNT_DESC.unpack_from(view)
    offset = PUNT_DESC.size + 12
    ethertype = int.from_bytes(view[offset : offset + 2], "big")
    while ethertype in VLAN_TYPES:
        offset += 4
        if len(view) < offset + 2:
            raise PuntFormatError("a punted frame ends inside its VLAN tags")
        ethertype = int.from_bytes(view[offset : offset + 2], "big")
    if ethertype != ETH_P_IP:
        raise PuntFormatError(f"a punted frame of ethertype {ethertype:#06x}, not IPv4")
    return sw_if_index, view[offset + 2 :]


def routed_to_vpp(sw_if_index: int, packet: bytes) -> bytes:
    """The datagram that makes VPP route `packet` as if it came in on sw_if_index."""
    return PUNT_DESC.pack(sw_if_index, PUNT_IP4_ROUTED) + packet


Reinjector = Callable[[int, bytes], bytes | None]
"""(ingress ifindex, IPv4 packet) -> the packet to route in VPP, or None to drop it"""


@dataclass(slots=True)
class RelayCounters:
    punted: int = 0
    punt_errors: int = 0
    reinjected: int = 0
    reinject_errors: int = 0
    """REINJECT datagrams that were malformed, foreign or not re-injectable"""


class PuntRelay:
    """Moves misses and re-injected packets between VPP and the slow path, on its own thread."""

    def __init__(
        self,
        *,
        target: PuntTarget,
        client_path: Path,
        vpp_path: str,
        ifindex_of: Mapping[int, int],
        reinject: Reinjector,
    ) -> None:
        self.target = target
        self.client_path = client_path
        self.vpp_path = vpp_path
        self.ifindex_of = dict(ifindex_of)
        """VPP sw_if_index -> the ifindex the agent reports for that interface"""
        self.sw_if_index_of = {ifindex: sw for sw, ifindex in self.ifindex_of.items()}
        self.reinject = reinject
        self.counters = RelayCounters()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._vpp = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._udp: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        try:
            with contextlib.suppress(FileNotFoundError):
                client_path.unlink()
            self._vpp.bind(str(client_path))
            for port in sorted({target.local_port, target.reinject_port}):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self._udp.append(sock)
                sock.bind((target.local_address, port))
        except OSError:
            self._close_sockets()
            raise

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vpp-punt-relay", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the punt relay thread did not stop within %.1f s", timeout)
            self._thread = None
        self._close_sockets()

    def snapshot(self) -> RelayCounters:
        with self._lock:
            return RelayCounters(
                **{
                    name: getattr(self.counters, name)
                    for name in RelayCounters.__dataclass_fields__
                }
            )

    def _close_sockets(self) -> None:
        for sock in (self._vpp, *self._udp):
            sock.close()
        with contextlib.suppress(OSError):
            self.client_path.unlink()

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.counters, name, getattr(self.counters, name) + 1)

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._vpp, selectors.EVENT_READ, self._from_vpp)
            for sock in self._udp:
                selector.register(sock, selectors.EVENT_READ, self._from_slowpath)
            while not self._stop.is_set():
                for key, _ in selector.select(POLL_SECONDS):
                    handler: Callable[[socket.socket], None] = key.data
                    try:
                        handler(key.fileobj)  # type: ignore[arg-type]
                    except OSError as exc:
                        log.warning("punt relay: %s", exc)

    def _from_vpp(self, sock: socket.socket) -> None:
        datagram = sock.recv(MAX_DATAGRAM)
        try:
            sw_if_index, packet = ipv4_from_vpp(datagram)
        except PuntFormatError as exc:
            log.debug("not punted: %s", exc)
            self._count("punt_errors")
            return
        ifindex = self.ifindex_of.get(sw_if_index)
        if ifindex is None:
            self._count("punt_errors")
            return
        message = encode_punt(PuntKind.MISS, self.target.instance, ifindex, bytes(packet))
        self._udp[0].sendto(message, (self.target.slowpath_address, self.target.slowpath_port))
        self._count("punted")

    def _from_slowpath(self, sock: socket.socket) -> None:
        datagram, (address, _port) = sock.recvfrom(MAX_DATAGRAM)
        if address != self.target.slowpath_address:
            self._count("reinject_errors")
            return
        try:
            kind, instance, ifindex, packet = decode_punt(datagram)
        except EncodingError:
            self._count("reinject_errors")
            return
        sw_if_index = self.sw_if_index_of.get(ifindex)
        if kind is not PuntKind.REINJECT or instance != self.target.instance or sw_if_index is None:
            self._count("reinject_errors")
            return
        routed = self.reinject(ifindex, bytes(packet))
        if routed is None:
            return  # the driver counted why
        self._vpp.sendto(routed_to_vpp(sw_if_index, routed), self.vpp_path)
        self._count("reinjected")
