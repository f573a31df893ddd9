"""SOL001 VNFD parsing: package YAML -> tosca-parser validation -> `descriptors.vnfd` models.

`parse_vnfd(package_root, entry_definitions)` reads an extracted package (or
a package source tree). It never touches the network and never lets
tosca-parser resolve an import on its own:

1. The entry file and every file it imports are read and their imports
   resolved offline (`descriptors.tosca_imports`): the ETSI SOL001 type
   files map to `descriptors/sol001`, relative paths must name a file inside
   the package, anything else is refused.
2. A private working copy of those files is written with every import
   rewritten to an absolute local path, and tosca-parser parses that copy,
   with the fixes of `descriptors.tosca_parser_fixes` installed (requirement
   occurrence counting, data type property refinement, a file loader that
   reads local files only and serves the SOL001 copies from memory).
3. Each deployment flavour's service template (the entry itself in the
   single-file layout, or each imported file carrying substitution_mappings
   in the SOL001 multi-flavour layout) is parsed as a main template, so
   tosca-parser validates every flavour's topology fully, and the models are
   built from the parsed templates (`descriptors.vnfd_build`).
"""

from __future__ import annotations

import logging
import posixpath
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from toscaparser.common.exception import ExceptionCollector
from toscaparser.tosca_template import ToscaTemplate

from descriptors import sol001
from descriptors.errors import DescriptorError
from descriptors.tosca_imports import SOL001_COPIES, Document, WorkingCopy, read_documents
from descriptors.tosca_parser_fixes import LOAD_ROOTS, ForbiddenLoad, Sol001ToscaTemplate
from descriptors.vnfd import Vnfd
from descriptors.vnfd_build.top_level import build_vnfd

__all__ = ["parse_vnfd"]

log = logging.getLogger(__name__)

# tosca-parser reports through a process-wide ExceptionCollector; two parses
# at once would mix (and clear) each other's errors.
PARSE_LOCK = threading.Lock()

MAX_REPORTED_PROBLEMS = 20

BuiltT = TypeVar("BuiltT")


# --------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------


def parse_vnfd(package_root: Path, entry_definitions: str) -> Vnfd:
    """Parse and validate the VNFD of an extracted package; raise DescriptorError if invalid.

    `entry_definitions` is the package-relative path of the top-level service
    template (TOSCA.meta's Entry-Definitions), e.g. "Definitions/nat_vnfd_top.yaml".
    """
    root, entry_rel = entry_path(package_root, entry_definitions, "package")
    documents = read_documents(root, entry_rel)
    flavour_docs = flavour_documents(documents, entry_rel)
    if not flavour_docs:
        raise DescriptorError(
            "no deployment flavour: neither the entry definitions nor any file it imports "
            "has a topology_template with substitution_mappings",
            location=entry_rel,
        )
    return parse_flavours(documents, entry_rel, flavour_docs, "vnfd-", build_vnfd)


# --------------------------------------------------------------------------
# The steps every descriptor (VNFD, NSD) goes through
# --------------------------------------------------------------------------


def entry_path(root_dir: Path, entry_definitions: str, container: str) -> tuple[Path, str]:
    """The resolved root and the normalised entry definitions path, which must lie inside.

    `container` names the root in the error ("package", "archive").
    """
    root = Path(root_dir).resolve()
    entry_rel = posixpath.normpath(entry_definitions.replace("\\", "/"))
    if entry_rel.startswith(("../", "/")) or entry_rel == "..":
        raise DescriptorError(
            f"entry definitions must be inside the {container}", location=entry_rel
        )
    entry_file = root / entry_rel
    if not entry_file.is_file() or not entry_file.resolve().is_relative_to(root):
        raise DescriptorError("entry definitions file not found", location=entry_rel)
    return root, entry_rel


def flavour_documents(documents: dict[str, Document], entry_rel: str) -> list[Document]:
    """The entry if it is a flavour itself, else every imported file that is one."""
    entry = documents[entry_rel]
    if entry.is_flavour:
        return [entry]
    return [doc for doc in documents.values() if doc.is_flavour]


def parse_flavours(
    documents: dict[str, Document],
    entry_rel: str,
    flavour_docs: list[Document],
    prefix: str,
    build: Callable[[str, ToscaTemplate, list[tuple[Document, ToscaTemplate]]], BuiltT],
) -> BuiltT:
    """Parse the entry and each flavour in a private working copy, then `build` the model.

    With no flavour document, or when the entry is the flavour, the entry
    alone stands for the flavour. `build` runs while the working copy exists.
    """
    entry = documents[entry_rel]
    with PARSE_LOCK, tempfile.TemporaryDirectory(prefix=prefix) as tmp:
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
            return build(entry_rel, top, parsed)
        finally:
            LOAD_ROOTS.reset(token)


# --------------------------------------------------------------------------
# Running tosca-parser
# --------------------------------------------------------------------------


def parse_template(path: Path, copy: WorkingCopy, location: str) -> ToscaTemplate:
    """Run tosca-parser on one working-copy file; its errors become one DescriptorError."""
    try:
        return Sol001ToscaTemplate(path=str(path), a_file=True)
    except ForbiddenLoad as exc:
        # Not a package problem to list among others: our own guarantee broke.
        log.error("refused a tosca-parser file access: %s", exc)
        raise DescriptorError(_summarise([str(exc)], copy), location=location) from None
    except Exception as exc:
        problems = [str(e) for e in ExceptionCollector.getExceptions()] or [
            f"{type(exc).__name__}: {exc}"
        ]
        raise DescriptorError(_summarise(problems, copy), location=location) from None
    finally:
        ExceptionCollector.clear()
        ExceptionCollector.stop()


def _summarise(problems: list[str], copy: WorkingCopy) -> str:
    """One line per distinct problem, with working-copy paths made package-relative."""
    workdir = copy.dir
    prefixes = [
        str(copy.sol001_dir) + "/",
        str(workdir / "package") + "/",
        str(workdir / "flavours") + "/",
        str(workdir),
    ]
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
