"""Node templates of a flavour as models: VDUs (compute and OS containers), storage, links."""

from __future__ import annotations

from typing import Any

from descriptors.errors import DescriptorError
from descriptors.vnfd import (
    Artifact,
    Vdu,
    VduProfile,
    VirtualCompute,
    VirtualLink,
    VirtualLinkProtocolData,
    VirtualStorage,
)
from descriptors.vnfd_build.artifacts import build_artifact, build_sw_image, template_artifacts
from descriptors.vnfd_build.type_names import SW_IMAGE_ARTIFACT, VDU_OS_CONTAINER_DU, is_a
from descriptors.vnfd_build.values import (
    ToscaValues,
    link_bitrate,
    property_values,
    requirement_targets,
)


def build_virtual_link(node: Any, values: ToscaValues) -> VirtualLink:
    props = property_values(node, values)
    connectivity = props.get("connectivity_type") or {}
    profile = props.get("vl_profile") or {}
    return VirtualLink(
        id=node.name,
        description=props.get("description"),
        layer_protocols=list(connectivity.get("layer_protocols") or []),
        flow_pattern=connectivity.get("flow_pattern"),
        max_bitrate=link_bitrate(profile.get("max_bitrate_requirements")),
        min_bitrate=link_bitrate(profile.get("min_bitrate_requirements")),
        qos=profile.get("qos"),
        protocol_data=[
            VirtualLinkProtocolData.model_validate(item)
            for item in profile.get("virtual_link_protocol_data") or []
        ],
        test_access=list(props.get("test_access") or []),
    )


def build_storage(node: Any, kind: str, values: ToscaValues, provider: str) -> VirtualStorage:
    props = property_values(node, values)
    data = (
        props.get("virtual_block_storage_data")
        or props.get("virtual_object_storage_data")
        or props.get("virtual_file_storage_data")
        or {}
    )
    size = data.get("size_of_storage", data.get("max_size_of_storage"))
    image = None
    for name, definition in template_artifacts(node, values):
        if definition.get("type") == SW_IMAGE_ARTIFACT:
            image = build_sw_image(node.name, name, definition, values, provider)
    return VirtualStorage(
        id=node.name,
        kind=kind,
        size_of_storage=values.size(size) if size is not None else None,
        rdma_enabled=data.get("rdma_enabled"),
        per_vnfc_instance=bool(props.get("per_vnfc_instance", True)),
        file_system_protocol=data.get("file_system_protocol"),
        sw_image=image,
    )


def build_vdu(node: Any, values: ToscaValues, provider: str, cps: list[str]) -> Vdu:
    props = property_values(node, values)
    metadata = values.plain(node.entity_tpl.get("metadata") or {})
    # The role is a typed property of mano.nodes.nfv.Vdu.Compute; a VDU of a
    # plain SOL001 type may still carry it as template metadata.
    role = props.get("role") or metadata.get("role") or "other"
    if role not in ("fastpath", "slowpath", "other"):
        raise DescriptorError(
            f"VDU {node.name!r}: role {role!r} is not fastpath, slowpath or other",
            location=values.location,
        )
    command = props.get("command") or []
    compute = None
    caps = node.entity_tpl.get("capabilities") or {}
    vc_props = values.plain(((caps.get("virtual_compute") or {}).get("properties")) or {})
    if vc_props:
        cpu = vc_props.get("virtual_cpu") or {}
        memory = vc_props.get("virtual_memory") or {}
        clock = cpu.get("virtual_cpu_clock")
        compute = VirtualCompute(
            num_virtual_cpu=int(cpu.get("num_virtual_cpu", 0)),
            virtual_mem_size=values.size(memory.get("virtual_mem_size", 0)),
            cpu_architecture=cpu.get("cpu_architecture"),
            virtual_cpu_clock=values.hertz(clock) if clock is not None else None,
            virtual_local_storage=[
                values.size(disk.get("size_of_storage", 0))
                for disk in vc_props.get("virtual_local_storage") or []
            ],
            compute_requirements={
                str(k): str(v) for k, v in (vc_props.get("compute_requirements") or {}).items()
            },
        )
    image = None
    others: list[Artifact] = []
    for name, definition in template_artifacts(node, values):
        if definition.get("type") == SW_IMAGE_ARTIFACT:
            if image is not None:
                raise DescriptorError(
                    f"VDU {node.name!r} has more than one software image", location=values.location
                )
            image = build_sw_image(node.name, name, definition, values, provider)
        else:
            others.append(build_artifact(node.name, name, definition, values.location))
    profile = props.get("vdu_profile") or {}
    return Vdu(
        id=node.name,
        name=str(props.get("name") or node.name),
        description=props.get("description"),
        node_type=node.type,
        kind="os_container_deployable_unit" if is_a(node, VDU_OS_CONTAINER_DU) else "compute",
        role=role,
        command=[str(arg) for arg in command],
        environment={str(k): str(v) for k, v in (props.get("environment") or {}).items()},
        vdu_profile=VduProfile.model_validate(profile),
        virtual_compute=compute,
        storages=requirement_targets(node, "virtual_storage"),
        sw_image=image,
        boot_data=props.get("boot_data"),
        connection_points=cps,
        artifacts=others,
        metadata=metadata,
    )
