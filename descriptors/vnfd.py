"""Typed model of a SOL001 VNFD, as `descriptors.tosca.parse_vnfd` produces it.

Everything downstream (VNF package management, VNF LCM, grants, the
autoscaler, the VIM adapters) reads VNFDs through these models, never
through TOSCA dicts. Sizes are in bytes, times in seconds and bitrates in
bits per second, so no consumer parses TOSCA scalar-units. Identifiers of
VDUs, links and connection points are their node template names, which is
what SOL003 calls vduId, vnfVirtualLinkDescId and cpdId.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from descriptors.lookup import by_id, instantiation_level

VduRole = Literal["fastpath", "slowpath", "other"]
"""Which unit of a split VNF a VDU is (declared by `mano.nodes.nfv.Vdu.Compute.role`)."""


class _Model(BaseModel):
    # Frozen: one parsed VNFD is shared by many operations and must not be
    # changed by any of them.
    model_config = ConfigDict(frozen=True, extra="forbid")


class Checksum(_Model):
    """A digest and the algorithm that produced it (SOL001 ChecksumData)."""

    algorithm: str
    hash: str


class SoftwareImage(_Model):
    """A VM or container image of a VDU or storage; one VnfPkgInfo.softwareImages entry."""

    id: str = Field(description="node template name of the VDU or storage that uses the image")
    artifact_name: str
    name: str
    provider: str
    version: str
    checksum: Checksum
    container_format: str
    disk_format: str
    min_disk: int = Field(description="bytes")
    min_ram: int = Field(0, description="bytes")
    size: int = Field(description="bytes")
    image_path: str = Field(description="artifact file: a path in the package or a URI")
    operating_system: str | None = None
    supported_virtualisation_environments: list[str] = []


class Artifact(_Model):
    """A deployment or implementation artifact named in the VNFD (script, Helm chart, manifest)."""

    name: str
    type: str
    file: str
    owner: str = Field(description="node template that declares the artifact")
    description: str | None = None
    deploy_path: str | None = None
    repository: str | None = None
    checksum: Checksum | None = None
    properties: dict[str, Any] = {}


class AdditionalArtifact(_Model):
    """A non-image artifact of the package; one VnfPkgInfo.additionalArtifacts entry."""

    artifact_path: str
    checksum: Checksum | None = None
    metadata: dict[str, Any] = {}


class VirtualCompute(_Model):
    """Virtual CPU and memory a VNFC needs (the VDU's virtual_compute capability)."""

    num_virtual_cpu: int
    virtual_mem_size: int = Field(description="bytes")
    cpu_architecture: str | None = None
    virtual_cpu_clock: float | None = Field(None, description="Hz")
    virtual_local_storage: list[int] = Field([], description="sizes of local disks, bytes")
    compute_requirements: dict[str, str] = {}


class VirtualStorage(_Model):
    """A virtual storage node attached to VDUs."""

    id: str
    kind: Literal["block", "object", "file"]
    size_of_storage: int | None = Field(None, description="bytes; for object storage the maximum")
    rdma_enabled: bool | None = None
    per_vnfc_instance: bool = True
    file_system_protocol: str | None = None
    sw_image: SoftwareImage | None = None


class VduProfile(_Model):
    """Bounds on the number of VNFC instances of a VDU in one flavour."""

    min_number_of_instances: int
    max_number_of_instances: int


class Vdu(_Model):
    """A virtualisation deployment unit: one kind of VNFC (a process, VM or pod)."""

    id: str
    name: str
    description: str | None = None
    node_type: str
    kind: Literal["compute", "os_container_deployable_unit"] = "compute"
    role: VduRole = "other"
    command: list[str] = Field(
        [], description="argv of the VNFC process; overrides a container image entrypoint"
    )
    environment: dict[str, str] = {}
    vdu_profile: VduProfile
    virtual_compute: VirtualCompute | None = None
    storages: list[str] = Field([], description="ids of attached VirtualStorage nodes")
    sw_image: SoftwareImage | None = None
    boot_data: dict[str, Any] | None = None
    connection_points: list[str] = Field([], description="ids of the VduCps bound to this VDU")
    initial_delta: int | None = Field(None, description="instances at scale level 0")
    artifacts: list[Artifact] = Field([], description="artifacts other than the software image")
    metadata: dict[str, Any] = {}


class LinkBitrate(_Model):
    """Bitrate of a virtual link in bits per second (root, and each leaf of a multipoint link)."""

    root: int
    leaf: int | None = None


class IpAllocationPool(_Model):
    """A range of addresses handed out on a subnet."""

    start_ip_address: str
    end_ip_address: str


class L2ProtocolData(_Model):
    """Layer 2 parameters of a virtual link."""

    name: str | None = None
    network_type: str | None = None
    vlan_transparent: bool = False
    mtu: int | None = None
    segmentation_id: str | None = None


class L3ProtocolData(_Model):
    """Layer 3 parameters of a virtual link: its subnet."""

    name: str | None = None
    ip_version: Literal["ipv4", "ipv6"]
    cidr: str
    ip_allocation_pools: list[IpAllocationPool] = []
    gateway_ip: str | None = None
    dhcp_enabled: bool | None = None
    ipv6_address_mode: str | None = None


class VirtualLinkProtocolData(_Model):
    """Protocol parameters of a virtual link for one layer protocol."""

    associated_layer_protocol: str
    l2_protocol_data: L2ProtocolData | None = None
    l3_protocol_data: L3ProtocolData | None = None


class VirtualLink(_Model):
    """An internal virtual link of the VNF (VnfVirtualLink)."""

    id: str
    description: str | None = None
    layer_protocols: list[str]
    flow_pattern: str | None = None
    max_bitrate: LinkBitrate
    min_bitrate: LinkBitrate
    qos: dict[str, Any] | None = None
    protocol_data: list[VirtualLinkProtocolData] = []
    test_access: list[str] = []
    initial_bitrate: LinkBitrate | None = Field(None, description="bitrate at scale level 0")

    @property
    def cidrs(self) -> list[str]:
        """Subnets declared for the link, in declaration order."""
        return [p.l3_protocol_data.cidr for p in self.protocol_data if p.l3_protocol_data]


class L2AddressData(_Model):
    """MAC address assignment of a connection point."""

    mac_address_assignment: bool


class L3AddressData(_Model):
    """IP address assignment of a connection point."""

    ip_address_assignment: bool
    floating_ip_activated: bool
    ip_address_type: Literal["ipv4", "ipv6"] | None = None
    number_of_ip_address: int | None = None
    fixed_ip_address: list[str] = []


class AddressData(_Model):
    """One address of a connection point."""

    address_type: Literal["mac_address", "ip_address"]
    l2_address_data: L2AddressData | None = None
    l3_address_data: L3AddressData | None = None


class CpProtocol(_Model):
    """A protocol a connection point speaks, with its addresses."""

    associated_layer_protocol: str
    address_data: list[AddressData] = []


class VduCp(_Model):
    """An internal connection point binding a VDU to an internal virtual link."""

    id: str
    vdu: str | None = Field(None, description="id of the VDU it binds to")
    virtual_link: str | None = Field(None, description="id of the internal virtual link")
    layer_protocols: list[str]
    role: str | None = None
    description: str | None = None
    order: int | None = None
    vnic_type: str | None = None
    bitrate_requirement: int | None = None
    protocol: list[CpProtocol] = []
    exposed_as: str | None = Field(
        None, description="VNF requirement name if the CP is exposed directly as an external CP"
    )


class VnfExtCp(_Model):
    """An external connection point of the VNF, re-exposing an internal virtual link."""

    id: str
    internal_virtual_link: str | None = None
    layer_protocols: list[str]
    role: str | None = None
    description: str | None = None
    protocol: list[CpProtocol] = []
    external_requirement: str | None = Field(
        None, description="VNF requirement name that exposes it in substitution_mappings"
    )


class RequirementMapping(_Model):
    """A VNF requirement realised by a requirement of a node inside the flavour."""

    node: str
    requirement: str


class ScalingAspect(_Model):
    """A scaling aspect: a named dimension the VNF scales in, by levels 0..max_scale_level."""

    id: str
    name: str
    description: str
    max_scale_level: int
    step_deltas: list[str] = []


class VduScalingAspectDeltas(_Model):
    """Instances added per delta of an aspect, for the targeted VDUs."""

    id: str
    aspect: str
    deltas: dict[str, int]
    targets: list[str]


class VirtualLinkBitrateScalingAspectDeltas(_Model):
    """Bitrate added per delta of an aspect, for the targeted virtual links."""

    id: str
    aspect: str
    deltas: dict[str, LinkBitrate]
    targets: list[str]


class InstantiationLevel(_Model):
    """An instantiation level: scale levels per aspect and instances per VDU."""

    id: str
    description: str
    scale_info: dict[str, int] = Field({}, description="aspect id -> scale level")
    vdu_instances: dict[str, int] = Field({}, description="VDU id -> number of instances")
    virtual_link_bitrates: dict[str, LinkBitrate] = {}


class MonitoringParameter(_Model):
    """A performance metric the VNFM collects (VNF, VDU or virtual link level)."""

    id: str
    name: str | None = None
    performance_metric: str
    collection_period: float | None = Field(None, description="seconds")
    targets: list[str] = []
    level: Literal["vnf", "vdu", "virtual_link"]
    standard: bool = Field(description="an ETSI IFA 027 metric, not a project specific one")


class PlacementRule(_Model):
    """An affinity or anti-affinity rule over VDUs or virtual links."""

    id: str
    kind: Literal["affinity", "anti_affinity"]
    scope: str
    targets: list[str]


class SecurityGroupRule(_Model):
    """A security group rule applied to connection points."""

    id: str
    description: str | None = None
    direction: Literal["ingress", "egress"] = "ingress"
    ether_type: Literal["ipv4", "ipv6"] = "ipv4"
    protocol: str = "tcp"
    port_range_min: int = 0
    port_range_max: int = 65535
    targets: list[str] = []


class VnfIndicator(_Model):
    """A VNF indicator and the values it can take."""

    id: str
    name: str | None = None
    indicator_value: list[str]
    source: Literal["vnf", "em", "both"]


class LcmOperation(_Model):
    """A Vnflcm interface operation the VNF declares, with its implementation artifact."""

    name: str
    implementation: str | None = Field(None, description="primary artifact name")
    dependencies: list[str] = []
    inputs: dict[str, Any] = {}
    description: str | None = None


class DeploymentFlavour(_Model):
    """One deployment flavour: its topology, scaling, levels, monitoring and LCM interface."""

    flavour_id: str
    description: str
    definitions_file: str = Field(description="package path of the flavour's service template")
    vdus: list[Vdu]
    storages: list[VirtualStorage] = []
    virtual_links: list[VirtualLink] = []
    vdu_cps: list[VduCp] = []
    ext_cps: list[VnfExtCp] = []
    requirement_mappings: dict[str, RequirementMapping] = {}
    scaling_aspects: list[ScalingAspect] = []
    vdu_scaling_aspect_deltas: list[VduScalingAspectDeltas] = []
    virtual_link_bitrate_scaling_aspect_deltas: list[VirtualLinkBitrateScalingAspectDeltas] = []
    instantiation_levels: list[InstantiationLevel] = []
    default_instantiation_level: str | None = None
    monitoring_parameters: list[MonitoringParameter] = []
    placement_rules: list[PlacementRule] = []
    security_group_rules: list[SecurityGroupRule] = []
    vnf_indicators: list[VnfIndicator] = []
    lcm_operations: dict[str, LcmOperation] = Field({}, description="Vnflcm operation name ->")
    artifacts: list[Artifact] = Field([], description="artifacts of the VNF node")

    def vdu(self, vdu_id: str) -> Vdu:
        """The VDU with this id; KeyError if the flavour has none."""
        return by_id(self.vdus, vdu_id)

    def vdus_with_role(self, role: VduRole) -> list[Vdu]:
        """VDUs of one role, e.g. every fast-path unit."""
        return [vdu for vdu in self.vdus if vdu.role == role]

    def virtual_link(self, vl_id: str) -> VirtualLink:
        """The internal virtual link with this id; KeyError if the flavour has none."""
        return by_id(self.virtual_links, vl_id)

    def scaling_aspect(self, aspect_id: str) -> ScalingAspect:
        """The scaling aspect with this id; KeyError if the flavour has none."""
        return by_id(self.scaling_aspects, aspect_id)

    def instantiation_level(self, level_id: str | None = None) -> InstantiationLevel:
        """The named level, or the default one; KeyError if there is no such level."""
        return instantiation_level(
            self.instantiation_levels, level_id, self.default_instantiation_level
        )

    def vdu_deltas(self, aspect_id: str, vdu_id: str) -> dict[str, int]:
        """Instances a VDU gains per delta of an aspect (empty if the aspect does not scale it)."""
        for deltas in self.vdu_scaling_aspect_deltas:
            if deltas.aspect == aspect_id and vdu_id in deltas.targets:
                return dict(deltas.deltas)
        return {}


class Vnfd(_Model):
    """A VNF descriptor: VNF-wide information and its deployment flavours."""

    vnfd_id: str
    vnf_provider: str
    vnf_product_name: str
    vnf_software_version: str
    vnfd_version: str
    vnfm_info: list[str]
    product_info_name: str | None = None
    product_info_description: str | None = None
    localization_languages: list[str] = []
    default_localization_language: str | None = None
    vnf_node_type: str = Field(description="the VNF specific node type the flavours substitute")
    configurable_properties: dict[str, Any] = {}
    modifiable_attributes: dict[str, Any] = {}
    lcm_operations_configuration: dict[str, Any] = {}
    entry_definitions: str
    flavours: list[DeploymentFlavour]
    software_images: list[SoftwareImage] = []
    additional_artifacts: list[AdditionalArtifact] = []

    def flavour(self, flavour_id: str) -> DeploymentFlavour:
        """The deployment flavour with this id; KeyError if the VNFD has none."""
        for flavour in self.flavours:
            if flavour.flavour_id == flavour_id:
                return flavour
        raise KeyError(flavour_id)

    @property
    def flavour_ids(self) -> list[str]:
        """Ids of all deployment flavours, in declaration order."""
        return [f.flavour_id for f in self.flavours]
