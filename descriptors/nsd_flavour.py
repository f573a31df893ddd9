"""One NS deployment flavour, built from its parsed service template.

Node templates become VNF profiles (`tosca.nodes.nfv.VNF` and derived types),
NS virtual links and SAPs; policies become scaling aspects, instantiation
levels, placement rules and monitoring parameters (`descriptors.nsd_levels`);
cross-references tosca-parser cannot check are checked last
(`descriptors.nsd_checks`). Every error names the node (or policy) and the
field it is about.

Dependencies (IFA014 NsDf.dependencies) are the TOSCA `dependency`
requirement every node type inherits from tosca.nodes.Root
(tosca.relationships.DependsOn): a VNF node that requires `dependency: x`
is instantiated after the VNFs of profile `x`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError as PydanticValidationError
from toscaparser.elements.nodetype import NodeType
from toscaparser.tosca_template import ToscaTemplate

from descriptors.errors import DescriptorError
from descriptors.nsd import NsDeploymentFlavour, NsQos, NsVirtualLink, Sap, VnfProfile
from descriptors.nsd_checks import check_flavour
from descriptors.nsd_levels import level_fields
from descriptors.tosca_imports import Document
from descriptors.tosca_parser_fixes import mapping_entries
from descriptors.vnfd import RequirementMapping, VirtualLinkProtocolData
from descriptors.vnfd_build.type_names import VNF, is_a, type_chain
from descriptors.vnfd_build.values import (
    ToscaValues,
    cp_protocols,
    link_bitrate,
    property_values,
    pydantic_summary,
    requirement_targets,
)

NS = "tosca.nodes.nfv.NS"
NS_VIRTUAL_LINK = "tosca.nodes.nfv.NsVirtualLink"
SAP = "tosca.nodes.nfv.Sap"
DEPENDENCY = "dependency"
# Node types of SOL001 NSDs this model does not represent; refused by name
# rather than dropped, so an NSD never means less here than its author wrote.
UNSUPPORTED_NODES = {
    "tosca.nodes.nfv.NFP": "network forwarding paths (VNFFGs) are not supported",
    "tosca.nodes.nfv.NfpPosition": "network forwarding paths (VNFFGs) are not supported",
    "tosca.nodes.nfv.NfpPositionElement": "network forwarding paths (VNFFGs) are not supported",
    "tosca.nodes.nfv.Forwarding": "network forwarding paths (VNFFGs) are not supported",
}
T = TypeVar("T")
_VNF_FIELDS = {
    "descriptor_id": "vnfd_id",
    "provider": "vnf_provider",
    "product_name": "vnf_product_name",
    "software_version": "vnf_software_version",
    "descriptor_version": "vnfd_version",
}


@dataclass
class NsInfo:
    """NS-wide properties and the node type they belong to."""

    node_type: str
    props: dict[str, Any]


def _ns_nodes(tpl: ToscaTemplate) -> list[Any]:
    return [node for node in tpl.nodetemplates if is_a(node, NS)]


def _ns_info(tpl: ToscaTemplate, top: ToscaTemplate, node_type: str) -> tuple[NsInfo, Any]:
    """NS properties: the flavour's NS node, else the top-level one, else the type's defaults."""
    for candidate in (tpl, top):
        for node in getattr(candidate, "nodetemplates", None) or []:
            if node.type == node_type:
                values = ToscaValues(candidate, "")
                return NsInfo(node_type, property_values(node, values)), node
    values = ToscaValues(tpl, "")
    defaults = {
        p.name: values.plain(p.default)
        for p in NodeType(node_type, tpl.topology_template.custom_defs).get_properties_def_objects()
        if p.default is not None
    }
    return NsInfo(node_type, defaults), None


def _flavour_node_type(tpl: ToscaTemplate, mapping_def: dict[str, Any], location: str) -> str:
    # tosca-parser has refused substitution_mappings without a node_type.
    node_type = mapping_def.get("node_type")
    if not isinstance(node_type, str):
        ns_nodes = _ns_nodes(tpl)
        if len(ns_nodes) != 1:
            raise DescriptorError(
                "the topology_template has no substitution_mappings, so it needs exactly one "
                f"node template of an NS type ({NS}); found {len(ns_nodes)}",
                location=location,
            )
        node_type = str(ns_nodes[0].type)
    chain = type_chain(NodeType(node_type, tpl.topology_template.custom_defs))
    if NS not in chain:
        raise DescriptorError(
            f"substitution_mappings node_type {node_type!r} does not derive from {NS}",
            location=location,
        )
    return node_type


def _flavour_id(
    mapping_def: dict[str, Any], ns_node: Any, tpl: ToscaTemplate, info: NsInfo, location: str
) -> str:
    mapped = (mapping_def.get("properties") or {}).get("flavour_id")
    # Only a value written in this file's own NS node counts: a default, or
    # the top-level file's node, says nothing about this flavour.
    written = None
    if ns_node is not None and ns_node in tpl.nodetemplates:
        value = (ns_node.entity_tpl.get("properties") or {}).get("flavour_id")
        written = value if isinstance(value, str) else None
    flavour_id = mapped or written or info.props.get("flavour_id")
    if not isinstance(flavour_id, str) or not flavour_id:
        raise DescriptorError(
            "flavour_id is given neither in substitution_mappings properties nor by the NS node",
            location=location,
        )
    if written not in (None, flavour_id):
        raise DescriptorError(
            f"flavour_id {written!r} of NS node {ns_node.name!r} differs from the "
            f"substitution_mappings flavour_id {flavour_id!r}",
            location=location,
        )
    return flavour_id


def _requirement_assignments(node: Any) -> list[tuple[str, str]]:
    """(requirement, target node) pairs as written in a node template."""
    out: list[tuple[str, str]] = []
    for req in node.entity_tpl.get("requirements") or []:
        if not isinstance(req, dict):
            continue
        for name in req:
            out.extend((str(name), target) for target in requirement_targets(node, str(name)))
    return out


def _vnf_profile(node: Any, values: ToscaValues, link_ids: set[str], location: str) -> VnfProfile:
    props = property_values(node, values)
    where = f"VNF profile {node.name!r}"
    missing = [key for key in (*_VNF_FIELDS, "flavour_id") if props.get(key) in (None, "")]
    if missing:
        raise DescriptorError(
            f"{where} (type {node.type}) gives no value for {', '.join(missing)}",
            location=location,
        )
    profile = props.get("vnf_profile")
    if not isinstance(profile, dict):
        raise DescriptorError(
            f"{where}: property vnf_profile is required in an NSD (instances and "
            "instantiation level of the VNF in the NS)",
            location=location,
        )
    links: dict[str, str] = {}
    dependencies: list[str] = []
    for requirement, target in _requirement_assignments(node):
        if requirement == DEPENDENCY:
            dependencies.append(target)
            continue
        if target not in link_ids:
            raise DescriptorError(
                f"{where}: requirement {requirement!r} names {target!r}, which is not an "
                "NsVirtualLink of this flavour",
                location=location,
            )
        if requirement in links:
            raise DescriptorError(
                f"{where}: requirement {requirement!r} is assigned more than once "
                f"({links[requirement]!r} and {target!r})",
                location=location,
            )
        links[requirement] = target
    fields = {model: str(props[key]) for key, model in _VNF_FIELDS.items()}
    return VnfProfile(
        id=node.name,
        node_type=str(node.type),
        flavour_id=str(props["flavour_id"]),
        instantiation_level=profile.get("instantiation_level"),
        min_number_of_instances=profile.get("min_number_of_instances"),
        max_number_of_instances=profile.get("max_number_of_instances"),
        virtual_links=links,
        dependencies=dependencies,
        **fields,
    )


def _ns_virtual_link(node: Any, values: ToscaValues) -> NsVirtualLink:
    props = property_values(node, values)
    connectivity = props.get("connectivity_type") or {}
    profile = props.get("vl_profile") or {}
    qos = profile.get("qos")
    return NsVirtualLink(
        id=node.name,
        description=props.get("description"),
        layer_protocols=list(connectivity.get("layer_protocols") or []),
        flow_pattern=connectivity.get("flow_pattern"),
        max_bitrate=link_bitrate(profile.get("max_bitrate_requirements")),
        min_bitrate=link_bitrate(profile.get("min_bitrate_requirements")),
        qos=None
        if qos is None
        else NsQos(
            latency=values.seconds(qos["latency"], f"NsVirtualLink {node.name!r} qos.latency"),
            packet_delay_variation=values.seconds(
                qos["packet_delay_variation"],
                f"NsVirtualLink {node.name!r} qos.packet_delay_variation",
            ),
            packet_loss_ratio=qos.get("packet_loss_ratio"),
            priority=qos.get("priority"),
        ),
        service_availability_level=profile.get("service_availability_level"),
        protocol_data=[
            VirtualLinkProtocolData.model_validate(item)
            for item in profile.get("virtual_link_protocol_data") or []
        ],
        test_access=list(props.get("test_access") or []),
    )


def _sap(
    node: Any, values: ToscaValues, link_ids: set[str], exposed: dict[str, str], location: str
) -> Sap:
    props = property_values(node, values)
    targets = requirement_targets(node, "internal_virtual_link")
    if len(targets) != 1 or targets[0] not in link_ids:
        named = targets[0] if targets else None
        raise DescriptorError(
            f"Sap {node.name!r}: requirement internal_virtual_link must name one NsVirtualLink "
            f"of this flavour (got {named!r})",
            location=location,
        )
    return Sap(
        id=node.name,
        description=props.get("description"),
        layer_protocols=list(props.get("layer_protocols") or []),
        protocol=cp_protocols(props.get("protocol")),
        virtual_link=targets[0],
        external_requirement=exposed.get(node.name),
    )


def _mappings(mapping_def: dict[str, Any], location: str) -> dict[str, RequirementMapping]:
    mappings: dict[str, RequirementMapping] = {}
    for outer, target in mapping_entries(mapping_def):
        if not (isinstance(target, list) and len(target) == 2):
            raise DescriptorError(
                f"substitution mapping of NS requirement {outer!r} must be [node, requirement]",
                location=location,
            )
        mappings[str(outer)] = RequirementMapping(node=str(target[0]), requirement=str(target[1]))
    return mappings


def _each(
    nodes: list[Any], type_name: str, kind: str, location: str, build: Callable[[Any], T]
) -> list[T]:
    """`build` applied to every node of a type; a model error names the node."""
    out: list[T] = []
    for node in nodes:
        if not is_a(node, type_name):
            continue
        try:
            out.append(build(node))
        except PydanticValidationError as exc:
            raise DescriptorError(
                f"{kind} {node.name!r}: {pydantic_summary(exc)}", location=location
            ) from None
    return out


def build_flavour(
    doc: Document, tpl: ToscaTemplate, top: ToscaTemplate
) -> tuple[NsDeploymentFlavour, NsInfo]:
    location = doc.rel
    values = ToscaValues(tpl, location)
    mapping_def = tpl.topology_template.tpl.get("substitution_mappings") or {}
    node_type = _flavour_node_type(tpl, mapping_def, location)
    info, ns_node = _ns_info(tpl, top, node_type)
    flavour_id = _flavour_id(mapping_def, ns_node, tpl, info, location)
    mappings = _mappings(mapping_def, location)
    exposed = {
        m.node: outer for outer, m in mappings.items() if m.requirement == "external_virtual_link"
    }

    nodes = list(tpl.nodetemplates)
    for node in nodes:
        chain = type_chain(node.type_definition)
        refused = next((why for name, why in UNSUPPORTED_NODES.items() if name in chain), None)
        if refused is not None:
            raise DescriptorError(f"node {node.name!r} ({node.type}): {refused}", location=location)
        if NS in chain and node.type != node_type:
            raise DescriptorError(
                f"node {node.name!r} ({node.type}) is a nested NS; nested NSs are not supported",
                location=location,
            )
    links = _each(
        nodes, NS_VIRTUAL_LINK, "NsVirtualLink", location, lambda n: _ns_virtual_link(n, values)
    )
    link_ids = {link.id for link in links}
    profiles = _each(
        nodes, VNF, "VNF profile", location, lambda n: _vnf_profile(n, values, link_ids, location)
    )
    saps = _each(
        nodes, SAP, "Sap", location, lambda n: _sap(n, values, link_ids, exposed, location)
    )
    try:
        flavour = NsDeploymentFlavour(
            flavour_id=flavour_id,
            definitions_file=doc.rel,
            vnf_profiles=profiles,
            virtual_links=links,
            saps=saps,
            requirement_mappings=mappings,
            **level_fields(tpl, values, location),
        )
    except PydanticValidationError as exc:
        raise DescriptorError(pydantic_summary(exc), location=location) from None
    check_flavour(flavour, location)
    return flavour, info
