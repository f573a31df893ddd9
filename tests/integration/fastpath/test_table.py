"""The flow table: dump, remove, aging by idle and transitory timeouts, a 1M-entry table."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest

from tests.integration.fastpath.topology import CLIENT, SERVER, Lab
from vnfs.sdk.bpf import netns
from vnfs.sdk.bpf.driver import BpfDriver
from vnfs.sdk.bpf.syscall import BpfTableFull
from vnfs.sdk.driver import TableFull
from vnfs.sdk.encoding import KEY, VRF, encode_action, encode_key
from vnfs.sdk.flow import (
    Count,
    Drop,
    Encapsulate,
    FlowKey,
    FlowRule,
    Forward,
    Protocol,
    Rewrite,
)

SECOND = 1_000_000_000


def tcp_key(cport: int, sport: int) -> FlowKey:
    return FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), cport, sport, Protocol.TCP)


def test_dump_returns_what_was_installed_and_remove_deletes(lab: Lab, driver: BpfDriver):
    rules = [
        FlowRule(
            FlowKey(IPv4Address("10.11.1.5"), IPv4Address("192.0.2.1"), 1000, 53, Protocol.UDP),
            (Rewrite(src=IPv4Address("203.0.113.9"), sport=2000), Forward(), Count()),
            idle_timeout=30,
            cookie=7,
        ),
        FlowRule(
            FlowKey(IPv4Address("10.11.1.6"), IPv4Address("192.0.2.2"), 1, 0, Protocol.ICMP),
            (Forward(interface="out0", next_hop=IPv4Address(SERVER)),),
        ),
        FlowRule(
            FlowKey(IPv4Address("10.11.1.7"), IPv4Address("192.0.2.3"), 3, 4, Protocol.TCP, 9),
            (
                Rewrite(dst=IPv4Address("10.11.1.8"), dport=80),
                Encapsulate(IPv4Address("198.51.100.1"), IPv4Address(SERVER), 4790, 0, 5),
                Forward(),
            ),
            idle_timeout=7440,
            transitory_timeout=240,
            cookie=(1 << 64) - 1,
        ),
        FlowRule(
            FlowKey(IPv4Address("10.11.1.9"), IPv4Address("192.0.2.4"), 5, 6, Protocol.TCP),
            (Drop(), Count()),
        ),
    ]
    assert driver.install(rules) == 4
    dumped = dict(driver.dump())
    assert set(dumped) == set(rules)
    assert all(counters.packets == 0 for counters in dumped.values())
    assert driver.health().table_entries == 4

    absent = FlowKey(IPv4Address("10.11.1.99"), IPv4Address("192.0.2.99"), 1, 1, Protocol.UDP)
    assert driver.remove([rules[0].key, absent, rules[2].key]) == 2
    assert set(rule for rule, _ in driver.dump()) == {rules[1], rules[3]}
    assert driver.remove([absent]) == 0

    # Installing over an existing key replaces the rule.
    replacement = FlowRule(rules[1].key, (Drop(),), cookie=99)
    driver.install([replacement])
    assert set(rule for rule, _ in driver.dump()) == {replacement, rules[3]}


def test_install_encoded_takes_the_wire_records_as_they_are(lab: Lab, driver: BpfDriver):
    rule = FlowRule(tcp_key(40200, 5200), (Forward(),), idle_timeout=5)
    before = time.monotonic_ns()
    keys, actions = encode_key(rule.key), encode_action(rule)
    assert driver.install_encoded(keys, actions, 1) == 1
    ((dumped, counters),) = driver.dump()
    assert dumped == rule
    # Stamped at install, so a rule that never sees a packet still ages.
    assert before <= counters.last_seen_ns <= time.monotonic_ns()
    assert driver.age_out(counters.last_seen_ns + 4 * SECOND) == []
    assert [e.rule for e in driver.age_out(counters.last_seen_ns + 6 * SECOND)] == [rule]
    with pytest.raises(Exception, match="batch says 2 rules"):
        driver.install_encoded(keys, actions, 2)


def open_connection(lab: Lab, cport: int, sport: int) -> tuple[socket.socket, socket.socket]:
    listener = lab.socket(lab.server, socket.SOCK_STREAM)
    listener.bind((SERVER, sport))
    listener.listen(1)
    client = lab.socket(lab.client, socket.SOCK_STREAM)
    client.bind((CLIENT, cport))
    client.connect((SERVER, sport))
    connection, _ = listener.accept()
    listener.close()
    client.sendall(b"data")
    assert connection.recv(10) == b"data"
    return client, connection


def test_aging_uses_transitory_timeout_until_established_and_after_fin(lab: Lab, driver: BpfDriver):
    def rules_for(key: FlowKey) -> list[FlowRule]:
        return [
            FlowRule(key, (Forward(), Count()), idle_timeout=10, transitory_timeout=2),
            FlowRule(key.reversed(), (Forward(), Count()), idle_timeout=10, transitory_timeout=2),
        ]

    never_used = FlowRule(tcp_key(40201, 5201), (Forward(),), idle_timeout=10, transitory_timeout=2)
    udp = FlowRule(
        FlowKey(IPv4Address(CLIENT), IPv4Address(SERVER), 40202, 5202, Protocol.UDP),
        (Forward(),),
        idle_timeout=2,
        transitory_timeout=1,  # not TCP: only the idle timeout counts
    )
    closing, established = rules_for(tcp_key(40203, 5203)), rules_for(tcp_key(40204, 5204))
    driver.install([never_used, udp, *closing, *established])
    closing_sockets = open_connection(lab, 40203, 5203)
    established_sockets = open_connection(lab, 40204, 5204)
    now = time.monotonic_ns()

    assert driver.age_out(now + 1 * SECOND) == []
    # Past the transitory timeout: the rule that never saw an ACK and the UDP rule go.
    expired = driver.age_out(now + 3 * SECOND)
    assert {e.rule for e in expired} == {never_used, udp}

    # FIN from both sides: the closing connection is transitory again.
    for sock in closing_sockets:
        sock.shutdown(socket.SHUT_WR)
    assert closing_sockets[0].recv(10) == b"" and closing_sockets[1].recv(10) == b""
    expired = driver.age_out(time.monotonic_ns() + 3 * SECOND)
    assert {e.rule for e in expired} == set(closing)
    final = {e.rule.key: e.counters for e in expired}
    assert final[closing[0].key].packets >= 3 and final[closing[0].key].tcp_flags_seen & 0x01

    # Established and idle past the idle timeout.
    assert driver.age_out(time.monotonic_ns() + 5 * SECOND) == []
    expired = driver.age_out(time.monotonic_ns() + 11 * SECOND)
    assert {e.rule for e in expired} == set(established)
    assert list(driver.dump()) == []
    for sock in (*closing_sockets, *established_sockets):
        sock.close()


def million_keys(count: int) -> bytes:
    keys = bytearray(count * 16)
    pack = KEY.pack_into
    vrf = VRF.pack(0)
    for index in range(count):
        offset = index * 16
        pack(keys, offset, struct.pack("!I", 0x0A000000 | index), b"\xc0\x00\x02\x01", 1024, 80, 6)
        keys[offset + 14 : offset + 16] = vrf
    return bytes(keys)


def test_a_million_rules_fit_and_the_next_one_is_refused(
    lab: Lab, make_driver: Callable[..., BpfDriver]
):
    size = 1 << 20
    driver = make_driver(table_size=size)
    with netns.entered_named(lab.fastpath):
        driver.start(lab.data_interfaces(), lab.punt_target())
    keys = million_keys(size + 1)
    action = encode_action(
        FlowRule(tcp_key(1, 2), (Rewrite(src=IPv4Address("203.0.113.1")), Forward()))
    )
    actions = action * size
    started = time.perf_counter()
    installed = 0
    for first in range(0, size, 4096):  # the rule-push frames' batch size
        count = min(4096, size - first)
        installed += driver.install_encoded(
            keys[first * 16 : (first + count) * 16],
            actions[first * 88 : (first + count) * 88],
            count,
        )
    elapsed = time.perf_counter() - started
    print(f"\n{installed} rules in {elapsed:.2f} s: {installed / elapsed:,.0f} rules/s")
    assert installed == size
    health = driver.health()
    assert (health.table_entries, health.table_capacity) == (size, size)

    with pytest.raises(TableFull) as refused:
        driver.install_encoded(keys[size * 16 :], action, 1)
    assert isinstance(refused.value, BpfTableFull) and refused.value.done == 0
    # Replacing a rule that is there still works in a full table.
    assert driver.install_encoded(keys[:16], action, 1) == 1
    assert driver.remove([FlowKey(IPv4Address("10.0.0.0"), IPv4Address("192.0.2.1"), 1024, 80,
                                  Protocol.TCP)]) == 1  # fmt: skip
    assert driver.install_encoded(keys[size * 16 :], action, 1) == 1


def distinct_rules(count: int, idle: int, first: int = 0) -> tuple[bytes, bytes, int]:
    """`count` forwarding rules with distinct keys, encoded as an INSTALL carries them."""
    keys = million_keys(first + count)[first * 16 :]
    action = encode_action(FlowRule(tcp_key(1, 2), (Forward(),), idle_timeout=idle))
    return keys, action * count, count


def test_aging_in_slices_hands_over_at_most_the_limit(lab: Lab, driver: BpfDriver):
    keys, actions, count = distinct_rules(100, idle=1)
    assert driver.install_encoded(keys, actions, count) == 100
    later = time.monotonic_ns() + 5 * SECOND
    slices: list[int] = []
    handed = b""
    while not slices or slices[-1] == 30:
        expired_keys, _, taken = driver.age_out_encoded(later, limit=30)
        slices.append(taken)
        handed += expired_keys
    assert slices == [30, 30, 30, 10]
    assert sorted(handed[i : i + 16] for i in range(0, len(handed), 16)) == sorted(
        keys[i : i + 16] for i in range(0, len(keys), 16)
    )
    assert driver.table_entries() == 0
    assert driver.age_out_encoded(later, limit=30) == (b"", b"", 0)


def test_installs_go_on_while_another_thread_scans(lab: Lab, driver: BpfDriver):
    """The table size the driver caches stays exact when installs and removals run
    while another thread scans (ages, counts) the table."""
    assert BpfDriver.concurrent_maintenance
    stop = threading.Event()
    errors: list[BaseException] = []

    def scan() -> None:
        try:
            while not stop.is_set():
                driver.table_entries()
                driver.age_out_encoded(0, limit=1000)  # nothing is idle at time 0
                driver.health()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    scanner = threading.Thread(target=scan, name="scanner")
    scanner.start()
    try:
        installed = 0
        for round_ in range(20):
            keys, actions, count = distinct_rules(200, idle=300, first=round_ * 200)
            installed += driver.install_encoded(keys, actions, count)
            if round_ % 4 == 3:
                installed -= driver.remove_encoded(keys[: 50 * 16], 50)
    finally:
        stop.set()
        scanner.join(30)
    assert not scanner.is_alive() and errors == []
    dumped = sum(count for _, _, count in driver.dump_encoded())
    assert dumped == installed == 20 * 200 - 5 * 50
    assert driver.table_entries() == installed
