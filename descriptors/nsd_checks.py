"""Cross-reference checks of a built NS deployment flavour (what TOSCA itself cannot check)."""

from __future__ import annotations

from descriptors.errors import DescriptorError
from descriptors.nsd import NsDeploymentFlavour, NsLevelContent


def _level_problems(flavour: NsDeploymentFlavour, where: str, content: NsLevelContent) -> list[str]:
    problems: list[str] = []
    for profile_id, count in content.vnf_instances.items():
        profile = flavour.vnf_profile(profile_id)
        low, high = profile.min_number_of_instances, profile.max_number_of_instances
        if not low <= count <= high:
            problems.append(
                f"{where} gives VNF profile {profile_id!r} {count} instance(s), outside its "
                f"vnf_profile bounds {low}..{high}"
            )
    return problems


def check_flavour(flavour: NsDeploymentFlavour, location: str) -> None:
    """Raise DescriptorError listing every inconsistency of the flavour, each naming its node."""
    profiles = {p.id: p for p in flavour.vnf_profiles}
    link_ids = {link.id for link in flavour.virtual_links}
    sap_ids = {sap.id for sap in flavour.saps}
    problems: list[str] = []
    if not profiles:
        problems.append("the flavour has no VNF profile (no node template of a VNF type)")
    for profile in flavour.vnf_profiles:
        if profile.min_number_of_instances > profile.max_number_of_instances:
            problems.append(
                f"VNF profile {profile.id!r}: vnf_profile min_number_of_instances "
                f"{profile.min_number_of_instances} exceeds max_number_of_instances "
                f"{profile.max_number_of_instances}"
            )
        for dependency in profile.dependencies:
            if dependency == profile.id:
                problems.append(f"VNF profile {profile.id!r} depends on itself")
            elif dependency not in profiles:
                problems.append(
                    f"VNF profile {profile.id!r}: dependency {dependency!r} is not a VNF profile"
                )
    if not problems:
        try:
            flavour.instantiation_order()
        except ValueError as exc:
            problems.append(str(exc))
    for outer, mapping in flavour.requirement_mappings.items():
        if mapping.node in sap_ids:
            if mapping.requirement != "external_virtual_link":
                problems.append(
                    f"substitution mapping of NS requirement {outer!r}: a Sap is exposed by its "
                    f"external_virtual_link requirement, not {mapping.requirement!r}"
                )
        elif mapping.node not in profiles:
            problems.append(
                f"substitution mapping of NS requirement {outer!r} names {mapping.node!r}, "
                "which is neither a Sap nor a VNF profile"
            )
    for aspect in flavour.scaling_aspects:
        for scale_level in aspect.levels:
            where = f"NS scaling aspect {aspect.id!r} level {scale_level.level}"
            problems += _level_problems(flavour, where, scale_level)
    level_ids = [level.id for level in flavour.instantiation_levels]
    for level in flavour.instantiation_levels:
        problems += _level_problems(flavour, f"NS instantiation level {level.id!r}", level)
    default = flavour.default_instantiation_level
    if default is not None and default not in level_ids:
        problems.append(f"default_level {default!r} is not an NS instantiation level")
    if default is None and len(level_ids) > 1:
        problems.append(
            f"NsInstantiationLevels defines {len(level_ids)} levels but no default_level"
        )
    targets = set(profiles) | link_ids | sap_ids
    for rule in flavour.placement_rules:
        unknown = [t for t in rule.targets if t not in targets]
        if unknown:
            problems.append(
                f"policy {rule.id!r} targets {unknown}, which are not VNF profiles, NS virtual "
                "links or SAPs"
            )
    if problems:
        raise DescriptorError("; ".join(problems), location=location)
