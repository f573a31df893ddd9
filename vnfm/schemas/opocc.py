"""The "Individual VNF LCM operation occurrence" resource (GS NFV-SOL 003)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

from pydantic import Field, model_validator

from sol013.types import EtsiModel, KeyValuePairs, Link, ResourceHandle, VimConnectionInfo
from vnfm.schemas.common import (
    DateTime,
    ProblemDetails,
    at_most_one,
)
from vnfm.schemas.instances import ExtVirtualLinkInfo, VnfInfoModifications
from vnfm.schemas.requests import CancelModeType


class LcmOperationType(StrEnum):
    """The VNF LCM operations."""

    INSTANTIATE = "INSTANTIATE"
    SCALE = "SCALE"
    SCALE_TO_LEVEL = "SCALE_TO_LEVEL"
    CHANGE_FLAVOUR = "CHANGE_FLAVOUR"
    TERMINATE = "TERMINATE"
    HEAL = "HEAL"
    OPERATE = "OPERATE"
    CHANGE_EXT_CONN = "CHANGE_EXT_CONN"
    MODIFY_INFO = "MODIFY_INFO"
    CREATE_SNAPSHOT = "CREATE_SNAPSHOT"
    REVERT_TO_SNAPSHOT = "REVERT_TO_SNAPSHOT"
    CHANGE_VNFPKG = "CHANGE_VNFPKG"


class LcmOperationStateType(StrEnum):
    """States of a VNF LCM operation occurrence."""

    STARTING = "STARTING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED_TEMP = "FAILED_TEMP"
    FAILED = "FAILED"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"


ResourceChangeType = Literal["ADDED", "REMOVED", "MODIFIED", "TEMPORARY"]
VirtualLinkChangeType = Literal[
    "ADDED", "REMOVED", "MODIFIED", "TEMPORARY", "LINK_PORT_ADDED", "LINK_PORT_REMOVED"
]
PortChangeType = Literal["ADDED", "MODIFIED", "REMOVED"]
CoordinationEndpointType = Literal["MGMT", "VNF"]


class AffectedVnfc(EtsiModel):
    """A VNFC instance added, removed, modified or temporary in an operation."""

    id: str
    vduId: str
    vnfdId: str | None = None
    changeType: ResourceChangeType
    computeResource: ResourceHandle
    resourceDefinitionId: str | None = None
    zoneId: str | None = None
    metadata: KeyValuePairs | None = None
    affectedVnfcCpIds: list[str] | None = None
    addedStorageResourceIds: list[str] | None = None
    removedStorageResourceIds: list[str] | None = None


class AffectedVirtualLink(EtsiModel):
    """An internal VL (or its link ports) changed by an operation."""

    id: str
    vnfVirtualLinkDescId: str
    vnfdId: str | None = None
    changeType: VirtualLinkChangeType
    networkResource: ResourceHandle
    vnfLinkPortIds: list[str] | None = None
    resourceDefinitionId: str | None = None
    zoneId: str | None = None
    metadata: KeyValuePairs | None = None


class AffectedExtLinkPort(EtsiModel):
    """A link port on an external VL changed by an operation."""

    id: str
    changeType: PortChangeType
    extCpInstanceId: str
    resourceHandle: ResourceHandle
    resourceDefinitionId: str | None = None


class AffectedVirtualStorage(EtsiModel):
    """A virtualised storage resource changed by an operation."""

    id: str
    virtualStorageDescId: str
    vnfdId: str | None = None
    changeType: ResourceChangeType
    storageResource: ResourceHandle
    resourceDefinitionId: str | None = None
    zoneId: str | None = None
    metadata: KeyValuePairs | None = None


class AffectedVipCp(EtsiModel):
    """A virtual IP CP changed by an operation."""

    cpInstanceId: str
    cpdId: str
    vnfdId: str | None = None
    changeType: PortChangeType


class ResourceChanges(EtsiModel):
    """Cumulative changes to virtualised resources so far (VnfLcmOpOcc.resourceChanges)."""

    affectedVnfcs: list[AffectedVnfc] | None = None
    affectedVirtualLinks: list[AffectedVirtualLink] | None = None
    affectedExtLinkPorts: list[AffectedExtLinkPort] | None = None
    affectedVirtualStorages: list[AffectedVirtualStorage] | None = None


class ModificationsTriggeredByVnfPkgChange(EtsiModel):
    """VnfInstance attributes changed by a "Change current VNF package"."""

    vnfConfigurableProperties: KeyValuePairs | None = None
    metadata: KeyValuePairs | None = None
    extensions: KeyValuePairs | None = None
    vnfdId: str | None = None
    vnfProvider: str | None = None
    vnfProductName: str | None = None
    vnfSoftwareVersion: str | None = None
    vnfdVersion: str | None = None
    vimConnectionInfo: dict[str, VimConnectionInfo] | None = None


class LcmCoordination(EtsiModel):
    """An LCM coordination action of the operation (VnfLcmOpOcc.lcmCoordinations)."""

    id: str
    coordinationActionName: str
    coordinationResult: Literal["CONTINUE", "ABORT", "CANCELLED"] | None = None
    startTime: DateTime
    endTime: DateTime | None = None
    delay: DateTime | None = None
    endpointType: CoordinationEndpointType


class RejectedLcmCoordination(EtsiModel):
    """An LCM coordination action rejected with 503 (VnfLcmOpOcc.rejectedLcmCoordinations)."""

    coordinationActionName: str
    rejectionTime: DateTime
    endpointType: CoordinationEndpointType
    delay: DateTime


class VnfLcmOpOccLinks(EtsiModel):
    """Links of a VnfLcmOpOcc (VnfLcmOpOcc._links)."""

    self_: Link = Field(alias="self")
    vnfInstance: Link
    grant: Link | None = None
    cancel: Link | None = None
    retry: Link | None = None
    rollback: Link | None = None
    fail: Link | None = None
    vnfSnapshot: Link | None = None


class VnfLcmOpOcc(EtsiModel):
    """A VNF LCM operation occurrence, in its full representation.

    Attribute selectors (exclude_default etc.) are applied to the dumped JSON, not to the model.
    """

    id: str
    operationState: LcmOperationStateType
    stateEnteredTime: DateTime
    startTime: DateTime
    vnfInstanceId: str
    grantId: str | None = None
    operation: LcmOperationType
    isAutomaticInvocation: bool
    # The request body of the operation (for MODIFY_INFO, a VnfInfoModifications), as a dict.
    operationParams: KeyValuePairs | None = None
    isCancelPending: bool
    cancelMode: CancelModeType | None = None
    error: ProblemDetails | None = None
    resourceChanges: ResourceChanges | None = None
    changedInfo: VnfInfoModifications | None = None
    affectedVipCps: list[AffectedVipCp] | None = None
    changedExtConnectivity: list[ExtVirtualLinkInfo] | None = None
    modificationsTriggeredByVnfPkgChange: ModificationsTriggeredByVnfPkgChange | None = None
    vnfSnapshotInfoId: str | None = None
    lcmCoordinations: list[LcmCoordination] | None = None
    rejectedLcmCoordinations: list[RejectedLcmCoordination] | None = None
    warnings: list[str] | None = None
    links: VnfLcmOpOccLinks = Field(alias="_links")

    @model_validator(mode="after")
    def _conditional_attributes(self) -> Self:
        # Note 2: "not more than one of" the two; the ETSI file's oneOf wrongly demands one.
        at_most_one(self, "changedInfo", "modificationsTriggeredByVnfPkgChange")
        if (
            self.modificationsTriggeredByVnfPkgChange is not None
            and self.operation is not LcmOperationType.CHANGE_VNFPKG
        ):
            raise ValueError(
                "modificationsTriggeredByVnfPkgChange shall be absent unless operation is "
                "CHANGE_VNFPKG"
            )
        if self.isCancelPending != (self.cancelMode is not None):
            raise ValueError("cancelMode shall be present if and only if isCancelPending is true")
        failed = (LcmOperationStateType.FAILED_TEMP, LcmOperationStateType.FAILED)
        if self.operationState in failed and self.error is None:
            raise ValueError(f"error shall be present when operationState is {self.operationState}")
        return self
