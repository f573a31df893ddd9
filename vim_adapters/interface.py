"""What the VNFM needs from any VIM, independent of how a VIM provides it.

Every call is safe to repeat after a crash: `ensure_*` are create-or-get by
name, deletes succeed when the resource is already gone. Every resource is
labelled with its `Ownership` (VNF instance, VDU, LCM operation), so
rollback, terminate and leak checks can be exact with `list_owned`.
"""

from __future__ import annotations

import ipaddress
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# DNS-label-like names work on every VIM (Kubernetes objects, OpenStack, Linux links).
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_NAME = re.compile(NAME_PATTERN)


def check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid resource name (lower-case letters, digits and '-', "
            "at most 63 characters, starting and ending with a letter or digit)"
        )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ownership(_Model):
    """Who a resource belongs to; every VIM resource carries these as labels or tags."""

    vnf_instance_id: str = Field(min_length=1)
    vdu_id: str | None = None
    lcm_op_id: str | None = None


class NetworkSpec(_Model):
    """A virtual link: one L2 segment with one IPv4 or IPv6 subnet."""

    name: str
    cidr: str
    gateway: str | None = Field(
        default=None,
        description="address the VIM itself takes on the link; None keeps the link isolated",
    )
    vlan: int | None = Field(default=None, ge=1, le=4094)
    overlay: Literal["vxlan", "geneve"] | None = Field(
        default=None, description="hint for VIMs that build links across hosts"
    )
    mtu: int | None = Field(default=None, ge=576, le=9216)

    _check_name = field_validator("name")(check_name)

    @field_validator("cidr")
    @classmethod
    def _valid_cidr(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_network(value, strict=True))
        except ValueError as exc:
            raise ValueError(f"cidr {value!r}: {exc}") from None

    @model_validator(mode="after")
    def _gateway_in_subnet(self) -> NetworkSpec:
        if self.gateway is not None:
            network = ipaddress.ip_network(self.cidr)
            if ipaddress.ip_address(self.gateway) not in network:
                raise ValueError(f"gateway {self.gateway} is outside {self.cidr}")
        return self


class Network(_Model):
    """A virtual link as it exists on the VIM."""

    name: str
    spec: NetworkSpec
    owner: Ownership
    vim_id: str = Field(description="the VIM's own identifier (bridge, Neutron id, NAD name)")


class ConnectionPointSpec(_Model):
    """One interface of every replica of a unit, attached to a virtual link."""

    name: str = Field(description="interface name inside the unit, e.g. 'data0'")
    network: str
    fixed_addresses: tuple[str, ...] = Field(
        default=(),
        description="one address per replica, in replica order; empty means allocated",
    )

    @field_validator("name")
    @classmethod
    def _ifname(cls, value: str) -> str:
        if not re.match(r"^[a-z][a-z0-9_]{0,14}$", value):
            raise ValueError(f"interface name {value!r} must be 1-15 of [a-z0-9_]")
        return value


class ProcessSpec(_Model):
    """One process of a unit replica (a container of a pod, on container VIMs)."""

    name: str
    command: tuple[str, ...] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    image: str | None = Field(default=None, description="container image, for container VIMs")

    _check_name = field_validator("name")(check_name)


class HealthCheck(_Model):
    """How the VIM decides a replica is ready: a TCP port accepting, or a command exiting 0."""

    tcp_port: int | None = Field(default=None, ge=1, le=65535)
    command: tuple[str, ...] | None = None
    period_seconds: float = Field(default=1.0, gt=0)
    timeout_seconds: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> HealthCheck:
        if (self.tcp_port is None) == (self.command is None):
            raise ValueError("a health check has either tcp_port or command")
        return self


class UnitSpec(_Model):
    """The compute units of one VDU: N identical replicas."""

    name: str
    replicas: int = Field(ge=0)
    processes: tuple[ProcessSpec, ...] = Field(min_length=1)
    connection_points: tuple[ConnectionPointSpec, ...] = ()
    cpu: float = Field(default=0.1, gt=0, description="vCPUs requested per replica")
    memory_mib: int = Field(default=64, gt=0, description="memory requested per replica")
    config_files: dict[str, str] = Field(
        default_factory=dict, description="file name -> content, given to every replica"
    )
    health_check: HealthCheck | None = None

    _check_name = field_validator("name")(check_name)

    @model_validator(mode="after")
    def _consistent(self) -> UnitSpec:
        names = [cp.name for cp in self.connection_points]
        if len(names) != len(set(names)):
            raise ValueError("connection point names must be unique within a unit")
        for cp in self.connection_points:
            if cp.fixed_addresses and len(cp.fixed_addresses) < self.replicas:
                raise ValueError(
                    f"connection point {cp.name} has {len(cp.fixed_addresses)} fixed "
                    f"addresses for {self.replicas} replicas"
                )
        for file_name in self.config_files:
            if "/" in file_name or file_name in ("", ".", ".."):
                raise ValueError(f"config file name {file_name!r} must be a plain file name")
        return self


class ReplicaState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"


class Address(_Model):
    """An address of a replica on one of its connection points."""

    connection_point: str
    network: str
    ip: str
    mac: str | None = None


class Replica(_Model):
    """One replica of a unit and what the VIM knows about it now."""

    id: str
    index: int
    state: ReplicaState
    addresses: tuple[Address, ...] = ()
    detail: str | None = Field(default=None, description="why it is failed or pending")


class Unit(_Model):
    """A unit as it exists on the VIM."""

    name: str
    spec: UnitSpec
    owner: Ownership
    replicas: tuple[Replica, ...]

    @property
    def ready(self) -> bool:
        return len(self.replicas) == self.spec.replicas and all(
            r.state is ReplicaState.READY for r in self.replicas
        )


class OwnedResource(_Model):
    """One thing the adapter made, for rollback and leak checks."""

    kind: Literal["network", "unit", "replica"]
    name: str
    owner: Ownership


class Inventory(_Model):
    """Capacity the NFVO checks when it grants resources."""

    vim_type: str
    cpu_total: float
    cpu_allocated: float
    memory_mib_total: int
    memory_mib_allocated: int
    networks: int
    replicas: int

    @property
    def cpu_free(self) -> float:
        return self.cpu_total - self.cpu_allocated

    @property
    def memory_mib_free(self) -> int:
        return self.memory_mib_total - self.memory_mib_allocated


class VimAdapter(ABC):
    """The one interface the VNFM drives every VIM through."""

    vim_type: str

    @abstractmethod
    def ensure_network(self, spec: NetworkSpec, owner: Ownership) -> Network:
        """Create the network, or return it if one with this name and spec exists."""

    @abstractmethod
    def get_network(self, name: str) -> Network | None: ...

    @abstractmethod
    def delete_network(self, name: str) -> None:
        """Remove the network; nothing happens if it does not exist."""

    @abstractmethod
    def ensure_unit(self, spec: UnitSpec, owner: Ownership) -> Unit:
        """Create the unit with spec.replicas replicas, or return it if it exists."""

    @abstractmethod
    def get_unit(self, name: str) -> Unit | None: ...

    @abstractmethod
    def scale_unit(self, name: str, replicas: int, *, lcm_op_id: str | None = None) -> Unit:
        """Add replicas (highest index next) or remove the highest-indexed ones."""

    @abstractmethod
    def heal_replica(self, unit: str, replica_id: str) -> Unit:
        """Replace one replica by a fresh one with the same index and addresses.

        A stopped replica is replaced by a stopped one: heal repairs, it does not start.
        """

    @abstractmethod
    def update_unit(self, spec: UnitSpec, *, lcm_op_id: str | None = None) -> Unit:
        """Change an existing unit (named spec.name) to `spec`, keeping its replica count.

        Replicas whose processes, config files or connection points differ are
        replaced one at a time with the same index; on a connection point whose
        network did not change they keep their address and MAC. Repeating the
        call, also after a crash in the middle, converges on `spec`.

        Replaced replicas carry `lcm_op_id` in `list_owned`. A spec with another
        replica count is refused (VimFatalError): `scale_unit` changes the count.
        A replaced replica that fails stops the update there (non-retryable
        VimError); updating back to the previous spec undoes it.
        """

    @abstractmethod
    def set_running(
        self,
        unit: str,
        running: bool,
        *,
        replica_ids: Sequence[str] | None = None,
        graceful_timeout: float = 0.0,
    ) -> Unit:
        """Stop or start the processes of the unit's replicas (all, or the given ones).

        Stopping sends SIGTERM (or the VIM's equivalent), waits up to
        `graceful_timeout` seconds, then kills; 0 kills at once. Networks,
        addresses and the replica itself stay, and a stopped replica stays
        stopped (STOPPED) across adapter restarts until started again.
        Repeating a call is harmless.
        """

    @abstractmethod
    def delete_unit(self, name: str) -> None:
        """Remove every replica of the unit; nothing happens if it does not exist."""

    @abstractmethod
    def wait_ready(self, name: str, *, timeout: float) -> Unit:
        """Block until every replica is ready; VimTimeout after `timeout` seconds.

        A replica stopped by `set_running` counts as settled (it is as asked): the
        call returns with it STOPPED instead of waiting for it or starting it.
        """

    @abstractmethod
    def list_owned(self, vnf_instance_id: str | None = None) -> list[OwnedResource]:
        """Everything this adapter made, optionally of one VNF instance."""

    @abstractmethod
    def inventory(self) -> Inventory: ...
