"""Data types shared by the SOL003 VNF LCM API (GS NFV-SOL 003, SOL003_def.yaml).

Field names are the ETSI ones (camelCase). Every model refuses unknown fields, so a misspelt
attribute in a request body is reported by name instead of being silently dropped.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, model_validator

from sol013.types import (
    EtsiModel,
    ResourceHandle,
)

API_NAME = "vnflcm"
API_MAJOR = "v2"
# info.version of VNFLifecycleManagement.yaml is "2.3.0-impl:etsi.org:ETSI_NFV_OpenAPI:1"; the
# API version (SOL013) is its semantic-version part.
API_VERSION = "2.3.0"


_MAC = re.compile(r"^[0-9A-Fa-f]{2}(?:[-:][0-9A-Fa-f]{2}){5}(?:[-:][0-9A-Fa-f]{2}){0,2}$")


def _mac_address(value: str) -> str:
    if not _MAC.match(value):
        raise ValueError(f"{value!r} is not a MAC address (hex pairs separated by ':' or '-')")
    return value


def _ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None
    return value


def _problem_details(value: dict[str, Any]) -> dict[str, Any]:
    status, detail = value.get("status"), value.get("detail")
    if not isinstance(status, int) or isinstance(status, bool):
        raise ValueError("a ProblemDetails needs an integer status")
    if not isinstance(detail, str):
        raise ValueError("a ProblemDetails needs a string detail")
    return value


MacAddress = Annotated[str, AfterValidator(_mac_address)]
IpAddress = Annotated[str, AfterValidator(_ip_address)]
DateTime = AwareDatetime  # RFC 3339: an offset is mandatory
ProblemDetails = Annotated[dict[str, Any], AfterValidator(_problem_details)]
"""SOL013 clause 6.3 ProblemDetails as a dict: status and detail mandatory, extensions allowed."""


def given(model: BaseModel, names: Iterable[str]) -> list[str]:
    """The names among ``names`` whose attribute is present (not None) in ``model``."""
    return [name for name in names if getattr(model, name) is not None]


def exactly_one(model: BaseModel, *names: str) -> None:
    """ValueError naming the fields unless exactly one of them is present."""
    present = given(model, names)
    if len(present) != 1:
        found = f" (found {', '.join(present)})" if present else ""
        raise ValueError(f"exactly one of {', '.join(names)} shall be present{found}")


def at_least_one(model: BaseModel, *names: str) -> None:
    """ValueError naming the fields unless at least one of them is present."""
    if not given(model, names):
        raise ValueError(f"at least one of {', '.join(names)} shall be present")


def at_most_one(model: BaseModel, *names: str) -> None:
    """ValueError naming the fields if more than one of them is present."""
    present = given(model, names)
    if len(present) > 1:
        raise ValueError(f"{' and '.join(present)} are alternatives; give only one of them")


class NotificationLink(EtsiModel):
    """A link to a resource in a notification."""

    href: str


class VnfOperationalStateType(StrEnum):
    """Operational state of a VNF instance or VNFC instance."""

    STARTED = "STARTED"
    STOPPED = "STOPPED"


class IpAddressType(StrEnum):
    """Version of IP addresses in an address entry."""

    IPV4 = "IPV4"
    IPV6 = "IPV6"


class IpAddressRange(EtsiModel):
    """An inclusive range of IP addresses."""

    minAddress: IpAddress
    maxAddress: IpAddress


def check_address_types(kind: IpAddressType, field: str, addresses: Iterable[str]) -> None:
    """ValueError naming ``field`` if an address is not of the entry's ``type``."""
    version = 4 if kind is IpAddressType.IPV4 else 6
    for address in addresses:
        if ipaddress.ip_address(address).version != version:
            raise ValueError(f"{field} entry {address!r} is not an {kind} address")


class IpAddressData(EtsiModel):
    """IP addresses to assign per subnet, an entry of IpOverEthernetAddressData.ipAddresses."""

    type: IpAddressType
    fixedAddresses: list[IpAddress] | None = None
    numDynamicAddresses: int | None = None
    addressRange: IpAddressRange | None = None
    subnetId: str | None = None

    @model_validator(mode="after")
    def _one_assignment(self) -> Self:
        # Note 2 of IpOverEthernetAddressData (which says "ipAddressRange" for addressRange); the
        # ETSI file puts this oneOf on the parent object, where it can never hold.
        exactly_one(self, "fixedAddresses", "numDynamicAddresses", "addressRange")
        check_address_types(self.type, "fixedAddresses", self.fixedAddresses or ())
        if self.addressRange is not None:
            bounds = (self.addressRange.minAddress, self.addressRange.maxAddress)
            check_address_types(self.type, "addressRange", bounds)
        return self


class IpOverEthernetAddressData(EtsiModel):
    """Network address data for IP over Ethernet to assign to a CP."""

    macAddress: MacAddress | None = None
    segmentationType: Literal["VLAN", "INHERIT"] | None = None
    segmentationId: str | None = None
    ipAddresses: list[IpAddressData] | None = None

    @model_validator(mode="after")
    def _mac_or_ip(self) -> Self:
        at_least_one(self, "macAddress", "ipAddresses")
        return self


class CpProtocolData(EtsiModel):
    """Network protocol data of a CP."""

    layerProtocol: Literal["IP_OVER_ETHERNET"]
    ipOverEthernet: IpOverEthernetAddressData | None = None

    @model_validator(mode="after")
    def _ip_over_ethernet(self) -> Self:
        if self.layerProtocol == "IP_OVER_ETHERNET" and self.ipOverEthernet is None:
            raise ValueError(
                "ipOverEthernet shall be present when layerProtocol is IP_OVER_ETHERNET"
            )
        return self


class VnfExtCpConfig(EtsiModel):
    """Link port or address data per instance of an external CP."""

    parentCpConfigId: str | None = None
    linkPortId: str | None = None
    createExtLinkPort: bool | None = None
    cpProtocolData: list[CpProtocolData] | None = None

    @model_validator(mode="after")
    def _port_or_protocol(self) -> Self:
        # The ETSI file's anyOf also names netAttDefResourceId, which this version does not define.
        at_least_one(self, "linkPortId", "cpProtocolData")
        return self


class VnfExtCpData(EtsiModel):
    """Configuration of the external CPs created from one CPD."""

    cpdId: str
    # Note 3: a null map value deletes that entry (JSON Merge Patch); the file omits the null.
    cpConfig: dict[str, VnfExtCpConfig | None] | None = None


class VnfLinkPortData(EtsiModel):
    """An externally provided link port on an externally-managed internal VL."""

    vnfLinkPortId: str
    resourceHandle: ResourceHandle


class ExtLinkPortData(EtsiModel):
    """An externally provided link port on an external VL."""

    id: str
    resourceHandle: ResourceHandle
    trunkResourceId: str | None = None


class ExtVirtualLinkData(EtsiModel):
    """An external VL to connect the VNF to."""

    id: str
    vimConnectionId: str | None = None
    resourceProviderId: str | None = None
    resourceId: str
    extCps: list[VnfExtCpData]
    extLinkPorts: list[ExtLinkPortData] | None = None


class ExtManagedVirtualLinkData(EtsiModel):
    """An internal VL managed by the NFVO."""

    id: str
    vnfVirtualLinkDescId: str
    vimConnectionId: str | None = None
    resourceProviderId: str | None = None
    resourceId: str
    vnfLinkPort: list[VnfLinkPortData] | None = None
    extManagedMultisiteVirtualLinkId: str | None = None


class ScaleInfo(EtsiModel):
    """The scale level of a VNF instance in one scaling aspect."""

    aspectId: str
    vnfdId: str | None = None
    # The ETSI file names this attribute "scaleToLevel" (an Identifier) but requires scaleLevel;
    # the GS has scaleLevel, an integer with minimum 0.
    scaleLevel: int = Field(ge=0)
