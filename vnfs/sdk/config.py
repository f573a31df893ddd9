"""A VNF unit's configuration: where it runs and what it was asked to do.

Two sources, both written by the VIM adapter before the unit's process starts:

* the environment: VNF_INSTANCE_ID, VNF_UNIT, VNF_VDU_ID, VNF_REPLICA_INDEX,
  VNF_CONFIG_DIR, and per connection point VNF_CP_<NAME>_IFNAME and
  VNF_CP_<NAME>_ADDRESS (CIDR);
* VNF_CONFIG_DIR/vnf-config.json: vnfInstanceId, flavourId, vdu,
  additionalParams (from the instantiate request) and configurableProperties
  (from the VNFD).

The SDK's own settings (`RuntimeSettings`: ports, which connection points are
punt and management, the datapath, an explicit slow path address) have
defaults, may be set by the VNFD as VNF_SDK_<SETTING> environment variables
(e.g. VNF_SDK_SLOWPATH_ADDRESS=10.255.0.2, VNF_SDK_DATA_CPS=inside,outside),
and are overridden per instance by additionalParams["sdk"] (camelCase keys,
e.g. {"sdk": {"slowpathAddress": "10.255.0.2"}}).

A VNF extends `UnitConfig` for its own properties:

    class NatProperties(VnfProperties):
        public_pool: PublicPool
        flow_idle_timeout: Seconds = 300

    class NatConfig(UnitConfig):
        properties: NatProperties

`properties` is filled from configurableProperties.additional_configurable_properties
and `params` from additionalParams (without "sdk").
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

CONFIG_FILE = "vnf-config.json"
ENV_PREFIX = "VNF_SDK_"
EXIT_CONFIG_ERROR = 2
MAX_CONFIG_BYTES = 1 << 20

_CP_VARIABLE = re.compile(r"^VNF_CP_([A-Z0-9_]+)_(IFNAME|ADDRESS)$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")

# TOSCA scalar-unit.time units (TOSCA Simple Profile 1.3, 3.3.6.6).
_TIME_UNITS: Mapping[str, float] = {
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "ns": 1e-9,
}
_SCALAR = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*$")


class ConfigError(ValueError):
    """The unit's configuration is missing or invalid; the message is one line."""


def parse_seconds(value: object) -> object:
    """A TOSCA scalar-unit.time ("300 s", "5 m", "250 ms") or a plain number, in seconds."""
    if isinstance(value, str):
        match = _SCALAR.match(value)
        if match is None or match[2].lower() not in _TIME_UNITS:
            raise ValueError(f"{value!r} is not a time such as '300 s' or '250 ms'")
        return float(match[1]) * _TIME_UNITS[match[2].lower()]
    return value


Seconds = Annotated[float, BeforeValidator(parse_seconds), Field(ge=0)]
"""A duration in seconds; accepts numbers and TOSCA scalar-unit.time strings."""

Port = Annotated[int, Field(ge=1, le=0xFFFF)]


def _split_names(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip().lower() for part in value.split(",") if part.strip())
    return value


def _vrf_map(value: object) -> object:
    """'inside=7,outside=8' (the environment's form) or a mapping; names lower-cased."""
    if isinstance(value, str):
        pairs = [part.split("=", 1) for part in value.split(",") if part.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError(f"{value!r} is not a list of <connection point>=<vrf>")
        return {name.strip().lower(): number.strip() for name, number in pairs}
    if isinstance(value, Mapping):
        return {str(name).lower(): number for name, number in value.items()}
    return value


class RuntimeSettings(BaseModel):
    """How the SDK's runtime runs this unit (shared by fast-path agents and the slow path)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    datapath: str = Field(default="bpf", pattern=r"^[a-z][a-z0-9_]*$")
    """the fast-path driver: 'bpf' (tc-BPF, default) or 'vpp'"""
    punt_cp: str = "punt"
    """connection point of the punt link between fast paths and the slow path"""
    mgmt_cp: str = "mgmt"
    """connection point where metrics and /healthz are served"""
    data_cps: Annotated[tuple[str, ...] | None, BeforeValidator(_split_names)] = None
    """connection points the datapath attaches to; None: all but punt and mgmt"""
    vrfs: Annotated[
        dict[str, Annotated[int, Field(ge=0, le=0xFFFF)]], BeforeValidator(_vrf_map)
    ] = Field(default_factory=dict)
    """data connection point -> the VRF (e.g. a VPC id) flows entering there are keyed with;
    the others use 0 (environment form: VNF_SDK_VRFS=inside=7,outside=8). The settings
    are shared by a VNF's units: a fast path checks the names against its own"""
    slowpath_address: IPv4Address | None = None
    """register with this slow path instead of waiting for its broadcast announcements"""
    punt_port: Port = 7700
    """slow path: UDP port receiving punted packets"""
    reinject_port: Port = 7701
    """fast path: UDP port where the slow path re-injects packets (also the punt source port)"""
    control_port: Port = 7702
    """slow path: UDP port receiving registrations"""
    discovery_port: Port = 7703
    """fast path: UDP port receiving announcements"""
    rulepush_port: Port = 7704
    """fast path: TCP port of the rule-push server"""
    metrics_port: int = Field(default=9100, ge=0, le=0xFFFF)
    """Prometheus /metrics and /healthz on the mgmt address; 0 picks a free port"""
    heartbeat_interval: float = Field(default=1.0, ge=0.05, le=60.0)
    """seconds between announcements, registrations and aging rounds"""
    missed_heartbeats: int = Field(default=10, ge=2, le=1000)
    """a fast path silent for this many intervals has left (a restart within them keeps
    its flows: the slow path pushes them again)"""
    table_size: int = Field(default=1 << 20, ge=1, le=1 << 28)
    """flow table capacity of the datapath, in rules"""
    push_batch: int = Field(default=2048, ge=1, le=65536)
    """slow path: a batch is pushed as soon as it holds this many rules"""
    push_delay: Seconds = Field(default=150e-6, le=0.1)
    """slow path: longest a rule waits for its batch to fill"""
    punt_queue: int = Field(default=65536, ge=1, le=1 << 22)
    """slow path: punted packets waiting for the logic; more are dropped and counted"""
    max_inflight_batches: int = Field(default=64, ge=1, le=4096)
    """slow path: unacknowledged batches per fast path before punt processing waits"""
    datagram_installs: bool = True
    """slow path: send a new flow's rules to a fast path that takes them (the tc-BPF one)
    in an INSTALL datagram just before re-injecting its packet, instead of pushing them
    over the rule-push connection and waiting for the ACK (a round trip through the
    agent)"""
    ip_forward: bool = True
    """fast path: enable IPv4 forwarding in the unit's network namespace"""

    @field_validator("punt_cp", "mgmt_cp")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class ConnectionPoint(BaseModel):
    """One network attachment of the unit, as the VIM reported it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """the connection point's name, lower case (e.g. 'inside', 'punt')"""
    ifname: str = Field(pattern=_IFNAME.pattern)
    address: IPv4Interface | None = None

    @field_validator("address", mode="before")
    @classmethod
    def _with_prefix(cls, value: object) -> object:
        if isinstance(value, str) and "/" not in value:
            raise ValueError(f"{value!r} must be in CIDR form (address/prefix length)")
        return value


class VnfProperties(BaseModel):
    """configurableProperties.additional_configurable_properties; VNFs subclass this."""

    model_config = ConfigDict(frozen=True, extra="allow")

    is_writable_anytime: bool = False


class VnfParams(BaseModel):
    """additionalParams of the instantiate request (without "sdk"); VNFs subclass this."""

    model_config = ConfigDict(frozen=True, extra="allow")


class UnitConfig(BaseModel):
    """Everything one process of a VNF unit is told about itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vnf_instance_id: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    vdu_id: str | None = None
    replica_index: int = Field(ge=0, le=0xFFFF)
    """carried in every punt header, so it must fit 16 bits"""
    config_dir: Path
    flavour_id: str = Field(min_length=1)
    connection_points: dict[str, ConnectionPoint] = Field(default_factory=dict)
    configurable_properties: dict[str, Any] = Field(default_factory=dict)
    """the whole configurableProperties document"""
    properties: VnfProperties = Field(default_factory=VnfProperties)
    params: VnfParams = Field(default_factory=VnfParams)
    sdk: RuntimeSettings = Field(default_factory=RuntimeSettings)

    @model_validator(mode="after")
    def _data_cps_attached(self) -> UnitConfig:
        for name in self.sdk.data_cps or ():
            if name not in self.connection_points:
                attached = ", ".join(sorted(self.connection_points)) or "none"
                raise ValueError(
                    f"data connection point {name!r} is not attached to this unit "
                    f"(attached: {attached})"
                )
        return self

    def cp(self, name: str) -> ConnectionPoint:
        """The connection point `name`; ConfigError naming the attached ones if absent."""
        point = self.connection_points.get(name.lower())
        if point is None:
            attached = ", ".join(sorted(self.connection_points)) or "none"
            raise ConfigError(
                f"unit {self.unit} has no connection point {name!r} (attached: {attached})"
            )
        return point

    def addressed_cp(self, name: str) -> tuple[ConnectionPoint, IPv4Interface]:
        """The connection point `name` and its address; ConfigError if it has none."""
        point = self.cp(name)
        if point.address is None:
            raise ConfigError(
                f"connection point {point.name!r} ({point.ifname}) has no IPv4 address "
                f"(set VNF_CP_{point.name.upper()}_ADDRESS)"
            )
        return point, point.address

    def data_cps(self) -> list[ConnectionPoint]:
        """The connection points the datapath forwards between, in name order."""
        if self.sdk.data_cps is not None:
            return [self.connection_points[name] for name in self.sdk.data_cps]
        skip = {self.sdk.punt_cp, self.sdk.mgmt_cp}
        return [cp for name, cp in sorted(self.connection_points.items()) if name not in skip]


UnitConfigT = TypeVar("UnitConfigT", bound=UnitConfig)


def _require(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


def _connection_points(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for variable, value in environ.items():
        match = _CP_VARIABLE.match(variable)
        if match is None:
            continue
        entry = found.setdefault(match[1].lower(), {"name": match[1].lower()})
        entry["ifname" if match[2] == "IFNAME" else "address"] = value.strip()
    for name, entry in found.items():
        if "ifname" not in entry:
            raise ConfigError(
                f"VNF_CP_{name.upper()}_ADDRESS is set but VNF_CP_{name.upper()}_IFNAME is not"
            )
    return found


def _env_settings(environ: Mapping[str, str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    fields = RuntimeSettings.model_fields
    for variable, value in environ.items():
        if not variable.startswith(ENV_PREFIX):
            continue
        name = variable[len(ENV_PREFIX) :].lower()
        if name not in fields:
            known = ", ".join(ENV_PREFIX + field.upper() for field in sorted(fields))
            raise ConfigError(f"unknown setting {variable} (known: {known})")
        settings[to_camel(name)] = value.strip()
    return settings


def _camel_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    """Setting names in their camelCase (alias) form, so two sources merge key by key."""
    return {
        to_camel(key) if key in RuntimeSettings.model_fields else key: v
        for key, v in values.items()
    }


def _read_document(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return document


def _object(document: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = document.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be an object")
    return value


def describe(error: ValidationError, source: str) -> str:
    """One line naming every invalid field of a pydantic error."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return f"{source}: " + "; ".join(parts)


def _field_model(model: type[UnitConfig], name: str) -> type[BaseModel]:
    annotation = model.model_fields[name].annotation
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        raise TypeError(f"{model.__name__}.{name} must be a pydantic model, not {annotation!r}")
    return annotation


def load(model: type[UnitConfigT], environ: Mapping[str, str] | None = None) -> UnitConfigT:
    """Read the environment and vnf-config.json into `model`; ConfigError on any problem."""
    env = os.environ if environ is None else environ
    instance_id = _require(env, "VNF_INSTANCE_ID")
    unit = _require(env, "VNF_UNIT")
    config_dir = Path(_require(env, "VNF_CONFIG_DIR"))
    raw_index = _require(env, "VNF_REPLICA_INDEX")
    if not raw_index.isdigit():
        raise ConfigError(f"VNF_REPLICA_INDEX must be a non-negative integer, got {raw_index!r}")
    path = config_dir / CONFIG_FILE
    document = _read_document(path)
    if document.get("vnfInstanceId") not in (None, instance_id):
        raise ConfigError(
            f"{path} is for VNF instance {document.get('vnfInstanceId')!r}, "
            f"but VNF_INSTANCE_ID is {instance_id!r}"
        )
    vdu_id = env.get("VNF_VDU_ID") or document.get("vdu")
    if env.get("VNF_VDU_ID") and document.get("vdu") not in (None, env["VNF_VDU_ID"]):
        raise ConfigError(
            f"{path} is for VDU {document.get('vdu')!r}, but VNF_VDU_ID is {env['VNF_VDU_ID']!r}"
        )
    flavour_id = document.get("flavourId")
    if not isinstance(flavour_id, str) or not flavour_id:
        raise ConfigError(f"{path}: flavourId is missing")
    configurable = _object(document, "configurableProperties", str(path))
    params = _object(document, "additionalParams", str(path))
    sdk_overrides = _object(params, "sdk", f"{path} additionalParams")
    params = {key: value for key, value in params.items() if key != "sdk"}
    properties = _object(
        configurable, "additional_configurable_properties", f"{path} configurableProperties"
    )

    try:
        settings = RuntimeSettings.model_validate(
            {**_env_settings(env), **_camel_keys(sdk_overrides)}
        )
    except ValidationError as exc:
        raise ConfigError(
            describe(exc, "SDK settings (VNF_SDK_* / additionalParams.sdk)")
        ) from None
    try:
        typed_properties = _field_model(model, "properties").model_validate(properties)
    except ValidationError as exc:
        raise ConfigError(
            describe(exc, f"{path} configurableProperties.additional_configurable_properties")
        ) from None
    try:
        typed_params = _field_model(model, "params").model_validate(params)
    except ValidationError as exc:
        raise ConfigError(describe(exc, f"{path} additionalParams")) from None
    try:
        return model.model_validate(
            {
                "vnf_instance_id": instance_id,
                "unit": unit,
                "vdu_id": vdu_id,
                "replica_index": int(raw_index),
                "config_dir": config_dir,
                "flavour_id": flavour_id,
                "connection_points": _connection_points(env),
                "configurable_properties": configurable,
                "properties": typed_properties,
                "params": typed_params,
                "sdk": settings,
            }
        )
    except ValidationError as exc:
        raise ConfigError(describe(exc, "unit configuration")) from None


def load_or_exit(model: type[UnitConfigT], environ: Mapping[str, str] | None = None) -> UnitConfigT:
    """`load`, or print the one-line reason to stderr and exit with status 2."""
    try:
        return load(model, environ)
    except ConfigError as exc:
        fail(str(exc))


def fail(message: str) -> NoReturn:
    print(f"configuration error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_CONFIG_ERROR)
