"""At which VNF instantiation level a VNF of an NS starts, so the NS level holds from the start.

An NS instantiation level may ask for VNF scale levels (the project's
`mano.policies.nfv.VnfAspectToInstantiationLevelMapping`: "at NS level large the NAT's
fastpath aspect is at 3"), while SOL003 instantiates a VNF only at one of its VNFD's
instantiation levels. The cheapest faithful way is a VNF instantiation level whose scale
levels are exactly those asked for: the VNF profile's own level when it fits, else another
level of the same flavour. When no level fits, the VNF starts at the profile's level and
is then scaled to the asked levels (one more VNF operation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from descriptors.nsd import VnfProfile
from descriptors.vnfd import InstantiationLevel, Vnfd


@dataclass(frozen=True)
class VnfStart:
    """How a VNF reaches the scale levels its NS level asks for."""

    instantiation_level_id: str | None
    """The VNF instantiation level to instantiate at (None: the VNFD's default)."""
    scale_after: dict[str, int] = field(default_factory=dict)
    """VNF aspect -> scale level still to reach by a scale to level; empty when none."""


def _fits(level: InstantiationLevel, wanted: Mapping[str, int]) -> bool:
    # An aspect a VNF level does not name starts at level 0 (SOL001 InstantiationLevels).
    return all(level.scale_info.get(aspect, 0) == n for aspect, n in wanted.items())


def vnf_start(vnfd: Vnfd, profile: VnfProfile, wanted: Mapping[str, int]) -> VnfStart:
    """Where a VNF of ``profile`` starts so that its aspects stand at ``wanted``.

    KeyError if the profile's flavour or instantiation level is not in the VNFD (the NSD
    checks at onboarding make that unlikely; the caller reports it).
    """
    if not wanted:
        return VnfStart(profile.instantiation_level)
    flavour = vnfd.flavour(profile.flavour_id)
    if not flavour.instantiation_levels:
        return VnfStart(profile.instantiation_level, dict(wanted))
    own = flavour.instantiation_level(profile.instantiation_level)
    for level in [own, *(lv for lv in flavour.instantiation_levels if lv.id != own.id)]:
        if _fits(level, wanted):
            return VnfStart(level.id)
    return VnfStart(profile.instantiation_level, dict(wanted))
