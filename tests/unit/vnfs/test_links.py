"""What the agent reads about its namespace: interfaces, neighbours, forwarding."""

from __future__ import annotations

import os
import socket
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from vnfs.sdk import links


def test_interface_facts_of_loopback() -> None:
    assert links.ifindex("lo") == socket.if_nametoindex("lo")
    assert links.mac("lo") == links.NO_MAC
    assert links.uses_arp("lo") is False
    # Loopback resolves no neighbours: every address is reachable without a MAC.
    assert links.neighbour_mac(IPv4Address("127.0.0.9"), "lo") == links.NO_MAC


def test_missing_interfaces_are_named() -> None:
    with pytest.raises(links.LinkError, match="interface nosuchif0 does not exist"):
        links.ifindex("nosuchif0")
    with pytest.raises(links.LinkError, match="MAC address of interface nosuchif0"):
        links.mac("nosuchif0")


def test_enable_ip_forward_writes_only_when_needed(tmp_path: Path) -> None:
    knob = tmp_path / "ip_forward"
    knob.write_text("0\n")
    links.enable_ip_forward(knob)
    assert knob.read_text() == "1\n"
    os.utime(knob, (1_000_000, 1_000_000))
    links.enable_ip_forward(knob)
    assert knob.stat().st_mtime == 1_000_000  # already on: not written again
    with pytest.raises(links.LinkError, match="cannot enable IPv4 forwarding"):
        links.enable_ip_forward(tmp_path / "missing" / "ip_forward")


def test_ifindex_map_accepts_names_of_unknown_interfaces() -> None:
    mapping = links.IfindexMap({"inside": 4})
    assert mapping["inside"] == 4 and mapping["ifindex17"] == 17
    assert "ifindex17" in mapping and "outside" not in mapping
    assert list(mapping) == ["inside"] and len(mapping) == 1
    with pytest.raises(KeyError):
        mapping["outside"]
