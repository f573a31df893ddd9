"""/vnflcm/v2/subscriptions: subscribe to VNF lifecycle change notifications (SOL003)."""

from __future__ import annotations

from typing import Any

from sol013.subscriptions import SubscriptionApi
from vnfm.api_instances import READ, WRITE
from vnfm.models import LccnSubscriptionRow
from vnfm.schemas import (
    API_MAJOR,
    API_NAME,
    LccnSubscription,
    LccnSubscriptionRequest,
    LcmOpOccNotificationVerbosityType,
)

PREFIX = f"/{API_NAME}/{API_MAJOR}/subscriptions"


def _verbosity(body: LccnSubscriptionRequest) -> dict[str, Any]:
    # Absent means FULL (SOL003 LccnSubscriptionRequest.verbosity); stored explicitly.
    verbosity = body.verbosity or LcmOpOccNotificationVerbosityType.FULL
    return {"verbosity": verbosity.value}


def _verbosity_view(row: LccnSubscriptionRow) -> dict[str, Any]:
    return {"verbosity": row.verbosity}


SUBSCRIPTIONS = SubscriptionApi(
    table=LccnSubscriptionRow,
    request_model=LccnSubscriptionRequest,
    representation_model=LccnSubscription,
    prefix=PREFIX,
    read=READ,
    write=WRITE,
    tags=["VNF LCM subscriptions"],
    extra_columns=_verbosity,
    extra_view=_verbosity_view,
)
router = SUBSCRIPTIONS.router()
