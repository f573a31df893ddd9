"""SOL003 VNF Lifecycle Operation Granting data types (clause 9.5), as served on /grant/v1.

Field names are the ETSI ones (camelCase, ``_links``). Requests refuse unknown attributes, so a
misspelt attribute is a 400 rather than silently ignored.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from sol013.types import EtsiModel, Identifier, Link, ResourceHandle, VimConnectionInfo

API_NAME = "grant"
API_MAJOR = "v1"
# info.version of VNFLifecycleOperationGranting.yaml (SOL003 V3.7.1), without the "-impl:" suffix.
API_VERSION = "1.7.0"

Id = Identifier


class GrantedLcmOperationType(StrEnum):
    INSTANTIATE = "INSTANTIATE"
    SCALE = "SCALE"
    SCALE_TO_LEVEL = "SCALE_TO_LEVEL"
    CHANGE_FLAVOUR = "CHANGE_FLAVOUR"
    TERMINATE = "TERMINATE"
    HEAL = "HEAL"
    OPERATE = "OPERATE"
    CHANGE_EXT_CONN = "CHANGE_EXT_CONN"
    CHANGE_VNFPKG = "CHANGE_VNFPKG"
    CREATE_SNAPSHOT = "CREATE_SNAPSHOT"
    REVERT_TO_SNAPSHOT = "REVERT_TO_SNAPSHOT"


class ResourceType(StrEnum):
    COMPUTE = "COMPUTE"
    VL = "VL"
    STORAGE = "STORAGE"
    LINKPORT = "LINKPORT"


class SnapshotResourceDefinition(EtsiModel):
    """A resource defined by a VNF snapshot rather than by the VNFD."""

    vnfSnapshotId: Id
    vnfcSnapshotId: str | None = None
    storageSnapshotId: str | None = None
    snapshotResource: ResourceHandle | None = None


class ResourceDefinition(EtsiModel):
    """An existing or proposed resource of the VNF (table 9.5.3.2-1)."""

    id: Id
    type: ResourceType
    vduId: str | None = None
    vnfdId: str | None = None
    resourceTemplateId: Id
    secondaryResourceTemplateId: str | None = None
    resource: ResourceHandle | None = None
    snapshotResDef: SnapshotResourceDefinition | None = None


class ConstraintResourceRef(EtsiModel):
    """A resource named in a constraint: a VIM-level id, or a ResourceDefinition of the request."""

    idType: Literal["RES_MGMT", "GRANT"]
    resourceId: Id
    vimConnectionId: str | None = None
    resourceProviderId: str | None = None


class PlacementConstraint(EtsiModel):
    """An affinity or anti-affinity rule between resources."""

    affinityOrAntiAffinity: Literal["AFFINITY", "ANTI_AFFINITY"]
    scope: Literal["NFVI_POP", "ZONE", "ZONE_GROUP", "NFVI_NODE"]
    resource: list[ConstraintResourceRef] = Field(min_length=2)
    fallbackBestEffort: bool | None = None


class VimConstraint(EtsiModel):
    """Resources that must be managed through one VIM connection."""

    sameResourceGroup: bool | None = None
    resource: list[ConstraintResourceRef] = Field(min_length=2)


class GrantRequestLinks(EtsiModel):
    vnfLcmOpOcc: Link
    vnfInstance: Link


class GrantRequest(EtsiModel):
    """What the VNFM asks the NFVO to grant (table 9.5.2.2-1)."""

    vnfInstanceId: Id
    vnfLcmOpOccId: Id
    vnfdId: Id
    dstVnfdId: str | None = None
    flavourId: str | None = None
    operation: GrantedLcmOperationType
    isAutomaticInvocation: bool
    instantiationLevelId: str | None = None
    addResources: list[ResourceDefinition] | None = None
    tempResources: list[ResourceDefinition] | None = None
    removeResources: list[ResourceDefinition] | None = None
    updateResources: list[ResourceDefinition] | None = None
    placementConstraints: list[PlacementConstraint] | None = None
    vimConstraints: list[VimConstraint] | None = None
    additionalParams: dict[str, Any] | None = None
    links: GrantRequestLinks = Field(alias="_links")

    def resource_definitions(self) -> list[ResourceDefinition]:
        return [
            *(self.addResources or ()),
            *(self.tempResources or ()),
            *(self.removeResources or ()),
            *(self.updateResources or ()),
        ]

    @model_validator(mode="after")
    def _consistent(self) -> GrantRequest:
        instantiate = self.operation is GrantedLcmOperationType.INSTANTIATE
        # Note 2 of table 9.5.2.2-1.
        if instantiate and not self.addResources and self.instantiationLevelId is None:
            raise ValueError("an INSTANTIATE grant needs addResources or instantiationLevelId")
        if self.instantiationLevelId is not None and not instantiate:
            raise ValueError("instantiationLevelId may only be given for operation INSTANTIATE")
        if (self.dstVnfdId is not None) != (
            self.operation is GrantedLcmOperationType.CHANGE_VNFPKG
        ):
            raise ValueError("dstVnfdId is given if and only if the operation is CHANGE_VNFPKG")
        seen: set[str] = set()
        for definition in self.resource_definitions():
            if definition.id in seen:
                raise ValueError(f"resource definition id {definition.id!r} is used twice")
            seen.add(definition.id)
        for constraint in [*(self.placementConstraints or ()), *(self.vimConstraints or ())]:
            for ref in constraint.resource:
                if ref.idType == "GRANT" and ref.resourceId not in seen:
                    raise ValueError(
                        f"a constraint names resource definition {ref.resourceId!r}, "
                        "which the request does not define"
                    )
        return self


class ZoneInfo(EtsiModel):
    id: str
    zoneId: str
    vimConnectionId: str | None = None
    resourceProviderId: str | None = None


class ZoneGroupInfo(EtsiModel):
    zoneId: list[str]


class GrantInfo(EtsiModel):
    """A resource whose addition, update or removal was granted."""

    resourceDefinitionId: str
    reservationId: str | None = None
    vimConnectionId: str | None = None
    resourceProviderId: str | None = None
    zoneId: str | None = None
    resourceGroupId: str | None = None


class VimComputeResourceFlavour(EtsiModel):
    vimConnectionId: str | None = None
    resourceProviderId: str | None = None
    vnfdVirtualComputeDescId: str
    vimFlavourId: str


class VimSoftwareImage(EtsiModel):
    vimConnectionId: str | None = None
    resourceProviderId: str | None = None
    vnfdSoftwareImageId: str
    vimSoftwareImageId: str


class VimSnapshotResource(EtsiModel):
    vimConnectionId: str | None = None
    resourceProviderId: str | None = None
    vnfSnapshotId: str
    vnfcSnapshotId: str
    storageSnapshotId: str | None = None
    vimSnapshotResourceId: str


class VimAssets(EtsiModel):
    computeResourceFlavours: list[VimComputeResourceFlavour] | None = None
    softwareImages: list[VimSoftwareImage] | None = None
    snapshotResources: list[VimSnapshotResource] | None = None


class GrantLinks(EtsiModel):
    self_: Link = Field(alias="self")
    vnfLcmOpOcc: Link
    vnfInstance: Link


class Grant(EtsiModel):
    """The NFVO's decision (table 9.5.2.3-1): where and with which VIM the VNFM may act."""

    id: str
    vnfInstanceId: str
    vnfLcmOpOccId: str
    vimConnectionInfo: dict[str, VimConnectionInfo] | None = None
    zones: list[ZoneInfo] | None = None
    zoneGroups: list[ZoneGroupInfo] | None = None
    addResources: list[GrantInfo] | None = None
    tempResources: list[GrantInfo] | None = None
    removeResources: list[GrantInfo] | None = None
    updateResources: list[GrantInfo] | None = None
    vimAssets: VimAssets | None = None
    extVirtualLinks: list[dict[str, Any]] | None = None
    extManagedVirtualLinks: list[dict[str, Any]] | None = None
    additionalParams: dict[str, Any] | None = None
    links: GrantLinks = Field(alias="_links")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
