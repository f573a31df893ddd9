"""Reading a package's service templates and resolving their imports offline.

The entry file and every file it imports are read with
`descriptors.safe_yaml.load_yaml` (alias bombs, bad UTF-8) and their imports
classified: the ETSI SOL001 type files (by URL of any release >= 2.6.1, or by
bare name) map to `descriptors/sol001`; relative paths must name a file inside
the package; anything else is refused.

A private working copy of those files (`WorkingCopy`) is written with every
import rewritten to an absolute local path, and tosca-parser parses that copy.
With absolute paths there is exactly one file tosca-parser can open per import
(`ImportsLoader` otherwise guesses among several relative resolutions), so no
URL ever reaches `urllib`, whatever its import logic does. The SOL001 type
files are static: their working copies are written once per process
(`Sol001Copies`), not per parse.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import pickle
import posixpath
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from descriptors import sol001
from descriptors.errors import DescriptorError
from descriptors.safe_yaml import load_yaml

# Largest package file we accept as a service template.
MAX_DEFINITIONS_BYTES = 4 * 1024 * 1024
MAX_DEFINITIONS_FILES = 64

TYPE_SECTIONS = (
    "node_types",
    "data_types",
    "capability_types",
    "relationship_types",
    "interface_types",
    "policy_types",
    "group_types",
    "artifact_types",
)


@dataclass
class Document:
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


def read_documents(root: Path, entry_rel: str) -> dict[str, Document]:
    """Read the entry file and, transitively, every package file it imports."""
    documents: dict[str, Document] = {}
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
        doc = Document(rel=rel, data=data)
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


class WorkingCopy:
    """Package service templates rewritten with absolute imports, in a private directory.

    SOL001 type file imports point into `sol001_dir`, the process-wide copies
    made by `Sol001Copies`.
    """

    def __init__(
        self, documents: Mapping[str, Document], directory: Path, sol001_dir: Path
    ) -> None:
        self.dir = directory
        self.sol001_dir = sol001_dir
        self.documents = documents
        for doc in documents.values():
            self._write(self.path(doc.rel), doc.data, self.imports_of(doc))

    def path(self, rel: str) -> Path:
        return self.dir / "package" / PurePosixPath(rel)

    def imports_of(self, doc: Document, *, exclude: set[str] | None = None) -> list[str]:
        out: list[str] = []
        for target, target_rel in doc.resolved_imports:
            if target_rel is not None and exclude and target_rel in exclude:
                continue
            if target_rel is not None:
                absolute = str(self.path(target_rel))
            else:
                absolute = str(self.sol001_dir / target.name)
            if absolute not in out:
                out.append(absolute)
        return out

    def flavour_main(self, flavour: Document, entry: Document, flavours: set[str]) -> Path:
        """The flavour's template with the top-level file's types imported too.

        In the SOL001 multi-flavour layout the VNF specific node type is often
        declared (or imported) only by the top-level file, so a flavour file
        parsed on its own would not know it.
        """
        imports = self.imports_of(flavour)
        for extra in self.imports_of(entry, exclude=flavours | {flavour.rel}):
            if extra not in imports:
                imports.append(extra)
        inline_types = {k: v for k, v in entry.data.items() if k in TYPE_SECTIONS}
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
        # libyaml's emitter: the pure-Python one took a third of a parse. Same
        # safe representer, so the same data reads back.
        text = yaml.dump(document, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True)
        path.write_text(text, "utf-8")


def _remove_tree(path: Path, owner_pid: int) -> None:
    # A forked child inherits the atexit hook; only the creator may remove.
    if os.getpid() == owner_pid:
        shutil.rmtree(path, ignore_errors=True)


class Sol001Copies:
    """Working copies of our SOL001 type files with absolute imports, made once per process.

    tosca-parser merges the import lists of all imported files into one and
    resolves each entry against whichever file it is processing, so a
    relative import anywhere (even ETSI's own vnfd -> common types import)
    can be looked up in the wrong directory. Hence no relative import is left
    in anything tosca-parser reads, the SOL001 files included.

    Rewriting those thousands of lines for every parse was half a parse's
    time, and they do not change: the copies are written in a private
    directory made on first use and removed at exit, under a name derived
    from the sources' content hash, so edited sources (a long-running
    development process) get fresh copies rather than stale ones. Their
    parsed content is kept (pickled) for `load_for_tosca_parser`.

    Not thread-safe: used under `descriptors.tosca`'s parse lock only.
    """

    def __init__(self) -> None:
        self._base: Path | None = None
        self._owner_pid = 0
        self._dir: Path | None = None
        self._snapshots: dict[str, bytes] = {}

    def directory(self) -> Path:
        """The copies' directory, (re)written first if missing or made from other sources."""
        digest = hashlib.sha256()
        for name, source in sorted(sol001.ETSI_TYPE_FILES.items()):
            content = source.read_bytes()
            digest.update(f"{name}\0{len(content)}\0".encode())
            digest.update(content)
        if self._owner_pid != os.getpid():
            # Never share a directory with the parent process this one was forked from.
            self._base = self._dir = None
            self._snapshots = {}
        if self._base is None or not self._base.is_dir():
            self._base = Path(tempfile.mkdtemp(prefix="vnfd-sol001-"))
            self._owner_pid = os.getpid()
            atexit.register(_remove_tree, self._base, self._owner_pid)
        target = self._base / digest.hexdigest()[:32]
        current = self._dir == target and all(
            (target / name).is_file() for name in sol001.ETSI_TYPE_FILES
        )
        if not current:
            self._write(self._base, target)
        return target

    def snapshot(self, path: str) -> bytes | None:
        """The pickled parsed content of a copy, by absolute path; None for any other file."""
        return self._snapshots.get(path)

    def _write(self, base: Path, target: Path) -> None:
        self._dir = None
        self._snapshots = {}
        # Older sources' copies, or a partial write a failure left behind.
        for stale in base.iterdir():
            shutil.rmtree(stale, ignore_errors=True)
        target.mkdir(parents=True)
        snapshots: dict[str, bytes] = {}
        for name, source in sol001.ETSI_TYPE_FILES.items():
            data = yaml.safe_load(source.read_text("utf-8"))
            imports: list[str] = []
            for reference in data.get("imports") or []:
                local = sol001.local_type_file(reference)
                if local is None:
                    raise RuntimeError(f"{name} imports {reference!r}, not a SOL001 file")
                imports.append(str(target / local.name))
            path = target / name
            WorkingCopy._write(path, data, imports)
            # What tosca-parser would read from the file, not `data` itself.
            parsed = yaml.load(path.read_text("utf-8"), Loader=yaml.CSafeLoader)
            snapshots[str(path)] = pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL)
        self._snapshots = snapshots
        self._dir = target


SOL001_COPIES = Sol001Copies()
