"""SOL005 NSD Management data types (clause 5.5), as served on /nsd/v2."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sol013.types import Checksum, EtsiModel, Identifier, KeyValuePairs, Link, SubscriptionLinks

API_NAME = "nsd"
API_MAJOR = "v2"
API_VERSION = "2.3.0"
# Complex attributes left out unless asked for (SOL005 clause 5.4.2.3.2, exclude_default).
DEFAULT_EXCLUDED = ("userDefinedData", "onboardingFailureDetails")


class NsdOnboardingState(StrEnum):
    CREATED = "CREATED"
    UPLOADING = "UPLOADING"
    PROCESSING = "PROCESSING"
    ONBOARDED = "ONBOARDED"
    ERROR = "ERROR"


class NsdOperationalState(StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class NsdUsageState(StrEnum):
    IN_USE = "IN_USE"
    NOT_IN_USE = "NOT_IN_USE"


class NsdArchiveArtifactInfo(EtsiModel):
    """A file of the NSD archive other than the NSD itself, its manifest and signatures."""

    artifactPath: str
    checksum: Checksum
    metadata: KeyValuePairs | None = None


class NsdLinks(EtsiModel):
    """Links of an NsdInfo."""

    self_: Link = Field(alias="self")
    nsd_content: Link


class NsdInfo(EtsiModel):
    """The representation of an "Individual NS descriptor" resource."""

    id: Identifier
    nsdId: str | None = None
    nsdName: str | None = None
    nsdVersion: str | None = None
    nsdDesigner: str | None = None
    nsdInvariantId: str | None = None
    vnfPkgIds: list[str] | None = None
    pnfdInfoIds: list[str] | None = None
    nestedNsdInfoIds: list[str] | None = None
    archiveSecurityOption: Literal["OPTION_1", "OPTION_2"] | None = None
    signingCertificate: str | None = None
    artifacts: list[NsdArchiveArtifactInfo] | None = None
    nsdOnboardingState: NsdOnboardingState
    onboardingFailureDetails: dict[str, Any] | None = None
    nsdOperationalState: NsdOperationalState
    nsdUsageState: NsdUsageState
    userDefinedData: KeyValuePairs | None = None
    links: NsdLinks = Field(alias="_links")


class CreateNsdInfoRequest(EtsiModel):
    """Body of POST /ns_descriptors."""

    userDefinedData: KeyValuePairs | None = None


class NsdInfoModifications(EtsiModel):
    """Body of PATCH /ns_descriptors/{id}, and of its 200 response.

    userDefinedData is KeyValuePairs, as the GS defines it and as NsdInfo has it
    (the ETSI OpenAPI file declares an array of KeyValuePairs).
    """

    nsdOperationalState: NsdOperationalState | None = None
    userDefinedData: KeyValuePairs | None = None

    @model_validator(mode="after")
    def _one_present(self) -> NsdInfoModifications:
        if self.nsdOperationalState is None and self.userDefinedData is None:
            raise ValueError("at least one of nsdOperationalState and userDefinedData is required")
        return self


NotificationType = Literal[
    "NsdOnBoardingNotification",
    "NsdOnboardingFailureNotification",
    "NsdChangeNotification",
    "NsdDeletionNotification",
]
PnfdNotificationType = Literal[
    "PnfdOnBoardingNotification",
    "PnfdOnBoardingFailureNotification",
    "PnfdDeletionNotification",
]
# The notification type names are spelled as the filter's notificationTypes
# enumeration spells them (SOL005 table 5.5.3.2-1, note 1: "spelled exactly as
# the names of the notification types"), which is what the NFVO sends in
# notificationType. The GS and the ETSI files also use the other capitalisation
# of "OnBoarding" here and there; a filter naming it is read as the same type.
_TYPE_ALIASES = {
    "NsdOnboardingNotification": "NsdOnBoardingNotification",
    "NsdOnBoardingFailureNotification": "NsdOnboardingFailureNotification",
    "PnfdOnboardingNotification": "PnfdOnBoardingNotification",
    "PnfdOnboardingFailureNotification": "PnfdOnBoardingFailureNotification",
}


class NsdmNotificationsFilter(EtsiModel):
    """Which NSD management notifications a subscriber wants (SOL005 table 5.5.3.2-1)."""

    notificationTypes: list[NotificationType | PnfdNotificationType] | None = None
    nsdInfoId: list[str] | None = None
    nsdId: list[str] | None = None
    nsdName: list[str] | None = None
    nsdVersion: list[str] | None = None
    nsdDesigner: list[str] | None = None
    nsdInvariantId: list[str] | None = None
    vnfPkgIds: list[str] | None = None
    pnfdInfoIds: list[str] | None = None
    nestedNsdInfoIds: list[str] | None = None
    nsdOnboardingState: list[NsdOnboardingState] | None = None
    nsdOperationalState: list[NsdOperationalState] | None = None
    nsdUsageState: list[NsdUsageState] | None = None
    pnfdId: list[str] | None = None
    pnfdName: list[str] | None = None
    pnfdVersion: list[str] | None = None
    pnfdProvider: list[str] | None = None
    pnfdInvariantId: list[str] | None = None
    pnfdOnboardingState: list[str] | None = None
    pnfdUsageState: list[NsdUsageState] | None = None

    @field_validator("notificationTypes", mode="before")
    @classmethod
    def _canonical_types(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [_TYPE_ALIASES.get(v, v) if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _alternatives(self) -> NsdmNotificationsFilter:
        # Notes 2 and 3: each pair are alternatives; "should not be used both".
        for first, second in (("nsdId", "nsdInfoId"), ("pnfdId", "pnfdInfoIds")):
            if getattr(self, first) is not None and getattr(self, second) is not None:
                raise ValueError(f"{first} and {second} are alternatives; give only one of them")
        return self

    def names_pnfds(self) -> bool:
        """Whether any PNFD attribute is given: then no NSD notification can match."""
        return any(
            getattr(self, name) is not None
            for name in (
                "pnfdInfoIds",
                "pnfdId",
                "pnfdName",
                "pnfdVersion",
                "pnfdProvider",
                "pnfdInvariantId",
                "pnfdOnboardingState",
                "pnfdUsageState",
            )
        )


class NsdmSubscriptionRequest(EtsiModel):
    """Body of POST /subscriptions."""

    filter: NsdmNotificationsFilter | None = None
    callbackUri: str
    authentication: dict[str, Any] | None = None


class NsdmSubscription(EtsiModel):
    """The representation of a subscription (without its credentials)."""

    id: str
    filter: NsdmNotificationsFilter | None = None
    callbackUri: str
    links: SubscriptionLinks = Field(alias="_links")
