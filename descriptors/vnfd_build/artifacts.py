"""Artifacts of node templates: plain artifacts and SwImage software images."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from descriptors.errors import DescriptorError
from descriptors.vnfd import Artifact, Checksum, SoftwareImage
from descriptors.vnfd_build.values import ToscaValues, pydantic_summary


def _checksum(value: Any, algorithm: Any = None) -> Checksum | None:
    if isinstance(value, dict):
        return Checksum(algorithm=str(value.get("algorithm")), hash=str(value.get("hash")))
    if isinstance(value, str) and value:
        return Checksum(algorithm=str(algorithm or "sha-256"), hash=value)
    return None


def template_artifacts(template: Any, values: ToscaValues) -> Iterator[tuple[str, dict[str, Any]]]:
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


def build_artifact(owner: str, name: str, definition: dict[str, Any], location: str) -> Artifact:
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


def build_sw_image(
    owner: str, name: str, definition: dict[str, Any], values: ToscaValues, provider: str
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
            f"{where}: {pydantic_summary(exc)}", location=values.location
        ) from None
