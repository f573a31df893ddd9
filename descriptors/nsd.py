"""Typed model of a SOL001 NSD, as `descriptors.nsd_parse.parse_nsd` produces it.

NSD management and NS lifecycle management read NSDs through these models,
never through TOSCA dicts. As in `descriptors.vnfd`, times are in seconds and
bitrates in bits per second. Identifiers of VNF profiles, NS virtual links
and SAPs are their node template names, which is what SOL005 calls
vnfProfileId, nsVirtualLinkDescId and sapdId.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from descriptors.lookup import by_id, instantiation_level
from descriptors.vnfd import CpProtocol, LinkBitrate, RequirementMapping, VirtualLinkProtocolData

PlacementKind = Literal["affinity", "anti_affinity"]


class _Model(BaseModel):
    # Frozen: one parsed NSD is shared by many operations and must not be
    # changed by any of them.
    model_config = ConfigDict(frozen=True, extra="forbid")


class VnfProfile(_Model):
    """A VNF node template of the NSD: which VNFD and flavour, how many, connected where."""

    id: str = Field(description="node template name: the vnfProfileId")
    node_type: str = Field(description="the VNF specific node type the VNFD declares")
    vnfd_id: str
    vnf_provider: str
    vnf_product_name: str
    vnf_software_version: str
    vnfd_version: str
    flavour_id: str = Field(description="deployment flavour of the VNFD to instantiate")
    instantiation_level: str | None = Field(
        None, description="instantiation level of that flavour; its default one if absent"
    )
    min_number_of_instances: int = Field(ge=0)
    max_number_of_instances: int = Field(ge=0)
    virtual_links: dict[str, str] = Field(
        {}, description="VNF requirement (an external CP the VNFD exposes) -> NS virtual link id"
    )
    dependencies: list[str] = Field(
        [], description="VNF profiles whose VNFs must be instantiated before this one's"
    )


class NsQos(_Model):
    """Quality of service of an NS virtual link."""

    latency: float = Field(description="seconds")
    packet_delay_variation: float = Field(description="seconds")
    packet_loss_ratio: float | None = None
    priority: int | None = None


class NsVirtualLink(_Model):
    """A virtual link between the constituents of the NS (NsVirtualLinkDesc and its profile)."""

    id: str
    description: str | None = None
    layer_protocols: list[str]
    flow_pattern: str | None = None
    max_bitrate: LinkBitrate
    min_bitrate: LinkBitrate
    qos: NsQos | None = None
    service_availability_level: int | None = None
    protocol_data: list[VirtualLinkProtocolData] = []
    test_access: list[str] = []

    @property
    def cidrs(self) -> list[str]:
        """Subnets declared for the link, in declaration order."""
        return [p.l3_protocol_data.cidr for p in self.protocol_data if p.l3_protocol_data]


class Sap(_Model):
    """A service access point: where the NS is reached from outside."""

    id: str
    description: str | None = None
    layer_protocols: list[str]
    protocol: list[CpProtocol] = []
    virtual_link: str = Field(description="the NS virtual link the SAP attaches to")
    external_requirement: str | None = Field(
        None, description="NS requirement that exposes it in substitution_mappings"
    )


class NsLevelContent(_Model):
    """What the NS consists of at one level (of a scaling aspect, or an instantiation level).

    Only what the NSD states is recorded: a VNF profile without an instance
    count at this level keeps its count, one without a scale level for a VNF
    aspect keeps that aspect's level.
    """

    vnf_instances: dict[str, int] = Field({}, description="VNF profile id -> number of instances")
    vnf_scale_levels: dict[str, dict[str, int]] = Field(
        {}, description="VNF profile id -> VNF scaling aspect id -> scale level"
    )
    virtual_link_bitrates: dict[str, LinkBitrate] = Field(
        {}, description="NS virtual link id -> bitrate requirements"
    )


def _stated(level: NsLevelContent) -> dict[tuple[str, ...], int]:
    """What a level says of the VNFs, flat: (profile,) -> instances, (profile, aspect) -> level."""
    stated: dict[tuple[str, ...], int] = {(p,): n for p, n in level.vnf_instances.items()}
    for profile_id, aspects in level.vnf_scale_levels.items():
        stated.update({(profile_id, a): n for a, n in aspects.items()})
    return stated


class NsScaleLevel(NsLevelContent):
    """One NS level of an NS scaling aspect."""

    level: int = Field(ge=0)
    description: str


class NsScalingAspect(_Model):
    """An aspect the NS scales along, by NS levels 0..max_scale_level."""

    id: str
    name: str
    description: str
    levels: list[NsScaleLevel] = Field(description="every level, in order from 0")

    @property
    def max_scale_level(self) -> int:
        return self.levels[-1].level

    def level(self, number: int) -> NsScaleLevel:
        """The NS level with this number; KeyError if the aspect has none."""
        for level in self.levels:
            if level.level == number:
                return level
        raise KeyError(number)


class NsInstantiationLevel(NsLevelContent):
    """An NS instantiation level of the deployment flavour."""

    id: str
    description: str


class NsPlacementRule(_Model):
    """An affinity or anti-affinity rule over VNF profiles, NS virtual links or SAPs."""

    id: str
    kind: PlacementKind
    scope: str
    targets: list[str]


class NsMonitoringParameter(_Model):
    """An NS level performance metric to monitor (ETSI GS NFV-IFA 027 name)."""

    id: str
    name: str
    performance_metric: str
    collection_period: float | None = Field(None, description="seconds")


class NsDeploymentFlavour(_Model):
    """One NS deployment flavour: its constituents, links, SAPs, scaling and levels."""

    flavour_id: str
    definitions_file: str = Field(description="archive path of the flavour's service template")
    vnf_profiles: list[VnfProfile]
    virtual_links: list[NsVirtualLink] = []
    saps: list[Sap] = []
    requirement_mappings: dict[str, RequirementMapping] = Field(
        {}, description="NS requirement -> the node requirement that realises it"
    )
    scaling_aspects: list[NsScalingAspect] = []
    instantiation_levels: list[NsInstantiationLevel] = []
    default_instantiation_level: str | None = None
    placement_rules: list[NsPlacementRule] = []
    monitoring_parameters: list[NsMonitoringParameter] = []

    def vnf_profile(self, profile_id: str) -> VnfProfile:
        """The VNF profile with this id; KeyError if the flavour has none."""
        return by_id(self.vnf_profiles, profile_id)

    def virtual_link(self, vl_id: str) -> NsVirtualLink:
        """The NS virtual link with this id; KeyError if the flavour has none."""
        return by_id(self.virtual_links, vl_id)

    def scaling_aspect(self, aspect_id: str) -> NsScalingAspect:
        """The NS scaling aspect with this id; KeyError if the flavour has none."""
        return by_id(self.scaling_aspects, aspect_id)

    def instantiation_level(self, level_id: str | None = None) -> NsInstantiationLevel:
        """The named NS instantiation level, or the default one; KeyError if there is none."""
        return instantiation_level(
            self.instantiation_levels, level_id, self.default_instantiation_level
        )

    def scale_levels_at(self, level: NsLevelContent) -> dict[str, int]:
        """The NS scale level every aspect stands at once the NS is as ``level`` makes it.

        SOL001 does not tie instantiation levels to scale levels, yet NS scaling goes on from
        where the instance stands: an NS instantiated at a level that deploys what level n of
        an aspect deploys stands at n on that aspect. For each aspect that is its highest
        level whose VNF instance counts and VNF scale levels agree with ``level`` on
        everything both state (and they state something in common); 0 when no level does.
        """
        wanted = _stated(level)
        levels: dict[str, int] = {}
        for aspect in self.scaling_aspects:
            levels[aspect.id] = 0
            for candidate in aspect.levels:
                stated = _stated(candidate)
                shared = stated.keys() & wanted.keys()
                if shared and all(stated[k] == wanted[k] for k in shared):
                    levels[aspect.id] = max(levels[aspect.id], candidate.level)
        return levels

    def instantiation_order(self) -> list[list[str]]:
        """VNF profile ids in dependency order: each group after every group before it.

        Profiles of one group do not depend on each other and may be
        instantiated in parallel; termination goes through the groups in
        reverse. The parser refuses cyclic dependencies, so every profile is
        in exactly one group.
        """
        pending = {p.id: set(p.dependencies) for p in self.vnf_profiles}
        order: list[list[str]] = []
        done: set[str] = set()
        while pending:
            ready = sorted(pid for pid, deps in pending.items() if deps <= done)
            if not ready:
                raise ValueError(f"cyclic VNF profile dependencies among {sorted(pending)}")
            order.append(ready)
            done.update(ready)
            for pid in ready:
                del pending[pid]
        return order


class Nsd(_Model):
    """A network service descriptor: NS-wide information and its deployment flavours."""

    nsd_id: str
    designer: str
    version: str
    name: str
    invariant_id: str
    ext_invariant_id: str | None = None
    ns_node_type: str = Field(description="the NS specific node type the flavours substitute")
    strict_constituent_onboarding: bool = Field(
        True,
        description="every referenced VNFD must be onboarded before the NSD "
        "(strict_nsd_constituent_onboarding)",
    )
    service_availability_level: int | None = None
    priority: int | None = None
    entry_definitions: str
    flavours: list[NsDeploymentFlavour]

    def flavour(self, flavour_id: str) -> NsDeploymentFlavour:
        """The NS deployment flavour with this id; KeyError if the NSD has none."""
        for flavour in self.flavours:
            if flavour.flavour_id == flavour_id:
                return flavour
        raise KeyError(flavour_id)

    @property
    def flavour_ids(self) -> list[str]:
        """Ids of all deployment flavours, in declaration order."""
        return [f.flavour_id for f in self.flavours]

    @property
    def vnfd_ids(self) -> list[str]:
        """Every VNFD the NSD references, once each, in first-use order."""
        seen: dict[str, None] = {}
        for flavour in self.flavours:
            for profile in flavour.vnf_profiles:
                seen.setdefault(profile.vnfd_id, None)
        return list(seen)
