"""Python mirrors of flowtable.h's configuration and counter records.

The rule records (flow_key, flow_action) are `vnfs.sdk.encoding`'s; these are
the datapath's own maps. tests/unit/vnfs/test_encoding.py compiles the header
and checks every size and offset here against it.
"""

from __future__ import annotations

import struct
from dataclasses import fields
from ipaddress import IPv4Address

from vnfs.sdk.driver import GlobalCounters

PUNT_CONFIG = struct.Struct("=II4s4s2s2s2sH6s6s")
"""struct punt_config: enabled, ifindex, local_addr, slowpath_addr (net), local_port,
slowpath_port, reinject_port (net), instance, local_mac, slowpath_mac"""

IFACE_CONFIG = struct.Struct("=HHI")
"""struct iface_config: vrf, flags, reserved"""

IFINDEX = struct.Struct("=I")
"""the key of iface_cfg (and of the one-entry array maps: always 0)"""

OUTER_LEN = 36
"""outer IPv4 + UDP + 8-byte header added to punted and encapsulated packets"""

COUNTER_NAMES = (
    "rx_packets",
    "rx_bytes",
    "hits",
    "misses",
    "punted",
    "punt_errors",
    "reinjected",
    "reinject_misses",
    "dropped",
    "passed_to_host",
    "forward_errors",
    "tx_packets",
    "tx_bytes",
    "rule_drops",
    "no_neighbour",
    "ttl_exceeded",
    "frag_needed",
    "malformed",
    "punt_too_big",
    "punt_gso",
    "reinject_errors",
    "datagram_rules",
    "datagram_added",
    "datagram_errors",
    "icmp_errors",
)
"""enum fp_counter, in order"""

GLOBAL_COUNTERS = tuple(field.name for field in fields(GlobalCounters))
"""the datapath counters GlobalCounters carries (every driver reports them)"""

DETAIL_COUNTERS = tuple(name for name in COUNTER_NAMES if name not in GLOBAL_COUNTERS)
"""the datapath's counters beyond GlobalCounters"""

COUNTERS = struct.Struct(f"={len(COUNTER_NAMES)}Q")
"""struct fp_counters, one per possible CPU"""

SCAN_STATE = struct.Struct("=QIIQQ")
"""struct scan_state: now_ns, max_out (in); expired, entries, overflow (out)"""

SCAN_SLOTS = 65536
"""expired rules one table scan can hand over"""

MAPS = ("flows", "iface_cfg", "punt_cfg", "counters", "scan_state", "scan_keys", "scan_values")
PROGRAM = "fp_ingress"
SCAN_PROGRAM = "fp_scan"
SCAN_INPUT = bytes(64)
"""the packet a test run of the scan program gets (it never looks at it)"""


def _mac(text: str) -> bytes:
    octets = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if len(octets) != 6:
        raise ValueError(f"{text!r} is not a MAC address")
    return octets


def _port(value: int) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"port {value} is outside 0..65535")
    return value.to_bytes(2, "big")


def encode_punt_config(
    *,
    ifindex: int,
    local_address: str,
    local_port: int,
    slowpath_address: str,
    slowpath_port: int,
    reinject_port: int,
    instance: int,
    local_mac: str,
    slowpath_mac: str,
) -> bytes:
    if not 0 <= instance <= 0xFFFF:
        raise ValueError(f"instance {instance} is outside 0..65535")
    return PUNT_CONFIG.pack(
        1,
        ifindex,
        IPv4Address(local_address).packed,
        IPv4Address(slowpath_address).packed,
        _port(local_port),
        _port(slowpath_port),
        _port(reinject_port),
        instance,
        _mac(local_mac),
        _mac(slowpath_mac),
    )


DISABLED_PUNT_CONFIG = bytes(PUNT_CONFIG.size)


def sum_counters(per_cpu: bytes) -> dict[str, int]:
    """Add up the per-CPU copies of struct fp_counters (each padded to 8 bytes)."""
    totals = [0] * len(COUNTER_NAMES)
    for values in COUNTERS.iter_unpack(per_cpu):
        for index, value in enumerate(values):
            totals[index] += value
    return dict(zip(COUNTER_NAMES, totals, strict=True))
