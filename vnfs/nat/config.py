"""The NAT's settings, from the unit's vnf-config.json.

Where they come from: the VNFD's
`configurableProperties.additional_configurable_properties` (keys as in
nat_types.yaml: `public_pool`, `flow_idle_timeout`, ...), deep-merged with the
instantiate request's `additionalParams` (same keys; additionalParams wins,
nested objects merge key by key). `is_writable_anytime` (SOL001's flag) and
the SDK's `sdk` parameters are not NAT settings and are left out. Unknown
top-level keys are ignored, because additionalParams is shared with the
other units of the VNF; unknown keys inside the NAT's own objects
(`public_pool`, `timeouts`, `audit`) are errors, so typos do not go unnoticed.

Durations accept numbers of seconds or TOSCA scalar-unit.time strings as the
VNFD writes them ("300 s", "2 h", "4 m"); they must come to whole seconds
because the fast path ages rules in seconds.

`flow_idle_timeout` (the VNFD's generic idle timeout) sets the UDP timeout
unless `timeouts.udp` is given too; the more specific key wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from ipaddress import IPv4Network
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vnfs.sdk.config import ConfigError, UnitConfig, describe, parse_seconds

# RFC minimums: 5382 REQ-5 (TCP established 2 h 4 min, transitory 4 min),
# 4787 REQ-5 (UDP 2 min), 5508 REQ-1 (ICMP query 60 s).
RFC_MINIMUM_TIMEOUTS: Mapping[str, int] = {
    "tcp_established": 7440,
    "tcp_transitory": 240,
    "udp": 120,
    "icmp": 60,
}
MAX_SHARDS = 1024
"""far above any VDU's instance count; bounds the per-shard tables"""
_NOT_SETTINGS = ("is_writable_anytime", "sdk")


def _whole_seconds(value: object) -> object:
    seconds = parse_seconds(value)
    if isinstance(seconds, float):
        if not math.isfinite(seconds) or seconds != int(seconds):
            raise ValueError(f"{value!r} is not a whole number of seconds")
        return int(seconds)
    return seconds


WholeSeconds = Annotated[int, BeforeValidator(_whole_seconds), Field(ge=1, le=0xFFFFFFFF)]
"""A timeout in whole seconds; numbers or TOSCA scalar-unit.time strings."""


def _cidr_list(value: object) -> object:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return value
    networks: list[object] = []
    for item in items:
        if isinstance(item, str):
            try:
                networks.append(IPv4Network(item.strip()))
            except ValueError as exc:  # says why: host bits set, not IPv4, ...
                raise ValueError(f"{item.strip()!r} is not an IPv4 CIDR ({exc})") from None
        else:
            networks.append(item)
    return networks


class PublicPool(BaseModel):
    """The public addresses and the port range cut into blocks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cidr: Annotated[tuple[IPv4Network, ...], BeforeValidator(_cidr_list)] = Field(min_length=1)
    """one CIDR, a comma-separated list or a JSON list; every address is used"""
    port_block_size: int = Field(default=512, ge=64, le=32768)
    first_port: int = Field(default=1024, ge=1024, le=0xFFFF)
    last_port: int = Field(default=0xFFFF, ge=1024, le=0xFFFF)

    @field_validator("cidr")
    @classmethod
    def _disjoint(cls, networks: tuple[IPv4Network, ...]) -> tuple[IPv4Network, ...]:
        ordered = sorted(networks)
        for before, after in pairwise(ordered):
            if before.overlaps(after):
                raise ValueError(f"{before} and {after} overlap")
        return networks

    @model_validator(mode="after")
    def _one_block_fits(self) -> PublicPool:
        if self.last_port < self.first_port:
            raise ValueError(f"last_port {self.last_port} is below first_port {self.first_port}")
        if self.last_port - self.first_port + 1 < self.port_block_size:
            raise ValueError(
                f"ports {self.first_port}-{self.last_port} hold no block of "
                f"{self.port_block_size} ports"
            )
        return self

    @property
    def addresses(self) -> int:
        return sum(network.num_addresses for network in self.cidr)

    @property
    def blocks_per_address(self) -> int:
        return (self.last_port - self.first_port + 1) // self.port_block_size


class Timeouts(BaseModel):
    """Idle timeouts of the fast-path rules, per protocol."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tcp_established: WholeSeconds = 7440
    tcp_transitory: WholeSeconds = 240
    """before the handshake completes and after FIN/RST"""
    udp: WholeSeconds = 300
    icmp: WholeSeconds = 60


class AuditSettings(BaseModel):
    """The mapping log (see vnfs.nat.audit for its record format)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path = Path("logs/nat-mappings.jsonl")
    """a relative path is taken from the unit's directory (the parent of the config
    directory); the local VIM deletes that directory with the replica, so production
    deployments set an absolute path on persistent storage"""
    per_mapping: bool = False
    """also log every mapping, not only port blocks (much more volume)"""
    max_bytes: int = Field(default=100 << 20, ge=0)
    """rotate when the file grows past this; 0 leaves rotation to logrotate + SIGHUP"""
    backups: int = Field(default=10, ge=1, le=1000)
    """rotated files kept: path.1 (newest) .. path.N"""


Filtering = Literal["endpoint-independent", "address-dependent"]


class NatConfig(BaseModel):
    """The NAT's decision settings (mapping is always endpoint-independent, RFC 4787 REQ-1)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    public_pool: PublicPool
    max_blocks_per_subscriber: int = Field(default=4, ge=1, le=4096)
    """port blocks one inside address may hold on one fast path"""
    flow_idle_timeout: WholeSeconds | None = None
    """the VNFD's generic idle timeout: the UDP timeout unless timeouts.udp is set"""
    timeouts: Timeouts = Field(default_factory=Timeouts)
    rfc_minimum_timeouts: bool = True
    """refuse timeouts below the RFC minimums; labs set false to see expiry quickly"""
    filtering: Filtering = "address-dependent"
    """inbound packets admitted from any remote (EIF) or only from addresses the inside
    endpoint has sent to (ADF); RFC 4787 REQ-8 recommends either, ADF is the safer default"""
    hairpinning: bool = True
    """RFC 4787 REQ-9: inside hosts reach each other through their public endpoints"""
    shards: int = Field(default=8, ge=1, le=MAX_SHARDS)
    """fast-path instances the pool is split for (the VDU's max_number_of_instances);
    an instance with an index at or above this gets no mappings"""
    audit: AuditSettings = Field(default_factory=AuditSettings)

    @model_validator(mode="before")
    @classmethod
    def _idle_timeout_is_udp(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or data.get("flow_idle_timeout") is None:
            return data
        timeouts = data.get("timeouts")
        if timeouts is None:
            timeouts = {}
        if isinstance(timeouts, Mapping) and "udp" not in timeouts:
            return {**data, "timeouts": {**timeouts, "udp": data["flow_idle_timeout"]}}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> NatConfig:
        if self.rfc_minimum_timeouts:
            for name, minimum in RFC_MINIMUM_TIMEOUTS.items():
                value = getattr(self.timeouts, name)
                if value < minimum:
                    raise ValueError(
                        f"timeouts.{name} {value} s is below the RFC minimum of {minimum} s "
                        "(set rfc_minimum_timeouts: false to allow it)"
                    )
        if self.public_pool.addresses < self.shards:
            raise ValueError(
                f"public_pool has {self.public_pool.addresses} addresses for {self.shards} "
                "shards; each fast-path shard needs at least one address (lower shards or "
                "widen the pool)"
            )
        return self


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`; objects present in both merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge(current, value)
        else:
            merged[key] = value
    return merged


def nat_settings(properties: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The raw NAT settings: additionalParams deep-merged over the configurable properties."""
    merged = merge(properties, params)
    return {key: value for key, value in merged.items() if key not in _NOT_SETTINGS}


def _object(document: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = document.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"vnf-config.json: {key} must be an object")
    return value


def from_vnf_config(document: Mapping[str, Any], unit_dir: Path | None = None) -> NatConfig:
    """NatConfig from a parsed vnf-config.json; ConfigError (one line) if invalid.

    `unit_dir` anchors a relative audit path (default: the working directory).
    """
    configurable = _object(document, "configurableProperties")
    properties = _object(configurable, "additional_configurable_properties")
    params = _object(document, "additionalParams")
    try:
        config = NatConfig.model_validate(nat_settings(properties, params))
    except ValidationError as exc:
        raise ConfigError(describe(exc, "NAT settings")) from None
    return anchored(config, unit_dir)


def anchored(config: NatConfig, unit_dir: Path | None) -> NatConfig:
    """`config` with a relative audit path made absolute under `unit_dir`."""
    if unit_dir is None or config.audit.path.is_absolute():
        return config
    audit = config.audit.model_copy(update={"path": unit_dir / config.audit.path})
    return config.model_copy(update={"audit": audit})


class NatUnitConfig(UnitConfig):
    """The slow-path unit's configuration (vnfs.sdk.config.load) with the NAT's settings.

    `nat` is built from the same properties and params the SDK reads; a problem
    in them fails the load with one line naming the field (nat.public_pool...).
    """

    nat: NatConfig

    @model_validator(mode="before")
    @classmethod
    def _nat_from_properties(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "nat" in data:
            return data
        return {**data, "nat": nat_settings(_dumped(data, "properties"), _dumped(data, "params"))}

    @model_validator(mode="after")
    def _audit_path_in_unit_dir(self) -> NatUnitConfig:
        anchored_nat = anchored(self.nat, self.config_dir.parent)
        if anchored_nat is not self.nat:
            # The model is frozen; this runs once, during validation.
            object.__setattr__(self, "nat", anchored_nat)
        return self


def _dumped(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, Mapping):
        return value
    return {}
