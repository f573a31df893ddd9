"""One deployment flavour, built from its parsed service template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from toscaparser.tosca_template import ToscaTemplate

from descriptors.errors import DescriptorError
from descriptors.tosca_imports import Document
from descriptors.tosca_parser_fixes import mapping_entries
from descriptors.vnfd import (
    Artifact,
    DeploymentFlavour,
    LcmOperation,
    RequirementMapping,
    Vdu,
    VduCp,
    VirtualLink,
    VirtualStorage,
    VnfExtCp,
)
from descriptors.vnfd_build.artifacts import build_artifact, template_artifacts
from descriptors.vnfd_build.nodes import build_storage, build_vdu, build_virtual_link
from descriptors.vnfd_build.policies import policy_fields
from descriptors.vnfd_build.references import check_references
from descriptors.vnfd_build.type_names import (
    STORAGE_TYPES,
    VDU_COMPUTE,
    VDU_CP,
    VDU_OS_CONTAINER_DU,
    VNF,
    VNF_EXT_CP,
    VNF_VIRTUAL_LINK,
    is_a,
    type_chain,
)
from descriptors.vnfd_build.values import (
    ToscaValues,
    cp_protocols,
    first_or_none,
    property_values,
    pydantic_summary,
    requirement_targets,
)

_INTERFACE_RESERVED = {"type", "inputs", "description", "derived_from", "version", "notifications"}


def _lcm_operations(vnf_node: Any, values: ToscaValues) -> dict[str, LcmOperation]:
    interfaces = vnf_node.entity_tpl.get("interfaces") or {}
    vnflcm = interfaces.get("Vnflcm") if isinstance(interfaces, dict) else None
    if not isinstance(vnflcm, dict):
        return {}
    operations = vnflcm.get("operations", vnflcm)
    out: dict[str, LcmOperation] = {}
    for name, definition in (operations or {}).items():
        if name in _INTERFACE_RESERVED:
            continue
        implementation: str | None = None
        dependencies: list[str] = []
        inputs: dict[str, Any] = {}
        description: str | None = None
        if isinstance(definition, str):
            implementation = definition
        elif isinstance(definition, dict):
            impl = definition.get("implementation")
            if isinstance(impl, str):
                implementation = impl
            elif isinstance(impl, dict):
                implementation = impl.get("primary")
                dependencies = [str(d) for d in impl.get("dependencies") or []]
            inputs = values.plain(definition.get("inputs") or {})
            description = definition.get("description")
        out[str(name)] = LcmOperation(
            name=str(name),
            implementation=implementation,
            dependencies=dependencies,
            inputs=inputs,
            description=description,
        )
    return out


@dataclass
class VnfInfo:
    """VNF-wide properties and the node they came from."""

    node_type: str
    props: dict[str, Any]
    node: Any | None


def _vnf_info(flavour_tpl: ToscaTemplate, top: ToscaTemplate, node_type: str) -> VnfInfo:
    """VNF properties: the flavour's VNF node, else the top-level one, else type defaults."""
    values = ToscaValues(flavour_tpl, "")
    for tpl in (flavour_tpl, top):
        for node in getattr(tpl, "nodetemplates", None) or []:
            if node.type == node_type:
                return VnfInfo(node_type, property_values(node, ToscaValues(tpl, "")), node)
    from toscaparser.elements.nodetype import NodeType

    custom_defs = flavour_tpl.topology_template.custom_defs
    defaults = {
        p.name: values.plain(p.default)
        for p in NodeType(node_type, custom_defs).get_properties_def_objects()
        if p.default is not None
    }
    return VnfInfo(node_type, defaults, None)


def build_flavour(
    doc: Document, tpl: ToscaTemplate, top: ToscaTemplate
) -> tuple[DeploymentFlavour, VnfInfo]:
    location = doc.rel
    values = ToscaValues(tpl, location)
    mapping_def = tpl.topology_template.tpl.get("substitution_mappings") or {}
    node_type = mapping_def.get("node_type")
    if not isinstance(node_type, str):
        raise DescriptorError("substitution_mappings has no node_type", location=location)
    vnf = _vnf_info(tpl, top, node_type)
    if VNF not in type_chain(_node_type_def(tpl, node_type)):
        raise DescriptorError(
            f"substitution_mappings node_type {node_type!r} does not derive from {VNF}",
            location=location,
        )
    mapped_flavour = (mapping_def.get("properties") or {}).get("flavour_id")
    # Only a value written in the flavour's own VNF node counts: the type's
    # default (or a top-level node's get_input) says nothing about this file.
    node_flavour = None
    if vnf.node is not None and vnf.node in tpl.nodetemplates:
        written = (vnf.node.entity_tpl.get("properties") or {}).get("flavour_id")
        node_flavour = written if isinstance(written, str) else None
    flavour_id = mapped_flavour or node_flavour or vnf.props.get("flavour_id")
    if not isinstance(flavour_id, str) or not flavour_id:
        raise DescriptorError(
            "flavour_id is given neither in substitution_mappings properties nor by the VNF node",
            location=location,
        )
    if node_flavour not in (None, flavour_id):
        raise DescriptorError(
            f"flavour_id {node_flavour!r} of the VNF node differs from the "
            f"substitution_mappings flavour_id {flavour_id!r}",
            location=location,
        )

    mappings: dict[str, RequirementMapping] = {}
    for outer, target in mapping_entries(mapping_def):
        if not (isinstance(target, list) and len(target) == 2):
            raise DescriptorError(
                f"substitution mapping of requirement {outer!r} must be [node, requirement]",
                location=location,
            )
        mappings[str(outer)] = RequirementMapping(node=str(target[0]), requirement=str(target[1]))
    exposed = {(m.node, m.requirement): outer for outer, m in mappings.items()}
    provider = str(vnf.props.get("provider") or "")

    nodes = list(tpl.nodetemplates)
    vdus: list[Vdu] = []
    storages: list[VirtualStorage] = []
    links: list[VirtualLink] = []
    vdu_cps: list[VduCp] = []
    ext_cps: list[VnfExtCp] = []
    try:
        for node in nodes:
            if is_a(node, VDU_CP):
                props = property_values(node, values)
                vdu_cps.append(
                    VduCp(
                        id=node.name,
                        vdu=first_or_none(requirement_targets(node, "virtual_binding")),
                        virtual_link=first_or_none(requirement_targets(node, "virtual_link")),
                        layer_protocols=list(props.get("layer_protocols") or []),
                        role=props.get("role"),
                        description=props.get("description"),
                        order=props.get("order"),
                        vnic_type=props.get("vnic_type"),
                        bitrate_requirement=props.get("bitrate_requirement"),
                        protocol=cp_protocols(props.get("protocol")),
                        exposed_as=exposed.get((node.name, "virtual_link")),
                    )
                )
            elif is_a(node, VNF_EXT_CP):
                props = property_values(node, values)
                ext_cps.append(
                    VnfExtCp(
                        id=node.name,
                        internal_virtual_link=first_or_none(
                            requirement_targets(node, "internal_virtual_link")
                        ),
                        layer_protocols=list(props.get("layer_protocols") or []),
                        role=props.get("role"),
                        description=props.get("description"),
                        protocol=cp_protocols(props.get("protocol")),
                        external_requirement=exposed.get((node.name, "external_virtual_link")),
                    )
                )
            elif is_a(node, VNF_VIRTUAL_LINK):
                links.append(build_virtual_link(node, values))
            else:
                kind = next((k for t, k in STORAGE_TYPES.items() if is_a(node, t)), None)
                if kind is not None:
                    storages.append(build_storage(node, kind, values, provider))
        cps_by_vdu: dict[str, list[str]] = {}
        for cp in vdu_cps:
            if cp.vdu is not None:
                cps_by_vdu.setdefault(cp.vdu, []).append(cp.id)
        for node in nodes:
            if is_a(node, VDU_COMPUTE) or is_a(node, VDU_OS_CONTAINER_DU):
                vdus.append(build_vdu(node, values, provider, cps_by_vdu.get(node.name, [])))
    except PydanticValidationError as exc:
        raise DescriptorError(pydantic_summary(exc), location=location) from None

    flavour_fields = policy_fields(tpl, values, vdus, links)
    vnf_artifacts: list[Artifact] = []
    lcm_operations: dict[str, LcmOperation] = {}
    if vnf.node is not None:
        vnf_artifacts = [
            build_artifact(vnf.node.name, name, definition, location)
            for name, definition in template_artifacts(vnf.node, values)
        ]
        lcm_operations = _lcm_operations(vnf.node, values)
    flavour = DeploymentFlavour(
        flavour_id=flavour_id,
        description=str(vnf.props.get("flavour_description") or ""),
        definitions_file=doc.rel,
        vdus=flavour_fields.pop("vdus"),
        storages=storages,
        virtual_links=flavour_fields.pop("virtual_links"),
        vdu_cps=vdu_cps,
        ext_cps=ext_cps,
        requirement_mappings=mappings,
        lcm_operations=lcm_operations,
        artifacts=vnf_artifacts,
        **flavour_fields,
    )
    check_references(flavour, location)
    return flavour, vnf


def _node_type_def(tpl: ToscaTemplate, node_type: str) -> Any:
    from toscaparser.elements.nodetype import NodeType

    return NodeType(node_type, tpl.topology_template.custom_defs)
