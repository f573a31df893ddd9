"""/nslcm/v2/subscriptions: subscribe to NS lifecycle change notifications (SOL005 6.4.16)."""

from __future__ import annotations

from typing import Any

from nfvo.nslcm.deps import READ, WRITE
from nfvo.nslcm.models import NsLcmSubscriptionRow
from nfvo.nslcm.schemas import (
    API_MAJOR,
    API_NAME,
    LccnSubscription,
    LccnSubscriptionRequest,
    LcmOpOccNotificationVerbosityType,
)
from sol013.subscriptions import SubscriptionApi


def _verbosity(body: LccnSubscriptionRequest) -> dict[str, Any]:
    # Absent means FULL (SOL005 LccnSubscriptionRequest.verbosity); stored explicitly.
    verbosity = body.verbosity or LcmOpOccNotificationVerbosityType.FULL
    return {"verbosity": verbosity.value}


def _verbosity_view(row: NsLcmSubscriptionRow) -> dict[str, Any]:
    return {"verbosity": row.verbosity}


SUBSCRIPTIONS = SubscriptionApi(
    table=NsLcmSubscriptionRow,
    request_model=LccnSubscriptionRequest,
    representation_model=LccnSubscription,
    prefix=f"/{API_NAME}/{API_MAJOR}/subscriptions",
    read=READ,
    write=WRITE,
    tags=["NS LCM subscriptions"],
    extra_columns=_verbosity,
    extra_view=_verbosity_view,
)
router = SUBSCRIPTIONS.router()
