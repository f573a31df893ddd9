"""/nsd/v2/subscriptions: subscribe to NSD management notifications."""

from __future__ import annotations

from nfvo.nsd.deps import READ, WRITE
from nfvo.nsd.models import NsdmSubscriptionRow
from nfvo.nsd.schemas import API_MAJOR, API_NAME, NsdmSubscription, NsdmSubscriptionRequest
from sol013.subscriptions import SubscriptionApi

SUBSCRIPTIONS = SubscriptionApi(
    table=NsdmSubscriptionRow,
    request_model=NsdmSubscriptionRequest,
    representation_model=NsdmSubscription,
    prefix=f"/{API_NAME}/{API_MAJOR}/subscriptions",
    read=READ,
    write=WRITE,
    tags=["NSD subscriptions"],
)
router = SUBSCRIPTIONS.router()
