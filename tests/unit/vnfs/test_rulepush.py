"""The rule-push protocol: framing rules, and a real server and client on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from ipaddress import IPv4Address
from typing import Any

import pytest

from tests.unit.vnfs.runtime_support import DriverDouble
from vnfs.sdk import rulepush
from vnfs.sdk.agent import DriverTable
from vnfs.sdk.driver import DriverError, GlobalCounters
from vnfs.sdk.encoding import encode_rules, iter_rules
from vnfs.sdk.flow import Count, FlowKey, FlowRule, Forward, Protocol, Rewrite
from vnfs.sdk.links import IfindexMap
from vnfs.sdk.rulepush import (
    HEADER,
    MAX_RECORDS,
    RECORD_SIZE,
    ConnectionLost,
    Op,
    ProtocolError,
    RemoteError,
    RulePushClient,
    RulePushServer,
    TableFullError,
)

pytestmark = pytest.mark.timeout(60)


def key(n: int, proto: Protocol = Protocol.UDP) -> FlowKey:
    return FlowKey(
        IPv4Address("10.1.0.0") + n, IPv4Address("198.51.100.7"), 1024 + n % 60000, 53, proto
    )


def rules(count: int, first: int = 0) -> list[FlowRule]:
    return [
        FlowRule(
            key(n),
            (Rewrite(src=IPv4Address("203.0.113.1"), sport=2000 + n % 60000), Forward(), Count()),
            idle_timeout=30,
            cookie=n,
        )
        for n in range(first, first + count)
    ]


def header(op: int, seq: int, count: int, length: int, magic: bytes = b"RP", version: int = 1):
    return HEADER.pack(magic, version, op, seq, count, length)


# --- framing ---------------------------------------------------------------------


def test_a_valid_header_parses() -> None:
    assert rulepush.parse_header(header(Op.INSTALL, 7, 2, 2 * RECORD_SIZE)) == (
        Op.INSTALL,
        7,
        2,
        2 * RECORD_SIZE,
    )
    assert rulepush.parse_header(header(Op.ERROR, 1, 2, 10)) == (Op.ERROR, 1, 2, 10)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (header(Op.ACK, 1, 0, 0, magic=b"XX"), "magic"),
        (header(Op.ACK, 1, 0, 0, version=3), "version 3"),
        (header(Op.ACK, 1, 0, 0, version=0), "version 0"),
        (header(Op.STATS_REPLY, 1, 14, 14 * 8, version=2), "carries 14 values"),
        (header(Op.STATS_REPLY, 1, 16, 15 * 8, version=2), "must have a 128-byte body"),
        (header(Op.STATS_REPLY, 1, 16, 16 * 8, version=1), "must have a 120-byte body"),
        (header(99, 1, 0, 0), "unknown op 99"),
        (header(Op.INSTALL, 1, 0, 0), "carries 0 rules"),
        (header(Op.INSTALL, 1, MAX_RECORDS + 1, (MAX_RECORDS + 1) * RECORD_SIZE), "carries"),
        (header(Op.INSTALL, 1, 2, RECORD_SIZE), "must have a 208-byte body"),
        (header(Op.REMOVE, 1, 3, 47), "must have a 48-byte body"),
        (header(Op.DUMP, 1, 0, 5), "must have a 0-byte body"),
        (header(Op.ERROR, 1, 1, 5000), "exceeds 1024"),
        (header(Op.STATS_REPLY, 1, 15, 8), "body"),
    ],
)
def test_invalid_headers_are_rejected(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        rulepush.parse_header(raw)


def test_stats_round_trip() -> None:
    stats = rulepush.TableStats(GlobalCounters(rx_packets=5, tx_bytes=7, misses=2), 11, 1024)
    assert rulepush.decode_stats(rulepush.encode_stats(stats)) == stats


def test_rules_with_counters_round_trip_in_chunks() -> None:
    from vnfs.sdk.flow import RuleCounters

    items = [(rule, RuleCounters(n, 10 * n, 99, 0x12)) for n, rule in enumerate(rules(10))]
    chunks = list(rulepush.encode_rules_with_counters(items, IfindexMap({}), chunk=4))
    assert [count for _, _, count in chunks] == [4, 4, 2]
    decoded = [pair for keys, actions, _ in chunks for pair in iter_rules(keys, actions)]
    assert decoded == items


# --- server and client --------------------------------------------------------------


@contextlib.asynccontextmanager
async def served(
    driver: DriverDouble, **server_options: Any
) -> AsyncIterator[tuple[RulePushServer, RulePushClient, DriverTable]]:
    table = DriverTable(driver, IfindexMap({"lo": 1}))
    server = RulePushServer(table, **server_options)
    await server.start("127.0.0.1", 0)
    client = await RulePushClient.connect("127.0.0.1", server.port)
    try:
        yield server, client, table
    finally:
        await client.close()
        await server.close()


def test_install_is_acknowledged_and_lands_unchanged() -> None:
    async def scenario() -> None:
        driver = DriverDouble(capacity=100)
        async with served(driver) as (server, client, _):
            keys, actions, count = encode_rules(rules(3))
            assert await client.install(keys, actions, count) == 3
            assert driver.keys() == {key(0), key(1), key(2)}
            assert server.installed == 3

    asyncio.run(scenario())


def test_pipelined_batches_are_all_acknowledged_in_order() -> None:
    async def scenario() -> None:
        driver = DriverDouble(capacity=50_000)
        async with served(driver) as (_, client, _):
            futures = []
            for batch in range(20):
                keys, actions, count = encode_rules(rules(1000, first=batch * 1000))
                futures.append(await client.submit_install(keys, actions, count))
            assert await asyncio.gather(*futures) == [1000] * 20
            assert driver.install_calls == 20  # one driver call per batch, none per rule
            assert len(driver.keys()) == 20_000

    asyncio.run(scenario())


def test_remove_counts_only_present_keys() -> None:
    async def scenario() -> None:
        driver = DriverDouble()
        async with served(driver) as (server, client, _):
            await client.install(*encode_rules(rules(4)))
            assert await client.remove([key(1), key(3), key(77)]) == 2
            assert driver.keys() == {key(0), key(2)}
            assert server.removed == 2

    asyncio.run(scenario())


def test_dump_streams_every_rule_with_its_counters() -> None:
    async def scenario() -> None:
        driver = DriverDouble(capacity=20_000)
        installed = rules(9000)
        async with served(driver) as (_, client, _):
            for first in range(0, 9000, 3000):
                await client.install(*encode_rules(installed[first : first + 3000]))
            driver.hit(key(5), packets=3, size=64)
            chunks = await client.dump()
        assert len(chunks) == 3  # 4096 + 4096 + 808
        dumped = {
            rule.key: (rule, counters) for k, a, _ in chunks for rule, counters in iter_rules(k, a)
        }
        assert {rule.key for rule in installed} == set(dumped)
        assert dumped[key(5)][0] == installed[5]
        assert dumped[key(5)][1].packets == 3 and dumped[key(5)][1].bytes == 192
        assert dumped[key(6)][1].packets == 0

    asyncio.run(scenario())


def test_empty_dump() -> None:
    async def scenario() -> None:
        async with served(DriverDouble()) as (_, client, _):
            assert await client.dump() == []

    asyncio.run(scenario())


def test_counters_of_installed_keys() -> None:
    async def scenario() -> None:
        driver = DriverDouble()
        async with served(driver) as (_, client, _):
            await client.install(*encode_rules(rules(2)))
            driver.hit(key(1), packets=4, size=10)
            found = await client.counters([key(0), key(1), key(9)])
        assert set(found) == {key(0), key(1)}
        assert (found[key(1)].packets, found[key(1)].bytes) == (4, 40)
        assert found[key(1)].last_seen_ns > 0

    asyncio.run(scenario())


def test_stats_report_datapath_counters_and_table_size() -> None:
    async def scenario() -> None:
        driver = DriverDouble(capacity=64)
        driver.totals = GlobalCounters(rx_packets=10, misses=3, punted=3)
        async with served(driver) as (_, client, table):
            await client.install(*encode_rules(rules(5)))
            table.health = driver.health()
            stats = await client.stats()
        assert stats.counters == driver.totals
        assert (stats.table_entries, stats.table_capacity) == (5, 64)

    asyncio.run(scenario())


def test_a_full_table_fails_the_batch_but_not_the_connection() -> None:
    async def scenario() -> None:
        driver = DriverDouble(capacity=5)
        async with served(driver) as (_, client, _):
            with pytest.raises(TableFullError, match="TABLE_FULL"):
                await client.install(*encode_rules(rules(6)))
            assert await client.install(*encode_rules(rules(5))) == 5

    asyncio.run(scenario())


def test_a_driver_error_is_reported_with_its_text() -> None:
    async def scenario() -> None:
        driver = DriverDouble()
        driver.fail_next = DriverError("map update failed: EPERM")
        async with served(driver) as (_, client, _):
            with pytest.raises(RemoteError, match="DRIVER: map update failed: EPERM") as caught:
                await client.install(*encode_rules(rules(1)))
            assert caught.value.code == rulepush.ErrorCode.DRIVER
            assert await client.install(*encode_rules(rules(1))) == 1

    asyncio.run(scenario())


def test_client_checks_batches_before_sending() -> None:
    async def scenario() -> None:
        async with served(DriverDouble()) as (_, client, _):
            with pytest.raises(ValueError, match="not 2 records"):
                await client.submit_install(b"\0" * 16, b"\0" * 88, 2)
            with pytest.raises(ValueError, match=r"1\.\.65536"):
                await client.submit_install(b"", b"", 0)

    asyncio.run(scenario())


async def _raw_exchange(server: RulePushServer, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(data)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 5)  # until the server closes
    writer.close()
    return reply


def test_server_answers_a_broken_stream_with_error_and_closes() -> None:
    async def scenario() -> None:
        driver = DriverDouble()
        server = RulePushServer(DriverTable(driver, IfindexMap({})))
        await server.start("127.0.0.1", 0)
        try:
            # A header claiming 65537 rules is refused before any body is read.
            oversized = header(Op.INSTALL, 4, MAX_RECORDS + 1, (MAX_RECORDS + 1) * RECORD_SIZE)
            for data in (b"GARBAGE-GARBAGE!", oversized, header(Op.ACK, 1, 0, 0)):
                reply = await _raw_exchange(server, data)
                op, seq, code, length = rulepush.parse_header(reply[: HEADER.size])
                assert (op, seq, code) == (Op.ERROR, 0, rulepush.ErrorCode.BAD_REQUEST)
                assert len(reply) == HEADER.size + length
            assert driver.install_calls == 0
        finally:
            await server.close()

    asyncio.run(scenario())


def test_client_drops_a_connection_that_answers_nonsense() -> None:
    async def scenario() -> None:
        async def bogus(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readexactly(HEADER.size)
            writer.write(header(Op.ACK, 999, 1, 0))  # no request 999 was made
            await writer.drain()
            await reader.read()
            writer.close()

        server = await asyncio.start_server(bogus, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = await RulePushClient.connect("127.0.0.1", port)
        try:
            with pytest.raises(ConnectionLost, match="unknown request 999"):
                await client.stats()
            await asyncio.wait_for(client.wait_closed(), 5)
            with pytest.raises(ConnectionLost):
                await client.stats()
        finally:
            await client.close()
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())


def test_pending_requests_fail_when_the_agent_goes_away() -> None:
    async def scenario() -> None:
        driver = DriverDouble()
        async with served(driver) as (server, client, _):
            await server.close()
            with pytest.raises(ConnectionLost):
                await asyncio.wait_for(client.install(*encode_rules(rules(1))), 5)

    asyncio.run(scenario())


def test_expired_reports_wait_for_a_slow_path_and_are_bounded() -> None:
    async def scenario() -> None:
        driver = DriverDouble()
        table = DriverTable(driver, IfindexMap({}))
        server = RulePushServer(table, max_pending_expired=6)
        await server.start("127.0.0.1", 0)
        received: list[FlowKey] = []
        try:
            for first in (0, 3, 6):  # 9 rules reported, room for 6: the oldest chunk goes
                keys, actions, count = encode_rules(rules(3, first=first))
                server.send_expired(keys, actions, count)
            assert server.expired_dropped == 3
            client = await RulePushClient.connect(
                "127.0.0.1",
                server.port,
                on_expired=lambda k, a, n: received.extend(r.key for r, _ in iter_rules(k, a)),
            )
            await client.stats()  # a round trip: the flushed reports came before its reply
            assert received == [key(n) for n in range(3, 9)]
            keys, actions, count = encode_rules(rules(1, first=40))
            server.send_expired(keys, actions, count)
            await client.stats()
            assert received[-1] == key(40)
            await client.close()
        finally:
            await server.close()

    asyncio.run(scenario())


def test_a_new_slow_path_connection_replaces_the_old_one() -> None:
    async def scenario() -> None:
        driver = DriverDouble()
        async with served(driver) as (server, first, _):
            second = await RulePushClient.connect("127.0.0.1", server.port)
            await asyncio.wait_for(first.wait_closed(), 5)
            assert await second.install(*encode_rules(rules(1))) == 1
            assert server.connected
            await second.close()

    asyncio.run(scenario())


def test_icmp_and_tcp_rules_survive_the_trip() -> None:
    async def scenario() -> None:
        driver = DriverDouble()
        mixed = [
            FlowRule(key(1, Protocol.TCP), (Forward(),), idle_timeout=7440, transitory_timeout=240),
            FlowRule(key(2, Protocol.ICMP), (Forward(next_hop=IPv4Address("10.9.9.9")),)),
        ]
        async with served(driver) as (_, client, _):
            await client.install(*encode_rules(mixed))
            chunks = await client.dump()
        assert sorted((r for k, a, _ in chunks for r, _ in iter_rules(k, a)), key=str) == sorted(
            mixed, key=str
        )

    asyncio.run(scenario())


def test_error_text_is_bounded() -> None:
    text = rulepush._text("x" * 5000)
    assert len(text) <= rulepush.MAX_ERROR_TEXT and text.endswith(b"...")
    assert struct.calcsize("=QQQI4x") == rulepush.COUNTERS.size == 32


# --- versions ---------------------------------------------------------------------------


def test_stats_bodies_of_both_versions_decode() -> None:
    counters = GlobalCounters(rx_packets=5, tx_bytes=7, reinject_errors=3)
    stats = rulepush.TableStats(counters, 11, 1024)
    v1 = rulepush.encode_stats(stats, version=1)
    assert len(v1) == 15 * 8
    # Version 1 has no place for reinject_errors: it reads back as 0.
    old = rulepush.decode_stats(v1)
    assert (old.counters.rx_packets, old.counters.reinject_errors) == (5, 0)
    assert (old.table_entries, old.table_capacity) == (11, 1024)
    v2 = rulepush.encode_stats(stats)
    assert len(v2) == rulepush.STATS.size == (15 + len(rulepush.STATS_EXTRA)) * 8
    assert rulepush.decode_stats(v2) == stats
    # A later version appends values: this side reads what it knows and ignores the rest.
    assert rulepush.decode_stats(v2 + struct.pack("=QQ", 77, 88)) == stats
    with pytest.raises(ProtocolError):
        rulepush.decode_stats(v1[:-8])


async def _request(port: int, op: Op, seq: int, version: int) -> tuple[int, Op, int, int, bytes]:
    """One raw request and its reply: (version, op, seq, count, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(header(op, seq, 0, 0, version=version))
        await writer.drain()
        reply_version, reply_op, reply_seq, count, length = rulepush.parse_versioned_header(
            await asyncio.wait_for(reader.readexactly(HEADER.size), 5)
        )
        body = await reader.readexactly(length)
        return reply_version, reply_op, reply_seq, count, body
    finally:
        writer.close()


def test_the_agent_answers_each_slow_path_in_its_version() -> None:
    async def scenario() -> None:
        driver = DriverDouble()
        driver.totals = GlobalCounters(rx_packets=9, reinject_errors=4)
        async with served(driver) as (server, client, _):
            # This version's client reads the counters version 2 added.
            assert rulepush.VERSION == 2
            stats = await client.stats()
            assert (stats.counters.rx_packets, stats.counters.reinject_errors) == (9, 4)
            # A version-1 slow path (connecting replaces the client) gets the 15-value
            # reply it knows.
            version, op, seq, count, body = await _request(server.port, Op.STATS, 5, version=1)
            assert (version, op, seq, count, len(body)) == (1, Op.STATS_REPLY, 5, 15, 120)
            assert rulepush.decode_stats(body).counters.rx_packets == 9

    asyncio.run(scenario())


def test_unsolicited_reports_follow_the_peers_version() -> None:
    async def scenario() -> None:
        driver = DriverDouble()
        async with served(driver) as (server, _, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            try:
                while not server.connected or server._session is None:
                    await asyncio.sleep(0.01)
                server.send_expired(*encode_rules(rules(1)))
                first = rulepush.parse_versioned_header(await reader.readexactly(HEADER.size))
                await reader.readexactly(first[4])
                assert first[:2] == (1, Op.EXPIRED)  # nothing heard from the peer yet
                writer.write(header(Op.STATS, 1, 0, 0, version=2))
                reply = rulepush.parse_versioned_header(await reader.readexactly(HEADER.size))
                await reader.readexactly(reply[4])
                server.send_expired(*encode_rules(rules(1, first=5)))
                second = rulepush.parse_versioned_header(await reader.readexactly(HEADER.size))
                assert second[:2] == (2, Op.EXPIRED)
            finally:
                writer.close()

    asyncio.run(scenario())
