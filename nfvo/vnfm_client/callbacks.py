"""The NFVO as a consumer of VNF LCM notifications: callback URIs and the VNFMs' credentials.

ETSI leaves the consumer's URI to the consumer. The NFVO's is
``{public_url}/nfvo/v1/vnflcm_notifications/{subscriptionRef}``, one reference per VNFM
subscription: ``{vnfmId}.w-{16 hex}`` for the subscription a client keeps per VNFD to learn
when its operations end (the hex is a digest of the vnfdId, so subscribing again is a
duplicate the VNFM answers with 303), ``{vnfmId}.l-{16 hex}`` (random) for each
`VnfmClient.subscribe`.

Each subscription carries its own credentials (SOL013 SubscriptionAuthentication): an
OAuth 2.0 client of this NFVO, ``vnfm-notify.{ref}.{8 hex}``, with a random secret (stored
hashed) and only the scope ``vnflcm_notifications:v1:all``. The VNFM uses it as BASIC user
and password or to get a token from the NFVO's token endpoint (OAUTH2_CLIENT_CREDENTIALS);
the endpoint accepts it for its own reference only, so one VNFM cannot speak for another.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nfvo.vnfm_client.hub import NotificationHub
from nfvo.vnfm_client.registry import NotificationAuth
from sol013.notify_auth import (
    AuthType,
    ParamsBasic,
    ParamsOauth2ClientCredentials,
    SubscriptionAuthentication,
)
from sol013.oauth2 import OAuthClient, create_client, delete_client, scopes_for
from store.base import transaction

__all__ = [
    "ENDPOINT_PATH",
    "NOTIFY_SCOPE",
    "NotificationEndpoint",
    "client_belongs_to",
    "listener_ref",
    "vnfm_of",
    "watch_ref",
]

ENDPOINT_PATH = "/nfvo/v1/vnflcm_notifications"
NOTIFY_SCOPE = scopes_for("vnflcm_notifications", "v1", write=True)[0]
_CLIENT_PREFIX = "vnfm-notify."
_REF = re.compile(r"^(?P<vnfm>[A-Za-z0-9_-]{1,64})\.[wl]-[0-9a-f]{16}$")


def watch_ref(vnfm_id: str, vnfd_id: str) -> str:
    """The reference of the per-VNFD subscription whose notifications end `wait_for_op`."""
    return f"{vnfm_id}.w-{hashlib.sha256(vnfd_id.encode()).hexdigest()[:16]}"


def listener_ref(vnfm_id: str) -> str:
    return f"{vnfm_id}.l-{secrets.token_hex(8)}"


def vnfm_of(ref: str) -> str | None:
    """The VNFM id a subscription reference belongs to; None if it is not one of ours."""
    match = _REF.match(ref)
    return match.group("vnfm") if match else None


def client_belongs_to(client_id: str, ref: str) -> bool:
    return client_id.startswith(f"{_CLIENT_PREFIX}{ref}.")


@dataclass
class NotificationEndpoint:
    """This NFVO's notification endpoint, as the VNFM clients subscribe it.

    ``base_url``: the NFVO as VNFMs reach it (its public URL). ``sessions``: the NFVO's
    store, where the per-subscription OAuth 2.0 clients live; None when the NFVO runs
    without authentication (subscriptions then carry none).
    """

    base_url: str
    hub: NotificationHub
    sessions: sessionmaker[Session] | None

    def callback_uri(self, ref: str) -> str:
        return f"{self.base_url.rstrip('/')}{ENDPOINT_PATH}/{ref}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/oauth2/token"

    def issue(
        self, ref: str, auth_type: NotificationAuth
    ) -> tuple[SubscriptionAuthentication | None, str | None]:
        """New credentials for a subscription with reference ``ref``, and their client id."""
        if self.sessions is None:
            return None, None
        client_id = f"{_CLIENT_PREFIX}{ref}.{secrets.token_hex(4)}"
        with transaction(self.sessions) as session:
            secret = create_client(
                session,
                client_id,
                [NOTIFY_SCOPE],
                description=f"a VNFM notifying subscription {ref}",
            )
        if auth_type == AuthType.BASIC:
            auth = SubscriptionAuthentication(
                authType=[AuthType.BASIC],
                paramsBasic=ParamsBasic(userName=client_id, password=secret),
            )
        else:
            auth = SubscriptionAuthentication(
                authType=[AuthType.OAUTH2_CLIENT_CREDENTIALS],
                paramsOauth2ClientCredentials=ParamsOauth2ClientCredentials(
                    clientId=client_id, clientPassword=secret, tokenEndpoint=self.token_url
                ),
            )
        return auth, client_id

    def revoke(self, client_id: str | None) -> None:
        if self.sessions is None or client_id is None:
            return
        with transaction(self.sessions) as session:
            delete_client(session, client_id)

    def revoke_ref(self, ref: str) -> None:
        """Remove every credential issued for subscription reference ``ref``."""
        if self.sessions is None:
            return
        prefix = f"{_CLIENT_PREFIX}{ref}."
        with transaction(self.sessions) as session:
            ids = session.scalars(
                select(OAuthClient.client_id).where(
                    OAuthClient.client_id.startswith(prefix, autoescape=True)
                )
            )
            for client_id in list(ids):
                delete_client(session, client_id)
