"""The VNF packages an NSD references, checked at onboarding.

Whether the referenced VNFDs must already be onboarded is the NSD's own
choice: SOL001 (v4.4.1, tosca.nodes.nfv.NS) gives the NS node the property
`strict_nsd_constituent_onboarding`, "if all NSD constituents referenced by
this NSD shall be onboarded before onboarding the NSD", required, default
true. So by default every VNF profile's VNFD must be an ONBOARDED VNF package
or the NSD is refused, naming the profile and the VNFD; an NSD that sets it
to false onboards with the packages that exist (NsdInfo.vnfPkgIds lists
those) and NS lifecycle management resolves the rest when it needs them.

A VNF profile whose VNFD is onboarded is also checked against it: the
deployment flavour, its instantiation level, the external connection points
its requirements name, and the VNF scaling aspects and levels the NS levels
map to must all exist in that VNFD.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from descriptors.nsd import Nsd, NsDeploymentFlavour, NsLevelContent, VnfProfile
from descriptors.vnfd import DeploymentFlavour, Vnfd
from nfvo.vnfpkgm.models import VnfPackageRow
from sol013.problem import ApiError


def _identity_problems(profile: VnfProfile, vnfd: Vnfd) -> list[str]:
    pairs = (
        ("provider", profile.vnf_provider, vnfd.vnf_provider),
        ("product_name", profile.vnf_product_name, vnfd.vnf_product_name),
        ("software_version", profile.vnf_software_version, vnfd.vnf_software_version),
        ("descriptor_version", profile.vnfd_version, vnfd.vnfd_version),
    )
    return [
        f"VNF profile {profile.id!r} gives {name} {given!r} but VNFD {vnfd.vnfd_id} has {actual!r}"
        for name, given, actual in pairs
        if given != actual
    ]


def _scale_level_problems(
    ns_flavour: NsDeploymentFlavour, profile: VnfProfile, flavour: DeploymentFlavour
) -> list[str]:
    contents: list[tuple[str, NsLevelContent]] = [
        (f"NS scaling aspect {aspect.id!r} level {level.level}", level)
        for aspect in ns_flavour.scaling_aspects
        for level in aspect.levels
    ]
    contents += [
        (f"NS instantiation level {level.id!r}", level) for level in ns_flavour.instantiation_levels
    ]
    problems: list[str] = []
    for where, content in contents:
        for aspect_id, scale_level in content.vnf_scale_levels.get(profile.id, {}).items():
            try:
                aspect = flavour.scaling_aspect(aspect_id)
            except KeyError:
                problems.append(
                    f"{where} scales VNF profile {profile.id!r} along {aspect_id!r}, which is "
                    f"not a scaling aspect of VNFD flavour {flavour.flavour_id!r}"
                )
                continue
            if scale_level > aspect.max_scale_level:
                problems.append(
                    f"{where} puts VNF profile {profile.id!r} at scale level {scale_level} of "
                    f"{aspect_id!r}, above its max_scale_level {aspect.max_scale_level}"
                )
    return problems


def profile_problems(ns_flavour: NsDeploymentFlavour, profile: VnfProfile, vnfd: Vnfd) -> list[str]:
    """What in one VNF profile does not fit the VNFD it references."""
    problems = _identity_problems(profile, vnfd)
    try:
        flavour = vnfd.flavour(profile.flavour_id)
    except KeyError:
        return [
            *problems,
            f"VNF profile {profile.id!r}: flavour_id {profile.flavour_id!r} is not a deployment "
            f"flavour of VNFD {vnfd.vnfd_id} (it has {', '.join(vnfd.flavour_ids)})",
        ]
    level_ids = [level.id for level in flavour.instantiation_levels]
    if profile.instantiation_level is not None and profile.instantiation_level not in level_ids:
        problems.append(
            f"VNF profile {profile.id!r}: instantiation_level {profile.instantiation_level!r} "
            f"is not a level of VNFD flavour {flavour.flavour_id!r} (it has {level_ids})"
        )
    exposed = sorted(flavour.requirement_mappings)
    for requirement in profile.virtual_links:
        if requirement not in flavour.requirement_mappings:
            problems.append(
                f"VNF profile {profile.id!r}: requirement {requirement!r} is not an external "
                f"connection point of VNFD flavour {flavour.flavour_id!r} (it exposes {exposed})"
            )
    return problems + _scale_level_problems(ns_flavour, profile, flavour)


def resolve_vnf_packages(session: Session, nsd: Nsd) -> list[str]:
    """The ids of the VNF packages holding the NSD's VNFDs; ApiError if it cannot onboard.

    409 when a VNFD is not onboarded (and the NSD is strict about it), 422 when
    a VNF profile does not fit its VNFD.
    """
    rows = {
        row.vnfd_id: row
        for row in session.scalars(
            select(VnfPackageRow).where(
                VnfPackageRow.vnfd_id.in_(nsd.vnfd_ids),
                VnfPackageRow.onboarding_state == "ONBOARDED",
            )
        )
    }
    missing: list[str] = []
    mismatches: list[str] = []
    pkg_ids: list[str] = []
    for flavour in nsd.flavours:
        for profile in flavour.vnf_profiles:
            row = rows.get(profile.vnfd_id)
            if row is None or row.vnfd is None:
                if nsd.strict_constituent_onboarding:
                    missing.append(
                        f"VNF profile {profile.id!r} references VNFD {profile.vnfd_id} "
                        f"({profile.vnf_provider} {profile.vnf_product_name} "
                        f"{profile.vnfd_version}), which is not onboarded as a VNF package"
                    )
                continue
            mismatches += profile_problems(flavour, profile, Vnfd.model_validate(row.vnfd))
            if row.id not in pkg_ids:
                pkg_ids.append(row.id)
    if missing:
        raise ApiError(
            409,
            "; ".join(missing)
            + " (the NSD's strict_nsd_constituent_onboarding is true: onboard the VNF packages "
            "first, then upload the NSD again)",
        )
    if mismatches:
        raise ApiError(422, "; ".join(mismatches))
    return pkg_ids
