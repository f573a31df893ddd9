"""NatLogic: the rules each punted packet gets, expiry, fast-path lifecycle and recovery."""

from __future__ import annotations

import json
import logging
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from tests.unit.vnfs.nat.factory import (
    INSIDE,
    OTHER_REMOTE,
    OUTSIDE,
    PUNT,
    REMOTE,
    config,
    fastpath,
    ip,
    logic,
    outbound,
    packet,
    public_of,
)
from vnfs.nat.logic import LOG_INTERVAL, NatLogic
from vnfs.nat.rules import Role, parse_cookie, partner_key
from vnfs.sdk.flow import (
    Count,
    ExpiredRule,
    FlowKey,
    FlowRule,
    Forward,
    Protocol,
    Rewrite,
    RuleCounters,
)

TCP, UDP, ICMP = Protocol.TCP, Protocol.UDP, Protocol.ICMP
POOL = IPv4Network("203.0.113.0/26")


def expire(nat: NatLogic, rules: list[FlowRule], instance: int = 0) -> list[FlowKey]:
    return list(
        nat.on_rules_expired(fastpath(instance), [ExpiredRule(r, RuleCounters()) for r in rules])
    )


def audit_records(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------ outbound


def test_an_outbound_udp_flow_gets_two_rules(tmp_path: Path) -> None:
    nat = logic(tmp_path)
    out, back = outbound(nat, "10.10.0.5", 5000, REMOTE, 53)
    public_ip, public_port = public_of(out)
    assert public_ip in POOL and public_ip in nat.pool.shard_prefixes(0)[0]
    assert out == FlowRule(
        key=FlowKey(ip("10.10.0.5"), REMOTE, 5000, 53, UDP),
        actions=(Rewrite(src=public_ip, sport=public_port), Forward(), Count()),
        idle_timeout=300,
        transitory_timeout=0,
        cookie=out.cookie,
    )
    assert back == FlowRule(
        key=FlowKey(REMOTE, public_ip, 53, public_port, UDP),
        actions=(Rewrite(dst=ip("10.10.0.5"), dport=5000), Forward(), Count()),
        idle_timeout=300,
        transitory_timeout=0,
        cookie=back.cookie,
    )
    mapping = nat.mappings.find_inside(0, ip("10.10.0.5"), 5000, UDP)
    assert mapping is not None
    assert parse_cookie(out.cookie) == (Role.OUTBOUND, mapping.id)
    assert parse_cookie(back.cookie) == (Role.INBOUND, mapping.id)
    assert partner_key(out) == back.key and partner_key(back) == out.key
    assert nat.stats().sessions_active == {0: 1}


def test_timeouts_follow_the_protocol(tmp_path: Path) -> None:
    nat = logic(
        tmp_path,
        timeouts={"tcp_established": "3 h", "tcp_transitory": "5 m", "udp": 180, "icmp": 90},
    )
    tcp = outbound(nat, "10.10.0.5", 40000, REMOTE, 443, TCP)
    udp = outbound(nat, "10.10.0.5", 40000, REMOTE, 443, UDP)
    icmp = nat.on_new_flow(packet("10.10.0.5", REMOTE, 7, 0, ICMP))
    assert {(r.idle_timeout, r.transitory_timeout) for r in tcp} == {(10800, 300)}
    assert {(r.idle_timeout, r.transitory_timeout) for r in udp} == {(180, 0)}
    assert {(r.idle_timeout, r.transitory_timeout) for r in icmp} == {(90, 0)}


def test_the_mapping_is_endpoint_independent(tmp_path: Path) -> None:
    nat = logic(tmp_path)
    first, _ = outbound(nat, "10.10.0.5", 5000, REMOTE, 3478)
    second, _ = outbound(nat, "10.10.0.5", 5000, OTHER_REMOTE, 9000)
    assert public_of(first) == public_of(second)
    other_port, _ = outbound(nat, "10.10.0.5", 5001, REMOTE, 3478)
    assert public_of(other_port)[0] == public_of(first)[0]  # paired pooling
    assert public_of(other_port)[1] != public_of(first)[1]
    assert nat.stats().mappings_active == {"tcp": 0, "udp": 2, "icmp": 0}


def test_a_repeated_punt_gets_the_same_rules(tmp_path: Path) -> None:
    nat = logic(tmp_path)
    rules = outbound(nat, "10.10.0.5", 40000, REMOTE, 443, TCP)
    again = nat.on_new_flow(packet("10.10.0.5", REMOTE, 40000, 443, TCP))
    assert tuple(again) == rules
    reply = nat.on_new_flow(
        packet(REMOTE, public_of(rules[0])[0], 443, public_of(rules[0])[1], TCP, ingress=OUTSIDE)
    )
    assert tuple(reply) == rules
    assert nat.stats().sessions_active == {0: 1}
    mapping = nat.mappings.find_inside(0, ip("10.10.0.5"), 40000, TCP)
    assert mapping is not None and mapping.sessions == 1


def test_icmp_echo_maps_the_identifier_like_a_port(tmp_path: Path) -> None:
    nat = logic(tmp_path)
    out, back = nat.on_new_flow(packet("10.10.0.5", REMOTE, 4242, 0, ICMP, icmp_type=8))
    public_ip, identifier = public_of(out)
    assert out.key == FlowKey(ip("10.10.0.5"), REMOTE, 4242, 0, ICMP)
    assert out.action(Rewrite) == Rewrite(src=public_ip, sport=identifier)
    # The reply is keyed with the identifier in sport too, and gets the inside id back.
    assert back.key == FlowKey(REMOTE, public_ip, identifier, 0, ICMP)
    assert back.action(Rewrite) == Rewrite(dst=ip("10.10.0.5"), sport=4242)
    assert partner_key(out) == back.key and partner_key(back) == out.key
    # Echo is endpoint independent too: another destination, same identifier mapping.
    other, _ = nat.on_new_flow(packet("10.10.0.5", OTHER_REMOTE, 4242, 0, ICMP, icmp_type=8))
    assert other.action(Rewrite) == out.action(Rewrite)


@pytest.mark.parametrize(
    ("ingress", "icmp_type"),
    [(INSIDE, 0), (INSIDE, 3), (INSIDE, 13), (OUTSIDE, 8), (OUTSIDE, 3), (OUTSIDE, 11)],
)
def test_other_icmp_is_dropped(tmp_path: Path, ingress: Any, icmp_type: int) -> None:
    nat = logic(tmp_path, filtering="endpoint-independent")
    out, _ = nat.on_new_flow(packet("10.10.0.5", REMOTE, 4242, 0, ICMP, icmp_type=8))
    public_ip, identifier = public_of(out)
    if ingress is INSIDE:
        punted = packet("10.10.0.6", REMOTE, 1, 0, ICMP, icmp_type=icmp_type)
    else:
        punted = packet(
            OTHER_REMOTE, public_ip, identifier, 0, ICMP, ingress=OUTSIDE, icmp_type=icmp_type
        )
    assert nat.on_new_flow(punted) == ()
    assert nat.stats().dropped == {"unsupported_icmp": 1}


def test_packets_from_other_interfaces_are_dropped(tmp_path: Path) -> None:
    nat = logic(tmp_path)
    assert nat.on_new_flow(packet("10.10.0.5", REMOTE, 1, 2, ingress=None)) == ()
    assert nat.on_new_flow(packet("10.10.0.5", REMOTE, 1, 2, ingress=PUNT)) == ()
    assert nat.on_new_flow(packet("203.0.113.1", REMOTE, 1, 2)) == ()
    assert nat.stats().dropped == {
        "unknown_ingress": 1,
        "unexpected_interface": 1,
        "source_in_pool": 1,
    }
    assert len(nat.mappings) == 0


# ------------------------------------------------------------------ inbound


def test_inbound_without_a_mapping_is_dropped(tmp_path: Path) -> None:
    nat = logic(tmp_path, filtering="endpoint-independent")
    assert nat.on_new_flow(packet(REMOTE, "203.0.113.1", 443, 2000, TCP, ingress=OUTSIDE)) == ()
    assert nat.on_new_flow(packet(REMOTE, "192.0.2.10", 443, 2000, TCP, ingress=OUTSIDE)) == ()
    stats = nat.stats()
    assert stats.dropped == {"inbound_no_mapping": 1, "inbound_not_pool": 1}
    assert stats.dropped_inbound == 2


def test_endpoint_independent_filtering_admits_anyone(tmp_path: Path) -> None:
    nat = logic(tmp_path, filtering="endpoint-independent")
    out, _ = outbound(nat, "10.10.0.5", 5000, REMOTE, 3478)
    public_ip, public_port = public_of(out)
    stranger = ip("192.0.2.77")
    rules = nat.on_new_flow(packet(stranger, public_ip, 6000, public_port, ingress=OUTSIDE))
    assert len(rules) == 2
    out2, back2 = rules
    assert out2.key == FlowKey(ip("10.10.0.5"), stranger, 5000, 6000, UDP)
    assert out2.action(Rewrite) == Rewrite(src=public_ip, sport=public_port)
    assert back2.key == FlowKey(stranger, public_ip, 6000, public_port, UDP)
    assert back2.action(Rewrite) == Rewrite(dst=ip("10.10.0.5"), dport=5000)
    mapping = nat.mappings.find_public(public_ip, public_port, UDP)
    assert mapping is not None and mapping.sessions == 2


def test_address_dependent_filtering_admits_only_contacted_addresses(tmp_path: Path) -> None:
    nat = logic(tmp_path, filtering="address-dependent")
    out, _ = outbound(nat, "10.10.0.5", 5000, REMOTE, 3478)
    public_ip, public_port = public_of(out)
    # Another port of a contacted address is admitted (address-, not port-dependent).
    assert len(nat.on_new_flow(packet(REMOTE, public_ip, 3479, public_port, ingress=OUTSIDE)))
    assert (
        nat.on_new_flow(packet(OTHER_REMOTE, public_ip, 3478, public_port, ingress=OUTSIDE)) == ()
    )
    assert nat.stats().dropped == {"inbound_filtered": 1}
    # Once the inside host sends to it, the address is admitted too.
    outbound(nat, "10.10.0.5", 5000, OTHER_REMOTE, 80)
    assert len(nat.on_new_flow(packet(OTHER_REMOTE, public_ip, 3478, public_port, ingress=OUTSIDE)))


def test_an_inbound_echo_reply_for_a_live_mapping(tmp_path: Path) -> None:
    nat = logic(tmp_path, filtering="address-dependent")
    out, back = nat.on_new_flow(packet("10.10.0.5", REMOTE, 4242, 0, ICMP))
    other = tuple(nat.on_new_flow(packet("10.10.0.5", OTHER_REMOTE, 4242, 0, ICMP)))
    public_ip, identifier = public_of(out)
    assert expire(nat, [back, out]) == []  # the session with REMOTE ended
    # A late reply from REMOTE is not admitted (ADF: no session with it any more)...
    assert nat.on_new_flow(packet(REMOTE, public_ip, identifier, 0, ICMP, ingress=OUTSIDE)) == ()
    assert nat.stats().dropped == {"inbound_filtered": 1}
    # ...one from OTHER_REMOTE, punted before its rule landed, gets its session's rules.
    reply = packet(OTHER_REMOTE, public_ip, identifier, 0, ICMP, ingress=OUTSIDE)
    assert tuple(nat.on_new_flow(reply)) == other
    # Under EIF the late reply from REMOTE opens a new session of the live mapping.
    nat = logic(tmp_path / "eif", filtering="endpoint-independent")
    out, back = nat.on_new_flow(packet("10.10.0.5", REMOTE, 4242, 0, ICMP))
    nat.on_new_flow(packet("10.10.0.5", OTHER_REMOTE, 4242, 0, ICMP))
    expire(nat, [back, out])
    public_ip, identifier = public_of(out)
    again = nat.on_new_flow(packet(REMOTE, public_ip, identifier, 0, ICMP, ingress=OUTSIDE))
    assert {r.key for r in again} == {out.key, back.key}


# ------------------------------------------------------------------ hairpinning


def test_hairpinned_hosts_see_each_others_public_endpoints(tmp_path: Path) -> None:
    nat = logic(tmp_path, filtering="endpoint-independent")
    b_out, _ = outbound(nat, "10.10.0.6", 7000, REMOTE, 3478)  # B's mapping, via a server
    b_public_ip, b_public_port = public_of(b_out)
    forward, reverse = nat.on_new_flow(packet("10.10.0.5", b_public_ip, 5000, b_public_port))
    a = nat.mappings.find_inside(0, ip("10.10.0.5"), 5000, UDP)
    assert a is not None
    assert forward.key == FlowKey(ip("10.10.0.5"), b_public_ip, 5000, b_public_port, UDP)
    assert forward.action(Rewrite) == Rewrite(
        src=a.public_ip, sport=a.public_port, dst=ip("10.10.0.6"), dport=7000
    )
    assert reverse.key == FlowKey(ip("10.10.0.6"), a.public_ip, 7000, a.public_port, UDP)
    assert reverse.action(Rewrite) == Rewrite(
        src=b_public_ip, sport=b_public_port, dst=ip("10.10.0.5"), dport=5000
    )
    assert parse_cookie(forward.cookie) == (Role.HAIRPIN, a.id)
    b = nat.mappings.find_public(b_public_ip, b_public_port, UDP)
    assert b is not None and parse_cookie(reverse.cookie) == (Role.HAIRPIN, b.id)
    assert partner_key(forward) == reverse.key
    # Both mappings count the hairpin session.
    assert (a.sessions, b.sessions) == (1, 2)
    assert expire(nat, [forward]) == []  # UDP: the reverse direction still lives
    assert expire(nat, [reverse]) == []
    assert (nat.mappings.find_inside(0, ip("10.10.0.5"), 5000, UDP), b.sessions) == (None, 1)


def test_hairpinning_is_not_filtered(tmp_path: Path) -> None:
    """With address-dependent filtering, B never sent to A's public address, and cannot
    have: that would be a hairpinned packet itself. A still reaches B."""
    nat = logic(tmp_path, filtering="address-dependent")
    b_out, _ = outbound(nat, "10.10.0.6", 7000, REMOTE, 3478)
    b_public = public_of(b_out)
    forward, reverse = nat.on_new_flow(packet("10.10.0.5", b_public[0], 5000, b_public[1]))
    a = nat.mappings.find_inside(0, ip("10.10.0.5"), 5000, UDP)
    assert a is not None and reverse.key.dst == a.public_ip
    # B's reply is covered by the reverse rule; punted before it landed, it gets the same.
    assert tuple(nat.on_new_flow(packet("10.10.0.6", a.public_ip, 7000, a.public_port))) == (
        forward,
        reverse,
    )
    # Outsiders are still filtered by both mappings.
    assert (
        nat.on_new_flow(packet(OTHER_REMOTE, a.public_ip, 1, a.public_port, ingress=OUTSIDE)) == ()
    )


def test_hairpin_drops(tmp_path: Path) -> None:
    nat = logic(tmp_path, filtering="endpoint-independent", hairpinning=False)
    b_out, _ = outbound(nat, "10.10.0.6", 7000, REMOTE, 3478)
    b_public = public_of(b_out)
    assert nat.on_new_flow(packet("10.10.0.5", b_public[0], 5000, b_public[1])) == ()
    nat = logic(tmp_path / "2", filtering="endpoint-independent")
    b_out, _ = outbound(nat, "10.10.0.6", 7000, REMOTE, 3478)
    b_public = public_of(b_out)
    assert nat.on_new_flow(packet("10.10.0.5", b_public[0], 5000, b_public[1] + 1)) == ()
    assert nat.on_new_flow(packet("10.10.0.5", b_public[0], 1, 0, ICMP)) == ()
    assert nat.on_new_flow(packet("10.10.0.6", b_public[0], 7000, b_public[1])) == ()
    assert nat.stats().dropped == {"hairpin_no_mapping": 2, "hairpin_to_self": 1}
    mapping = nat.mappings.find_inside(0, ip("10.10.0.6"), 7000, UDP)
    assert mapping is not None and mapping.sessions == 1


# ------------------------------------------------------------------ shards and exhaustion


def test_each_fast_path_uses_its_own_shard(tmp_path: Path) -> None:
    nat = logic(tmp_path, filtering="endpoint-independent")
    seen: dict[IPv4Address, int] = {}
    for instance in range(8):
        fp = fastpath(instance)
        (prefix,) = nat.pool.shard_prefixes(instance)
        for host in range(1, 30):
            out, _ = outbound(nat, f"10.10.{instance}.{host}", 5000, REMOTE, 53, fp=fp)
            public_ip, public_port = public_of(out)
            assert public_ip in prefix
            seen.setdefault(public_ip, instance)
            assert seen[public_ip] == instance
    stats = nat.stats()
    assert stats.sessions_active == dict.fromkeys(range(8), 29)
    assert all(stats.blocks_in_use[s] == 29 for s in range(8))
    # A reply reaching another instance than the mapping's is not admitted there.
    out, _ = outbound(nat, "10.10.0.1", 5000, REMOTE, 53, fp=fastpath(0))
    public_ip, public_port = public_of(out)
    wrong = packet(REMOTE, public_ip, 53, public_port, ingress=OUTSIDE, fp=fastpath(3))
    assert nat.on_new_flow(wrong) == ()
    assert nat.stats().dropped == {"inbound_wrong_shard": 1}


def test_an_instance_beyond_the_shards_gets_no_mappings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nat = logic(tmp_path, shards=4)
    with caplog.at_level(logging.WARNING, logger="vnfs.nat.logic"):
        nat.on_fastpath_joined(fastpath(5))
        assert nat.on_new_flow(packet("10.10.0.5", REMOTE, 1, 2, fp=fastpath(5))) == ()
    assert nat.stats().exhaustion_events == {"no_shard": 1}
    assert "fast path 5 joined, but the pool is split into 4 shards" in caplog.text
    assert "no_shard: the pool is split into 4 shards" in caplog.text


def test_exhaustion_refuses_logs_and_never_reuses_a_live_port(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    nat = NatLogic(
        config(
            public_pool={"cidr": "203.0.113.9/32", "port_block_size": 64, "first_port": 65408},
            shards=1,
            max_blocks_per_subscriber=1,
        ),
        audit=logic(tmp_path).audit,
        clock=lambda: now[0],
    )
    rules = [outbound(nat, "10.10.0.5", 10000 + n, REMOTE, 80, TCP) for n in range(64)]
    live = {public_of(out) for out, _ in rules}
    assert len(live) == 64
    with caplog.at_level(logging.WARNING, logger="vnfs.nat.logic"):
        for n in range(5):
            assert nat.on_new_flow(packet("10.10.0.5", REMOTE, 20000 + n, 80, TCP)) == ()
        now[0] += LOG_INTERVAL
        assert nat.on_new_flow(packet("10.10.0.5", REMOTE, 20010, 80, TCP)) == ()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # rate limited per fast path and reason
    assert lines[0] == (
        "NAT refused a new flow on fast path 0: TCP 10.10.0.5:20000 -> 198.51.100.7:80 "
        "(subscriber_limit: 10.10.0.5 holds 1 blocks of 64 ports, all in use for this protocol)"
    )
    assert lines[1].endswith("; 4 more refused since the last report")
    # The second block of the address goes to another subscriber, then the pool is empty.
    outbound(nat, "10.10.0.6", 1, REMOTE, 80, TCP)
    assert nat.on_new_flow(packet("10.10.0.7", REMOTE, 1, 80, TCP)) == ()
    assert nat.stats().exhaustion_events == {"subscriber_limit": 6, "pool_exhausted": 1}
    assert "(pool_exhausted: 2 of 2 blocks of shard 0 in use)" in caplog.text
    # A session ending frees exactly its port, which the next flow may then use.
    out, back = rules[10]
    assert expire(nat, [back]) == [out.key]  # TCP: the whole session goes
    fresh, _ = outbound(nat, "10.10.0.5", 30000, REMOTE, 80, TCP)
    assert public_of(fresh) == public_of(out)
    assert public_of(fresh) not in live - {public_of(out)}


# ------------------------------------------------------------------ expiry and lifecycle


def test_tcp_expiry_removes_the_partner_and_releases_mapping_and_block(tmp_path: Path) -> None:
    nat = logic(tmp_path)
    out, back = outbound(nat, "10.10.0.5", 40000, REMOTE, 443, TCP)
    public_ip, public_port = public_of(out)
    assert expire(nat, [back]) == [out.key]
    assert nat.mappings.find_public(public_ip, public_port, TCP) is None
    assert nat.pool.in_use(0) == 0
    assert nat.live_rules(fastpath(0)) == []
    assert nat.stats().sessions_active == {0: 0}
    # Expiring both at once asks for nothing more; unknown keys are ignored.
    rules = outbound(nat, "10.10.0.5", 40000, REMOTE, 443, TCP)
    assert expire(nat, list(rules)) == []
    assert expire(nat, list(rules)) == []
    events = [(r["event"], r["reason"]) for r in audit_records(tmp_path)]
    assert events.count(("block_released", "idle")) == 2


def test_one_way_udp_traffic_keeps_the_session(tmp_path: Path) -> None:
    """RFC 4787 REQ-6: outbound packets alone keep a mapping (and so do inbound ones)."""
    nat = logic(tmp_path)
    out, back = outbound(nat, "10.10.0.5", 5000, REMOTE, 53)
    assert expire(nat, [back]) == []  # no replies for a while: only the inbound rule ages
    assert nat.live_rules(fastpath(0)) == [out]
    mapping = nat.mappings.find_inside(0, ip("10.10.0.5"), 5000, UDP)
    assert mapping is not None and mapping.sessions == 1
    # A late reply is punted (its rule is gone) and gets both rules again.
    reply = packet(REMOTE, public_of(out)[0], 53, public_of(out)[1], ingress=OUTSIDE)
    assert tuple(nat.on_new_flow(reply)) == (out, back)
    assert sorted(nat.live_rules(fastpath(0)), key=str) == sorted([out, back], key=str)
    # Now the inside host falls silent: the outbound rule ages, the inbound one lives on.
    assert expire(nat, [out]) == []
    assert nat.live_rules(fastpath(0)) == [back]
    # Both idle: the session, mapping and block are gone.
    assert expire(nat, [back]) == []
    assert nat.mappings.find_inside(0, ip("10.10.0.5"), 5000, UDP) is None
    assert nat.pool.in_use(0) == 0 and nat.stats().sessions_active == {0: 0}


def test_a_mapping_lives_while_any_session_does(tmp_path: Path) -> None:
    nat = logic(tmp_path)
    first = outbound(nat, "10.10.0.5", 5000, REMOTE, 53)
    second = outbound(nat, "10.10.0.5", 5000, OTHER_REMOTE, 53)
    assert expire(nat, list(first)) == []
    third = outbound(nat, "10.10.0.5", 5000, REMOTE, 53)
    assert public_of(third[0]) == public_of(first[0])  # the mapping survived
    expire(nat, [*second, *third])
    assert nat.mappings.find_inside(0, ip("10.10.0.5"), 5000, UDP) is None
    assert nat.pool.in_use(0) == 0


def test_a_fast_path_leaving_releases_its_shard_only(tmp_path: Path) -> None:
    nat = logic(tmp_path)
    outbound(nat, "10.10.0.5", 5000, fp=fastpath(1))
    outbound(nat, "10.10.0.6", 5000, fp=fastpath(1))
    kept = outbound(nat, "10.10.0.5", 5000, fp=fastpath(2))
    nat.on_fastpath_left(fastpath(1))
    assert nat.pool.in_use(1) == 0 and nat.pool.in_use(2) == 1
    assert nat.live_rules(fastpath(1)) == []
    assert nat.live_rules(fastpath(2)) == list(kept)
    assert nat.stats().sessions_active == {2: 1}
    released = [r for r in audit_records(tmp_path) if r["event"] == "block_released"]
    assert {(r["fastpath"], r["reason"]) for r in released} == {(1, "fastpath_left")}
    assert len(released) == 2


def test_live_rules_are_every_rule_of_the_fast_paths_sessions(tmp_path: Path) -> None:
    nat = logic(tmp_path, filtering="endpoint-independent")
    sessions = [
        outbound(nat, "10.10.0.5", 5000, REMOTE, 53),
        outbound(nat, "10.10.0.5", 40000, REMOTE, 443, TCP),
        tuple(nat.on_new_flow(packet("10.10.0.6", REMOTE, 9, 0, ICMP))),
    ]
    b = public_of(sessions[0][0])
    sessions.append(tuple(nat.on_new_flow(packet("10.10.0.7", b[0], 1234, b[1]))))
    outbound(nat, "10.10.0.8", 5000, REMOTE, 53, fp=fastpath(4))
    restarted = fastpath(0, epoch="epoch-2")  # same instance, empty table
    live = nat.live_rules(restarted)
    assert sorted(live, key=str) == sorted((r for s in sessions for r in s), key=str)
    assert len(live) == 8


# ------------------------------------------------------------------ restore


def dumped(nat: NatLogic, instance: int) -> list[tuple[FlowRule, RuleCounters]]:
    return [(rule, RuleCounters(packets=3)) for rule in nat.live_rules(fastpath(instance))]


def busy_nat(tmp_path: Path) -> NatLogic:
    nat = logic(tmp_path, filtering="endpoint-independent", max_blocks_per_subscriber=8)
    for instance in (0, 3):
        fp = fastpath(instance)
        for host in range(1, 6):
            for port in range(5000, 5040):
                outbound(nat, f"10.10.0.{host}", port, REMOTE, 53, fp=fp)
                outbound(nat, f"10.10.0.{host}", port, REMOTE, 443, TCP, fp=fp)
            nat.on_new_flow(packet(f"10.10.0.{host}", REMOTE, host, 0, ICMP, fp=fp))
        # Inbound-initiated and hairpinned sessions, also across shards.
        out, _ = outbound(nat, "10.10.0.1", 7000, REMOTE, 53, fp=fp)
        pub = public_of(out)
        nat.on_new_flow(packet(OTHER_REMOTE, pub[0], 99, pub[1], ingress=OUTSIDE, fp=fp))
        nat.on_new_flow(packet("10.10.0.2", pub[0], 7001, pub[1], fp=fp))
    out, _ = outbound(nat, "10.10.0.1", 7000, REMOTE, 53, fp=fastpath(0))
    pub = public_of(out)
    assert len(nat.on_new_flow(packet("10.10.0.9", pub[0], 8000, pub[1], fp=fastpath(3)))) == 2
    return nat


def mapping_view(nat: NatLogic) -> set[tuple[Any, ...]]:
    return {
        (m.shard, m.proto, m.inside_ip, m.inside_port, m.public_ip, m.public_port, m.sessions)
        for m in nat.mappings
    }


def test_restore_rebuilds_what_the_fast_paths_hold(tmp_path: Path) -> None:
    before = busy_nat(tmp_path / "before")
    after = logic(tmp_path / "after", filtering="endpoint-independent", max_blocks_per_subscriber=8)
    for instance in (0, 3):
        after.on_fastpath_joined(fastpath(instance))
        after.restore(fastpath(instance), dumped(before, instance))
    for instance in (0, 3):
        assert set(after.live_rules(fastpath(instance))) == set(
            before.live_rules(fastpath(instance))
        )
    assert mapping_view(after) == mapping_view(before)
    assert {m.id for m in after.mappings} == {m.id for m in before.mappings}
    assert after.stats().blocks_in_use == before.stats().blocks_in_use
    assert after.stats().sessions_active == before.stats().sessions_active
    assert after.stats().restore_skipped == 0
    # Endpoint independence survives: a known inside endpoint keeps its public one...
    known = before.mappings.find_inside(3, ip("10.10.0.4"), 5007, UDP)
    assert known is not None
    out, _ = outbound(after, "10.10.0.4", 5007, ip("192.0.2.1"), 53, fp=fastpath(3))
    assert public_of(out) == (known.public_ip, known.public_port)
    # ...and new flows never get an endpoint a live rule uses.
    live = {(m.public_ip, m.public_port, m.proto) for m in before.mappings}
    ids = {m.id for m in before.mappings}
    for host in range(1, 12):
        for port in range(6000, 6050):
            out, _ = outbound(after, f"10.10.0.{host}", port, REMOTE, 53, fp=fastpath(0))
            mapping = after.mappings.find_inside(0, ip(f"10.10.0.{host}"), port, UDP)
            assert mapping is not None and mapping.id not in ids
            assert (*public_of(out), UDP) not in live
    restored = [r for r in audit_records(tmp_path / "after") if r["event"].endswith("restored")]
    assert {r["event"] for r in restored} == {"block_restored", "mapping_restored"}


def test_restored_sessions_expire_like_new_ones(tmp_path: Path) -> None:
    before = logic(tmp_path / "before")
    out, back = outbound(before, "10.10.0.5", 40000, REMOTE, 443, TCP)
    after = logic(tmp_path / "after")
    after.restore(fastpath(0), dumped(before, 0))
    assert expire(after, [out]) == [back.key]
    assert len(after.mappings) == 0 and after.pool.in_use(0) == 0


def test_restore_keeps_half_sessions_and_skips_foreign_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = logic(tmp_path / "before")
    out, back = outbound(before, "10.10.0.5", 5000, REMOTE, 53)
    foreign = FlowRule(FlowKey(REMOTE, ip("10.10.0.5"), 1, 2, UDP), (Forward(),), cookie=7)
    outside_pool = FlowRule(
        FlowKey(ip("10.10.0.6"), REMOTE, 1, 2, UDP),
        (Rewrite(src=ip("192.0.2.1"), sport=5000), Forward()),
        cookie=out.cookie,
    )
    after = logic(tmp_path / "after")
    with caplog.at_level(logging.WARNING, logger="vnfs.nat.logic"):
        after.restore(
            fastpath(0),
            [(back, RuleCounters()), (foreign, RuleCounters()), (outside_pool, RuleCounters())],
        )
    assert after.live_rules(fastpath(0)) == [back]  # the outbound rule had aged out
    assert after.stats().restore_skipped == 2
    assert "not a NAT rule" in caplog.text
    assert "192.0.2.1 is not a pool address" in caplog.text
    # Restoring the same dump again changes nothing.
    after.restore(fastpath(0), [(back, RuleCounters()), (out, RuleCounters())])
    after.restore(fastpath(0), [(back, RuleCounters()), (out, RuleCounters())])
    assert sorted(after.live_rules(fastpath(0)), key=str) == sorted([out, back], key=str)
    mapping = after.mappings.find_inside(0, ip("10.10.0.5"), 5000, UDP)
    assert mapping is not None and mapping.sessions == 1


def test_restore_refuses_rules_that_contradict_each_other(tmp_path: Path) -> None:
    before = logic(tmp_path / "before")
    out, _ = outbound(before, "10.10.0.5", 5000, REMOTE, 53)
    public_ip, public_port = public_of(out)
    clash = FlowRule(
        FlowKey(ip("10.10.0.6"), REMOTE, 5000, 53, UDP),
        (Rewrite(src=public_ip, sport=public_port), Forward(), Count()),
        cookie=out.cookie,
    )
    after = logic(tmp_path / "after")
    after.restore(fastpath(0), [(out, RuleCounters()), (clash, RuleCounters())])
    assert after.stats().restore_skipped == 1
    assert after.live_rules(fastpath(0)) == [out]


# ------------------------------------------------------------------ audit through the logic


def test_block_records_by_default(tmp_path: Path) -> None:
    nat = logic(tmp_path, per_mapping=False)
    for port in range(5000, 5010):
        out, _ = outbound(nat, "10.10.0.5", port, REMOTE, 53, fp=fastpath(2))
    for rule in nat.live_rules(fastpath(2)):
        expire(nat, [rule], instance=2)
    records = audit_records(tmp_path)
    assert [r["event"] for r in records] == ["block_allocated", "block_released"]
    allocated, released = records
    public_ip, public_port = public_of(out)
    assert allocated["subscriber"] == "10.10.0.5"
    assert allocated["public_ip"] == str(public_ip)
    assert allocated["port_first"] <= public_port <= allocated["port_last"]
    assert allocated["port_last"] - allocated["port_first"] + 1 == 512
    assert allocated["proto"] is None and allocated["fastpath"] == 2
    assert {k: v for k, v in released.items() if k not in ("ts", "event", "reason")} == {
        k: v for k, v in allocated.items() if k not in ("ts", "event", "reason")
    }
    assert released["reason"] == "idle"
    assert nat.stats().audit_records == 2


def test_a_restored_half_session_is_superseded_when_its_flow_returns(tmp_path: Path) -> None:
    before = logic(tmp_path / "before")
    out, back = outbound(before, "10.10.0.5", 40000, REMOTE, 443, TCP)
    after = logic(tmp_path / "after")
    after.restore(fastpath(0), [(back, RuleCounters())])  # the outbound rule aged out
    assert tuple(after.on_new_flow(packet("10.10.0.5", REMOTE, 40000, 443, TCP))) == (out, back)
    assert after.stats().sessions_active == {0: 1}
    mapping = after.mappings.find_inside(0, ip("10.10.0.5"), 40000, TCP)
    assert mapping is not None and mapping.sessions == 1
    # One expiry ends it all: nothing leaks from the half session.
    assert expire(after, [back]) == [out.key]
    assert len(after.mappings) == 0 and after.pool.in_use(0) == 0
