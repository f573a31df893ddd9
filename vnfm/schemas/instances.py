"""The "Individual VNF instance" resource of /vnflcm/v2 (GS NFV-SOL 003)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

from pydantic import Field, model_validator

from sol013.types import EtsiModel, KeyValuePairs, Link, ResourceHandle, VimConnectionInfo
from vnfm.schemas.common import (
    IpAddress,
    IpAddressRange,
    IpAddressType,
    MacAddress,
    ScaleInfo,
    VnfExtCpData,
    VnfOperationalStateType,
    at_least_one,
    check_address_types,
    exactly_one,
)


class InstantiationState(StrEnum):
    """Whether a VNF instance is instantiated."""

    NOT_INSTANTIATED = "NOT_INSTANTIATED"
    INSTANTIATED = "INSTANTIATED"


class IpAddressInfo(EtsiModel):
    """IP addresses assigned to a CP in one subnet, an entry of IpOverEthernetAddressInfo."""

    type: IpAddressType
    addresses: list[IpAddress] | None = None
    isDynamic: bool | None = None
    addressRange: IpAddressRange | None = None
    subnetId: str | None = None

    @model_validator(mode="after")
    def _addresses_or_range(self) -> Self:
        # Note 2 of IpOverEthernetAddressInfo; the ETSI file puts this oneOf on the parent object.
        exactly_one(self, "addresses", "addressRange")
        if (self.isDynamic is None) != (self.addresses is None):
            raise ValueError("isDynamic shall be present if and only if addresses is present")
        check_address_types(self.type, "addresses", self.addresses or ())
        return self


class IpOverEthernetAddressInfo(EtsiModel):
    """Network address assigned to a CP for IP over Ethernet."""

    macAddress: MacAddress | None = None
    segmentationId: str | None = None
    ipAddresses: list[IpAddressInfo] | None = None

    @model_validator(mode="after")
    def _mac_or_ip(self) -> Self:
        at_least_one(self, "macAddress", "ipAddresses")
        return self


class CpProtocolInfo(EtsiModel):
    """Protocol information of a CP instance."""

    layerProtocol: Literal["IP_OVER_ETHERNET"]
    ipOverEthernet: IpOverEthernetAddressInfo | None = None

    @model_validator(mode="after")
    def _ip_over_ethernet(self) -> Self:
        if self.layerProtocol == "IP_OVER_ETHERNET" and self.ipOverEthernet is None:
            raise ValueError(
                "ipOverEthernet shall be present when layerProtocol is IP_OVER_ETHERNET"
            )
        return self


class VnfExtCpInfo(EtsiModel):
    """An external CP of the VNF instance."""

    id: str
    cpdId: str
    cpConfigId: str
    vnfdId: str | None = None
    cpProtocolInfo: list[CpProtocolInfo]
    extLinkPortId: str | None = None
    metadata: KeyValuePairs | None = None
    associatedVnfcCpId: str | None = None
    associatedVipCpId: str | None = None
    associatedVnfVirtualLinkId: str | None = None

    @model_validator(mode="after")
    def _one_association(self) -> Self:
        exactly_one(self, "associatedVnfcCpId", "associatedVipCpId", "associatedVnfVirtualLinkId")
        return self


class VipCpInfo(EtsiModel):
    """A virtual IP CP of the VNF instance."""

    cpInstanceId: str
    cpdId: str
    vnfdId: str | None = None
    vnfExtCpId: str | None = None
    cpProtocolInfo: list[CpProtocolInfo] | None = None
    associatedVnfcCpIds: list[str] | None = None
    vnfLinkPortId: str | None = None
    # The ETSI file also says "type: array" here, beside its $ref to KeyValuePairs (which wins).
    metadata: KeyValuePairs | None = None


class ExtLinkPortInfo(EtsiModel):
    """A link port on an external VL."""

    id: str
    resourceHandle: ResourceHandle
    cpInstanceId: str | None = None
    secondaryCpInstanceId: str | None = None
    trunkResourceId: str | None = None


class ExtVirtualLinkInfo(EtsiModel):
    """An external VL the VNF instance is connected to."""

    id: str
    resourceHandle: ResourceHandle
    extLinkPorts: list[ExtLinkPortInfo] | None = None
    currentVnfExtCpData: list[VnfExtCpData]


class VnfLinkPortInfo(EtsiModel):
    """A link port of an internal VL."""

    id: str
    resourceHandle: ResourceHandle
    cpInstanceId: str | None = None
    cpInstanceType: Literal["VNFC_CP", "EXT_CP"] | None = None
    vipCpInstanceId: str | None = None
    trunkResourceId: str | None = None

    @model_validator(mode="after")
    def _typed_cp(self) -> Self:
        if (self.cpInstanceType is None) != (self.cpInstanceId is None):
            raise ValueError("cpInstanceType shall be present if and only if cpInstanceId is")
        return self


class ExtManagedVirtualLinkInfo(EtsiModel):
    """An externally-managed internal VL of the VNF instance."""

    id: str
    vnfVirtualLinkDescId: str
    vnfdId: str | None = None
    networkResource: ResourceHandle
    vnfLinkPorts: list[VnfLinkPortInfo] | None = None
    extManagedMultisiteVirtualLinkId: str | None = None


class MonitoringParameter(EtsiModel):
    """An active monitoring parameter of the VNF instance."""

    id: str
    vnfdId: str | None = None
    name: str | None = None
    performanceMetric: str


class VnfcCpInfo(EtsiModel):
    """A CP of a VNFC instance, an entry of VnfcResourceInfo.vnfcCpInfo."""

    id: str
    cpdId: str
    vnfExtCpId: str | None = None
    cpProtocolInfo: list[CpProtocolInfo] | None = None
    vnfLinkPortId: str | None = None
    # The ETSI file puts parentCpId beside vnfcCpInfo; its description (and the GS) make it an
    # attribute of the VNFC CP that is a trunk subport.
    parentCpId: str | None = None
    metadata: KeyValuePairs | None = None


class VnfcResourceInfo(EtsiModel):
    """Compute and storage resources used by a VNFC instance."""

    id: str
    vduId: str
    vnfdId: str | None = None
    computeResource: ResourceHandle
    zoneId: str | None = None
    storageResourceIds: list[str] | None = None
    reservationId: str | None = None
    vnfcCpInfo: list[VnfcCpInfo] | None = None
    metadata: KeyValuePairs | None = None


class VnfVirtualLinkResourceInfo(EtsiModel):
    """Network resources used by an internal VL."""

    id: str
    vnfVirtualLinkDescId: str
    vnfdId: str | None = None
    networkResource: ResourceHandle
    zoneId: str | None = None
    reservationId: str | None = None
    vnfLinkPorts: list[VnfLinkPortInfo] | None = None
    metadata: KeyValuePairs | None = None


class VirtualStorageResourceInfo(EtsiModel):
    """A virtualised storage resource used by the VNF instance."""

    id: str
    virtualStorageDescId: str
    vnfdId: str | None = None
    storageResource: ResourceHandle
    zoneId: str | None = None
    reservationId: str | None = None
    metadata: KeyValuePairs | None = None


class VnfcInfo(EtsiModel):
    """A VNFC instance of the VNF instance."""

    id: str
    vduId: str
    vnfcResourceInfoId: str | None = None
    vnfcState: VnfOperationalStateType
    vnfcConfigurableProperties: KeyValuePairs | None = None


class InstantiatedVnfInfo(EtsiModel):
    """What only an instantiated VNF instance has (VnfInstance.instantiatedVnfInfo)."""

    flavourId: str
    vnfState: VnfOperationalStateType
    scaleStatus: list[ScaleInfo] | None = None
    maxScaleLevels: list[ScaleInfo] | None = None
    extCpInfo: list[VnfExtCpInfo] = Field(min_length=1)
    vipCpInfo: list[VipCpInfo] | None = Field(default=None, min_length=1)
    extVirtualLinkInfo: list[ExtVirtualLinkInfo] | None = None
    extManagedVirtualLinkInfo: list[ExtManagedVirtualLinkInfo] | None = None
    monitoringParameters: list[MonitoringParameter] | None = None
    localizationLanguage: str | None = None
    vnfcResourceInfo: list[VnfcResourceInfo] | None = None
    vnfVirtualLinkResourceInfo: list[VnfVirtualLinkResourceInfo] | None = None
    virtualStorageResourceInfo: list[VirtualStorageResourceInfo] | None = None
    # In the GS (and the SOL002 file) but missing from the SOL003 ETSI file.
    vnfcInfo: list[VnfcInfo] | None = None


class VnfInstanceLinks(EtsiModel):
    """Links of a VnfInstance (VnfInstance._links)."""

    self_: Link = Field(alias="self")
    indicators: Link | None = None
    instantiate: Link | None = None
    terminate: Link | None = None
    scale: Link | None = None
    scaleToLevel: Link | None = None
    changeFlavour: Link | None = None
    heal: Link | None = None
    operate: Link | None = None
    changeExtConn: Link | None = None
    createSnapshot: Link | None = None
    revertToSnapshot: Link | None = None
    changeCurrentVnfPkg: Link | None = None


class VnfInstance(EtsiModel):
    """The "Individual VNF instance" resource, in its full representation.

    Attribute selectors (exclude_default etc.) are applied to the dumped JSON, not to the model.
    """

    id: str
    vnfInstanceName: str | None = None
    vnfInstanceDescription: str | None = None
    vnfdId: str
    vnfProvider: str
    vnfProductName: str
    vnfSoftwareVersion: str
    vnfdVersion: str
    vnfConfigurableProperties: KeyValuePairs | None = None
    vimConnectionInfo: dict[str, VimConnectionInfo] | None = None
    instantiationState: InstantiationState
    instantiatedVnfInfo: InstantiatedVnfInfo | None = None
    metadata: KeyValuePairs | None = None
    # The ETSI file leaves extensions untyped ({}); the GS types it KeyValuePairs.
    extensions: KeyValuePairs | None = None
    links: VnfInstanceLinks = Field(alias="_links")

    @model_validator(mode="after")
    def _instantiated_info(self) -> Self:
        instantiated = self.instantiationState is InstantiationState.INSTANTIATED
        if instantiated and self.instantiatedVnfInfo is None:
            raise ValueError("instantiatedVnfInfo shall be present when INSTANTIATED")
        return self


class VnfcInfoModifications(EtsiModel):
    """Changes to one entry of instantiatedVnfInfo.vnfcInfo."""

    id: str
    vnfcConfigurableProperties: KeyValuePairs


class VnfInfoModifications(EtsiModel):
    """Attribute modifications performed by a "Modify VNF information"."""

    vnfInstanceName: str | None = None
    vnfInstanceDescription: str | None = None
    vnfConfigurableProperties: KeyValuePairs | None = None
    metadata: KeyValuePairs | None = None
    extensions: KeyValuePairs | None = None
    vimConnectionInfo: dict[str, VimConnectionInfo] | None = None
    vnfdId: str | None = None
    vnfProvider: str | None = None
    vnfProductName: str | None = None
    vnfSoftwareVersion: str | None = None
    vnfdVersion: str | None = None
    # In the GS (and the SOL002 file) but missing from the SOL003 ETSI file.
    vnfcInfoModifications: list[VnfcInfoModifications] | None = None
