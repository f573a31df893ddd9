"""VIM types, the connection parameters each one takes, and the adapter of a registered VIM.

vimType values follow the ETSI NFV registry of VIM-related information (SOL003 annex C):
``ETSINFV.OPENSTACK_KEYSTONE.V_3`` and ``ETSINFV.KUBERNETES.V_1``; the project's own local lab
VIM, which the registry does not know, is ``NFVMANO.LOCAL.V_1`` (same pattern, the project's
prefix). Attribute names of interfaceInfo and accessInfo are the registry's where it has them
(``endpoint``, ``trustedCertificates``, ``username``, ``project``, ``bearer_token``,
``ssl_ca_cert``, ...).

Every attribute that is a credential is a `SecretStr` in these models: that is how the NFVO
knows what to encrypt at rest and to leave out of its responses (`secret_fields`).

The VNFM reaches VIMs by id only, through a `VimResolver` (the NFVO's registry implements it),
so it never sees credentials stored elsewhere than in the adapter it is handed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from vim_adapters.errors import VimFatalError
from vim_adapters.interface import VimAdapter

LOCAL = "NFVMANO.LOCAL.V_1"
KUBERNETES = "ETSINFV.KUBERNETES.V_1"
OPENSTACK = "ETSINFV.OPENSTACK_KEYSTONE.V_3"

# Inventory.vim_type / VimAdapter.vim_type (the adapter's kind) -> vimType.
VIM_TYPE_OF_KIND: Mapping[str, str] = {
    "local": LOCAL,
    "kubernetes": KUBERNETES,
    "openstack": OPENSTACK,
}


class InvalidVimConnection(ValueError):
    """interfaceInfo or accessInfo do not fit the vimType; `detail` names the attribute."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UnknownVim(VimFatalError):
    """No VIM with this id is registered."""


class AdapterUnavailable(VimFatalError):
    """The VIM is registered, but this version has no adapter for its vimType."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str, *, https_only: bool = False) -> str:
    parts = urlsplit(value)
    schemes = ("https",) if https_only else ("http", "https")
    if parts.scheme not in schemes or not parts.hostname:
        wanted = "an https" if https_only else "an http or https"
        raise ValueError(f"must be {wanted} URL, got {value!r}")
    return value


def _pem_certificate(value: str) -> str:
    if "-----BEGIN CERTIFICATE-----" not in value:
        raise ValueError("must be a PEM certificate (-----BEGIN CERTIFICATE----- ...)")
    return value


# -- NFVMANO.LOCAL.V_1 --------------------------------------------------------------------


class LocalInterfaceInfo(_Params):
    """The local VIM is this host: nothing to connect to."""


class LocalAccessInfo(_Params):
    """Where the local VIM keeps its state, and the prefix of the host names it makes."""

    stateDir: str = Field(description="absolute path of the VIM's state directory")
    prefix: str = Field(
        default="nfv", description="1-8 letters or digits; names of namespaces and bridges"
    )

    @field_validator("stateDir")
    @classmethod
    def _absolute(cls, value: str) -> str:
        path = Path(value)
        if not path.is_absolute() or ".." in path.parts:
            raise ValueError(f"must be an absolute path without '..', got {value!r}")
        return str(path)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not (value.isascii() and value.isalnum() and 1 <= len(value) <= 8):
            raise ValueError(f"must be 1-8 ASCII letters or digits, got {value!r}")
        return value


# -- ETSINFV.OPENSTACK_KEYSTONE.V_3 -------------------------------------------------------


class OpenStackInterfaceInfo(_Params):
    endpoint: str = Field(description="Keystone v3 URL, e.g. https://keystone.example:5000/v3")
    trustedCertificates: list[str] | None = None
    skipCertificateHostnameCheck: bool = False
    skipCertificateVerification: bool = False

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("trustedCertificates")
    @classmethod
    def _certificates(cls, value: list[str] | None) -> list[str] | None:
        return [_pem_certificate(v) for v in value] if value is not None else None


class OpenStackAccessInfo(_Params):
    """A password or an application credential, scoped to a project."""

    username: str | None = None
    password: SecretStr | None = None
    userDomain: str | None = None
    applicationCredentialId: str | None = None
    applicationCredentialSecret: SecretStr | None = None
    project: str | None = None
    projectId: str | None = None
    projectDomain: str | None = None
    region: str | None = None

    @model_validator(mode="after")
    def _one_method(self) -> OpenStackAccessInfo:
        password = self.username is not None or self.password is not None
        app_cred = (
            self.applicationCredentialId is not None or self.applicationCredentialSecret is not None
        )
        if password == app_cred:
            raise ValueError(
                "give either username and password, or applicationCredentialId and "
                "applicationCredentialSecret"
            )
        if password and (self.username is None or self.password is None):
            raise ValueError("username and password go together")
        if app_cred and (
            self.applicationCredentialId is None or self.applicationCredentialSecret is None
        ):
            raise ValueError("applicationCredentialId and applicationCredentialSecret go together")
        if password and self.project is None and self.projectId is None:
            raise ValueError("a password login needs project or projectId")
        return self


# -- ETSINFV.KUBERNETES.V_1 ---------------------------------------------------------------


class KubernetesInterfaceInfo(_Params):
    endpoint: str = Field(description="the kube-apiserver URL, e.g. https://10.0.0.1:6443")
    ssl_ca_cert: str | None = Field(default=None, description="PEM CA of the apiserver")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return _http_url(value, https_only=True)

    @field_validator("ssl_ca_cert")
    @classmethod
    def _ca(cls, value: str | None) -> str | None:
        return _pem_certificate(value) if value is not None else None


class KubernetesAccessInfo(_Params):
    """A bearer token, or a client certificate and its key."""

    bearer_token: SecretStr | None = None
    client_cert_data: str | None = None
    client_key_data: SecretStr | None = None
    namespace: str | None = None

    @model_validator(mode="after")
    def _one_method(self) -> KubernetesAccessInfo:
        cert = self.client_cert_data is not None or self.client_key_data is not None
        if (self.bearer_token is not None) == cert:
            raise ValueError("give either bearer_token, or client_cert_data and client_key_data")
        if cert and (self.client_cert_data is None or self.client_key_data is None):
            raise ValueError("client_cert_data and client_key_data go together")
        if self.client_cert_data is not None:
            _pem_certificate(self.client_cert_data)
        return self


@dataclass(frozen=True)
class VimTypeInfo:
    """What one vimType takes, and the adapter kind (`VimAdapter.vim_type`) it maps to."""

    vim_type: str
    kind: str
    interface: type[_Params]
    access: type[_Params]
    # Every resource lands on one NFVI node (anti-affinity cannot be met).
    single_host: bool


VIM_TYPES: Mapping[str, VimTypeInfo] = {
    LOCAL: VimTypeInfo(LOCAL, "local", LocalInterfaceInfo, LocalAccessInfo, single_host=True),
    KUBERNETES: VimTypeInfo(
        KUBERNETES, "kubernetes", KubernetesInterfaceInfo, KubernetesAccessInfo, False
    ),
    OPENSTACK: VimTypeInfo(
        OPENSTACK, "openstack", OpenStackInterfaceInfo, OpenStackAccessInfo, False
    ),
}


def type_info(vim_type: str) -> VimTypeInfo:
    try:
        return VIM_TYPES[vim_type]
    except KeyError:
        raise InvalidVimConnection(
            f"vimType {vim_type!r} is not supported (supported: {', '.join(VIM_TYPES)})"
        ) from None


def secret_fields(vim_type: str) -> frozenset[str]:
    """The accessInfo attributes of ``vim_type`` that are credentials."""
    model = type_info(vim_type).access
    return frozenset(
        name
        for name, field in model.model_fields.items()
        if field.annotation in (SecretStr, SecretStr | None)
    )


def _problems(exc: ValidationError, where: str) -> str:
    parts = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}.{path}: {message}" if path else f"{where}: {message}")
    return "; ".join(parts)


@dataclass(frozen=True)
class VimConnection:
    """A registered VIM as an adapter needs it: id, type and validated parameters."""

    vim_id: str
    vim_type: str
    interface: _Params
    access: _Params

    @property
    def info(self) -> VimTypeInfo:
        return type_info(self.vim_type)


def parse_connection(
    vim_id: str, vim_type: str, interface_info: Mapping[str, Any], access_info: Mapping[str, Any]
) -> VimConnection:
    """Validated parameters; InvalidVimConnection naming each attribute that is wrong."""
    info = type_info(vim_type)
    problems = []
    interface = access = None
    try:
        interface = info.interface.model_validate(dict(interface_info))
    except ValidationError as exc:
        problems.append(_problems(exc, "interfaceInfo"))
    try:
        access = info.access.model_validate(dict(access_info))
    except ValidationError as exc:
        problems.append(_problems(exc, "accessInfo"))
    if interface is None or access is None:
        raise InvalidVimConnection(f"{vim_type}: " + "; ".join(problems))
    return VimConnection(vim_id, vim_type, interface, access)


def build_adapter(connection: VimConnection) -> VimAdapter:
    """The VimAdapter of a registered VIM (VimFatalError if it cannot be made here)."""
    access = connection.access
    if isinstance(access, LocalAccessInfo):
        from vim_adapters.local.adapter import LocalVim

        return LocalVim(Path(access.stateDir), prefix=access.prefix)
    raise AdapterUnavailable(
        f"VIM {connection.vim_id} is of type {connection.vim_type}, for which this version has "
        f"no adapter yet (available: {LOCAL})"
    )


class VimResolver(Protocol):
    """Registered VIMs by id, as the VNFM reaches them."""

    @property
    def default_vim_id(self) -> str:
        """The VIM an instance without a VIM connection of its own is placed on."""

    def vim_type(self, vim_id: str) -> str:
        """The vimType of a registered VIM; UnknownVim if there is none with this id."""

    def adapter(self, vim_id: str) -> VimAdapter:
        """The adapter of a registered VIM; UnknownVim, AdapterUnavailable, VimFatalError."""
