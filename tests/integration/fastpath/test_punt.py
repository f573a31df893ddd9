"""Misses punted to the slow path over UDP, and packets re-injected after their rules.

A UDP socket in the slow-path namespace plays the slow path: it receives the
punt datagrams and sends REINJECT datagrams back, like vnfs.sdk.slowpath does.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable
from ipaddress import IPv4Address

from tests.integration.fastpath import packets
from tests.integration.fastpath.topology import (
    CLIENT,
    FP_PUNT,
    INSTANCE,
    PUNT_PORT,
    REINJECT_PORT,
    SERVER,
    SLOWPATH,
    SLOWPATH_PORT,
    Lab,
    wait_for,
)
from vnfs.sdk.bpf import netns
from vnfs.sdk.bpf.driver import BpfDriver
from vnfs.sdk.encoding import (
    ACTION_SIZE,
    KEY_SIZE,
    PUNT_HEADER,
    PuntKind,
    decode_punt,
    encode_action,
    encode_install,
    encode_key,
    encode_punt,
)
from vnfs.sdk.flow import Count, FlowKey, FlowRule, Forward, Protocol


def slow_path(lab: Lab) -> socket.socket:
    sock = lab.socket(lab.slowpath)
    sock.bind((SLOWPATH, SLOWPATH_PORT))
    return sock


def forward_both_ways(proto: Protocol, cport: int, sport: int) -> list[FlowRule]:
    key = FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), cport, sport, proto)
    return [FlowRule(key, (Forward(), Count())), FlowRule(key.reversed(), (Forward(), Count()))]


def nothing_arrives(sock: socket.socket, wait: float = 0.5) -> bool:
    sock.settimeout(wait)
    try:
        sock.recv(65536)
    except TimeoutError:
        return True
    return False


def test_miss_is_punted_with_header_and_original_packet(lab: Lab, driver: BpfDriver):
    punts = slow_path(lab)
    client = lab.socket(lab.client)
    client.bind((CLIENT, 40100))
    client.sendto(b"first packet of a flow", (SERVER, 5100))

    datagram, sender = punts.recvfrom(4096)
    assert sender == (FP_PUNT, PUNT_PORT)
    kind, instance, ifindex, packet = decode_punt(datagram)
    assert (kind, instance) == (PuntKind.MISS, INSTANCE)
    assert ifindex == lab.link(lab.fastpath, "in0").ifindex
    original = packets.parse(bytes(packet))
    assert (original.src, original.dst, original.ports) == (CLIENT, SERVER, (40100, 5100))
    assert original.ttl == 64, "a punted packet is not routed yet"
    assert original.udp_payload == b"first packet of a flow"
    # The client left its checksum to offload; the punt path completes it on the way out.
    assert original.header_ok and original.l4_ok
    totals = driver.global_counters()
    assert (totals.misses, totals.punted, totals.punt_errors) == (1, 1, 0)


def test_reinjected_packet_is_forwarded_by_its_new_rule(lab: Lab, driver: BpfDriver):
    punts = slow_path(lab)
    server = lab.socket(lab.server)
    server.bind((SERVER, 5101))
    client = lab.socket(lab.client)
    client.bind((CLIENT, 40101))
    client.sendto(b"decide me", (SERVER, 5101))
    _, instance, ifindex, packet = decode_punt(punts.recv(4096))
    assert nothing_arrives(server, 0.2)

    driver.install(forward_both_ways(Protocol.UDP, 40101, 5101))
    punts.sendto(
        encode_punt(PuntKind.REINJECT, instance, ifindex, bytes(packet)), (FP_PUNT, REINJECT_PORT)
    )
    assert server.recvfrom(100) == (b"decide me", (CLIENT, 40101))
    client.sendto(b"second", (SERVER, 5101))  # now a hit, not a punt
    assert server.recv(100) == b"second"
    totals = driver.global_counters()
    assert (totals.punted, totals.reinjected, totals.hits) == (1, 1, 2)


def test_tcp_handshake_through_punt_and_reinject(lab: Lab, driver: BpfDriver):
    """The SYN crosses the slow path (with a checksum the client left to offload) and
    the connection then runs on the installed rules."""
    punts = slow_path(lab)
    listener = lab.socket(lab.server, socket.SOCK_STREAM)
    listener.bind((SERVER, 5102))
    listener.listen(1)
    client = lab.socket(lab.client, socket.SOCK_STREAM)
    client.bind((CLIENT, 40102))
    client.setblocking(False)
    assert client.connect_ex((SERVER, 5102)) != 0  # in progress

    _, instance, ifindex, syn = decode_punt(punts.recv(4096))
    parsed = packets.parse(bytes(syn))
    assert parsed.proto == socket.IPPROTO_TCP and parsed.ports == (40102, 5102)
    out, back = forward_both_ways(Protocol.TCP, 40102, 5102)
    driver.install([out, back])
    punts.sendto(
        encode_punt(PuntKind.REINJECT, instance, ifindex, bytes(syn)), (FP_PUNT, REINJECT_PORT)
    )
    connection, peer = listener.accept()
    assert peer == (CLIENT, 40102)
    _, writable, _ = select.select([], [client], [], 5.0)
    assert writable and client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    # The re-injected SYN and the client's ACK, no retransmitted SYN: the SYN made it.
    assert driver.counters([out.key])[out.key].packets == 2
    client.setblocking(True)
    client.sendall(b"hello after the handshake")
    assert connection.recv(100) == b"hello after the handshake"
    connection.close()
    client.close()
    listener.close()


def test_reinjected_packet_without_rule_is_dropped_not_punted(lab: Lab, driver: BpfDriver):
    punts = slow_path(lab)
    server = lab.socket(lab.server)
    server.bind((SERVER, 5103))
    packet = packets.udp(CLIENT, 40103, SERVER, 5103, b"no rule for me")
    ifindex = lab.link(lab.fastpath, "in0").ifindex
    punts.sendto(
        encode_punt(PuntKind.REINJECT, INSTANCE, ifindex, packet), (FP_PUNT, REINJECT_PORT)
    )
    assert nothing_arrives(server)
    assert nothing_arrives(punts, 0.1), "a re-injected packet must never be punted again"
    totals = driver.global_counters()
    assert (totals.reinjected, totals.reinject_misses, totals.punted) == (1, 1, 0)


def test_malformed_reinject_is_dropped(lab: Lab, driver: BpfDriver):
    punts = slow_path(lab)
    packet = packets.udp(CLIENT, 40104, SERVER, 5104, b"x")
    driver.install(forward_both_ways(Protocol.UDP, 40104, 5104))
    # A MISS sent back, and a reinject whose inner packet is not IPv4.
    punts.sendto(encode_punt(PuntKind.MISS, INSTANCE, 1, packet), (FP_PUNT, REINJECT_PORT))
    punts.sendto(
        encode_punt(PuntKind.REINJECT, INSTANCE, 1, b"\x60" + packet[1:]), (FP_PUNT, REINJECT_PORT)
    )
    server = lab.socket(lab.server)
    server.bind((SERVER, 5104))
    assert nothing_arrives(server)
    assert driver.datapath_counters()["reinject_errors"] == 2


def install_datagram(rules: list[FlowRule], instance: int = INSTANCE) -> bytes:
    keys = [encode_key(rule.key) for rule in rules]
    return encode_install(instance, keys, [encode_action(rule, {}) for rule in rules])


def test_an_install_datagram_puts_its_rules_in_the_table_before_the_reinject(
    lab: Lab, driver: BpfDriver
):
    """The slow path's fast lane: rules in a datagram, then the packet right behind them."""
    punts = slow_path(lab)
    server = lab.socket(lab.server)
    server.bind((SERVER, 5105))
    client = lab.socket(lab.client)
    client.bind((CLIENT, 40105))
    client.sendto(b"first", (SERVER, 5105))
    _, instance, ifindex, packet = decode_punt(punts.recv(4096))
    out, back = forward_both_ways(Protocol.UDP, 40105, 5105)
    stale = FlowRule(back.key, (Forward(), Count()), cookie=7)
    driver.install([stale])  # an older rule for one key: replaced, not added

    punts.sendto(install_datagram([out, back], instance), (FP_PUNT, REINJECT_PORT))
    punts.sendto(
        encode_punt(PuntKind.REINJECT, instance, ifindex, bytes(packet)), (FP_PUNT, REINJECT_PORT)
    )
    assert server.recvfrom(100) == (b"first", (CLIENT, 40105))
    client.sendto(b"second", (SERVER, 5105))
    assert server.recv(100) == b"second"
    server.sendto(b"answer", (CLIENT, 40105))
    assert client.recv(100) == b"answer"

    counters = driver.counters([out.key, back.key])
    assert (counters[out.key].packets, counters[back.key].packets) == (2, 1)
    assert {rule.key: rule.cookie for rule, _ in driver.dump()} == {out.key: 0, back.key: 0}
    details = driver.datapath_counters()
    assert (details["datagram_rules"], details["datagram_added"]) == (2, 1)
    assert details["datagram_errors"] == 0
    assert driver.table_entries() == 2, "rules the datapath added count as table entries"
    totals = driver.global_counters()
    assert (totals.punted, totals.reinjected, totals.reinject_misses, totals.dropped) == (
        1, 1, 0, 0,
    )  # fmt: skip


def test_a_datagram_installed_rule_starts_with_fresh_counters_and_ages_out(
    lab: Lab, driver: BpfDriver
):
    rule = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), 40106, 5106, Protocol.UDP),
        (Forward(), Count()),
        idle_timeout=1,
    )
    keys = [encode_key(rule.key)]
    action = bytearray(encode_action(rule, {}))
    action[56:ACTION_SIZE] = b"\xff" * (ACTION_SIZE - 56)  # counters a sender made up
    punts = slow_path(lab)
    punts.sendto(encode_install(INSTANCE, keys, [bytes(action)]), (FP_PUNT, REINJECT_PORT))
    assert wait_for(lambda: driver.table_entries() == 1)
    counters = driver.counters([rule.key])[rule.key]
    assert (counters.packets, counters.bytes) == (0, 0)
    assert counters.last_seen_ns > 0
    assert driver.age_out(counters.last_seen_ns + 500_000_000) == []
    expired = driver.age_out(counters.last_seen_ns + 2_000_000_000)
    assert [item.rule.key for item in expired] == [rule.key]
    assert driver.table_entries() == 0


def test_install_datagrams_only_from_the_slow_path_for_this_instance(lab: Lab, driver: BpfDriver):
    rule = forward_both_ways(Protocol.UDP, 40107, 5107)[0]
    good = install_datagram([rule])
    records = good[PUNT_HEADER.size :]
    punts = slow_path(lab)
    other_instance = install_datagram([rule], INSTANCE + 1)
    too_many = PUNT_HEADER.pack(1, PuntKind.INSTALL, INSTANCE, 9) + records * 9
    count_mismatch = PUNT_HEADER.pack(1, PuntKind.INSTALL, INSTANCE, 2) + records
    truncated = good[: PUNT_HEADER.size + KEY_SIZE]
    for datagram in (other_instance, too_many, count_mismatch, truncated):
        punts.sendto(datagram, (FP_PUNT, REINJECT_PORT))
    # Another address on the slow path's link (anyone on the punt link but the slow path).
    lab.ip(lab.slowpath, "address", "add", "10.11.9.3/24", "dev", "sp0")
    stranger = lab.socket(lab.slowpath)
    stranger.bind(("10.11.9.3", 0))
    stranger.sendto(good, (FP_PUNT, REINJECT_PORT))
    assert wait_for(lambda: driver.datapath_counters()["datagram_errors"] == 5)
    assert driver.table_entries() == 0
    assert driver.datapath_counters()["datagram_rules"] == 0


def test_control_traffic_on_the_punt_link_reaches_the_unit(lab: Lab, driver: BpfDriver):
    # The agent's own sockets on the punt address (rule push, registration) keep working.
    agent = lab.socket(lab.fastpath)
    agent.bind((FP_PUNT, 47100))
    peer = lab.socket(lab.slowpath)
    peer.sendto(b"register", (FP_PUNT, 47100))
    assert agent.recvfrom(100) == (b"register", (SLOWPATH, peer.getsockname()[1]))
    assert driver.global_counters().reinjected == 0


def test_without_punt_target_misses_are_dropped(lab: Lab, make_driver: Callable[..., BpfDriver]):
    driver = make_driver()
    with netns.entered_named(lab.fastpath):
        driver.start(lab.data_interfaces(), None)
    server = lab.socket(lab.server)
    server.bind((SERVER, 5105))
    client = lab.socket(lab.client)
    client.bind((CLIENT, 40105))
    client.sendto(b"nobody decides", (SERVER, 5105))
    assert nothing_arrives(server)
    totals = driver.global_counters()
    assert (totals.misses, totals.punt_errors, totals.dropped) == (1, 1, 1)

    # Starting again with a target arms the punt path (the agent does this on discovery).
    driver.start(lab.data_interfaces(), lab.punt_target())
    punts = slow_path(lab)
    client.sendto(b"now punted", (SERVER, 5105))
    kind, _, _, packet = decode_punt(punts.recv(4096))
    assert kind == PuntKind.MISS and packets.parse(bytes(packet)).udp_payload == b"now punted"
    assert "punt0" in {interface.name for interface in driver.interfaces()}


def test_too_big_for_the_punt_link_is_counted(lab: Lab, driver: BpfDriver):
    lab.ip(lab.fastpath, "link", "set", "punt0", "mtu", "1500")
    punts = slow_path(lab)
    client = lab.socket(lab.client)
    client.bind((CLIENT, 40106))
    client.sendto(b"x" * 1472, (SERVER, 5106))  # a full 1500-byte packet
    client.sendto(b"small", (SERVER, 5106))
    _, _, _, packet = decode_punt(punts.recv(4096))
    assert packets.parse(bytes(packet)).udp_payload == b"small"
    details = driver.datapath_counters()
    assert (details["punt_too_big"], details["punted"]) == (1, 1)


def test_fragments_and_other_protocols_are_punted_as_misses(lab: Lab, driver: BpfDriver):
    # Neither has a flow key; forwarding them untranslated could leak what a rule hides.
    punts = slow_path(lab)
    client = lab.socket(lab.client)
    client.bind((CLIENT, 40107))
    client.sendto(b"f" * 3000, (SERVER, 5107))  # three fragments at MTU 1500
    gre = lab.socket(lab.client, socket.SOCK_RAW, 47)
    gre.sendto(b"\0\0\x08\x00" + b"not really gre", (SERVER, 0))

    seen = [packets.parse(bytes(decode_punt(punts.recv(4096))[3])) for _ in range(4)]
    assert sorted(p.proto for p in seen) == [17, 17, 17, 47]
    assert all((p.src, p.dst) == (CLIENT, SERVER) for p in seen)
    totals = driver.global_counters()
    assert (totals.misses, totals.punted, totals.hits) == (4, 4, 0)
