"""How the `vpp` driver reaches and configures one VPP instance.

The settings come from the unit's environment (VNF_VPP_<SETTING>, e.g.
VNF_VPP_API_SOCKET=/run/vpp/api.sock, VNF_VPP_API_DIR= for "ask VPP for its
API definitions"), because the VPP instance is a property of the host the
fast-path unit runs on, not of the VNF's descriptor.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from vnfs.sdk.config import describe
from vnfs.sdk.driver import DriverError

ENV_PREFIX = "VNF_VPP_"


def _split_names(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip().lower() for part in value.split(",") if part.strip())
    return value


def _empty_is_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _json_object(value: object) -> object:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON object: {exc}") from None
    return value


Names = Annotated[tuple[str, ...], BeforeValidator(_split_names)]


class NatTimeouts(BaseModel):
    """VPP's NAT session timeouts in seconds (nat_set_timeouts), VPP's own defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    udp: int = Field(default=300, ge=1)
    tcp_established: int = Field(default=7440, ge=1)
    tcp_transitory: int = Field(default=240, ge=1)
    icmp: int = Field(default=60, ge=1)


class VppSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    api_socket: Path = Path("/run/vpp/api.sock")
    """VPP's binary API socket (startup.conf `socksvr { socket-name ... }`)"""
    api_dir: Annotated[Path | None, BeforeValidator(_empty_is_none)] = Path("/usr/share/vpp/api")
    """where VPP's *.api.json files are; None: fetch them from VPP (get_api_json)"""
    client_name: str = Field(default="vnfs-fastpath", min_length=1, max_length=63)
    timeout: float = Field(default=5.0, gt=0, le=120)
    """seconds to wait for one reply"""
    window: int = Field(default=256, ge=1, le=8192)
    """API requests in flight at once when a batch is pipelined"""
    interface_template: str = "host-{name}"
    """VPP's name for a data interface; {name} is the Linux name (af_packet default)"""
    interface_names: Annotated[dict[str, str], BeforeValidator(_json_object)] = Field(
        default_factory=dict
    )
    """explicit Linux name -> VPP name (e.g. DPDK ports); wins over the template"""
    nat_inside: Names = ("inside",)
    """roles (connection points) whose interfaces are NAT44-ED inside interfaces"""
    nat_outside: Names = ("outside",)
    nat_sessions: int = Field(default=1 << 20, ge=1024)
    """NAT44-ED session table size per worker thread"""
    nat_timeouts: Annotated[NatTimeouts, BeforeValidator(_json_object)] = Field(
        default_factory=NatTimeouts
    )
    """VPP's timeouts until the first translating rule of a protocol sets them"""
    table_size: int = Field(default=1 << 20, ge=1, le=1 << 28)
    abf_policy_base: int = Field(default=0x5F000000, ge=1, le=0xFFFF0000)
    """ABF policy ids this driver owns start here (the punt policy takes this one)"""
    rule_priority: int = Field(default=10, ge=0)
    """ABF attach priority of rule policies (ABF tries lower values first)"""
    punt_priority: int = Field(default=0xFFFF, ge=1)
    """ABF attach priority of the catch-all punt policy: after every rule"""
    punt_socket: Path = Path("/run/vpp/vnfs-punt.sock")
    """this driver's end of VPP's punt socket; VPP must be able to write to it"""


def load_settings(environ: Mapping[str, str]) -> VppSettings:
    """VppSettings from VNF_VPP_* variables; DriverError naming every invalid one."""
    fields = VppSettings.model_fields
    raw: dict[str, Any] = {}
    for variable, value in environ.items():
        if not variable.startswith(ENV_PREFIX):
            continue
        name = variable[len(ENV_PREFIX) :].lower()
        if name not in fields:
            known = ", ".join(ENV_PREFIX + field.upper() for field in sorted(fields))
            raise DriverError(f"unknown setting {variable} (known: {known})")
        raw[name] = value.strip()
    try:
        return VppSettings.model_validate(raw)
    except ValidationError as exc:
        raise DriverError(describe(exc, "VPP settings (VNF_VPP_*)")) from None
