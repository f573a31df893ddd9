"""/nslcm/v2/subscriptions and the NS identifier creation/deletion notifications.

Subscriptions and notifications are validated against the ETSI NFV-SOL 005
definitions (tests/support/etsi_schema.py lists the corrected errata).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import NSDS, Nfvo, NsdApi
from tests.support.callback_server import running_consumer
from tests.support.etsi_schema import NSLCM_DEFS, NSLCM_NOTIFICATION_DEFS, SOL005_DEFS, validate

INSTANCES = "/nslcm/v2/ns_instances"
SUBS = "/nslcm/v2/subscriptions"
NSLCM_VERSION = "2.3.0"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def lcm(nfvo: Nfvo) -> httpx.Client:
    return nfvo.client("nslcm", version=NSLCM_VERSION)


@pytest.fixture
def edge_nsd(
    nsd_api: NsdApi, nat_package: dict[str, Any], nsd_archives: dict[str, Path]
) -> dict[str, Any]:
    info = nsd_api.onboard(nsd_archives["edge-gateway"].read_bytes())
    enable = nsd_api.http.patch(
        f"{NSDS}/{info['id']}", json={"nsdOperationalState": "ENABLED"}, headers=MERGE
    )
    assert enable.status_code == 200, enable.text
    return info


def _create(http: httpx.Client, nsd_id: str, name: str) -> str:
    resp = http.post(INSTANCES, json={"nsdId": nsd_id, "nsName": name, "nsDescription": name})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def test_subscription_resources(lcm: httpx.Client) -> None:
    with running_consumer() as consumer:
        created = lcm.post(
            SUBS,
            json={
                "callbackUri": f"{consumer.url}/ns",
                "filter": {
                    "notificationTypes": ["NsIdentifierCreationNotification"],
                    "nsInstanceSubscriptionFilter": {"nsInstanceNames": ["hl-a"]},
                },
            },
        )
        assert created.status_code == 201, created.text
        sub = created.json()
        validate(NSLCM_DEFS, "LccnSubscription", sub)
        assert sub["verbosity"] == "FULL"
        assert created.headers["Location"] == sub["_links"]["self"]["href"]
        # SOL005: the NFVO checks the callback with a GET before creating the subscription.
        assert [r.method for r in consumer.received] == ["GET"]
        assert lcm.get(f"{SUBS}/{sub['id']}").json() == sub
        assert [s["id"] for s in lcm.get(SUBS).json()] == [sub["id"]]

        alternatives = lcm.post(
            SUBS,
            json={
                "callbackUri": f"{consumer.url}/ns",
                "filter": {
                    "nsInstanceSubscriptionFilter": {
                        "nsInstanceIds": ["a"],
                        "nsInstanceNames": ["b"],
                    }
                },
            },
        )
        assert alternatives.status_code == 400, alternatives.text
        validate(SOL005_DEFS, "ProblemDetails", alternatives.json())
        assert "nsInstanceNames" in alternatives.json()["detail"]
        unknown_type = lcm.post(
            SUBS,
            json={"callbackUri": consumer.url, "filter": {"notificationTypes": ["NoSuch"]}},
        )
        assert unknown_type.status_code == 400
        assert lcm.delete(f"{SUBS}/{sub['id']}").status_code == 204
        assert lcm.get(f"{SUBS}/{sub['id']}").status_code == 404


def test_identifier_notifications(lcm: httpx.Client, edge_nsd: dict[str, Any]) -> None:
    with running_consumer() as consumer:
        everything = lcm.post(SUBS, json={"callbackUri": f"{consumer.url}/all"})
        assert everything.status_code == 201, everything.text
        only_b = lcm.post(
            SUBS,
            json={
                "callbackUri": f"{consumer.url}/b",
                "filter": {"nsInstanceSubscriptionFilter": {"nsInstanceNames": ["hl-b"]}},
            },
        )
        assert only_b.status_code == 201, only_b.text
        other_nsd = lcm.post(
            SUBS,
            json={
                "callbackUri": f"{consumer.url}/other",
                "filter": {"nsInstanceSubscriptionFilter": {"nsdIds": ["not-this-nsd"]}},
            },
        )
        assert other_nsd.status_code == 201, other_nsd.text

        ns_a = _create(lcm, edge_nsd["nsdId"], "hl-a")
        ns_b = _create(lcm, edge_nsd["nsdId"], "hl-b")
        assert lcm.delete(f"{INSTANCES}/{ns_a}").status_code == 204
        # a created, b created (twice: both subscriptions), a deleted.
        posts = consumer.wait_posts(4)
        for post in posts:
            body = post.body
            validate(NSLCM_NOTIFICATION_DEFS, body["notificationType"], body)
            assert body["_links"]["nsInstance"]["href"].endswith(
                f"{INSTANCES}/{body['nsInstanceId']}"
            )
            headers = {k.lower(): v for k, v in post.headers.items()}
            assert headers["version"] == NSLCM_VERSION
        seen = sorted(
            (post.path, post.body["notificationType"], post.body["nsInstanceId"]) for post in posts
        )
        assert seen == sorted(
            [
                ("/all", "NsIdentifierCreationNotification", ns_a),
                ("/all", "NsIdentifierCreationNotification", ns_b),
                ("/b", "NsIdentifierCreationNotification", ns_b),
                ("/all", "NsIdentifierDeletionNotification", ns_a),
            ]
        )
        b_copies = [p.body for p in posts if p.body["nsInstanceId"] == ns_b]
        # One event, one id, whatever the number of subscribers (SOL013).
        assert b_copies[0]["id"] == b_copies[1]["id"]
        assert b_copies[0]["subscriptionId"] != b_copies[1]["subscriptionId"]
