"""Subscription credentials sealed at rest with the VIM registry's key, on SQLite and PostgreSQL.

The callback credentials of a subscription are stored sealed, copied sealed into the
notification outbox, and opened only to authenticate a delivery; rows an older version
stored in clear are sealed at the next start.
"""

from __future__ import annotations

import base64
from pathlib import Path

from sqlalchemy import select, text, update

from nfvo.vnfpkgm.models import PkgmSubscriptionRow
from sol013.outbox import NotificationOutbox
from sol013.secrets import is_sealed
from store.base import transaction
from tests.api.conftest import PKGS, Nfvo, NfvoFactory
from tests.support.callback_server import running_consumer

SUBS = "/vnfpkgm/v2/subscriptions"
PASSWORD = "n0tify-s3cret"
BASIC = {"authType": ["BASIC"], "paramsBasic": {"userName": "nfvo", "password": PASSWORD}}
EXPECTED = "Basic " + base64.b64encode(f"nfvo:{PASSWORD}".encode()).decode()


def dump(nfvo: Nfvo, table: str) -> str:
    with nfvo.app.state.session_factory() as session:
        return repr(session.execute(text(f"SELECT * FROM {table}")).all())


def test_sealed_where_stored_opened_to_deliver(
    nfvo_factory: NfvoFactory, sample_csars: dict[str, Path]
) -> None:
    nfvo = nfvo_factory()
    http = nfvo.client()
    with running_consumer() as consumer:
        sub = http.post(SUBS, json={"callbackUri": f"{consumer.url}/n", "authentication": BASIC})
        assert sub.status_code == 201, sub.text
        assert "authentication" not in sub.json()
        assert PASSWORD not in dump(nfvo, "vnfpkgm_subscriptions")

        info = nfvo.onboard(http, sample_csars["nat"])
        onboarded = consumer.wait_posts(1)[0]
        assert onboarded.headers["Authorization"] == EXPECTED
        assert PASSWORD not in dump(nfvo, "notification_outbox")
        with nfvo.app.state.session_factory() as session:
            stored = session.scalars(select(NotificationOutbox.authentication)).all()
        assert stored and all(is_sealed(value) for value in stored)

        # An older version kept the credentials in clear: the next start seals them.
        sessions = nfvo.app.state.session_factory
        with transaction(sessions) as session:
            session.execute(
                update(PkgmSubscriptionRow)
                .where(PkgmSubscriptionRow.id == sub.json()["id"])
                .values(authentication=BASIC)
            )
        assert PASSWORD in dump(nfvo, "vnfpkgm_subscriptions")
        restarted = nfvo_factory()
        assert PASSWORD not in dump(restarted, "vnfpkgm_subscriptions")

        # And a notification queued from the sealed row is still authenticated.
        restarted.client().patch(f"{PKGS}/{info['id']}", json={"operationalState": "ENABLED"})
        posts = consumer.wait_posts(2)
        changed = [p for p in posts if p.body["notificationType"] == "VnfPackageChangeNotification"]
        assert changed and all(p.headers["Authorization"] == EXPECTED for p in changed)
