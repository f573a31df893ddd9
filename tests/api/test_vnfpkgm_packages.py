"""VNF package resources over real HTTP: create, onboard, read, modify, delete."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import PKGS, Nfvo


def test_create_read_and_defaults(nfvo: Nfvo) -> None:
    http = nfvo.client()
    resp = http.post(PKGS, json={"userDefinedData": {"team": "edge"}})
    assert resp.status_code == 201
    info = resp.json()
    assert resp.headers["Location"] == f"{nfvo.url}{PKGS}/{info['id']}"
    assert resp.headers["Version"] == "2.4.0"
    assert resp.headers["ETag"]
    assert (info["onboardingState"], info["operationalState"], info["usageState"]) == (
        "CREATED",
        "DISABLED",
        "NOT_IN_USE",
    )
    assert info["_links"]["packageContent"]["href"].endswith(f"{info['id']}/package_content")
    # The individual resource is complete; the list leaves complex attributes out by default.
    assert http.get(f"{PKGS}/{info['id']}").json()["userDefinedData"] == {"team": "edge"}
    listed = http.get(PKGS).json()[0]
    assert "userDefinedData" not in listed
    assert http.get(PKGS, params={"all_fields": ""}).json()[0]["userDefinedData"] == {
        "team": "edge"
    }


def test_onboard_then_enable_disable_delete(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    http = nfvo.client()
    info = nfvo.onboard(http, sample_csars["nat"])
    pkg = f"{PKGS}/{info['id']}"
    assert info["vnfProductName"] == "NAT"
    assert info["vnfdId"] and info["vnfProvider"] and info["vnfSoftwareVersion"]
    assert info["checksum"]["algorithm"] == "SHA-256"
    assert info["operationalState"] == "DISABLED"
    assert any(a.get("artifactClassification") == "HISTORY" for a in info["additionalArtifacts"])

    etag = http.get(pkg).headers["ETag"]
    stale = http.patch(
        pkg,
        json={"operationalState": "ENABLED"},
        headers={"If-Match": '"not-the-etag"', "Content-Type": "application/merge-patch+json"},
    )
    assert stale.status_code == 412
    assert stale.headers["Content-Type"].startswith("application/problem+json")
    enabled = http.patch(
        pkg,
        json={"operationalState": "ENABLED"},
        headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"},
    )
    assert enabled.status_code == 200, enabled.text
    assert enabled.json() == {"operationalState": "ENABLED"}
    assert enabled.headers["ETag"] != etag
    # The old ETag is now stale too.
    again = http.patch(
        pkg,
        json={"userDefinedData": {"a": 1}},
        headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"},
    )
    assert again.status_code == 412

    refused = http.delete(pkg)
    assert refused.status_code == 409
    assert "DISABLED" in refused.json()["detail"]
    same = http.patch(pkg, json={"operationalState": "ENABLED"})
    assert same.status_code == 409
    assert http.patch(pkg, json={"operationalState": "DISABLED"}).status_code == 200
    assert http.delete(pkg).status_code == 204
    gone = http.get(pkg)
    assert gone.status_code == 404
    assert gone.json()["status"] == 404
    assert not nfvo.settings.content_dir.joinpath(info["id"]).exists()


def test_user_defined_data_merge_patch(nfvo: Nfvo) -> None:
    http = nfvo.client()
    pkg_id = http.post(PKGS, json={"userDefinedData": {"a": 1, "b": {"c": 2}}}).json()["id"]
    resp = http.patch(
        f"{PKGS}/{pkg_id}",
        json={"userDefinedData": {"a": None, "b": {"d": 3}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 200
    data = http.get(f"{PKGS}/{pkg_id}", params={"all_fields": ""}).json()["userDefinedData"]
    assert data == {"b": {"c": 2, "d": 3}}
    # Operational state cannot change before onboarding.
    early = http.patch(f"{PKGS}/{pkg_id}", json={"operationalState": "ENABLED"})
    assert early.status_code == 409


def test_bad_requests_are_problem_details(nfvo: Nfvo) -> None:
    http = nfvo.client()
    pkg_id = http.post(PKGS, json={}).json()["id"]
    wrong_state = http.patch(f"{PKGS}/{pkg_id}", json={"operationalState": "ON"})
    assert wrong_state.status_code == 400
    assert "operationalState" in wrong_state.json()["detail"]
    empty = http.patch(f"{PKGS}/{pkg_id}", json={})
    assert empty.status_code == 400
    media = http.patch(f"{PKGS}/{pkg_id}", content=b"x", headers={"Content-Type": "text/plain"})
    assert media.status_code == 415
    assert http.get(f"{PKGS}/{pkg_id}/vnfd").status_code == 409
    assert http.get(f"{PKGS}/{pkg_id}/package_content").status_code == 409
    assert http.get(f"{PKGS}/00000000-0000-0000-0000-000000000000").status_code == 404
    assert http.get(f"{PKGS}/not-a-uuid").status_code == 404


def test_onboarding_all_sample_packages(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    http = nfvo.client()
    products = set()
    for csar in sample_csars.values():
        info = nfvo.onboard(http, csar)
        products.add(info["vnfProductName"])
    assert products == {"NAT", "SLB", "CEN", "VPN"}


def test_second_package_with_same_vnfd_id_is_refused(
    nfvo: Nfvo, sample_csars: dict[str, Path]
) -> None:
    http = nfvo.client()
    first = nfvo.onboard(http, sample_csars["slb"])
    _, failure = nfvo.refused(http, sample_csars["slb"].read_bytes())
    assert first["vnfdId"] in failure["detail"]
    assert failure["status"] == 409
