"""End to end: the sample NSD edge-gateway with the REAL NAT package, on the local VIM.

Onboard the NAT package and the NSD, instantiate the NS (the NFVO creates the NS virtual
links and has the VNFM instantiate the NAT attached to them), put a client on the NS's
inside virtual link and an echo server on its outside one, and send traffic through the
chain; scale the NS by one step of its nat_capacity aspect (the NAT's fast path gets a
second replica) and send again; terminate: nothing of the NS is left on the VIM.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from descriptors.build import build_csar
from descriptors.nsd_build import build_nsd_archive
from tests.support.celery_worker import NAT_SOURCE, LcmLab, lcm_lab
from tests.support.local_vim import leftovers, name_prefix
from tests.support.nat_traffic import (
    ECHO_SERVER,
    IDLE,
    POOL,
    address,
    check_translated,
    ip,
    netns_of,
    peer_unit,
    udp_exchange,
)
from tests.support.ns_lab import EDGE_GATEWAY, NsApi, onboard_nsd
from vim_adapters.interface import Ownership
from vnfm import planner

pytestmark = pytest.mark.timeout(420)

PEERS = Ownership(vnf_instance_id="hn-ns-e2e-peers")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LcmLab]:
    prefix = name_prefix("hn")
    with lcm_lab(tmp_path, broker_url=None, vim_prefix=prefix) as made:
        made.start_worker("w1")
        made.start_worker("w2")
        yield made
        assert made.vim.leaks() == []
    assert leftovers(prefix) == []


def _network(ns: dict[str, object], vl_id: str) -> str:
    links = ns["virtualLinkInfo"]
    assert isinstance(links, list)
    (link,) = [vl for vl in links if vl["id"] == vl_id]
    (handle,) = link["resourceHandle"]
    return str(handle["resourceId"])


def test_edge_gateway_with_the_real_nat(lab: LcmLab, tmp_path: Path) -> None:
    vim = lab.vim
    lab.onboard(build_csar(NAT_SOURCE, tmp_path / "nat.csar"))
    api = NsApi(lab, onboard_nsd(lab, build_nsd_archive(EDGE_GATEWAY, tmp_path / "nsd.zip")))
    client, server = f"{vim.prefix}-client", f"{vim.prefix}-server"
    try:
        ns_id = api.create("hn-edge")
        op_id = api.task(ns_id, "instantiate", {"nsFlavourId": "default"})
        done = api.wait(op_id, "COMPLETED", "FAILED_TEMP", timeout=240)
        assert done["operationState"] == "COMPLETED", done.get("error")
        ns = api.ns(ns_id)
        (nat,) = ns["vnfInstance"]
        fastpath = planner.unit_name(str(nat["id"]), "nat_fastpath")

        # A client on the NS's inside virtual link, an echo server on its outside one.
        vim.ensure_unit(peer_unit(client, _network(ns, "inside_vl"), IDLE), PEERS)
        vim.ensure_unit(peer_unit(server, _network(ns, "outside_vl"), ECHO_SERVER), PEERS)
        vim.wait_ready(client, timeout=30)
        vim.wait_ready(server, timeout=30)
        client_ns, server_ns = netns_of(vim, client), netns_of(vim, server)
        server_ip = address(vim, server, "eth1")
        ip(client_ns, "route", "replace", "default", "via", address(vim, fastpath, "inside"))
        ip(server_ns, "route", "replace", str(POOL), "via", address(vim, fastpath, "outside"))

        seen = udp_exchange(client_ns, server_ip, 40001, b"through-the-ns")
        public_ip = check_translated(seen)
        assert public_ip != address(vim, client, "eth1")

        # NS scale: one step of nat_capacity = one more NAT fast path replica.
        scale = {
            "scaleType": "SCALE_NS",
            "scaleNsData": {
                "scaleNsByStepsData": {
                    "scalingDirection": "SCALE_OUT",
                    "aspectId": "nat_capacity",
                }
            },
        }
        done = api.wait(api.task(ns_id, "scale", scale), "COMPLETED", "FAILED_TEMP", timeout=240)
        assert done["operationState"] == "COMPLETED", done.get("error")
        scaled = vim.get_unit(fastpath)
        assert scaled is not None and scaled.ready and len(scaled.replicas) == 2
        assert api.ns(ns_id)["nsScaleStatus"] == [
            {"nsScalingAspectId": "nat_capacity", "nsScaleLevelId": "1"}
        ]
        # The existing flow keeps its public endpoint; a new one is translated too.
        assert udp_exchange(client_ns, server_ip, 40001, b"after-scale") == seen
        check_translated(udp_exchange(client_ns, server_ip, 40002, b"new-flow"))
    finally:
        for unit in (client, server):
            vim.delete_unit(unit)
    term = api.task(ns_id, "terminate", {})
    done = api.wait(term, "COMPLETED", "FAILED_TEMP", timeout=240)
    assert done["operationState"] == "COMPLETED", done.get("error")
    assert api.ns(ns_id)["nsState"] == "NOT_INSTANTIATED"
    assert vim.list_owned(ns_id) == []
    assert vim.list_owned(str(nat["id"])) == []
    assert vim.list_owned() == []
    api.close()
