"""/nsd/v2/ns_descriptors: create, query, modify, delete, usage state, scopes and versions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sol013.problem import ApiError
from tests.api.conftest import NSD_VERSION, NSDS, Nfvo, NsdApi

MERGE = {"Content-Type": "application/merge-patch+json"}


def test_create_and_read(nsd_api: NsdApi) -> None:
    http = nsd_api.http
    resp = http.post(NSDS, json={"userDefinedData": {"owner": "ops", "tier": 1}})
    assert resp.status_code == 201, resp.text
    info = resp.json()
    assert resp.headers["Location"] == info["_links"]["self"]["href"]
    assert resp.headers["Location"].endswith(f"{NSDS}/{info['id']}")
    assert resp.headers["Version"] == NSD_VERSION
    assert info["nsdOnboardingState"] == "CREATED"
    assert info["nsdOperationalState"] == "DISABLED"
    assert info["nsdUsageState"] == "NOT_IN_USE"
    assert info["userDefinedData"] == {"owner": "ops", "tier": 1}
    assert info["_links"]["nsd_content"]["href"].endswith(f"{info['id']}/nsd_content")
    # Nothing copied from an NSD before one is onboarded.
    assert not {"nsdId", "nsdName", "vnfPkgIds", "artifacts"} & set(info)

    read = http.get(f"{NSDS}/{info['id']}")
    assert read.status_code == 200 and read.json() == info
    assert read.headers["ETag"] == resp.headers["ETag"]
    assert http.get(f"{NSDS}/no-such-nsd").status_code == 404
    assert http.post(NSDS, json={"userDefinedData": "not an object"}).status_code == 400
    assert http.post(NSDS, json={"unknownAttribute": 1}).status_code == 400


def test_list_filters_selects_and_pages(nfvo_factory: Callable[..., Nfvo]) -> None:
    nfvo = nfvo_factory(page_size=2)
    http = nfvo.client("nsd", version=NSD_VERSION)
    ids = [
        http.post(NSDS, json={"userDefinedData": {"site": site}}).json()["id"]
        for site in ("lab", "edge", "lab")
    ]
    first = http.get(NSDS)
    assert [i["id"] for i in first.json()] == ids[:2]
    # exclude_default applies when no selector is given: userDefinedData is left out.
    assert all("userDefinedData" not in i for i in first.json())
    next_url = first.headers["Link"].split(";")[0].strip("<>")
    second = http.get(next_url)
    assert [i["id"] for i in second.json()] == ids[2:]
    assert "Link" not in second.headers

    labs = http.get(NSDS, params={"filter": "(eq,userDefinedData/site,lab)", "all_fields": ""})
    assert [i["id"] for i in labs.json()] == [ids[0], ids[2]]
    assert labs.json()[0]["userDefinedData"] == {"site": "lab"}
    fields = http.get(NSDS, params={"fields": "userDefinedData", "filter": f"(eq,id,{ids[1]})"})
    assert fields.json()[0]["userDefinedData"] == {"site": "edge"}
    excluded = http.get(NSDS, params={"exclude_fields": "_links"})
    assert all("_links" not in i for i in excluded.json())
    assert http.get(NSDS, params={"filter": "(eq,noSuchAttribute,1)"}).status_code == 400
    assert http.get(NSDS, params={"nextpage_opaque_marker": "forged"}).status_code == 400


def test_modify_state_and_user_data(
    nsd_api: NsdApi, nat_package: dict[str, Any], nsd_archives: dict[str, Path]
) -> None:
    http = nsd_api.http
    created = http.post(NSDS, json={"userDefinedData": {"a": 1, "b": {"c": 2}}}).json()["id"]
    # Before onboarding: user data yes, operational state no.
    early = http.patch(f"{NSDS}/{created}", json={"nsdOperationalState": "ENABLED"}, headers=MERGE)
    assert early.status_code == 409
    assert "ONBOARDED" in early.json()["detail"]
    patched = http.patch(
        f"{NSDS}/{created}", json={"userDefinedData": {"a": None, "b": {"d": 3}}}, headers=MERGE
    )
    assert patched.status_code == 200, patched.text
    assert patched.json() == {"userDefinedData": {"a": None, "b": {"d": 3}}}
    assert http.get(f"{NSDS}/{created}").json()["userDefinedData"] == {"b": {"c": 2, "d": 3}}

    nsd_info_id = nsd_api.onboard(nsd_archives["edge-gateway"].read_bytes())["id"]
    enable = http.patch(
        f"{NSDS}/{nsd_info_id}", json={"nsdOperationalState": "ENABLED"}, headers=MERGE
    )
    assert enable.status_code == 200 and enable.json() == {"nsdOperationalState": "ENABLED"}
    assert http.get(f"{NSDS}/{nsd_info_id}").json()["nsdOperationalState"] == "ENABLED"
    again = http.patch(
        f"{NSDS}/{nsd_info_id}", json={"nsdOperationalState": "ENABLED"}, headers=MERGE
    )
    assert again.status_code == 409 and "already ENABLED" in again.json()["detail"]
    both = http.patch(
        f"{NSDS}/{nsd_info_id}",
        json={"nsdOperationalState": "DISABLED", "userDefinedData": {"k": "v"}},
        headers=MERGE,
    )
    assert both.status_code == 200
    info = http.get(f"{NSDS}/{nsd_info_id}").json()
    assert info["nsdOperationalState"] == "DISABLED" and info["userDefinedData"] == {"k": "v"}

    assert http.patch(f"{NSDS}/{nsd_info_id}", json={}, headers=MERGE).status_code == 400
    bad_state = http.patch(
        f"{NSDS}/{nsd_info_id}", json={"nsdOperationalState": "BROKEN"}, headers=MERGE
    )
    assert bad_state.status_code == 400
    plain_text = http.patch(
        f"{NSDS}/{nsd_info_id}", content=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert plain_text.status_code == 415
    missing = http.patch(f"{NSDS}/no-such-nsd", json={"userDefinedData": {}}, headers=MERGE)
    assert missing.status_code == 404


def test_if_match(nsd_api: NsdApi) -> None:
    http = nsd_api.http
    created = http.post(NSDS, json={})
    nsd_info_id, etag = created.json()["id"], created.headers["ETag"]
    ok = http.patch(
        f"{NSDS}/{nsd_info_id}",
        json={"userDefinedData": {"x": 1}},
        headers={**MERGE, "If-Match": etag},
    )
    assert ok.status_code == 200
    assert ok.headers["ETag"] != etag
    assert ok.headers["ETag"] == http.get(f"{NSDS}/{nsd_info_id}").headers["ETag"]
    stale = http.patch(
        f"{NSDS}/{nsd_info_id}",
        json={"userDefinedData": {"x": 2}},
        headers={**MERGE, "If-Match": etag},
    )
    assert stale.status_code == 412
    assert http.get(f"{NSDS}/{nsd_info_id}").json()["userDefinedData"] == {"x": 1}


def test_delete_rules_and_usage_state(
    nfvo: Nfvo, nsd_api: NsdApi, nat_package: dict[str, Any], nsd_archives: dict[str, Path]
) -> None:
    http = nsd_api.http
    never_uploaded = http.post(NSDS, json={}).json()["id"]
    assert http.delete(f"{NSDS}/{never_uploaded}").status_code == 204
    assert http.get(f"{NSDS}/{never_uploaded}").status_code == 404
    assert http.delete(f"{NSDS}/{never_uploaded}").status_code == 404

    nsd_info_id = nsd_api.onboard(nsd_archives["edge-gateway"].read_bytes())["id"]
    http.patch(f"{NSDS}/{nsd_info_id}", json={"nsdOperationalState": "ENABLED"}, headers=MERGE)
    enabled = http.delete(f"{NSDS}/{nsd_info_id}")
    assert enabled.status_code == 409 and "ENABLED" in enabled.json()["detail"]

    # NS lifecycle management marks the NSD in use while NS instances exist.
    svc = nfvo.app.state.nsds
    svc.set_usage(nsd_info_id, True)
    http.patch(f"{NSDS}/{nsd_info_id}", json={"nsdOperationalState": "DISABLED"}, headers=MERGE)
    assert http.get(f"{NSDS}/{nsd_info_id}").json()["nsdUsageState"] == "IN_USE"
    in_use = http.delete(f"{NSDS}/{nsd_info_id}")
    assert in_use.status_code == 409 and "IN_USE" in in_use.json()["detail"]
    svc.set_usage(nsd_info_id, False)
    assert http.delete(f"{NSDS}/{nsd_info_id}").status_code == 204
    assert not (nfvo.settings.nsd_content_dir / nsd_info_id).exists()

    with pytest.raises(ApiError) as missing:
        svc.set_usage(nsd_info_id, True)
    assert missing.value.status == 404
    with pytest.raises(ApiError) as not_onboarded:
        svc.set_usage(http.post(NSDS, json={}).json()["id"], True)
    assert not_onboarded.value.status == 409


def test_scopes(nfvo: Nfvo) -> None:
    admin = nfvo.client("nsd", version=NSD_VERSION)
    reader = nfvo.client("nsd-reader", version=NSD_VERSION)
    stranger = nfvo.client("admin", version=NSD_VERSION)  # VNF packages only
    anonymous = nfvo.client(None, version=NSD_VERSION)
    nsd_info_id = admin.post(NSDS, json={}).json()["id"]

    assert reader.get(NSDS).status_code == 200
    assert reader.get(f"{NSDS}/{nsd_info_id}").status_code == 200
    assert reader.get("/nsd/v2/subscriptions").status_code == 200
    writes = [
        reader.post(NSDS, json={}),
        reader.patch(f"{NSDS}/{nsd_info_id}", json={"userDefinedData": {}}, headers=MERGE),
        reader.delete(f"{NSDS}/{nsd_info_id}"),
        reader.put(
            f"{NSDS}/{nsd_info_id}/nsd_content",
            content=b"x",
            headers={"Content-Type": "application/zip"},
        ),
        reader.post("/nsd/v2/subscriptions", json={"callbackUri": "http://127.0.0.1:9/x"}),
    ]
    for resp in writes:
        assert resp.status_code == 403, resp.request.url
        assert "nsd:v2:all" in resp.json()["detail"]
    assert stranger.get(NSDS).status_code == 403
    unauthenticated = anonymous.get(NSDS)
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")
    # Nothing was changed by the refused writes.
    assert admin.get(f"{NSDS}/{nsd_info_id}").json()["nsdOnboardingState"] == "CREATED"


def test_api_versions(nfvo: Nfvo) -> None:
    anonymous = nfvo.client(None, version=NSD_VERSION)
    for path in ("/nsd/api_versions", "/nsd/v2/api_versions"):
        info = anonymous.get(path)
        assert info.status_code == 200
        assert info.json() == {"uriPrefix": "/nsd/v2", "apiVersions": [{"version": "2.3.0"}]}
    admin = nfvo.client("nsd", version="9.9.9")
    refused = admin.get(NSDS)
    assert refused.status_code == 406
    assert refused.headers["Version"] == NSD_VERSION
