"""What onboarding learns from an NSD upload: verified content, typed NSD, API attributes.

An upload is either an NSD archive (SOL007: a zip in the CSAR structure of
SOL004, `TOSCA-Metadata/TOSCA.meta` or one YAML file at the root, with a
manifest whose metadata are the `nsd_*` keys), checked by
`descriptors.csar.open_csar` with every hostile-archive protection the VNF
packages get, or a single YAML file (SOL005 clause 5.4.4.3.3: "text/plain"
for a YAML file), which can then import only the ETSI SOL001 type files.
`inspect_nsd` writes only into the directory it is given.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from descriptors.csar import TOSCA_META, Csar, CsarLimits, open_csar
from descriptors.errors import DescriptorError
from descriptors.nsd import Nsd
from descriptors.nsd_parse import parse_nsd
from nfvo.content_store import StagedUpload

# The import walk is the same for any service template, VNFD or NSD.
from nfvo.vnfpkgm.onboarding import vnfd_files as service_template_files

UploadFormat = Literal["zip", "yaml"]
# Name of a single-file NSD in the content store (an upload has no file name).
SINGLE_FILE = "nsd.yaml"


@dataclass(frozen=True)
class OnboardedNsd:
    """A verified NSD, ready to be committed to the store and the database."""

    root: Path
    nsd: Nsd
    info: dict[str, Any]
    layout: dict[str, Any] = field(default_factory=dict)


def _check_manifest_kind(csar: Csar) -> None:
    """Before anything is parsed: a VNF (or PNF) package is not an NSD archive."""
    if csar.manifest is not None and csar.manifest.package_kind != "NS":
        raise DescriptorError(
            f"the manifest describes a {csar.manifest.package_kind} package, not an NSD "
            "archive (SOL007 manifest metadata: nsd_designer, nsd_invariant_id, nsd_name, "
            "nsd_release_date_time, nsd_file_structure_version)",
            location=csar.manifest_path,
        )


def _check_manifest_matches(csar: Csar, nsd: Nsd) -> None:
    if csar.manifest is None:
        return
    where = csar.manifest_path
    meta = csar.manifest.metadata
    pairs = (
        ("nsd_designer", nsd.designer, "designer"),
        ("nsd_invariant_id", nsd.invariant_id, "invariant_id"),
        ("nsd_name", nsd.name, "name"),
    )
    for key, expected, nsd_name in pairs:
        given = meta.get(key)
        if given is not None and given != expected:
            raise DescriptorError(
                f"manifest {key} {given!r} does not match the NSD's {nsd_name} {expected!r}",
                location=where,
            )


def _layout_and_artifacts(
    csar: Csar, nsd_paths: list[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    entries = {e.source: e for e in csar.manifest.entries} if csar.manifest else {}
    signatures = sorted(
        {
            path
            for e in entries.values()
            for path in (e.signature, e.certificate)
            if path is not None
        }
        | ({csar.certificate_path} if csar.certificate_path else set())
    )
    not_artifacts = {*nsd_paths, TOSCA_META, csar.manifest_path, *signatures}
    artifacts: list[dict[str, Any]] = []
    for info in sorted(csar.files, key=lambda f: f.path):
        if info.path in not_artifacts:
            continue
        entry = entries.get(info.path)
        if entry is not None and entry.algorithm and entry.hash:
            checksum = {"algorithm": entry.algorithm, "hash": entry.hash}
        else:
            checksum = {"algorithm": "SHA-256", "hash": info.sha256}
        artifacts.append({"artifactPath": info.path, "checksum": checksum})
    layout = {
        "format": "zip",
        "entryDefinitions": csar.entry_definitions,
        "nsdFiles": nsd_paths,
        "toscaMeta": [TOSCA_META] if any(f.path == TOSCA_META for f in csar.files) else [],
        "manifest": csar.manifest_path,
        "signatures": signatures,
        "artifacts": [a["artifactPath"] for a in artifacts],
    }
    return layout, artifacts


def _inspect_archive(
    staged: StagedUpload, dest: Path, limits: CsarLimits, trust_anchor: Path | None
) -> OnboardedNsd:
    csar = open_csar(staged.path, dest, limits=limits, trust_anchor=trust_anchor)
    _check_manifest_kind(csar)
    nsd = parse_nsd(csar.root, csar.entry_definitions)
    _check_manifest_matches(csar, nsd)
    layout, artifacts = _layout_and_artifacts(
        csar, service_template_files(csar.root, csar.entry_definitions)
    )
    info: dict[str, Any] = {}
    if csar.security_option:
        info["archiveSecurityOption"] = csar.security_option
    if csar.certificate_path:
        info["signingCertificate"] = csar.certificate_path
    if artifacts:
        info["artifacts"] = artifacts
    return OnboardedNsd(root=csar.root, nsd=nsd, info=info, layout=layout)


def _inspect_yaml(staged: StagedUpload, dest: Path) -> OnboardedNsd:
    dest.mkdir(parents=True)
    shutil.copyfile(staged.path, dest / SINGLE_FILE)
    nsd = parse_nsd(dest, SINGLE_FILE)
    layout = {
        "format": "yaml",
        "entryDefinitions": SINGLE_FILE,
        "nsdFiles": [SINGLE_FILE],
        "toscaMeta": [],
        "manifest": None,
        "signatures": [],
        "artifacts": [],
    }
    return OnboardedNsd(root=dest, nsd=nsd, info={}, layout=layout)


def inspect_nsd(
    staged: StagedUpload,
    dest: Path,
    upload_format: UploadFormat,
    *,
    limits: CsarLimits | None = None,
    trust_anchor: Path | None = None,
) -> OnboardedNsd:
    """Check an upload and parse its NSD, extracting (or copying) it into `dest`."""
    if upload_format == "yaml":
        return _inspect_yaml(staged, dest)
    return _inspect_archive(staged, dest, limits or CsarLimits(), trust_anchor)
