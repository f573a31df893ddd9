"""The granting decision: does the VIM have room, and does the request match the VNFD? (pure)

Inputs are the GrantRequest, what the VNFD declares (``VnfdResources``: per-VDU vCPU and memory
of the flavour, its virtual links, storages, connection points and instantiation levels), the
VIM's ``Inventory`` and the VIM connection the NFVO chose. The result is a ``Grant``, or
``GrantRejected`` whose detail names the reason and the numbers.

Capacity: the vCPU and memory of the COMPUTE resources to add (``addResources`` and
``tempResources``; for an INSTANTIATE by ``instantiationLevelId`` alone, the level's VDU
instances), less those of the COMPUTE resources the same operation removes, must fit in what is
free on the VIM: ``total x allocation ratio - allocated``. Removed resources are sized by the
flavour a CHANGE_FLAVOUR leaves when the request names it (`current_resources`), else by the
largest flavour that has their VDU. Allocation ratios are the usual
over-commitment of a VIM (OpenStack's cpu_allocation_ratio); 1.0 means no over-commitment.

Which VIM (`choose_vim`): the one this project's VNFM names in the request's
``additionalParams.vimConnectionInfo`` (one entry: VIM connection id -> vimId and vimType; SOL003
has no GrantRequest attribute for the VIM the VNFM intends to use, and its additionalParams are
the VNFM's to fill), looked up in the VIM registry; without it, the registry's default VIM.
Its inventory, with the registration's capacity overrides applied, and its allocation ratios if
it has its own, are what the demand must fit in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import ValidationError

from descriptors.vnfd import DeploymentFlavour, Vnfd
from nfvo.grant.schemas import (
    Grant,
    GrantedLcmOperationType,
    GrantInfo,
    GrantLinks,
    GrantRequest,
    ResourceDefinition,
    ResourceType,
)
from sol013.types import Link, VimConnectionInfo
from vim_adapters.interface import Inventory
from vim_adapters.registry import VIM_TYPE_OF_KIND, UnknownVim

# vimType values (see vim_adapters.registry), keyed by Inventory.vim_type.
VIM_TYPES: Mapping[str, str] = VIM_TYPE_OF_KIND
VIM_CONNECTION_PARAM = "vimConnectionInfo"
"""GrantRequest.additionalParams key naming the VIM connection the VNFM will use."""
CURRENT_FLAVOUR_PARAM = "currentFlavourId"
"""GrantRequest.additionalParams key naming the flavour a CHANGE_FLAVOUR leaves (its flavourId
is the new one), set by this project's VNFM: what the change removes is sized by it."""
DEFAULT_VIM_CONNECTION_ID = "local"
_MIB = 1 << 20


class GrantRejected(Exception):
    """The NFVO refuses the grant (SOL003: 403 with a ProblemDetails saying why)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class VduSize:
    vcpu: float
    memory_mib: int


@dataclass(frozen=True)
class VnfdResources:
    """What one VNFD (one flavour of it, or all flavours) declares, as granting needs it."""

    vnfd_id: str
    flavour_id: str | None
    vdus: Mapping[str, VduSize]
    virtual_links: frozenset[str] = frozenset()
    storages: frozenset[str] = frozenset()
    cps: frozenset[str] = frozenset()
    # level id -> VDU id -> number of instances
    instantiation_levels: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        flavour = f"flavour {self.flavour_id!r}" if self.flavour_id else "any flavour"
        return f"{flavour} of VNFD {self.vnfd_id}"


@dataclass(frozen=True)
class VimChoice:
    """The VIM connection the NFVO grants the resources on."""

    connection_id: str
    vim_id: str
    vim_type: str  # a VIM_TYPES value
    single_host: bool  # every resource lands on one NFVI node (the local lab VIM)

    @classmethod
    def for_inventory(
        cls, inventory: Inventory, connection_id: str = "local", *, single_host: bool = True
    ) -> VimChoice:
        vim_type = VIM_TYPES.get(inventory.vim_type)
        if vim_type is None:
            raise ValueError(f"no vimType is known for VIM type {inventory.vim_type!r}")
        return cls(connection_id, connection_id, vim_type, single_host)


@dataclass(frozen=True)
class CapacityPolicy:
    cpu_allocation_ratio: float = 1.0
    memory_allocation_ratio: float = 1.0


@dataclass(frozen=True)
class VimCapacity:
    """A registered VIM as granting and placement see it: what it has, and where it is."""

    vim_id: str
    name: str
    vim_type: str
    single_host: bool
    inventory: Inventory  # capacity overrides applied
    # Its own allocation ratios, where it has any; else the service's.
    cpu_allocation_ratio: float | None = None
    memory_allocation_ratio: float | None = None
    zone: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def policy(self, default: CapacityPolicy) -> CapacityPolicy:
        return CapacityPolicy(
            cpu_allocation_ratio=self.cpu_allocation_ratio or default.cpu_allocation_ratio,
            memory_allocation_ratio=(
                self.memory_allocation_ratio or default.memory_allocation_ratio
            ),
        )


class VimDirectory(Protocol):
    """The registered VIMs' capacities (the VIM registry implements it)."""

    @property
    def default_vim_id(self) -> str: ...

    def capacity(self, vim_id: str) -> VimCapacity:
        """UnknownVim if no VIM has this id; any other error: the inventory is unreadable."""


def requested_connection(request: GrantRequest) -> tuple[str, VimConnectionInfo | None]:
    """The VIM connection id and, if the VNFM named it, the connection it will use."""
    params = request.additionalParams or {}
    named = params.get(VIM_CONNECTION_PARAM)
    if named is None:
        for definition in request.resource_definitions():
            if definition.resource is not None and definition.resource.vimConnectionId:
                return definition.resource.vimConnectionId, None
        return DEFAULT_VIM_CONNECTION_ID, None
    where = f"additionalParams.{VIM_CONNECTION_PARAM}"
    if not isinstance(named, dict) or len(named) != 1:
        raise GrantRejected(f"{where} must map one VIM connection id to its VimConnectionInfo")
    ((connection_id, value),) = named.items()
    try:
        connection = VimConnectionInfo.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(str(err["msg"]) for err in exc.errors())
        raise GrantRejected(f"{where}.{connection_id}: {problems}") from None
    if connection.vimId is None:
        raise GrantRejected(f"{where}.{connection_id}: vimId is required")
    return str(connection_id), connection


def choose_vim(
    request: GrantRequest, vims: VimDirectory, policy: CapacityPolicy
) -> tuple[VimChoice, Inventory, CapacityPolicy]:
    """The VIM to grant on, its inventory and the capacity policy that applies to it."""
    connection_id, connection = requested_connection(request)
    vim_id = connection.vimId if connection is not None and connection.vimId else None
    target = vim_id or vims.default_vim_id
    try:
        capacity = vims.capacity(target)
    except UnknownVim:
        raise GrantRejected(
            f"VIM {target} (additionalParams.{VIM_CONNECTION_PARAM}.{connection_id}.vimId) "
            "is not registered"
        ) from None
    except Exception as exc:
        raise GrantRejected(f"the inventory of VIM {target} could not be read: {exc}") from exc
    if connection is not None and connection.vimType != capacity.vim_type:
        raise GrantRejected(
            f"VIM {target} is of type {capacity.vim_type}, not {connection.vimType} "
            f"(additionalParams.{VIM_CONNECTION_PARAM}.{connection_id}.vimType)"
        )
    choice = VimChoice(connection_id, capacity.vim_id, capacity.vim_type, capacity.single_host)
    return choice, capacity.inventory, capacity.policy(policy)


def _vdu_size(vdu_cpu: int, mem_bytes: int) -> VduSize:
    return VduSize(vcpu=float(vdu_cpu), memory_mib=math.ceil(mem_bytes / _MIB))


def vnfd_resources(vnfd: Vnfd, flavour_id: str | None) -> VnfdResources:
    """The resources of one flavour; with ``flavour_id`` None, of all flavours together.

    Without a flavour a VDU is sized by the largest flavour that has it (the NFVO does not
    track which flavour an instance runs). An unknown flavour is a rejection.
    """
    flavours: list[DeploymentFlavour]
    if flavour_id is None:
        flavours = list(vnfd.flavours)
    else:
        flavours = [f for f in vnfd.flavours if f.flavour_id == flavour_id]
        if not flavours:
            known = ", ".join(f.flavour_id for f in vnfd.flavours)
            raise GrantRejected(
                f"flavourId {flavour_id!r} is not a flavour of VNFD {vnfd.vnfd_id} "
                f"(it has: {known})"
            )
    vdus: dict[str, VduSize] = {}
    for flavour in flavours:
        for vdu in flavour.vdus:
            compute = vdu.virtual_compute
            size = (
                _vdu_size(compute.num_virtual_cpu, compute.virtual_mem_size)
                if compute is not None
                else VduSize(0.0, 0)
            )
            old = vdus.get(vdu.id)
            if old is not None:
                size = VduSize(max(old.vcpu, size.vcpu), max(old.memory_mib, size.memory_mib))
            vdus[vdu.id] = size
    levels: dict[str, dict[str, int]] = {}
    if flavour_id is not None:
        levels = {lvl.id: dict(lvl.vdu_instances) for lvl in flavours[0].instantiation_levels}
    return VnfdResources(
        vnfd_id=vnfd.vnfd_id,
        flavour_id=flavour_id,
        vdus=vdus,
        virtual_links=frozenset(vl.id for f in flavours for vl in f.virtual_links),
        storages=frozenset(s.id for f in flavours for s in f.storages),
        cps=frozenset(
            [cp.id for f in flavours for cp in f.ext_cps]
            + [cp.id for f in flavours for cp in f.vdu_cps]
        ),
        instantiation_levels=levels,
    )


def current_resources(vnfd: Vnfd, request: GrantRequest) -> VnfdResources:
    """What the existing resources of ``vnfd`` are, for removals and updates.

    A CHANGE_FLAVOUR that names the flavour it leaves (`CURRENT_FLAVOUR_PARAM`): that
    flavour's; otherwise every flavour's, each VDU at its largest.
    """
    named = (request.additionalParams or {}).get(CURRENT_FLAVOUR_PARAM)
    if (
        request.operation is GrantedLcmOperationType.CHANGE_FLAVOUR
        and isinstance(named, str)
        and named in vnfd.flavour_ids
    ):
        return vnfd_resources(vnfd, named)
    return vnfd_resources(vnfd, None)


def _check_definition(definition: ResourceDefinition, vnfd: VnfdResources, role: str) -> None:
    """Rejects a resource the VNFD does not declare."""
    where = f"{role} resource {definition.id!r}"
    if definition.vduId is not None and definition.vduId not in vnfd.vdus:
        raise GrantRejected(
            f"{where}: vduId {definition.vduId!r} is not a VDU of {vnfd.scope} "
            f"(it has: {', '.join(sorted(vnfd.vdus)) or 'none'})"
        )
    template = definition.resourceTemplateId
    kind = definition.type
    if kind is ResourceType.COMPUTE:
        if definition.vduId is None:
            raise GrantRejected(f"{where}: a COMPUTE resource needs a vduId")
        # SOL001 has no separate id for a VDU's virtual compute descriptor; it is the VDU's.
        return
    known, what = {
        ResourceType.VL: (vnfd.virtual_links, "virtual link"),
        ResourceType.STORAGE: (vnfd.storages, "virtual storage"),
        ResourceType.LINKPORT: (vnfd.cps, "connection point"),
    }[kind]
    if template not in known:
        raise GrantRejected(
            f"{where}: resourceTemplateId {template!r} is not a {what} of {vnfd.scope}"
        )


def _pick(
    definition: ResourceDefinition, default: VnfdResources, others: Iterable[VnfdResources]
) -> VnfdResources:
    if definition.vnfdId is None or definition.vnfdId == default.vnfd_id:
        return default
    for candidate in others:
        if candidate.vnfd_id == definition.vnfdId:
            return candidate
    raise GrantRejected(
        f"resource {definition.id!r} names vnfdId {definition.vnfdId!r}, "
        "which is neither the request's vnfdId nor its dstVnfdId"
    )


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _demand(
    request: GrantRequest, target: VnfdResources, current: VnfdResources
) -> tuple[float, int]:
    """Net vCPU and MiB the operation adds to the VIM."""
    cpu = 0.0
    memory = 0
    adding = [*(request.addResources or ()), *(request.tempResources or ())]
    for definition in adding:
        if definition.type is ResourceType.COMPUTE and definition.vduId is not None:
            size = _pick(definition, target, [current]).vdus[definition.vduId]
            cpu += size.vcpu
            memory += size.memory_mib
    if not request.addResources and request.instantiationLevelId is not None:
        level = target.instantiation_levels.get(request.instantiationLevelId)
        if level is None:
            raise GrantRejected(
                f"instantiationLevelId {request.instantiationLevelId!r} is not a level "
                f"of {target.scope}"
            )
        for vdu_id, count in level.items():
            size = target.vdus.get(vdu_id, VduSize(0.0, 0))
            cpu += size.vcpu * count
            memory += size.memory_mib * count
    for definition in request.removeResources or ():
        if definition.type is ResourceType.COMPUTE and definition.vduId is not None:
            size = _pick(definition, current, [target]).vdus[definition.vduId]
            cpu -= size.vcpu
            memory -= size.memory_mib
    return cpu, memory


def check_capacity(
    cpu: float, memory_mib: int, inventory: Inventory, vim: VimChoice, policy: CapacityPolicy
) -> None:
    """Rejects a demand the VIM cannot hold, naming both numbers."""
    name = f"VIM {vim.vim_id}"
    cpu_free = inventory.cpu_total * policy.cpu_allocation_ratio - inventory.cpu_allocated
    if cpu > 0 and cpu > cpu_free + 1e-9:
        ratio = policy.cpu_allocation_ratio
        how = f" x allocation ratio {_fmt(ratio)}" if ratio != 1.0 else ""
        raise GrantRejected(
            f"not enough CPU: needs {_fmt(cpu)} vCPU, {_fmt(max(cpu_free, 0.0))} free on {name} "
            f"({_fmt(inventory.cpu_total)} vCPU{how}, {_fmt(inventory.cpu_allocated)} allocated)"
        )
    mem_free = (
        math.floor(inventory.memory_mib_total * policy.memory_allocation_ratio)
        - inventory.memory_mib_allocated
    )
    if memory_mib > 0 and memory_mib > mem_free:
        ratio = policy.memory_allocation_ratio
        how = f" x allocation ratio {_fmt(ratio)}" if ratio != 1.0 else ""
        raise GrantRejected(
            f"not enough memory: needs {memory_mib} MiB, {max(mem_free, 0)} MiB free on {name} "
            f"({inventory.memory_mib_total} MiB{how}, {inventory.memory_mib_allocated} "
            "MiB allocated)"
        )


def _check_constraints(request: GrantRequest, vim: VimChoice) -> None:
    """Constraints that this VIM cannot honour (SOL003: the grant is then rejected).

    One VIM connection satisfies every VimConstraint and every AFFINITY rule. On a single-host
    VIM any two resources share node, zone and PoP, so ANTI_AFFINITY can only be met
    best-effort (note 6 of table 9.5.2.2-1).
    """
    if not vim.single_host:
        return
    for constraint in request.placementConstraints or ():
        if constraint.affinityOrAntiAffinity == "ANTI_AFFINITY" and not (
            constraint.fallbackBestEffort
        ):
            names = ", ".join(ref.resourceId for ref in constraint.resource)
            raise GrantRejected(
                f"ANTI_AFFINITY at scope {constraint.scope} between {names} cannot be honoured: "
                f"VIM {vim.vim_id} is a single host (set fallbackBestEffort to accept that)"
            )


def _granted(
    definitions: list[ResourceDefinition] | None, vim: VimChoice
) -> list[GrantInfo] | None:
    if not definitions:
        return None
    return [
        GrantInfo(resourceDefinitionId=d.id, vimConnectionId=vim.connection_id) for d in definitions
    ]


def decide(
    request: GrantRequest,
    *,
    grant_id: str,
    self_href: str,
    target: VnfdResources,
    current: VnfdResources,
    inventory: Inventory,
    vim: VimChoice,
    policy: CapacityPolicy | None = None,
) -> Grant:
    """The Grant for ``request``, or GrantRejected.

    ``target`` describes what resources are added from (the requested flavour of the VNFD, or
    of the destination VNFD for CHANGE_VNFPKG); ``current`` what existing resources belong to
    (all flavours of the request's vnfdId), for removals and updates.
    """
    policy = policy or CapacityPolicy()
    for definition in [*(request.addResources or ()), *(request.tempResources or ())]:
        _check_definition(definition, _pick(definition, target, [current]), "added")
    for definition in [*(request.removeResources or ()), *(request.updateResources or ())]:
        _check_definition(definition, _pick(definition, current, [target]), "existing")
    _check_constraints(request, vim)
    cpu, memory = _demand(request, target, current)
    check_capacity(cpu, memory, inventory, vim, policy)

    connection = VimConnectionInfo(vimId=vim.vim_id, vimType=vim.vim_type)
    return Grant(
        id=grant_id,
        vnfInstanceId=request.vnfInstanceId,
        vnfLcmOpOccId=request.vnfLcmOpOccId,
        vimConnectionInfo={vim.connection_id: connection},
        addResources=_granted(request.addResources, vim),
        tempResources=_granted(request.tempResources, vim),
        removeResources=_granted(request.removeResources, vim),
        updateResources=_granted(request.updateResources, vim),
        links=GrantLinks(
            self_=Link(href=self_href),
            vnfLcmOpOcc=request.links.vnfLcmOpOcc,
            vnfInstance=request.links.vnfInstance,
        ),
    )


def needs_enabled_package(operation: GrantedLcmOperationType) -> bool:
    """Operations that create a VNF from a package; others may run on a disabled one."""
    return operation in (GrantedLcmOperationType.INSTANTIATE,)
