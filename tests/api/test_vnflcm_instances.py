"""VNF instance resources over real HTTP: create from a package, query, delete."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.conftest import PKGS, Nfvo
from tests.support.etsi_schema import validate
from vnfm.schemas import API_VERSION

INSTANCES = "/vnflcm/v2/vnf_instances"
LCM_DEFS = (
    "nfv-sol002-sol003/SOL003/VNFLifecycleManagement/definitions/"
    "SOL003VNFLifecycleManagement_def.yaml"
)


def _enabled_package(nfvo: Nfvo, csar: Path) -> dict[str, object]:
    admin = nfvo.client()
    info = nfvo.onboard(admin, csar)
    admin.patch(f"{PKGS}/{info['id']}", json={"operationalState": "ENABLED"})
    return info


def _lcm(nfvo: Nfvo, client_id: str = "lcm") -> httpx.Client:
    return nfvo.client(client_id, version=API_VERSION)


def test_create_read_list_delete(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    package = _enabled_package(nfvo, sample_csars["nat"])
    lcm = _lcm(nfvo)
    resp = lcm.post(
        INSTANCES,
        json={
            "vnfdId": package["vnfdId"],
            "vnfInstanceName": "edge-nat-1",
            "metadata": {"site": "lab"},
        },
    )
    assert resp.status_code == 201, resp.text
    instance = resp.json()
    validate(LCM_DEFS, "VnfInstance", instance)
    assert resp.headers["Location"].endswith(instance["id"])
    assert resp.headers["Version"] == API_VERSION
    assert instance["instantiationState"] == "NOT_INSTANTIATED"
    assert instance["vnfProductName"] == "NAT"
    assert "instantiate" in instance["_links"] and "terminate" not in instance["_links"]
    assert instance["vnfConfigurableProperties"], "the VNFD's configurable properties"

    admin = nfvo.client()
    assert admin.get(f"{PKGS}/{package['id']}").json()["usageState"] == "IN_USE"
    # A package in use cannot be deleted, even disabled.
    admin.patch(f"{PKGS}/{package['id']}", json={"operationalState": "DISABLED"})
    assert admin.delete(f"{PKGS}/{package['id']}").status_code == 409
    admin.patch(f"{PKGS}/{package['id']}", json={"operationalState": "ENABLED"})

    read = lcm.get(f"{INSTANCES}/{instance['id']}")
    assert read.status_code == 200 and read.json() == instance
    assert read.headers["ETag"]
    listed = lcm.get(INSTANCES, params={"filter": "(eq,vnfInstanceName,edge-nat-1)"}).json()
    assert [i["id"] for i in listed] == [instance["id"]]
    assert "metadata" not in listed[0]  # excluded by default in lists
    assert lcm.get(INSTANCES, params={"filter": "(eq,nope,1)"}).status_code == 400

    assert lcm.delete(f"{INSTANCES}/{instance['id']}").status_code == 204
    assert lcm.get(f"{INSTANCES}/{instance['id']}").status_code == 404
    assert lcm.delete(f"{INSTANCES}/{instance['id']}").status_code == 404
    assert admin.get(f"{PKGS}/{package['id']}").json()["usageState"] == "NOT_IN_USE"


def test_create_refusals(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    lcm = _lcm(nfvo)
    unknown = lcm.post(INSTANCES, json={"vnfdId": "no-such-vnfd"})
    assert unknown.status_code == 422
    assert "no-such-vnfd" in unknown.json()["detail"]
    admin = nfvo.client()
    disabled = nfvo.onboard(admin, sample_csars["slb"])
    refused = lcm.post(INSTANCES, json={"vnfdId": disabled["vnfdId"]})
    assert refused.status_code == 422
    assert "DISABLED" in refused.json()["detail"]
    typo = lcm.post(INSTANCES, json={"vnfdID": disabled["vnfdId"]})
    assert typo.status_code == 400
    assert "vnfdID" in typo.json()["detail"] or "vnfdId" in typo.json()["detail"]


def test_scopes_and_versions(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    package = _enabled_package(nfvo, sample_csars["vpn"])
    reader = _lcm(nfvo, "lcm-reader")
    assert reader.get(INSTANCES).status_code == 200
    assert reader.post(INSTANCES, json={"vnfdId": package["vnfdId"]}).status_code == 403
    assert nfvo.client("admin", version=API_VERSION).get(INSTANCES).status_code == 403
    assert nfvo.client(None, version=API_VERSION).get(INSTANCES).status_code == 401
    versions = nfvo.client(None).get("/vnflcm/v2/api_versions")
    assert versions.status_code == 200
    assert versions.json()["apiVersions"][0]["version"] == API_VERSION
    wrong = nfvo.client("lcm", version="1.0.0").get(INSTANCES)
    assert wrong.status_code == 406
