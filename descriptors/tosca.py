"""SOL001 VNFD parsing: package YAML -> tosca-parser validation -> `descriptors.vnfd` models.

`parse_vnfd(package_root, entry_definitions)` reads an extracted package (or
a package source tree). It never touches the network and never lets
tosca-parser resolve an import on its own:

1. The entry file and every file it imports are read with
   `descriptors.safe_yaml.load_yaml` (alias bombs, bad UTF-8) and their
   imports classified: the ETSI SOL001 type files (by URL of any release
   >= 2.6.1, or by bare name) map to `descriptors/sol001`; relative paths must
   name a file inside the package; anything else is refused.
2. A private working copy of those files is written with every import
   rewritten to an absolute local path, and tosca-parser parses that copy.
   Rewriting the input was chosen over hooking tosca-parser's loader
   (`toscaparser.utils.yamlparser.load_yaml` is bound by module-level name
   in three modules, and `ImportsLoader` guesses among several relative
   resolutions): with absolute paths there is exactly one file tosca-parser
   can open per import, so no URL ever reaches `urllib`, whatever its import
   logic does.
3. Each deployment flavour's service template (the entry itself in the
   single-file layout, or each imported file carrying substitution_mappings
   in the SOL001 multi-flavour layout) is parsed as a main template, so
   tosca-parser validates every flavour's topology fully, and the models are
   built from the parsed templates.

tosca-parser's requirement occurrence check miscounts SOL001 templates; see
`_check_requirement_occurrences` for the cause and the fix.
"""

from __future__ import annotations

import logging
import posixpath
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError
from toscaparser.common.exception import ExceptionCollector
from toscaparser.common.exception import ValidationError as ToscaValidationError
from toscaparser.elements.datatype import DataType
from toscaparser.functions import Function
from toscaparser.tosca_template import ToscaTemplate

from descriptors import sol001
from descriptors.errors import DescriptorError
from descriptors.safe_yaml import load_yaml
from descriptors.vnfd import (
    AdditionalArtifact,
    Artifact,
    Checksum,
    CpProtocol,
    DeploymentFlavour,
    InstantiationLevel,
    LcmOperation,
    LinkBitrate,
    MonitoringParameter,
    PlacementRule,
    RequirementMapping,
    ScalingAspect,
    SecurityGroupRule,
    SoftwareImage,
    Vdu,
    VduCp,
    VduProfile,
    VduScalingAspectDeltas,
    VirtualCompute,
    VirtualLink,
    VirtualLinkBitrateScalingAspectDeltas,
    VirtualLinkProtocolData,
    VirtualStorage,
    Vnfd,
    VnfExtCp,
    VnfIndicator,
)

__all__ = ["parse_vnfd"]

log = logging.getLogger(__name__)

# tosca-parser reports through a process-wide ExceptionCollector; two parses
# at once would mix (and clear) each other's errors.
_PARSE_LOCK = threading.Lock()

# Largest package file we accept as a service template.
MAX_DEFINITIONS_BYTES = 4 * 1024 * 1024
MAX_DEFINITIONS_FILES = 64
MAX_REPORTED_PROBLEMS = 20

# Type names the model builder dispatches on.
VNF = "tosca.nodes.nfv.VNF"
VDU_COMPUTE = "tosca.nodes.nfv.Vdu.Compute"
VDU_OS_CONTAINER_DU = "tosca.nodes.nfv.Vdu.OsContainerDeployableUnit"
VDU_CP = "tosca.nodes.nfv.VduCp"
VNF_EXT_CP = "tosca.nodes.nfv.VnfExtCp"
VNF_VIRTUAL_LINK = "tosca.nodes.nfv.VnfVirtualLink"
STORAGE_TYPES = {
    "tosca.nodes.nfv.Vdu.VirtualBlockStorage": "block",
    "tosca.nodes.nfv.Vdu.VirtualObjectStorage": "object",
    "tosca.nodes.nfv.Vdu.VirtualFileStorage": "file",
}
SW_IMAGE_ARTIFACT = "tosca.artifacts.nfv.SwImage"
PROJECT_TRAFFIC_MONITORING = "mano.policies.nfv.VduTrafficMonitoringParameter"
MONITORING_TYPES = {
    "tosca.policies.nfv.VnfMonitoringParameter": ("vnf", True),
    "tosca.policies.nfv.VduMonitoringParameter": ("vdu", True),
    "tosca.policies.nfv.VirtualLinkMonitoringParameter": ("virtual_link", True),
    PROJECT_TRAFFIC_MONITORING: ("vdu", False),
}

_TYPE_SECTIONS = (
    "node_types",
    "data_types",
    "capability_types",
    "relationship_types",
    "interface_types",
    "policy_types",
    "group_types",
    "artifact_types",
)
_INTERFACE_RESERVED = {"type", "inputs", "description", "derived_from", "version", "notifications"}


# --------------------------------------------------------------------------
# Reading the package's service templates and resolving imports offline
# --------------------------------------------------------------------------


@dataclass
class _Document:
    """One service template file of the package, as read by safe_yaml."""

    rel: str
    data: dict[str, Any]
    # Each import entry replaced by the absolute local path it resolves to,
    # plus the package-relative path for imports of package files.
    resolved_imports: list[tuple[Path, str | None]] = field(default_factory=list)

    @property
    def is_flavour(self) -> bool:
        topology = self.data.get("topology_template")
        return isinstance(topology, dict) and bool(topology.get("substitution_mappings"))


def _import_reference(entry: Any, rel: str) -> str:
    """The file reference of one `imports` entry (short or extended TOSCA grammar)."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and len(entry) == 1:
        (value,) = entry.values()
        if isinstance(value, str):
            return value
        entry = value
    if isinstance(entry, dict):
        if entry.get("repository"):
            raise DescriptorError(
                f"unknown import {entry.get('file')!r} from repository "
                f"{entry['repository']!r}: imports from repositories are not resolved",
                location=rel,
            )
        file_ref = entry.get("file")
        if isinstance(file_ref, str):
            return file_ref
    raise DescriptorError(f"malformed import entry {entry!r}", location=rel)


def _resolve_import(root: Path, importer_rel: str, reference: str) -> tuple[Path, str | None]:
    """Map one import to an absolute local path; raise DescriptorError for anything else."""
    local = sol001.local_type_file(reference)
    if local is not None:
        return local, None
    if "://" in reference or reference.startswith("//"):
        raise DescriptorError(
            f"unknown import {reference!r}: only ETSI SOL001 type files (v2.6.1 or later) "
            "may be imported by URL; ship other files in the package",
            location=importer_rel,
        )
    if reference.startswith("/") or "\\" in reference or re.match(r"^[A-Za-z]:", reference):
        raise DescriptorError(
            f"unknown import {reference!r}: imports must be relative paths inside the package",
            location=importer_rel,
        )
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(importer_rel), reference))
    if joined == ".." or joined.startswith("../"):
        raise DescriptorError(
            f"unknown import {reference!r}: it points outside the package", location=importer_rel
        )
    target = root / joined
    if not target.is_file() or not target.resolve().is_relative_to(root):
        raise DescriptorError(
            f"unknown import {reference!r}: no file {joined!r} in the package",
            location=importer_rel,
        )
    return target, joined


def _read_documents(root: Path, entry_rel: str) -> dict[str, _Document]:
    """Read the entry file and, transitively, every package file it imports."""
    documents: dict[str, _Document] = {}
    pending = [entry_rel]
    while pending:
        rel = pending.pop(0)
        if rel in documents:
            continue
        if len(documents) >= MAX_DEFINITIONS_FILES:
            raise DescriptorError(f"more than {MAX_DEFINITIONS_FILES} imported service templates")
        path = root / rel
        if path.stat().st_size > MAX_DEFINITIONS_BYTES:
            raise DescriptorError(
                f"service template larger than {MAX_DEFINITIONS_BYTES} bytes", location=rel
            )
        data = load_yaml(path.read_bytes(), source=rel)
        if not isinstance(data, dict):
            raise DescriptorError("a service template must be a YAML mapping", location=rel)
        doc = _Document(rel=rel, data=data)
        imports = data.get("imports") or []
        if not isinstance(imports, list):
            raise DescriptorError("'imports' must be a list", location=rel)
        for entry in imports:
            target, target_rel = _resolve_import(root, rel, _import_reference(entry, rel))
            doc.resolved_imports.append((target, target_rel))
            if target_rel is not None:
                pending.append(target_rel)
        documents[rel] = doc
    return documents


class _WorkingCopy:
    """Package service templates rewritten with absolute imports, in a private directory."""

    def __init__(self, documents: Mapping[str, _Document], directory: Path) -> None:
        self.dir = directory
        self.documents = documents
        for doc in documents.values():
            self._write(self.path(doc.rel), doc.data, self.imports_of(doc))

    def path(self, rel: str) -> Path:
        return self.dir / "package" / PurePosixPath(rel)

    def imports_of(self, doc: _Document, *, exclude: set[str] | None = None) -> list[str]:
        out: list[str] = []
        for target, target_rel in doc.resolved_imports:
            if target_rel is not None and exclude and target_rel in exclude:
                continue
            absolute = str(self.path(target_rel) if target_rel is not None else self._etsi(target))
            if absolute not in out:
                out.append(absolute)
        return out

    def _etsi(self, source: Path) -> Path:
        """Working copy of one of our SOL001 type files, its own imports made absolute too.

        tosca-parser merges the import lists of all imported files into one
        and resolves each entry against whichever file it is processing, so
        a relative import anywhere (even ETSI's own vnfd -> common types
        import) can be looked up in the wrong directory. Hence no relative
        import is left in anything tosca-parser reads.
        """
        target = self.dir / "sol001" / source.name
        if not target.exists():
            data = yaml.safe_load(source.read_text("utf-8"))
            imports: list[str] = []
            for reference in data.get("imports") or []:
                local = sol001.local_type_file(reference)
                if local is None:
                    raise RuntimeError(f"{source.name} imports {reference!r}, not a SOL001 file")
                imports.append(str(self._etsi(local)))
            self._write(target, data, imports)
        return target

    def flavour_main(self, flavour: _Document, entry: _Document, flavours: set[str]) -> Path:
        """The flavour's template with the top-level file's types imported too.

        In the SOL001 multi-flavour layout the VNF specific node type is often
        declared (or imported) only by the top-level file, so a flavour file
        parsed on its own would not know it.
        """
        imports = self.imports_of(flavour)
        for extra in self.imports_of(entry, exclude=flavours | {flavour.rel}):
            if extra not in imports:
                imports.append(extra)
        inline_types = {k: v for k, v in entry.data.items() if k in _TYPE_SECTIONS}
        if inline_types:
            types_path = self.dir / "entry-types" / "types.yaml"
            types_doc = {"tosca_definitions_version": entry.data.get("tosca_definitions_version")}
            types_doc.update(inline_types)
            self._write(types_path, types_doc, self.imports_of(entry, exclude=flavours))
            imports.append(str(types_path))
        main = self.dir / "flavours" / PurePosixPath(flavour.rel)
        self._write(main, flavour.data, imports)
        return main

    @staticmethod
    def _write(path: Path, data: dict[str, Any], imports: list[str]) -> None:
        document = dict(data)
        if imports:
            document["imports"] = imports
        else:
            document.pop("imports", None)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), "utf-8")


# --------------------------------------------------------------------------
# Running tosca-parser
# --------------------------------------------------------------------------


class _Sol001ToscaTemplate(ToscaTemplate):  # type: ignore[misc]
    """ToscaTemplate whose requirement occurrence check counts substitution mappings."""

    def _validate_relationship_occurences(self) -> None:
        _check_requirement_occurrences(self)


# Fail loudly at import if a tosca-parser upgrade renames the hook we
# override: silently losing the fix would reject valid packages again.
if not callable(getattr(ToscaTemplate, "_validate_relationship_occurences", None)):
    raise ImportError("tosca-parser no longer has ToscaTemplate._validate_relationship_occurences")


def _data_type_properties(self: DataType) -> dict[str, Any]:
    """Property definitions of a data type, the most derived definition of each name winning.

    tosca-parser 2.15 lets the parent's definition win, which breaks the
    refinement SOL001 relies on: a VNF specific type derived from
    VnfAdditionalConfigurableProperties (or VnfInfoModifiableAttributesExtensions)
    is validated against the parent and its own properties are "unknown".
    """
    merged: dict[str, Any] = {}
    for prop in reversed(self.get_all_properties_objects()):
        merged[prop.name] = prop
    return merged


DataType.get_all_properties = _data_type_properties


def _mapping_entries(mapping_def: Any) -> list[tuple[str, Any]]:
    """(outer requirement, [node, requirement]) pairs of a substitution mapping's requirements."""
    reqs = mapping_def.get("requirements") if isinstance(mapping_def, dict) else None
    if isinstance(reqs, dict):
        return list(reqs.items())
    if isinstance(reqs, list):
        return [item for entry in reqs if isinstance(entry, dict) for item in entry.items()]
    return []


def _check_requirement_occurrences(tpl: ToscaTemplate) -> None:
    """Check requirement occurrences of the main topology's nodes, crediting substitution.

    Cause of the tosca-parser 2.13+ false "wrong number of occurrences"
    errors (NodeTemplate._validate_relationship_occurrences): it counts only
    the requirement assignments written in a node template, with a default
    of [1, UNBOUNDED] for definitions that give no occurrences. In TOSCA a
    requirement can also be fulfilled from outside through
    `substitution_mappings` (`virtual_link_inside: [nat_inside_ext, external_virtual_link]`),
    which SOL001 uses for every external CP, and tosca-parser only credits
    that for the node *being substituted*, and only when it is a top-level
    node with no `interfaces` (so the Vnflcm-carrying VNF node loses it).
    Hence: a VnfExtCp's `external_virtual_link`, a VduCp exposed directly as
    an external CP (no `virtual_link` assignment), and the VNF node inside its
    own flavour (requirements such as `virtual_link_internal` defined by the
    VNF specific type) are all reported as missing. Besides, when a derived
    type refines an inherited requirement, both definitions are checked.

    This replacement keeps the check (same default, same lower and upper
    bounds, same message) but counts, for each node template: its own
    assignments; each substitution mapping entry naming [node, requirement];
    and for a node of the substituted type, each requirement the mapping
    exposes (checked once per flavour for a top-level node substituted by
    imported flavour templates). Only the most derived definition of a
    requirement is checked.
    """
    topology = tpl.topology_template
    own_mapping = topology.tpl.get("substitution_mappings") if topology.tpl else None
    own_entries = _mapping_entries(own_mapping)
    own_type = own_mapping.get("node_type") if isinstance(own_mapping, dict) else None
    nested_mappings: dict[str, list[list[tuple[str, Any]]]] = {}
    for nested in tpl.nested_tosca_tpls_with_topology.values():
        nested_mapping = (nested.get("topology_template") or {}).get("substitution_mappings")
        if isinstance(nested_mapping, dict) and nested_mapping.get("node_type"):
            nested_mappings.setdefault(nested_mapping["node_type"], []).append(
                _mapping_entries(nested_mapping)
            )

    for node in tpl.nodetemplates:
        assigned: Counter[str] = Counter()
        for req in node.entity_tpl.get("requirements") or []:
            if isinstance(req, dict):
                assigned.update(req.keys())
        for _outer, target in own_entries:
            if isinstance(target, list) and len(target) == 2 and target[0] == node.name:
                assigned[target[1]] += 1
        variants: list[Counter[str]] = []
        if own_type is not None and node.type == own_type:
            variants.append(assigned + Counter(outer for outer, _ in own_entries))
        for entries in nested_mappings.get(node.type, []):
            variants.append(assigned + Counter(outer for outer, _ in entries))
        if not variants:
            variants.append(assigned)

        checked: set[str] = set()
        for definition in node.type_definition.get_all_requirements() or []:
            for name, value in definition.items():
                if name in checked:
                    continue
                checked.add(name)
                occurrences = value.get("occurrences", [1, "UNBOUNDED"])
                low = occurrences[0]
                high = float("inf") if occurrences[1] == "UNBOUNDED" else occurrences[1]
                if any(not low <= counts[name] <= high for counts in variants):
                    ExceptionCollector.appendException(
                        ToscaValidationError(
                            message=f'Relationship "{name}" in template "{node.name}" has a '
                            "wrong number of occurrences"
                        )
                    )


def _parse_template(path: Path, workdir: Path, location: str) -> ToscaTemplate:
    """Run tosca-parser on one working-copy file; its errors become one DescriptorError."""
    try:
        return _Sol001ToscaTemplate(path=str(path), a_file=True)
    except Exception as exc:
        problems = [str(e) for e in ExceptionCollector.getExceptions()] or [
            f"{type(exc).__name__}: {exc}"
        ]
        raise DescriptorError(_summarise(problems, workdir), location=location) from None
    finally:
        ExceptionCollector.clear()
        ExceptionCollector.stop()


def _summarise(problems: list[str], workdir: Path) -> str:
    """One line per distinct problem, with working-copy paths made package-relative."""
    prefixes = [str(workdir / "package") + "/", str(workdir / "flavours") + "/", str(workdir)]
    lines: list[str] = []
    for problem in problems:
        text = " ".join(problem.split())
        for prefix in prefixes:
            text = text.replace(prefix, "")
        text = text.replace(str(sol001.TYPES_DIR) + "/", "")
        if text not in lines:
            lines.append(text)
    shown = lines[:MAX_REPORTED_PROBLEMS]
    more = len(lines) - len(shown)
    summary = "TOSCA validation failed: " + "; ".join(shown)
    return summary + (f"; and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------


def parse_vnfd(package_root: Path, entry_definitions: str) -> Vnfd:
    """Parse and validate the VNFD of an extracted package; raise DescriptorError if invalid.

    `entry_definitions` is the package-relative path of the top-level service
    template (TOSCA.meta's Entry-Definitions), e.g. "Definitions/nat_vnfd_top.yaml".
    """
    root = Path(package_root).resolve()
    entry_rel = posixpath.normpath(entry_definitions.replace("\\", "/"))
    if entry_rel.startswith(("../", "/")) or entry_rel == "..":
        raise DescriptorError("entry definitions must be inside the package", location=entry_rel)
    entry_path = root / entry_rel
    if not entry_path.is_file() or not entry_path.resolve().is_relative_to(root):
        raise DescriptorError("entry definitions file not found", location=entry_rel)

    documents = _read_documents(root, entry_rel)
    entry = documents[entry_rel]
    if entry.is_flavour:
        flavour_docs = [entry]
    else:
        flavour_docs = [doc for doc in documents.values() if doc.is_flavour]
    if not flavour_docs:
        raise DescriptorError(
            "no deployment flavour: neither the entry definitions nor any file it imports "
            "has a topology_template with substitution_mappings",
            location=entry_rel,
        )

    with _PARSE_LOCK, tempfile.TemporaryDirectory(prefix="vnfd-") as tmp:
        workdir = Path(tmp)
        copy = _WorkingCopy(documents, workdir)
        top = _parse_template(copy.path(entry_rel), workdir, entry_rel)
        parsed: list[tuple[_Document, ToscaTemplate]] = []
        if entry.is_flavour:
            parsed.append((entry, top))
        else:
            flavour_rels = {doc.rel for doc in flavour_docs}
            for doc in flavour_docs:
                main = copy.flavour_main(doc, entry, flavour_rels)
                parsed.append((doc, _parse_template(main, workdir, doc.rel)))
        return _build_vnfd(entry_rel, top, parsed)


# --------------------------------------------------------------------------
# Building the models
# --------------------------------------------------------------------------


def _type_chain(type_definition: Any) -> list[str]:
    """The type's name followed by its ancestors' names."""
    chain: list[str] = []
    current = type_definition
    while current is not None and len(chain) < 64:
        name = getattr(current, "type", None)
        if not isinstance(name, str) or name in chain:
            break
        chain.append(name)
        current = current.parent_type
    return chain


def _is_a(template: Any, type_name: str) -> bool:
    return type_name in _type_chain(template.type_definition)


_SIZE_UNITS: Mapping[str, float] = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
    "tb": 1000**4,
    "tib": 1024**4,
}
_TIME_UNITS: Mapping[str, float] = {
    "d": 86400,
    "h": 3600,
    "m": 60,
    "s": 1,
    "ms": 1e-3,
    "us": 1e-6,
    "ns": 1e-9,
}
_FREQUENCY_UNITS: Mapping[str, float] = {"hz": 1, "khz": 1e3, "mhz": 1e6, "ghz": 1e9}


class _Values:
    """Turns tosca-parser values (functions, scalar-units) into plain data."""

    _SCALAR = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*$")

    def __init__(self, tpl: ToscaTemplate, location: str) -> None:
        self.location = location
        self.inputs: dict[str, Any] = {}
        for inp in getattr(tpl, "inputs", None) or []:
            self.inputs[inp.name] = inp.default

    def plain(self, value: Any) -> Any:
        if isinstance(value, Function):
            return self.plain(value.result())
        if isinstance(value, dict):
            if len(value) == 1 and "get_input" in value:
                return self.plain(self.inputs.get(str(value["get_input"])))
            return {str(k): self.plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.plain(v) for v in value]
        return value

    def _scalar(self, value: Any, units: Mapping[str, float], what: str) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        match = self._SCALAR.match(str(value))
        if not match or match[2].lower() not in units:
            raise DescriptorError(
                f"{what}: {value!r} is not a valid {what}", location=self.location
            )
        return float(match[1]) * units[match[2].lower()]

    def size(self, value: Any, what: str = "scalar-unit.size") -> int:
        return int(self._scalar(value, _SIZE_UNITS, what))

    def seconds(self, value: Any, what: str = "scalar-unit.time") -> float:
        return self._scalar(value, _TIME_UNITS, what)

    def hertz(self, value: Any, what: str = "scalar-unit.frequency") -> float:
        return self._scalar(value, _FREQUENCY_UNITS, what)


def _props(template: Any, values: _Values) -> dict[str, Any]:
    """Property values of a node template or policy, with type defaults filled in."""
    return {p.name: values.plain(p.value) for p in template.get_properties_objects()}


def _requirement_targets(template: Any, name: str) -> list[str]:
    """Node names assigned to one requirement of a node template."""
    out: list[str] = []
    for req in template.entity_tpl.get("requirements") or []:
        if not isinstance(req, dict) or name not in req:
            continue
        value = req[name]
        node = value.get("node") if isinstance(value, dict) else value
        if isinstance(node, str):
            out.append(node)
    return out


def _first(items: list[str]) -> str | None:
    return items[0] if items else None


def _checksum(value: Any, algorithm: Any = None) -> Checksum | None:
    if isinstance(value, dict):
        return Checksum(algorithm=str(value.get("algorithm")), hash=str(value.get("hash")))
    if isinstance(value, str) and value:
        return Checksum(algorithm=str(algorithm or "sha-256"), hash=value)
    return None


def _artifacts(template: Any, values: _Values) -> Iterator[tuple[str, dict[str, Any]]]:
    raw = template.entity_tpl.get("artifacts") or {}
    if not isinstance(raw, dict):
        raise DescriptorError(
            f"artifacts of {template.name!r} must be a map", location=values.location
        )
    for name, definition in raw.items():
        if isinstance(definition, str):
            yield str(name), {"file": definition}
        elif isinstance(definition, dict):
            yield str(name), values.plain(definition)
        else:
            raise DescriptorError(
                f"artifact {name!r} of {template.name!r} is malformed", location=values.location
            )


def _artifact(owner: str, name: str, definition: dict[str, Any], location: str) -> Artifact:
    file_ref = definition.get("file")
    if not isinstance(file_ref, str) or not file_ref:
        raise DescriptorError(f"artifact {name!r} of {owner!r} has no 'file'", location=location)
    return Artifact(
        name=name,
        type=str(definition.get("type") or ""),
        file=file_ref,
        owner=owner,
        description=definition.get("description"),
        deploy_path=definition.get("deploy_path"),
        repository=definition.get("repository"),
        checksum=_checksum(definition.get("checksum"), definition.get("checksum_algorithm")),
        properties=dict(definition.get("properties") or {}),
    )


def _sw_image(
    owner: str, name: str, definition: dict[str, Any], values: _Values, provider: str
) -> SoftwareImage:
    """A SwImage artifact, checked against the SwImage artifact type (tosca-parser does not)."""
    props = definition.get("properties") or {}
    where = f"software image artifact {name!r} of {owner!r}"
    missing = [
        key
        for key in ("name", "version", "checksum", "container_format", "disk_format", "min_disk")
        if props.get(key) in (None, "")
    ]
    if "size" not in props:
        missing.append("size")
    if missing:
        raise DescriptorError(
            f"{where} lacks required properties: {', '.join(missing)}", location=values.location
        )
    checksum = _checksum(props["checksum"])
    if checksum is None or checksum.algorithm == "None" or checksum.hash == "None":
        raise DescriptorError(
            f"{where}: checksum needs algorithm and hash", location=values.location
        )
    file_ref = definition.get("file")
    if not isinstance(file_ref, str) or not file_ref:
        raise DescriptorError(f"{where} has no 'file'", location=values.location)
    try:
        return SoftwareImage(
            id=owner,
            artifact_name=name,
            name=str(props["name"]),
            provider=str(props.get("provider") or provider),
            version=str(props["version"]),
            checksum=checksum,
            container_format=str(props["container_format"]),
            disk_format=str(props["disk_format"]),
            min_disk=values.size(props["min_disk"], f"{where} min_disk"),
            min_ram=values.size(props.get("min_ram") or 0, f"{where} min_ram"),
            size=values.size(props["size"], f"{where} size"),
            image_path=file_ref,
            operating_system=props.get("operating_system"),
            supported_virtualisation_environments=list(
                props.get("supported_virtualisation_environments") or []
            ),
        )
    except PydanticValidationError as exc:
        raise DescriptorError(
            f"{where}: {_pydantic_summary(exc)}", location=values.location
        ) from None


def _pydantic_summary(exc: PydanticValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )


def _bitrate(value: Any) -> LinkBitrate:
    value = value or {}
    return LinkBitrate(root=int(value.get("root", 0)), leaf=value.get("leaf"))


def _cp_protocols(value: Any) -> list[CpProtocol]:
    return [CpProtocol.model_validate(item) for item in value or []]


def _lcm_operations(vnf_node: Any, values: _Values) -> dict[str, LcmOperation]:
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
class _VnfInfo:
    """VNF-wide properties and the node they came from."""

    node_type: str
    props: dict[str, Any]
    node: Any | None


def _vnf_info(flavour_tpl: ToscaTemplate, top: ToscaTemplate, node_type: str) -> _VnfInfo:
    """VNF properties: the flavour's VNF node, else the top-level one, else type defaults."""
    values = _Values(flavour_tpl, "")
    for tpl in (flavour_tpl, top):
        for node in getattr(tpl, "nodetemplates", None) or []:
            if node.type == node_type:
                return _VnfInfo(node_type, _props(node, _Values(tpl, "")), node)
    from toscaparser.elements.nodetype import NodeType

    custom_defs = flavour_tpl.topology_template.custom_defs
    defaults = {
        p.name: values.plain(p.default)
        for p in NodeType(node_type, custom_defs).get_properties_def_objects()
        if p.default is not None
    }
    return _VnfInfo(node_type, defaults, None)


def _build_flavour(
    doc: _Document, tpl: ToscaTemplate, top: ToscaTemplate
) -> tuple[DeploymentFlavour, _VnfInfo]:
    location = doc.rel
    values = _Values(tpl, location)
    mapping_def = tpl.topology_template.tpl.get("substitution_mappings") or {}
    node_type = mapping_def.get("node_type")
    if not isinstance(node_type, str):
        raise DescriptorError("substitution_mappings has no node_type", location=location)
    vnf = _vnf_info(tpl, top, node_type)
    if VNF not in _type_chain(_node_type_def(tpl, node_type)):
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
    for outer, target in _mapping_entries(mapping_def):
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
            if _is_a(node, VDU_CP):
                props = _props(node, values)
                vdu_cps.append(
                    VduCp(
                        id=node.name,
                        vdu=_first(_requirement_targets(node, "virtual_binding")),
                        virtual_link=_first(_requirement_targets(node, "virtual_link")),
                        layer_protocols=list(props.get("layer_protocols") or []),
                        role=props.get("role"),
                        description=props.get("description"),
                        order=props.get("order"),
                        vnic_type=props.get("vnic_type"),
                        bitrate_requirement=props.get("bitrate_requirement"),
                        protocol=_cp_protocols(props.get("protocol")),
                        exposed_as=exposed.get((node.name, "virtual_link")),
                    )
                )
            elif _is_a(node, VNF_EXT_CP):
                props = _props(node, values)
                ext_cps.append(
                    VnfExtCp(
                        id=node.name,
                        internal_virtual_link=_first(
                            _requirement_targets(node, "internal_virtual_link")
                        ),
                        layer_protocols=list(props.get("layer_protocols") or []),
                        role=props.get("role"),
                        description=props.get("description"),
                        protocol=_cp_protocols(props.get("protocol")),
                        external_requirement=exposed.get((node.name, "external_virtual_link")),
                    )
                )
            elif _is_a(node, VNF_VIRTUAL_LINK):
                links.append(_virtual_link(node, values))
            else:
                kind = next((k for t, k in STORAGE_TYPES.items() if _is_a(node, t)), None)
                if kind is not None:
                    storages.append(_storage(node, kind, values, provider))
        cps_by_vdu: dict[str, list[str]] = {}
        for cp in vdu_cps:
            if cp.vdu is not None:
                cps_by_vdu.setdefault(cp.vdu, []).append(cp.id)
        for node in nodes:
            if _is_a(node, VDU_COMPUTE) or _is_a(node, VDU_OS_CONTAINER_DU):
                vdus.append(_vdu(node, values, provider, cps_by_vdu.get(node.name, [])))
    except PydanticValidationError as exc:
        raise DescriptorError(_pydantic_summary(exc), location=location) from None

    flavour_fields = _policies(tpl, values, vdus, links)
    vnf_artifacts: list[Artifact] = []
    lcm_operations: dict[str, LcmOperation] = {}
    if vnf.node is not None:
        vnf_artifacts = [
            _artifact(vnf.node.name, name, definition, location)
            for name, definition in _artifacts(vnf.node, values)
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
    _check_references(flavour, location)
    return flavour, vnf


def _node_type_def(tpl: ToscaTemplate, node_type: str) -> Any:
    from toscaparser.elements.nodetype import NodeType

    return NodeType(node_type, tpl.topology_template.custom_defs)


def _virtual_link(node: Any, values: _Values) -> VirtualLink:
    props = _props(node, values)
    connectivity = props.get("connectivity_type") or {}
    profile = props.get("vl_profile") or {}
    return VirtualLink(
        id=node.name,
        description=props.get("description"),
        layer_protocols=list(connectivity.get("layer_protocols") or []),
        flow_pattern=connectivity.get("flow_pattern"),
        max_bitrate=_bitrate(profile.get("max_bitrate_requirements")),
        min_bitrate=_bitrate(profile.get("min_bitrate_requirements")),
        qos=profile.get("qos"),
        protocol_data=[
            VirtualLinkProtocolData.model_validate(item)
            for item in profile.get("virtual_link_protocol_data") or []
        ],
        test_access=list(props.get("test_access") or []),
    )


def _storage(node: Any, kind: str, values: _Values, provider: str) -> VirtualStorage:
    props = _props(node, values)
    data = (
        props.get("virtual_block_storage_data")
        or props.get("virtual_object_storage_data")
        or props.get("virtual_file_storage_data")
        or {}
    )
    size = data.get("size_of_storage", data.get("max_size_of_storage"))
    image = None
    for name, definition in _artifacts(node, values):
        if definition.get("type") == SW_IMAGE_ARTIFACT:
            image = _sw_image(node.name, name, definition, values, provider)
    return VirtualStorage(
        id=node.name,
        kind=kind,
        size_of_storage=values.size(size) if size is not None else None,
        rdma_enabled=data.get("rdma_enabled"),
        per_vnfc_instance=bool(props.get("per_vnfc_instance", True)),
        file_system_protocol=data.get("file_system_protocol"),
        sw_image=image,
    )


def _vdu(node: Any, values: _Values, provider: str, cps: list[str]) -> Vdu:
    props = _props(node, values)
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
    for name, definition in _artifacts(node, values):
        if definition.get("type") == SW_IMAGE_ARTIFACT:
            if image is not None:
                raise DescriptorError(
                    f"VDU {node.name!r} has more than one software image", location=values.location
                )
            image = _sw_image(node.name, name, definition, values, provider)
        else:
            others.append(_artifact(node.name, name, definition, values.location))
    profile = props.get("vdu_profile") or {}
    return Vdu(
        id=node.name,
        name=str(props.get("name") or node.name),
        description=props.get("description"),
        node_type=node.type,
        kind="os_container_deployable_unit" if _is_a(node, VDU_OS_CONTAINER_DU) else "compute",
        role=role,
        command=[str(arg) for arg in command],
        environment={str(k): str(v) for k, v in (props.get("environment") or {}).items()},
        vdu_profile=VduProfile.model_validate(profile),
        virtual_compute=compute,
        storages=_requirement_targets(node, "virtual_storage"),
        sw_image=image,
        boot_data=props.get("boot_data"),
        connection_points=cps,
        artifacts=others,
        metadata=metadata,
    )


def _policies(
    tpl: ToscaTemplate, values: _Values, vdus: list[Vdu], links: list[VirtualLink]
) -> dict[str, Any]:
    """Flavour fields that come from policies; VDUs and links get their initial deltas."""
    aspects: list[ScalingAspect] = []
    vdu_deltas: list[VduScalingAspectDeltas] = []
    vl_deltas: list[VirtualLinkBitrateScalingAspectDeltas] = []
    levels: dict[str, dict[str, Any]] = {}
    default_level: str | None = None
    vdu_levels: list[tuple[list[str], dict[str, Any]]] = []
    vl_levels: list[tuple[list[str], dict[str, Any]]] = []
    monitoring: list[MonitoringParameter] = []
    placement: list[PlacementRule] = []
    security: list[SecurityGroupRule] = []
    indicators: list[VnfIndicator] = []
    vdu_initial: dict[str, int] = {}
    vl_initial: dict[str, LinkBitrate] = {}

    for policy in getattr(tpl, "policies", None) or []:
        chain = _type_chain(policy.type_definition)
        props = _props(policy, values)
        targets = [str(t) for t in policy.targets or []]
        if "tosca.policies.nfv.ScalingAspects" in chain:
            for aspect_id, aspect in (props.get("aspects") or {}).items():
                aspects.append(ScalingAspect(id=aspect_id, **aspect))
        elif "tosca.policies.nfv.VduScalingAspectDeltas" in chain:
            vdu_deltas.append(
                VduScalingAspectDeltas(
                    id=policy.name,
                    aspect=props["aspect"],
                    deltas={k: int(v["number_of_instances"]) for k, v in props["deltas"].items()},
                    targets=targets,
                )
            )
        elif "tosca.policies.nfv.VirtualLinkBitrateScalingAspectDeltas" in chain:
            vl_deltas.append(
                VirtualLinkBitrateScalingAspectDeltas(
                    id=policy.name,
                    aspect=props["aspect"],
                    deltas={
                        k: _bitrate(v.get("bitrate_requirements"))
                        for k, v in props["deltas"].items()
                    },
                    targets=targets,
                )
            )
        elif "tosca.policies.nfv.InstantiationLevels" in chain:
            levels.update(props.get("levels") or {})
            default_level = props.get("default_level") or default_level
        elif "tosca.policies.nfv.VduInstantiationLevels" in chain:
            vdu_levels.append((targets, props.get("levels") or {}))
        elif "tosca.policies.nfv.VirtualLinkInstantiationLevels" in chain:
            vl_levels.append((targets, props.get("levels") or {}))
        elif "tosca.policies.nfv.VduInitialDelta" in chain:
            for target in targets:
                vdu_initial[target] = int(props["initial_delta"]["number_of_instances"])
        elif "tosca.policies.nfv.VirtualLinkBitrateInitialDelta" in chain:
            for target in targets:
                vl_initial[target] = _bitrate(props["initial_delta"].get("bitrate_requirements"))
        elif "tosca.policies.nfv.AffinityRule" in chain or (
            "tosca.policies.nfv.AntiAffinityRule" in chain
        ):
            placement.append(
                PlacementRule(
                    id=policy.name,
                    kind="affinity"
                    if "tosca.policies.nfv.AffinityRule" in chain
                    else "anti_affinity",
                    scope=props["scope"],
                    targets=targets,
                )
            )
        elif "tosca.policies.nfv.SecurityGroupRule" in chain:
            security.append(SecurityGroupRule(id=policy.name, targets=targets, **props))
        elif "tosca.policies.nfv.VnfIndicator" in chain:
            indicators.append(VnfIndicator(id=policy.name, **props))
        else:
            kind = next((MONITORING_TYPES[t] for t in chain if t in MONITORING_TYPES), None)
            if kind is not None:
                period = props.get("collection_period")
                monitoring.append(
                    MonitoringParameter(
                        id=policy.name,
                        name=props.get("name"),
                        performance_metric=props["performance_metric"],
                        collection_period=values.seconds(period) if period is not None else None,
                        targets=targets,
                        level=kind[0],
                        standard=kind[1],
                    )
                )

    instantiation_levels: list[InstantiationLevel] = []
    for level_id, level in levels.items():
        vdu_instances = {
            target: int(per_level[level_id]["number_of_instances"])
            for targets, per_levels in vdu_levels
            for per_level in [per_levels]
            if level_id in per_level
            for target in targets
        }
        bitrates = {
            target: _bitrate(per_levels[level_id].get("bitrate_requirements"))
            for targets, per_levels in vl_levels
            if level_id in per_levels
            for target in targets
        }
        instantiation_levels.append(
            InstantiationLevel(
                id=level_id,
                description=str(level.get("description") or ""),
                scale_info={
                    aspect: int(info["scale_level"])
                    for aspect, info in (level.get("scale_info") or {}).items()
                },
                vdu_instances=vdu_instances,
                virtual_link_bitrates=bitrates,
            )
        )
    return {
        "vdus": [
            vdu.model_copy(update={"initial_delta": vdu_initial[vdu.id]})
            if vdu.id in vdu_initial
            else vdu
            for vdu in vdus
        ],
        "virtual_links": [
            link.model_copy(update={"initial_bitrate": vl_initial[link.id]})
            if link.id in vl_initial
            else link
            for link in links
        ],
        "scaling_aspects": aspects,
        "vdu_scaling_aspect_deltas": vdu_deltas,
        "virtual_link_bitrate_scaling_aspect_deltas": vl_deltas,
        "instantiation_levels": instantiation_levels,
        "default_instantiation_level": default_level,
        "monitoring_parameters": monitoring,
        "placement_rules": placement,
        "security_group_rules": security,
        "vnf_indicators": indicators,
    }


def _check_references(flavour: DeploymentFlavour, location: str) -> None:
    """Cross-references TOSCA cannot check: aspects, deltas and levels must name real things."""
    vdu_ids = {vdu.id for vdu in flavour.vdus}
    link_ids = {link.id for link in flavour.virtual_links}
    aspects = {aspect.id: aspect for aspect in flavour.scaling_aspects}
    problems: list[str] = []
    for cp in flavour.vdu_cps:
        if cp.vdu is not None and cp.vdu not in vdu_ids:
            problems.append(f"VduCp {cp.id!r} binds to {cp.vdu!r}, which is not a VDU")
        if cp.virtual_link is not None and cp.virtual_link not in link_ids:
            problems.append(f"VduCp {cp.id!r} links to {cp.virtual_link!r}, not a virtual link")
    for ext in flavour.ext_cps:
        if ext.internal_virtual_link is not None and ext.internal_virtual_link not in link_ids:
            problems.append(
                f"VnfExtCp {ext.id!r} re-exposes {ext.internal_virtual_link!r}, "
                "not an internal virtual link"
            )
    for deltas in flavour.vdu_scaling_aspect_deltas:
        aspect = aspects.get(deltas.aspect)
        if aspect is None:
            problems.append(f"policy {deltas.id!r} names unknown aspect {deltas.aspect!r}")
        elif aspect.step_deltas and not set(aspect.step_deltas) <= set(deltas.deltas):
            missing = sorted(set(aspect.step_deltas) - set(deltas.deltas))
            problems.append(f"policy {deltas.id!r} lacks deltas {missing} of {aspect.id!r}")
    for level in flavour.instantiation_levels:
        for aspect_id, scale_level in level.scale_info.items():
            aspect = aspects.get(aspect_id)
            if aspect is None:
                problems.append(f"level {level.id!r} names unknown aspect {aspect_id!r}")
            elif scale_level > aspect.max_scale_level:
                problems.append(
                    f"level {level.id!r} puts {aspect_id!r} at {scale_level}, "
                    f"above its max_scale_level {aspect.max_scale_level}"
                )
    level_ids = {level.id for level in flavour.instantiation_levels}
    if flavour.default_instantiation_level and flavour.default_instantiation_level not in level_ids:
        problems.append(
            f"default_level {flavour.default_instantiation_level!r} is not an instantiation level"
        )
    for vdu in flavour.vdus:
        profile = vdu.vdu_profile
        if profile.min_number_of_instances > profile.max_number_of_instances:
            problems.append(f"VDU {vdu.id!r}: vdu_profile min exceeds max")
    for param in flavour.monitoring_parameters:
        if param.collection_period is not None and param.collection_period <= 0:
            problems.append(f"monitoring parameter {param.id!r}: collection_period must be > 0")
        unknown = [t for t in param.targets if param.level == "vdu" and t not in vdu_ids]
        if unknown:
            problems.append(f"monitoring parameter {param.id!r} targets non-VDUs {unknown}")
    if problems:
        raise DescriptorError("; ".join(problems), location=location)


_VNF_FIELDS = {
    "descriptor_id": "vnfd_id",
    "provider": "vnf_provider",
    "product_name": "vnf_product_name",
    "software_version": "vnf_software_version",
    "descriptor_version": "vnfd_version",
}


def _build_vnfd(
    entry_rel: str, top: ToscaTemplate, parsed: list[tuple[_Document, ToscaTemplate]]
) -> Vnfd:
    flavours: list[DeploymentFlavour] = []
    vnf_infos: list[tuple[str, _VnfInfo]] = []
    for doc, tpl in parsed:
        flavour, vnf = _build_flavour(doc, tpl, top)
        if any(f.flavour_id == flavour.flavour_id for f in flavours):
            raise DescriptorError(
                f"deployment flavour {flavour.flavour_id!r} is defined twice", location=doc.rel
            )
        flavours.append(flavour)
        vnf_infos.append((doc.rel, vnf))

    first_rel, first = vnf_infos[0]
    for rel, other in vnf_infos[1:]:
        if other.node_type != first.node_type:
            raise DescriptorError(
                f"flavours substitute different node types ({first.node_type!r} in "
                f"{first_rel}, {other.node_type!r} here)",
                location=rel,
            )
        for key in _VNF_FIELDS:
            if other.props.get(key) != first.props.get(key):
                raise DescriptorError(
                    f"VNF property {key!r} differs between flavours "
                    f"({first.props.get(key)!r} in {first_rel}, {other.props.get(key)!r} here)",
                    location=rel,
                )
    props = first.props
    missing = [key for key in (*_VNF_FIELDS, "vnfm_info") if props.get(key) in (None, "", [])]
    if missing:
        raise DescriptorError(
            f"VNF node type {first.node_type!r} gives no value for {', '.join(missing)}",
            location=first_rel,
        )

    images: dict[str, SoftwareImage] = {}
    artifacts: dict[str, AdditionalArtifact] = {}
    for flavour in flavours:
        for vdu in flavour.vdus:
            if vdu.sw_image is not None:
                images.setdefault(vdu.sw_image.id, vdu.sw_image)
        for storage in flavour.storages:
            if storage.sw_image is not None:
                images.setdefault(storage.sw_image.id, storage.sw_image)
        for artifact in [*flavour.artifacts, *(a for v in flavour.vdus for a in v.artifacts)]:
            if "://" in artifact.file:
                continue
            path = posixpath.normpath(
                posixpath.join(posixpath.dirname(flavour.definitions_file), artifact.file)
            )
            artifacts.setdefault(
                path,
                AdditionalArtifact(
                    artifact_path=path,
                    checksum=artifact.checksum,
                    metadata={"type": artifact.type, "name": artifact.name, **artifact.properties},
                ),
            )
    try:
        return Vnfd(
            vnfd_id=str(props["descriptor_id"]),
            vnf_provider=str(props["provider"]),
            vnf_product_name=str(props["product_name"]),
            vnf_software_version=str(props["software_version"]),
            vnfd_version=str(props["descriptor_version"]),
            vnfm_info=[str(v) for v in props["vnfm_info"]],
            product_info_name=props.get("product_info_name"),
            product_info_description=props.get("product_info_description"),
            localization_languages=list(props.get("localization_languages") or []),
            default_localization_language=props.get("default_localization_language"),
            vnf_node_type=first.node_type,
            configurable_properties=dict(props.get("configurable_properties") or {}),
            modifiable_attributes=dict(props.get("modifiable_attributes") or {}),
            lcm_operations_configuration=dict(props.get("lcm_operations_configuration") or {}),
            entry_definitions=entry_rel,
            flavours=flavours,
            software_images=list(images.values()),
            additional_artifacts=list(artifacts.values()),
        )
    except PydanticValidationError as exc:
        raise DescriptorError(_pydantic_summary(exc), location=entry_rel) from None
