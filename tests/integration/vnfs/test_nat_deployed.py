"""The project's NAT package, deployed by the VNFM on the local VIM, translates real traffic.

    client unit (10.10.0.x) --- inside net --- nat-fastpath --- outside net --- server unit
                                                   | punt (MTU 1600)          (198.51.100.x)
                                               nat-slowpath

Everything runs as the product runs it: the NFVO API over HTTP, a Celery worker, the
signed-off sample package (`descriptors/packages/nat`, unchanged), the VDUs' own commands
(`python -m vnfs.nat.fastpath` with the tc-BPF datapath, `python -m vnfs.nat.slowpath`).
The client and server are units on the same local VIM, attached to the two networks the
test creates and hands to the NAT as external virtual links. The server echoes the source
address it sees, so the test checks the translation on the server side and the answer on
the client side. Then the NAT is scaled out and back, its fast path is healed (the slow
path re-pushes the live rules to the fresh datapath), and it is terminated with nothing
left on the VIM.
"""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from descriptors.build import build_csar
from tests.support.celery_worker import NAT_SOURCE, NAT_VNFD_ID, LcmLab, lcm_lab
from tests.support.nat_traffic import (
    ECHO_PORT,
    ECHO_SERVER,
    IDLE,
    INSIDE_CIDR,
    OUTSIDE_CIDR,
    POOL,
    address,
    check_translated,
    ip,
    netns_of,
    peer_unit,
    udp_exchange,
)
from vim_adapters.interface import (
    NetworkSpec,
    Ownership,
)
from vim_adapters.local.adapter import LocalVim
from vnfm import planner
from vnfs.sdk.bpf import netns

pytestmark = pytest.mark.timeout(300)

TEST_OWNER = Ownership(vnf_instance_id="nat-e2e-peers")


def _tcp_exchange(namespace: str, server: str, payload: bytes) -> str:
    with netns.entered_named(namespace):
        sock = socket.socket()
    with sock:
        sock.settimeout(10)
        sock.connect((server, ECHO_PORT))
        sock.sendall(payload)
        answer = sock.recv(2048)
    seen, _, echoed = answer.partition(b" ")
    assert echoed == payload
    return seen.decode()


def _udp_refused(namespace: str, server: str, port: int) -> bool:
    """True once a datagram to `port`, where the server has no socket, is answered by the
    server's "port unreachable", which the NAT must translate back to this socket."""
    with netns.entered_named(namespace):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(0.5)
        sock.connect((server, port))
        for _ in range(20):
            sock.send(b"anyone?")
            try:
                sock.recv(2048)
            except ConnectionRefusedError:
                return True
            except TimeoutError:
                continue
    return False


def _fastpath_counters(vim: LocalVim, unit: str) -> dict[str, float]:
    """The fast path's Prometheus counters, scraped on its management address."""
    url = f"http://{address(vim, unit, 'mgmt')}:9100/metrics"
    with netns.entered_named(netns_of(vim, unit)), urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("vnf_fastpath_") and "_total" in line:
            name_labels, _, value = line.rpartition(" ")
            name = name_labels.split("{", 1)[0]
            samples[name] = samples.get(name, 0.0) + float(value)
            if 'counter="' in name_labels:  # the datapath's detail counters, by name
                detail = name_labels.split('counter="', 1)[1].split('"', 1)[0]
                samples[f"vnf_fastpath_{detail}_total"] = float(value)
    return samples


def _wait_counters(vim: LocalVim, unit: str, **minimums: float) -> dict[str, float]:
    """Counters once each named one reached its minimum (they are published every second)."""
    deadline = time.monotonic() + 15
    while True:
        counters = _fastpath_counters(vim, unit)
        if all(counters.get(f"vnf_fastpath_{k}_total", 0) >= v for k, v in minimums.items()):
            return counters
        assert time.monotonic() < deadline, f"fast path counters stayed at {counters}"
        time.sleep(0.2)


def _instantiate_body(inside: str, outside: str) -> dict[str, Any]:
    return {
        "flavourId": "default",
        "extVirtualLinks": [
            {"id": "inside", "resourceId": inside, "extCps": [{"cpdId": "nat_inside"}]},
            {"id": "outside", "resourceId": outside, "extCps": [{"cpdId": "nat_outside"}]},
        ],
    }


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LcmLab]:
    with lcm_lab(tmp_path, broker_url=None) as lab:
        lab.start_worker("w1")
        yield lab


@pytest.fixture
def peers(lab: LcmLab) -> Iterator[dict[str, str]]:
    """The two external networks and a client and a server unit on them."""
    vim: LocalVim = lab.vim
    prefix = vim.prefix
    inside, outside = f"{prefix}-inside", f"{prefix}-outside"
    client, server = f"{prefix}-client", f"{prefix}-server"
    try:
        vim.ensure_network(NetworkSpec(name=inside, cidr=INSIDE_CIDR), TEST_OWNER)
        vim.ensure_network(NetworkSpec(name=outside, cidr=OUTSIDE_CIDR), TEST_OWNER)
        vim.ensure_unit(peer_unit(client, inside, IDLE), TEST_OWNER)
        vim.ensure_unit(peer_unit(server, outside, ECHO_SERVER), TEST_OWNER)
        vim.wait_ready(client, timeout=30)
        vim.wait_ready(server, timeout=30)
        yield {"inside": inside, "outside": outside, "client": client, "server": server}
    finally:
        for unit in (client, server):
            vim.delete_unit(unit)
        for network in (inside, outside):
            vim.delete_network(network)


def test_nat_package_translates_traffic_through_its_lifecycle(
    lab: LcmLab, peers: dict[str, str], tmp_path: Path
) -> None:
    vim: LocalVim = lab.vim
    lab.onboard(build_csar(NAT_SOURCE, tmp_path / "nat.csar"))
    instance_id = lab.create_instance(NAT_VNFD_ID)
    op = lab.start(instance_id, "instantiate", _instantiate_body(peers["inside"], peers["outside"]))
    done = lab.wait_op(op, "COMPLETED", "FAILED_TEMP", "ROLLED_BACK")
    assert done["operationState"] == "COMPLETED", done

    fastpath = planner.unit_name(instance_id, "nat_fastpath")
    slowpath = planner.unit_name(instance_id, "nat_slowpath")
    for unit in (fastpath, slowpath):
        found = vim.get_unit(unit)
        assert found is not None and found.ready, f"{unit} is not running: {found}"

    client_ns, server_ns = netns_of(vim, peers["client"]), netns_of(vim, peers["server"])
    client_ip = address(vim, peers["client"], "eth1")
    server_ip = address(vim, peers["server"], "eth1")
    ip(client_ns, "route", "replace", "default", "via", address(vim, fastpath, "inside"))
    ip(server_ns, "route", "replace", str(POOL), "via", address(vim, fastpath, "outside"))

    # UDP: translated to a pool address and port on the server side, and back.
    seen = udp_exchange(client_ns, server_ip, 40001, b"udp-1")
    public_ip = check_translated(seen)
    assert public_ip != client_ip
    # Endpoint-independent mapping: the same inside endpoint keeps its public one.
    assert udp_exchange(client_ns, server_ip, 40001, b"udp-2") == seen
    # TCP: a whole connection through the NAT, same subscriber, same public address.
    tcp_seen = _tcp_exchange(client_ns, server_ip, b"tcp-1")
    assert check_translated(tcp_seen) == public_ip
    # The slow path installed rules for both flows (2 each) in the fast path, and the
    # later packets of each flow were forwarded from the table without a punt.
    counters = _wait_counters(vim, fastpath, rules_installed=4, hits=4)
    assert counters["vnf_fastpath_punted_total"] >= 2
    # An ICMP error about a translated flow comes back translated (RFC 5508).
    assert _udp_refused(client_ns, server_ip, ECHO_PORT + 1), "no port unreachable through NAT"
    _wait_counters(vim, fastpath, icmp_errors=1)  # translated by the datapath

    # Scale the fast path out by one step and back.
    op = lab.start(
        instance_id, "scale", {"type": "SCALE_OUT", "aspectId": "fastpath", "numberOfSteps": 1}
    )
    assert lab.wait_op(op, "COMPLETED", "FAILED_TEMP")["operationState"] == "COMPLETED"
    scaled = vim.get_unit(fastpath)
    assert scaled is not None and scaled.ready and len(scaled.replicas) == 2
    op = lab.start(
        instance_id, "scale", {"type": "SCALE_IN", "aspectId": "fastpath", "numberOfSteps": 1}
    )
    assert lab.wait_op(op, "COMPLETED", "FAILED_TEMP")["operationState"] == "COMPLETED"
    assert udp_exchange(client_ns, server_ip, 40001, b"udp-3") == seen

    # Heal the fast path: a fresh datapath with an empty table, same addresses. The slow
    # path sees the new epoch and re-pushes the live mappings, so the flow keeps its
    # public address and port.
    info = lab.instance(instance_id)["instantiatedVnfInfo"]
    vnfc = next(v for v in info["vnfcResourceInfo"] if v["vduId"] == "nat_fastpath")
    op = lab.start(
        instance_id,
        "heal",
        {"cause": "fastpath_unhealthy", "additionalParams": {"vnfcInstanceId": [vnfc["id"]]}},
    )
    assert lab.wait_op(op, "COMPLETED", "FAILED_TEMP")["operationState"] == "COMPLETED"
    assert udp_exchange(client_ns, server_ip, 40001, b"udp-4") == seen
    assert check_translated(udp_exchange(client_ns, server_ip, 40002, b"new")) == public_ip

    op = lab.start(instance_id, "terminate", {"terminationType": "FORCEFUL"})
    assert lab.wait_op(op, "COMPLETED", "FAILED_TEMP")["operationState"] == "COMPLETED"
    assert vim.list_owned(instance_id) == []
    assert {r.owner.vnf_instance_id for r in vim.list_owned()} == {TEST_OWNER.vnf_instance_id}
