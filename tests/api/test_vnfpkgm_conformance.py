"""Our VNF package management responses and notifications against the official ETSI OpenAPI.

Every body is validated against the ETSI NFV-SOL 005 data type it claims to be (see
tests/support/etsi_schema.py for where the ETSI files come from), and every media type is
checked: application/json for resources, application/problem+json for errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import PKGS, SAMPLE_NAMES, Nfvo
from tests.support.callback_server import Received, running_consumer
from tests.support.etsi_schema import (
    SOL005_DEFS,
    VNFPKGM_DEFS,
    VNFPKGM_NOTIFICATION_DEFS,
    openapi_dir,
    validate,
)

SUBS = "/vnfpkgm/v2/subscriptions"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"


def _media_type(headers: httpx.Headers | dict[str, str]) -> str:
    found = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    return found.split(";")[0].strip().lower()


def _body(resp: httpx.Response, status: int, media_type: str = JSON) -> Any:
    """The JSON body of a response that must have ``status`` and ``media_type``."""
    assert resp.status_code == status, f"{resp.request.method} {resp.request.url}: {resp.text}"
    assert _media_type(resp.headers) == media_type, resp.headers.get("content-type")
    return resp.json()


def _problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    problem: dict[str, Any] = _body(resp, status, PROBLEM_JSON)
    validate(SOL005_DEFS, "ProblemDetails", problem)
    _problem_rules(problem)
    assert problem["status"] == status
    return problem


def _problem_rules(problem: dict[str, Any]) -> None:
    # ProblemDetails.title: "If type is given and other than about:blank, this attribute shall
    # also be provided."
    if problem.get("type", "about:blank") != "about:blank":
        assert "title" in problem, problem


# VnfPkgInfo attributes whose ETSI description says "It shall be present after the VNF package
# content has been on-boarded and absent otherwise" (GS NFV-SOL 005 table 9.5.2.5-1).
ONBOARDED_ONLY = (
    "vnfdId",
    "vnfProvider",
    "vnfProductName",
    "vnfSoftwareVersion",
    "vnfdVersion",
    "checksum",
    "vnfmInfo",
)
# "This attribute shall not be present before the VNF package content is on-boarded."
ARTIFACTS = ("softwareImages", "additionalArtifacts")
# What a list without attribute selector leaves out (SOL005 table 9.4.2.3.2-1).
DEFAULT_EXCLUDED = (
    "softwareImages",
    "additionalArtifacts",
    "userDefinedData",
    "checksum",
    "onboardingFailureDetails",
)


def _pkg_info(info: Any, *, excluded: tuple[str, ...] = ()) -> None:
    """Schema validation plus the conditional rules the schema can only state in prose.

    ``excluded``: the attributes the request's attribute selector left out.
    """
    validate(VNFPKGM_DEFS, "VnfPkgInfo", info)
    if info["onboardingState"] == "ONBOARDED":
        # packageSecurityOption, under the same rule, has its own test below.
        expected = [name for name in (*ONBOARDED_ONLY, "softwareImages") if name not in excluded]
        missing = [name for name in expected if name not in info]
        assert not missing, f"ONBOARDED package {info['id']} lacks {missing}"
    else:
        present = [
            name for name in (*ONBOARDED_ONLY, *ARTIFACTS, "packageSecurityOption") if name in info
        ]
        assert not present, f"{info['onboardingState']} package {info['id']} has {present}"
        # Notes 1 and 2 of VnfPkgInfo.
        assert info["operationalState"] == "DISABLED", info
        assert info["usageState"] == "NOT_IN_USE", info
    if "onboardingFailureDetails" in info:
        _problem_rules(info["onboardingFailureDetails"])


def test_etsi_definitions_are_available() -> None:
    """Fails, never skips, when the ETSI files are missing: CI always has them."""
    root = openapi_dir()
    for document in (VNFPKGM_DEFS, VNFPKGM_NOTIFICATION_DEFS, SOL005_DEFS):
        assert (root / document).is_file(), f"{root / document} is missing"


def test_package_resources_conform(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    http = nfvo.client()

    created = _body(http.post(PKGS, json={"userDefinedData": {"owner": "ops"}}), 201)
    _pkg_info(created)
    assert created["onboardingState"] == "CREATED"
    _pkg_info(_body(http.get(f"{PKGS}/{created['id']}"), 200))

    for name in SAMPLE_NAMES:
        pkg_id = nfvo.onboard(http, sample_csars[name])["id"]
        info = _body(http.get(f"{PKGS}/{pkg_id}", params={"all_fields": ""}), 200)
        assert info["onboardingState"] == "ONBOARDED", name
        _pkg_info(info)

    # A failed onboarding leaves its ProblemDetails in onboardingFailureDetails.
    broken = _body(http.post(PKGS, json={}), 201)["id"]
    upload = http.put(
        f"{PKGS}/{broken}/package_content",
        content=b"this is not a zip archive",
        headers={"Content-Type": "application/zip"},
    )
    assert upload.status_code in (202, 400), upload.text
    failed = nfvo.wait_state(http, broken, ("CREATED", "ERROR"))
    assert "onboardingFailureDetails" in failed
    _pkg_info(failed)

    selections: list[tuple[dict[str, str], tuple[str, ...]]] = [
        ({}, DEFAULT_EXCLUDED),
        ({"all_fields": ""}, ()),
        ({"exclude_fields": "softwareImages"}, ("softwareImages",)),
    ]
    for params, excluded in selections:
        listed = _body(http.get(PKGS, params=params), 200)
        assert isinstance(listed, list) and len(listed) == len(SAMPLE_NAMES) + 2
        for item in listed:
            _pkg_info(item, excluded=excluded)


def test_onboarded_packages_state_their_security_option(
    nfvo: Nfvo, sample_csars: dict[str, Path]
) -> None:
    """VnfPkgInfo.packageSecurityOption (OPTION_1 or OPTION_2, SOL004 clause 5.1): "It shall
    be present after the VNF package content has been on-boarded and absent otherwise."

    NON-CONFORMANCE until the service is fixed: the NFVO onboards unsigned packages (every
    sample package is one) and then leaves packageSecurityOption out of their VnfPkgInfo.
    """
    http = nfvo.client()
    lacking = []
    for name in SAMPLE_NAMES:
        info = nfvo.onboard(http, sample_csars[name])
        if info.get("packageSecurityOption") not in ("OPTION_1", "OPTION_2"):
            lacking.append(name)
    assert not lacking, f"ONBOARDED packages without packageSecurityOption: {lacking}"


def test_modifications_conform(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    http = nfvo.client()
    pkg_id = nfvo.onboard(http, sample_csars["nat"])["id"]
    merge = {"Content-Type": "application/merge-patch+json"}
    for changes in (
        {"operationalState": "ENABLED"},
        {"userDefinedData": {"owner": "ops", "site": "lab"}},
        {"operationalState": "DISABLED", "userDefinedData": {"site": None}},
    ):
        resp = http.patch(f"{PKGS}/{pkg_id}", json=changes, headers=merge)
        validate(VNFPKGM_DEFS, "VnfPkgInfoModifications", _body(resp, 200))


def test_error_responses_conform(nfvo: Nfvo) -> None:
    http = nfvo.client()
    _problem(http.get(f"{PKGS}/no-such-package"), 404)
    _problem(http.get(f"{SUBS}/no-such-subscription"), 404)
    _problem(http.get(PKGS, params={"filter": "(eq,noSuchAttribute,1)"}), 400)
    _problem(http.get(PKGS, params={"filter": "(eq,vnfProductName"}), 400)
    created = _body(http.post(PKGS, json={}), 201)["id"]
    # operationalState cannot change before the package is onboarded.
    _problem(http.patch(f"{PKGS}/{created}", json={"operationalState": "ENABLED"}), 409)
    _problem(nfvo.client(None).get(PKGS), 401)
    _problem(http.get(PKGS, headers={"Version": "9.9.9"}), 406)


def test_api_versions_conform(nfvo: Nfvo) -> None:
    http = nfvo.client()
    for path in ("/vnfpkgm/api_versions", "/vnfpkgm/v2/api_versions"):
        info = _body(http.get(path), 200)
        validate(SOL005_DEFS, "ApiVersionInformation", info)
        assert "2.4.0" in [v["version"] for v in info["apiVersions"]]


def _notification(received: Received) -> dict[str, Any]:
    assert received.method == "POST"
    assert _media_type(received.headers) == JSON, received.headers
    body: dict[str, Any] = received.body
    kind = body.get("notificationType")
    assert kind in ("VnfPackageOnboardingNotification", "VnfPackageChangeNotification"), body
    validate(VNFPKGM_NOTIFICATION_DEFS, kind, body)
    if kind == "VnfPackageChangeNotification":
        # operationalState: "Only present when changeType is OP_STATE_CHANGE."
        has_state = "operationalState" in body
        assert has_state == (body["changeType"] == "OP_STATE_CHANGE"), body
    return body


def test_subscriptions_and_notifications_conform(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    http = nfvo.client()
    # Onboarded before anyone subscribes: only to learn the provider name of the samples.
    provider = nfvo.onboard(http, sample_csars["slb"])["vnfProvider"]
    with running_consumer() as consumer:
        plain = _body(http.post(SUBS, json={"callbackUri": f"{consumer.url}/all"}), 201)
        filtered = _body(
            http.post(
                SUBS,
                json={
                    "callbackUri": f"{consumer.url}/nat-changes",
                    "filter": {
                        "notificationTypes": ["VnfPackageChangeNotification"],
                        "vnfProductsFromProviders": [
                            {"vnfProvider": provider, "vnfProducts": [{"vnfProductName": "NAT"}]}
                        ],
                    },
                },
            ),
            201,
        )
        for sub in (plain, filtered):
            validate(VNFPKGM_DEFS, "PkgmSubscription", sub)
            validate(VNFPKGM_DEFS, "PkgmSubscription", _body(http.get(f"{SUBS}/{sub['id']}"), 200))
        listed = _body(http.get(SUBS), 200)
        assert {s["id"] for s in listed} == {plain["id"], filtered["id"]}
        for sub in listed:
            validate(VNFPKGM_DEFS, "PkgmSubscription", sub)

        pkg_id = nfvo.onboard(http, sample_csars["nat"])["id"]
        assert _notification(consumer.wait_posts(1)[0])["vnfPkgId"] == pkg_id
        assert http.patch(f"{PKGS}/{pkg_id}", json={"operationalState": "ENABLED"}).is_success
        assert http.patch(f"{PKGS}/{pkg_id}", json={"operationalState": "DISABLED"}).is_success
        assert http.delete(f"{PKGS}/{pkg_id}").status_code == 204
        # Onboarding to /all; two state changes and the deletion to both subscriptions.
        bodies = [_notification(post) for post in consumer.wait_posts(7)]
    # "If a notification is sent multiple times due to multiple subscriptions, the id attribute
    # of all these notifications shall have the same value."
    events = {
        (b["notificationType"], b.get("changeType"), b.get("operationalState")) for b in bodies
    }
    assert len({b["id"] for b in bodies}) == len(events) == 4
    for body in bodies:
        same_id = {
            (b["notificationType"], b.get("changeType"), b.get("operationalState"))
            for b in bodies
            if b["id"] == body["id"]
        }
        assert len(same_id) == 1, same_id
    assert {b["subscriptionId"] for b in bodies} == {plain["id"], filtered["id"]}
    kinds = sorted((b["notificationType"], b.get("changeType", "")) for b in bodies)
    assert kinds == [
        ("VnfPackageChangeNotification", "OP_STATE_CHANGE"),
        ("VnfPackageChangeNotification", "OP_STATE_CHANGE"),
        ("VnfPackageChangeNotification", "OP_STATE_CHANGE"),
        ("VnfPackageChangeNotification", "OP_STATE_CHANGE"),
        ("VnfPackageChangeNotification", "PKG_DELETE"),
        ("VnfPackageChangeNotification", "PKG_DELETE"),
        ("VnfPackageOnboardingNotification", ""),
    ]
