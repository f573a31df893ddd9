"""ETSI NFV-SOL data types that several APIs share: one model each, for every API.

Field names are the ETSI ones (camelCase); every model refuses unknown
attributes, so a misspelt attribute in a request is reported by name.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Identifier = Annotated[str, Field(min_length=1)]
"""An ETSI Identifier: an opaque, non-empty string."""

KeyValuePairs = dict[str, Any]
"""A JSON object whose keys and values the GS leaves open."""


class EtsiModel(BaseModel):
    """Base of the ETSI data types: ETSI field names, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Link(EtsiModel):
    """A link to a resource."""

    href: str


class Checksum(EtsiModel):
    """A digest and the algorithm that produced it."""

    algorithm: str
    hash: str


class ResourceHandle(EtsiModel):
    """Addresses a virtualised resource used by a VNF instance, as the VIM knows it."""

    vimConnectionId: str | None = None
    resourceProviderId: str | None = None
    resourceId: Identifier
    vimLevelResourceType: str | None = None


class VimConnectionInfo(EtsiModel):
    """Parameters to connect to a VIM."""

    vimId: str | None = None
    vimType: str
    interfaceInfo: KeyValuePairs | None = None
    accessInfo: KeyValuePairs | None = None
    extra: KeyValuePairs | None = None


class SubscriptionLinks(EtsiModel):
    """Links of a subscription."""

    self_: Link = Field(alias="self")
