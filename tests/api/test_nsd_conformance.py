"""Our NSD management responses and notifications against the official ETSI OpenAPI.

Every body is validated against the ETSI NFV-SOL 005 data type it claims to be (see
tests/support/etsi_schema.py for where the ETSI files come from and which of their known
errors are corrected), and every media type is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from descriptors.nsd_build import single_file_nsd
from tests.api.conftest import NSD_ENTRY, NSDS, Nfvo, NsdApi
from tests.support.callback_server import Received, running_consumer
from tests.support.etsi_schema import (
    NSD_DEFS,
    NSD_NOTIFICATION_DEFS,
    SOL005_DEFS,
    openapi_dir,
    validate,
)

SUBS = "/nsd/v2/subscriptions"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
MERGE = {"Content-Type": "application/merge-patch+json"}
# NsdInfo attributes "copied from the NSD content" that "shall be present after the NSD
# content is on-boarded" (GS NFV-SOL 005 table 5.5.2.2-1).
ONBOARDED_ONLY = ("nsdId", "nsdName", "nsdVersion", "nsdDesigner", "nsdInvariantId")
# The notification type names, and the ETSI definition each is validated against.
NOTIFICATION_DEFINITIONS = {
    "NsdOnBoardingNotification": "NsdOnBoardingNotification",
    "NsdOnboardingFailureNotification": "NsdOnBoardingFailureNotification",
    "NsdChangeNotification": "NsdChangeNotification",
    "NsdDeletionNotification": "NsdDeletionNotification",
}


def _media_type(headers: httpx.Headers | dict[str, str]) -> str:
    found = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    return found.split(";")[0].strip().lower()


def _body(resp: httpx.Response, status: int, media_type: str = JSON) -> Any:
    assert resp.status_code == status, f"{resp.request.method} {resp.request.url}: {resp.text}"
    assert _media_type(resp.headers) == media_type, resp.headers.get("content-type")
    return resp.json()


def _problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    problem: dict[str, Any] = _body(resp, status, PROBLEM_JSON)
    validate(SOL005_DEFS, "ProblemDetails", problem)
    assert problem["status"] == status
    return problem


def _nsd_info(info: Any, *, excluded: tuple[str, ...] = ()) -> None:
    """Schema validation plus the rules of NsdInfo's notes that the schema cannot state."""
    validate(NSD_DEFS, "NsdInfo", info)
    state = info["nsdOnboardingState"]
    if state == "ONBOARDED":
        missing = [name for name in ONBOARDED_ONLY if name not in info]
        assert not missing, f"ONBOARDED NSD {info['id']} lacks {missing}"
        # Note 1: at least one of vnfPkgIds and nestedNsdInfoIds once onboarded.
        assert "vnfPkgIds" in info or "nestedNsdInfoIds" in info, info
    else:
        present = [name for name in (*ONBOARDED_ONLY, "artifacts") if name in info]
        assert not present, f"{state} NSD {info['id']} has {present}"
        # Notes 2 and 3.
        assert info["nsdOperationalState"] == "DISABLED", info
        assert info["nsdUsageState"] == "NOT_IN_USE", info
    # onboardingFailureDetails: "It shall be present when the nsdOnboardingState attribute is
    # ERROR ..., unless it has been requested to be excluded via an attribute selector."
    if state == "ERROR" and "onboardingFailureDetails" not in excluded:
        assert "onboardingFailureDetails" in info, info
    if "onboardingFailureDetails" in info:
        validate(SOL005_DEFS, "ProblemDetails", info["onboardingFailureDetails"])


def test_etsi_definitions_are_available() -> None:
    root = openapi_dir()
    for document in (NSD_DEFS, NSD_NOTIFICATION_DEFS, SOL005_DEFS):
        assert (root / document).is_file(), f"{root / document} is missing"


def test_nsd_resources_conform(
    nsd_api: NsdApi,
    nat_package: dict[str, Any],
    nsd_archives: dict[str, Path],
    nsd_tree: Callable[[str], Path],
) -> None:
    http = nsd_api.http
    created = _body(http.post(NSDS, json={"userDefinedData": {"owner": "ops"}}), 201)
    _nsd_info(created)
    assert created["nsdOnboardingState"] == "CREATED"
    _nsd_info(_body(http.get(f"{NSDS}/{created['id']}"), 200))

    archive = nsd_api.onboard(nsd_archives["edge-gateway"].read_bytes())
    _nsd_info(_body(http.get(f"{NSDS}/{archive['id']}"), 200))
    # The single-file form of the same NSD, after the archive's resource is gone.
    assert http.delete(f"{NSDS}/{archive['id']}").status_code == 204
    text = single_file_nsd(nsd_tree("edge-gateway"), NSD_ENTRY).encode()
    single = nsd_api.onboard(text, "text/plain")
    _nsd_info(_body(http.get(f"{NSDS}/{single['id']}"), 200))

    failed = nsd_api.refused(b"this is not a zip archive")
    _nsd_info(_body(http.get(f"{NSDS}/{failed['id']}"), 200))

    selections: list[tuple[dict[str, str], tuple[str, ...]]] = [
        ({}, ("userDefinedData", "onboardingFailureDetails")),
        ({"all_fields": ""}, ()),
        ({"exclude_fields": "artifacts"}, ("artifacts",)),
        ({"exclude_default": ""}, ("userDefinedData", "onboardingFailureDetails")),
    ]
    for params, excluded in selections:
        listed = _body(http.get(NSDS, params=params), 200)
        assert len(listed) == 3
        for item in listed:
            _nsd_info(item, excluded=excluded)
            assert not set(excluded) & set(item), (params, item)


def test_modifications_conform(
    nsd_api: NsdApi, nat_package: dict[str, Any], nsd_archives: dict[str, Path]
) -> None:
    http = nsd_api.http
    nsd_info_id = nsd_api.onboard(nsd_archives["edge-gateway"].read_bytes())["id"]
    for changes in (
        {"nsdOperationalState": "ENABLED"},
        {"userDefinedData": {"owner": "ops", "site": "lab"}},
        {"nsdOperationalState": "DISABLED", "userDefinedData": {"site": None}},
    ):
        resp = http.patch(f"{NSDS}/{nsd_info_id}", json=changes, headers=MERGE)
        validate(NSD_DEFS, "NsdInfoModifications", _body(resp, 200))


def test_error_responses_conform(nfvo: Nfvo, nsd_api: NsdApi) -> None:
    http = nsd_api.http
    _problem(http.get(f"{NSDS}/no-such-nsd"), 404)
    _problem(http.get(f"{SUBS}/no-such-subscription"), 404)
    _problem(http.get(NSDS, params={"filter": "(eq,noSuchAttribute,1)"}), 400)
    created = _body(http.post(NSDS, json={}), 201)["id"]
    _problem(http.patch(f"{NSDS}/{created}", json={"nsdOperationalState": "ENABLED"}), 409)
    _problem(http.get(f"{NSDS}/{created}/nsd_content"), 409)
    _problem(http.put(f"{NSDS}/{created}/nsd_content", content=b"x"), 415)
    _problem(nfvo.client(None, version="2.3.0").get(NSDS), 401)
    _problem(nfvo.client("nsd-reader", version="2.3.0").post(NSDS, json={}), 403)
    _problem(http.get(NSDS, headers={"Version": "9.9.9"}), 406)


def test_api_versions_conform(nsd_api: NsdApi) -> None:
    for path in ("/nsd/api_versions", "/nsd/v2/api_versions"):
        info = _body(nsd_api.http.get(path), 200)
        validate(SOL005_DEFS, "ApiVersionInformation", info)


def _notification(received: Received) -> dict[str, Any]:
    assert received.method == "POST"
    assert _media_type(received.headers) == JSON, received.headers
    body: dict[str, Any] = received.body
    kind = body.get("notificationType")
    assert kind in NOTIFICATION_DEFINITIONS, body
    validate(NSD_NOTIFICATION_DEFS, NOTIFICATION_DEFINITIONS[kind], body)
    return body


def test_subscriptions_and_notifications_conform(
    nfvo: Nfvo, nsd_api: NsdApi, nsd_archives: dict[str, Path], sample_csars: dict[str, Path]
) -> None:
    http = nsd_api.http
    archive = nsd_archives["edge-gateway"].read_bytes()
    with running_consumer() as consumer:
        plain = _body(http.post(SUBS, json={"callbackUri": f"{consumer.url}/all"}), 201)
        filtered = _body(
            http.post(
                SUBS,
                json={
                    "callbackUri": f"{consumer.url}/changes",
                    "filter": {
                        "notificationTypes": ["NsdChangeNotification", "NsdDeletionNotification"],
                        "nsdDesigner": ["nfv-mano project"],
                    },
                },
            ),
            201,
        )
        for sub in (plain, filtered):
            validate(NSD_DEFS, "NsdmSubscription", sub)
            validate(NSD_DEFS, "NsdmSubscription", _body(http.get(f"{SUBS}/{sub['id']}"), 200))
        for sub in _body(http.get(SUBS), 200):
            validate(NSD_DEFS, "NsdmSubscription", sub)

        failed = nsd_api.refused(archive)  # the NAT VNFD is not onboarded yet
        nfvo.onboard(nfvo.client(), sample_csars["nat"])
        nsd_api.upload(archive, nsd_info_id=failed["id"])
        nsd_api.wait(failed["id"])
        base = f"{NSDS}/{failed['id']}"
        assert http.patch(base, json={"nsdOperationalState": "ENABLED"}, headers=MERGE).is_success
        assert http.patch(base, json={"nsdOperationalState": "DISABLED"}, headers=MERGE).is_success
        assert http.delete(base).status_code == 204
        # /all: failure, onboarding, two changes, deletion; /changes: two changes, deletion.
        bodies = [_notification(post) for post in consumer.wait_posts(8)]
    kinds = sorted(b["notificationType"] for b in bodies)
    assert kinds == sorted(
        [
            "NsdOnboardingFailureNotification",
            "NsdOnBoardingNotification",
            *["NsdChangeNotification"] * 4,
            *["NsdDeletionNotification"] * 2,
        ]
    )
    # One notification id per event, whatever the number of subscriptions it reaches.
    assert len({b["id"] for b in bodies}) == 5
