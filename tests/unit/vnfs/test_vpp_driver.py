"""The `vpp` fast-path driver against a fake VPP API client, and its punt relay on real sockets."""

from __future__ import annotations

import importlib
import re
import socket
import struct
import threading
import time
from collections import namedtuple
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from vnfs.sdk.driver import DriverError, Interface, PuntTarget, TableFull
from vnfs.sdk.encoding import PuntKind, decode_punt, encode_punt, encode_rules
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
from vnfs.sdk.packet import parse_ipv4
from vnfs.sdk.vpp import VppDriver, VppSettings, load_settings
from vnfs.sdk.vpp import api as vpp_api
from vnfs.sdk.vpp.punt import PUNT_DESC, PUNT_IP4_ROUTED, PuntRelay, ipv4_from_vpp
from vnfs.sdk.vpp.rewrite import internet_checksum, rewrite_ipv4

ALL_ONES = 0xFFFFFFFF
INSIDE_HOST = IPv4Address("10.1.0.5")
REMOTE = IPv4Address("198.51.100.7")
PUBLIC = IPv4Address("203.0.113.1")
NS = 1_000_000_000

# VPP's API errors the fake answers with (vnet/api_errno.h)
NO_SUCH_ENTRY = -6
VALUE_EXIST = -56
INVALID_VALUE = -1


def _message(name: str, **fields: Any) -> Any:
    return namedtuple(name, list(fields))(**fields)


class FakeVpp:
    """The state of one fake VPP process (see FakeVppApi): what its API handlers keep."""

    def __init__(self, pid: int = 4242) -> None:
        self.pid = pid
        self.running = True
        self.clients: list[FakeVppApi] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, int] = {}
        """message name -> retval to answer the next such request with"""
        self.server_path = "/run/vpp/punt.sock"
        self.reset()

    def reset(self) -> None:
        self.interfaces: dict[int, dict[str, Any]] = {
            1: {"name": "host-inside", "flags": 3, "vrf": 0},
            2: {"name": "host-outside", "flags": 3, "vrf": 0},
            3: {"name": "host-side", "flags": 3, "vrf": 0},
        }
        self.nat_enabled = False
        self.nat_features: set[tuple[int, int]] = set()
        self.timeouts = {"udp": 300, "tcp_established": 7440, "tcp_transitory": 240, "icmp": 60}
        self.mappings: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.sessions: list[dict[str, Any]] = []
        self.acls: dict[int, dict[str, Any]] = {}
        self.next_acl = 0
        self.policies: dict[int, dict[str, Any]] = {}
        self.attached: dict[tuple[int, int], int] = {}
        self.tunnels: dict[int, dict[str, Any]] = {}
        self.next_sw_if_index = 10
        self.unnumbered: set[tuple[int, int]] = set()
        self.punts: list[dict[str, Any]] = []

    def restart(self) -> None:
        """VPP crashed and came back: new process, empty state, old connections dead."""
        for client in self.clients:
            client.broken = True
        self.pid += 1
        self.reset()

    def names(self) -> list[str]:
        return [name for name, _ in self.requests]

    def add_session(
        self,
        *,
        inside: tuple[IPv4Address, int],
        outside: tuple[IPv4Address, int],
        remote: tuple[IPv4Address, int],
        proto: Protocol = Protocol.UDP,
        packets: int = 3,
        octets: int = 300,
        idle: float = 2.0,
        timed_out: bool = False,
    ) -> None:
        self.sessions.append(
            {
                "inside": inside,
                "outside": outside,
                "remote": remote,
                "proto": int(proto),
                "packets": packets,
                "octets": octets,
                "idle": idle,
                "timed_out": timed_out,
            }
        )

    # the API handlers: fields in, reply fields (or a list of details) out

    def handle(self, name: str, fields: dict[str, Any]) -> dict[str, Any] | list[Any]:
        self.requests.append((name, fields))
        if name in self.fail:
            return {"retval": self.fail.pop(name)}
        handler: Callable[[dict[str, Any]], Any] | None = getattr(self, "h_" + name, None)
        if handler is None:
            raise AttributeError(name)
        result = handler(fields)
        return {"retval": 0} if result is None else result

    def h_control_ping(self, f: dict[str, Any]) -> dict[str, Any]:
        return {"retval": 0, "client_index": 1, "vpe_pid": self.pid}

    def h_show_version(self, f: dict[str, Any]) -> dict[str, Any]:
        return {
            "retval": 0,
            "program": "vpe",
            "version": "24.06-fake",
            "build_date": "",
            "build_directory": "",
        }

    def h_sw_interface_dump(self, f: dict[str, Any]) -> list[Any]:
        return [
            _message(
                "sw_interface_details",
                sw_if_index=index,
                interface_name=i["name"],
                flags=i["flags"],
            )
            for index, i in self.interfaces.items()
            if not f.get("name_filter_valid") or f["name_filter"] in i["name"]
        ]

    def h_sw_interface_get_table(self, f: dict[str, Any]) -> dict[str, Any]:
        return {"retval": 0, "vrf_id": self.interfaces[f["sw_if_index"]]["vrf"]}

    def h_sw_interface_set_flags(self, f: dict[str, Any]) -> None:
        self.interfaces[f["sw_if_index"]]["flags"] |= f["flags"]

    def h_sw_interface_set_unnumbered(self, f: dict[str, Any]) -> None:
        self.unnumbered.add((f["sw_if_index"], f["unnumbered_sw_if_index"]))

    def h_nat44_ed_plugin_enable_disable(self, f: dict[str, Any]) -> dict[str, Any] | None:
        if f["enable"] == self.nat_enabled:
            return {"retval": INVALID_VALUE}
        self.nat_enabled = f["enable"]
        if not f["enable"]:
            self.mappings.clear()
            self.sessions.clear()
            self.nat_features.clear()
        return None

    def h_nat44_interface_add_del_feature(self, f: dict[str, Any]) -> None:
        assert self.nat_enabled
        self.nat_features.add((f["sw_if_index"], f["flags"]))

    def h_nat_set_timeouts(self, f: dict[str, Any]) -> None:
        self.timeouts = {k: f[k] for k in self.timeouts}

    def h_nat44_add_del_static_mapping_v2(self, f: dict[str, Any]) -> dict[str, Any] | None:
        key = (f["local_ip_address"], f["local_port"], f["protocol"], f["vrf_id"])
        if f["is_add"]:
            if key in self.mappings:
                return {"retval": VALUE_EXIST}
            self.mappings[key] = f
            return None
        if key not in self.mappings:
            return {"retval": NO_SUCH_ENTRY}
        gone = self.mappings.pop(key)
        self.sessions = [
            s
            for s in self.sessions
            if s["inside"] != (gone["local_ip_address"], gone["local_port"])
        ]
        return None

    def h_nat44_del_session(self, f: dict[str, Any]) -> dict[str, Any] | None:
        before = len(self.sessions)
        self.sessions = [
            s
            for s in self.sessions
            if not (
                s["inside"] == (f["address"], f["port"])
                and s["remote"] == (f["ext_host_address"], f["ext_host_port"])
            )
        ]
        return {"retval": NO_SUCH_ENTRY} if len(self.sessions) == before else None

    def h_nat44_user_session_v3_dump(self, f: dict[str, Any]) -> list[Any]:
        return [
            _message(
                "nat44_user_session_v3_details",
                outside_ip_address=s["outside"][0],
                outside_port=s["outside"][1],
                inside_ip_address=s["inside"][0],
                inside_port=s["inside"][1],
                protocol=s["proto"],
                flags=0,
                last_heard=100.0,
                time_since_last_heard=s["idle"],
                total_bytes=s["octets"],
                total_pkts=s["packets"],
                ext_host_address=s["remote"][0],
                ext_host_port=s["remote"][1],
                ext_host_nat_address=IPv4Address(0),
                ext_host_nat_port=0,
                is_timed_out=s["timed_out"],
            )
            for s in self.sessions
            if s["inside"][0] == f["ip_address"]
        ]

    def h_acl_add_replace(self, f: dict[str, Any]) -> dict[str, Any]:
        index = f["acl_index"]
        if index == ALL_ONES:
            index, self.next_acl = self.next_acl, self.next_acl + 1
        elif index not in self.acls:
            return {"retval": NO_SUCH_ENTRY, "acl_index": ALL_ONES}
        assert f["count"] == len(f["r"])
        self.acls[index] = {"tag": f["tag"], "r": f["r"]}
        return {"retval": 0, "acl_index": index}

    def h_acl_del(self, f: dict[str, Any]) -> dict[str, Any] | None:
        if any(p["acl_index"] == f["acl_index"] for p in self.policies.values()):
            return {"retval": INVALID_VALUE}  # in use by an ABF policy
        return None if self.acls.pop(f["acl_index"], None) else {"retval": NO_SUCH_ENTRY}

    def h_acl_dump(self, f: dict[str, Any]) -> list[Any]:
        return [
            _message("acl_details", acl_index=i, tag=a["tag"], count=len(a["r"]), r=a["r"])
            for i, a in self.acls.items()
        ]

    def h_abf_policy_add_del(self, f: dict[str, Any]) -> dict[str, Any] | None:
        policy = f["policy"]
        if f["is_add"]:
            if policy["acl_index"] not in self.acls or policy["n_paths"] != len(policy["paths"]):
                return {"retval": INVALID_VALUE}
            self.policies[policy["policy_id"]] = policy
            return None
        if any(p == policy["policy_id"] for p, _ in self.attached):
            return {"retval": INVALID_VALUE}  # still attached
        return None if self.policies.pop(policy["policy_id"], None) else {"retval": NO_SUCH_ENTRY}

    def h_abf_policy_dump(self, f: dict[str, Any]) -> list[Any]:
        return [
            _message("abf_policy_details", policy=_message("abf_policy", **p))
            for p in self.policies.values()
        ]

    def h_abf_itf_attach_add_del(self, f: dict[str, Any]) -> dict[str, Any] | None:
        attach = f["attach"]
        key = (attach["policy_id"], attach["sw_if_index"])
        if f["is_add"]:
            if attach["policy_id"] not in self.policies or key in self.attached:
                return {"retval": INVALID_VALUE}
            self.attached[key] = attach["priority"]
            return None
        return None if self.attached.pop(key, None) is not None else {"retval": NO_SUCH_ENTRY}

    def h_abf_itf_attach_dump(self, f: dict[str, Any]) -> list[Any]:
        return [
            _message(
                "abf_itf_attach_details",
                attach=_message(
                    "abf_itf_attach", policy_id=p, sw_if_index=s, priority=prio, is_ipv6=False
                ),
            )
            for (p, s), prio in self.attached.items()
        ]

    def h_vxlan_gpe_add_del_tunnel_v2(self, f: dict[str, Any]) -> dict[str, Any]:
        same = [
            i
            for i, t in self.tunnels.items()
            if (t["local"], t["remote"], t["vni"]) == (f["local"], f["remote"], f["vni"])
        ]
        if f["is_add"]:
            if same:
                return {"retval": VALUE_EXIST, "sw_if_index": ALL_ONES}
            index, self.next_sw_if_index = self.next_sw_if_index, self.next_sw_if_index + 1
            self.tunnels[index] = f
            self.interfaces[index] = {"name": f"vxlan_gpe_tunnel{index}", "flags": 0, "vrf": 0}
            return {"retval": 0, "sw_if_index": index}
        if not same:
            return {"retval": NO_SUCH_ENTRY, "sw_if_index": ALL_ONES}
        del self.tunnels[same[0]], self.interfaces[same[0]]
        return {"retval": 0, "sw_if_index": same[0]}

    def h_punt_socket_register(self, f: dict[str, Any]) -> dict[str, Any]:
        self.punts.append(f["punt"])
        return {"retval": 0, "pathname": self.server_path.encode() + b"\0" * 8}

    def h_punt_socket_deregister(self, f: dict[str, Any]) -> dict[str, Any] | None:
        if f["punt"] not in self.punts:
            return {"retval": NO_SUCH_ENTRY}
        self.punts.remove(f["punt"])
        return None


class _Api:
    def __init__(self, client: FakeVppApi) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., int]:
        client = self._client
        if not hasattr(client.vpp, "h_" + name):
            raise AttributeError(name)

        def call(**fields: Any) -> int:
            return client.send(name, fields)

        return call


class FakeVppApi:
    """A FAKE vpp_papi.VPPApiClient, because VPP cannot run on these machines (no VPP
    package, no hugepages). It speaks vpp_papi's asynchronous mode like the real client
    (requests return their context; replies and details go to the event callback, with
    the request's context) and answers from a `FakeVpp` that keeps the state VPP's
    handlers would, so dumps report what earlier requests created."""

    def __init__(self, vpp: FakeVpp) -> None:
        self.vpp = vpp
        self.callback: Callable[[str, Any], None] | None = None
        self.connected = False
        self.broken = False
        vpp.clients.append(self)

    @property
    def api(self) -> _Api:
        if not self.connected:
            raise RuntimeError("Not connected, api definitions not available")
        return _Api(self)

    def register_event_callback(self, callback: Callable[[str, Any], None] | None) -> None:
        self.callback = callback

    def connect(
        self, name: str, chroot_prefix: str | None = None, do_async: bool = False, rx_qlen: int = 32
    ) -> int:
        assert do_async, "the driver pipelines in vpp_papi's asynchronous mode"
        if not self.vpp.running:
            raise ConnectionRefusedError(111, "Connection refused")
        self.connected = True
        return 0

    def disconnect(self) -> int:
        self.connected = False
        return 0

    def send(self, name: str, fields: dict[str, Any]) -> int:
        if self.broken or not self.vpp.running:
            raise OSError(32, "Broken pipe")
        context = fields.pop("context")
        result = self.vpp.handle(name, fields)
        assert self.callback is not None
        if isinstance(result, list):
            for details in result:
                self.callback(
                    type(details).__name__,
                    details._replace(context=context)
                    if "context" in details._fields
                    else _with_context(details, context),
                )
        else:
            reply = _message(f"{name}_reply", context=context, **result)
            self.callback(f"{name}_reply", reply)
        return int(context)


def _with_context(details: Any, context: int) -> Any:
    return _message(type(details).__name__, context=context, **details._asdict())


def inside_port(name: str = "inside", ifindex: int = 21, role: str = "inside") -> Interface:
    return Interface(name, ifindex, "02:00:00:00:00:01", "10.1.0.1/24", role)


INTERFACES = [
    inside_port(),
    Interface("outside", 22, "02:00:00:00:00:02", "203.0.113.1/24", "outside"),
    Interface("side", 23, "02:00:00:00:00:03", "10.3.0.1/24", "side"),
]


def key(
    src: IPv4Address = INSIDE_HOST,
    dst: IPv4Address = REMOTE,
    sport: int = 40000,
    dport: int = 53,
    proto: Protocol = Protocol.UDP,
    vrf: int = 0,
) -> FlowKey:
    return FlowKey(src, dst, sport, dport, proto, vrf)


def snat(k: FlowKey | None = None, port: int = 61000, **kw: Any) -> FlowRule:
    return FlowRule(k or key(), (Rewrite(src=PUBLIC, sport=port), Forward()), **kw)


def dnat(port: int = 61000, **kw: Any) -> FlowRule:
    """The reply direction of snat(): remote -> public endpoint, back to the inside host."""
    return FlowRule(
        key(REMOTE, PUBLIC, 53, port), (Rewrite(dst=INSIDE_HOST, dport=40000), Forward()), **kw
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000 * NS

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def vpp() -> FakeVpp:
    return FakeVpp()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path) -> VppSettings:
    return VppSettings(punt_socket=tmp_path / "relay.sock", window=4)


@pytest.fixture
def driver(vpp: FakeVpp, clock: Clock, settings: VppSettings) -> Any:
    made = VppDriver(settings, client_factory=lambda s: FakeVppApi(vpp), clock=clock)
    made.start(INTERFACES, None)
    vpp.requests.clear()
    yield made
    made.close()


def requests(vpp: FakeVpp, name: str) -> list[dict[str, Any]]:
    return [fields for n, fields in vpp.requests if n == name]


# --- vpp_papi itself ------------------------------------------------------------


def test_missing_vpp_papi_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def without_papi(name: str, package: str | None = None) -> Any:
        if name == "vpp_papi":
            raise ModuleNotFoundError("No module named 'vpp_papi'")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", without_papi)
    with pytest.raises(DriverError) as caught:
        vpp_api.papi_client(VppSettings())
    assert "\n" not in str(caught.value)
    assert "vpp_papi" in str(caught.value) and "nfv-mano[vpp]" in str(caught.value)


def test_real_vpp_papi_without_api_definitions_is_a_driver_error(tmp_path: Path) -> None:
    pytest.importorskip("vpp_papi")
    with pytest.raises(DriverError, match="cannot load VPP's API definitions from"):
        vpp_api.papi_client(VppSettings(api_dir=tmp_path))


def test_unreachable_vpp_is_a_driver_error(vpp: FakeVpp, settings: VppSettings) -> None:
    vpp.running = False
    made = VppDriver(settings, client_factory=lambda s: FakeVppApi(vpp))
    with pytest.raises(DriverError, match=re.escape("cannot connect to VPP at /run/vpp/api.sock")):
        made.start(INTERFACES, None)
    health = made.health()
    assert not health.healthy and "cannot connect" in health.detail


# --- start ----------------------------------------------------------------------


def test_start_attaches_interfaces_and_enables_nat44_ed(
    vpp: FakeVpp, settings: VppSettings
) -> None:
    made = VppDriver(settings, client_factory=lambda s: FakeVppApi(vpp))
    made.start(INTERFACES, None)
    try:
        assert [f["name_filter"] for f in requests(vpp, "sw_interface_dump")] == [
            "host-inside",
            "host-outside",
            "host-side",
        ]
        assert requests(vpp, "sw_interface_set_flags") == [
            {"sw_if_index": i, "flags": 1} for i in (1, 2, 3)
        ]
        enable = requests(vpp, "nat44_ed_plugin_enable_disable")
        assert enable[0] == {"enable": False}
        assert enable[1] == {
            "enable": True,
            "inside_vrf": 0,
            "outside_vrf": 0,
            "sessions": 1 << 20,
            "session_memory": 0,
            "flags": 0x06,
        }
        assert vpp.nat_features == {(1, 0x20), (2, 0x10)}
        assert requests(vpp, "nat_set_timeouts") == [
            {"udp": 300, "tcp_established": 7440, "tcp_transitory": 240, "icmp": 60}
        ]
        assert made.interfaces() == INTERFACES
        vpp.requests.clear()
        made.start(INTERFACES, None)  # repeatable: nothing to change
        assert vpp.names() == []
    finally:
        made.close()


def test_start_names_a_missing_vpp_interface(vpp: FakeVpp, settings: VppSettings) -> None:
    made = VppDriver(settings, client_factory=lambda s: FakeVppApi(vpp))
    with pytest.raises(DriverError, match="VPP has no interface host-wan for wan"):
        made.start([*INTERFACES, Interface("wan", 30, "02:00:00:00:00:09", None, "wan")], None)


def test_a_vrf_on_an_interface_is_refused_not_ignored(vpp: FakeVpp, settings: VppSettings) -> None:
    made = VppDriver(settings, client_factory=lambda s: FakeVppApi(vpp))
    in_vrf = [replace(INTERFACES[0], vrf=7), *INTERFACES[1:]]
    with pytest.raises(DriverError, match="keys flows in VRF 0 only \\(asked for vrf 7\\)"):
        made.start(in_vrf, None)


def test_explicit_interface_names_win(vpp: FakeVpp, tmp_path: Path) -> None:
    vpp.interfaces[1]["name"] = "TenGigabitEthernet3/0/0"
    settings = VppSettings(
        interface_names={"inside": "TenGigabitEthernet3/0/0"}, punt_socket=tmp_path / "p.sock"
    )
    made = VppDriver(settings, client_factory=lambda s: FakeVppApi(vpp))
    made.start(INTERFACES, None)
    try:
        assert requests(vpp, "sw_interface_dump")[0]["name_filter"] == "TenGigabitEthernet3/0/0"
    finally:
        made.close()


def test_start_removes_what_a_previous_agent_left(
    vpp: FakeVpp, settings: VppSettings, clock: Clock
) -> None:
    first = VppDriver(settings, client_factory=lambda s: FakeVppApi(vpp), clock=clock)
    first.start(INTERFACES, None)
    first.install([snat(), FlowRule(key(sport=1), (Forward(),))])
    vpp.acls[99] = {"tag": "operator-acl", "r": []}
    # the agent died without close(); a new one starts on the same VPP
    second = VppDriver(settings, client_factory=lambda s: FakeVppApi(vpp), clock=clock)
    second.start(INTERFACES, None)
    try:
        assert vpp.policies == {} and vpp.attached == {} and vpp.mappings == {}
        assert list(vpp.acls) == [99]
    finally:
        second.close()


# --- rule shapes ------------------------------------------------------------------


def test_source_nat_rule(driver: VppDriver, vpp: FakeVpp) -> None:
    assert driver.install([snat()]) == 1
    assert requests(vpp, "nat44_add_del_static_mapping_v2") == [
        {
            "is_add": True,
            "match_pool": False,
            "flags": 0,
            "pool_ip_address": IPv4Address(0),
            "local_ip_address": INSIDE_HOST,
            "external_ip_address": PUBLIC,
            "protocol": 17,
            "local_port": 40000,
            "external_port": 61000,
            "external_sw_if_index": ALL_ONES,
            "vrf_id": 0,
            "tag": "vnfs:nat",
        }
    ]
    # NAT44-ED translates it: no ABF policy, which would route it before translation
    assert requests(vpp, "acl_add_replace") == requests(vpp, "abf_policy_add_del") == []


def test_untranslated_rule_is_an_exact_acl_and_abf_policy(driver: VppDriver, vpp: FakeVpp) -> None:
    driver.install([FlowRule(key(), (Forward(),), cookie=0xABC, idle_timeout=60)])
    (acl,) = requests(vpp, "acl_add_replace")
    assert acl == {
        "acl_index": ALL_ONES,
        "tag": "vnfs:0000000000000abc:3c:0",
        "count": 1,
        "r": [
            {
                "is_permit": 1,
                "src_prefix": IPv4Network("10.1.0.5/32"),
                "dst_prefix": IPv4Network("198.51.100.7/32"),
                "proto": 17,
                "srcport_or_icmptype_first": 40000,
                "srcport_or_icmptype_last": 40000,
                "dstport_or_icmpcode_first": 53,
                "dstport_or_icmpcode_last": 53,
                "tcp_flags_mask": 0,
                "tcp_flags_value": 0,
            }
        ],
    }
    (policy,) = requests(vpp, "abf_policy_add_del")
    path = policy["policy"]["paths"][0]
    assert policy["is_add"] and policy["policy"]["acl_index"] == 0
    assert policy["policy"]["n_paths"] == 1
    assert (path["type"], path["sw_if_index"], path["table_id"]) == (0, ALL_ONES, 0)
    assert path["nh"]["address"] == {"ip4": IPv4Address(0)}
    policy_id = policy["policy"]["policy_id"]
    assert requests(vpp, "abf_itf_attach_add_del") == [
        {
            "is_add": True,
            "attach": {"policy_id": policy_id, "sw_if_index": i, "priority": 10, "is_ipv6": False},
        }
        for i in (1, 2, 3)
    ]


def test_a_flows_two_nat_rules_share_one_static_mapping(driver: VppDriver, vpp: FakeVpp) -> None:
    driver.install([snat(), dnat()])
    assert len(requests(vpp, "nat44_add_del_static_mapping_v2")) == 1
    assert driver.remove([snat().key]) == 1
    assert list(vpp.mappings) == [(INSIDE_HOST, 40000, 17, 0)]
    assert driver.remove([dnat().key, dnat().key]) == 1
    assert vpp.mappings == {}
    assert [f["is_add"] for f in requests(vpp, "nat44_add_del_static_mapping_v2")] == [True, False]
    assert vpp.acls == {} and vpp.policies == {} and vpp.attached == {}


def test_removing_one_of_several_flows_deletes_only_its_session(
    driver: VppDriver, vpp: FakeVpp
) -> None:
    other = snat(key(dst=IPv4Address("198.51.100.8")))
    driver.install([snat(), other])
    vpp.add_session(inside=(INSIDE_HOST, 40000), outside=(PUBLIC, 61000), remote=(REMOTE, 53))
    vpp.add_session(
        inside=(INSIDE_HOST, 40000),
        outside=(PUBLIC, 61000),
        remote=(IPv4Address("198.51.100.8"), 53),
    )
    driver.remove([snat().key])
    assert requests(vpp, "nat44_del_session") == [
        {
            "address": INSIDE_HOST,
            "protocol": 17,
            "port": 40000,
            "vrf_id": 0,
            "flags": 0xA0,
            "ext_host_address": REMOTE,
            "ext_host_port": 53,
        }
    ]
    assert [s["remote"][0] for s in vpp.sessions] == [IPv4Address("198.51.100.8")]


@pytest.mark.parametrize(
    ("forward", "path_type", "sw_if_index", "next_hop"),
    [
        (Forward(), 0, ALL_ONES, "0.0.0.0"),
        (Forward(next_hop=IPv4Address("10.3.0.254")), 0, ALL_ONES, "10.3.0.254"),
        (Forward(interface="side"), 0, 3, "0.0.0.0"),
        (Forward(interface="side", next_hop=IPv4Address("10.3.0.254")), 0, 3, "10.3.0.254"),
    ],
)
def test_forward_rules_are_abf_paths(
    driver: VppDriver,
    vpp: FakeVpp,
    forward: Forward,
    path_type: int,
    sw_if_index: int,
    next_hop: str,
) -> None:
    driver.install([FlowRule(key(vrf=0), (forward,))])
    assert requests(vpp, "nat44_add_del_static_mapping_v2") == []
    (policy,) = requests(vpp, "abf_policy_add_del")
    path = policy["policy"]["paths"][0]
    assert (path["type"], path["sw_if_index"], path["nh"]["address"]["ip4"]) == (
        path_type,
        sw_if_index,
        IPv4Address(next_hop),
    )


def test_drop_rule_is_an_abf_drop_path(driver: VppDriver, vpp: FakeVpp) -> None:
    driver.install([FlowRule(key(proto=Protocol.TCP), (Drop(),))])
    (policy,) = requests(vpp, "abf_policy_add_del")
    assert policy["policy"]["paths"][0]["type"] == 2
    assert vpp.acls[0]["r"][0]["proto"] == 6


def test_encapsulation_shares_one_vxlan_gpe_tunnel(driver: VppDriver, vpp: FakeVpp) -> None:
    encap = Encapsulate(IPv4Address("203.0.113.1"), IPv4Address("203.0.113.9"), 4790, vni=77)
    rules = [FlowRule(key(sport=p), (encap, Forward())) for p in (1000, 1001)]
    driver.install(rules)
    assert requests(vpp, "vxlan_gpe_add_del_tunnel_v2") == [
        {
            "is_add": True,
            "local": IPv4Address("203.0.113.1"),
            "remote": IPv4Address("203.0.113.9"),
            "local_port": 4790,
            "remote_port": 4790,
            "mcast_sw_if_index": ALL_ONES,
            "encap_vrf_id": 0,
            "decap_vrf_id": 0,
            "protocol": 1,
            "vni": 77,
        }
    ]
    assert requests(vpp, "sw_interface_set_flags") == [{"sw_if_index": 10, "flags": 1}]
    assert vpp.unnumbered == {(1, 10)}
    paths = [p["policy"]["paths"][0] for p in requests(vpp, "abf_policy_add_del")]
    assert [(p["type"], p["sw_if_index"]) for p in paths] == [(0, 10), (0, 10)]
    driver.remove([rules[0].key])
    assert 10 in vpp.tunnels
    driver.remove([rules[1].key])
    assert vpp.tunnels == {}


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        (FlowRule(key(proto=Protocol.ICMP, sport=7, dport=0), (Forward(),)), "echo identifier"),
        (FlowRule(key(), (Rewrite(src=PUBLIC, dst=REMOTE), Forward())), "twice-NAT"),
        (
            FlowRule(key(), (Rewrite(src=PUBLIC), Encapsulate(PUBLIC, REMOTE, 4790), Forward())),
            "rewrite and encaps",
        ),
        (FlowRule(key(), (Rewrite(src=PUBLIC), Forward(next_hop=REMOTE))), "translated flow"),
        (
            FlowRule(key(), (Encapsulate(PUBLIC, REMOTE, 4790, udp_sport=5), Forward())),
            "source port 5",
        ),
        (
            FlowRule(key(), (Encapsulate(PUBLIC, REMOTE, 4790), Forward(interface="side"))),
            "encapsulated flow",
        ),
        (FlowRule(key(), (Forward(), Count())), "per-policy counters"),
        (FlowRule(key(), (Drop(), Count())), "per-policy counters"),
        (FlowRule(key(), (Forward(interface="wan"),)), "no interface 'wan'"),
    ],
)
def test_shapes_vpp_cannot_express_are_refused(
    driver: VppDriver, vpp: FakeVpp, rule: FlowRule, why: str
) -> None:
    with pytest.raises(DriverError) as caught:
        driver.install([snat(), rule])
    assert str(rule.key) in str(caught.value) and why in str(caught.value)
    assert vpp.requests == [], "a refused batch changes nothing in VPP"


def test_nat_without_inside_and_outside_is_refused(vpp: FakeVpp, settings: VppSettings) -> None:
    made = VppDriver(settings, client_factory=lambda s: FakeVppApi(vpp))
    made.start(INTERFACES[:1], None)
    try:
        with pytest.raises(DriverError, match="needs an inside and an outside"):
            made.install([snat()])
        made.install([FlowRule(key(), (Forward(),))])
    finally:
        made.close()


def test_conflicting_static_mappings_are_refused(driver: VppDriver, vpp: FakeVpp) -> None:
    driver.install([snat()])
    other_port = snat(key(dst=IPv4Address("198.51.100.8")), port=61001)
    with pytest.raises(DriverError, match=re.escape("already uses 10.1.0.5:40000")):
        driver.install([other_port])
    same_public = snat(key(src=IPv4Address("10.1.0.6")))
    with pytest.raises(DriverError, match=re.escape("already uses 203.0.113.1:61000")):
        driver.install([same_public])
    assert len(vpp.mappings) == 1 and vpp.policies == {}


def test_nat_timeouts_follow_the_rules_per_protocol(driver: VppDriver, vpp: FakeVpp) -> None:
    driver.install([snat(idle_timeout=120)])
    assert requests(vpp, "nat_set_timeouts")[-1]["udp"] == 120
    with pytest.raises(DriverError, match="udp is 120 s for the installed rules"):
        driver.install([snat(key(src=IPv4Address("10.1.0.6")), port=61001, idle_timeout=60)])
    tcp = FlowRule(
        key(proto=Protocol.TCP, dport=443),
        (Rewrite(src=PUBLIC, sport=62000), Forward()),
        idle_timeout=7440,
        transitory_timeout=240,
    )
    driver.install([tcp])
    assert vpp.timeouts == {"udp": 120, "tcp_established": 7440, "tcp_transitory": 240, "icmp": 60}
    driver.remove([snat().key])
    driver.install([snat(key(src=IPv4Address("10.1.0.6")), port=61001, idle_timeout=60)])
    assert vpp.timeouts["udp"] == 60


# --- batches ---------------------------------------------------------------------


def test_a_failed_batch_is_undone(driver: VppDriver, vpp: FakeVpp) -> None:
    driver.install([FlowRule(key(sport=1), (Forward(),))])
    before = (dict(vpp.acls), dict(vpp.policies), dict(vpp.attached), dict(vpp.mappings))
    vpp.fail["abf_itf_attach_add_del"] = INVALID_VALUE
    with pytest.raises(DriverError, match="abf_itf_attach_add_del failed with retval -1"):
        driver.install([snat(), FlowRule(key(sport=2), (Forward(),))])
    assert (vpp.acls, vpp.policies, vpp.attached, vpp.mappings) == before
    assert [rule.key for rule, _ in driver.dump()] == [key(sport=1)]
    driver.install([snat()])  # the driver's books match VPP: the same rule installs now
    assert len(vpp.mappings) == 1


def test_requests_are_pipelined_within_the_window(driver: VppDriver, vpp: FakeVpp) -> None:
    rules = [FlowRule(key(sport=p), (Forward(),)) for p in range(1, 11)]
    assert driver.install(rules) == 10
    names = vpp.names()
    # phases: every ACL first, then every policy, then every attachment
    assert names[:10] == ["acl_add_replace"] * 10
    assert names[10:20] == ["abf_policy_add_del"] * 10
    assert names[20:] == ["abf_itf_attach_add_del"] * 30


def test_replacing_a_rule_and_removing_absent_keys(driver: VppDriver, vpp: FakeVpp) -> None:
    driver.install([FlowRule(key(), (Forward(),))])
    driver.install([FlowRule(key(), (Drop(),))])
    ((rule, _),) = list(driver.dump())
    assert rule.actions == (Drop(),)
    assert len(vpp.policies) == 1 and len(vpp.acls) == 1
    vpp.requests.clear()
    driver.install([FlowRule(key(), (Drop(),))])  # identical: nothing to do
    assert vpp.requests == []
    assert driver.remove([key(sport=9)]) == 0


def test_table_full(vpp: FakeVpp, tmp_path: Path) -> None:
    made = VppDriver(
        VppSettings(table_size=2, punt_socket=tmp_path / "p.sock"),
        client_factory=lambda s: FakeVppApi(vpp),
    )
    made.start(INTERFACES, None)
    try:
        made.install([FlowRule(key(sport=1), (Forward(),)), FlowRule(key(sport=2), (Forward(),))])
        with pytest.raises(TableFull):
            made.install([FlowRule(key(sport=3), (Forward(),))])
        made.install([FlowRule(key(sport=2), (Drop(),))])  # a replacement still fits
    finally:
        made.close()


def test_install_encoded(driver: VppDriver, vpp: FakeVpp) -> None:
    rules = [snat(), FlowRule(key(sport=7), (Forward(interface="side"),))]
    keys, actions, count = encode_rules(rules, {i.name: i.ifindex for i in INTERFACES})
    assert driver.install_encoded(keys, actions, count) == 2
    assert sorted(str(rule.key) for rule, _ in driver.dump()) == sorted(str(r.key) for r in rules)
    assert requests(vpp, "abf_policy_add_del")[0]["policy"]["paths"][0]["sw_if_index"] == 3


# --- counters and aging ----------------------------------------------------------------


def test_counters_come_from_vpps_nat_session(driver: VppDriver, vpp: FakeVpp, clock: Clock) -> None:
    forward_only = FlowRule(key(sport=5), (Forward(),))
    driver.install([snat(), dnat(), forward_only])
    assert driver.counters([snat().key])[snat().key].packets == 0
    vpp.add_session(
        inside=(INSIDE_HOST, 40000),
        outside=(PUBLIC, 61000),
        remote=(REMOTE, 53),
        packets=7,
        octets=700,
        idle=1.5,
    )
    found = driver.counters([snat().key, dnat().key, forward_only.key, key(sport=9)])
    assert set(found) == {snat().key, dnat().key, forward_only.key}
    assert found[snat().key].packets == found[dnat().key].packets == 7
    assert found[snat().key].bytes == 700
    assert found[snat().key].last_seen_ns == clock.now - int(1.5 * NS)
    assert found[forward_only.key].packets == 0
    assert [d["ip_address"] for d in requests(vpp, "nat44_user_session_v3_dump")][-1] == INSIDE_HOST
    dumped = dict(driver.dump())
    assert dumped[snat()].packets == 7


def test_age_out_follows_vpps_session_timeouts(
    driver: VppDriver, vpp: FakeVpp, clock: Clock
) -> None:
    active, idle_unseen = snat(), snat(key(src=IPv4Address("10.1.0.6")), port=61001)
    forward_only = FlowRule(key(sport=5), (Forward(),), idle_timeout=30)
    driver.install([active, idle_unseen, forward_only])
    vpp.add_session(inside=(INSIDE_HOST, 40000), outside=(PUBLIC, 61000), remote=(REMOTE, 53))
    assert driver.age_out(clock.now + 29 * NS) == []
    # the ABF rule lives idle_timeout from its install; VPP cannot tell its activity
    assert [e.rule for e in driver.age_out(clock.now + 30 * NS)] == [forward_only]
    # the unseen NAT rule ages like an idle flow; the active one has its session
    expired = driver.age_out(clock.now + 300 * NS)
    assert [e.rule for e in expired] == [idle_unseen]
    # VPP times the session out (its own timers, TCP state included)
    vpp.sessions[0]["timed_out"] = True
    (gone,) = driver.age_out(clock.now + 301 * NS)
    assert gone.rule == active and gone.counters.packets == 3
    assert vpp.mappings == {} and list(driver.dump()) == []


def test_a_session_vpp_reclaimed_expires_its_rule(
    driver: VppDriver, vpp: FakeVpp, clock: Clock
) -> None:
    driver.install([snat()])
    vpp.add_session(inside=(INSIDE_HOST, 40000), outside=(PUBLIC, 61000), remote=(REMOTE, 53))
    assert driver.age_out(clock.now + NS) == []
    vpp.sessions.clear()
    (gone,) = driver.age_out(clock.now + 2 * NS)
    assert gone.counters.packets == 3


# --- health, reconnect, close -------------------------------------------------------------


def test_health(driver: VppDriver, vpp: FakeVpp) -> None:
    driver.install([snat()])
    health = driver.health()
    assert health.healthy and "24.06-fake" in health.detail
    assert health.interfaces == {"inside": True, "outside": True, "side": True}
    assert (health.table_entries, health.table_capacity) == (1, 1 << 20)
    vpp.interfaces[2]["flags"] = 1  # admin up, link down
    health = driver.health()
    assert not health.healthy and health.interfaces["outside"] is False
    assert "interfaces down: outside" in health.detail


def test_reconnect_to_the_same_vpp_keeps_its_state(driver: VppDriver, vpp: FakeVpp) -> None:
    driver.install([snat()])
    vpp.clients[-1].broken = True  # the socket dropped, VPP still runs
    with pytest.raises(DriverError, match="Broken pipe"):
        driver.counters([snat().key])
    vpp.requests.clear()
    assert snat().key in driver.counters([snat().key])
    assert "nat44_add_del_static_mapping_v2" not in vpp.names()
    assert len(vpp.mappings) == 1


def test_a_restarted_vpp_is_provisioned_again(driver: VppDriver, vpp: FakeVpp) -> None:
    driver.install([snat(), dnat(), FlowRule(key(sport=5), (Forward(),))])
    vpp.restart()
    health = driver.health()
    assert not health.healthy and "Broken pipe" in health.detail
    health = driver.health()  # reconnects: a new VPP process, rebuilt from the driver's table
    assert health.healthy and "pid 4243" in health.detail
    assert vpp.nat_enabled and vpp.nat_features == {(1, 0x20), (2, 0x10)}
    assert list(vpp.mappings) == [(INSIDE_HOST, 40000, 17, 0)]
    assert len(vpp.policies) == 1 and len(vpp.attached) == 3
    assert len(list(driver.dump())) == 3


def test_a_failed_rebuild_is_tried_again(driver: VppDriver, vpp: FakeVpp) -> None:
    driver.install([snat(), FlowRule(key(sport=5), (Forward(),))])
    vpp.restart()
    with pytest.raises(DriverError, match="Broken pipe"):
        driver.counters([snat().key])
    vpp.fail["abf_itf_attach_add_del"] = INVALID_VALUE
    with pytest.raises(DriverError, match="abf_itf_attach_add_del failed"):
        driver.counters([snat().key])
    assert snat().key in driver.counters([snat().key])
    assert len(vpp.policies) == 1 and len(vpp.attached) == 3 and len(vpp.mappings) == 1
    assert [a["tag"] for a in vpp.acls.values()] == ["vnfs:0000000000000000:12c:0"]


def test_close_releases_everything(vpp: FakeVpp, settings: VppSettings) -> None:
    made = VppDriver(settings, client_factory=lambda s: FakeVppApi(vpp))
    made.start(INTERFACES, None)
    made.install([snat(), FlowRule(key(sport=5), (Forward(),))])
    made.close()
    assert (vpp.acls, vpp.policies, vpp.attached, vpp.mappings) == ({}, {}, {}, {})
    assert not vpp.nat_enabled and not vpp.clients[-1].connected
    assert made.interfaces() == [] and list(made.dump()) == []


# --- punt ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _udp_packet(
    src: IPv4Address, dst: IPv4Address, sport: int, dport: int, payload: bytes = b"hello"
) -> bytes:
    length = 20 + 8 + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, 1, 0, 64, 17, 0, src.packed, dst.packed)
    header = header[:10] + internet_checksum(header).to_bytes(2, "big") + header[12:]
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 17, len(udp))
    checksum = internet_checksum(pseudo + udp) or 0xFFFF
    return header + udp[:6] + checksum.to_bytes(2, "big") + udp[8:]


def _l4_checksum_ok(packet: bytes) -> bool:
    header = (packet[0] & 0x0F) * 4
    segment = packet[header:]
    pseudo = packet[12:20] + struct.pack("!BBH", 0, packet[9], len(segment))
    return internet_checksum(pseudo + segment) == 0


def _frame(packet: bytes, *, vlan: bool = False, ethertype: int = 0x0800) -> bytes:
    macs = bytes.fromhex("020000000001020000000002")
    tag = struct.pack("!HH", 0x8100, 5) if vlan else b""
    return macs + tag + ethertype.to_bytes(2, "big") + packet


@pytest.fixture
def punt_target() -> PuntTarget:
    port = _free_port()
    return PuntTarget(
        interface="punt",
        local_address="127.0.0.1",
        local_port=port,
        slowpath_address="127.0.0.1",
        slowpath_port=_free_port(),
        slowpath_mac="02:00:00:00:00:fe",
        reinject_port=port,
        instance=3,
    )


def _unix(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    return sock


def _udp(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(2.0)
    return sock


def test_vpp_punt_datagrams_lose_descriptor_ethernet_and_vlan_headers() -> None:
    packet = _udp_packet(INSIDE_HOST, REMOTE, 40000, 53)
    for frame in (_frame(packet), _frame(packet, vlan=True)):
        sw_if_index, ip = ipv4_from_vpp(PUNT_DESC.pack(7, 0) + frame)
        assert (sw_if_index, bytes(ip)) == (7, packet)
    with pytest.raises(ValueError, match="ethertype 0x86dd"):
        ipv4_from_vpp(PUNT_DESC.pack(7, 0) + _frame(packet, ethertype=0x86DD))


def test_relay_turns_vpp_punts_into_punt_datagrams_and_back(
    tmp_path: Path, punt_target: PuntTarget
) -> None:
    vpp_side = _unix(tmp_path / "vpp.sock")
    slowpath = _udp(punt_target.slowpath_port)
    seen: list[tuple[int, bytes]] = []

    def reinject(ifindex: int, packet: bytes) -> bytes | None:
        seen.append((ifindex, packet))
        return b"R" + packet

    relay = PuntRelay(
        target=punt_target,
        client_path=tmp_path / "relay.sock",
        vpp_path=str(tmp_path / "vpp.sock"),
        ifindex_of={1: 21, 2: 22},
        reinject=reinject,
    )
    relay.start()
    try:
        packet = _udp_packet(INSIDE_HOST, REMOTE, 40000, 53)
        vpp_side.sendto(PUNT_DESC.pack(1, 0) + _frame(packet), str(tmp_path / "relay.sock"))
        datagram, source = slowpath.recvfrom(65535)
        assert source == ("127.0.0.1", punt_target.local_port)
        assert datagram == encode_punt(PuntKind.MISS, 3, 21, packet)
        # an unknown VPP interface is not punted
        vpp_side.sendto(PUNT_DESC.pack(9, 0) + _frame(packet), str(tmp_path / "relay.sock"))
        slowpath.sendto(
            encode_punt(PuntKind.REINJECT, 3, 22, packet), ("127.0.0.1", punt_target.reinject_port)
        )
        injected = vpp_side.recv(65535)
        assert injected == PUNT_DESC.pack(2, PUNT_IP4_ROUTED) + b"R" + packet
        assert seen == [(22, packet)]
        # another fast path's instance number is refused
        slowpath.sendto(
            encode_punt(PuntKind.REINJECT, 4, 22, packet), ("127.0.0.1", punt_target.reinject_port)
        )
        deadline = time.monotonic() + 2
        while relay.snapshot().reinject_errors < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        totals = relay.snapshot()
        assert (totals.punted, totals.punt_errors, totals.reinjected, totals.reinject_errors) == (
            1,
            1,
            1,
            1,
        )
    finally:
        relay.close()
        vpp_side.close()
        slowpath.close()
    assert not (tmp_path / "relay.sock").exists()


def test_driver_arms_punt_and_reinjects_translated_first_packets(
    vpp: FakeVpp, tmp_path: Path, punt_target: PuntTarget
) -> None:
    vpp.server_path = str(tmp_path / "vpp.sock")
    vpp_side = _unix(tmp_path / "vpp.sock")
    slowpath = _udp(punt_target.slowpath_port)
    made = VppDriver(
        VppSettings(punt_socket=tmp_path / "relay.sock"), client_factory=lambda s: FakeVppApi(vpp)
    )
    try:
        made.start(INTERFACES, None)
        made.start(INTERFACES, punt_target)
        assert requests(vpp, "punt_socket_register") == [
            {
                "header_version": 1,
                "pathname": str(tmp_path / "relay.sock"),
                "punt": {"type": 1, "punt": {"ip_proto": {"af": 0, "protocol": p}}},
            }
            for p in (6, 17, 1)
        ]
        catch_all = next(p for p in vpp.policies.values())
        assert catch_all["paths"][0]["type"] == 1  # receive: to ip4-local and the punt socket
        assert vpp.acls[catch_all["acl_index"]]["r"][0]["src_prefix"] == IPv4Network("0.0.0.0/0")
        assert sorted(vpp.attached.values()) == [0xFFFF] * 3
        made.install([snat(), FlowRule(key(sport=9), (Drop(),))])
        # the punt ACL keeps the NAT flow's packets (no ABF policy), before and after
        # translation, off the punt path, and sends every other packet to it
        entries = vpp.acls[catch_all["acl_index"]]["r"]
        assert [
            (e["is_permit"], e["src_prefix"], e["srcport_or_icmptype_first"]) for e in entries
        ] == [
            (0, IPv4Network("10.1.0.5/32"), 40000),
            (0, IPv4Network("203.0.113.1/32"), 61000),
            (1, IPv4Network("0.0.0.0/0"), 0),
        ]
        packet = _udp_packet(INSIDE_HOST, REMOTE, 40000, 53)
        slowpath.sendto(
            encode_punt(PuntKind.REINJECT, 3, 21, packet), ("127.0.0.1", punt_target.reinject_port)
        )
        injected = vpp_side.recv(65535)
        sw_if_index, action = PUNT_DESC.unpack_from(injected)
        translated = injected[PUNT_DESC.size :]
        assert (sw_if_index, action) == (1, PUNT_IP4_ROUTED)
        assert parse_ipv4(translated).key == key(src=PUBLIC, sport=61000)  # IPv4 checksum ok
        assert _l4_checksum_ok(translated)
        # a packet of a drop rule, and one of no rule, are not re-injected
        slowpath.sendto(
            encode_punt(PuntKind.REINJECT, 3, 21, _udp_packet(INSIDE_HOST, REMOTE, 9, 53)),
            ("127.0.0.1", punt_target.reinject_port),
        )
        slowpath.sendto(
            encode_punt(PuntKind.REINJECT, 3, 21, _udp_packet(INSIDE_HOST, REMOTE, 10, 53)),
            ("127.0.0.1", punt_target.reinject_port),
        )
        deadline = time.monotonic() + 2
        while made.global_counters().reinject_misses < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        totals = made.global_counters()
        assert (totals.reinjected, totals.dropped, totals.reinject_misses) == (1, 1, 1)
        # a re-injection the relay refuses (another fast path's instance number)
        slowpath.sendto(
            encode_punt(PuntKind.REINJECT, 4, 21, packet), ("127.0.0.1", punt_target.reinject_port)
        )
        while made.global_counters().reinject_errors < 1 and time.monotonic() < deadline + 2:
            time.sleep(0.01)
        totals = made.global_counters()
        assert (totals.reinject_errors, totals.forward_errors) == (1, 0)
        vpp.requests.clear()
        made.remove([snat().key])
        # packets of the flow go back to the punt path before VPP stops translating them
        assert vpp.names()[:2] == ["acl_add_replace", "nat44_add_del_static_mapping_v2"]
        assert [e["is_permit"] for e in vpp.acls[catch_all["acl_index"]]["r"]] == [1]
        made.start(INTERFACES, None)  # disarm
        assert vpp.punts == [] and len(vpp.policies) == 1
    finally:
        made.close()
        vpp_side.close()
        slowpath.close()
    # the relay thread is gone with close()
    assert not any(t.name == "vpp-punt-relay" for t in threading.enumerate())


# --- helpers -----------------------------------------------------------------------------


def test_rewrite_fixes_both_checksums() -> None:
    packet = _udp_packet(REMOTE, PUBLIC, 53, 61000, b"odd")
    out = rewrite_ipv4(packet, Rewrite(dst=INSIDE_HOST, dport=40000))
    assert parse_ipv4(out).key == key(REMOTE, INSIDE_HOST, 53, 40000)
    assert _l4_checksum_ok(out)
    assert decode_punt(encode_punt(PuntKind.MISS, 1, 1, out))[3] == memoryview(out)


def test_settings_from_the_environment() -> None:
    settings = load_settings(
        {
            "VNF_VPP_API_SOCKET": "/run/vpp/other.sock",
            "VNF_VPP_API_DIR": "",
            "VNF_VPP_INTERFACE_NAMES": '{"inside": "TenGigabitEthernet3/0/0"}',
            "VNF_VPP_NAT_INSIDE": "inside, lan",
            "VNF_VPP_NAT_TIMEOUTS": '{"udp": 120}',
            "PATH": "/usr/bin",
        }
    )
    assert settings.api_socket == Path("/run/vpp/other.sock") and settings.api_dir is None
    assert settings.interface_names == {"inside": "TenGigabitEthernet3/0/0"}
    assert settings.nat_inside == ("inside", "lan")
    assert settings.nat_timeouts.udp == 120 and settings.nat_timeouts.icmp == 60
    with pytest.raises(DriverError, match="unknown setting VNF_VPP_SOCKET"):
        load_settings({"VNF_VPP_SOCKET": "/x"})
    with pytest.raises(DriverError, match="window"):
        load_settings({"VNF_VPP_WINDOW": "0"})
    with pytest.raises(DriverError, match="nat_timeouts"):
        load_settings({"VNF_VPP_NAT_TIMEOUTS": "{udp"})
