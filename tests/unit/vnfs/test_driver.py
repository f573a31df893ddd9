"""FastPathDriver's encoded operations, as a driver that implements only the decoded ones
gets them (the SDK's DriverDouble keeps BPF-layout records but none of the encoded
methods but install_encoded)."""

from __future__ import annotations

import time
from dataclasses import fields
from ipaddress import IPv4Address

import pytest

from tests.unit.vnfs.runtime_support import DriverDouble
from vnfs.sdk.driver import DriverError, FastPathDriver, GlobalCounters, Interface
from vnfs.sdk.encoding import encode_keys, iter_rules
from vnfs.sdk.flow import Count, FlowKey, FlowRule, Forward, Protocol, Rewrite

LO = Interface("lo", 1, "00:00:00:00:00:00", "127.0.0.1/8", "inside")
SECOND = 1_000_000_000


def rule(n: int, idle: int = 30) -> FlowRule:
    key = FlowKey(IPv4Address("10.1.0.0") + n, IPv4Address("198.51.100.7"), 1000 + n, 53,
                  Protocol.UDP)  # fmt: skip
    rewrite = Rewrite(src=IPv4Address("203.0.113.1"), sport=2000 + n)
    return FlowRule(key, (rewrite, Forward(interface="lo"), Count()), idle_timeout=idle, cookie=n)


@pytest.fixture
def driver() -> DriverDouble:
    made = DriverDouble()
    made.start([LO], None)
    return made


def test_the_defaults_are_the_base_class_ones() -> None:
    for name in ("remove_encoded", "dump_encoded", "age_out_encoded", "table_entries"):
        assert getattr(DriverDouble, name) is getattr(FastPathDriver, name)
    assert FastPathDriver.concurrent_maintenance is False


def test_remove_encoded_takes_packed_keys(driver: DriverDouble) -> None:
    rules = [rule(n) for n in range(3)]
    driver.install(rules)
    assert driver.remove_encoded(encode_keys([rules[0].key, rules[2].key]), 2) == 2
    assert driver.keys() == {rules[1].key}
    with pytest.raises(DriverError, match="says 2 keys but carries 1"):
        driver.remove_encoded(encode_keys([rules[1].key]), 2)


def test_dump_encoded_carries_rules_with_their_counters(driver: DriverDouble) -> None:
    rules = [rule(n) for n in range(5)]
    driver.install(rules)
    driver.hit(rules[3].key, packets=4, size=50)
    decoded = {
        found: counters
        for keys, actions, _ in driver.dump_encoded()
        for found, counters in iter_rules(keys, actions, {1: "lo"})
    }
    assert decoded == dict(driver.dump())
    assert set(decoded) == set(rules)
    assert (decoded[rules[3]].packets, decoded[rules[3]].bytes) == (4, 200)


def test_age_out_encoded_hands_over_what_age_out_removes(driver: DriverDouble) -> None:
    short, long = rule(1, idle=1), rule(2, idle=300)
    driver.install([short, long])
    driver.hit(short.key, packets=2)
    assert driver.age_out_encoded(time.monotonic_ns()) == (b"", b"", 0)
    keys, actions, count = driver.age_out_encoded(time.monotonic_ns() + 5 * SECOND, limit=1)
    assert count == 1
    ((expired, counters),) = list(iter_rules(keys, actions, {1: "lo"}))
    assert expired == short and counters.packets == 2
    assert driver.keys() == {long.key}
    assert driver.table_entries() == 1 == driver.health().table_entries


def test_datapath_counters_default_to_the_global_ones(driver: DriverDouble) -> None:
    driver.totals = GlobalCounters(hits=3, reinject_errors=1)
    counters = FastPathDriver.datapath_counters(driver)
    assert set(counters) == {field.name for field in fields(GlobalCounters)}
    assert (counters["hits"], counters["reinject_errors"]) == (3, 1)
