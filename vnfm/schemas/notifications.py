"""VNF lifecycle change notifications (GS NFV-SOL 003)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from sol013.types import EtsiModel
from vnfm.schemas.common import (
    DateTime,
    NotificationLink,
    ProblemDetails,
)
from vnfm.schemas.instances import ExtVirtualLinkInfo, VnfInfoModifications
from vnfm.schemas.opocc import (
    AffectedExtLinkPort,
    AffectedVipCp,
    AffectedVirtualLink,
    AffectedVirtualStorage,
    AffectedVnfc,
    LcmOperationStateType,
    LcmOperationType,
    ModificationsTriggeredByVnfPkgChange,
)
from vnfm.schemas.subscriptions import LcmOpOccNotificationVerbosityType

_ERROR_STATES = (
    LcmOperationStateType.FAILED_TEMP,
    LcmOperationStateType.FAILED,
    LcmOperationStateType.ROLLED_BACK,
)


class LccnLinks(EtsiModel):
    """Links to the resources a lifecycle change notification relates to."""

    vnfInstance: NotificationLink
    subscription: NotificationLink
    vnfLcmOpOcc: NotificationLink | None = None


class VnfLcmOperationOccurrenceNotification(EtsiModel):
    """Start or result of a VNF LCM operation occurrence."""

    id: str
    notificationType: Literal["VnfLcmOperationOccurrenceNotification"]
    subscriptionId: str
    timeStamp: DateTime
    notificationStatus: Literal["START", "RESULT"]
    operationState: LcmOperationStateType
    vnfInstanceId: str
    operation: LcmOperationType
    isAutomaticInvocation: bool
    verbosity: LcmOpOccNotificationVerbosityType | None = None  # absent means FULL
    vnfLcmOpOccId: str
    affectedVnfcs: list[AffectedVnfc] | None = None
    affectedVirtualLinks: list[AffectedVirtualLink] | None = None
    affectedExtLinkPorts: list[AffectedExtLinkPort] | None = None
    affectedVirtualStorages: list[AffectedVirtualStorage] | None = None
    changedInfo: VnfInfoModifications | None = None
    affectedVipCps: list[AffectedVipCp] | None = None
    changedExtConnectivity: list[ExtVirtualLinkInfo] | None = None
    modificationsTriggeredByVnfPkgChange: ModificationsTriggeredByVnfPkgChange | None = None
    error: ProblemDetails | None = None
    links: LccnLinks = Field(alias="_links")

    @model_validator(mode="after")
    def _conditional_attributes(self) -> Self:
        in_error = self.operationState in _ERROR_STATES
        if in_error != (self.error is not None):
            raise ValueError(
                "error shall be present if and only if operationState is FAILED_TEMP, FAILED "
                "or ROLLED_BACK"
            )
        full_result = (
            self.notificationStatus == "RESULT"
            and self.verbosity is not LcmOpOccNotificationVerbosityType.SHORT
        )
        change_vnfpkg = self.operation is LcmOperationType.CHANGE_VNFPKG
        conditions = (
            ("changedInfo", full_result and not change_vnfpkg),
            ("changedExtConnectivity", full_result),
            ("modificationsTriggeredByVnfPkgChange", full_result and change_vnfpkg),
        )
        for name, allowed in conditions:
            if not allowed and getattr(self, name) is not None:
                raise ValueError(
                    f"{name} shall be absent in this notification (notificationStatus "
                    f"{self.notificationStatus}, operation {self.operation}, verbosity "
                    f"{self.verbosity or 'FULL'})"
                )
        return self


class VnfIdentifierCreationNotification(EtsiModel):
    """A VNF instance resource (VNF identifier) was created."""

    id: str
    notificationType: Literal["VnfIdentifierCreationNotification"]
    subscriptionId: str
    timeStamp: DateTime
    vnfInstanceId: str
    links: LccnLinks = Field(alias="_links")


class VnfIdentifierDeletionNotification(EtsiModel):
    """A VNF instance resource (VNF identifier) was deleted."""

    id: str
    notificationType: Literal["VnfIdentifierDeletionNotification"]
    subscriptionId: str
    timeStamp: DateTime
    vnfInstanceId: str
    links: LccnLinks = Field(alias="_links")
