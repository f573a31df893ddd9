"""Listing packages: SOL013 filters, attribute selectors and paging."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.conftest import PKGS, Nfvo, NfvoFactory


def _ids(resp: httpx.Response) -> set[str]:
    return {item["id"] for item in resp.json()}


def test_filters_and_selectors(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    http = nfvo.client()
    nat = nfvo.onboard(http, sample_csars["nat"])
    slb = nfvo.onboard(http, sample_csars["slb"])
    created = http.post(PKGS, json={"userDefinedData": {"owner": "ops"}}).json()

    assert _ids(http.get(PKGS, params={"filter": "(eq,vnfProductName,NAT)"})) == {nat["id"]}
    both = http.get(PKGS, params={"filter": "(in,vnfProductName,NAT,SLB)"})
    assert _ids(both) == {nat["id"], slb["id"]}
    assert _ids(http.get(PKGS, params={"filter": "(eq,onboardingState,CREATED)"})) == {
        created["id"]
    }
    by_user_data = http.get(PKGS, params={"filter": "(eq,userDefinedData/owner,ops)"})
    assert _ids(by_user_data) == {created["id"]}
    combined = http.get(
        PKGS, params={"filter": f"(eq,vnfProvider,{nat['vnfProvider']});(neq,vnfProductName,NAT)"}
    )
    assert _ids(combined) == {slb["id"]}

    unknown = http.get(PKGS, params={"filter": "(eq,noSuchAttribute,1)"})
    assert unknown.status_code == 400
    assert "noSuchAttribute" in unknown.json()["detail"]
    malformed = http.get(PKGS, params={"filter": "(eq,vnfProductName"})
    assert malformed.status_code == 400

    default = http.get(PKGS, params={"filter": "(eq,vnfProductName,NAT)"}).json()[0]
    assert "softwareImages" not in default and "checksum" not in default
    full = http.get(PKGS, params={"filter": "(eq,vnfProductName,NAT)", "all_fields": ""}).json()[0]
    assert full["softwareImages"] and full["checksum"]
    picked = http.get(
        PKGS, params={"filter": "(eq,vnfProductName,NAT)", "fields": "softwareImages"}
    ).json()[0]
    assert "softwareImages" in picked and "additionalArtifacts" not in picked
    excluded = http.get(
        PKGS, params={"filter": "(eq,vnfProductName,NAT)", "exclude_fields": "softwareImages"}
    ).json()[0]
    assert "softwareImages" not in excluded and "additionalArtifacts" in excluded
    conflict = http.get(PKGS, params={"all_fields": "", "fields": "checksum"})
    assert conflict.status_code == 400


def test_paging_with_link_header(nfvo_factory: NfvoFactory) -> None:
    nfvo = nfvo_factory(page_size=3)
    http = nfvo.client()
    made = {http.post(PKGS, json={}).json()["id"] for _ in range(8)}
    seen: list[str] = []
    url: str | None = PKGS
    pages = 0
    while url is not None:
        resp = http.get(url)
        assert resp.status_code == 200
        seen += [item["id"] for item in resp.json()]
        url = resp.links.get("next", {}).get("url")
        pages += 1
        assert pages <= 10
    assert pages == 3
    assert len(seen) == len(set(seen)) and set(seen) == made
    bad = http.get(PKGS, params={"nextpage_opaque_marker": "garbage"})
    assert bad.status_code == 400
