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

import posixpath
import tempfile
from pathlib import Path

from toscaparser.tosca_template import ToscaTemplate

from descriptors.errors import DescriptorError
from descriptors.nsd import Nsd, NsDeploymentFlavour
from descriptors.nsd_flavour import NsInfo, build_flavour

# The VNFD parser's lock and runner: tosca-parser's ExceptionCollector is
# process-wide, so a VNFD and an NSD parsed at once would mix their errors.
from descriptors.tosca import PARSE_LOCK, parse_template
from descriptors.tosca_imports import SOL001_COPIES, Document, WorkingCopy, read_documents
from descriptors.tosca_parser_fixes import LOAD_ROOTS

__all__ = ["parse_nsd"]

_NS_FIELDS = ("descriptor_id", "designer", "version", "name", "invariant_id")


def parse_nsd(archive_root: Path, entry_definitions: str) -> Nsd:
    """Parse and validate the NSD of an extracted archive; raise DescriptorError if invalid.

    `entry_definitions` is the archive-relative path of the top-level service
    template (TOSCA.meta's Entry-Definitions), e.g. "Definitions/edge_gateway_nsd.yaml".
    """
    root = Path(archive_root).resolve()
    entry_rel = posixpath.normpath(entry_definitions.replace("\\", "/"))
    if entry_rel.startswith(("../", "/")) or entry_rel == "..":
        raise DescriptorError("entry definitions must be inside the archive", location=entry_rel)
    entry_path = root / entry_rel
    if not entry_path.is_file() or not entry_path.resolve().is_relative_to(root):
        raise DescriptorError("entry definitions file not found", location=entry_rel)

    documents = read_documents(root, entry_rel)
    entry = documents[entry_rel]
    flavour_docs = [entry] if entry.is_flavour else [d for d in documents.values() if d.is_flavour]
    entry_topology = isinstance(entry.data.get("topology_template"), dict)
    if not flavour_docs and not entry_topology:
        raise DescriptorError(
            "no NS deployment flavour: neither the entry definitions nor any file it imports "
            "has a topology_template",
            location=entry_rel,
        )

    with PARSE_LOCK, tempfile.TemporaryDirectory(prefix="nsd-") as tmp:
        workdir = Path(tmp)
        copy = WorkingCopy(documents, workdir, SOL001_COPIES.directory())
        token = LOAD_ROOTS.set((workdir.resolve(), copy.sol001_dir.resolve()))
        try:
            top = parse_template(copy.path(entry_rel), copy, entry_rel)
            parsed: list[tuple[Document, ToscaTemplate]] = []
            if entry.is_flavour or not flavour_docs:
                parsed.append((entry, top))
            else:
                flavour_rels = {doc.rel for doc in flavour_docs}
                for doc in flavour_docs:
                    main = copy.flavour_main(doc, entry, flavour_rels)
                    parsed.append((doc, parse_template(main, copy, doc.rel)))
            return _build_nsd(entry_rel, top, parsed)
        finally:
            LOAD_ROOTS.reset(token)


def _build_nsd(
    entry_rel: str, top: ToscaTemplate, parsed: list[tuple[Document, ToscaTemplate]]
) -> Nsd:
    flavours: list[NsDeploymentFlavour] = []
    infos: list[tuple[str, NsInfo]] = []
    for doc, tpl in parsed:
        flavour, info = build_flavour(doc, tpl, top)
        if any(f.flavour_id == flavour.flavour_id for f in flavours):
            raise DescriptorError(
                f"NS deployment flavour {flavour.flavour_id!r} is defined twice", location=doc.rel
            )
        flavours.append(flavour)
        infos.append((doc.rel, info))

    first_rel, first = infos[0]
    for rel, other in infos[1:]:
        if other.node_type != first.node_type:
            raise DescriptorError(
                f"flavours substitute different NS node types ({first.node_type!r} in "
                f"{first_rel}, {other.node_type!r} here)",
                location=rel,
            )
        for key in _NS_FIELDS:
            if other.props.get(key) != first.props.get(key):
                raise DescriptorError(
                    f"NS property {key!r} differs between flavours "
                    f"({first.props.get(key)!r} in {first_rel}, {other.props.get(key)!r} here)",
                    location=rel,
                )
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
