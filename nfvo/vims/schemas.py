"""The project's VIM registration API (`/vims/v1`): request and representation types.

ETSI defines no REST API to register VIMs (it is an Os-Ma-nfvo / management concern; OSM and
Tacker each have their own), so these types are the project's. Attribute names follow the
SOL003 VimConnectionInfo (vimType, interfaceInfo, accessInfo, extra) so a registered VIM reads
like the connection the VNFM gets, and the API follows the SOL013 conventions of the others.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from sol013.types import EtsiModel, KeyValuePairs, Link

API_NAME = "vims"
API_MAJOR = "v1"
API_VERSION = "1.0.0"

# What a response shows for a credential; refused as a value in requests, so a client that
# sends back what it read cannot overwrite a secret with the placeholder.
REDACTED = "<redacted>"

Name = Annotated[str, Field(min_length=1, max_length=255)]


class VimCapacity(EtsiModel):
    """Capacity overrides: what the VIM may give to this NFVO, instead of what it reports.

    Two local VIMs on one host each report the whole host; overrides share it out. The
    allocation ratios replace the service's (NFVO_GRANT_CPU_RATIO, NFVO_GRANT_MEMORY_RATIO).
    """

    vcpu: float | None = Field(default=None, gt=0)
    memoryMib: int | None = Field(default=None, gt=0)
    cpuAllocationRatio: float | None = Field(default=None, gt=0)
    memoryAllocationRatio: float | None = Field(default=None, gt=0)


class VimExtra(EtsiModel):
    """Placement attributes of a VIM."""

    zone: Name | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    capacity: VimCapacity | None = None


class VimRegistrationRequest(EtsiModel):
    """Body of POST /vims/v1/vims."""

    name: Name
    description: str | None = None
    vimType: str = Field(min_length=1)
    interfaceInfo: KeyValuePairs = Field(default_factory=dict)
    accessInfo: KeyValuePairs = Field(default_factory=dict)
    extra: VimExtra | None = None


class VimLinks(EtsiModel):
    self_: Link = Field(alias="self")


class VimInfo(EtsiModel):
    """A registered VIM; credentials in accessInfo are shown as ``<redacted>``."""

    id: str
    name: str
    description: str | None = None
    vimType: str
    interfaceInfo: KeyValuePairs
    accessInfo: KeyValuePairs
    extra: VimExtra
    isDefault: bool
    links: VimLinks = Field(alias="_links")


class VimInfoModifications(EtsiModel):
    """Body of PATCH /vims/v1/vims/{vimId}: a JSON Merge Patch of the registration.

    interfaceInfo, accessInfo and extra merge (null removes a key); vimType cannot change
    (register another VIM instead), which is said with a 422 rather than as an unknown field.
    """

    name: Name | None = None
    description: str | None = None
    vimType: Any = None
    interfaceInfo: KeyValuePairs | None = None
    accessInfo: KeyValuePairs | None = None
    extra: KeyValuePairs | None = None
