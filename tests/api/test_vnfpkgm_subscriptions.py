"""Subscriptions and the notifications onboarding, state changes and deletion send."""

from __future__ import annotations

import base64
from pathlib import Path

from sqlalchemy import select

from sol013.outbox import NotificationOutbox
from tests.api.conftest import PKGS, Nfvo
from tests.support.callback_server import running_consumer

SUBS = "/vnfpkgm/v2/subscriptions"


def test_subscription_resource(nfvo: Nfvo) -> None:
    http = nfvo.client()
    with running_consumer() as consumer:
        callback = f"{consumer.url}/notify"
        resp = http.post(SUBS, json={"callbackUri": callback})
        assert resp.status_code == 201, resp.text
        sub = resp.json()
        assert "authentication" not in sub
        assert resp.headers["Location"] == sub["_links"]["self"]["href"]
        # The endpoint was tested with a GET before the subscription was made.
        assert [r.method for r in consumer.received] == ["GET"]

        duplicate = http.post(SUBS, json={"callbackUri": callback}, follow_redirects=False)
        assert duplicate.status_code == 303
        assert duplicate.headers["Location"].endswith(sub["id"])

        filtered = http.post(
            SUBS,
            json={
                "callbackUri": callback,
                "filter": {"notificationTypes": ["VnfPackageChangeNotification"]},
            },
        )
        assert filtered.status_code == 201
        listed = http.get(SUBS).json()
        assert {s["id"] for s in listed} == {sub["id"], filtered.json()["id"]}
        assert http.get(f"{SUBS}/{sub['id']}").json()["callbackUri"] == callback
        assert http.delete(f"{SUBS}/{sub['id']}").status_code == 204
        assert http.get(f"{SUBS}/{sub['id']}").status_code == 404
        assert http.delete(f"{SUBS}/{sub['id']}").status_code == 404

        consumer.get_status = 404
        refused = http.post(SUBS, json={"callbackUri": f"{consumer.url}/other"})
        assert refused.status_code == 422
        assert "404" in refused.json()["detail"]
    bad_filter = http.post(
        SUBS,
        json={
            "callbackUri": "http://127.0.0.1:9/x",
            "filter": {"vnfdId": ["a"], "vnfPkgId": ["b"]},
        },
    )
    assert bad_filter.status_code == 400
    bad_auth = http.post(
        SUBS,
        json={"callbackUri": "http://127.0.0.1:9/x", "authentication": {"authType": ["BASIC"]}},
    )
    assert bad_auth.status_code == 400


def test_notifications_for_onboarding_change_and_delete(
    nfvo: Nfvo, sample_csars: dict[str, Path]
) -> None:
    http = nfvo.client()
    with running_consumer() as consumer:
        sub = http.post(
            SUBS,
            json={
                "callbackUri": f"{consumer.url}/all",
                "authentication": {
                    "authType": ["BASIC"],
                    "paramsBasic": {"userName": "nfvo", "password": "s3cret"},
                },
            },
        ).json()
        info = nfvo.onboard(http, sample_csars["nat"])
        onboarded = consumer.wait_posts(1)[0]
        assert onboarded.body["notificationType"] == "VnfPackageOnboardingNotification"
        assert onboarded.body["vnfPkgId"] == info["id"]
        assert onboarded.body["vnfdId"] == info["vnfdId"]
        assert onboarded.body["subscriptionId"] == sub["id"]
        assert onboarded.body["_links"]["vnfPackage"]["href"].endswith(info["id"])
        expected_auth = "Basic " + base64.b64encode(b"nfvo:s3cret").decode()
        assert onboarded.headers["Authorization"] == expected_auth
        assert onboarded.headers["Version"] == "2.4.0"

        # A failing consumer gets the change notification on a later attempt.
        consumer.fail_next = [503, 503]
        http.patch(f"{PKGS}/{info['id']}", json={"operationalState": "ENABLED"})
        change = consumer.wait_posts(2)[1]
        assert change.body["notificationType"] == "VnfPackageChangeNotification"
        assert change.body["changeType"] == "OP_STATE_CHANGE"
        assert change.body["operationalState"] == "ENABLED"

        http.patch(f"{PKGS}/{info['id']}", json={"operationalState": "DISABLED"})
        http.delete(f"{PKGS}/{info['id']}")
        posts = consumer.wait_posts(4)
        assert [p.body.get("changeType") for p in posts[2:]] == ["OP_STATE_CHANGE", "PKG_DELETE"]


def test_filters_select_notifications(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    http = nfvo.client()
    with running_consumer() as consumer:
        http.post(
            SUBS,
            json={
                "callbackUri": f"{consumer.url}/slb-only",
                "filter": {
                    "vnfProductsFromProviders": [
                        {
                            "vnfProvider": "nobody",
                            "vnfProducts": [{"vnfProductName": "NAT"}],
                        }
                    ]
                },
            },
        )
        http.post(
            SUBS,
            json={
                "callbackUri": f"{consumer.url}/changes",
                "filter": {"notificationTypes": ["VnfPackageChangeNotification"]},
            },
        )
        info = nfvo.onboard(http, sample_csars["nat"])
        http.patch(f"{PKGS}/{info['id']}", json={"operationalState": "ENABLED"})
        posts = consumer.wait_posts(1)
        assert [(p.path, p.body["notificationType"]) for p in posts] == [
            ("/changes", "VnfPackageChangeNotification")
        ]
        # Nothing was ever queued for the subscription whose filter does not match.
        with nfvo.app.state.session_factory() as session:
            queued = session.scalars(select(NotificationOutbox.callback_uri)).all()
        assert queued == [f"{consumer.url}/changes"]
