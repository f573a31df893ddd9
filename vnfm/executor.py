"""The steps of each VNF LCM operation on a VIM, every one safe to repeat.

A worker calls `Executor.grant_request` in STARTING (and sends the request to
the NFVO) unless `Executor.needs_grant` says the operation needs none
(MODIFY_INFO), then `Executor.run` in PROCESSING, and `Executor.rollback` in
ROLLING_BACK; it drives the op occurrence's states itself
(`vnfm.opocc_states`). What each operation acts on is worked out by
`vnfm.targets` for both the grant request (`vnfm.grant_request`) and the run.

Retry is simply `run` again: the VIM adapters are create-or-get by name,
scaling sets an absolute replica count, deletes succeed on what is gone, and
the result is read back from the VIM, so a second run, or a run after a crash
at any point, converges on the same VIM state and never makes a resource twice.

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
- OPERATE: `set_running` on every unit, one unit after the other (a GRACEFUL stop
  gives each unit `gracefulStopTimeout`, FORCEFUL kills at once); after a start,
  wait until every unit is ready.
- CHANGE_EXT_CONN: merge the request's links into the instance's (`vnfm.ext_links`);
  re-plan every unit's connection points with the current replica counts;
  `update_unit` each unit whose replicas move (the VIM replaces them one at a
  time); wait; delete internal links no unit uses any more (an external link took
  them over).
- CHANGE_FLAVOUR: plan the instance whole at the new flavour and level
  (`vnfm.change_flavour`), then converge on it: networks ensured; units of VDUs
  the flavour has not deleted, new ones created, the others scaled in, updated
  (`update_unit` replaces the replicas whose spec differs) and scaled out; wait;
  internal networks the plan has not deleted. Rollback converges on the flavour
  the instance's record still has.
- MODIFY_INFO: nothing on the VIM; check the request again (`vnfm.modify_info`)
  and hand the modifications back to be stored with the completion.

Cancellation is checked before every VIM call; `Cancelled` leaves whatever
was done in place for a retry or rollback.

Which VIM: with a `VimResolver` (the NFVO's VIM registry), every call works on
the VIM of the occurrence's instance (`targets.vim_of`: an INSTANTIATE's
vimConnectionInfo, later the connection the instance's resources are on), and
the grant request names it in `additionalParams.vimConnectionInfo`; without
one, on the single VIM it was given.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from descriptors.vnfd import Vnfd
from vim_adapters.errors import VimError
from vim_adapters.interface import Ownership, ReplicaState, VimAdapter
from vim_adapters.registry import VimResolver
from vnfm import change_flavour, ext_links, grant_request, planner, targets
from vnfm.instantiated_info import (
    DEFAULT_VIM_CONNECTION_ID,
    compute_handle,
    internal_links,
    network_handle,
    snapshot,
)
from vnfm.modify_info import ModificationRefused, prepare
from vnfm.nfvo_client import NfvoClient
from vnfm.operation import (
    Cancelled,
    ExecutionError,
    InfoModifications,
    OperationContext,
    OperationResult,
    parse_request,
)
from vnfm.opocc_states import ROLLBACK_SUPPORTED
from vnfm.resource_changes import ChangeLog
from vnfm.schemas import (
    ChangeExtVnfConnectivityRequest,
    ChangeVnfFlavourRequest,
    ExtVirtualLinkInfo,
    InstantiateVnfRequest,
    OperateVnfRequest,
    StopType,
    TerminateVnfRequest,
    VnfInfoModificationRequest,
    VnfOperationalStateType,
)
from vnfm.targets import HEAL_ALL_PARAM, HEAL_VNFC_PARAM

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


RECORD_ONLY = frozenset({"MODIFY_INFO"})
"""operations that change only the VNFM's records, never the VIM: they need no VIM (an
instance whose connection names a VIM not registered (yet) can still be modified)"""


class Executor:
    """Runs LCM operations of VNF instances on one VIM, or on the VIM of each instance."""

    def __init__(
        self,
        vim: VimAdapter,
        nfvo: NfvoClient,
        *,
        ready_timeout: float = 120.0,
        api_root: str = "http://localhost",
        vim_connection_id: str = DEFAULT_VIM_CONNECTION_ID,
        vims: VimResolver | None = None,
    ) -> None:
        """With `vims`, `vim` is the adapter of `vims.default_vim_id`."""
        self.vim = vim
        self.nfvo = nfvo
        self.ready_timeout = ready_timeout
        self.api_root = api_root.rstrip("/")
        self.vim_connection_id = vim_connection_id
        self.vims = vims
        # The connection named in grant requests (set on an executor bound to a VIM).
        self.vim_connection: dict[str, dict[str, str]] | None = None

    def _bound(self, ctx: OperationContext) -> Executor:
        """This executor on the VIM of the occurrence's instance (see `targets.vim_of`)."""
        assert self.vims is not None
        selection = targets.vim_of(ctx)
        vim_id, vim_type = targets.check_vim(selection, self.vims)
        if vim_id == self.vims.default_vim_id:
            adapter = self.vim
        else:
            try:
                adapter = self.vims.adapter(vim_id)
            except VimError as exc:
                raise ExecutionError(
                    f"VIM {vim_id} cannot be reached: {exc.detail}", retryable=exc.retryable
                ) from None
        bound = copy.copy(self)
        bound.vims = None
        bound.vim = adapter
        bound.vim_connection_id = selection.connection_id
        bound.vim_connection = {selection.connection_id: {"vimId": vim_id, "vimType": vim_type}}
        return bound

    # -- public API ------------------------------------------------------------------------

    def needs_grant(self, ctx: OperationContext) -> bool:
        """Whether the operation is granted by the NFVO before it runs (not MODIFY_INFO)."""
        return grant_request.needs_grant(ctx.operation)

    def grant_request(
        self, ctx: OperationContext, *, api_root: str | None = None
    ) -> dict[str, Any]:
        """The SOL003 GrantRequest for this operation, as JSON, for the caller to send."""
        if self.vims is not None and ctx.operation not in RECORD_ONLY:
            return self._bound(ctx).grant_request(ctx, api_root=api_root)
        try:
            vnfd = targets.vnfd_of(self.nfvo, ctx)
            return grant_request.build(
                ctx,
                vim=self.vim,
                vnfd=vnfd,
                api_root=(api_root or self.api_root),
                vim_connection_id=self.vim_connection_id,
                vim_connection=self.vim_connection,
            )
        except planner.PlanError as exc:
            raise ExecutionError(exc.detail, status=422) from None
        except VimError as exc:
            raise ExecutionError(exc.detail, retryable=exc.retryable) from None

    def run(self, ctx: OperationContext) -> OperationResult:
        """Perform the operation; safe to call again after any failure or crash."""
        if self.vims is not None and ctx.operation not in RECORD_ONLY:
            return self._bound(ctx).run(ctx)
        steps: dict[str, Callable[[OperationContext], OperationResult]] = {
            "INSTANTIATE": self._instantiate,
            "SCALE": self._scale,
            "SCALE_TO_LEVEL": self._scale,
            "HEAL": self._heal,
            "TERMINATE": self._terminate,
            "OPERATE": self._operate,
            "CHANGE_EXT_CONN": self._change_ext_conn,
            "CHANGE_FLAVOUR": self._change_flavour,
            "MODIFY_INFO": self._modify_info,
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
        """Undo the operation on the VIM: remove exactly what it (ctx.op_id) made, or, for a
        CHANGE_FLAVOUR, put the flavour on record back."""
        if self.vims is not None and ctx.operation not in RECORD_ONLY:
            return self._bound(ctx).rollback(ctx)
        if ctx.operation not in ROLLBACK_SUPPORTED:
            raise ExecutionError(
                f"rollback is not supported for {ctx.operation} "
                f"(only {', '.join(sorted(ROLLBACK_SUPPORTED))})",
                status=404,
            )
        if ctx.operation == "CHANGE_FLAVOUR":
            return self._restore_flavour(ctx)
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

    def _wait(self, ctx: OperationContext, names: Iterable[str]) -> None:
        # One deadline for the step: ready_timeout bounds the operation's wait, not each unit's.
        deadline = time.monotonic() + self.ready_timeout
        for name in names:
            self._check_cancel(ctx, f"waiting for unit {name}")
            self.vim.wait_ready(name, timeout=max(deadline - time.monotonic(), 0.0))

    def _compute(self, replica_id: str) -> dict[str, str]:
        return compute_handle(self.vim, replica_id, self.vim_connection_id)

    def _handles(self) -> ext_links.HandleFor:
        return ext_links.handles_on(self.vim, self.vim_connection_id)

    def _instantiated(
        self,
        ctx: OperationContext,
        vnfd: Vnfd,
        flavour_id: str,
        levels: dict[str, int],
        changes: ChangeLog,
        level_id: str | None,
        *,
        vnf_state: str | None = None,
        links: list[ExtVirtualLinkInfo] | None = None,
        **extra: Any,
    ) -> OperationResult:
        """The result of an operation that leaves the instance INSTANTIATED.

        `vnf_state` and `links` default to the instance's as they were (`extra` goes to the
        OperationResult as it is).
        """
        state = vnf_state or ctx.vnf_state or VnfOperationalStateType.STARTED.value
        if links is None:
            # Stored handles are completed too (an older instance's may lack the VIM type).
            handle_for = self._handles()
            links = [
                link.model_copy(update={"resourceHandle": handle_for(ext_links.as_requested(link))})
                for link in ext_links.load(ctx.ext_virtual_links)
            ]
        info = snapshot(
            self.vim,
            ctx.vnf_instance_id,
            flavour_id,
            levels,
            vnfd,
            vim_connection_id=self.vim_connection_id,
            vnf_state=state,
            ext_virtual_links=ext_links.dump(links),
        )
        return OperationResult(
            instantiation_state="INSTANTIATED",
            flavour_id=flavour_id,
            scale_levels=levels,
            vnf_state=state,
            instantiated_info=info,
            resource_changes=changes.dump(),
            instantiation_level_id=level_id,
            **extra,
        )

    # -- INSTANTIATE ----------------------------------------------------------------------

    def _instantiate(self, ctx: OperationContext) -> OperationResult:
        request = parse_request(InstantiateVnfRequest, ctx.params, "InstantiateVnfRequest")
        self._check_cancel(ctx, "planning")
        vnfd = targets.vnfd_of(self.nfvo, ctx)
        plan = targets.instantiation_plan(ctx, vnfd, request)
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

        changes = ChangeLog()
        changes.added_by(self.vim, ctx.vnf_instance_id, ctx.op_id, self.vim_connection_id)
        link_of = internal_links(vnfd, ctx.vnf_instance_id)
        for network in plan.networks:
            handle = network_handle(self.vim, network.name, self.vim_connection_id)
            changes.link("ADDED", network.name, link_of[network.name], handle)
        level_id = request.instantiationLevelId
        if level_id is None and flavour.instantiation_levels:
            level_id = flavour.instantiation_level(None).id
        links = ext_links.merge([], request.extVirtualLinks or [], handle_for=self._handles())
        modifications = None
        if request.vimConnectionInfo:
            # The instance keeps the VIM it was made on (SOL003: the request's connections
            # are the instance's). Credentials come from the VIM registry, never from here.
            patch = {
                key: value.model_dump(mode="json", exclude_none=True, exclude={"accessInfo"})
                for key, value in request.vimConnectionInfo.items()
            }
            modifications = InfoModifications(patch={"vimConnectionInfo": patch})
        return self._instantiated(
            ctx,
            vnfd,
            request.flavourId,
            plan.scale_levels,
            changes,
            level_id,
            vnf_state=VnfOperationalStateType.STARTED.value,
            links=links,
            modifications=modifications,
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

    def _scale(self, ctx: OperationContext) -> OperationResult:
        self._check_cancel(ctx, "planning")
        vnfd = targets.vnfd_of(self.nfvo, ctx)
        flavour = targets.current_flavour(ctx, vnfd)
        levels, replicas = targets.scale_targets(ctx, flavour)
        # Units this operation already grew (a re-run after a crash) still need their wait.
        grown = {
            r.owner.vdu_id
            for r in self.vim.list_owned(ctx.vnf_instance_id)
            if r.kind == "replica" and r.owner.lcm_op_id == ctx.op_id
        }
        changes = ChangeLog()
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
                        changes.vnfc("REMOVED", replica.id, vdu_id, self._compute(replica.id))
                self._check_cancel(ctx, f"scaling unit {name} to {target}")
                log.info(
                    "op %s: scaling %s from %d to %d", ctx.op_id, name, unit.spec.replicas, target
                )
                self.vim.scale_unit(name, target, lcm_op_id=ctx.op_id)
                touched.append(name)
        self._wait(ctx, touched)
        changes.added_by(self.vim, ctx.vnf_instance_id, ctx.op_id, self.vim_connection_id)
        return self._instantiated(ctx, vnfd, flavour.flavour_id, levels, changes, None)

    # -- HEAL -----------------------------------------------------------------------------

    def _heal(self, ctx: OperationContext) -> OperationResult:
        self._check_cancel(ctx, "planning")
        vnfd = targets.vnfd_of(self.nfvo, ctx)
        flavour = targets.current_flavour(ctx, vnfd)
        units = targets.owned_units(self.vim, ctx.vnf_instance_id)
        chosen = targets.heal_targets(ctx, units)
        changes = ChangeLog()
        healed: list[str] = []
        for unit, replica_id in chosen:
            self._check_cancel(ctx, f"healing {replica_id}")
            log.info("op %s: healing %s", ctx.op_id, replica_id)
            self.vim.heal_replica(unit.name, replica_id)
            changes.vnfc(
                "MODIFIED", replica_id, unit.owner.vdu_id or unit.name, self._compute(replica_id)
            )
            if unit.name not in healed:
                healed.append(unit.name)
        self._wait(ctx, healed)
        return self._instantiated(
            ctx, vnfd, flavour.flavour_id, dict(ctx.scale_levels), changes, None
        )

    # -- OPERATE --------------------------------------------------------------------------

    def _operate(self, ctx: OperationContext) -> OperationResult:
        request = parse_request(OperateVnfRequest, ctx.params, "OperateVnfRequest")
        self._check_cancel(ctx, "planning")
        vnfd = targets.vnfd_of(self.nfvo, ctx)
        flavour = targets.current_flavour(ctx, vnfd)
        start = request.changeStateTo is VnfOperationalStateType.STARTED
        # An absent stopType is FORCEFUL (OperateVnfRequest, note): no grace at all.
        grace = (
            float(request.gracefulStopTimeout or 0)
            if request.stopType is StopType.GRACEFUL
            else 0.0
        )
        units = targets.owned_units(self.vim, ctx.vnf_instance_id)
        changes = ChangeLog()
        for unit in units:
            verb = "starting" if start else "stopping"
            self._check_cancel(ctx, f"{verb} unit {unit.name}")
            log.info("op %s: %s %s (grace %.0fs)", ctx.op_id, verb, unit.name, grace)
            done = self.vim.set_running(unit.name, start, graceful_timeout=grace)
            vdu_id = unit.owner.vdu_id or unit.name
            for replica in done.replicas:
                changes.vnfc("MODIFIED", replica.id, vdu_id, self._compute(replica.id))
        if start:
            self._wait(ctx, (unit.name for unit in units))
        return self._instantiated(
            ctx,
            vnfd,
            flavour.flavour_id,
            dict(ctx.scale_levels),
            changes,
            None,
            vnf_state=request.changeStateTo.value,
        )

    # -- CHANGE_EXT_CONN ------------------------------------------------------------------

    def _change_ext_conn(self, ctx: OperationContext) -> OperationResult:
        request = parse_request(
            ChangeExtVnfConnectivityRequest, ctx.params, "ChangeExtVnfConnectivityRequest"
        )
        self._check_cancel(ctx, "planning")
        vnfd = targets.vnfd_of(self.nfvo, ctx)
        flavour = targets.current_flavour(ctx, vnfd)
        before = ext_links.load(ctx.ext_virtual_links)
        after = ext_links.merge(before, request.extVirtualLinks, handle_for=self._handles())
        rewiring = targets.rewiring(self.vim, ctx, vnfd, flavour, after)
        changes = ChangeLog()
        for unit, spec in rewiring.updates:
            self._check_cancel(ctx, f"updating unit {unit.name}")
            log.info("op %s: moving the connection points of %s", ctx.op_id, unit.name)
            updated = self.vim.update_unit(spec, lcm_op_id=ctx.op_id)
            vdu_id = unit.owner.vdu_id or unit.name
            for replica in updated.replicas:
                changes.vnfc("MODIFIED", replica.id, vdu_id, self._compute(replica.id))
        self._wait(ctx, (unit.name for unit, _ in rewiring.updates))
        # Internal links an external one took over are used by no unit any more.
        link_of = internal_links(vnfd, ctx.vnf_instance_id)
        needed = {network.name for network in rewiring.connectivity.networks}
        for resource in self.vim.list_owned(ctx.vnf_instance_id):
            if resource.kind != "network" or resource.name not in link_of:
                continue
            if resource.name in needed:
                continue
            self._check_cancel(ctx, f"deleting network {resource.name}")
            log.info("op %s: deleting unused internal link %s", ctx.op_id, resource.name)
            handle = network_handle(self.vim, resource.name, self.vim_connection_id)
            self.vim.delete_network(resource.name)
            changes.link("REMOVED", resource.name, link_of[resource.name], handle)
        requested = [link.id for link in request.extVirtualLinks]
        modifications = None
        if request.vimConnectionInfo is not None:
            # Applied to the instance's vimConnectionInfo as a JSON Merge Patch (SOL003).
            patch = {
                key: value.model_dump(mode="json", exclude_none=True)
                for key, value in request.vimConnectionInfo.items()
            }
            modifications = InfoModifications(patch={"vimConnectionInfo": patch})
        return self._instantiated(
            ctx,
            vnfd,
            flavour.flavour_id,
            dict(ctx.scale_levels),
            changes,
            None,
            links=after,
            changed_ext_connectivity=ext_links.dump(ext_links.changed(before, after, requested)),
            modifications=modifications,
        )

    # -- CHANGE_FLAVOUR -------------------------------------------------------------------

    def _change_flavour(self, ctx: OperationContext) -> OperationResult:
        request = parse_request(ChangeVnfFlavourRequest, ctx.params, "ChangeVnfFlavourRequest")
        self._check_cancel(ctx, "planning")
        vnfd = targets.vnfd_of(self.nfvo, ctx)
        targets.current_flavour(ctx, vnfd)
        change = change_flavour.target(ctx, vnfd, request, handle_for=self._handles())
        modifications = change_flavour.modifications(
            request,
            vnfd_id=ctx.vnfd_id,
            flavour_id=ctx.flavour_id,
            scale_levels=ctx.scale_levels,
            nfvo=self.nfvo,
        )
        self._converge(ctx, vnfd, change.plan)
        changes = self._flavour_changes(ctx, vnfd)
        changed_links = None
        if request.extVirtualLinks is not None:
            before = ext_links.load(ctx.ext_virtual_links)
            requested = [link.id for link in request.extVirtualLinks]
            changed_links = ext_links.dump(ext_links.changed(before, change.links, requested))
        return self._instantiated(
            ctx,
            vnfd,
            request.newFlavourId,
            change.plan.scale_levels,
            changes,
            change.level_id,
            links=change.links,
            changed_ext_connectivity=changed_links,
            modifications=modifications,
        )

    def _converge(self, ctx: OperationContext, vnfd: Vnfd, plan: planner.ResourcePlan) -> None:
        """Make the instance on the VIM what `plan` says, whatever state a run left it in.

        Networks first (units attach to them), then units: a VDU the plan has not is deleted,
        a new one created; an existing one is scaled in, updated (the VIM replaces the
        replicas whose spec differs, none on a re-run), then scaled out. Internal networks
        the plan has not go last, when no unit uses them any more.
        """
        instance = ctx.vnf_instance_id
        owner = Ownership(vnf_instance_id=instance, lcm_op_id=ctx.op_id)
        link_of = internal_links(vnfd, instance)
        for network in plan.networks:
            existing = self.vim.get_network(network.name)
            if existing is None:
                self._check_cancel(ctx, f"creating network {network.name}")
                self.vim.ensure_network(network, owner)
            elif existing.spec != network:
                raise ExecutionError(
                    f"virtual link {link_of.get(network.name, network.name)}: its network "
                    f"{network.name} exists with another spec ({existing.spec.cidr}, the "
                    f"flavour's is {network.cidr}); a link cannot change in place",
                    status=422,
                )
        wanted = {unit.name for unit in plan.units}
        for resource in self.vim.list_owned(instance):
            if resource.kind == "unit" and resource.name not in wanted:
                self._check_cancel(ctx, f"deleting unit {resource.name}")
                log.info("op %s: deleting unit %s (not in the flavour)", ctx.op_id, resource.name)
                self.vim.delete_unit(resource.name)
        vdu_of = change_flavour.vdu_of_units(vnfd, instance)
        for spec in plan.units:
            self._check_cancel(ctx, f"changing unit {spec.name}")
            unit = self.vim.get_unit(spec.name)
            if unit is None:
                log.info("op %s: creating unit %s", ctx.op_id, spec.name)
                self.vim.ensure_unit(
                    spec,
                    Ownership(
                        vnf_instance_id=instance, vdu_id=vdu_of[spec.name], lcm_op_id=ctx.op_id
                    ),
                )
                continue
            kept = min(unit.spec.replicas, spec.replicas)
            if unit.spec.replicas > kept:
                self.vim.scale_unit(spec.name, kept, lcm_op_id=ctx.op_id)
            log.info("op %s: updating unit %s", ctx.op_id, spec.name)
            self.vim.update_unit(spec.model_copy(update={"replicas": kept}), lcm_op_id=ctx.op_id)
            if spec.replicas > kept:
                self._check_cancel(ctx, f"scaling unit {spec.name} to {spec.replicas}")
                self.vim.scale_unit(spec.name, spec.replicas, lcm_op_id=ctx.op_id)
        self._wait(ctx, [unit.name for unit in plan.units])
        needed = {network.name for network in plan.networks}
        for resource in self.vim.list_owned(instance):
            if resource.kind != "network" or resource.name not in link_of:
                continue
            if resource.name not in needed:
                self._check_cancel(ctx, f"deleting network {resource.name}")
                log.info("op %s: deleting internal link %s", ctx.op_id, resource.name)
                self.vim.delete_network(resource.name)

    def _flavour_changes(self, ctx: OperationContext, vnfd: Vnfd) -> ChangeLog:
        """What the change did, from the instance's record before it and the VIM after it.

        Both are the same on every run, so a re-run names the same resources.
        """
        changes = ChangeLog()
        before = ctx.instantiated_info
        old_vnfcs = {str(v["id"]): v for v in before.get("vnfcResourceInfo") or ()}
        old_links = {str(v["id"]): v for v in before.get("vnfVirtualLinkResourceInfo") or ()}
        owned = self.vim.list_owned(ctx.vnf_instance_id)
        replicas = {r.name: r for r in owned if r.kind == "replica"}
        link_of = internal_links(vnfd, ctx.vnf_instance_id)
        networks = {r.name for r in owned if r.kind == "network" and r.name in link_of}
        for replica_id, vnfc in old_vnfcs.items():
            if replica_id not in replicas:
                changes.vnfc("REMOVED", replica_id, str(vnfc["vduId"]), vnfc["computeResource"])
        for replica_id, replica in replicas.items():
            if replica_id not in old_vnfcs:
                change = "ADDED"
            elif replica.owner.lcm_op_id == ctx.op_id:
                change = "MODIFIED"
            else:
                continue
            vdu_id = replica.owner.vdu_id or ""
            changes.vnfc(change, replica_id, vdu_id, self._compute(replica_id))
        for network, link in old_links.items():
            if network not in networks:
                vl_id = str(link["vnfVirtualLinkDescId"])
                changes.link("REMOVED", network, vl_id, link["networkResource"])
        for network in sorted(networks - set(old_links)):
            handle = network_handle(self.vim, network, self.vim_connection_id)
            changes.link("ADDED", network, link_of[network], handle)
        return changes

    def _restore_flavour(self, ctx: OperationContext) -> None:
        """Roll a CHANGE_FLAVOUR back: converge on the flavour the instance's record has."""
        vnfd = targets.vnfd_of(self.nfvo, ctx)
        try:
            self._converge(ctx, vnfd, change_flavour.restored(ctx, vnfd))
        except planner.PlanError as exc:
            raise ExecutionError(exc.detail, status=422) from None
        except VimError as exc:
            raise ExecutionError(
                f"rollback failed on the VIM: {exc.detail}", retryable=exc.retryable
            ) from None

    # -- MODIFY_INFO ----------------------------------------------------------------------

    def _modify_info(self, ctx: OperationContext) -> OperationResult:
        request = parse_request(
            VnfInfoModificationRequest, ctx.params, "VnfInfoModificationRequest"
        )
        try:
            modifications = prepare(
                request,
                vnfd_id=ctx.vnfd_id,
                flavour_id=ctx.flavour_id,
                scale_levels=ctx.scale_levels,
                nfvo=self.nfvo,
            )
        except ModificationRefused as exc:
            raise ExecutionError(exc.detail, status=exc.status) from None
        return OperationResult(modifications=modifications)

    # -- TERMINATE ------------------------------------------------------------------------

    def _terminate(self, ctx: OperationContext) -> OperationResult:
        request = parse_request(TerminateVnfRequest, ctx.params, "TerminateVnfRequest")
        log.info(
            "op %s: %s termination of %s", ctx.op_id, request.terminationType, ctx.vnf_instance_id
        )
        vnfd = targets.vnfd_of(self.nfvo, ctx)
        link_of = internal_links(vnfd, ctx.vnf_instance_id)
        owned = self.vim.list_owned(ctx.vnf_instance_id)
        changes = ChangeLog()
        for resource in (r for r in owned if r.kind == "replica"):
            changes.vnfc(
                "REMOVED", resource.name, resource.owner.vdu_id or "", self._compute(resource.name)
            )
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
