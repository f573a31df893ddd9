"""Request bodies of /vnflcm/v2 (GS NFV-SOL 003).

Unknown fields are refused, so a misspelt attribute is answered with a 400 that names it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from sol013.types import EtsiModel, KeyValuePairs, VimConnectionInfo
from vnfm.schemas.common import (
    ExtManagedVirtualLinkData,
    ExtVirtualLinkData,
    ScaleInfo,
    VnfOperationalStateType,
    exactly_one,
)
from vnfm.schemas.instances import VnfcInfoModifications


class ScaleType(StrEnum):
    """Direction of a "Scale VNF" operation."""

    SCALE_OUT = "SCALE_OUT"
    SCALE_IN = "SCALE_IN"


class TerminationType(StrEnum):
    """How a VNF instance is terminated."""

    FORCEFUL = "FORCEFUL"
    GRACEFUL = "GRACEFUL"


class StopType(StrEnum):
    """How a VNF instance is stopped by "Operate VNF"."""

    FORCEFUL = "FORCEFUL"
    GRACEFUL = "GRACEFUL"


class CancelModeType(StrEnum):
    """How an ongoing LCM operation occurrence is cancelled."""

    GRACEFUL = "GRACEFUL"
    FORCEFUL = "FORCEFUL"


class CreateVnfRequest(EtsiModel):
    """Body of POST /vnf_instances ("Create VNF identifier")."""

    vnfdId: str
    vnfInstanceName: str | None = None
    vnfInstanceDescription: str | None = None
    metadata: KeyValuePairs | None = None


class InstantiateVnfRequest(EtsiModel):
    """Body of POST /vnf_instances/{id}/instantiate."""

    flavourId: str
    instantiationLevelId: str | None = None
    extVirtualLinks: list[ExtVirtualLinkData] | None = None
    extManagedVirtualLinks: list[ExtManagedVirtualLinkData] | None = None
    vimConnectionInfo: dict[str, VimConnectionInfo] | None = None
    localizationLanguage: str | None = None
    additionalParams: KeyValuePairs | None = None
    extensions: KeyValuePairs | None = None
    vnfConfigurableProperties: KeyValuePairs | None = None


class ScaleVnfRequest(EtsiModel):
    """Body of POST /vnf_instances/{id}/scale."""

    type: ScaleType
    aspectId: str
    numberOfSteps: int = Field(default=1, ge=1)  # "a positive number", default 1
    additionalParams: KeyValuePairs | None = None


class ScaleVnfToLevelRequest(EtsiModel):
    """Body of POST /vnf_instances/{id}/scale_to_level."""

    instantiationLevelId: str | None = None
    scaleInfo: list[ScaleInfo] | None = None
    additionalParams: KeyValuePairs | None = None

    @model_validator(mode="after")
    def _level_or_scale_info(self) -> Self:
        exactly_one(self, "instantiationLevelId", "scaleInfo")
        return self


class ChangeVnfFlavourRequest(EtsiModel):
    """Body of POST /vnf_instances/{id}/change_flavour."""

    newFlavourId: str
    instantiationLevelId: str | None = None
    extVirtualLinks: list[ExtVirtualLinkData] | None = None
    extManagedVirtualLinks: list[ExtManagedVirtualLinkData] | None = None
    vimConnectionInfo: dict[str, VimConnectionInfo] | None = None
    additionalParams: KeyValuePairs | None = None
    extensions: KeyValuePairs | None = None
    vnfConfigurableProperties: KeyValuePairs | None = None


class TerminateVnfRequest(EtsiModel):
    """Body of POST /vnf_instances/{id}/terminate."""

    terminationType: TerminationType
    gracefulTerminationTimeout: int | None = None  # seconds
    additionalParams: KeyValuePairs | None = None

    @model_validator(mode="after")
    def _timeout_only_when_graceful(self) -> Self:
        if (
            self.gracefulTerminationTimeout is not None
            and self.terminationType is not TerminationType.GRACEFUL
        ):
            raise ValueError(
                "gracefulTerminationTimeout is only applicable when terminationType is GRACEFUL"
            )
        return self


class HealVnfRequest(EtsiModel):
    """Body of POST /vnf_instances/{id}/heal.

    SOL003's HealVnfRequest has no vnfcInstanceId or healScript (those are SOL002's, on
    Ve-Vnfm); VNF-specific healing input travels in additionalParams.
    """

    cause: str | None = None
    additionalParams: KeyValuePairs | None = None


class OperateVnfRequest(EtsiModel):
    """Body of POST /vnf_instances/{id}/operate."""

    changeStateTo: VnfOperationalStateType
    stopType: StopType | None = None
    gracefulStopTimeout: int | None = None  # seconds
    additionalParams: KeyValuePairs | None = None

    @model_validator(mode="after")
    def _stop_parameters(self) -> Self:
        # The note of OperateVnfRequest; an absent stopType counts as FORCEFUL.
        if self.changeStateTo is VnfOperationalStateType.STARTED:
            for name in ("stopType", "gracefulStopTimeout"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} shall be absent when changeStateTo is STARTED")
        elif self.stopType is StopType.GRACEFUL:
            if self.gracefulStopTimeout is None:
                raise ValueError("gracefulStopTimeout shall be present when stopType is GRACEFUL")
        elif self.gracefulStopTimeout is not None:
            raise ValueError("gracefulStopTimeout shall be absent unless stopType is GRACEFUL")
        return self


class ChangeExtVnfConnectivityRequest(EtsiModel):
    """Body of POST /vnf_instances/{id}/change_ext_conn."""

    extVirtualLinks: list[ExtVirtualLinkData]
    vimConnectionInfo: dict[str, VimConnectionInfo] | None = None
    additionalParams: KeyValuePairs | None = None


class ChangeCurrentVnfPkgRequest(EtsiModel):
    """Body of POST /vnf_instances/{id}/change_vnfpkg."""

    vnfdId: str
    extVirtualLinks: list[ExtVirtualLinkData] | None = None
    extManagedVirtualLinks: list[ExtManagedVirtualLinkData] | None = None
    vimConnectionInfo: dict[str, VimConnectionInfo] | None = None
    additionalParams: KeyValuePairs | None = None
    extensions: KeyValuePairs | None = None
    vnfConfigurableProperties: KeyValuePairs | None = None


class VnfInfoModificationRequest(EtsiModel):
    """Body of PATCH /vnf_instances/{id} (a JSON Merge Patch: null removes an attribute).

    Dump it with ``exclude_unset=True`` to keep the explicit nulls.
    """

    vnfInstanceName: str | None = None
    vnfInstanceDescription: str | None = None
    # The ETSI file says vnfPkgId, an attribute VnfInstance no longer has; the GS (and the
    # SOL002 file, and VnfInfoModifications) modify vnfdId.
    vnfdId: str | None = None
    vnfConfigurableProperties: KeyValuePairs | None = None
    metadata: KeyValuePairs | None = None
    extensions: KeyValuePairs | None = None
    # Merge patch of the map: a null value removes that VIM connection.
    vimConnectionInfo: dict[str, VimConnectionInfo | None] | None = None
    # In the GS (and the SOL002 file) but missing from the SOL003 ETSI file.
    vnfcInfoModifications: list[VnfcInfoModifications] | None = None

    @model_validator(mode="after")
    def _vnfd_id_not_null(self) -> Self:
        if "vnfdId" in self.model_fields_set and self.vnfdId is None:
            raise ValueError('vnfdId: the value "null" is not permitted')
        return self


class CancelMode(EtsiModel):
    """Body of POST /vnf_lcm_op_occs/{id}/cancel."""

    cancelMode: CancelModeType
