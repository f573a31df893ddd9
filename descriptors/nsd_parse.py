"""SOL001 NSD parsing: archive YAML -> tosca-parser validation -> `descriptors.nsd` models.

`parse_nsd(archive_root, entry_definitions)` reads an extracted NSD archive
(SOL007), an NSD source tree, or a directory holding a single-file NSD. It
goes exactly the way `descriptors.tosca.parse_vnfd` does, with the same
machinery, so it has the same guarantees: imports are resolved offline (the
ETSI SOL001 type files, this project's NSD types included, map to
`descriptors/sol001`; relative imports must name archive files), tosca-parser
reads only a private working copy with absolute imports and runs with the
fixes of `descriptors.tosca_parser_fixes`, and every deployment flavour's
service template is parsed as a main template, so each topology is fully
validated before the models are built (`descriptors.nsd_flavour`).

A flavour is a service template whose topology_template has
substitution_mappings (the entry itself, or each file it imports, as in the
SOL001 multi-flavour layout). An entry whose topology_template has no
substitution_mappings but an NS node template is taken as a one-flavour NSD
of that node's type.
"""

from __future__ import annotations

from pathlib import Path

from toscaparser.tosca_template import ToscaTemplate

from descriptors.errors import DescriptorError
from descriptors.flavour_merge import build_flavours
from descriptors.nsd import Nsd
from descriptors.nsd_flavour import build_flavour

# The VNFD parser's steps, lock included: tosca-parser's ExceptionCollector is
# process-wide, so a VNFD and an NSD parsed at once would mix their errors.
from descriptors.tosca import entry_path, flavour_documents, parse_flavours
from descriptors.tosca_imports import Document, read_documents

__all__ = ["parse_nsd"]

_NS_FIELDS = ("descriptor_id", "designer", "version", "name", "invariant_id")


def parse_nsd(archive_root: Path, entry_definitions: str) -> Nsd:
    """Parse and validate the NSD of an extracted archive; raise DescriptorError if invalid.

    `entry_definitions` is the archive-relative path of the top-level service
    template (TOSCA.meta's Entry-Definitions), e.g. "Definitions/edge_gateway_nsd.yaml".
    """
    root, entry_rel = entry_path(archive_root, entry_definitions, "archive")
    documents = read_documents(root, entry_rel)
    flavour_docs = flavour_documents(documents, entry_rel)
    entry_topology = isinstance(documents[entry_rel].data.get("topology_template"), dict)
    if not flavour_docs and not entry_topology:
        raise DescriptorError(
            "no NS deployment flavour: neither the entry definitions nor any file it imports "
            "has a topology_template",
            location=entry_rel,
        )
    return parse_flavours(documents, entry_rel, flavour_docs, "nsd-", _build_nsd)


def _build_nsd(
    entry_rel: str, top: ToscaTemplate, parsed: list[tuple[Document, ToscaTemplate]]
) -> Nsd:
    flavours, first_rel, first = build_flavours(parsed, top, build_flavour, _NS_FIELDS, kind="NS")
    props = first.props
    missing = [key for key in _NS_FIELDS if props.get(key) in (None, "")]
    if missing:
        raise DescriptorError(
            f"NS node type {first.node_type!r} gives no value for {', '.join(missing)}",
            location=first_rel,
        )
    strict = props.get("strict_nsd_constituent_onboarding")
    return Nsd(
        nsd_id=str(props["descriptor_id"]),
        designer=str(props["designer"]),
        version=str(props["version"]),
        name=str(props["name"]),
        invariant_id=str(props["invariant_id"]),
        ext_invariant_id=props.get("ext_invariant_id"),
        ns_node_type=first.node_type,
        strict_constituent_onboarding=True if strict is None else bool(strict),
        service_availability_level=props.get("service_availability_level"),
        priority=props.get("priority"),
        entry_definitions=entry_rel,
        flavours=flavours,
    )
