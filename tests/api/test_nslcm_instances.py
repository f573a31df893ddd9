"""/nslcm/v2/ns_instances: create, read, list, delete, and what they do to the NSD.

Bodies are validated against the ETSI NFV-SOL 005 NsInstance and ProblemDetails
definitions (tests/support/etsi_schema.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from nfvo.nslcm.models import NsInstanceRow
from store.base import transaction
from tests.api.conftest import NSD_VERSION, NSDS, Nfvo, NsdApi
from tests.support.etsi_schema import NSLCM_DEFS, SOL005_DEFS, validate

INSTANCES = "/nslcm/v2/ns_instances"
NSLCM_VERSION = "2.3.0"
MERGE = {"Content-Type": "application/merge-patch+json"}


def _problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = resp.json()
    validate(SOL005_DEFS, "ProblemDetails", problem)
    return problem


def _instance(resp: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    validate(NSLCM_DEFS, "NsInstance", body)
    return body


def _onboarded_nsd(nsd_api: NsdApi, archive: Path, *, enable: bool = True) -> dict[str, Any]:
    info = nsd_api.onboard(archive.read_bytes())
    if enable:
        resp = nsd_api.http.patch(
            f"{NSDS}/{info['id']}", json={"nsdOperationalState": "ENABLED"}, headers=MERGE
        )
        assert resp.status_code == 200, resp.text
    return info


def _usage(nsd_api: NsdApi, nsd_info_id: str) -> str:
    return str(nsd_api.http.get(f"{NSDS}/{nsd_info_id}").json()["nsdUsageState"])


def _create(http: httpx.Client, nsd_id: str, name: str = "hl-edge") -> httpx.Response:
    return http.post(
        INSTANCES, json={"nsdId": nsd_id, "nsName": name, "nsDescription": f"{name} service"}
    )


@pytest.fixture
def lcm(nfvo: Nfvo) -> httpx.Client:
    return nfvo.client("nslcm", version=NSLCM_VERSION)


@pytest.fixture
def edge_nsd(
    nsd_api: NsdApi, nat_package: dict[str, Any], nsd_archives: dict[str, Path]
) -> dict[str, Any]:
    """The sample NSD, onboarded (after its NAT package) and ENABLED."""
    return _onboarded_nsd(nsd_api, nsd_archives["edge-gateway"])


def test_create_read_list_delete(
    lcm: httpx.Client, nsd_api: NsdApi, edge_nsd: dict[str, Any]
) -> None:
    assert _usage(nsd_api, edge_nsd["id"]) == "NOT_IN_USE"
    created = _create(lcm, edge_nsd["nsdId"])
    first = _instance(created, 201)
    assert created.headers["Location"] == first["_links"]["self"]["href"]
    assert created.headers["Location"].endswith(f"{INSTANCES}/{first['id']}")
    assert created.headers["ETag"]
    assert first["nsInstanceName"] == "hl-edge"
    assert first["nsInstanceDescription"] == "hl-edge service"
    assert first["nsdId"] == edge_nsd["nsdId"]
    assert first["nsdInfoId"] == edge_nsd["id"]
    assert first["nsState"] == "NOT_INSTANTIATED"
    assert "flavourId" not in first and "vnfInstance" not in first
    # Only instantiate is possible on a NOT_INSTANTIATED instance.
    assert set(first["_links"]) == {"self", "instantiate"}
    assert _usage(nsd_api, edge_nsd["id"]) == "IN_USE"

    read = lcm.get(f"{INSTANCES}/{first['id']}")
    assert _instance(read) == first
    assert read.headers["ETag"] == created.headers["ETag"]

    second = _instance(_create(lcm, edge_nsd["nsdId"], "hl-other"), 201)
    listed = lcm.get(INSTANCES)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()] == [first["id"], second["id"]]
    for item in listed.json():
        validate(NSLCM_DEFS, "NsInstance", item)
    named = lcm.get(INSTANCES, params={"filter": "(eq,nsInstanceName,hl-other)"})
    assert [item["id"] for item in named.json()] == [second["id"]]
    by_nsd = lcm.get(INSTANCES, params={"filter": f"(eq,nsdInfoId,{edge_nsd['id']})"})
    assert len(by_nsd.json()) == 2
    unknown = lcm.get(INSTANCES, params={"filter": "(eq,noSuchAttribute,1)"})
    assert "noSuchAttribute" in _problem(unknown, 400)["detail"]

    # The NSD stays IN_USE (and undeletable) until its last instance goes.
    assert lcm.delete(f"{INSTANCES}/{first['id']}").status_code == 204
    assert _usage(nsd_api, edge_nsd["id"]) == "IN_USE"
    nsd_api.http.patch(
        f"{NSDS}/{edge_nsd['id']}", json={"nsdOperationalState": "DISABLED"}, headers=MERGE
    )
    assert nsd_api.http.delete(f"{NSDS}/{edge_nsd['id']}").status_code == 409
    assert lcm.delete(f"{INSTANCES}/{second['id']}").status_code == 204
    assert _usage(nsd_api, edge_nsd["id"]) == "NOT_IN_USE"
    assert lcm.get(INSTANCES).json() == []
    _problem(lcm.get(f"{INSTANCES}/{first['id']}"), 404)
    _problem(lcm.delete(f"{INSTANCES}/{first['id']}"), 404)
    assert nsd_api.http.delete(f"{NSDS}/{edge_nsd['id']}").status_code == 204


def test_create_refused(
    lcm: httpx.Client,
    nsd_api: NsdApi,
    nat_package: dict[str, Any],
    nsd_archives: dict[str, Path],
) -> None:
    unknown = _problem(_create(lcm, "no-such-nsd"), 422)
    assert "nsdId no-such-nsd" in unknown["detail"]

    disabled = _onboarded_nsd(nsd_api, nsd_archives["edge-gateway"], enable=False)
    conflict = _problem(_create(lcm, disabled["nsdId"]), 409)
    assert "DISABLED" in conflict["detail"] and "nsdId" in conflict["detail"]
    assert _usage(nsd_api, disabled["id"]) == "NOT_IN_USE"

    missing = lcm.post(INSTANCES, json={"nsdId": disabled["nsdId"], "nsName": "hl"})
    assert "nsDescription" in _problem(missing, 400)["detail"]
    extra = lcm.post(
        INSTANCES,
        json={"nsdId": "x", "nsName": "hl", "nsDescription": "d", "flavourId": "default"},
    )
    assert "flavourId" in _problem(extra, 400)["detail"]
    assert lcm.get(INSTANCES).json() == []


def test_instantiated_instance_cannot_be_deleted(
    nfvo: Nfvo, lcm: httpx.Client, nsd_api: NsdApi, edge_nsd: dict[str, Any]
) -> None:
    ns_id = _instance(_create(lcm, edge_nsd["nsdId"]), 201)["id"]
    # Instantiation is what moves an instance there; set the state directly so this
    # test checks the delete guard and the INSTANTIATED representation only.
    with transaction(nfvo.app.state.session_factory) as session:
        row = session.get(NsInstanceRow, ns_id)
        assert row is not None
        row.ns_state = "INSTANTIATED"
        row.flavour_id = "default"
        row.scale_status = [{"nsScalingAspectId": "hl-aspect", "nsScaleLevelId": "hl-level"}]
        row.revision += 1
    # nsScaleStatus is complex: a query leaves it out by default (SOL005 6.4.2.3.2) and
    # gives it on request; reading the instance gives everything.
    assert "nsScaleStatus" not in lcm.get(INSTANCES).json()[0]
    listed = lcm.get(INSTANCES, params={"fields": "nsScaleStatus"}).json()
    assert listed[0]["nsScaleStatus"][0]["nsScaleLevelId"] == "hl-level"
    body = _instance(lcm.get(f"{INSTANCES}/{ns_id}"))
    assert body["nsState"] == "INSTANTIATED" and body["flavourId"] == "default"
    assert body["nsScaleStatus"] == [
        {"nsScalingAspectId": "hl-aspect", "nsScaleLevelId": "hl-level"}
    ]
    assert set(body["_links"]) == {"self", "terminate", "update", "scale", "heal"}
    refused = _problem(lcm.delete(f"{INSTANCES}/{ns_id}"), 409)
    assert "INSTANTIATED" in refused["detail"]
    assert _usage(nsd_api, edge_nsd["id"]) == "IN_USE"


def test_delete_honours_if_match(lcm: httpx.Client, edge_nsd: dict[str, Any]) -> None:
    created = _create(lcm, edge_nsd["nsdId"])
    ns_id = _instance(created, 201)["id"]
    stale = lcm.delete(f"{INSTANCES}/{ns_id}", headers={"If-Match": '"not-the-etag"'})
    _problem(stale, 412)
    current = lcm.delete(f"{INSTANCES}/{ns_id}", headers={"If-Match": created.headers["ETag"]})
    assert current.status_code == 204


def test_scopes(nfvo: Nfvo, lcm: httpx.Client, edge_nsd: dict[str, Any]) -> None:
    ns_id = _instance(_create(lcm, edge_nsd["nsdId"]), 201)["id"]
    reader = nfvo.client("nslcm-reader", version=NSLCM_VERSION)
    assert reader.get(INSTANCES).status_code == 200
    assert reader.get(f"{INSTANCES}/{ns_id}").status_code == 200
    _problem(_create(reader, edge_nsd["nsdId"]), 403)
    _problem(reader.delete(f"{INSTANCES}/{ns_id}"), 403)
    other_api = nfvo.client("nsd", version=NSD_VERSION)
    _problem(other_api.get(INSTANCES), 403)
    anonymous = nfvo.client(None, version=NSLCM_VERSION)
    _problem(anonymous.get(INSTANCES), 401)


def test_paging_and_versions(nfvo: Nfvo, lcm: httpx.Client, edge_nsd: dict[str, Any]) -> None:
    created = [_instance(_create(lcm, edge_nsd["nsdId"], f"hl-{n}"), 201)["id"] for n in range(3)]
    nfvo.settings.page_size = 2
    page = lcm.get(INSTANCES)
    assert [item["id"] for item in page.json()] == created[:2]
    assert 'rel="next"' in page.headers["Link"]
    rest = httpx.get(page.links["next"]["url"], headers=dict(lcm.headers), timeout=30)
    assert [item["id"] for item in rest.json()] == created[2:]
    versions = lcm.get("/nslcm/v2/api_versions")
    assert versions.status_code == 200
    assert versions.json()["uriPrefix"] == "/nslcm/v2"
    assert versions.json()["apiVersions"][0]["version"] == NSLCM_VERSION
    assert page.headers["Version"] == NSLCM_VERSION
