"""What an operation acts on, worked out the same way for its grant request and for its run.

The grant request (`vnfm.grant_request`) names the resources the operation will add, remove
or change; the executor then acts on exactly those. Both call these functions with the same
context, VNFD and VIM state, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from descriptors.vnfd import DeploymentFlavour, Vnfd
from sol013.types import VimConnectionInfo
from vim_adapters.errors import VimError
from vim_adapters.interface import ConnectionPointSpec, ReplicaState, Unit, UnitSpec, VimAdapter
from vim_adapters.registry import UnknownVim, VimResolver
from vnfm import ext_links, planner
from vnfm.instantiated_info import DEFAULT_VIM_CONNECTION_ID
from vnfm.nfvo_client import NfvoClient
from vnfm.operation import ExecutionError, OperationContext, parse_request
from vnfm.schemas import (
    ExtVirtualLinkInfo,
    HealVnfRequest,
    InstantiateVnfRequest,
    ScaleVnfRequest,
    ScaleVnfToLevelRequest,
)
from vnfm.schemas.requests import ScaleType

__all__ = [
    "HEAL_ALL_PARAM",
    "HEAL_VNFC_PARAM",
    "Rewiring",
    "VimSelection",
    "check_vim",
    "current_flavour",
    "heal_targets",
    "instantiation_plan",
    "owned_units",
    "rewiring",
    "scale_targets",
    "select_vim",
    "vim_of",
    "vnfd_of",
]

HEAL_VNFC_PARAM = "vnfcInstanceId"
"""HealVnfRequest.additionalParams key: list of VnfcResourceInfo ids (VIM replica ids) to heal.

SOL003's HealVnfRequest names no VNFC (that is SOL002's), so this VNFM takes them from
additionalParams. Without it, every replica the VIM reports FAILED (or left PENDING by a
crash) is healed; with `healAll` true, every replica of the instance.
"""
HEAL_ALL_PARAM = "healAll"


def vnfd_of(nfvo: NfvoClient, ctx: OperationContext) -> Vnfd:
    """The instance's VNFD from the NFVO; ExecutionError 422 if no onboarded package has it."""
    try:
        return nfvo.vnfd(ctx.vnfd_id)
    except KeyError:
        raise ExecutionError(
            f"VNFD {ctx.vnfd_id} is not available from the NFVO (no onboarded package has it)",
            status=422,
        ) from None


def current_flavour(ctx: OperationContext, vnfd: Vnfd) -> DeploymentFlavour:
    """The flavour the instance runs; 409 if it is not instantiated."""
    if ctx.flavour_id is None:
        raise ExecutionError(f"VNF instance {ctx.vnf_instance_id} is not instantiated", status=409)
    try:
        return vnfd.flavour(ctx.flavour_id)
    except KeyError:
        raise ExecutionError(
            f"VNFD {vnfd.vnfd_id} has no deployment flavour {ctx.flavour_id!r}", status=422
        ) from None


def instantiation_plan(
    ctx: OperationContext, vnfd: Vnfd, request: InstantiateVnfRequest
) -> planner.ResourcePlan:
    return planner.plan_instantiation(
        vnfd,
        flavour_id=request.flavourId,
        instantiation_level_id=request.instantiationLevelId,
        vnf_instance_id=ctx.vnf_instance_id,
        ext_links=ext_links.planner_links(request.extVirtualLinks or ()),
        additional_params=request.additionalParams or {},
    )


def owned_units(vim: VimAdapter, vnf_instance_id: str) -> list[Unit]:
    """Every unit the VIM has of the instance, as it is now."""
    names = [r.name for r in vim.list_owned(vnf_instance_id) if r.kind == "unit"]
    return [unit for unit in map(vim.get_unit, names) if unit is not None]


def scale_targets(
    ctx: OperationContext, flavour: DeploymentFlavour
) -> tuple[dict[str, int], dict[str, int]]:
    """SCALE and SCALE_TO_LEVEL: (new level of every aspect, new replicas of every VDU)."""
    if ctx.operation == "SCALE":
        request = parse_request(ScaleVnfRequest, ctx.params, "ScaleVnfRequest")
        return planner.scale(
            flavour,
            ctx.scale_levels,
            aspect_id=request.aspectId,
            steps=request.numberOfSteps,
            direction="SCALE_OUT" if request.type is ScaleType.SCALE_OUT else "SCALE_IN",
        )
    to_level = parse_request(ScaleVnfToLevelRequest, ctx.params, "ScaleVnfToLevelRequest")
    scale_info = (
        {s.aspectId: s.scaleLevel for s in to_level.scaleInfo}
        if to_level.scaleInfo is not None
        else None
    )
    return planner.scale_to_level(
        flavour,
        instantiation_level_id=to_level.instantiationLevelId,
        scale_info=scale_info,
        current_levels=ctx.scale_levels,
    )


def heal_targets(ctx: OperationContext, units: Sequence[Unit]) -> list[tuple[Unit, str]]:
    """HEAL: (unit, replica id) of every replica to heal (see `HEAL_VNFC_PARAM`)."""
    request = parse_request(HealVnfRequest, ctx.params, "HealVnfRequest")
    params = request.additionalParams or {}
    wanted = params.get(HEAL_VNFC_PARAM)
    if wanted is not None:
        ids = [wanted] if isinstance(wanted, str) else wanted
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ExecutionError(
                f"additionalParams.{HEAL_VNFC_PARAM} must be a list of VnfcResourceInfo ids",
                status=422,
            )
        where = {r.id: unit for unit in units for r in unit.replicas}
        unknown = [i for i in ids if i not in where]
        if unknown:
            raise ExecutionError(
                f"VNF instance {ctx.vnf_instance_id} has no VNFC {', '.join(unknown)} "
                f"(it has: {', '.join(sorted(where)) or 'none'})",
                status=422,
            )
        return [(where[i], i) for i in dict.fromkeys(ids)]
    heal_all = params.get(HEAL_ALL_PARAM) is True
    # PENDING counts as broken here: a crash left it half made, and healing rebuilds it.
    broken = (ReplicaState.FAILED, ReplicaState.PENDING)
    return [
        (unit, replica.id)
        for unit in units
        for replica in unit.replicas
        if heal_all or replica.state in broken
    ]


@dataclass(frozen=True)
class Rewiring:
    """CHANGE_EXT_CONN: the connectivity after the change and the units it replaces."""

    connectivity: planner.Connectivity
    updates: list[tuple[Unit, UnitSpec]]
    """(unit as it is, the spec it is updated to) of every unit whose replicas move."""


def _with_points(unit: Unit, points: tuple[ConnectionPointSpec, ...]) -> UnitSpec:
    """The unit's spec with other connection points; all else (processes, files) kept."""
    try:
        return UnitSpec.model_validate(
            {**unit.spec.model_dump(), "connection_points": [p.model_dump() for p in points]}
        )
    except ValidationError as exc:
        problems = "; ".join(err["msg"] for err in exc.errors())
        raise planner.PlanError(f"unit {unit.name}: {problems}") from None


def _unsettled(unit: Unit, spec: UnitSpec) -> bool:
    """A replica still on another network than `spec` says, or half made."""
    wanted = {cp.name: cp.network for cp in spec.connection_points}
    return any(
        replica.state is ReplicaState.PENDING
        or any(wanted.get(a.connection_point, a.network) != a.network for a in replica.addresses)
        for replica in unit.replicas
    )


def rewiring(
    vim: VimAdapter,
    ctx: OperationContext,
    vnfd: Vnfd,
    flavour: DeploymentFlavour,
    links: Sequence[ExtVirtualLinkInfo],
) -> Rewiring:
    """Where every unit attaches with `links` (all external links after the change).

    A unit is updated when its connection points change, and also when a run of this
    operation was cut short in the middle of it (replicas it replaced carry its op id, or
    replicas are still on the old networks): `update_unit` then finishes the job.
    """
    units = {unit.name: unit for unit in owned_units(vim, ctx.vnf_instance_id)}
    replicas: dict[str, int] = {}
    for vdu in flavour.vdus:
        name = planner.unit_name(ctx.vnf_instance_id, vdu.id)
        unit = units.get(name)
        if unit is None:
            raise ExecutionError(
                f"unit {name} of VDU {vdu.id} does not exist on the VIM; re-instantiate the VNF"
            )
        replicas[vdu.id] = unit.spec.replicas
    connectivity = planner.plan_connectivity(
        vnfd,
        flavour_id=flavour.flavour_id,
        vnf_instance_id=ctx.vnf_instance_id,
        ext_links=ext_links.planner_links(ext_links.as_requested(link) for link in links),
        replicas=replicas,
    )
    touched = {
        planner.unit_name(ctx.vnf_instance_id, r.owner.vdu_id)
        for r in vim.list_owned(ctx.vnf_instance_id)
        if r.kind == "replica" and r.owner.lcm_op_id == ctx.op_id and r.owner.vdu_id
    }
    updates: list[tuple[Unit, UnitSpec]] = []
    for name, points in connectivity.connection_points.items():
        unit = units[name]
        spec = _with_points(unit, points)
        if spec != unit.spec or name in touched or _unsettled(unit, spec):
            updates.append((unit, spec))
    return Rewiring(connectivity=connectivity, updates=updates)


@dataclass(frozen=True)
class VimSelection:
    """The VIM connection an operation acts through (one per VNF instance)."""

    connection_id: str
    """Key of the connection in the instance's vimConnectionInfo; its ResourceHandles say it."""
    vim_id: str | None
    """None: the default VIM (an instance that names none, or made before the registry)."""
    vim_type: str | None
    where: str
    """The attribute that named it, for error messages."""


def _named(key: str, value: VimConnectionInfo | Mapping[str, Any], where: str) -> VimSelection:
    connection = (
        value if isinstance(value, VimConnectionInfo) else VimConnectionInfo.model_validate(value)
    )
    if not connection.vimId:
        raise ExecutionError(
            f"{where}.{key}.vimId is required: this VNFM reaches registered VIMs only",
            status=422,
        )
    return VimSelection(key, connection.vimId, connection.vimType, f"{where}.{key}")


def select_vim(
    requested: Mapping[str, VimConnectionInfo] | None,
    known: Mapping[str, Any],
    resources_on: str | None,
) -> VimSelection:
    """Which VIM connection an operation uses; ExecutionError 422 if that is ambiguous.

    `requested` is an InstantiateVnfRequest's vimConnectionInfo (None for other operations),
    `known` the instance's, `resources_on` the connection its resources are on. The VNFM puts
    all of an instance's resources on one VIM: an INSTANTIATE names it in its request, or the
    instance's vimConnectionInfo has exactly one connection, or none (the default VIM); later
    operations use the one its resources are on.
    """
    if requested:
        if len(requested) > 1:
            raise ExecutionError(
                f"vimConnectionInfo names {len(requested)} VIMs ({', '.join(requested)}); "
                "this VNFM places all of a VNF instance's resources on one VIM",
                status=422,
            )
        ((key, connection),) = requested.items()
        return _named(key, connection, "vimConnectionInfo")
    key = resources_on or ""
    if resources_on is None:
        if len(known) > 1:
            raise ExecutionError(
                f"the VNF instance's vimConnectionInfo has {len(known)} VIM connections "
                f"({', '.join(known)}); name the one to use in the request's vimConnectionInfo",
                status=422,
            )
        key = next(iter(known), DEFAULT_VIM_CONNECTION_ID)
    entry = known.get(key)
    if entry is None:
        return VimSelection(key, None, None, "the default VIM")
    return _named(key, entry, "the VNF instance's vimConnectionInfo")


def vim_of(ctx: OperationContext) -> VimSelection:
    """The VIM connection of the occurrence (see `select_vim`)."""
    requested = None
    if ctx.operation == "INSTANTIATE":
        request = parse_request(InstantiateVnfRequest, ctx.params, "InstantiateVnfRequest")
        requested = request.vimConnectionInfo
    return select_vim(requested, ctx.vim_connection_info, ctx.vim_connection_id)


def check_vim(selection: VimSelection, vims: VimResolver) -> tuple[str, str]:
    """(vimId, vimType) of a registered VIM; ExecutionError 422 if it is unknown or mistyped."""
    vim_id = selection.vim_id or vims.default_vim_id
    try:
        vim_type = vims.vim_type(vim_id)
    except UnknownVim:
        raise ExecutionError(
            f"{selection.where}.vimId: no VIM with id {vim_id!r} is registered", status=422
        ) from None
    except VimError as exc:
        raise ExecutionError(exc.detail, retryable=exc.retryable) from None
    if selection.vim_type is not None and selection.vim_type != vim_type:
        raise ExecutionError(
            f"{selection.where}.vimType: VIM {vim_id} is of type {vim_type}, "
            f"not {selection.vim_type}",
            status=422,
        )
    return vim_id, vim_type
