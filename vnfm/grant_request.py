"""The SOL003 GrantRequest of an LCM operation (clause 9.5.2.2), as JSON for the NFVO.

Resource definitions name what the operation will add, remove or update, from the same
targets the executor then acts on (`vnfm.targets`):

- COMPUTE: one per VNFC (replica). A new one is `compute-<vdu>-<index>`; an existing one
  `compute-<replica id>` with its ResourceHandle. SOL001 has no virtual compute descriptor
  id of its own, so the VDU id stands for it (`resourceTemplateId`).
- VL: `vl-<virtual link id>` for a new internal link, `vl-<network>` for an existing one.
- LINKPORT: `linkport-<ext CP id>`, the ports a CHANGE_EXT_CONN gives an external CP on
  its (new) external link; `resourceTemplateId` is the VnfExtCpd (or exposed VduCpd).

OPERATE updates every VNFC (its processes stop or start; nothing is added or removed).
CHANGE_EXT_CONN updates every VNFC whose unit is rewired (the VIM replaces each such
replica) and adds the link ports of the external CPs the request names.

CHANGE_FLAVOUR (SOL003 Granting, "change flavour") names the new flavour; it
removes every VNFC of a unit whose spec changes (the VIM replaces them all) or whose VDU the
new flavour has not, and the VNFCs a lower count drops, and adds the new flavour's VNFCs in
their place; internal links likewise. `CURRENT_FLAVOUR_PARAM` tells the NFVO the old one.

MODIFY_INFO needs no grant (SOL003 grants only operations that touch resources); asking
`build` for it is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from descriptors.vnfd import Vnfd
from vim_adapters.interface import VimAdapter
from vnfm import change_flavour, ext_links, planner, targets
from vnfm.instantiated_info import compute_handle, internal_links, network_handle
from vnfm.operation import ExecutionError, OperationContext, parse_request
from vnfm.schemas import (
    ChangeExtVnfConnectivityRequest,
    ChangeVnfFlavourRequest,
    InstantiateVnfRequest,
    OperateVnfRequest,
)
from vnfm.schemas.common import API_MAJOR, API_NAME

__all__ = ["CURRENT_FLAVOUR_PARAM", "NOT_GRANTED", "build", "needs_grant"]

NOT_GRANTED: frozenset[str] = frozenset({"MODIFY_INFO"})
"""Operations that SOL003 does not grant: they change no virtualised resource."""


CURRENT_FLAVOUR_PARAM = "currentFlavourId"
"""GrantRequest.additionalParams key naming the flavour a CHANGE_FLAVOUR leaves (flavourId is
the new one): the NFVO sizes the removed resources by it (`nfvo.grant.placement`)."""


def needs_grant(operation: str) -> bool:
    return operation not in NOT_GRANTED


@dataclass
class _Definitions:
    """The ResourceDefinitions of one request, and the request attributes they imply."""

    add: list[dict[str, Any]] = field(default_factory=list)
    remove: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    """Entries of the request's additionalParams."""


def new_compute(vdu_id: str, index: int) -> dict[str, Any]:
    # SOL001 has no separate virtual compute descriptor id: the VDU's id stands for it.
    return {
        "id": f"compute-{vdu_id}-{index}",
        "type": "COMPUTE",
        "vduId": vdu_id,
        "resourceTemplateId": vdu_id,
    }


def existing_compute(
    vim: VimAdapter, vdu_id: str, replica_id: str, vim_connection_id: str
) -> dict[str, Any]:
    return {
        "id": f"compute-{replica_id}",
        "type": "COMPUTE",
        "vduId": vdu_id,
        "resourceTemplateId": vdu_id,
        "resource": compute_handle(vim, replica_id, vim_connection_id),
    }


def new_link(vl_id: str) -> dict[str, Any]:
    return {"id": f"vl-{vl_id}", "type": "VL", "resourceTemplateId": vl_id}


def new_link_port(ext_cp_id: str) -> dict[str, Any]:
    return {"id": f"linkport-{ext_cp_id}", "type": "LINKPORT", "resourceTemplateId": ext_cp_id}


class _Builder:
    def __init__(
        self, ctx: OperationContext, vim: VimAdapter, vnfd: Vnfd, vim_connection_id: str
    ) -> None:
        self.ctx = ctx
        self.vim = vim
        self.vnfd = vnfd
        self.vim_connection_id = vim_connection_id
        self.handle_for = ext_links.handles_on(vim, vim_connection_id)

    def existing(self, vdu_id: str, replica_id: str) -> dict[str, Any]:
        return existing_compute(self.vim, vdu_id, replica_id, self.vim_connection_id)

    def existing_link(self, vl_id: str, network: str) -> dict[str, Any]:
        return {
            "id": f"vl-{network}",
            "type": "VL",
            "resourceTemplateId": vl_id,
            "resource": network_handle(self.vim, network, self.vim_connection_id),
        }

    def instantiate(self) -> _Definitions:
        ctx, vnfd = self.ctx, self.vnfd
        request = parse_request(InstantiateVnfRequest, ctx.params, "InstantiateVnfRequest")
        plan = targets.instantiation_plan(ctx, vnfd, request)
        flavour = vnfd.flavour(request.flavourId)
        level = request.instantiationLevelId
        if level is None and flavour.instantiation_levels:
            level = flavour.instantiation_level(None).id
        found = _Definitions(
            attributes={"flavourId": request.flavourId, "instantiationLevelId": level}
        )
        for vdu in flavour.vdus:
            found.add += [new_compute(vdu.id, index) for index in range(plan.replicas[vdu.id])]
        link_of = internal_links(vnfd, ctx.vnf_instance_id)
        found.add += [new_link(link_of[network.name]) for network in plan.networks]
        return found

    def scale(self) -> _Definitions:
        ctx = self.ctx
        flavour = targets.current_flavour(ctx, self.vnfd)
        _, replicas = targets.scale_targets(ctx, flavour)
        found = _Definitions()
        for vdu_id, target in replicas.items():
            unit = self.vim.get_unit(planner.unit_name(ctx.vnf_instance_id, vdu_id))
            current = unit.replicas if unit is not None else ()
            found.add += [new_compute(vdu_id, index) for index in range(len(current), target)]
            found.remove += [self.existing(vdu_id, r.id) for r in current if r.index >= target]
        return found

    def heal(self) -> _Definitions:
        ctx = self.ctx
        targets.current_flavour(ctx, self.vnfd)
        chosen = targets.heal_targets(ctx, targets.owned_units(self.vim, ctx.vnf_instance_id))
        return _Definitions(
            update=[self.existing(u.owner.vdu_id or u.name, rid) for u, rid in chosen]
        )

    def operate(self) -> _Definitions:
        ctx = self.ctx
        parse_request(OperateVnfRequest, ctx.params, "OperateVnfRequest")
        targets.current_flavour(ctx, self.vnfd)
        return _Definitions(
            update=[
                self.existing(unit.owner.vdu_id or unit.name, replica.id)
                for unit in targets.owned_units(self.vim, ctx.vnf_instance_id)
                for replica in unit.replicas
            ]
        )

    def change_ext_conn(self) -> _Definitions:
        ctx = self.ctx
        request = parse_request(
            ChangeExtVnfConnectivityRequest, ctx.params, "ChangeExtVnfConnectivityRequest"
        )
        flavour = targets.current_flavour(ctx, self.vnfd)
        after = ext_links.merge(
            ext_links.load(ctx.ext_virtual_links),
            request.extVirtualLinks,
            handle_for=self.handle_for,
        )
        rewiring = targets.rewiring(self.vim, ctx, self.vnfd, flavour, after)
        named = dict.fromkeys(cp.cpdId for link in request.extVirtualLinks for cp in link.extCps)
        return _Definitions(
            add=[new_link_port(cp_id) for cp_id in named],
            update=[
                self.existing(unit.owner.vdu_id or unit.name, replica.id)
                for unit, _ in rewiring.updates
                for replica in unit.replicas
            ],
        )

    def change_flavour(self) -> _Definitions:
        ctx, vnfd = self.ctx, self.vnfd
        request = parse_request(ChangeVnfFlavourRequest, ctx.params, "ChangeVnfFlavourRequest")
        targets.current_flavour(ctx, vnfd)
        change = change_flavour.target(ctx, vnfd, request, handle_for=self.handle_for)
        found = _Definitions(
            # SOL003: instantiationLevelId is for INSTANTIATE only; the VNFCs say the level.
            attributes={"flavourId": request.newFlavourId},
            params={CURRENT_FLAVOUR_PARAM: ctx.flavour_id},
        )
        units = {unit.name: unit for unit in targets.owned_units(self.vim, ctx.vnf_instance_id)}
        vdu_of = change_flavour.vdu_of_units(vnfd, ctx.vnf_instance_id)
        wanted = {spec.name: spec for spec in change.plan.units}
        for name, gone in units.items():
            if name not in wanted:
                vdu_id = gone.owner.vdu_id or vdu_of.get(name, name)
                found.remove += [self.existing(vdu_id, r.id) for r in gone.replicas]
        for spec in change.plan.units:
            vdu_id = vdu_of[spec.name]
            unit = units.get(spec.name)
            current = unit.replicas if unit is not None else ()
            # A unit whose spec changes has every replica replaced: each old VNFC goes and a
            # new one comes; otherwise only the count changes.
            replaced = unit is not None and (
                unit.spec.model_copy(update={"replicas": spec.replicas}) != spec
            )
            first_new = 0 if replaced else len(current)
            found.add += [new_compute(vdu_id, i) for i in range(first_new, spec.replicas)]
            found.remove += [
                self.existing(vdu_id, r.id) for r in current if replaced or r.index >= spec.replicas
            ]
        link_of = internal_links(vnfd, ctx.vnf_instance_id)
        needed = {network.name for network in change.plan.networks}
        present = {
            r.name
            for r in self.vim.list_owned(ctx.vnf_instance_id)
            if r.kind == "network" and r.name in link_of
        }
        found.add += [new_link(link_of[name]) for name in sorted(needed - present)]
        found.remove += [
            self.existing_link(link_of[name], name) for name in sorted(present - needed)
        ]
        return found

    def terminate(self) -> _Definitions:
        ctx = self.ctx
        link_of = internal_links(self.vnfd, ctx.vnf_instance_id)
        found = _Definitions()
        for resource in self.vim.list_owned(ctx.vnf_instance_id):
            if resource.kind == "replica" and resource.owner.vdu_id is not None:
                found.remove.append(self.existing(resource.owner.vdu_id, resource.name))
            elif resource.kind == "network" and resource.name in link_of:
                found.remove.append(self.existing_link(link_of[resource.name], resource.name))
        return found


def build(
    ctx: OperationContext,
    *,
    vim: VimAdapter,
    vnfd: Vnfd,
    api_root: str,
    vim_connection_id: str,
    vim_connection: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The GrantRequest JSON; ExecutionError 422 for an operation this VNFM cannot grant.

    `vim_connection` ({connection id: {vimId, vimType}}) names the VIM the operation will use,
    in ``additionalParams.vimConnectionInfo``: SOL003 gives the GrantRequest no attribute for
    it, and the NFVO grants against the capacity of that VIM (`nfvo.grant.placement`).
    """
    builder = _Builder(ctx, vim, vnfd, vim_connection_id)
    steps = {
        "INSTANTIATE": builder.instantiate,
        "SCALE": builder.scale,
        "SCALE_TO_LEVEL": builder.scale,
        "HEAL": builder.heal,
        "TERMINATE": builder.terminate,
        "OPERATE": builder.operate,
        "CHANGE_EXT_CONN": builder.change_ext_conn,
        "CHANGE_FLAVOUR": builder.change_flavour,
    }
    step = steps.get(ctx.operation)
    if step is None:
        detail = (
            f"operation {ctx.operation} needs no grant"
            if not needs_grant(ctx.operation)
            else f"operation {ctx.operation} is not supported by this VNFM"
        )
        raise ExecutionError(detail, status=422)
    found = step()
    base = f"{api_root.rstrip('/')}/{API_NAME}/{API_MAJOR}"
    body: dict[str, Any] = {
        "vnfInstanceId": ctx.vnf_instance_id,
        "vnfLcmOpOccId": ctx.op_id,
        "vnfdId": ctx.vnfd_id,
        "flavourId": ctx.flavour_id,
        "operation": ctx.operation,
        "isAutomaticInvocation": False,
        **found.attributes,
    }
    params = dict(found.params)
    if vim_connection is not None:
        params["vimConnectionInfo"] = vim_connection
    if params:
        body["additionalParams"] = params
    for key, definitions in (
        ("addResources", found.add),
        ("removeResources", found.remove),
        ("updateResources", found.update),
    ):
        if definitions:
            body[key] = definitions
    body["_links"] = {
        "vnfLcmOpOcc": {"href": f"{base}/vnf_lcm_op_occs/{ctx.op_id}"},
        "vnfInstance": {"href": f"{base}/vnf_instances/{ctx.vnf_instance_id}"},
    }
    return {key: value for key, value in body.items() if value is not None}
