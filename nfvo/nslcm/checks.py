"""What a task request is checked against before an occurrence starts (422 naming the field).

The checks read the NS instance, its NSD (the typed `descriptors.nsd.Nsd` stored at
onboarding) and, for VNF flavour changes, the VNFD. They run with the NS instance locked
(`NsOccurrenceService.start`'s ``check``), so what they read is what the operation starts
from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from descriptors.nsd import Nsd, NsDeploymentFlavour
from descriptors.vnfd import Vnfd
from nfvo.nsd.models import NsdRow
from nfvo.nslcm.models import NsInstanceRow
from nfvo.nslcm.requests import (
    SUPPORTED_UPDATE_TYPES,
    UPDATE_TYPES,
    HealNsRequest,
    InstantiateNsRequest,
    ParamsForVnf,
    ScaleNsRequest,
    TerminateNsRequest,
    UpdateNsRequest,
)
from sol013.problem import ApiError

__all__ = [
    "VIM_IDS",
    "check_heal",
    "check_instantiate",
    "check_scale",
    "check_terminate",
    "check_update",
    "ns_flavour",
    "nsd_of",
]

VIM_IDS = "vimIds"
"""The key of additionalParamsForNs that selects a VIM per VNF profile."""

VimExists = Callable[[str], bool]
VnfdOf = Callable[[str], Vnfd]


def _unprocessable(detail: str) -> ApiError:
    return ApiError(422, detail)


def _unsupported(body: BaseModel, names: Iterable[str], prefix: str = "") -> None:
    for name in names:
        if getattr(body, name) is not None:
            raise _unprocessable(f"{prefix}{name}: not supported by this NFVO")


def nsd_of(session: Session, ns: NsInstanceRow) -> Nsd:
    row = session.get(NsdRow, ns.nsd_info_id)
    if row is None or row.nsd is None:
        raise ApiError(409, f"the NSD {ns.nsd_info_id} of NS instance {ns.id} is gone")
    return Nsd.model_validate(row.nsd)


def ns_flavour(nsd: Nsd, flavour_id: str, field: str) -> NsDeploymentFlavour:
    try:
        return nsd.flavour(flavour_id)
    except KeyError:
        raise _unprocessable(
            f"{field}: NSD {nsd.nsd_id} has no deployment flavour {flavour_id!r} "
            f"(it has: {', '.join(nsd.flavour_ids)})"
        ) from None


def _profile_ids(flavour: NsDeploymentFlavour) -> list[str]:
    return [profile.id for profile in flavour.vnf_profiles]


def _check_profile(flavour: NsDeploymentFlavour, profile_id: str, field: str) -> None:
    known = _profile_ids(flavour)
    if profile_id not in known:
        raise _unprocessable(
            f"{field}: flavour {flavour.flavour_id} has no VNF profile {profile_id!r} "
            f"(it has: {', '.join(known)})"
        )


def _check_params_for_vnf(
    flavour: NsDeploymentFlavour, params: list[ParamsForVnf] | None, prefix: str
) -> None:
    seen: set[str] = set()
    for i, entry in enumerate(params or ()):
        field = f"{prefix}additionalParamsForVnf[{i}].vnfProfileId"
        _check_profile(flavour, entry.vnfProfileId, field)
        if entry.vnfProfileId in seen:
            raise _unprocessable(f"{field}: VNF profile {entry.vnfProfileId} is given twice")
        seen.add(entry.vnfProfileId)


def check_instantiate(
    ns: NsInstanceRow, nsd: Nsd, body: InstantiateNsRequest, vim_exists: VimExists
) -> None:
    _unsupported(
        body,
        (
            "sapData",
            "addpnfData",
            "vnfInstanceData",
            "nestedNsInstanceData",
            "nestedNsLocationConstraints",
            "additionalParamsForNestedNs",
            "wanConnectionData",
            "additionalAffinityOrAntiAffinityRule",
        ),
    )
    flavour = ns_flavour(nsd, body.nsFlavourId, "nsFlavourId")
    if body.nsInstantiationLevelId is not None:
        known = [level.id for level in flavour.instantiation_levels]
        if body.nsInstantiationLevelId not in known:
            raise _unprocessable(
                f"nsInstantiationLevelId: flavour {flavour.flavour_id} has no NS instantiation "
                f"level {body.nsInstantiationLevelId!r} (it has: {', '.join(known) or 'none'})"
            )
    _check_params_for_vnf(flavour, body.additionalParamsForVnf, "")
    vim_ids: Any = (body.additionalParamsForNs or {}).get(VIM_IDS)
    if vim_ids is None:
        return
    field = f"additionalParamsForNs.{VIM_IDS}"
    if not isinstance(vim_ids, dict):
        raise _unprocessable(f"{field}: an object mapping vnfProfileId to vimId is expected")
    for profile_id, vim_id in vim_ids.items():
        _check_profile(flavour, profile_id, f"{field}.{profile_id}")
        if not isinstance(vim_id, str) or not vim_exists(vim_id):
            raise _unprocessable(f"{field}.{profile_id}: no VIM with id {vim_id!r} is registered")


def check_terminate(body: TerminateNsRequest) -> None:
    # Termination happens now; scheduling it is not supported.
    _unsupported(body, ("terminationTime", "terminateNsData", "terminateVnfData"))


def _vnf_ids(ns: NsInstanceRow) -> list[str]:
    return [str(vnf["id"]) for vnf in ns.vnf_instances or ()]


def _check_vnf(ns: NsInstanceRow, vnf_id: str, field: str) -> dict[str, Any]:
    for vnf in ns.vnf_instances or ():
        if vnf.get("id") == vnf_id:
            return dict(vnf)
    raise _unprocessable(
        f"{field}: VNF instance {vnf_id} is not part of NS instance {ns.id} "
        f"(its VNF instances: {', '.join(_vnf_ids(ns)) or 'none'})"
    )


def _scale_level(ns: NsInstanceRow, aspect_id: str) -> int:
    for status in ns.scale_status or ():
        if status.get("nsScalingAspectId") == aspect_id:
            level = str(status.get("nsScaleLevelId", "0"))
            return int(level) if level.isdigit() else 0
    return 0


def check_scale(ns: NsInstanceRow, nsd: Nsd, body: ScaleNsRequest) -> None:
    flavour = ns_flavour(nsd, ns.flavour_id or "", "flavourId")
    if body.scaleType == "SCALE_VNF":
        for i, vnf_data in enumerate(body.scaleVnfData or ()):
            _check_vnf(ns, vnf_data.vnfInstanceId, f"scaleVnfData[{i}].vnfInstanceId")
        return
    data = body.scaleNsData
    assert data is not None  # the model requires it for SCALE_NS
    prefix = "scaleNsData."
    _unsupported(
        data,
        (
            "vnfInstanceToBeAdded",
            "vnfInstanceToBeRemoved",
            "locationConstraints",
            "nestedNsLocationConstraints",
        ),
        prefix,
    )
    _check_params_for_vnf(flavour, data.additionalParamsForVnf, prefix)
    aspects = {aspect.id: aspect for aspect in flavour.scaling_aspects}
    names = ", ".join(aspects) or "none"
    by_steps = data.scaleNsByStepsData
    if by_steps is not None:
        field = f"{prefix}scaleNsByStepsData.aspectId"
        aspect = aspects.get(by_steps.aspectId)
        if aspect is None:
            raise _unprocessable(
                f"{field}: flavour {flavour.flavour_id} has no NS scaling aspect "
                f"{by_steps.aspectId!r} (it has: {names})"
            )
        current = _scale_level(ns, aspect.id)
        sign = 1 if by_steps.scalingDirection == "SCALE_OUT" else -1
        target = current + sign * by_steps.numberOfSteps
        if not 0 <= target <= aspect.max_scale_level:
            raise _unprocessable(
                f"{prefix}scaleNsByStepsData.numberOfSteps: aspect {aspect.id} is at level "
                f"{current}; {by_steps.scalingDirection} by {by_steps.numberOfSteps} would "
                f"reach {target}, outside 0..{aspect.max_scale_level}"
            )
        return
    to_level = data.scaleNsToLevelData
    assert to_level is not None  # the model requires one of the two
    if to_level.nsInstantiationLevel is not None:
        known = [level.id for level in flavour.instantiation_levels]
        if to_level.nsInstantiationLevel not in known:
            raise _unprocessable(
                f"{prefix}scaleNsToLevelData.nsInstantiationLevel: flavour "
                f"{flavour.flavour_id} has no NS instantiation level "
                f"{to_level.nsInstantiationLevel!r} (it has: {', '.join(known) or 'none'})"
            )
    for i, info in enumerate(to_level.nsScaleInfo or ()):
        field = f"{prefix}scaleNsToLevelData.nsScaleInfo[{i}]"
        aspect = aspects.get(info.nsScalingAspectId)
        if aspect is None:
            raise _unprocessable(
                f"{field}.nsScalingAspectId: flavour {flavour.flavour_id} has no NS scaling "
                f"aspect {info.nsScalingAspectId!r} (it has: {names})"
            )
        levels = [str(level.level) for level in aspect.levels]
        if info.nsScaleLevelId not in levels:
            raise _unprocessable(
                f"{field}.nsScaleLevelId: aspect {aspect.id} has no level "
                f"{info.nsScaleLevelId!r} (it has: {', '.join(levels)})"
            )


def check_heal(ns: NsInstanceRow, body: HealNsRequest) -> None:
    # Healing the NS as a whole (healNsData: degreeHealing, actionsHealing) is not supported.
    _unsupported(body, ("healNsData",))
    for i, data in enumerate(body.healVnfData or ()):
        _check_vnf(ns, data.vnfInstanceId, f"healVnfData[{i}].vnfInstanceId")


def _count(ns: NsInstanceRow, profile_id: str) -> int:
    return sum(1 for vnf in ns.vnf_instances or () if vnf.get("vnfProfileId") == profile_id)


def check_update(ns: NsInstanceRow, nsd: Nsd, body: UpdateNsRequest, vnfd_of: VnfdOf) -> None:
    if body.updateType not in UPDATE_TYPES:
        raise _unprocessable(f"updateType: {body.updateType!r} is not an UpdateNsRequest type")
    if body.updateType not in SUPPORTED_UPDATE_TYPES:
        raise _unprocessable(
            f"updateType: {body.updateType} is not supported by this NFVO (it supports "
            f"{', '.join(SUPPORTED_UPDATE_TYPES)})"
        )
    flavour = ns_flavour(nsd, ns.flavour_id or "", "flavourId")
    if body.updateType == "ADD_VNF":
        if not body.addVnfInstance:
            raise _unprocessable("addVnfInstance: required for updateType ADD_VNF")
        added: dict[str, int] = {}
        for i, data in enumerate(body.addVnfInstance):
            field = f"addVnfInstance[{i}]"
            _check_profile(flavour, data.vnfProfileId, f"{field}.vnfProfileId")
            if data.vnfInstanceId in _vnf_ids(ns):
                raise _unprocessable(
                    f"{field}.vnfInstanceId: VNF instance {data.vnfInstanceId} is already "
                    f"part of NS instance {ns.id}"
                )
            added[data.vnfProfileId] = added.get(data.vnfProfileId, 0) + 1
            profile = flavour.vnf_profile(data.vnfProfileId)
            total = _count(ns, profile.id) + added[profile.id]
            if total > profile.max_number_of_instances:
                raise _unprocessable(
                    f"{field}.vnfProfileId: VNF profile {profile.id} allows at most "
                    f"{profile.max_number_of_instances} instance(s); this would make {total}"
                )
        return
    if body.updateType == "REMOVE_VNF":
        if not body.removeVnfInstanceId:
            raise _unprocessable("removeVnfInstanceId: required for updateType REMOVE_VNF")
        removed: dict[str, int] = {}
        for i, vnf_id in enumerate(body.removeVnfInstanceId):
            field = f"removeVnfInstanceId[{i}]"
            vnf = _check_vnf(ns, vnf_id, field)
            profile_id = str(vnf.get("vnfProfileId"))
            removed[profile_id] = removed.get(profile_id, 0) + 1
            profile = flavour.vnf_profile(profile_id)
            left = _count(ns, profile_id) - removed[profile_id]
            if left < profile.min_number_of_instances:
                raise _unprocessable(
                    f"{field}: VNF profile {profile_id} needs at least "
                    f"{profile.min_number_of_instances} instance(s); this would leave {left}"
                )
        return
    if not body.changeVnfFlavourData:
        raise _unprocessable("changeVnfFlavourData: required for updateType CHANGE_VNF_DF")
    changed: set[str] = set()
    for i, change in enumerate(body.changeVnfFlavourData):
        field = f"changeVnfFlavourData[{i}]"
        vnf = _check_vnf(ns, change.vnfInstanceId, f"{field}.vnfInstanceId")
        if change.vnfInstanceId in changed:
            raise _unprocessable(
                f"{field}.vnfInstanceId: VNF instance {change.vnfInstanceId} is given twice"
            )
        changed.add(change.vnfInstanceId)
        vnfd_id = str(vnf.get("vnfdId"))
        try:
            vnfd = vnfd_of(vnfd_id)
        except KeyError:
            raise _unprocessable(
                f"{field}.vnfInstanceId: the VNFD {vnfd_id} of VNF instance "
                f"{change.vnfInstanceId} is no longer onboarded"
            ) from None
        if change.newFlavourId not in vnfd.flavour_ids:
            raise _unprocessable(
                f"{field}.newFlavourId: VNFD {vnfd_id} has no deployment flavour "
                f"{change.newFlavourId!r} (it has: {', '.join(vnfd.flavour_ids)})"
            )
        info = vnf.get("instantiatedVnfInfo")
        running = info.get("flavourId") if isinstance(info, dict) else None
        if change.newFlavourId == running:
            raise _unprocessable(
                f"{field}.newFlavourId: VNF instance {change.vnfInstanceId} runs flavour "
                f"{running} already"
            )
        level_id = change.instantiationLevelId
        levels = [level.id for level in vnfd.flavour(change.newFlavourId).instantiation_levels]
        if level_id is not None and level_id not in levels:
            raise _unprocessable(
                f"{field}.instantiationLevelId: flavour {change.newFlavourId} of VNFD "
                f"{vnfd_id} has no instantiation level {level_id!r} "
                f"(it has: {', '.join(levels) or 'none'})"
            )
