"""/nsd/v2/subscriptions and the notifications onboarding, failures, changes and deletion send."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from sqlalchemy import select

from sol013.outbox import NotificationOutbox
from tests.api.conftest import NSD_VERSION, NSDS, Nfvo, NsdApi
from tests.support.callback_server import running_consumer

SUBS = "/nsd/v2/subscriptions"
MERGE = {"Content-Type": "application/merge-patch+json"}
NSD_ID = "01ac4c04-8ab4-411c-9f2d-9c5ff9e5cd5f"


def test_subscription_resource(nsd_api: NsdApi) -> None:
    http = nsd_api.http
    with running_consumer() as consumer:
        callback = f"{consumer.url}/notify"
        resp = http.post(SUBS, json={"callbackUri": callback})
        assert resp.status_code == 201, resp.text
        sub = resp.json()
        assert resp.headers["Location"] == sub["_links"]["self"]["href"]
        assert [r.method for r in consumer.received] == ["GET"]
        duplicate = http.post(SUBS, json={"callbackUri": callback}, follow_redirects=False)
        assert duplicate.status_code == 303
        assert duplicate.headers["Location"].endswith(sub["id"])
        filtered = http.post(
            SUBS,
            json={"callbackUri": callback, "filter": {"nsdId": [NSD_ID]}},
        )
        assert filtered.status_code == 201
        assert filtered.json()["filter"] == {"nsdId": [NSD_ID]}
        assert {s["id"] for s in http.get(SUBS).json()} == {sub["id"], filtered.json()["id"]}
        assert http.get(f"{SUBS}/{sub['id']}").json()["callbackUri"] == callback
        assert http.delete(f"{SUBS}/{sub['id']}").status_code == 204
        assert http.get(f"{SUBS}/{sub['id']}").status_code == 404
        consumer.get_status = 404
        assert http.post(SUBS, json={"callbackUri": f"{consumer.url}/x"}).status_code == 422
    for bad_filter in (
        {"nsdId": ["a"], "nsdInfoId": ["b"]},
        {"notificationTypes": ["VnfPackageOnboardingNotification"]},
        {"nsdOperationalState": ["SLEEPING"]},
    ):
        refused = http.post(
            SUBS, json={"callbackUri": "http://127.0.0.1:9/x", "filter": bad_filter}
        )
        assert refused.status_code == 400, bad_filter


def _wait_kinds(consumer: Any, count: int) -> list[dict[str, Any]]:
    return [post.body for post in consumer.wait_posts(count)]


def test_notifications_for_each_event(
    nfvo: Nfvo,
    nsd_api: NsdApi,
    nsd_archives: dict[str, Path],
    sample_csars: dict[str, Path],
) -> None:
    http = nsd_api.http
    archive = nsd_archives["edge-gateway"].read_bytes()
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
        # Onboarding fails first: the NAT VNFD is not onboarded yet.
        failed = nsd_api.refused(archive)
        failure = consumer.wait_posts(1)[0]
        assert failure.body["notificationType"] == "NsdOnboardingFailureNotification"
        assert failure.body["nsdInfoId"] == failed["id"]
        # The NSD was read before it was refused, so its nsdId is known.
        assert failure.body["nsdId"] == NSD_ID
        assert failure.body["onboardingFailureDetails"] == failed["onboardingFailureDetails"]
        assert failure.body["subscriptionId"] == sub["id"]
        assert failure.body["_links"]["nsdInfo"]["href"].endswith(f"{NSDS}/{failed['id']}")
        assert failure.body["_links"]["subscription"]["href"].endswith(f"{SUBS}/{sub['id']}")
        assert (
            failure.headers["Authorization"] == "Basic " + base64.b64encode(b"nfvo:s3cret").decode()
        )
        assert failure.headers["Version"] == NSD_VERSION

        nfvo.onboard(nfvo.client(), sample_csars["nat"])
        nsd_api.upload(archive, nsd_info_id=failed["id"])
        assert nsd_api.wait(failed["id"])["nsdOnboardingState"] == "ONBOARDED"
        onboarded = _wait_kinds(consumer, 2)[1]
        assert onboarded["notificationType"] == "NsdOnBoardingNotification"
        assert (onboarded["nsdInfoId"], onboarded["nsdId"]) == (failed["id"], NSD_ID)

        # A failing consumer gets the change notification on a later attempt.
        consumer.fail_next = [503, 503]
        base = f"{NSDS}/{failed['id']}"
        http.patch(base, json={"nsdOperationalState": "ENABLED"}, headers=MERGE)
        change = _wait_kinds(consumer, 3)[2]
        assert change["notificationType"] == "NsdChangeNotification"
        assert change["nsdOperationalState"] == "ENABLED"
        # userDefinedData and usage state changes are not notified.
        http.patch(base, json={"userDefinedData": {"x": 1}}, headers=MERGE)
        nfvo.app.state.nsds.set_usage(failed["id"], True)
        nfvo.app.state.nsds.set_usage(failed["id"], False)
        http.patch(base, json={"nsdOperationalState": "DISABLED"}, headers=MERGE)
        assert http.delete(base).status_code == 204
        bodies = _wait_kinds(consumer, 5)
        assert [(b["notificationType"], b.get("nsdOperationalState")) for b in bodies[3:]] == [
            ("NsdChangeNotification", "DISABLED"),
            ("NsdDeletionNotification", None),
        ]
        assert bodies[4]["nsdId"] == NSD_ID
        # A resource deleted before it was ever onboarded is not notified.
        assert http.delete(f"{NSDS}/{http.post(NSDS, json={}).json()['id']}").status_code == 204
    assert len(consumer.posts()) == 5


def test_filters_select_notifications(
    nfvo: Nfvo, nsd_api: NsdApi, nat_package: dict[str, Any], nsd_archives: dict[str, Path]
) -> None:
    http = nsd_api.http
    with running_consumer() as consumer:
        filters: dict[str, dict[str, Any]] = {
            # The other capitalisation of the notification type, as parts of SOL005 spell it.
            "/onboarded": {"notificationTypes": ["NsdOnboardingNotification"]},
            "/changes": {"notificationTypes": ["NsdChangeNotification"], "nsdId": [NSD_ID]},
            "/other-nsd": {"nsdId": ["00000000-0000-0000-0000-000000000000"]},
            "/by-designer": {
                "nsdDesigner": ["nfv-mano project"],
                "nsdOperationalState": ["ENABLED"],
            },
            "/by-package": {"vnfPkgIds": [nat_package["id"]]},
            "/pnfds-only": {"pnfdProvider": ["someone"]},
        }
        for path, flt in filters.items():
            resp = http.post(SUBS, json={"callbackUri": f"{consumer.url}{path}", "filter": flt})
            assert resp.status_code == 201, resp.text
        stored = {s["callbackUri"]: s["filter"] for s in http.get(SUBS).json()}
        assert stored[f"{consumer.url}/onboarded"] == {
            "notificationTypes": ["NsdOnBoardingNotification"]
        }

        info = nsd_api.onboard(nsd_archives["edge-gateway"].read_bytes())
        http.patch(f"{NSDS}/{info['id']}", json={"nsdOperationalState": "ENABLED"}, headers=MERGE)
        posts = consumer.wait_posts(5)
        received = sorted((p.path, p.body["notificationType"]) for p in posts)
        assert received == [
            ("/by-designer", "NsdChangeNotification"),
            ("/by-package", "NsdChangeNotification"),
            ("/by-package", "NsdOnBoardingNotification"),
            ("/changes", "NsdChangeNotification"),
            ("/onboarded", "NsdOnBoardingNotification"),
        ]
        with nfvo.app.state.session_factory() as session:
            queued = set(session.scalars(select(NotificationOutbox.callback_uri)).all())
        assert not {f"{consumer.url}/other-nsd", f"{consumer.url}/pnfds-only"} & queued
