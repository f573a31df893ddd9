"""Flow rules: what a valid key, action and rule is."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from vnfs.sdk.flow import (
    Count,
    Drop,
    Encapsulate,
    FlowKey,
    FlowRule,
    Forward,
    Protocol,
    Rewrite,
    RuleBatch,
)

A = IPv4Address


def key(**changes: object) -> FlowKey:
    values: dict[str, object] = {
        "src": A("10.0.0.1"),
        "dst": A("192.0.2.1"),
        "sport": 1234,
        "dport": 80,
        "proto": Protocol.TCP,
    }
    values.update(changes)
    return FlowKey(**values)  # type: ignore[arg-type]


def test_key_reversed_swaps_both_ends_and_keeps_the_rest():
    original = key(vrf=3)
    assert original.reversed() == FlowKey(A("192.0.2.1"), A("10.0.0.1"), 80, 1234, Protocol.TCP, 3)
    assert original.reversed().reversed() == original


def test_key_text():
    assert str(key()) == "TCP 10.0.0.1:1234 -> 192.0.2.1:80"
    assert str(key(vrf=9, proto=Protocol.UDP)) == "UDP 10.0.0.1:1234 -> 192.0.2.1:80 vrf 9"


def test_keys_are_values():
    assert key() == key() and hash(key()) == hash(key())
    assert key() != key(vrf=1)
    assert len({key(), key(), key(sport=1)}) == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sport": -1}, "sport -1"),
        ({"sport": 65536}, "sport 65536"),
        ({"dport": 70000}, "dport 70000"),
        ({"vrf": 65536}, "vrf 65536"),
        ({"vrf": -1}, "vrf -1"),
    ],
)
def test_key_fields_out_of_range_are_refused(changes: dict[str, object], message: str):
    with pytest.raises(ValueError, match=message):
        key(**changes)


def test_a_rewrite_must_change_something_within_range():
    with pytest.raises(ValueError, match="at least one field"):
        Rewrite()
    with pytest.raises(ValueError, match="sport 65536"):
        Rewrite(sport=65536)
    with pytest.raises(ValueError, match="dport -1"):
        Rewrite(dport=-1)
    assert Rewrite(dport=0).dport == 0


def test_encapsulation_limits():
    Encapsulate(A("198.51.100.1"), A("198.51.100.2"), 4790, 0, (1 << 24) - 1)
    with pytest.raises(ValueError, match="vni 16777216"):
        Encapsulate(A("198.51.100.1"), A("198.51.100.2"), 4790, vni=1 << 24)
    with pytest.raises(ValueError, match="udp_dport 65536"):
        Encapsulate(A("198.51.100.1"), A("198.51.100.2"), 65536)
    with pytest.raises(ValueError, match="udp_sport -1"):
        Encapsulate(A("198.51.100.1"), A("198.51.100.2"), 4790, udp_sport=-1)


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ((), "either forward or drop"),
        ((Count(),), "either forward or drop"),
        ((Rewrite(sport=1),), "either forward or drop"),
        ((Drop(), Forward()), "cannot also"),
        ((Drop(), Rewrite(sport=1)), "cannot also"),
        ((Drop(), Encapsulate(A("1.1.1.1"), A("2.2.2.2"), 1)), "cannot also"),
        ((Forward(), Forward(next_hop=A("10.0.0.9"))), "at most one Forward"),
        ((Forward(), Count(), Count()), "at most one Count"),
        ((Rewrite(sport=1), Rewrite(dport=2), Forward()), "at most one Rewrite"),
    ],
)
def test_inconsistent_actions_are_refused(actions: tuple[object, ...], message: str):
    with pytest.raises(ValueError, match=message):
        FlowRule(key(), actions)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"idle_timeout": 0}, "at least 1 second"),
        ({"idle_timeout": 1 << 32}, "idle_timeout"),
        ({"transitory_timeout": -1}, "transitory_timeout -1"),
        ({"cookie": 1 << 64}, "64 bits"),
        ({"cookie": -1}, "64 bits"),
    ],
)
def test_rule_settings_out_of_range_are_refused(settings: dict[str, int], message: str):
    with pytest.raises(ValueError, match=message):
        FlowRule(key(), (Forward(),), **settings)


def test_rule_defaults_and_action_lookup():
    rewrite = Rewrite(src=A("203.0.113.1"))
    rule = FlowRule(key(), (rewrite, Forward(), Count()))
    assert (rule.idle_timeout, rule.transitory_timeout, rule.cookie) == (300, 0, 0)
    assert rule.action(Rewrite) is rewrite
    assert rule.action(Count) == Count()
    assert rule.action(Drop) is None and rule.action(Encapsulate) is None
    dropping = FlowRule(key(), (Drop(), Count()), idle_timeout=1, cookie=(1 << 64) - 1)
    assert dropping.action(Forward) is None


def test_rules_are_values():
    first = FlowRule(key(), (Forward(interface="outside"),), cookie=5)
    assert first == FlowRule(key(), (Forward(interface="outside"),), cookie=5)
    assert first != FlowRule(key(), (Forward(interface="inside"),), cookie=5)
    assert len({first, FlowRule(key(), (Forward(interface="outside"),), cookie=5)}) == 1


def test_a_batch_defaults_to_nothing():
    batch = RuleBatch()
    assert (tuple(batch.install), tuple(batch.remove)) == ((), ())


def test_keys_built_from_ints_equal_checked_ones_and_make_their_addresses_on_demand():
    checked = key(vrf=4)
    fast = FlowKey.from_ints(int(A("10.0.0.1")), int(A("192.0.2.1")), 1234, 80, Protocol.TCP, 4)
    assert fast == checked and hash(fast) == hash(checked)
    assert fast.ints == checked.ints == (0x0A000001, 0xC0000201, 1234, 80, Protocol.TCP, 4)
    assert (fast.src, fast.dst) == (A("10.0.0.1"), A("192.0.2.1"))
    assert fast.src is fast.src, "made once, then kept"
    assert repr(fast) == (
        "FlowKey(src=IPv4Address('10.0.0.1'), dst=IPv4Address('192.0.2.1'), sport=1234, "
        "dport=80, proto=<Protocol.TCP: 6>, vrf=4)"
    )
    assert fast != (0x0A000001, 0xC0000201, 1234, 80, Protocol.TCP, 4)


def test_keys_are_immutable_and_copy_and_pickle_as_values():
    import copy
    import pickle

    original = key(vrf=2)
    with pytest.raises(AttributeError):
        original.sport = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        original.other = 1  # type: ignore[attr-defined]
    assert copy.copy(original) == original and copy.deepcopy(original) == original
    assert pickle.loads(pickle.dumps(original)) == original
    # The reverse direction shares the address objects it already has.
    reverse = original.reversed()
    assert reverse.src is original.dst and reverse.dst is original.src


def test_key_addresses_must_be_ipv4_address_objects():
    with pytest.raises(TypeError, match="IPv4Address"):
        FlowKey("10.0.0.1", A("192.0.2.1"), 1, 2, Protocol.UDP)  # type: ignore[arg-type]


def test_actions_are_put_in_order_whichever_order_is_given_first():
    rewrite = Rewrite(dst=A("10.0.0.9"))
    encap = Encapsulate(A("198.51.100.1"), A("198.51.100.2"), 4790)
    for _ in range(2):  # the second time the order comes from the shape cache
        rule = FlowRule(key(), (Count(), Forward(), encap, rewrite))
        assert rule.actions == (rewrite, encap, Forward(), Count())
    assert FlowRule(key(), (Drop(), Count())).actions == (Drop(), Count())


def test_a_trusted_rule_equals_the_checked_one():
    actions = (Rewrite(src=A("203.0.113.1"), sport=2000), Forward(), Count())
    checked = FlowRule(key(), actions, idle_timeout=30, transitory_timeout=5, cookie=9)
    trusted = FlowRule.trusted(key(), actions, 30, 5, 9)
    assert trusted == checked and hash(trusted) == hash(checked)
    assert (trusted.idle_timeout, trusted.transitory_timeout, trusted.cookie) == (30, 5, 9)
