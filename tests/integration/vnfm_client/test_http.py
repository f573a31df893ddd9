"""The VNFM client contract over SOL003 HTTP, against our own VNFM on a real socket.

The NFVO and its VNFM run in one service here (the lab), but the client only has the VNFM's
URL and OAuth 2.0 credentials, as it would for a third-party VNFM; notifications come back
to the NFVO's endpoint over the socket.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from nfvo.vnfm_client import Forbidden, VnfmClient, VnfmRecord, client_for
from nfvo.vnfm_client.callbacks import ENDPOINT_PATH, NotificationEndpoint, listener_ref
from nfvo.vnfm_client.http import HttpVnfmClient
from sol013.notify_auth import AuthType
from tests.contract.vnfm_client_contract import VnfmClientContract, _Inbox
from tests.support.celery_worker import LcmLab, lab_token
from vnfm.models import LccnSubscriptionRow
from vnfm.schemas import LifecycleChangeNotificationsFilter, VnfInstanceSubscriptionFilter


def _record(lab: LcmLab, credentials: tuple[str, str], **fields: object) -> VnfmRecord:
    client_id, secret = credentials
    values: dict[str, object] = {
        "id": "self-http",
        "kind": "http",
        "api_root": lab.url,
        "client_id": client_id,
        "client_secret": SecretStr(secret),
        **fields,
    }
    return VnfmRecord.model_validate(values)


class TestHttpClient(VnfmClientContract):
    @pytest.fixture
    def client(self, lab: LcmLab, nfvo_credentials: tuple[str, str]) -> Iterator[VnfmClient]:
        with client_for(lab.app, _record(lab, nfvo_credentials)) as made:
            assert isinstance(made, HttpVnfmClient)
            yield made


def test_basic_notification_authentication(
    lab: LcmLab, nfvo_credentials: tuple[str, str], vnfd_id: str
) -> None:
    """A VNFM told to use BASIC authenticates its notifications that way, and they arrive."""
    record = _record(lab, nfvo_credentials, id="basic", notification_auth=AuthType.BASIC)
    flt = LifecycleChangeNotificationsFilter(
        notificationTypes=["VnfIdentifierCreationNotification"],
        vnfInstanceSubscriptionFilter=VnfInstanceSubscriptionFilter(vnfdIds=[vnfd_id]),
    )
    inbox = _Inbox()
    with client_for(lab.app, record) as client:
        subscription_id = client.subscribe(flt, inbox)
        with lab.app.state.session_factory() as session:
            stored = session.get(LccnSubscriptionRow, subscription_id)
            assert stored is not None and stored.authentication is not None
            # Stored sealed, as every subscription's credentials.
            opened = lab.app.state.secret_box.open_json(stored.authentication)
            assert opened["authType"] == ["BASIC"]
        instance = client.create_vnf_instance(vnfd_id)
        client.delete_vnf_instance(instance.id)
        assert [n.vnfInstanceId for n in inbox.wait(1)] == [instance.id]


def test_wrong_credentials_are_forbidden(lab: LcmLab, nfvo_credentials: tuple[str, str]) -> None:
    record = _record(lab, (nfvo_credentials[0], "not-the-secret"))
    with HttpVnfmClient(record) as client, pytest.raises(Forbidden) as refused:
        client.list_vnf_instances()
    assert "refused client" in refused.value.detail


def test_the_notification_endpoint_admits_only_the_subscription_credentials(
    lab: LcmLab, nfvo_credentials: tuple[str, str]
) -> None:
    endpoint: NotificationEndpoint = lab.app.state.vnfm_notifications
    mine, other = listener_ref("probe"), listener_ref("probe")
    auth, client_id = endpoint.issue(mine, AuthType.OAUTH2_CLIENT_CREDENTIALS)
    assert auth is not None and auth.paramsOauth2ClientCredentials is not None and client_id
    secret = auth.paramsOauth2ClientCredentials.clientPassword
    url = f"{lab.url}{ENDPOINT_PATH}"
    try:
        token = lab_token(lab.url, client_id, secret)
        bearer = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/{mine}", headers=bearer).status_code == 204
        assert httpx.get(f"{url}/{mine}", auth=(client_id, secret)).status_code == 204
        assert httpx.get(f"{url}/{mine}").status_code == 401
        assert httpx.get(f"{url}/{mine}", auth=(client_id, "wrong")).status_code == 401
        # Another subscription's reference, or a token without the scope: 403.
        assert httpx.get(f"{url}/{other}", headers=bearer).status_code == 403
        lcm_only = lab_token(lab.url, *nfvo_credentials)
        refused = httpx.get(f"{url}/{mine}", headers={"Authorization": f"Bearer {lcm_only}"})
        assert refused.status_code == 403
        assert httpx.get(f"{url}/not-a-reference", headers=bearer).status_code == 404
        # Only SOL003 LCM notifications are accepted.
        junk = httpx.post(f"{url}/{mine}", headers=bearer, json={"notificationType": "Other"})
        assert junk.status_code == 400
        assert junk.headers["content-type"] == "application/problem+json"
    finally:
        endpoint.revoke_ref(mine)
    assert httpx.get(f"{url}/{mine}", auth=(client_id, secret)).status_code == 401
