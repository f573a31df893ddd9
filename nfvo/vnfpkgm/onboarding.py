"""What onboarding learns from a package: verified content, typed VNFD, API attributes.

`inspect_package` runs every check (CSAR structure and digests, signatures,
SOL001 parsing, manifest/VNFD consistency) and returns everything the
package resource needs; it writes only into the directory it is given.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from descriptors.csar import TOSCA_META, Csar, CsarLimits, open_csar
from descriptors.errors import DescriptorError
from descriptors.safe_yaml import load_yaml
from descriptors.tosca import parse_vnfd
from descriptors.vnfd import Vnfd
from nfvo.content_store import StagedUpload
from store.base import utcnow


@dataclass(frozen=True)
class OnboardedPackage:
    """A verified package, ready to be committed to the store and the database."""

    root: Path
    vnfd_id: str
    provider: str
    product_name: str
    software_version: str
    vnfd_version: str
    info: dict[str, Any]
    vnfd: dict[str, Any]
    layout: dict[str, Any] = field(default_factory=dict)


def vnfd_files(root: Path, entry: str) -> list[str]:
    """The entry definitions and every package file it imports, transitively."""
    found: list[str] = []
    pending = [entry]
    while pending:
        rel = pending.pop()
        if rel in found:
            continue
        found.append(rel)
        doc = load_yaml((root / rel).read_bytes(), source=rel)
        imports = doc.get("imports") if isinstance(doc, dict) else None
        for item in imports or []:
            target = item.get("file") if isinstance(item, dict) else item
            if not isinstance(target, str) or "://" in target:
                continue
            candidate = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
            # Bare ETSI type file names resolve to the project's own copies, not package files.
            if (root / candidate).is_file() and not candidate.startswith("../"):
                pending.append(candidate)
    return sorted(found)


def _check_manifest_matches(csar: Csar, vnfd: Vnfd) -> None:
    if csar.manifest is None:
        return
    meta = csar.manifest.metadata
    where = csar.manifest_path
    pairs = (
        ("vnf_provider_id", vnfd.vnf_provider, "provider"),
        ("vnf_product_name", vnfd.vnf_product_name, "product_name"),
    )
    for key, expected, vnfd_name in pairs:
        given = meta.get(key)
        if given is not None and given != expected:
            raise DescriptorError(
                f"manifest {key} {given!r} does not match the VNFD's {vnfd_name} {expected!r}",
                location=where,
            )


def _software_images(vnfd: Vnfd, files: dict[str, Any], created: str) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = []
    for image in vnfd.software_images:
        entry: dict[str, Any] = {
            "id": image.id,
            "name": image.name,
            "provider": image.provider,
            "version": image.version,
            # SOL004 spells algorithms "SHA-256"; VNFDs often write "sha-256".
            "checksum": {
                "algorithm": image.checksum.algorithm.upper(),
                "hash": image.checksum.hash,
            },
            "isEncrypted": False,
            "containerFormat": image.container_format.upper(),
            "diskFormat": image.disk_format.upper(),
            "createdAt": created,
            "minDisk": image.min_disk,
            "minRam": image.min_ram,
            "size": image.size,
        }
        # An image file in the package is served as an artifact; anything else is a reference.
        if image.image_path in files:
            entry["imagePath"] = image.image_path
        else:
            entry["imageUri"] = image.image_path
        images.append(entry)
    return images


def _classification(path: str, csar: Csar) -> str | None:
    if path == csar.change_log_path:
        return "HISTORY"
    if csar.licenses_path and (
        path == csar.licenses_path or path.startswith(csar.licenses_path.rstrip("/") + "/")
    ):
        return "LICENSE"
    tests = csar.tosca_meta.get("ETSI-Entry-Tests")
    if tests and path.startswith(tests.rstrip("/") + "/"):
        return "TESTING"
    return None


def _layout_and_artifacts(
    csar: Csar, vnfd_paths: list[str], image_paths: set[str]
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
    package_files = {f.path: f for f in csar.files}
    not_artifacts = {*vnfd_paths, TOSCA_META, csar.manifest_path, *signatures}
    non_mano_members = {p for members in csar.non_mano_artifact_sets.values() for p in members}
    artifacts: list[dict[str, Any]] = []
    mano: list[str] = []
    for path, info in sorted(package_files.items()):
        if path in not_artifacts:
            continue
        entry = entries.get(path)
        if entry is not None and entry.algorithm and entry.hash:
            checksum = {"algorithm": entry.algorithm, "hash": entry.hash}
        else:
            checksum = {"algorithm": "SHA-256", "hash": info.sha256}
        if path not in non_mano_members:
            mano.append(path)
        if path in image_paths:
            continue
        artifact: dict[str, Any] = {
            "artifactPath": path,
            "checksum": checksum,
            "isEncrypted": False,
        }
        if entry is not None and entry.non_mano_artifact_set:
            artifact["nonManoArtifactSetId"] = entry.non_mano_artifact_set
        classification = _classification(path, csar)
        if classification:
            artifact["artifactClassification"] = classification
        artifacts.append(artifact)
    for entry in entries.values():
        if entry.external and entry.algorithm and entry.hash:
            artifacts.append(
                {
                    "artifactURI": entry.source,
                    "checksum": {"algorithm": entry.algorithm, "hash": entry.hash},
                    "isEncrypted": False,
                }
            )
    layout = {
        "entryDefinitions": csar.entry_definitions,
        "vnfdFiles": vnfd_paths,
        "toscaMeta": [TOSCA_META] if TOSCA_META in package_files else [],
        "manifest": csar.manifest_path,
        "signatures": signatures,
        "manoArtifacts": mano,
        "nonManoArtifactSets": csar.non_mano_artifact_sets,
    }
    return layout, artifacts


def inspect_package(
    staged: StagedUpload,
    dest: Path,
    *,
    limits: CsarLimits | None = None,
    trust_anchor: Path | None = None,
) -> OnboardedPackage:
    csar = open_csar(staged.path, dest, limits=limits or CsarLimits(), trust_anchor=trust_anchor)
    vnfd = parse_vnfd(csar.root, csar.entry_definitions)
    _check_manifest_matches(csar, vnfd)
    paths = vnfd_files(csar.root, csar.entry_definitions)
    files = {f.path: f for f in csar.files}
    images = _software_images(vnfd, files, utcnow().isoformat().replace("+00:00", "Z"))
    layout, artifacts = _layout_and_artifacts(
        csar, paths, {img["imagePath"] for img in images if "imagePath" in img}
    )
    info: dict[str, Any] = {
        "checksum": {"algorithm": csar.checksum[0], "hash": csar.checksum[1]},
        "softwareImages": images,
        "additionalArtifacts": artifacts,
        "vnfmInfo": list(vnfd.vnfm_info),
    }
    if csar.security_option:
        info["packageSecurityOption"] = csar.security_option
    if csar.certificate_path:
        info["signingCertificate"] = csar.certificate_path
    versions = (csar.manifest.metadata if csar.manifest else {}).get(
        "compatible_specification_versions"
    )
    if versions:
        info["compatibleSpecificationVersions"] = [v.strip() for v in versions.split(",")]
    return OnboardedPackage(
        root=csar.root,
        vnfd_id=vnfd.vnfd_id,
        provider=vnfd.vnf_provider,
        product_name=vnfd.vnf_product_name,
        software_version=vnfd.vnf_software_version,
        vnfd_version=vnfd.vnfd_version,
        info=info,
        vnfd=vnfd.model_dump(mode="json"),
        layout=layout,
    )
