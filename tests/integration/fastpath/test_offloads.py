"""Non-linear packets: GRO aggregates and AF_PACKET TX-ring frames are still translated.

Both reach tc with headers (partly) outside the linear area or as one skb for
many segments; the program pulls what it parses and rewrites the aggregate.
"""

from __future__ import annotations

import hashlib
import mmap
import socket
import struct
import threading
from ipaddress import IPv4Address

from tests.integration.fastpath import packets
from tests.integration.fastpath.topology import CLIENT, PUBLIC, SERVER, Lab
from vnfs.sdk.bpf import netdev, netns
from vnfs.sdk.bpf.driver import BpfDriver
from vnfs.sdk.flow import Count, FlowKey, FlowRule, Forward, Protocol, Rewrite

SOL_PACKET = 263
PACKET_VERSION = 10
PACKET_TX_RING = 13
TPACKET_V2 = 1
TP_STATUS_SEND_REQUEST = 1
FRAME_SIZE = 4096
TPACKET2_HDRLEN = 32  # TPACKET_ALIGN(sizeof(struct tpacket2_hdr)): where frame data starts


def nat(proto: Protocol, cport: int, sport: int, public_port: int) -> tuple[FlowRule, FlowRule]:
    out = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), cport, sport, proto),
        (Rewrite(src=IPv4Address(PUBLIC), sport=public_port), Forward(), Count()),
    )
    back = FlowRule(
        FlowKey(IPv4Address(SERVER), IPv4Address(PUBLIC), sport, public_port, proto),
        (Rewrite(dst=IPv4Address(CLIENT), dport=cport), Forward(), Count()),
    )
    return out, back


def tcp_checksum_errors(lab: Lab) -> int:
    snmp = lab.exec(lab.server, "cat", "/proc/net/snmp").stdout.splitlines()
    names, values = (line.split() for line in snmp if line.startswith("Tcp:"))
    return int(dict(zip(names, values, strict=True))["InCsumErrors"])


def test_large_tcp_transfer_with_gro_is_translated(lab: Lab, driver: BpfDriver):
    # The client sends MSS-sized segments (no TSO); GRO on the fast path's ingress
    # merges them into large non-linear skbs before tc sees them. The fast path's
    # egress segments them again in software (no checksum offload, hence no TSO) from
    # the checksums the program patched, and the server verifies every segment.
    with netns.entered_named(lab.client):
        netdev.set_tso("c0", False)
    with netns.entered_named(lab.fastpath):
        netdev.set_gro("in0", True)
        netdev.set_gro("out0", True)
        netdev.set_tx_checksum("out0", False)
        assert netdev.gro("in0")
    with netns.entered_named(lab.server):
        netdev.set_rx_checksum("s0", False)
    out, back = nat(Protocol.TCP, 40300, 5300, 61300)
    driver.install([out, back])
    payload = hashlib.sha256(b"seed").digest() * (32 * 1024 * 1024 // 32)
    listener = lab.socket(lab.server, socket.SOCK_STREAM)
    listener.bind((SERVER, 5300))
    listener.listen(1)
    client = lab.socket(lab.client, socket.SOCK_STREAM)
    client.settimeout(60)
    client.bind((CLIENT, 40300))
    client.connect((SERVER, 5300))
    connection, peer = listener.accept()
    connection.settimeout(60)
    assert peer == (PUBLIC, 61300)

    def send() -> None:
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    digest, received = hashlib.sha256(), 0
    while chunk := connection.recv(1 << 20):
        digest.update(chunk)
        received += len(chunk)
    sender.join(timeout=60)
    assert received == len(payload)
    assert digest.digest() == hashlib.sha256(payload).digest()
    for sock in (client, connection, listener):
        sock.close()

    assert tcp_checksum_errors(lab) == 0
    counted = driver.counters([out.key])[out.key]
    assert counted.bytes > len(payload)
    # More bytes per packet than any single frame: the program saw GRO aggregates.
    assert counted.bytes / counted.packets > 1514
    assert driver.datapath_counters()["malformed"] == 0


def _send_through_tx_ring(lab: Lab, frame: bytes) -> None:
    with netns.entered_named(lab.client):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    with sock:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        request = struct.pack("=IIII", FRAME_SIZE, 1, FRAME_SIZE, 1)  # block, count, frame, count
        sock.setsockopt(SOL_PACKET, PACKET_TX_RING, request)
        sock.bind(("c0", 0))
        ring = mmap.mmap(sock.fileno(), FRAME_SIZE)
        try:
            ring[TPACKET2_HDRLEN : TPACKET2_HDRLEN + len(frame)] = frame
            struct.pack_into("=II", ring, 0, TP_STATUS_SEND_REQUEST, len(frame))  # status, len
            sock.send(b"")  # flush the ring
        finally:
            # The kernel keeps the ring mapped until the socket closes; drop our mapping.
            ring.close()


def test_af_packet_tx_ring_frames_are_translated(lab: Lab, driver: BpfDriver):
    # tpacket_snd copies only the Ethernet header into the linear area; the rest of the
    # frame stays in ring pages, so the program must pull the IP and UDP headers.
    out, back = nat(Protocol.UDP, 40301, 5301, 61301)
    driver.install([out, back])
    server = lab.socket(lab.server)
    server.bind((SERVER, 5301))
    mac_in0 = bytes.fromhex(lab.link(lab.fastpath, "in0").mac.replace(":", ""))
    mac_c0 = bytes.fromhex(lab.link(lab.client, "c0").mac.replace(":", ""))
    datagram = packets.udp(CLIENT, 40301, SERVER, 5301, b"from the tx ring" * 20)
    _send_through_tx_ring(lab, mac_in0 + mac_c0 + b"\x08\x00" + datagram)

    data, peer = server.recvfrom(2048)
    assert (data, peer) == (b"from the tx ring" * 20, (PUBLIC, 61301))
    assert driver.counters([out.key])[out.key].packets == 1
