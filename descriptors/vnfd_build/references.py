"""Cross-reference checks of a built deployment flavour."""

from __future__ import annotations

from descriptors.errors import DescriptorError
from descriptors.vnfd import DeploymentFlavour


def check_references(flavour: DeploymentFlavour, location: str) -> None:
    """Cross-references TOSCA cannot check: aspects, deltas and levels must name real things."""
    vdu_ids = {vdu.id for vdu in flavour.vdus}
    link_ids = {link.id for link in flavour.virtual_links}
    aspects = {aspect.id: aspect for aspect in flavour.scaling_aspects}
    problems: list[str] = []
    for cp in flavour.vdu_cps:
        if cp.vdu is not None and cp.vdu not in vdu_ids:
            problems.append(f"VduCp {cp.id!r} binds to {cp.vdu!r}, which is not a VDU")
        if cp.virtual_link is not None and cp.virtual_link not in link_ids:
            problems.append(f"VduCp {cp.id!r} links to {cp.virtual_link!r}, not a virtual link")
    for ext in flavour.ext_cps:
        if ext.internal_virtual_link is not None and ext.internal_virtual_link not in link_ids:
            problems.append(
                f"VnfExtCp {ext.id!r} re-exposes {ext.internal_virtual_link!r}, "
                "not an internal virtual link"
            )
    for deltas in flavour.vdu_scaling_aspect_deltas:
        aspect = aspects.get(deltas.aspect)
        if aspect is None:
            problems.append(f"policy {deltas.id!r} names unknown aspect {deltas.aspect!r}")
        elif aspect.step_deltas and not set(aspect.step_deltas) <= set(deltas.deltas):
            missing = sorted(set(aspect.step_deltas) - set(deltas.deltas))
            problems.append(f"policy {deltas.id!r} lacks deltas {missing} of {aspect.id!r}")
    for level in flavour.instantiation_levels:
        for aspect_id, scale_level in level.scale_info.items():
            aspect = aspects.get(aspect_id)
            if aspect is None:
                problems.append(f"level {level.id!r} names unknown aspect {aspect_id!r}")
            elif scale_level > aspect.max_scale_level:
                problems.append(
                    f"level {level.id!r} puts {aspect_id!r} at {scale_level}, "
                    f"above its max_scale_level {aspect.max_scale_level}"
                )
    level_ids = {level.id for level in flavour.instantiation_levels}
    if flavour.default_instantiation_level and flavour.default_instantiation_level not in level_ids:
        problems.append(
            f"default_level {flavour.default_instantiation_level!r} is not an instantiation level"
        )
    for vdu in flavour.vdus:
        profile = vdu.vdu_profile
        if profile.min_number_of_instances > profile.max_number_of_instances:
            problems.append(f"VDU {vdu.id!r}: vdu_profile min exceeds max")
    for param in flavour.monitoring_parameters:
        if param.collection_period is not None and param.collection_period <= 0:
            problems.append(f"monitoring parameter {param.id!r}: collection_period must be > 0")
        unknown = [t for t in param.targets if param.level == "vdu" and t not in vdu_ids]
        if unknown:
            problems.append(f"monitoring parameter {param.id!r} targets non-VDUs {unknown}")
    if problems:
        raise DescriptorError("; ".join(problems), location=location)
