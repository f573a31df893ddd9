"""/vnfpkgm/v2/subscriptions: subscribe to package notifications."""

from __future__ import annotations

from nfvo.vnfpkgm.deps import READ, WRITE
from nfvo.vnfpkgm.models import PkgmSubscriptionRow
from nfvo.vnfpkgm.schemas import API_MAJOR, API_NAME, PkgmSubscription, PkgmSubscriptionRequest
from sol013.subscriptions import SubscriptionApi

SUBSCRIPTIONS = SubscriptionApi(
    table=PkgmSubscriptionRow,
    request_model=PkgmSubscriptionRequest,
    representation_model=PkgmSubscription,
    prefix=f"/{API_NAME}/{API_MAJOR}/subscriptions",
    read=READ,
    write=WRITE,
    tags=["VNF package subscriptions"],
)
router = SUBSCRIPTIONS.router()
