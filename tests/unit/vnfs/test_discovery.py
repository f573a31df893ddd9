"""ANNOUNCE and REGISTER datagrams: round trips and strict validation."""

from __future__ import annotations

import json
import struct
from ipaddress import IPv4Address

import pytest

from vnfs.sdk import discovery
from vnfs.sdk.discovery import Announce, DiscoveryError, InterfaceInfo, Register
from vnfs.sdk.driver import Interface

ANNOUNCE = Announce(
    vnf_instance_id="vnf-1",
    slowpath_id="abc123",
    punt_address=IPv4Address("10.255.0.2"),
    punt_port=7700,
    control_port=7702,
)
REGISTER = Register(
    vnf_instance_id="vnf-1",
    instance=3,
    epoch="0f0f",
    punt_address=IPv4Address("10.255.0.5"),
    rulepush_port=7704,
    reinject_port=7701,
    interfaces=(
        InterfaceInfo.of(Interface("inside", 4, "02:AA:00:00:00:01", "10.10.0.5/24", "inside")),
        InterfaceInfo.of(Interface("vpc7", 5, "02:aa:00:00:00:02", "10.10.7.5/24", "vpc7", 7)),
        InterfaceInfo.of(Interface("punt", 6, "02:aa:00:00:00:03", None, "punt")),
    ),
)


def raw(kind: int, body: dict[str, object] | bytes, version: int = 1, magic: bytes = b"VNFD"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return struct.pack("!4sBBH", magic, version, kind, len(data)) + data


def test_round_trips() -> None:
    assert discovery.decode(discovery.encode(ANNOUNCE)) == ANNOUNCE
    decoded = discovery.decode(discovery.encode(REGISTER))
    assert decoded == REGISTER
    assert isinstance(decoded, Register)
    assert decoded.interfaces[0].to_interface() == Interface(
        "inside", 4, "02:aa:00:00:00:01", "10.10.0.5/24", "inside"
    )
    assert decoded.interfaces[1].to_interface().vrf == 7


def test_the_body_is_camel_case_json() -> None:
    body = json.loads(discovery.encode(ANNOUNCE)[discovery.HEADER.size :])
    assert body == {
        "vnfInstanceId": "vnf-1",
        "slowpathId": "abc123",
        "puntAddress": "10.255.0.2",
        "puntPort": 7700,
        "controlPort": 7702,
    }


def good_announce() -> dict[str, object]:
    body: dict[str, object] = json.loads(discovery.encode(ANNOUNCE)[discovery.HEADER.size :])
    return body


@pytest.mark.parametrize(
    ("datagram", "message"),
    [
        (b"VNF", "too short"),
        (raw(1, good_announce(), magic=b"XXXX"), "bad magic"),
        (raw(1, good_announce(), version=2), "version 2"),
        (raw(1, good_announce())[:-1], "header says"),
        (raw(9, good_announce()), "unknown discovery kind 9"),
        (raw(1, b"{"), "invalid ANNOUNCE"),
        (raw(1, {**good_announce(), "extra": 1}), "extra: Extra inputs are not permitted"),
        (raw(1, {**good_announce(), "puntPort": 0}), "puntPort"),
        (raw(1, {**good_announce(), "puntAddress": "10.0.0.300"}), "puntAddress"),
        (raw(1, {**good_announce(), "slowpathId": "has space"}), "slowpathId"),
        (raw(2, good_announce()), "invalid REGISTER"),
        (b"VNFD\x01\x01" + b"\xff\xff" + b"x" * 5000, "exceeds 4096"),
    ],
)
def test_invalid_datagrams(datagram: bytes, message: str) -> None:
    with pytest.raises(DiscoveryError, match=message):
        discovery.decode(datagram)


def test_a_register_with_bad_interfaces_is_refused() -> None:
    body = json.loads(discovery.encode(REGISTER)[discovery.HEADER.size :])
    body["interfaces"][0]["mac"] = "not-a-mac"
    with pytest.raises(DiscoveryError, match=r"interfaces\.0\.mac"):
        discovery.decode(raw(2, body))
    body["interfaces"] = [body["interfaces"][1]] * (discovery.MAX_INTERFACES + 1)
    with pytest.raises(DiscoveryError, match="interfaces"):
        discovery.decode(raw(2, body))


def test_the_largest_valid_register_fits_one_datagram() -> None:
    widest = InterfaceInfo.of(
        Interface("x" * 15, 0x7FFFFFFF, "02:aa:00:00:00:01", "255.255.255.254/31", "r" * 64)
    )
    largest = Register(
        vnf_instance_id="v" * 128,
        instance=0xFFFF,
        epoch="e" * 64,
        punt_address=IPv4Address("255.255.255.254"),
        rulepush_port=65535,
        reinject_port=65535,
        interfaces=(widest,) * discovery.MAX_INTERFACES,
    )
    assert discovery.decode(discovery.encode(largest)) == largest
