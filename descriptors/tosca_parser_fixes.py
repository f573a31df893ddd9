"""Every change this project makes to tosca-parser's behaviour, in one place.

Importing this module installs them; each fails loudly at import if a
tosca-parser upgrade moves what it replaces:

- `Sol001ToscaTemplate`: tosca-parser's requirement occurrence check
  miscounts SOL001 templates; see `_check_requirement_occurrences` for the
  cause and the fix.
- `DataType.get_all_properties`: the most derived property definition wins
  (`_data_type_properties`).
- tosca-parser's file loader is replaced (`load_for_tosca_parser`): it reads
  local files only, and serves the SOL001 copies from memory, since
  tosca-parser re-reads every import for each section it validates (some 70
  loads of thousands of lines per parse).
"""

from __future__ import annotations

import inspect
import os
import pickle
from collections import Counter
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import toscaparser.imports
import toscaparser.tosca_template
import toscaparser.utils.yamlparser
import yaml
from toscaparser.common.exception import ExceptionCollector
from toscaparser.common.exception import ValidationError as ToscaValidationError
from toscaparser.elements.datatype import DataType
from toscaparser.tosca_template import ToscaTemplate

from descriptors.tosca_imports import SOL001_COPIES


class Sol001ToscaTemplate(ToscaTemplate):  # type: ignore[misc]
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


for _needed in ("get_all_properties", "get_all_properties_objects"):
    if not callable(getattr(DataType, _needed, None)):
        raise ImportError(f"tosca-parser's DataType no longer has {_needed}()")
DataType.get_all_properties = _data_type_properties


class ForbiddenLoad(Exception):
    """tosca-parser asked to read something other than a local working-copy file."""


# The directories tosca-parser may read from during `parse_vnfd` (the package
# working copy and the SOL001 copies); None outside it, where only the
# local-file rule applies.
LOAD_ROOTS: ContextVar[tuple[Path, ...] | None] = ContextVar("LOAD_ROOTS", default=None)


def load_for_tosca_parser(path: Any, a_file: bool = True) -> Any:
    """tosca-parser's YAML_LOADER, replaced: local files only, SOL001 copies from memory.

    The working copy's absolute imports already keep URLs away from
    tosca-parser; refusing them here as well makes that hold even if its
    import resolution changes. The SOL001 copies are answered from their
    pickled content, each call unpickling a fresh object graph: tosca-parser
    mutates what it loads (`ImportsLoader._update_custom_def` appends to an
    imported file's `imports` list), so a shared object would carry one
    parse's state into the next. Package files are read from disk every time.
    """
    if not a_file or not isinstance(path, str):
        raise ForbiddenLoad(f"tosca-parser tried to fetch {path!r}; only local files are read")
    absolute = os.path.abspath(path)
    if not os.path.isfile(absolute):
        raise ForbiddenLoad(f"tosca-parser tried to read {path!r}, not a regular local file")
    roots = LOAD_ROOTS.get()
    if roots is not None and not any(Path(absolute).resolve().is_relative_to(r) for r in roots):
        raise ForbiddenLoad(f"tosca-parser tried to read {path!r}, outside the working copy")
    snapshot = SOL001_COPIES.snapshot(absolute)
    if snapshot is not None:
        return pickle.loads(snapshot)
    # As tosca-parser's own loader does: strict UTF-8, libyaml safe loader.
    with open(absolute, encoding="utf-8", errors="strict") as stream:
        return yaml.load(stream.read(), Loader=yaml.CSafeLoader)


def _install_loader() -> None:
    """Point every YAML_LOADER tosca-parser reads templates through at `load_for_tosca_parser`.

    Those modules bind `yamlparser.load_yaml` by name at import, so patching
    `yamlparser` itself would change nothing. Fail loudly if an upgrade moves
    the names or changes the call signature: silently keeping tosca-parser's
    loader would re-read the SOL001 files and let it open URLs again.
    (`toscaparser.prereq.csar` has a YAML_LOADER too; CSARs never reach it.)
    """
    original = toscaparser.utils.yamlparser.load_yaml
    if list(inspect.signature(original).parameters) != ["path", "a_file"]:
        raise ImportError("toscaparser.utils.yamlparser.load_yaml is no longer (path, a_file)")
    for module in (toscaparser.imports, toscaparser.tosca_template):
        current = getattr(module, "YAML_LOADER", None)
        ours = getattr(current, "__module__", None) == __name__  # a re-import of this module
        if current is not original and not ours:
            raise ImportError(f"{module.__name__}.YAML_LOADER is no longer tosca-parser's loader")
        module.YAML_LOADER = load_for_tosca_parser


_install_loader()


def mapping_entries(mapping_def: Any) -> list[tuple[str, Any]]:
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
    own_entries = mapping_entries(own_mapping)
    own_type = own_mapping.get("node_type") if isinstance(own_mapping, dict) else None
    nested_mappings: dict[str, list[list[tuple[str, Any]]]] = {}
    for nested in tpl.nested_tosca_tpls_with_topology.values():
        nested_mapping = (nested.get("topology_template") or {}).get("substitution_mappings")
        if isinstance(nested_mapping, dict) and nested_mapping.get("node_type"):
            nested_mappings.setdefault(nested_mapping["node_type"], []).append(
                mapping_entries(nested_mapping)
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
