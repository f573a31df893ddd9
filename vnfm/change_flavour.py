"""CHANGE_FLAVOUR: an instantiated VNF moved to another deployment flavour of its VNFD.

`check` refuses a request the VNFD cannot carry out (422 naming the field) before the
occurrence starts; the executor checks again when it runs (`target`). What the change makes
(`target`) and what a rollback puts back (`restored`) are both whole plans of the instance,
on which the executor converges the VIM, so a re-run after a crash, and a rollback from any
point, end in the same state.

- Target: the new flavour at the request's instantiation level (the flavour's default one
  if none), its external CPs on the request's extVirtualLinks if given, else on the
  external links the instance has now; the units' configuration gets the request's
  additionalParams, else those the instance got when its flavour was set.
- Restore: the flavour, scale levels, VNFC counts and external links on record. The VNF
  instance resource is rewritten only in the transaction that COMPLETES the occurrence, so
  until then it is the record of the old flavour, across crashes, retries and rollback.

vnfConfigurableProperties, extensions and vimConnectionInfo of the request are applied to
the instance as MODIFY_INFO applies them (JSON Merge Patches, `vnfm.modify_info`) when the
change completes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from descriptors.vnfd import DeploymentFlavour, Vnfd
from vnfm import ext_links, planner, targets
from vnfm.modify_info import ModificationRefused, prepare
from vnfm.nfvo_client import NfvoClient
from vnfm.operation import ExecutionError, InfoModifications, OperationContext
from vnfm.schemas import ChangeVnfFlavourRequest, ExtVirtualLinkInfo, VnfInfoModificationRequest

__all__ = ["FlavourChange", "check", "modifications", "restored", "target", "vdu_of_units"]


def _refused(detail: str) -> ExecutionError:
    return ExecutionError(detail, status=422)


@dataclass(frozen=True)
class FlavourChange:
    """The instance after the change: its plan, level and external links."""

    plan: planner.ResourcePlan
    level_id: str | None
    links: list[ExtVirtualLinkInfo]


def _check_links(
    flavour: DeploymentFlavour,
    vnfd: Vnfd,
    request: ChangeVnfFlavourRequest,
    links_now: Sequence[ExtVirtualLinkInfo],
) -> None:
    known = planner.external_cp_ids(flavour)
    has = ", ".join(known) or "none"
    if request.extVirtualLinks is None:
        for link in links_now:
            for cp in link.currentVnfExtCpData:
                if cp.cpdId not in known:
                    raise _refused(
                        f"newFlavourId: flavour {flavour.flavour_id} of VNFD {vnfd.vnfd_id} has "
                        f"no external CP {cp.cpdId!r}, which the instance's external link "
                        f"{link.id} attaches (it has: {has}); give extVirtualLinks for it"
                    )
        return
    for i, requested in enumerate(request.extVirtualLinks):
        for j, cp in enumerate(requested.extCps):
            if cp.cpdId not in known:
                raise _refused(
                    f"extVirtualLinks[{i}].extCps[{j}].cpdId: flavour {flavour.flavour_id} of "
                    f"VNFD {vnfd.vnfd_id} has no external CP {cp.cpdId!r} (it has: {has})"
                )
    twice = ext_links.named_twice(request.extVirtualLinks)
    if twice:
        raise _refused(
            f"extVirtualLinks: external CP {', '.join(twice)} is given in more than one link; "
            "a CP attaches to one external link"
        )


def _checked(
    vnfd: Vnfd,
    flavour_now: str,
    request: ChangeVnfFlavourRequest,
    links_now: Sequence[ExtVirtualLinkInfo],
) -> DeploymentFlavour:
    """The new flavour; ExecutionError 422 naming the field if the request cannot be done."""
    if request.newFlavourId not in vnfd.flavour_ids:
        raise _refused(
            f"newFlavourId: VNFD {vnfd.vnfd_id} has no deployment flavour "
            f"{request.newFlavourId!r} (it has: {', '.join(vnfd.flavour_ids)})"
        )
    if request.newFlavourId == flavour_now:
        raise _refused(
            f"newFlavourId: the VNF instance runs flavour {flavour_now} already "
            "(scale it to change its size within the flavour)"
        )
    if request.extManagedVirtualLinks:
        raise _refused(
            "extManagedVirtualLinks: not supported by this VNFM (it makes every internal "
            "virtual link itself)"
        )
    flavour = vnfd.flavour(request.newFlavourId)
    try:
        planner.replicas_for_instantiation(flavour, request.instantiationLevelId)
        planner.levels_for_instantiation(flavour, request.instantiationLevelId)
    except planner.PlanError as exc:
        raise _refused(f"instantiationLevelId: {exc.detail}") from None
    _check_links(flavour, vnfd, request, links_now)
    return flavour


def check(
    vnfd: Vnfd,
    flavour_now: str,
    request: ChangeVnfFlavourRequest,
    links_now: Sequence[ExtVirtualLinkInfo],
) -> None:
    """ExecutionError 422 naming the field for a change the VNFD cannot make."""
    _checked(vnfd, flavour_now, request, links_now)


def vdu_of_units(vnfd: Vnfd, vnf_instance_id: str) -> dict[str, str]:
    """Unit name -> VDU id, over every flavour of the VNFD."""
    return {
        planner.unit_name(vnf_instance_id, vdu.id): vdu.id
        for flavour in vnfd.flavours
        for vdu in flavour.vdus
    }


def _planner_links(links: Sequence[ExtVirtualLinkInfo]) -> list[planner.ExternalLink]:
    return ext_links.planner_links(ext_links.as_requested(link) for link in links)


def target(
    ctx: OperationContext,
    vnfd: Vnfd,
    request: ChangeVnfFlavourRequest,
    *,
    handle_for: ext_links.HandleFor,
) -> FlavourChange:
    """The instance at the new flavour (see the module docstring)."""
    if ctx.flavour_id is None:
        raise ExecutionError(f"VNF instance {ctx.vnf_instance_id} is not instantiated", status=409)
    links_now = ext_links.load(ctx.ext_virtual_links)
    flavour = _checked(vnfd, ctx.flavour_id, request, links_now)
    links = links_now
    if request.extVirtualLinks is not None:
        links = ext_links.merge([], request.extVirtualLinks, handle_for=handle_for)
    params = request.additionalParams
    plan = planner.plan_instantiation(
        vnfd,
        flavour_id=flavour.flavour_id,
        instantiation_level_id=request.instantiationLevelId,
        vnf_instance_id=ctx.vnf_instance_id,
        ext_links=_planner_links(links),
        additional_params=params if params is not None else ctx.additional_params,
    )
    level_id = request.instantiationLevelId
    if level_id is None and flavour.instantiation_levels:
        level_id = flavour.instantiation_level(None).id
    return FlavourChange(plan=plan, level_id=level_id, links=links)


def _recorded_replicas(ctx: OperationContext, flavour: DeploymentFlavour) -> dict[str, int]:
    """VNFCs per VDU as the instance's record has them; by its scale levels if it has none."""
    vnfcs = ctx.instantiated_info.get("vnfcResourceInfo") or []
    if not vnfcs:
        return planner.replicas_at(flavour, ctx.scale_levels)
    counts = {vdu.id: 0 for vdu in flavour.vdus}
    for vnfc in vnfcs:
        vdu_id = str(vnfc.get("vduId"))
        if vdu_id in counts:
            counts[vdu_id] += 1
    return counts


def restored(ctx: OperationContext, vnfd: Vnfd) -> planner.ResourcePlan:
    """The instance as its record says it was before the change (for the rollback)."""
    flavour = targets.current_flavour(ctx, vnfd)
    return planner.plan_flavour(
        vnfd,
        flavour_id=flavour.flavour_id,
        scale_levels=ctx.scale_levels,
        replicas=_recorded_replicas(ctx, flavour),
        vnf_instance_id=ctx.vnf_instance_id,
        ext_links=_planner_links(ext_links.load(ctx.ext_virtual_links)),
        additional_params=ctx.additional_params,
    )


def modifications(
    request: ChangeVnfFlavourRequest,
    *,
    vnfd_id: str,
    flavour_id: str | None,
    scale_levels: Mapping[str, int],
    nfvo: NfvoClient,
) -> InfoModifications | None:
    """The instance's own attributes the request changes, checked as MODIFY_INFO checks them."""
    patch: dict[str, Any] = {}
    if request.vnfConfigurableProperties is not None:
        patch["vnfConfigurableProperties"] = request.vnfConfigurableProperties
    if request.extensions is not None:
        patch["extensions"] = request.extensions
    if request.vimConnectionInfo is not None:
        patch["vimConnectionInfo"] = {
            key: value.model_dump(mode="json", exclude_none=True)
            for key, value in request.vimConnectionInfo.items()
        }
    if not patch:
        return None
    try:
        return prepare(
            VnfInfoModificationRequest.model_validate(patch),
            vnfd_id=vnfd_id,
            flavour_id=flavour_id,
            scale_levels=scale_levels,
            nfvo=nfvo,
        )
    except ModificationRefused as exc:
        raise ExecutionError(exc.detail, status=exc.status) from None
