"""Bodies of the NS lifecycle task requests and the NsLcmOpOcc (SOL005 clauses 6.5.2-6.5.3).

Attributes this NFVO does not act on (PNFs, nested NSs, SAP data, WAN connections, ...)
are declared so that a request naming them is told which attribute is not supported
(422, `unsupported_attributes`) rather than that it is misspelt.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from nfvo.nslcm.schemas import NsLcmOperationState, NsLcmOpType
from sol013.types import EtsiModel, Identifier, KeyValuePairs, Link

# Complex attributes a list of occurrences leaves out unless asked for (SOL005 6.4.9.3.2).
OP_OCC_DEFAULT_EXCLUDED = (
    "operationParams",
    "changedVnfInfo",
    "error",
    "resourceChanges",
    "lcmCoordinations",
    "warnings",
)


class CancelModeType(StrEnum):
    GRACEFUL = "GRACEFUL"
    FORCEFUL = "FORCEFUL"


class CancelMode(EtsiModel):
    """Body of POST /ns_lcm_op_occs/{id}/cancel."""

    cancelMode: CancelModeType


class ParamsForVnf(EtsiModel):
    """Per VNF profile parameters of an instantiation (SOL005 6.5.3.22)."""

    vnfProfileId: Identifier
    vnfInstanceName: str | None = None
    vnfInstanceDescription: str | None = None
    vnfConfigurableProperties: KeyValuePairs | None = None
    metadata: KeyValuePairs | None = None
    extensions: KeyValuePairs | None = None
    additionalParams: KeyValuePairs | None = None


class InstantiateNsRequest(EtsiModel):
    """Body of POST /ns_instances/{id}/instantiate (SOL005 6.5.2.11).

    VIM selection per VNF profile: ``additionalParamsForNs.vimIds``, an object mapping a
    vnfProfileId to the vimId (VIM registry) its VNF instances go to; profiles not named
    there are placed by the NFVO (constraints and capacity).
    """

    nsFlavourId: Identifier
    nsInstantiationLevelId: Identifier | None = None
    additionalParamsForNs: KeyValuePairs | None = None
    additionalParamsForVnf: list[ParamsForVnf] | None = None
    startTime: str | None = None
    locationConstraints: list[KeyValuePairs] | None = None
    # Not supported (422 when given).
    sapData: list[Any] | None = None
    addpnfData: list[Any] | None = None
    vnfInstanceData: list[Any] | None = None
    nestedNsInstanceData: list[Any] | None = None
    nestedNsLocationConstraints: list[Any] | None = None
    additionalParamsForNestedNs: list[Any] | None = None
    wanConnectionData: list[Any] | None = None
    additionalAffinityOrAntiAffinityRule: list[Any] | None = None


class TerminateNsRequest(EtsiModel):
    """Body of POST /ns_instances/{id}/terminate (SOL005 6.5.2.15)."""

    terminationTime: str | None = None
    terminateNsData: KeyValuePairs | None = None
    terminateVnfData: list[Any] | None = None


class ScaleNsByStepsData(EtsiModel):
    scalingDirection: Literal["SCALE_OUT", "SCALE_IN"]
    aspectId: Identifier
    numberOfSteps: int = Field(default=1, ge=1)


class NsScaleInfo(EtsiModel):
    nsScalingAspectId: Identifier
    nsScaleLevelId: Identifier


class ScaleNsToLevelData(EtsiModel):
    nsInstantiationLevel: Identifier | None = None
    nsScaleInfo: list[NsScaleInfo] | None = None

    @model_validator(mode="after")
    def _one(self) -> ScaleNsToLevelData:
        if (self.nsInstantiationLevel is None) == (self.nsScaleInfo is None):
            raise ValueError("give exactly one of nsInstantiationLevel and nsScaleInfo")
        return self


class ScaleNsData(EtsiModel):
    scaleNsByStepsData: ScaleNsByStepsData | None = None
    scaleNsToLevelData: ScaleNsToLevelData | None = None
    additionalParamsForNs: KeyValuePairs | None = None
    additionalParamsForVnf: list[ParamsForVnf] | None = None
    # Not supported (422 when given).
    vnfInstanceToBeAdded: list[Any] | None = None
    vnfInstanceToBeRemoved: list[Any] | None = None
    locationConstraints: list[Any] | None = None
    nestedNsLocationConstraints: list[Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> ScaleNsData:
        if (self.scaleNsByStepsData is None) == (self.scaleNsToLevelData is None):
            raise ValueError("give exactly one of scaleNsByStepsData and scaleNsToLevelData")
        return self


class VnfScaleInfo(EtsiModel):
    aspectId: Identifier
    scaleLevel: int = Field(ge=0)


class ScaleToLevelData(EtsiModel):
    vnfInstantiationLevelId: Identifier | None = None
    vnfScaleInfo: list[VnfScaleInfo] | None = None
    additionalParams: KeyValuePairs | None = None


class ScaleByStepData(EtsiModel):
    aspectId: Identifier
    numberOfSteps: int = Field(default=1, ge=1)
    additionalParams: KeyValuePairs | None = None


class ScaleVnfData(EtsiModel):
    vnfInstanceId: Identifier
    scaleVnfType: Literal[
        "SCALE_OUT", "SCALE_IN", "SCALE_TO_INSTANTIATION_LEVEL", "SCALE_TO_SCALE_LEVEL(S)"
    ]
    scaleToLevelData: ScaleToLevelData | None = None
    scaleByStepData: ScaleByStepData | None = None

    @model_validator(mode="after")
    def _data(self) -> ScaleVnfData:
        by_step = self.scaleVnfType in ("SCALE_OUT", "SCALE_IN")
        if by_step and self.scaleByStepData is None:
            raise ValueError(f"scaleByStepData is required for {self.scaleVnfType}")
        if not by_step and self.scaleToLevelData is None:
            raise ValueError(f"scaleToLevelData is required for {self.scaleVnfType}")
        return self


class ScaleNsRequest(EtsiModel):
    """Body of POST /ns_instances/{id}/scale (SOL005 6.5.2.14)."""

    scaleType: Literal["SCALE_NS", "SCALE_VNF"]
    scaleNsData: ScaleNsData | None = None
    scaleVnfData: list[ScaleVnfData] | None = None
    scaleTime: str | None = None

    @model_validator(mode="after")
    def _data(self) -> ScaleNsRequest:
        if self.scaleType == "SCALE_NS" and self.scaleNsData is None:
            raise ValueError("scaleNsData is required for scaleType SCALE_NS")
        if self.scaleType == "SCALE_VNF" and not self.scaleVnfData:
            raise ValueError("scaleVnfData is required for scaleType SCALE_VNF")
        return self


class HealVnfData(EtsiModel):
    vnfInstanceId: Identifier
    cause: str | None = None
    additionalParams: KeyValuePairs | None = None
    healScript: str | None = None


class HealNsRequest(EtsiModel):
    """Body of POST /ns_instances/{id}/heal (SOL005 6.5.2.13)."""

    healNsData: KeyValuePairs | None = None
    healVnfData: list[HealVnfData] | None = None

    @model_validator(mode="after")
    def _one(self) -> HealNsRequest:
        if (self.healNsData is None) == (self.healVnfData is None):
            raise ValueError("give exactly one of healNsData and healVnfData")
        return self


class VnfInstanceData(EtsiModel):
    vnfInstanceId: Identifier
    vnfProfileId: Identifier


class ChangeVnfFlavourData(EtsiModel):
    vnfInstanceId: Identifier
    newFlavourId: Identifier
    instantiationLevelId: Identifier | None = None
    extVirtualLinks: list[Any] | None = None
    extManagedVirtualLinks: list[Any] | None = None
    additionalParams: KeyValuePairs | None = None
    extensions: KeyValuePairs | None = None
    vnfConfigurableProperties: KeyValuePairs | None = None


UPDATE_TYPES = (
    "ADD_VNF",
    "REMOVE_VNF",
    "INSTANTIATE_VNF",
    "CHANGE_VNF_DF",
    "OPERATE_VNF",
    "MODIFY_VNF_INFORMATION",
    "CHANGE_EXTERNAL_VNF_CONNECTIVITY",
    "CHANGE_VNFPKG",
    "ADD_SAP",
    "REMOVE_SAP",
    "ADD_NESTED_NS",
    "REMOVE_NESTED_NS",
    "ASSOC_NEW_NSD_VERSION",
    "MOVE_VNF",
    "ADD_VNFFG",
    "REMOVE_VNFFG",
    "UPDATE_VNFFG",
    "CHANGE_NS_DF",
    "ADD_PNF",
    "MODIFY_PNF",
    "REMOVE_PNF",
    "CREATE_VNF_SNAPSHOT",
    "REVERT_VNF_TO_SNAPSHOT",
    "DELETE_VNF_SNAPSHOT_INFO",
    "MODIFY_WAN_CONNECTION_INFO",
    "CREATE_NS_VIRTUAL_LINK",
    "DELETE_NS_VIRTUAL_LINK",
)
SUPPORTED_UPDATE_TYPES = ("ADD_VNF", "REMOVE_VNF", "CHANGE_VNF_DF")


class UpdateNsRequest(EtsiModel):
    """Body of POST /ns_instances/{id}/update (SOL005 6.5.2.12).

    ADD_VNF (addVnfInstance), REMOVE_VNF (removeVnfInstanceId) and CHANGE_VNF_DF
    (changeVnfFlavourData) are supported; the data of the other update types are accepted
    as opaque JSON so the refusal names the updateType.
    """

    model_config = EtsiModel.model_config | {"extra": "allow"}

    updateType: str
    addVnfInstance: list[VnfInstanceData] | None = None
    removeVnfInstanceId: list[Identifier] | None = None
    changeVnfFlavourData: list[ChangeVnfFlavourData] | None = None
    updateTime: str | None = None


class NsLcmOpOccLinks(EtsiModel):
    self_: Link = Field(alias="self")
    nsInstance: Link
    cancel: Link | None = None
    retry: Link | None = None
    rollback: Link | None = None
    continue_: Link | None = Field(default=None, alias="continue")
    fail: Link | None = None


class NsLcmOpOcc(EtsiModel):
    """An "Individual NS LCM operation occurrence" (SOL005 6.5.2.3), for attribute filters."""

    id: Identifier
    operationState: NsLcmOperationState
    stateEnteredTime: str
    nsInstanceId: Identifier
    lcmOperationType: NsLcmOpType
    startTime: str
    isAutomaticInvocation: bool
    operationParams: dict[str, Any] | None = None
    isCancelPending: bool
    cancelMode: CancelModeType | None = None
    error: dict[str, Any] | None = None
    resourceChanges: dict[str, Any] | None = None
    links: NsLcmOpOccLinks = Field(alias="_links")
