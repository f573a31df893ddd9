"""The steps of each VNF LCM operation on a VIM, every one safe to repeat.

A worker calls `Executor.grant_request` in STARTING (and sends the request to
the NFVO), then `Executor.run` in PROCESSING, and `Executor.rollback` in
ROLLING_BACK; it drives the op occurrence's states itself
(`vnfm.opocc_states`). Retry is simply `run` again: the VIM adapters are
create-or-get by name, scaling sets an absolute replica count, deletes succeed
on what is gone, and the result is read back from the VIM, so a second run,
or a run after a crash at any point, converges on the same VIM state and
never makes a resource twice.

Every resource is made with `Ownership(vnf_instance_id, vdu_id, lcm_op_id=op id)`
(replicas added by a scale carry the scale's op id), which is what makes
rollback exact and lets `resource_changes` name what an operation added.

Step order:

- INSTANTIATE: plan; remove leftovers of the instance made by other operations
  (an earlier INSTANTIATE that ended FAILED: the instance is NOT_INSTANTIATED,
  so nothing of it can be in use); ensure every internal network; ensure every
  unit; wait until every unit is ready.
- SCALE, SCALE_TO_LEVEL: new levels and counts from the planner; `scale_unit`
  for every VDU whose count differs; wait for those units.
- HEAL: pick replicas (see `HEAL_VNFC_PARAM`); `heal_replica` each; wait.
- TERMINATE: delete every unit, then every network, the VIM lists as owned by
  the instance. GRACEFUL and FORCEFUL differ only in the VIM: the local VIM
  always stops a process with SIGTERM and sends SIGKILL after its
  `stop_timeout`, whatever `gracefulTerminationTimeout` says (the VIM interface
  has no per-call stop timeout).

Cancellation is checked before every VIM call; `Cancelled` leaves whatever
was done in place for a retry or rollback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from descriptors.vnfd import DeploymentFlavour, Vnfd
from vim_adapters.errors import VimError
from vim_adapters.interface import Ownership, ReplicaState, Unit, VimAdapter
from vnfm import planner
from vnfm.instantiated_info import (
    DEFAULT_VIM_CONNECTION_ID,
    compute_handle,
    internal_links,
    network_handle,
    snapshot,
)
from vnfm.nfvo_client import NfvoClient
from vnfm.opocc_states import ROLLBACK_SUPPORTED
from vnfm.schemas import (
    HealVnfRequest,
    InstantiateVnfRequest,
    ResourceChanges,
    ScaleVnfRequest,
    ScaleVnfToLevelRequest,
    TerminateVnfRequest,
)
from vnfm.schemas.common import API_MAJOR, API_NAME, ExtVirtualLinkData
from vnfm.schemas.requests import ScaleType

__all__ = [
    "HEAL_ALL_PARAM",
    "HEAL_VNFC_PARAM",
    "Cancelled",
    "ExecutionError",
    "Executor",
    "OperationContext",
    "OperationResult",
]

log = logging.getLogger(__name__)

HEAL_VNFC_PARAM = "vnfcInstanceId"
"""HealVnfRequest.additionalParams key: list of VnfcResourceInfo ids (VIM replica ids) to heal.

SOL003's HealVnfRequest names no VNFC (that is SOL002's), so this VNFM takes them from
additionalParams. Without it, every replica the VIM reports FAILED (or left PENDING by a
crash) is healed; with `healAll` true, every replica of the instance.
"""
HEAL_ALL_PARAM = "healAll"

_T = TypeVar("_T", bound=BaseModel)


def _never() -> bool:
    return False


@dataclass(frozen=True)
class OperationContext:
    """One LCM operation occurrence as the executor needs it."""

    op_id: str
    operation: str
    """LcmOperationType value: INSTANTIATE, SCALE, SCALE_TO_LEVEL, HEAL or TERMINATE."""
    vnf_instance_id: str
    vnfd_id: str
    params: dict[str, Any]
    """The task's request body as JSON (InstantiateVnfRequest, ScaleVnfRequest, ...)."""
    flavour_id: str | None = None
    scale_levels: dict[str, int] = field(default_factory=dict)
    instantiation_level_id: str | None = None
    cancel_requested: Callable[[], bool] = _never


@dataclass(frozen=True)
class OperationResult:
    """What the caller stores on the VNF instance and the op occurrence when `run` succeeds."""

    instantiation_state: str
    flavour_id: str | None
    scale_levels: dict[str, int]
    vnf_state: str | None
    instantiated_info: dict[str, Any] | None
    """InstantiatedVnfInfo JSON (ETSI names, no nulls); None when NOT_INSTANTIATED."""
    resource_changes: dict[str, Any]
    """ResourceChanges JSON of the op occurrence."""
    changed_info: None = None
    instantiation_level_id: str | None = None
    """The level the instance is at after INSTANTIATE (the default one if none was asked)."""


class ExecutionError(Exception):
    """A step failed; `status` and `detail` go into the op occurrence's ProblemDetails."""

    def __init__(self, detail: str, *, status: int = 500, retryable: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.retryable = retryable


class Cancelled(ExecutionError):
    """The operation was cancelled between two steps; what was done so far stays."""

    def __init__(self, detail: str) -> None:
        # Retryable: every step is idempotent, so a retry continues where this stopped.
        super().__init__(detail, status=409, retryable=True)


class _Changes:
    """ResourceChanges being collected, deduplicated by resource id."""

    def __init__(self) -> None:
        self.vnfcs: dict[str, dict[str, Any]] = {}
        self.links: dict[str, dict[str, Any]] = {}

    def vnfc(self, change: str, replica_id: str, vdu_id: str, handle: dict[str, str]) -> None:
        self.vnfcs[replica_id] = {
            "id": replica_id,
            "vduId": vdu_id,
            "changeType": change,
            "computeResource": handle,
        }

    def link(self, change: str, network: str, vl_id: str, handle: dict[str, str]) -> None:
        self.links[network] = {
            "id": network,
            "vnfVirtualLinkDescId": vl_id,
            "changeType": change,
            "networkResource": handle,
        }

    def dump(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.vnfcs:
            body["affectedVnfcs"] = list(self.vnfcs.values())
        if self.links:
            body["affectedVirtualLinks"] = list(self.links.values())
        model = ResourceChanges.model_validate(body)
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _parse(model: type[_T], params: Mapping[str, Any], what: str) -> _T:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ExecutionError(f"invalid {what}: {problems}", status=422) from None


def _ext_links(links: Iterable[ExtVirtualLinkData]) -> list[planner.ExternalLink]:
    """InstantiateVnfRequest.extVirtualLinks as the planner takes them."""
    result: list[planner.ExternalLink] = []
    for link in links:
        fixed: dict[str, list[str]] = {}
        for ext_cp in link.extCps:
            # cpConfig entries are CP instances; their order (JSON object order) is replica order.
            addresses = [
                address
                for config in (ext_cp.cpConfig or {}).values()
                if config is not None
                for data in config.cpProtocolData or ()
                if data.ipOverEthernet is not None
                for ip in data.ipOverEthernet.ipAddresses or ()
                for address in ip.fixedAddresses or ()
            ]
            if addresses:
                fixed.setdefault(ext_cp.cpdId, []).extend(addresses)
        try:
            result.append(
                planner.ExternalLink(
                    network=link.resourceId,
                    ext_cps=[cp.cpdId for cp in link.extCps],
                    fixed_addresses=fixed,
                )
            )
        except ValidationError as exc:
            problems = "; ".join(err["msg"] for err in exc.errors())
            raise ExecutionError(
                f"external virtual link {link.id}: {problems}", status=422
            ) from None
    return result


class Executor:
    """Runs LCM operations of VNF instances on one VIM."""

    def __init__(
        self,
        vim: VimAdapter,
        nfvo: NfvoClient,
        *,
        ready_timeout: float = 120.0,
        api_root: str = "http://localhost",
        vim_connection_id: str = DEFAULT_VIM_CONNECTION_ID,
    ) -> None:
        self.vim = vim
        self.nfvo = nfvo
        self.ready_timeout = ready_timeout
        self.api_root = api_root.rstrip("/")
        self.vim_connection_id = vim_connection_id

    # -- public API ------------------------------------------------------------------------

    def grant_request(
        self, ctx: OperationContext, *, api_root: str | None = None
    ) -> dict[str, Any]:
        """The SOL003 GrantRequest for this operation, as JSON, for the caller to send."""
        try:
            return self._grant_request(ctx, (api_root or self.api_root).rstrip("/"))
        except planner.PlanError as exc:
            raise ExecutionError(exc.detail, status=422) from None
        except VimError as exc:
            raise ExecutionError(exc.detail, retryable=exc.retryable) from None

    def run(self, ctx: OperationContext) -> OperationResult:
        """Perform the operation; safe to call again after any failure or crash."""
        steps: dict[str, Callable[[OperationContext], OperationResult]] = {
            "INSTANTIATE": self._instantiate,
            "SCALE": self._scale,
            "SCALE_TO_LEVEL": self._scale_to_level,
            "HEAL": self._heal,
            "TERMINATE": self._terminate,
        }
        step = steps.get(ctx.operation)
        if step is None:
            raise ExecutionError(
                f"operation {ctx.operation} is not supported by this VNFM", status=422
            )
        log.info("op %s: %s of VNF instance %s", ctx.op_id, ctx.operation, ctx.vnf_instance_id)
        try:
            return step(ctx)
        except planner.PlanError as exc:
            raise ExecutionError(exc.detail, status=422) from None
        except VimError as exc:
            raise ExecutionError(
                f"{ctx.operation} failed on the VIM: {exc.detail}", retryable=exc.retryable
            ) from None

    def rollback(self, ctx: OperationContext) -> None:
        """Remove exactly what this operation (ctx.op_id) made on the VIM."""
        if ctx.operation not in ROLLBACK_SUPPORTED:
            raise ExecutionError(
                f"rollback is not supported for {ctx.operation} "
                f"(only {', '.join(sorted(ROLLBACK_SUPPORTED))})",
                status=404,
            )
        owned = [
            r for r in self.vim.list_owned(ctx.vnf_instance_id) if r.owner.lcm_op_id == ctx.op_id
        ]
        try:
            # Units before networks: a network in use cannot be deleted.
            for resource in (r for r in owned if r.kind == "unit"):
                self._check_cancel(ctx, f"deleting unit {resource.name}")
                self.vim.delete_unit(resource.name)
            for resource in (r for r in owned if r.kind == "network"):
                self._check_cancel(ctx, f"deleting network {resource.name}")
                self.vim.delete_network(resource.name)
        except VimError as exc:
            raise ExecutionError(
                f"rollback failed on the VIM: {exc.detail}", retryable=exc.retryable
            ) from None

    # -- shared steps ---------------------------------------------------------------------

    def _check_cancel(self, ctx: OperationContext, before: str) -> None:
        if ctx.cancel_requested():
            log.info("op %s: cancelled before %s", ctx.op_id, before)
            raise Cancelled(f"{ctx.operation} cancelled before {before}")

    def _vnfd(self, ctx: OperationContext) -> Vnfd:
        try:
            return self.nfvo.vnfd(ctx.vnfd_id)
        except KeyError:
            raise ExecutionError(
                f"VNFD {ctx.vnfd_id} is not available from the NFVO (no onboarded package has it)",
                status=422,
            ) from None

    def _current_flavour(self, ctx: OperationContext, vnfd: Vnfd) -> DeploymentFlavour:
        if ctx.flavour_id is None:
            raise ExecutionError(
                f"VNF instance {ctx.vnf_instance_id} is not instantiated", status=409
            )
        try:
            return vnfd.flavour(ctx.flavour_id)
        except KeyError:
            raise ExecutionError(
                f"VNFD {vnfd.vnfd_id} has no deployment flavour {ctx.flavour_id!r}", status=422
            ) from None

    def _plan(
        self, ctx: OperationContext, vnfd: Vnfd, request: InstantiateVnfRequest
    ) -> planner.ResourcePlan:
        return planner.plan_instantiation(
            vnfd,
            flavour_id=request.flavourId,
            instantiation_level_id=request.instantiationLevelId,
            vnf_instance_id=ctx.vnf_instance_id,
            ext_links=_ext_links(request.extVirtualLinks or ()),
            additional_params=request.additionalParams or {},
        )

    def _units(self, vnf_instance_id: str) -> list[Unit]:
        names = [r.name for r in self.vim.list_owned(vnf_instance_id) if r.kind == "unit"]
        return [unit for unit in map(self.vim.get_unit, names) if unit is not None]

    def _wait(self, ctx: OperationContext, names: Iterable[str]) -> None:
        # One deadline for the step: ready_timeout bounds the operation's wait, not each unit's.
        deadline = time.monotonic() + self.ready_timeout
        for name in names:
            self._check_cancel(ctx, f"waiting for unit {name}")
            self.vim.wait_ready(name, timeout=max(deadline - time.monotonic(), 0.0))

    def _added_by(self, ctx: OperationContext, changes: _Changes) -> None:
        """Every replica the VIM records as made by this operation, as ADDED."""
        for resource in self.vim.list_owned(ctx.vnf_instance_id):
            if resource.kind == "replica" and resource.owner.lcm_op_id == ctx.op_id:
                changes.vnfc(
                    "ADDED",
                    resource.name,
                    resource.owner.vdu_id or "",
                    compute_handle(self.vim, resource.name, self.vim_connection_id),
                )

    def _instantiated(
        self,
        ctx: OperationContext,
        vnfd: Vnfd,
        flavour_id: str,
        levels: dict[str, int],
        changes: _Changes,
        level_id: str | None,
    ) -> OperationResult:
        info = snapshot(
            self.vim,
            ctx.vnf_instance_id,
            flavour_id,
            levels,
            vnfd,
            vim_connection_id=self.vim_connection_id,
        )
        return OperationResult(
            instantiation_state="INSTANTIATED",
            flavour_id=flavour_id,
            scale_levels=levels,
            vnf_state="STARTED",
            instantiated_info=info,
            resource_changes=changes.dump(),
            instantiation_level_id=level_id,
        )

    # -- INSTANTIATE ----------------------------------------------------------------------

    def _instantiate(self, ctx: OperationContext) -> OperationResult:
        request = _parse(InstantiateVnfRequest, ctx.params, "InstantiateVnfRequest")
        self._check_cancel(ctx, "planning")
        vnfd = self._vnfd(ctx)
        plan = self._plan(ctx, vnfd, request)
        flavour = vnfd.flavour(request.flavourId)
        self._remove_leftovers(ctx)
        vdu_of = {planner.unit_name(ctx.vnf_instance_id, vdu.id): vdu.id for vdu in flavour.vdus}
        for network in plan.networks:
            self._check_cancel(ctx, f"creating network {network.name}")
            self.vim.ensure_network(
                network, Ownership(vnf_instance_id=ctx.vnf_instance_id, lcm_op_id=ctx.op_id)
            )
        for unit in plan.units:
            self._check_cancel(ctx, f"creating unit {unit.name}")
            owner = Ownership(
                vnf_instance_id=ctx.vnf_instance_id, vdu_id=vdu_of[unit.name], lcm_op_id=ctx.op_id
            )
            self.vim.ensure_unit(unit, owner)
        self._wait(ctx, (unit.name for unit in plan.units))

        changes = _Changes()
        self._added_by(ctx, changes)
        link_of = internal_links(vnfd, ctx.vnf_instance_id)
        for network in plan.networks:
            handle = network_handle(self.vim, network.name, self.vim_connection_id)
            changes.link("ADDED", network.name, link_of[network.name], handle)
        level_id = request.instantiationLevelId
        if level_id is None and flavour.instantiation_levels:
            level_id = flavour.instantiation_level(None).id
        return self._instantiated(
            ctx, vnfd, request.flavourId, plan.scale_levels, changes, level_id
        )

    def _remove_leftovers(self, ctx: OperationContext) -> None:
        """Delete what other operations left of this (not instantiated) instance.

        Only a failed earlier INSTANTIATE that was not rolled back leaves anything; its
        resources carry its own op id, so ensuring them with this op's would conflict.
        """
        stale = [
            r for r in self.vim.list_owned(ctx.vnf_instance_id) if r.owner.lcm_op_id != ctx.op_id
        ]
        for resource in (r for r in stale if r.kind == "unit"):
            self._check_cancel(ctx, f"removing leftover unit {resource.name}")
            log.warning("op %s: removing leftover unit %s", ctx.op_id, resource.name)
            self.vim.delete_unit(resource.name)
        for resource in (r for r in stale if r.kind == "network"):
            self._check_cancel(ctx, f"removing leftover network {resource.name}")
            log.warning("op %s: removing leftover network %s", ctx.op_id, resource.name)
            self.vim.delete_network(resource.name)

    # -- SCALE, SCALE_TO_LEVEL ------------------------------------------------------------

    def _scale_targets(
        self, ctx: OperationContext, flavour: DeploymentFlavour
    ) -> tuple[dict[str, int], dict[str, int]]:
        if ctx.operation == "SCALE":
            request = _parse(ScaleVnfRequest, ctx.params, "ScaleVnfRequest")
            return planner.scale(
                flavour,
                ctx.scale_levels,
                aspect_id=request.aspectId,
                steps=request.numberOfSteps,
                direction="SCALE_OUT" if request.type is ScaleType.SCALE_OUT else "SCALE_IN",
            )
        to_level = _parse(ScaleVnfToLevelRequest, ctx.params, "ScaleVnfToLevelRequest")
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

    def _scale(self, ctx: OperationContext) -> OperationResult:
        self._check_cancel(ctx, "planning")
        vnfd = self._vnfd(ctx)
        flavour = self._current_flavour(ctx, vnfd)
        levels, replicas = self._scale_targets(ctx, flavour)
        # Units this operation already grew (a re-run after a crash) still need their wait.
        grown = {
            r.owner.vdu_id
            for r in self.vim.list_owned(ctx.vnf_instance_id)
            if r.kind == "replica" and r.owner.lcm_op_id == ctx.op_id
        }
        changes = _Changes()
        touched: list[str] = []
        for vdu_id, target in replicas.items():
            name = planner.unit_name(ctx.vnf_instance_id, vdu_id)
            unit = self.vim.get_unit(name)
            if unit is None:
                raise ExecutionError(
                    f"unit {name} of VDU {vdu_id} does not exist on the VIM; "
                    "heal or re-instantiate the VNF"
                )
            # A re-run after a crash may find the new count recorded but replicas
            # missing or half made: scaling again (create-or-get) finishes them.
            unfinished = len(unit.replicas) != target or any(
                r.state is ReplicaState.PENDING for r in unit.replicas
            )
            if unit.spec.replicas != target or unfinished or vdu_id in grown:
                for replica in unit.replicas:
                    if replica.index >= target:
                        handle = compute_handle(self.vim, replica.id, self.vim_connection_id)
                        changes.vnfc("REMOVED", replica.id, vdu_id, handle)
                self._check_cancel(ctx, f"scaling unit {name} to {target}")
                log.info(
                    "op %s: scaling %s from %d to %d", ctx.op_id, name, unit.spec.replicas, target
                )
                self.vim.scale_unit(name, target, lcm_op_id=ctx.op_id)
                touched.append(name)
        self._wait(ctx, touched)
        self._added_by(ctx, changes)
        return self._instantiated(ctx, vnfd, flavour.flavour_id, levels, changes, None)

    def _scale_to_level(self, ctx: OperationContext) -> OperationResult:
        return self._scale(ctx)

    # -- HEAL -----------------------------------------------------------------------------

    def _heal_targets(self, ctx: OperationContext, units: list[Unit]) -> list[tuple[Unit, str]]:
        request = _parse(HealVnfRequest, ctx.params, "HealVnfRequest")
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

    def _heal(self, ctx: OperationContext) -> OperationResult:
        self._check_cancel(ctx, "planning")
        vnfd = self._vnfd(ctx)
        flavour = self._current_flavour(ctx, vnfd)
        units = self._units(ctx.vnf_instance_id)
        targets = self._heal_targets(ctx, units)
        changes = _Changes()
        healed: list[str] = []
        for unit, replica_id in targets:
            self._check_cancel(ctx, f"healing {replica_id}")
            log.info("op %s: healing %s", ctx.op_id, replica_id)
            self.vim.heal_replica(unit.name, replica_id)
            handle = compute_handle(self.vim, replica_id, self.vim_connection_id)
            changes.vnfc("MODIFIED", replica_id, unit.owner.vdu_id or unit.name, handle)
            if unit.name not in healed:
                healed.append(unit.name)
        self._wait(ctx, healed)
        return self._instantiated(
            ctx, vnfd, flavour.flavour_id, dict(ctx.scale_levels), changes, None
        )

    # -- TERMINATE ------------------------------------------------------------------------

    def _terminate(self, ctx: OperationContext) -> OperationResult:
        request = _parse(TerminateVnfRequest, ctx.params, "TerminateVnfRequest")
        log.info(
            "op %s: %s termination of %s", ctx.op_id, request.terminationType, ctx.vnf_instance_id
        )
        vnfd = self._vnfd(ctx)
        link_of = internal_links(vnfd, ctx.vnf_instance_id)
        owned = self.vim.list_owned(ctx.vnf_instance_id)
        changes = _Changes()
        for resource in (r for r in owned if r.kind == "replica"):
            handle = compute_handle(self.vim, resource.name, self.vim_connection_id)
            changes.vnfc("REMOVED", resource.name, resource.owner.vdu_id or "", handle)
        for resource in (r for r in owned if r.kind == "unit"):
            self._check_cancel(ctx, f"deleting unit {resource.name}")
            self.vim.delete_unit(resource.name)
        for resource in (r for r in owned if r.kind == "network"):
            self._check_cancel(ctx, f"deleting network {resource.name}")
            self.vim.delete_network(resource.name)
            handle = network_handle(self.vim, resource.name, self.vim_connection_id)
            changes.link(
                "REMOVED", resource.name, link_of.get(resource.name, resource.name), handle
            )
        return OperationResult(
            instantiation_state="NOT_INSTANTIATED",
            flavour_id=None,
            scale_levels={},
            vnf_state=None,
            instantiated_info=None,
            resource_changes=changes.dump(),
        )

    # -- granting -------------------------------------------------------------------------

    def _grant_request(self, ctx: OperationContext, api_root: str) -> dict[str, Any]:
        vnfd = self._vnfd(ctx)
        base = f"{api_root}/{API_NAME}/{API_MAJOR}"
        body: dict[str, Any] = {
            "vnfInstanceId": ctx.vnf_instance_id,
            "vnfLcmOpOccId": ctx.op_id,
            "vnfdId": ctx.vnfd_id,
            "flavourId": ctx.flavour_id,
            "operation": ctx.operation,
            "isAutomaticInvocation": False,
        }
        add: list[dict[str, Any]] = []
        remove: list[dict[str, Any]] = []
        update: list[dict[str, Any]] = []
        if ctx.operation == "INSTANTIATE":
            request = _parse(InstantiateVnfRequest, ctx.params, "InstantiateVnfRequest")
            plan = self._plan(ctx, vnfd, request)
            flavour = vnfd.flavour(request.flavourId)
            body["flavourId"] = request.flavourId
            level = request.instantiationLevelId
            if level is None and flavour.instantiation_levels:
                level = flavour.instantiation_level(None).id
            body["instantiationLevelId"] = level
            for vdu in flavour.vdus:
                add += [_compute(vdu.id, index) for index in range(plan.replicas[vdu.id])]
            link_of = internal_links(vnfd, ctx.vnf_instance_id)
            add += [_link(link_of[network.name]) for network in plan.networks]
        elif ctx.operation in ("SCALE", "SCALE_TO_LEVEL"):
            flavour = self._current_flavour(ctx, vnfd)
            _, replicas = self._scale_targets(ctx, flavour)
            for vdu_id, target in replicas.items():
                unit = self.vim.get_unit(planner.unit_name(ctx.vnf_instance_id, vdu_id))
                current = unit.replicas if unit is not None else ()
                add += [_compute(vdu_id, index) for index in range(len(current), target)]
                remove += [self._existing(vdu_id, r.id) for r in current if r.index >= target]
        elif ctx.operation == "HEAL":
            self._current_flavour(ctx, vnfd)
            targets = self._heal_targets(ctx, self._units(ctx.vnf_instance_id))
            update += [self._existing(u.owner.vdu_id or u.name, rid) for u, rid in targets]
        elif ctx.operation == "TERMINATE":
            link_of = internal_links(vnfd, ctx.vnf_instance_id)
            for resource in self.vim.list_owned(ctx.vnf_instance_id):
                if resource.kind == "replica" and resource.owner.vdu_id is not None:
                    remove.append(self._existing(resource.owner.vdu_id, resource.name))
                elif resource.kind == "network" and resource.name in link_of:
                    remove.append(
                        {
                            "id": f"vl-{resource.name}",
                            "type": "VL",
                            "resourceTemplateId": link_of[resource.name],
                            "resource": network_handle(
                                self.vim, resource.name, self.vim_connection_id
                            ),
                        }
                    )
        else:
            raise ExecutionError(
                f"operation {ctx.operation} is not supported by this VNFM", status=422
            )
        for key, definitions in (
            ("addResources", add),
            ("removeResources", remove),
            ("updateResources", update),
        ):
            if definitions:
                body[key] = definitions
        body["_links"] = {
            "vnfLcmOpOcc": {"href": f"{base}/vnf_lcm_op_occs/{ctx.op_id}"},
            "vnfInstance": {"href": f"{base}/vnf_instances/{ctx.vnf_instance_id}"},
        }
        return {key: value for key, value in body.items() if value is not None}

    def _existing(self, vdu_id: str, replica_id: str) -> dict[str, Any]:
        return {
            "id": f"compute-{replica_id}",
            "type": "COMPUTE",
            "vduId": vdu_id,
            "resourceTemplateId": vdu_id,
            "resource": compute_handle(self.vim, replica_id, self.vim_connection_id),
        }


def _compute(vdu_id: str, index: int) -> dict[str, Any]:
    # SOL001 has no separate virtual compute descriptor id: the VDU's id stands for it.
    return {
        "id": f"compute-{vdu_id}-{index}",
        "type": "COMPUTE",
        "vduId": vdu_id,
        "resourceTemplateId": vdu_id,
    }


def _link(vl_id: str) -> dict[str, Any]:
    return {"id": f"vl-{vl_id}", "type": "VL", "resourceTemplateId": vl_id}
