"""SOL005 NS Lifecycle Management data types (clause 6.5), as served on /nslcm/v2."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from sol013.types import EtsiModel, Identifier, Link

API_NAME = "nslcm"
API_MAJOR = "v2"
API_VERSION = "2.3.0"
# Complex attributes left out unless asked for (SOL005 clause 6.4.2.3.2, exclude_default).
DEFAULT_EXCLUDED = (
    "vnfInstance",
    "pnfInfo",
    "virtualLinkInfo",
    "vnffgInfo",
    "sapInfo",
    "nsScaleStatus",
    "additionalAffinityOrAntiAffinityRule",
    "wanConnectionInfo",
)


class NsState(StrEnum):
    NOT_INSTANTIATED = "NOT_INSTANTIATED"
    INSTANTIATED = "INSTANTIATED"


class CreateNsRequest(EtsiModel):
    """Body of POST /ns_instances (SOL005 6.5.2.7)."""

    nsdId: Identifier
    nsName: str
    nsDescription: str


class NsInstanceLinks(EtsiModel):
    """Links of an NsInstance; task links only where the task is possible now."""

    self_: Link = Field(alias="self")
    instantiate: Link | None = None
    terminate: Link | None = None
    update: Link | None = None
    scale: Link | None = None
    heal: Link | None = None


class NsInstance(EtsiModel):
    """The representation of an "Individual NS instance" resource (SOL005 6.5.2.10).

    Attributes this NFVO never sets (PNFs, nested NSs, VNFFGs, WAN connections)
    are absent; the structured ones it fills are typed loosely here because the
    model serves attribute filters, not validation (the tests validate the
    bodies against the ETSI schema).
    """

    id: Identifier
    nsInstanceName: str
    nsInstanceDescription: str
    nsdId: Identifier
    nsdInfoId: Identifier
    flavourId: str | None = None
    nsInstantiationLevelId: str | None = None
    vnfInstance: list[dict[str, Any]] | None = None
    virtualLinkInfo: list[dict[str, Any]] | None = None
    sapInfo: list[dict[str, Any]] | None = None
    nsScaleStatus: list[dict[str, Any]] | None = None
    nsState: NsState
    links: NsInstanceLinks = Field(alias="_links")


NotificationType = Literal[
    "NsLcmOperationOccurrenceNotification",
    "NsIdentifierCreationNotification",
    "NsIdentifierDeletionNotification",
    "NsChangeNotification",
    "NsLcmCapacityShortageNotification",
]
NsLcmOpType = Literal["INSTANTIATE", "SCALE", "UPDATE", "TERMINATE", "HEAL"]
NsLcmOperationState = Literal[
    "PROCESSING",
    "COMPLETED",
    "PARTIALLY_COMPLETED",
    "FAILED_TEMP",
    "FAILED",
    "ROLLING_BACK",
    "ROLLED_BACK",
]


class LcmOpOccNotificationVerbosityType(StrEnum):
    FULL = "FULL"
    SHORT = "SHORT"


class NsInstanceSubscriptionFilter(EtsiModel):
    """Which NS instances a subscription is about (SOL005 table 4.4.1.5-1)."""

    nsdIds: list[Identifier] | None = None
    vnfdIds: list[Identifier] | None = None
    pnfdIds: list[Identifier] | None = None
    nsInstanceIds: list[Identifier] | None = None
    nsInstanceNames: list[str] | None = None

    @model_validator(mode="after")
    def _alternatives(self) -> NsInstanceSubscriptionFilter:
        # Notes 1 and 2: alternatives that "should not be used together".
        for group in (("nsdIds", "vnfdIds", "pnfdIds"), ("nsInstanceIds", "nsInstanceNames")):
            given = [name for name in group if getattr(self, name) is not None]
            if len(given) > 1:
                raise ValueError(f"{' and '.join(given)} are alternatives; give only one")
        return self


class LifecycleChangeNotificationsFilter(EtsiModel):
    """Which NS LCM notifications a subscriber wants (SOL005 table 6.5.3.8-1)."""

    nsInstanceSubscriptionFilter: NsInstanceSubscriptionFilter | None = None
    notificationTypes: list[NotificationType] | None = None
    operationTypes: list[NsLcmOpType] | None = None
    operationStates: list[NsLcmOperationState] | None = None
    nsComponentTypes: list[Literal["VNF", "PNF", "NS"]] | None = None
    lcmOpNameImpactingNsComponent: list[str] | None = None
    lcmOpOccStatusImpactingNsComponent: list[str] | None = None


class LccnSubscriptionRequest(EtsiModel):
    """Body of POST /subscriptions."""

    filter: LifecycleChangeNotificationsFilter | None = None
    callbackUri: str
    authentication: dict[str, Any] | None = None
    verbosity: LcmOpOccNotificationVerbosityType | None = None


class SubscriptionLinks(EtsiModel):
    """Links of a subscription."""

    self_: Link = Field(alias="self")


class LccnSubscription(EtsiModel):
    """The representation of a subscription (without its credentials)."""

    id: Identifier
    filter: LifecycleChangeNotificationsFilter | None = None
    callbackUri: str
    verbosity: LcmOpOccNotificationVerbosityType | None = None
    links: SubscriptionLinks = Field(alias="_links")
