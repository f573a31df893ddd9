"""MODIFY_INFO: the "Modify VNF information" operation (PATCH of an Individual VNF instance).

`prepare` checks a VnfInfoModificationRequest against the instance and the NFVO's packages;
the API calls it before it starts the occurrence (so a refusal is the PATCH's own 409/422)
and the executor again when the occurrence runs (the packages may have changed meanwhile).
`apply_modifications` applies it to the stored instance in the transaction that completes
the occurrence, and says what changed (the occurrence's ``changedInfo``). Nothing on the VIM
changes, so SOL003 grants nothing.

Rules (docs/lcm.md, "Modify VNF information"):

- vnfInstanceName, vnfInstanceDescription: replaced; null removes them.
- vnfConfigurableProperties, metadata, extensions: JSON Merge Patch (null removes a key).
  While the instance is INSTANTIATED, ``additional_configurable_properties`` can only change
  if the VNFD declares them ``is_writable_anytime`` (SOL001 VnfAdditionalConfigurableProperties).
- vimConnectionInfo: JSON Merge Patch of the map (null removes a connection). While the
  instance is INSTANTIATED, the connection its resources are on (`check_vim_kept`) can
  neither be removed nor name another VIM: later operations would look for the resources
  on that VIM and leave them orphaned on theirs. Its other attributes may change.
- vnfdId: only to a VNFD of an ONBOARDED and ENABLED package. While INSTANTIATED, the new
  VNFD must have the instance's flavour with the same VDUs and virtual links, and scaling
  aspects that hold the current scale levels: the units and networks on the VIM are the old
  flavour's, and later operations read them through the new VNFD. vnfProvider,
  vnfProductName, vnfSoftwareVersion and vnfdVersion follow the new package.
- vnfcInfoModifications (in the GS, not in the SOL003 OpenAPI file) is refused: this VNFM
  keeps no per-VNFC configurable properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from descriptors.vnfd import DeploymentFlavour, Vnfd
from sol013.merge_patch import merge_patch
from vnfm import targets
from vnfm.instantiated_info import resources_connection
from vnfm.models import VnfInstanceRow
from vnfm.nfvo_client import NfvoClient
from vnfm.operation import ExecutionError, InfoModifications
from vnfm.schemas import VnfInfoModificationRequest, VnfInfoModifications

__all__ = ["ModificationRefused", "apply_modifications", "check_vim_kept", "prepare"]

_ADDITIONAL = "additional_configurable_properties"
_WRITABLE_ANYTIME = "is_writable_anytime"
# VnfInstance attribute <- PackageInfo attribute, copied when the vnfdId changes.
_PACKAGE_FACTS = {
    "vnfPkgId": "vnf_pkg_id",
    "vnfProvider": "vnf_provider",
    "vnfProductName": "vnf_product_name",
    "vnfSoftwareVersion": "vnf_software_version",
    "vnfdVersion": "vnfd_version",
}
# Merge-patched maps: request attribute -> VnfInstanceRow attribute.
_MAPS = {
    "vnfConfigurableProperties": "vnf_configurable_properties",
    "metadata": "metadata_",
    "extensions": "extensions",
    "vimConnectionInfo": "vim_connection_info",
}


class ModificationRefused(Exception):
    """The request cannot be applied; `status` (409 or 422) and `detail` say why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _ids(items: Any) -> set[str]:
    return {item.id for item in items}


def _check_same_shape(
    old: DeploymentFlavour | None, new: DeploymentFlavour, scale_levels: Mapping[str, int]
) -> None:
    where = f"vnfdId: flavour {new.flavour_id} of the new VNFD"
    if old is not None:
        for what, before, after in (
            ("VDUs", _ids(old.vdus), _ids(new.vdus)),
            ("virtual links", _ids(old.virtual_links), _ids(new.virtual_links)),
        ):
            if before != after:
                raise ModificationRefused(
                    409,
                    f"{where} has {what} {', '.join(sorted(after)) or 'none'}, but the "
                    f"instance runs {', '.join(sorted(before)) or 'none'}",
                )
    aspects = {a.id: a.max_scale_level for a in new.scaling_aspects}
    for aspect_id, level in sorted(scale_levels.items()):
        if aspect_id not in aspects:
            raise ModificationRefused(
                409, f"{where} has no scaling aspect {aspect_id}, which is at level {level}"
            )
        if level > aspects[aspect_id]:
            raise ModificationRefused(
                409,
                f"{where} allows scaling aspect {aspect_id} up to level {aspects[aspect_id]}, "
                f"but it is at level {level}",
            )


def _check_new_vnfd(
    nfvo: NfvoClient,
    vnfd_id: str,
    new_vnfd: Vnfd,
    flavour_id: str,
    scale_levels: Mapping[str, int],
) -> None:
    try:
        new = new_vnfd.flavour(flavour_id)
    except KeyError:
        raise ModificationRefused(
            409,
            f"vnfdId: VNFD {new_vnfd.vnfd_id} has no deployment flavour {flavour_id!r}, which "
            f"the instance is instantiated with (it has: {', '.join(new_vnfd.flavour_ids)})",
        ) from None
    try:
        old: DeploymentFlavour | None = nfvo.vnfd(vnfd_id).flavour(flavour_id)
    except KeyError:
        # The current package is gone from the NFVO: only the new one can be checked.
        old = None
    _check_same_shape(old, new, scale_levels)


def _check_configurable(patch: Mapping[str, Any], vnfd: Vnfd | None) -> None:
    """While instantiated, additional properties change only if the VNFD allows it."""
    if _ADDITIONAL not in patch or vnfd is None:
        return
    declared = vnfd.configurable_properties.get(_ADDITIONAL)
    if isinstance(declared, Mapping) and declared.get(_WRITABLE_ANYTIME) is False:
        raise ModificationRefused(
            409,
            f"vnfConfigurableProperties.{_ADDITIONAL}: VNFD {vnfd.vnfd_id} declares them "
            f"{_WRITABLE_ANYTIME} false, so they can only be modified while the instance "
            "is NOT_INSTANTIATED",
        )


def check_vim_kept(connections: Mapping[str, Any] | None, instance: VnfInstanceRow) -> None:
    """ModificationRefused (409) if merging `connections` (a request's vimConnectionInfo, a
    JSON Merge Patch of the instance's) would move an INSTANTIATED instance off the VIM its
    resources are on.

    Which connection that is, is what later operations use (`targets.select_vim`). Removing it
    or naming another vimId in it is refused; its other attributes (vimType, interfaceInfo,
    accessInfo, extra) and every other connection may change. An instance on the default VIM
    (no connection of its own) cannot be given one under the key its resources are on: this
    module cannot tell whether the vimId named is the default VIM's.
    """
    if not connections or instance.instantiation_state != "INSTANTIATED":
        return
    known = dict(instance.vim_connection_info or {})
    try:
        selection = targets.select_vim(
            None, known, resources_connection(instance.instantiated_info)
        )
    except ExecutionError:
        # No single VIM to keep: every later operation is refused already (422, saying why).
        return
    key = selection.connection_id
    if key not in connections:
        return
    change = connections[key]
    field = f"vimConnectionInfo.{key}"
    on = f"VIM {selection.vim_id}" if selection.vim_id else "the default VIM"
    kept = f"the instance's resources are on {on} through connection {key!r}"
    if change is None:
        if key in known:
            raise ModificationRefused(
                409,
                f"{field}: {kept}, so it cannot be removed while the instance is INSTANTIATED "
                "(terminate the instance first)",
            )
        return
    if selection.vim_id is None:
        raise ModificationRefused(
            409,
            f"{field}: {kept}; while the instance is INSTANTIATED no connection can be added "
            "under that key (later operations would look for its resources on the VIM it "
            "names); use another key",
        )
    after = merge_patch(dict(known[key]), dict(change)) if isinstance(change, Mapping) else {}
    named = after.get("vimId")
    if named != selection.vim_id:
        raise ModificationRefused(
            409,
            f"{field}.vimId: {kept}; while the instance is INSTANTIATED the connection must "
            f"keep naming it, not {f'VIM {named}' if named else 'no VIM'}, or they would be "
            "orphaned (terminate the instance first, or change only the connection's other "
            "attributes)",
        )


def prepare(
    request: VnfInfoModificationRequest,
    *,
    vnfd_id: str,
    flavour_id: str | None,
    scale_levels: Mapping[str, int],
    nfvo: NfvoClient,
) -> InfoModifications:
    """The modifications to apply, or ModificationRefused.

    `flavour_id` is the instance's (None when NOT_INSTANTIATED), `scale_levels` its levels.
    """
    if request.vnfcInfoModifications is not None:
        raise ModificationRefused(
            422,
            "vnfcInfoModifications: this VNFM keeps no per-VNFC configurable properties, so "
            "they cannot be modified",
        )
    patch = request.model_dump(mode="json", exclude_unset=True)
    package: dict[str, str] | None = None
    vnfd: Vnfd | None = None
    new_vnfd_id = request.vnfdId
    if new_vnfd_id is not None and new_vnfd_id != vnfd_id:
        found = nfvo.package_for_vnfd(new_vnfd_id)
        if found is None:
            raise ModificationRefused(
                422, f"vnfdId: no onboarded VNF package has vnfdId {new_vnfd_id}"
            )
        if found.operational_state != "ENABLED":
            raise ModificationRefused(
                422,
                f"vnfdId: VNF package {found.vnf_pkg_id} (vnfdId {new_vnfd_id}) is "
                f"{found.operational_state}; an instance can only move to an ENABLED package",
            )
        try:
            vnfd = nfvo.vnfd(new_vnfd_id)
        except KeyError:
            raise ModificationRefused(
                422, f"vnfdId: the VNFD of package {found.vnf_pkg_id} is not available"
            ) from None
        if flavour_id is not None:
            _check_new_vnfd(nfvo, vnfd_id, vnfd, flavour_id, scale_levels)
        package = {
            "vnfdId": new_vnfd_id,
            **{key: str(getattr(found, attr)) for key, attr in _PACKAGE_FACTS.items()},
        }
    configurable = patch.get("vnfConfigurableProperties")
    if flavour_id is not None and isinstance(configurable, Mapping):
        if vnfd is None:
            try:
                vnfd = nfvo.vnfd(vnfd_id)
            except KeyError:
                vnfd = None
        _check_configurable(configurable, vnfd)
    return InfoModifications(patch=patch, package=package)


def apply_modifications(row: VnfInstanceRow, modifications: InfoModifications) -> dict[str, Any]:
    """Apply to the stored instance; the VnfInfoModifications JSON of what actually changed.

    A removed name or description is not listed: VnfInfoModifications has no way to say
    "removed" for a string attribute.
    """
    patch = modifications.patch
    changed: dict[str, Any] = {}
    removed = False
    for key, attr in (
        ("vnfInstanceName", "vnf_instance_name"),
        ("vnfInstanceDescription", "vnf_instance_description"),
    ):
        if key in patch and getattr(row, attr) != patch[key]:
            setattr(row, attr, patch[key])
            removed = removed or patch[key] is None
            if patch[key] is not None:
                changed[key] = patch[key]
    for key, attr in _MAPS.items():
        given = patch.get(key)
        if not isinstance(given, Mapping):
            continue
        before: dict[str, Any] = dict(getattr(row, attr) or {})
        after = merge_patch(before, dict(given))
        if after == before:
            continue
        setattr(row, attr, after)
        if key != "vimConnectionInfo":
            changed[key] = dict(given)
            continue
        # The connections as they are now; removed ones cannot be listed (no nulls).
        kept = {name: after[name] for name in given if name in after}
        if kept:
            changed[key] = kept
        else:
            removed = True
    if modifications.package is not None and row.vnfd_id != modifications.package["vnfdId"]:
        row.vnfd_id = modifications.package["vnfdId"]
        changed["vnfdId"] = row.vnfd_id
        for key, attr in _PACKAGE_FACTS.items():
            value = modifications.package[key]
            if getattr(row, attr) != value:
                setattr(row, attr, value)
                if key != "vnfPkgId":  # not an attribute of VnfInstance (any more)
                    changed[key] = value
    if changed or removed:
        row.revision += 1
    model = VnfInfoModifications.model_validate(changed)
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
