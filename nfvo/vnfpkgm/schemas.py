"""SOL005 VNF Package Management data types (clause 9.5), as served on /vnfpkgm/v2."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from sol013.types import Checksum, EtsiModel, Link, SubscriptionLinks

API_NAME = "vnfpkgm"
API_MAJOR = "v2"
API_VERSION = "2.4.0"
# Complex attributes left out unless asked for (SOL005 table 9.4.2.3.2-1, exclude_default).
DEFAULT_EXCLUDED = (
    "softwareImages",
    "additionalArtifacts",
    "userDefinedData",
    "checksum",
    "onboardingFailureDetails",
)


class OnboardingState(StrEnum):
    CREATED = "CREATED"
    UPLOADING = "UPLOADING"
    PROCESSING = "PROCESSING"
    ONBOARDED = "ONBOARDED"
    ERROR = "ERROR"


class OperationalState(StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class UsageState(StrEnum):
    IN_USE = "IN_USE"
    NOT_IN_USE = "NOT_IN_USE"


class VnfPackageSoftwareImageInfo(EtsiModel):
    """A software image in, or referenced by, the package."""

    id: str
    name: str
    provider: str
    version: str
    checksum: Checksum
    isEncrypted: bool = False
    containerFormat: str
    diskFormat: str
    createdAt: datetime
    minDisk: int = Field(ge=0)
    minRam: int = Field(ge=0)
    size: int = Field(ge=0)
    userMetadata: dict[str, Any] | None = None
    imagePath: str | None = None
    imageUri: str | None = None


class VnfPackageArtifactInfo(EtsiModel):
    """An artifact other than a software image."""

    artifactPath: str | None = None
    artifactURI: str | None = None
    checksum: Checksum
    isEncrypted: bool = False
    nonManoArtifactSetId: str | None = None
    artifactClassification: Literal["HISTORY", "TESTING", "LICENSE"] | None = None
    metadata: dict[str, Any] | None = None


class VnfPkgLinks(EtsiModel):
    """Links of a VnfPkgInfo."""

    self_: Link = Field(alias="self")
    vnfd: Link
    packageContent: Link


class VnfPkgInfo(EtsiModel):
    """The representation of an "Individual VNF package" resource."""

    id: str
    vnfdId: str | None = None
    vnfProvider: str | None = None
    vnfProductName: str | None = None
    vnfSoftwareVersion: str | None = None
    vnfdVersion: str | None = None
    compatibleSpecificationVersions: list[str] | None = None
    checksum: Checksum | None = None
    packageSecurityOption: Literal["OPTION_1", "OPTION_2"] | None = None
    signingCertificate: str | None = None
    softwareImages: list[VnfPackageSoftwareImageInfo] | None = None
    additionalArtifacts: list[VnfPackageArtifactInfo] | None = None
    onboardingState: OnboardingState
    operationalState: OperationalState
    usageState: UsageState
    vnfmInfo: list[str] | None = None
    userDefinedData: dict[str, Any] | None = None
    onboardingFailureDetails: dict[str, Any] | None = None
    links: VnfPkgLinks = Field(alias="_links")


class CreateVnfPkgInfoRequest(EtsiModel):
    """Body of POST /vnf_packages."""

    userDefinedData: dict[str, Any] | None = None


class VnfPkgInfoModifications(EtsiModel):
    """Body of PATCH /vnf_packages/{id}, and of its 200 response."""

    operationalState: OperationalState | None = None
    userDefinedData: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_present(self) -> VnfPkgInfoModifications:
        if self.operationalState is None and self.userDefinedData is None:
            raise ValueError("at least one of operationalState and userDefinedData is required")
        return self


class Oauth2ClientCredentials(EtsiModel):
    """Client credentials for an OAuth 2.0 protected download."""

    clientId: str
    clientPassword: str
    tokenEndpoint: str


class UploadVnfPackageFromUriRequest(EtsiModel):
    """Body of POST /vnf_packages/{id}/package_content/upload_from_uri."""

    addressInformation: str
    authType: Literal["BASIC", "OAUTH2_CLIENT_CREDENTIALS"] | None = None
    username: str | None = None
    password: str | None = None
    paramsOauth2ClientCredentials: Oauth2ClientCredentials | None = None

    @model_validator(mode="after")
    def _auth_params(self) -> UploadVnfPackageFromUriRequest:
        if self.authType == "BASIC" and (self.username is None or self.password is None):
            raise ValueError("authType BASIC needs username and password")
        if self.authType == "OAUTH2_CLIENT_CREDENTIALS" and not self.paramsOauth2ClientCredentials:
            raise ValueError(
                "authType OAUTH2_CLIENT_CREDENTIALS needs paramsOauth2ClientCredentials"
            )
        return self


NotificationType = Literal["VnfPackageOnboardingNotification", "VnfPackageChangeNotification"]


class VnfProductVersion(EtsiModel):
    """Software version (and optionally VNFD versions) of a product in a filter."""

    vnfSoftwareVersion: str
    vnfdVersions: list[str] | None = None


class VnfProduct(EtsiModel):
    """A product of one provider in a filter."""

    vnfProductName: str
    versions: list[VnfProductVersion] | None = None


class VnfProductsFromProvider(EtsiModel):
    """Products of one provider in a filter.

    The ETSI OpenAPI file names the inner list "vnfProductsFromProviders" while
    the GS text names it "vnfProducts"; both spellings are accepted.
    """

    vnfProvider: str
    vnfProducts: list[VnfProduct] | None = None
    vnfProductsFromProviders: list[VnfProduct] | None = None

    def products(self) -> list[VnfProduct] | None:
        return self.vnfProducts if self.vnfProducts is not None else self.vnfProductsFromProviders


class PkgmNotificationsFilter(EtsiModel):
    """Which package notifications a subscriber wants."""

    notificationTypes: list[NotificationType] | None = None
    vnfProductsFromProviders: list[VnfProductsFromProvider] | None = None
    vnfdId: list[str] | None = None
    vnfPkgId: list[str] | None = None
    operationalState: list[OperationalState] | None = None
    usageState: list[UsageState] | None = None
    vnfmInfo: list[str] | None = None

    @model_validator(mode="after")
    def _one_package_reference(self) -> PkgmNotificationsFilter:
        given = [
            name
            for name in ("vnfProductsFromProviders", "vnfdId", "vnfPkgId")
            if getattr(self, name) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"{' and '.join(given)} are alternatives; give only one of them")
        return self


class PkgmSubscriptionRequest(EtsiModel):
    """Body of POST /subscriptions."""

    filter: PkgmNotificationsFilter | None = None
    callbackUri: str
    authentication: dict[str, Any] | None = None


class PkgmSubscription(EtsiModel):
    """The representation of a subscription (without its credentials)."""

    id: str
    filter: PkgmNotificationsFilter | None = None
    callbackUri: str
    links: SubscriptionLinks = Field(alias="_links")
