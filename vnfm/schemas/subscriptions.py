"""Subscriptions to VNF lifecycle change notifications (GS NFV-SOL 003)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

from pydantic import Field, model_validator

from sol013.notify_auth import SubscriptionAuthentication
from sol013.types import EtsiModel, Link
from vnfm.schemas.common import (
    at_most_one,
)
from vnfm.schemas.opocc import LcmOperationStateType, LcmOperationType

LcmNotificationType = Literal[
    "VnfLcmOperationOccurrenceNotification",
    "VnfIdentifierCreationNotification",
    "VnfIdentifierDeletionNotification",
]


class LcmOpOccNotificationVerbosityType(StrEnum):
    """How much change detail operation occurrence notifications carry."""

    FULL = "FULL"
    SHORT = "SHORT"


class VnfProductVersion(EtsiModel):
    """A software version (and optionally VNFD versions) to match in a filter."""

    vnfSoftwareVersion: str
    vnfdVersions: list[str] | None = None


class VnfProduct(EtsiModel):
    """A product of one provider to match in a filter."""

    vnfProductName: str
    versions: list[VnfProductVersion] | None = None


class VnfProductsFromProvider(EtsiModel):
    """Products of one provider to match in a filter."""

    vnfProvider: str
    vnfProducts: list[VnfProduct] | None = None


class VnfInstanceSubscriptionFilter(EtsiModel):
    """Criteria to match VNF instances."""

    vnfdIds: list[str] | None = None
    vnfProductsFromProviders: list[VnfProductsFromProvider] | None = None
    vnfInstanceIds: list[str] | None = None
    vnfInstanceNames: list[str] | None = None

    @model_validator(mode="after")
    def _alternatives(self) -> Self:
        # Notes 1 and 2: two pairs of alternatives, all optional. The ETSI file's anyOf/oneOf
        # names "vnfdId" (the attribute is vnfdIds) and requires one of each pair.
        at_most_one(self, "vnfdIds", "vnfProductsFromProviders")
        at_most_one(self, "vnfInstanceIds", "vnfInstanceNames")
        return self


class LifecycleChangeNotificationsFilter(EtsiModel):
    """Which lifecycle change notifications a subscriber wants."""

    vnfInstanceSubscriptionFilter: VnfInstanceSubscriptionFilter | None = None
    notificationTypes: list[LcmNotificationType] | None = None
    operationTypes: list[LcmOperationType] | None = None
    operationStates: list[LcmOperationStateType] | None = None

    @model_validator(mode="after")
    def _occurrence_criteria(self) -> Self:
        # operationTypes/operationStates only select VnfLcmOperationOccurrenceNotification; an
        # absent notificationTypes matches every type, including that one.
        types = self.notificationTypes
        if types is not None and "VnfLcmOperationOccurrenceNotification" not in types:
            for name in ("operationTypes", "operationStates"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{name} shall be absent unless notificationTypes contains "
                        "VnfLcmOperationOccurrenceNotification"
                    )
        return self


class LccnSubscriptionRequest(EtsiModel):
    """Body of POST /subscriptions."""

    filter: LifecycleChangeNotificationsFilter | None = None
    callbackUri: str
    authentication: SubscriptionAuthentication | None = None
    verbosity: LcmOpOccNotificationVerbosityType | None = None  # absent means FULL


class SubscriptionLinks(EtsiModel):
    """Links of an LccnSubscription."""

    self_: Link = Field(alias="self")


class LccnSubscription(EtsiModel):
    """The "Individual subscription" resource (never shows the credentials)."""

    id: str
    filter: LifecycleChangeNotificationsFilter | None = None
    callbackUri: str
    verbosity: LcmOpOccNotificationVerbosityType
    links: SubscriptionLinks = Field(alias="_links")
