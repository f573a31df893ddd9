"""The binary rule layout: round trips, refusals, and the C header it must match.

The layout test compiles a small host program against vnfs/sdk/bpf/flowtable.h
and compares every size, offset and constant with vnfs.sdk.encoding and
vnfs.sdk.bpf.layout, so the datapath and the Python side cannot drift apart.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from dataclasses import fields
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from vnfs.sdk import encoding
from vnfs.sdk.bpf import layout
from vnfs.sdk.driver import GlobalCounters
from vnfs.sdk.encoding import (
    ACTION_SIZE,
    INSTALL_MAX_RULES,
    KEY_SIZE,
    ActionFlag,
    EncodingError,
    PuntKind,
    decode_action,
    decode_key,
    decode_punt,
    encode_action,
    encode_install,
    encode_key,
    encode_keys,
    encode_punt,
    encode_rules,
    iter_keys,
    iter_rules,
)
from vnfs.sdk.flow import (
    Count,
    Drop,
    Encapsulate,
    FlowKey,
    FlowRule,
    Forward,
    Protocol,
    Rewrite,
    RuleCounters,
)

HEADER = Path(__file__).resolve().parents[3] / "vnfs" / "sdk" / "bpf" / "flowtable.h"
A = IPv4Address


def key(proto: Protocol = Protocol.UDP, vrf: int = 0) -> FlowKey:
    return FlowKey(A("10.0.0.1"), A("192.0.2.7"), 40000, 53, proto, vrf)


RULES = {
    "rewrite-all": FlowRule(
        key(),
        (
            Rewrite(src=A("203.0.113.1"), dst=A("203.0.113.2"), sport=1, dport=65535),
            Forward(),
        ),
    ),
    "rewrite-src": FlowRule(key(), (Rewrite(src=A("203.0.113.1")), Forward())),
    "rewrite-dport": FlowRule(key(Protocol.TCP), (Rewrite(dport=0), Forward())),
    "forward-plain": FlowRule(key(), (Forward(),)),
    "forward-next-hop": FlowRule(key(), (Forward(next_hop=A("198.51.100.1")),)),
    "forward-interface": FlowRule(key(), (Forward(interface="outside"),)),
    "forward-both": FlowRule(key(), (Forward("inside", A("198.51.100.9")),)),
    "encapsulate": FlowRule(
        key(vrf=12),
        (Encapsulate(A("198.51.100.1"), A("198.51.100.2"), 4790, 49152, (1 << 24) - 1), Forward()),
    ),
    "drop": FlowRule(key(Protocol.ICMP), (Drop(),)),
    "drop-count": FlowRule(key(Protocol.TCP), (Drop(), Count())),
    "count": FlowRule(key(), (Forward(), Count())),
    "everything": FlowRule(
        key(Protocol.TCP, vrf=65535),
        (
            Rewrite(dst=A("10.0.0.9"), dport=8080),
            Encapsulate(A("198.51.100.1"), A("198.51.100.2"), 4790),
            Forward(interface="inside"),
            Count(),
        ),
        idle_timeout=7440,
        transitory_timeout=240,
        cookie=(1 << 64) - 1,
    ),
}
IFINDEX_OF = {"inside": 2, "outside": 3}
INTERFACE_OF = {2: "inside", 3: "outside"}


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_action_kind_round_trips(name: str):
    rule = RULES[name]
    encoded = encode_action(rule, IFINDEX_OF)
    assert len(encoded) == ACTION_SIZE
    decoded, counters = decode_action(rule.key, encoded, INTERFACE_OF)
    assert decoded == rule
    assert counters == RuleCounters()
    assert decode_key(encode_key(rule.key)) == rule.key


def test_key_bytes_are_network_order_with_host_order_vrf():
    encoded = encode_key(FlowKey(A("10.0.0.1"), A("192.0.2.7"), 0x1234, 0x0035, Protocol.TCP, 7))
    assert encoded[:12] == bytes.fromhex("0a000001 c0000207 1234 0035")
    assert encoded[12:14] == b"\x06\x00"
    assert encoded[14:] == struct.pack("=H", 7)


def test_action_fields_are_where_the_datapath_reads_them():
    rule = RULES["everything"]
    encoded = encode_action(rule, IFINDEX_OF)
    flags, idle, transitory = struct.unpack_from("=III", encoded)
    assert flags == ActionFlag.REWRITE_DST | ActionFlag.REWRITE_DPORT | ActionFlag.ENCAP | (
        ActionFlag.FORWARD | ActionFlag.COUNT
    )
    assert (idle, transitory) == (7440, 240)
    assert encoded[16:20] == A("10.0.0.9").packed and encoded[22:24] == (8080).to_bytes(2, "big")
    assert struct.unpack_from("=I", encoded, 24) == (2,)
    assert encoded[42:44] == (4790).to_bytes(2, "big")
    assert struct.unpack_from("=Q", encoded, 48) == ((1 << 64) - 1,)
    assert encoded[56:] == bytes(32), "the datapath's fields start at zero"


def test_counters_are_decoded_from_a_dumped_record():
    rule = RULES["count"]
    record = bytearray(encode_action(rule))
    struct.pack_into("=QQQI", record, encoding.COUNTERS_OFFSET, 5, 700, 123456789, 0x12)
    decoded, counters = decode_action(rule.key, bytes(record))
    assert decoded == rule
    assert counters == RuleCounters(5, 700, 123456789, 0x12)


def test_many_rules_round_trip_through_the_batch_arrays():
    rules = list(RULES.values())
    keys, actions, count = encode_rules(rules, IFINDEX_OF)
    assert (len(keys), len(actions), count) == (count * KEY_SIZE, count * ACTION_SIZE, len(rules))
    assert [rule for rule, _ in iter_rules(keys, actions, INTERFACE_OF)] == rules
    assert list(iter_keys(encode_keys([r.key for r in rules]))) == [r.key for r in rules]


def test_an_unknown_ifindex_is_still_named_in_a_dump():
    encoded = encode_action(RULES["forward-interface"], IFINDEX_OF)
    decoded, _ = decode_action(RULES["forward-interface"].key, encoded)
    assert decoded.action(Forward) == Forward(interface="ifindex3")


def test_forward_to_an_interface_the_fast_path_lacks_is_refused():
    with pytest.raises(EncodingError, match="no interface 'outside'"):
        encode_action(RULES["forward-interface"], {"inside": 2})
    with pytest.raises(EncodingError, match="no interface"):
        encode_action(RULES["forward-interface"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\0" * 15, "a flow key is 16 bytes"),
        (b"\0" * 17, "a flow key is 16 bytes"),
        (bytes.fromhex("0a000001 c0000207 1234 0035 2f00 0000"), "protocol 47"),
        (bytes.fromhex("0a000001 c0000207 1234 0035 1101 0000"), "pad byte"),
    ],
)
def test_bad_key_bytes_are_refused(data: bytes, message: str):
    with pytest.raises(EncodingError, match=message):
        decode_key(data)


def _with_flags(flags: int) -> bytes:
    record = bytearray(encode_action(RULES["forward-plain"]))
    struct.pack_into("=I", record, 0, flags)
    return bytes(record)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\0" * 87, "a flow action is 88 bytes"),
        (_with_flags(ActionFlag.FORWARD | 0x100), "unknown action flags 0x100"),
        (_with_flags(ActionFlag.DROP | ActionFlag.FORWARD), "cannot also"),
        (_with_flags(ActionFlag.COUNT), "either forward or drop"),
        (_with_flags(0), "either forward or drop"),
    ],
)
def test_bad_action_bytes_are_refused(data: bytes, message: str):
    with pytest.raises(EncodingError, match=message):
        decode_action(key(), data)


def test_zero_idle_timeout_in_a_record_is_refused():
    record = bytearray(encode_action(RULES["forward-plain"]))
    struct.pack_into("=I", record, 4, 0)
    with pytest.raises(EncodingError, match="idle_timeout"):
        decode_action(key(), bytes(record))


def test_mismatched_batch_arrays_are_refused():
    keys, actions, _ = encode_rules([RULES["count"], RULES["drop"]])
    with pytest.raises(EncodingError, match="not matching arrays"):
        list(iter_rules(keys, actions[:ACTION_SIZE]))
    with pytest.raises(EncodingError, match="not matching arrays"):
        list(iter_rules(keys[:-1], actions))
    with pytest.raises(EncodingError, match="whole number"):
        list(iter_keys(keys[:-3]))


def test_punt_datagrams_round_trip():
    packet = bytes(range(20)) + b"payload"
    for kind in (PuntKind.MISS, PuntKind.REINJECT):
        datagram = encode_punt(kind, 7, 0x01020304, packet)
        assert datagram[:8] == bytes([1, int(kind), 0, 7, 1, 2, 3, 4])
        decoded_kind, instance, ifindex, inner = decode_punt(datagram)
        assert (decoded_kind, instance, ifindex, bytes(inner)) == (kind, 7, 0x01020304, packet)


@pytest.mark.parametrize(
    ("datagram", "message"),
    [
        (bytes([1, 1, 0, 0, 0, 0, 0, 1]) + bytes(19), "too short"),
        (bytes([2, 1, 0, 0, 0, 0, 0, 1]) + bytes(20), "version 2"),
        (bytes([1, 3, 0, 0, 0, 0, 0, 1]) + bytes(104), "INSTALL datagram carries rules"),
        (bytes([1, 4, 0, 0, 0, 0, 0, 1]) + bytes(20), "unknown punt kind 4"),
    ],
)
def test_bad_punt_datagrams_are_refused(datagram: bytes, message: str):
    with pytest.raises(EncodingError, match=message):
        decode_punt(datagram)


def test_an_install_datagram_carries_its_rules_record_by_record():
    rules = [
        FlowRule(FlowKey(IPv4Address("10.0.0.1"), IPv4Address("192.0.2.9"), port, 53, Protocol.UDP),
                 (Forward(),))
        for port in (1000, 1001, 1002)
    ]  # fmt: skip
    keys = [encode_key(rule.key) for rule in rules]
    actions = [encode_action(rule, {}) for rule in rules]
    datagram = encode_install(5, keys, actions)
    assert datagram[:8] == bytes([1, int(PuntKind.INSTALL), 0, 5, 0, 0, 0, 3])
    records = datagram[8:]
    assert len(records) == 3 * (KEY_SIZE + ACTION_SIZE)
    for index, (key, action) in enumerate(zip(keys, actions, strict=True)):
        record = records[index * (KEY_SIZE + ACTION_SIZE) : (index + 1) * (KEY_SIZE + ACTION_SIZE)]
        assert record == key + action


@pytest.mark.parametrize("count", [0, INSTALL_MAX_RULES + 1])
def test_an_install_datagram_has_room_for_a_few_rules(count: int):
    with pytest.raises(EncodingError, match=f"1..{INSTALL_MAX_RULES} rules, not {count}"):
        encode_install(1, [bytes(KEY_SIZE)] * count, [bytes(ACTION_SIZE)] * count)


# --- the C header --------------------------------------------------------------

STRUCTS = {
    "flow_key": ["src", "dst", "sport", "dport", "proto", "pad", "vrf"],
    "flow_action": [
        "flags", "idle_timeout_s", "transitory_timeout_s", "new_src", "new_dst", "new_sport",
        "new_dport", "out_ifindex", "next_hop", "encap_src", "encap_dst", "encap_sport",
        "encap_dport", "encap_vni", "cookie", "packets", "bytes", "last_seen_ns",
        "tcp_flags_seen", "reserved",
    ],
    "punt_config": [
        "enabled", "ifindex", "local_addr", "slowpath_addr", "local_port", "slowpath_port",
        "reinject_port", "instance", "local_mac", "slowpath_mac",
    ],
    "iface_config": ["vrf", "flags", "reserved"],
    "punt_header": ["version", "kind", "instance", "ifindex"],
    "encap_header": ["flags", "reserved", "next_protocol", "vni"],
    "scan_state": ["now_ns", "max_out", "expired", "entries", "overflow"],
}  # fmt: skip
CONSTANTS = [
    "ACT_REWRITE_SRC", "ACT_REWRITE_DST", "ACT_REWRITE_SPORT", "ACT_REWRITE_DPORT",
    "ACT_FORWARD", "ACT_ENCAP", "ACT_DROP", "ACT_COUNT", "PUNT_VERSION", "PUNT_KIND_MISS",
    "PUNT_KIND_REINJECT", "PUNT_KIND_INSTALL", "INSTALL_MAX_RULES", "FP_COUNTER_MAX", "SCAN_SLOTS",
]  # fmt: skip


def _layout_program() -> str:
    lines = ["#include <stdio.h>", "#include <stddef.h>", f'#include "{HEADER}"']
    lines += ["int main(void) {", 'printf("{");']
    for struct_name, members in STRUCTS.items():
        lines.append(
            f'printf("\\"{struct_name}\\": [%zu, %zu], ", sizeof(struct {struct_name}), '
            f"_Alignof(struct {struct_name}));"
        )
        for member in members:
            lines.append(
                f'printf("\\"{struct_name}.{member}\\": [%zu, %zu], ", '
                f"offsetof(struct {struct_name}, {member}), "
                f"sizeof(((struct {struct_name} *)0)->{member}));"
            )
    for constant in CONSTANTS:
        lines.append(f'printf("\\"{constant}\\": [%d, 0], ", (int)({constant}));')
    counters = re.findall(r"^\s*(FP_[A-Z_0-9]+),", HEADER.read_text(), flags=re.MULTILINE)
    for counter in counters:
        lines.append(f'printf("\\"enum.{counter}\\": [%d, 0], ", (int){counter});')
    lines += [
        'printf("\\"fp_counters\\": [%zu, 0]}\\n", sizeof(struct fp_counters));',
        "return 0; }",
    ]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[int]]:
    compiler = shutil.which("gcc") or shutil.which("clang")
    assert compiler, "the layout test needs a C compiler (gcc or clang)"
    directory = tmp_path_factory.mktemp("layout")
    source, program = directory / "layout.c", directory / "layout"
    source.write_text(_layout_program())
    subprocess.run([compiler, "-Wall", "-Werror", "-o", str(program), str(source)], check=True)
    output = subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout
    return json.loads(output)  # type: ignore[no-any-return]


def _offsets(fmt: str) -> list[tuple[int, int]]:
    """(offset, size) of each field of a standard-size, unpadded struct format."""
    result, offset = [], 0
    for count, code in re.findall(r"(\d*)([a-zA-Z])", fmt):
        if code == "x":
            offset += int(count or 1)
            continue
        size = struct.calcsize(f"={count}{code}") if code == "s" else struct.calcsize(f"={code}")
        for _ in range(1 if code == "s" else int(count or 1)):
            result.append((offset, size))
            offset += size
    return result


def _c_fields(c_layout: dict[str, list[int]], struct_name: str) -> list[tuple[int, int]]:
    return [tuple(c_layout[f"{struct_name}.{member}"]) for member in STRUCTS[struct_name]]  # type: ignore[misc]


def test_flow_key_layout_matches_the_header(c_layout: dict[str, list[int]]):
    assert c_layout["flow_key"][0] == KEY_SIZE == encoding.KEY.size + encoding.VRF.size
    python = [*_offsets(encoding.KEY.format.lstrip("!")), (encoding.KEY.size, encoding.VRF.size)]
    c_fields = dict(zip(STRUCTS["flow_key"], _c_fields(c_layout, "flow_key"), strict=True))
    assert python == [field for name, field in c_fields.items() if name != "pad"]


def test_flow_action_layout_matches_the_header(c_layout: dict[str, list[int]]):
    assert c_layout["flow_action"][0] == ACTION_SIZE == encoding.ACTION.size
    assert _offsets(encoding.ACTION.format.lstrip("=")) == _c_fields(c_layout, "flow_action")
    assert c_layout["flow_action.packets"][0] == encoding.COUNTERS_OFFSET
    assert c_layout["flow_action.last_seen_ns"][0] == encoding.LAST_SEEN_OFFSET


def test_flags_and_punt_constants_match_the_header(c_layout: dict[str, list[int]]):
    for flag in ActionFlag:
        assert c_layout[f"ACT_{flag.name}"][0] == flag.value
    assert c_layout["PUNT_VERSION"][0] == encoding.PUNT_VERSION
    assert c_layout["PUNT_KIND_MISS"][0] == PuntKind.MISS
    assert c_layout["PUNT_KIND_REINJECT"][0] == PuntKind.REINJECT
    assert c_layout["PUNT_KIND_INSTALL"][0] == PuntKind.INSTALL
    assert c_layout["INSTALL_MAX_RULES"][0] == encoding.INSTALL_MAX_RULES
    assert c_layout["punt_header"][0] == encoding.PUNT_HEADER.size
    assert _offsets(encoding.PUNT_HEADER.format.lstrip("!")) == _c_fields(c_layout, "punt_header")


def test_datapath_records_match_their_python_mirrors(c_layout: dict[str, list[int]]):
    assert c_layout["punt_config"][0] == layout.PUNT_CONFIG.size
    assert _offsets(layout.PUNT_CONFIG.format.lstrip("=")) == _c_fields(c_layout, "punt_config")
    assert c_layout["iface_config"][0] == layout.IFACE_CONFIG.size
    assert _offsets(layout.IFACE_CONFIG.format.lstrip("=")) == _c_fields(c_layout, "iface_config")
    assert c_layout["scan_state"][0] == layout.SCAN_STATE.size
    assert _offsets(layout.SCAN_STATE.format.lstrip("=")) == _c_fields(c_layout, "scan_state")
    assert c_layout["SCAN_SLOTS"][0] == layout.SCAN_SLOTS
    outer = 20 + 8 + c_layout["encap_header"][0]
    assert outer == 20 + 8 + c_layout["punt_header"][0] == layout.OUTER_LEN


def test_counter_names_follow_the_header_enum(c_layout: dict[str, list[int]]):
    enum = sorted(
        (value, name.removeprefix("enum.FP_").lower())
        for name, (value, _) in c_layout.items()
        if name.startswith("enum.") and name != "enum.FP_COUNTER_MAX"
    )
    assert [name for _, name in enum] == list(layout.COUNTER_NAMES)
    assert [value for value, _ in enum] == list(range(len(layout.COUNTER_NAMES)))
    assert c_layout["FP_COUNTER_MAX"][0] == len(layout.COUNTER_NAMES)
    assert c_layout["fp_counters"][0] == layout.COUNTERS.size
    # Every GlobalCounters field is a datapath counter; the rest are its details.
    assert set(layout.GLOBAL_COUNTERS) == {field.name for field in fields(GlobalCounters)}
    assert set(layout.GLOBAL_COUNTERS) <= set(layout.COUNTER_NAMES)
    assert set(layout.DETAIL_COUNTERS) == set(layout.COUNTER_NAMES) - set(layout.GLOBAL_COUNTERS)
    assert "reinject_errors" in layout.GLOBAL_COUNTERS and "ttl_exceeded" in layout.DETAIL_COUNTERS


def _reference_action(rule: FlowRule, ifindex_of: dict[str, int]) -> bytes:
    """The record built field by field from ACTION (bytes for network-order fields)."""
    rewrite, encap, forward = rule.action(Rewrite), rule.action(Encapsulate), rule.action(Forward)
    flags = 0
    zero = b"\0\0\0\0"
    new_src = new_dst = next_hop = outer_src = outer_dst = zero
    new_sport = new_dport = outer_sport = outer_dport = b"\0\0"
    ifindex = vni = 0
    if rewrite is not None:
        if rewrite.src is not None:
            flags, new_src = flags | ActionFlag.REWRITE_SRC, rewrite.src.packed
        if rewrite.dst is not None:
            flags, new_dst = flags | ActionFlag.REWRITE_DST, rewrite.dst.packed
        if rewrite.sport is not None:
            flags, new_sport = flags | ActionFlag.REWRITE_SPORT, rewrite.sport.to_bytes(2, "big")
        if rewrite.dport is not None:
            flags, new_dport = flags | ActionFlag.REWRITE_DPORT, rewrite.dport.to_bytes(2, "big")
    if encap is not None:
        flags |= ActionFlag.ENCAP
        outer_src, outer_dst, vni = encap.outer_src.packed, encap.outer_dst.packed, encap.vni
        outer_sport = encap.udp_sport.to_bytes(2, "big")
        outer_dport = encap.udp_dport.to_bytes(2, "big")
    if forward is not None:
        flags |= ActionFlag.FORWARD
        ifindex = ifindex_of[forward.interface] if forward.interface else 0
        next_hop = forward.next_hop.packed if forward.next_hop else zero
    if rule.action(Drop) is not None:
        flags |= ActionFlag.DROP
    if rule.action(Count) is not None:
        flags |= ActionFlag.COUNT
    return encoding.ACTION.pack(
        int(flags), rule.idle_timeout, rule.transitory_timeout, new_src, new_dst, new_sport,
        new_dport, ifindex, next_hop, outer_src, outer_dst, outer_sport, outer_dport, vni,
        rule.cookie, 0, 0, 0, 0, 0,
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(RULES))
def test_the_fast_encoders_write_exactly_the_field_by_field_records(name: str):
    rule = RULES[name]
    assert encode_action(rule, IFINDEX_OF) == _reference_action(rule, IFINDEX_OF)
    reference_key = encoding.KEY.pack(
        rule.key.src.packed, rule.key.dst.packed, rule.key.sport, rule.key.dport, rule.key.proto
    ) + encoding.VRF.pack(rule.key.vrf)
    assert encode_key(rule.key) == reference_key


def test_the_number_structs_have_the_byte_structs_layout():
    assert _offsets(encoding._ACTION_NUMBERS.format[1:]) == _offsets(encoding.ACTION.format[1:])
    head = _offsets(encoding._ACTION_HEAD.format[1:])
    assert head == _offsets(encoding.ACTION.format[1:])[:15]
    assert encoding._ACTION_HEAD.size == ACTION_SIZE
    assert encoding._KEY_NUMBERS.size == KEY_SIZE


def test_decoded_keys_carry_host_order_vrf_and_lazy_addresses():
    data = bytes.fromhex("0a000001 c0000207 1234 0035 0600") + struct.pack("=H", 513)
    decoded = decode_key(data)
    assert decoded == FlowKey(A("10.0.0.1"), A("192.0.2.7"), 0x1234, 0x35, Protocol.TCP, 513)
    assert decoded.proto is Protocol.TCP and decoded.src == A("10.0.0.1")
