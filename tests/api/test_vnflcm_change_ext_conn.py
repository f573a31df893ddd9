"""Change external VNF connectivity (SOL003 5.4.9) over real HTTP, on a real local VIM (root).

Operations run through `LcmRunner` as in test_vnflcm_tasks.py. The external networks are
made on the same local VIM, as the NFVO would make an NS's virtual links.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Nfvo
from tests.api.test_vnflcm_tasks import (
    INSTANCES,
    LCM_DEFS,
    OP_OCCS,
    SMALL,
    TASK_LINKS,
    Lab,
    nat_lcm_lab,
)
from tests.support.etsi_schema import validate
from tests.support.local_vim import next_cidr
from vim_adapters.interface import Network, NetworkSpec, Ownership
from vnfm import planner

NS_OWNER = Ownership(vnf_instance_id="hA-ns")


@pytest.fixture
def lab(nfvo: Nfvo, sample_csars: dict[str, Path], tmp_path: Path) -> Iterator[Lab]:
    with nat_lcm_lab(nfvo, sample_csars, tmp_path) as made:
        yield made


def _link(link_id: str, network: Network, *cps: str) -> dict[str, Any]:
    return {"id": link_id, "resourceId": network.name, "extCps": [{"cpdId": cp} for cp in cps]}


def _mgmt_addresses(instance: dict[str, Any]) -> set[str]:
    return {
        address
        for vnfc in instance["instantiatedVnfInfo"]["vnfcResourceInfo"]
        for cp in vnfc["vnfcCpInfo"]
        if cp["cpdId"].endswith("_mgmt")
        for protocol in cp.get("cpProtocolInfo", [])
        for ip in protocol["ipOverEthernet"]["ipAddresses"]
        for address in ip["addresses"]
    }


def test_move_the_management_cps_to_another_network(lab: Lab) -> None:
    lcm = lab.lcm
    net_a, net_b = (
        lab.vim.ensure_network(NetworkSpec(name=name, cidr=next_cidr()), NS_OWNER)
        for name in ("ha-mgmt-a", "ha-mgmt-b")
    )
    instance_id = lab.create()
    early = lcm.post(
        f"{INSTANCES}/{instance_id}/change_ext_conn",
        json={"extVirtualLinks": [_link("mgmt-b", net_b, "nat_mgmt")]},
    )
    assert early.status_code == 409 and "NOT_INSTANTIATED" in early.json()["detail"]
    lab.run(
        instance_id, "instantiate", {**SMALL, "extVirtualLinks": [_link("a", net_a, "nat_mgmt")]}
    )
    before = lab.instance(instance_id)
    assert [link["id"] for link in before["instantiatedVnfInfo"]["extVirtualLinkInfo"]] == ["a"]
    cidr_a, cidr_b = (ipaddress.ip_network(n.spec.cidr) for n in (net_a, net_b))
    assert all(ipaddress.ip_address(ip) in cidr_a for ip in _mgmt_addresses(before))

    # Refused before anything starts: 422 naming the field, 400 for a malformed body.
    unknown = lcm.post(
        f"{INSTANCES}/{instance_id}/change_ext_conn",
        json={"extVirtualLinks": [_link("b", net_b, "nat_mgmt", "nat_nope")]},
    )
    assert unknown.status_code == 422
    assert "extVirtualLinks[0].extCps[1].cpdId" in unknown.json()["detail"]
    assert "nat_nope" in unknown.json()["detail"]
    twice = lcm.post(
        f"{INSTANCES}/{instance_id}/change_ext_conn",
        json={
            "extVirtualLinks": [
                _link("b", net_b, "nat_mgmt"),
                _link("a", net_a, "nat_mgmt"),
            ]
        },
    )
    assert twice.status_code == 422 and "nat_mgmt" in twice.json()["detail"]
    malformed = lcm.post(f"{INSTANCES}/{instance_id}/change_ext_conn", json={})
    assert malformed.status_code == 400 and "extVirtualLinks" in malformed.json()["detail"]
    ops = lcm.get(OP_OCCS, params={"filter": f"(eq,vnfInstanceId,{instance_id})"}).json()
    assert [o["operation"] for o in ops] == ["INSTANTIATE"]

    vim_b = {"vimId": "lab-b", "vimType": "NFVMANO.LOCAL.V_1"}
    changed = lab.run(
        instance_id,
        "change_ext_conn",
        {
            "extVirtualLinks": [_link("mgmt-b", net_b, "nat_mgmt")],
            "vimConnectionInfo": {"lab-b": vim_b},
        },
    )
    assert changed["operation"] == "CHANGE_EXT_CONN" and changed["grantId"]
    # vimConnectionInfo is merged into the instance's (SOL003: as a JSON Merge Patch).
    assert changed["changedInfo"] == {"vimConnectionInfo": {"lab-b": vim_b}}
    assert set(changed["_links"]) & TASK_LINKS == set()
    [ext_link] = changed["changedExtConnectivity"]
    validate(LCM_DEFS, "ExtVirtualLinkInfo", ext_link)
    assert ext_link["id"] == "mgmt-b" and ext_link["resourceHandle"]["resourceId"] == net_b.name
    vnfcs = changed["resourceChanges"]["affectedVnfcs"]
    assert {v["changeType"] for v in vnfcs} == {"MODIFIED"} and len(vnfcs) == 2

    after = lab.instance(instance_id)
    assert after["vimConnectionInfo"]["lab-b"] == vim_b
    links = after["instantiatedVnfInfo"]["extVirtualLinkInfo"]
    assert [(link["id"], link["currentVnfExtCpData"]) for link in links] == [
        ("mgmt-b", [{"cpdId": "nat_mgmt"}])
    ]
    assert all(ipaddress.ip_address(ip) in cidr_b for ip in _mgmt_addresses(after))
    for vdu in ("nat_fastpath", "nat_slowpath"):
        unit = lab.vim.get_unit(planner.unit_name(instance_id, vdu))
        assert unit is not None and unit.ready
        assert {
            a.network for r in unit.replicas for a in r.addresses if a.connection_point == "mgmt"
        } == {net_b.name}
    full = lcm.get(OP_OCCS, params={"filter": "(eq,operation,CHANGE_EXT_CONN)", "all_fields": ""})
    assert [o["id"] for o in full.json()] == [changed["id"]]
    assert "changedExtConnectivity" in full.json()[0]

    lab.run(instance_id, "terminate", {"terminationType": "FORCEFUL"})
    assert lab.vim.list_owned(instance_id) == []
    for network in (net_a, net_b):
        lab.vim.delete_network(network.name)
