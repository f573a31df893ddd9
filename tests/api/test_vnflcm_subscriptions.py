"""VNF LCM subscriptions and the VNF identifier notifications, over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from sol013.outbox import NotificationOutbox
from tests.api.conftest import PKGS, Nfvo
from tests.support.callback_server import Received, running_consumer
from tests.support.etsi_schema import validate
from vnfm.schemas import API_VERSION

SUBS = "/vnflcm/v2/subscriptions"
INSTANCES = "/vnflcm/v2/vnf_instances"
LCM_DEFS = (
    "nfv-sol002-sol003/SOL003/VNFLifecycleManagement/definitions/"
    "SOL003VNFLifecycleManagement_def.yaml"
)
LCM_NOTIFICATION_DEFS = (
    "nfv-sol002-sol003/SOL003/VNFLifecycleManagementNotification/definitions/"
    "SOL003VNFLifecycleManagementNotification_def.yaml"
)


def _lcm(nfvo: Nfvo, client_id: str = "lcm") -> httpx.Client:
    return nfvo.client(client_id, version=API_VERSION)


def _enabled_vnfd(nfvo: Nfvo, csar: Path) -> str:
    admin = nfvo.client()
    info = nfvo.onboard(admin, csar)
    admin.patch(f"{PKGS}/{info['id']}", json={"operationalState": "ENABLED"})
    return str(info["vnfdId"])


def _subscription(resp: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    validate(LCM_DEFS, "LccnSubscription", body)
    return body


def _notification(post: Received) -> dict[str, Any]:
    body: dict[str, Any] = post.body
    validate(LCM_NOTIFICATION_DEFS, body["notificationType"], body)
    assert post.headers["Version"] == API_VERSION
    return body


def test_subscription_resource(nfvo: Nfvo) -> None:
    lcm = _lcm(nfvo)
    with running_consumer() as consumer:
        callback = f"{consumer.url}/lcm"
        sub = _subscription(lcm.post(SUBS, json={"callbackUri": callback}))
        assert sub["verbosity"] == "FULL"
        assert [r.method for r in consumer.received] == ["GET"]

        duplicate = lcm.post(SUBS, json={"callbackUri": callback}, follow_redirects=False)
        assert duplicate.status_code == 303
        assert duplicate.headers["Location"] == sub["_links"]["self"]["href"]
        # Another verbosity is another subscription.
        short = _subscription(
            lcm.post(
                SUBS,
                json={
                    "callbackUri": callback,
                    "verbosity": "SHORT",
                    "filter": {"notificationTypes": ["VnfIdentifierCreationNotification"]},
                    "authentication": {
                        "authType": ["BASIC"],
                        "paramsBasic": {"userName": "vnfm", "password": "s3cret"},
                    },
                },
            )
        )
        assert short["verbosity"] == "SHORT" and "authentication" not in short

        listed = lcm.get(SUBS)
        assert listed.status_code == 200
        assert {s["id"] for s in listed.json()} == {sub["id"], short["id"]}
        for item in listed.json():
            validate(LCM_DEFS, "LccnSubscription", item)
        only_short = lcm.get(SUBS, params={"filter": "(eq,verbosity,SHORT)"}).json()
        assert [s["id"] for s in only_short] == [short["id"]]
        reader = _lcm(nfvo, "lcm-reader")
        assert _subscription(reader.get(f"{SUBS}/{short['id']}"), 200) == short
        assert reader.delete(f"{SUBS}/{short['id']}").status_code == 403
        assert nfvo.client("admin", version=API_VERSION).get(SUBS).status_code == 403

        assert lcm.delete(f"{SUBS}/{short['id']}").status_code == 204
        assert lcm.get(f"{SUBS}/{short['id']}").status_code == 404
        assert lcm.delete(f"{SUBS}/{short['id']}").status_code == 404

        consumer.get_status = 500
        refused = lcm.post(SUBS, json={"callbackUri": f"{consumer.url}/broken"})
        assert refused.status_code == 422
        assert "500" in refused.json()["detail"]
    invalid = lcm.post(
        SUBS,
        json={
            "callbackUri": "http://127.0.0.1:9/x",
            "filter": {
                "notificationTypes": ["VnfIdentifierCreationNotification"],
                "operationTypes": ["INSTANTIATE"],
            },
        },
    )
    assert invalid.status_code == 400
    assert lcm.post(SUBS, json={"callbackUri": "x", "verbosity": "LOUD"}).status_code == 400


def test_identifier_notifications(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    nat_vnfd = _enabled_vnfd(nfvo, sample_csars["nat"])
    slb_vnfd = _enabled_vnfd(nfvo, sample_csars["slb"])
    lcm = _lcm(nfvo)
    with running_consumer() as consumer:
        everything = _subscription(lcm.post(SUBS, json={"callbackUri": f"{consumer.url}/all"}))
        _subscription(
            lcm.post(
                SUBS,
                json={
                    "callbackUri": f"{consumer.url}/slb",
                    "filter": {"vnfInstanceSubscriptionFilter": {"vnfdIds": [slb_vnfd]}},
                },
            )
        )
        deletions = _subscription(
            lcm.post(
                SUBS,
                json={
                    "callbackUri": f"{consumer.url}/deletions",
                    "filter": {"notificationTypes": ["VnfIdentifierDeletionNotification"]},
                },
            )
        )
        created = lcm.post(INSTANCES, json={"vnfdId": nat_vnfd, "vnfInstanceName": "nat-1"})
        assert created.status_code == 201, created.text
        instance = created.json()
        first = _notification(consumer.wait_posts(1)[0])
        assert consumer.posts()[0].path == "/all"
        assert first["notificationType"] == "VnfIdentifierCreationNotification"
        assert first["vnfInstanceId"] == instance["id"]
        assert first["subscriptionId"] == everything["id"]
        links = first["_links"]
        assert links["vnfInstance"]["href"] == instance["_links"]["self"]["href"]
        assert links["subscription"]["href"] == everything["_links"]["self"]["href"]

        assert lcm.delete(f"{INSTANCES}/{instance['id']}").status_code == 204
        posts = consumer.wait_posts(3)
        gone = [_notification(post) for post in posts[1:]]
        assert sorted(post.path for post in posts[1:]) == ["/all", "/deletions"]
        assert {b["notificationType"] for b in gone} == {"VnfIdentifierDeletionNotification"}
        assert {b["vnfInstanceId"] for b in gone} == {instance["id"]}
        # One event, one notification id, whatever the number of subscribers.
        assert len({b["id"] for b in gone}) == 1
        assert {b["subscriptionId"] for b in gone} == {everything["id"], deletions["id"]}

        # The vnfdIds filter now matches: the SLB subscription gets this creation.
        slb = lcm.post(INSTANCES, json={"vnfdId": slb_vnfd}).json()
        posts = consumer.wait_posts(5)
        assert sorted(post.path for post in posts[3:]) == ["/all", "/slb"]
        assert {_notification(post)["vnfInstanceId"] for post in posts[3:]} == {slb["id"]}
    # Nothing was ever queued for a subscription whose filter does not match.
    with nfvo.app.state.session_factory() as session:
        queued = session.execute(
            select(NotificationOutbox.callback_uri, NotificationOutbox.notification_type)
        ).all()
    assert sorted((uri.rsplit("/", 1)[1], kind) for uri, kind in queued) == [
        ("all", "VnfIdentifierCreationNotification"),
        ("all", "VnfIdentifierCreationNotification"),
        ("all", "VnfIdentifierDeletionNotification"),
        ("deletions", "VnfIdentifierDeletionNotification"),
        ("slb", "VnfIdentifierCreationNotification"),
    ]
