"""Building NSD uploads from an NSD source tree: an NSD archive, or one self-contained YAML file.

An NSD archive (SOL007) has the CSAR structure of SOL004, so
`descriptors.build.build_csar` builds it; `build_nsd_archive` only makes sure
the tree is an NSD archive (a manifest with the SOL007 `nsd_*` metadata)
before it does.

SOL005 also accepts an NSD as a single YAML file. Such a file can import
nothing but the ETSI SOL001 type files, so `single_file_nsd` folds every
type definition the entry imports from the tree (the NS type, the VNF types,
the project's extension types) into the entry itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from descriptors.build import build_csar
from descriptors.csar import detect_layout
from descriptors.errors import DescriptorError
from descriptors.manifest import parse_manifest
from descriptors.tosca_imports import TYPE_SECTIONS, read_documents

ETSI_URL = "https://forge.etsi.org/rep/nfv/SOL001/raw/v4.4.1/{name}"


def build_nsd_archive(
    source_dir: Path, out_path: Path, *, sign_with: tuple[Path, Path] | None = None
) -> Path:
    """Build the NSD archive zip of `source_dir` at `out_path` (see `build_csar`)."""
    files = {str(p.relative_to(source_dir)) for p in source_dir.rglob("*") if p.is_file()}
    layout = detect_layout(source_dir, files, check_certificate=sign_with is None)
    if layout.manifest_path is None:
        raise DescriptorError("an NSD archive needs a manifest with nsd_* metadata")
    manifest = parse_manifest(
        (source_dir / layout.manifest_path).read_bytes(), source=layout.manifest_path
    )
    if manifest.package_kind != "NS":
        raise DescriptorError(
            f"the manifest describes a {manifest.package_kind} package, not an NSD archive",
            location=layout.manifest_path,
        )
    return build_csar(source_dir, out_path, sign_with=sign_with)


def single_file_nsd(source_dir: Path, entry: str) -> str:
    """The NSD of a source tree as one YAML document importing only ETSI SOL001 type files."""
    documents = read_documents(source_dir.resolve(), entry)
    merged: dict[str, Any] = dict(documents[entry].data)
    etsi_imports: list[str] = []
    for doc in documents.values():
        if doc.rel != entry and "topology_template" in doc.data:
            raise DescriptorError(
                "a multi-flavour NSD (flavours in imported files) cannot be one file",
                location=doc.rel,
            )
        for target, target_rel in doc.resolved_imports:
            url = ETSI_URL.format(name=target.name)
            if target_rel is None and url not in etsi_imports:
                etsi_imports.append(url)
        if doc.rel == entry:
            continue
        for section in TYPE_SECTIONS:
            for name, definition in (doc.data.get(section) or {}).items():
                known = merged.setdefault(section, {})
                if name in known and known[name] != definition:
                    raise DescriptorError(
                        f"{section} {name!r} is defined differently in two files", location=doc.rel
                    )
                known[name] = definition
    merged["imports"] = etsi_imports
    return yaml.safe_dump(merged, sort_keys=False, allow_unicode=True)
